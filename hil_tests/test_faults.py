"""Fault scenarios on the emulated rig (plant-models.md §10; devices.md §4): each injects a
fault from the rig's schedule (plant seconds) while the controller runs as its own process,
and asserts from the historian what the runtime made of it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from conftest import Recorder, alarm_spans, max_sample_gap, record_common, run_scenario
from edgectl.historian import HistoryReader

SPEED = 300.0


def _raises(reader: HistoryReader, name: str) -> list[float]:
    return [a.time_s for a in reader.alarms(name=name) if a.transition == "raise"]


def test_probe_disconnected(tmp_path: Path, verdict: Recorder) -> None:
    """The temperature probe's line goes dead for 10 min: stale alarm → heater forced off
    (interlock temp_disable) → probe back (power-cycled) → alarm clears, T back in band."""
    out = run_scenario(
        tmp_path,
        speed=SPEED,
        hours=2.0,
        faults=[{"at_s": 2400.0, "device": "temp", "disconnect_s": 600.0}],
    )
    assert out.rc == 0, out.output
    with HistoryReader(out.db) as r:
        t0 = r.runs()[0].started_s
        spans = alarm_spans(r, "temp_stale", t0 + 2.0 * 3600)
        verdict.figure("stale alarms", len(spans))
        verdict.require(len(spans) == 1, f"one stale alarm, got {spans}")
        if spans:
            a, b = spans[0]
            verdict.figure("stale raised at s", a - t0)
            verdict.figure("time in alarm s", b - a)
            verdict.require(2400 <= a - t0 <= 2400 + 180, "stale within 3 min of the disconnect")
            # the EZO reboots in continuous mode; the driver re-initialises it on its next poll
            verdict.require(b - a <= 600 + 300, "clears within 5 min of the probe's return")
            heater = r.samples("heater", a + 15.0, b - 5.0).values
            verdict.figure("heater max while stale", float(heater.max()) if len(heater) else 0.0)
            verdict.require(len(heater) > 0 and float(heater.max()) == 0.0, "heater forced off")
        temp = r.samples("temp_c", t0 + 2.0 * 3600 - 900).good().values
        verdict.figure("T dev last 15 min", float(np.max(np.abs(temp - 37.0))))
        verdict.require(float(np.max(np.abs(temp - 37.0))) <= 0.1 + 1e-9, "T back within ±0.1")
        verdict.figure("max sample gap s", max_sample_gap(r, "heater"))
    assert out.truth is not None
    verdict.figure("probe power cycles", out.truth["lines"]["temp"]["power_cycles"])
    verdict.require(out.truth["lines"]["temp"]["power_cycles"] >= 1, "the probe power-cycled")
    record_common(verdict, out)
    verdict.finish()


def test_garbage_and_late_replies(tmp_path: Path, verdict: Recorder) -> None:
    """Garbage, truncated, late and silent replies on the pH, DO and air-MFC lines: no crash,
    no alarm, every reading GOOD again and the loops in band afterwards.

    Serial timeouts are wall time (a real line's), so at 300× one bad reply (the EZO read
    waits 1.5 s, three attempts) costs minutes of plant time; this scenario runs at 60×.
    """
    out = run_scenario(
        tmp_path,
        speed=60.0,
        hours=0.5,
        faults=[
            {"at_s": 600.0, "device": "ph", "spec": "garbage*3,truncate*1"},
            {"at_s": 600.0, "device": "do", "spec": "late:2*2"},
            {"at_s": 600.0, "device": "mfc_air", "spec": "garbage*2,silence*2"},
        ],
    )
    assert out.rc == 0, out.output
    assert out.truth is not None
    left = {n: ln["faults"] for n, ln in out.truth["lines"].items() if ln["faults"]}
    verdict.require(not left, f"every injected fault was met by a poll: {left}")
    with HistoryReader(out.db) as r:
        t0 = r.runs()[0].started_s
        raised = [a.name for a in r.alarms() if a.transition == "raise"]
        verdict.figure("alarms", len(raised))
        verdict.require(not raised, f"no alarm: {raised}")
        for tag, sp, band in (("ph", 7.0, 0.05), ("do_pct", 30.0, 5.0), ("temp_c", 37.0, 0.1)):
            s = r.samples(tag, t0 + 600.0)
            n_bad = int(np.count_nonzero(s.quality != 0))
            verdict.figure(f"{tag} not good s", n_bad * 10)
            late = r.samples(tag, t0 + 1200.0)
            verdict.require(bool(np.all(late.quality == 0)), f"{tag} GOOD again 10 min on")
            dev = late.good().values - sp
            worst = float(max(0.0, -dev.min())) if tag == "do_pct" else float(np.abs(dev).max())
            verdict.figure(f"{tag} worst dev after", worst)
            verdict.require(worst <= band + 1e-9, f"{tag} within band after the faults")
    record_common(verdict, out)
    verdict.finish()


def test_heater_stuck_on(tmp_path: Path, verdict: Recorder) -> None:
    """The heater SSR welds on while the cooling water is lost: the over-temperature ladder
    (reduce at 38.5 → disable at 40 → trip at 42 °C) fires in order and the trip drives every
    output to its safe value, latched."""
    out = run_scenario(
        tmp_path,
        speed=SPEED,
        hours=1.0,
        faults=[
            {"at_s": 1800.0, "kind": "heater_stuck_on", "value": 1.0},
            {"at_s": 1800.0, "kind": "cooling_failure"},
        ],
    )
    assert out.rc == 0, out.output
    with HistoryReader(out.db) as r:
        t0 = r.runs()[0].started_s
        high, disable, trip = (_raises(r, n) for n in ("temp_high", "temp_disable", "temp_trip"))
        verdict.require(bool(high and disable and trip), f"ladder: {high} {disable} {trip}")
        if high and disable and trip:
            verdict.figure("reduce at s", high[0] - t0)
            verdict.figure("disable at s", disable[0] - t0)
            verdict.figure("trip at s", trip[0] - t0)
            verdict.require(high[0] < disable[0] < trip[0], "ladder in order")
            after = trip[0] + 15.0
            for out_name, safe in (("heater", 0.0), ("feed_ml_min", 0.0), ("base_ml_min", 0.0)):
                v = r.samples(out_name, after).values
                verdict.require(len(v) > 0 and bool(np.all(v == safe)), f"{out_name} safe")
            stirrer = r.samples("stirrer_rpm", after).values
            verdict.require(bool(np.all(stirrer == 400.0)), "stirrer at its safe 400 rpm")
        verdict.figure("T max", float(r.samples("temp_c").good().values.max()))
    record_common(verdict, out)
    verdict.finish()


def test_mfc_fails_during_cascade(tmp_path: Path, verdict: Recorder) -> None:
    """The air MFC stops delivering (reads 0 sccm whatever its setpoint) for 35 min in the
    batch, then its gas comes back. The controller sees the read-back off its command, fails
    the air stage (event + alarm ``do.air_sccm.failed``), the cascade skips it and holds DO on
    pure O2 with the O2 stage's degraded gains; once the read-back tracks again the stage is
    restored and the cascade hands back down to air."""
    fail_s, repair_s = 2400.0, 2400.0 + 2100.0
    hours = 2.0
    out = run_scenario(
        tmp_path,
        speed=SPEED,
        hours=hours,
        faults=[
            {
                "at_s": fail_s,
                "kind": "mfc_failure",
                "target": "air",
                "value": 0.0,
                "duration_s": repair_s - fail_s,
            }
        ],
        plant={"ecoli": {"x0_g_l": 1.0, "s0_g_l": 3.0}},
    )
    assert out.rc == 0, out.output
    with HistoryReader(out.db) as r:
        t0 = r.runs()[0].started_s
        air = r.samples("air_flow_sccm", t0 + fail_s + 120, t0 + repair_s).good().values
        verdict.require(len(air) > 0 and float(air.max()) < 50.0, "the MFC reports no flow")
        stage = [e for e in r.events(kind="stage") if e.details]
        failed = [e for e in stage if e.message == "stage_failed"]
        recovered = [e for e in stage if e.message == "stage_recovered"]
        verdict.require(len(failed) == 1 and len(recovered) == 1, "one failure, one recovery")
        if failed:
            verdict.figure("detected after s", failed[0].time_s - t0 - fail_s)
            verdict.require(failed[0].details["stage"] == "air_sccm", "the air stage failed")
            verdict.require(failed[0].time_s - t0 - fail_s <= 120.0, "failure seen within 120 s")
        if recovered:
            verdict.figure("restored after repair s", recovered[0].time_s - t0 - repair_s)
            verdict.require(recovered[0].time_s - t0 > repair_s, "restored only after repair")
        spans = alarm_spans(r, "do.air_sccm.failed", t0 + hours * 3600)
        verdict.figure("alarm s", sum(b - a for a, b in spans))
        verdict.require(len(spans) == 1, "alarm do.air_sccm.failed raised once")
        o2 = r.samples("o2_sccm", t0 + fail_s, t0 + repair_s).values
        verdict.figure("O2 max sccm", float(o2.max()))
        verdict.require(float(o2.max()) > 0.0, "the cascade went on to O2")
        do = r.samples("do_pct", t0 + fail_s).good()
        verdict.figure("DO min %", float(do.values.min()))
        verdict.figure("DO < sp-5 for s", float(np.sum(do.values < 25.0) * 10.0))
        # held on O2 alone: the last 15 min before the repair
        held = r.samples("do_pct", t0 + repair_s - 900, t0 + repair_s).good().values
        verdict.figure("DO on O2 alone %", f"{held.min():.1f}..{held.max():.1f}")
        verdict.require(float(held.min()) >= 25.0, "DO ≥ sp − 5 % on O2 alone")
        # after the repair: back on air, O2 closed, DO held
        late = r.samples("do_pct", t0 + hours * 3600 - 900).good().values
        o2_late = r.samples("o2_sccm", t0 + hours * 3600 - 600).values
        air_late = r.samples("air_flow_sccm", t0 + hours * 3600 - 600).good().values
        verdict.figure("DO last 15 min %", f"{late.min():.1f}..{late.max():.1f}")
        verdict.require(float(late.min()) >= 25.0, "DO ≥ sp − 5 % after the repair")
        verdict.require(float(o2_late.max()) == 0.0, "O2 closed again after the repair")
        verdict.require(len(air_late) > 0 and float(air_late.min()) >= 900.0, "air flows again")
    record_common(verdict, out)
    verdict.finish()


def test_device_power_loss(tmp_path: Path, verdict: Recorder) -> None:
    """The pH circuit loses power for 10 min and boots again (continuous mode, defaults):
    stale alarm, base pump held by the loop, readings and control back afterwards."""
    out = run_scenario(
        tmp_path,
        speed=SPEED,
        hours=1.5,
        faults=[{"at_s": 2400.0, "device": "ph", "power_off_s": 600.0}],
        overrides={
            "alarms": {"ph_stale": {"tag": "ph", "kind": "stale", "delay_s": 30.0}},
        },
    )
    assert out.rc == 0, out.output
    with HistoryReader(out.db) as r:
        t0 = r.runs()[0].started_s
        spans = alarm_spans(r, "ph_stale", t0 + 1.5 * 3600)
        verdict.figure("stale alarms", len(spans))
        verdict.require(len(spans) == 1, f"one pH stale alarm, got {spans}")
        if spans:
            verdict.figure("time in alarm s", spans[0][1] - spans[0][0])
            verdict.require(spans[0][1] < t0 + 1.5 * 3600, "the alarm clears")
        ph = r.samples("ph", t0 + 1.5 * 3600 - 900).good().values
        verdict.figure("pH dev last 15 min", float(np.abs(ph - 7.0).max()))
        verdict.require(float(np.abs(ph - 7.0).max()) <= 0.05 + 1e-9, "pH back within ±0.05")
    assert out.truth is not None
    verdict.figure("power cycles", out.truth["lines"]["ph"]["power_cycles"])
    verdict.require(out.truth["lines"]["ph"]["power_cycles"] >= 1, "the circuit rebooted")
    record_common(verdict, out)
    verdict.finish()


def test_pump_stall_detected_by_balance(tmp_path: Path, verdict: Recorder) -> None:
    """The base pump's rotor stalls: the controller keeps dosing on paper, the base balance
    sees nothing leave the bottle, the ``[pump_checks]`` delivery ratio drops and the
    ``base_pump.stall`` alarm is raised (none before the stall)."""
    out = run_scenario(
        tmp_path,
        speed=SPEED,
        hours=1.5,
        faults=[{"at_s": 2700.0, "kind": "pump_stall", "target": "base"}],
        plant={"ecoli": {"x0_g_l": 1.0, "s0_g_l": 3.0}},
        overrides={
            "pump_checks": {
                "base_pump": {
                    "output": "base_ml_min",
                    "balance": "base_mass_g",
                    "density_g_ml": 0.96,
                    "window_s": 1200.0,
                    "min_volume_ml": 1.0,
                }
            },
        },
    )
    assert out.rc == 0, out.output
    with HistoryReader(out.db) as r:
        t0 = r.runs()[0].started_s
        rate = r.samples("base_ml_min", t0 + 2700.0)
        dosed = float(np.sum(rate.values[:-1] * np.diff(rate.times_s)) / 60.0)
        mass = r.samples("base_mass_g", t0 + 2700.0 + 60).good().values
        weighed = float(mass[0] - mass[-1]) if len(mass) > 1 else 0.0
        verdict.figure("dosed mL", dosed)
        verdict.figure("weighed g", weighed)
        verdict.require(dosed > 1.0, "the loop kept dosing base")
        verdict.require(abs(weighed) < 0.2, "the balance saw nothing leave the bottle")
        ratio = r.samples("base_pump.delivery", None, t0 + 2700.0).good().values
        verdict.figure("delivery before min", float(ratio.min()) if len(ratio) else math.nan)
        verdict.require(float(ratio.min()) > 0.7 if len(ratio) else True, "≈ 1 before")
        raised = _raises(r, "base_pump.stall")
        verdict.figure("stall alarm after s", (raised[0] - t0 - 2700.0) if raised else math.nan)
        verdict.require(len(raised) == 1, f"one stall alarm, got {len(raised)}")
        verdict.require(
            bool(raised) and 0.0 < raised[0] - t0 - 2700.0 <= 1500.0,
            "raised within 25 min of the stall (a 20 min window)",
        )
    record_common(verdict, out)
    verdict.finish()
