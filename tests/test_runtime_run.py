"""The whole controller in this process against the simulated plant (``sim://`` devices):
pump-stall detection from the balance, the over-temperature ladder tripping and recovering,
a stale probe driving its loop safe, and the live REPL (in-process and over the socket), with
every change in the audit trail."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

import edgectl
from edgectl.config import to_toml_text
from edgectl.emulators import get_emulator
from edgectl.historian import HistoryReader
from edgectl.operator import RefusedError, UserStore
from edgectl.runtime.build import Run, open_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
SPEED = 1200.0


def example(tmp_path: Path, **changes: Any) -> Path:
    """The E. coli example with top-level tables changed (e.g. recipe start)."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    path = tmp_path / "reactor.toml"
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


def open_example(tmp_path: Path, **changes: Any) -> Run:
    return open_run(
        example(tmp_path, **changes),
        speed=SPEED,
        db=tmp_path / "run.db",
        socket_path=tmp_path / "run.sock",
    )


def alarm_names(run: Run, transition: str = "raise") -> list[str]:
    run.historian.flush()
    return [a.name for a in run.historian.alarms() if a.transition == transition]


def test_pump_stall_is_detected_from_the_balance(tmp_path: Path) -> None:
    run = open_example(tmp_path, **{"recipe.start": "fed-batch"})
    try:
        run.run(1800.0)
        assert "feed_pump.stall" not in alarm_names(run)
        delivery = run.controller.tags.read("feed_pump.delivery", run.controller.now_s)
        assert delivery.value == pytest.approx(1.0, abs=0.15)  # a healthy pump
        run.plant.inject_fault("pump_stall", "feed")
        run.run(1500.0)
        assert "feed_pump.stall" in alarm_names(run)
        stalled = run.controller.tags.read("feed_pump.delivery", run.controller.now_s)
        assert stalled.value < 0.5
    finally:
        run.close()


def test_over_temperature_ladder_trips_and_recovers(tmp_path: Path) -> None:
    run = open_example(tmp_path)
    try:
        run.run(900.0)
        run.plant.inject_fault("heater_stuck_on", value=1.0)
        run.plant.inject_fault("cooling_failure")
        for _ in range(12):
            run.run(300.0)
            if run.controller.alarm_mgr.tripped:
                break
        raised = alarm_names(run)
        assert raised.index("temp_high") < raised.index("temp_disable") < raised.index("temp_trip")
        assert run.controller.alarm_mgr.tripped
        outs = run.controller.outputs
        assert outs["heater"] == 0.0  # the controller's output; the fault holds the real heater
        assert outs["feed_ml_min"] == 0.0
        assert outs["stirrer_rpm"] == 400.0  # safe stirring keeps the culture mixed
        assert outs["cooling"] == 1.0  # the cooling interlock acts after the trip
        run.plant.clear_faults()  # heater relay replaced, cooling water back
        run.run(3600.0)  # cools down: alarms clear, the trip stays latched
        assert "temp_trip" in alarm_names(run, "clear")
        assert run.controller.alarm_mgr.tripped
        UserStore(tmp_path / "run.users").add("alice", "operator", "alice's password")
        r = edgectl.connect(run.controller, user="alice", password="alice's password")
        # resetting a trip is e-signed: the password re-entered, its meaning and a reason
        kw = {"reason": "heater replaced", "meaning": "approved", "password": "alice's password"}
        assert r.reset_trip(**kw) == []
        r.reason = "heater replaced"
        r.ack()
        assert not run.controller.alarm_mgr.tripped
        run.run(1800.0)
        assert run.controller.outputs["heater"] > 0.0  # back in control
        temp = run.controller.tags.read("temp_c", run.controller.now_s).value
        assert temp == pytest.approx(37.0, abs=1.0)
        records = [(a.actor, a.action, a.reason) for a in run.historian.audit.records()]
        signed = "heater replaced [e-signed by alice, meaning: approved]"
        assert ("alice", "reset_trip", signed) in records
        assert ("alice", "ack", "heater replaced") in records
    finally:
        run.close()


def test_stale_probe_drives_its_loop_safe_and_recovers(tmp_path: Path) -> None:
    run = open_example(tmp_path)
    try:
        run.run(900.0)
        emu = get_emulator("temp")
        emu.faults.apply_spec("silence")
        run.run(600.0)
        assert "temp_stale" in alarm_names(run)
        view = run.controller.loops["temp"].settings()
        assert view["pv_bad"] is True
        assert run.controller.outputs["heater"] == 0.0
        emu.faults.clear()
        # Driver timeouts and retries are wall time (1.5 s per try for an EZO read): at 1200x
        # the worker needs a few wall seconds, i.e. simulated tens of minutes, to come back.
        for _ in range(30):
            run.run(300.0)
            if "temp_stale" in alarm_names(run, "clear"):
                break
        assert "temp_stale" in alarm_names(run, "clear")
        run.run(600.0)
        assert run.controller.loops["temp"].settings()["pv_bad"] is False
        assert run.controller.outputs["heater"] > 0.0
    finally:
        run.close()


def test_live_repl_over_the_socket_is_audited(tmp_path: Path) -> None:
    run = open_example(tmp_path)
    try:
        run.run(600.0)
        UserStore(tmp_path / "run.users").add("bob", "engineer", "bob's password")
        with edgectl.connect(tmp_path / "run.sock", user="bob", password="bob's password") as r:
            assert r.info()["name"] == "ecoli-2L"
            assert r.phase == "batch"
            assert set(r.loops) == {"temp", "ph", "ph_acid", "do", "feed", "foam"}
            assert r.tags["temp_c"]["quality"] == "good"
            r.reason = "tighter pH"
            r.loops["ph"].kp = 8.0
            assert r.loops["ph"].kp == 8.0
            r.loops["temp"].setpoint = 36.5
            t_s, v = r.trend("temp_c", 300.0)
            assert len(t_s) >= 20
            assert all(math.isfinite(x) for x in v)
            with pytest.raises(RefusedError, match="has no setting 'gain'"):
                r.loops["ph"].gain = 1.0
            # the DO cascade's stages: taken out of use by hand, gains of the O2 stage
            do = r.loops["do"]
            assert do.settings["stages"]["air_sccm"]["enabled"] is True
            with pytest.raises(ValueError, match="give enabled, kp or ti_s"):
                do.set_stage("air_sccm")
            do.set_stage("air_sccm", enabled=False)
            do.set_stage("o2_sccm", kp=0.8)
            st = do.settings["stages"]
            assert st["air_sccm"] == {
                "use": "out_of_use",
                "enabled": False,
                "degraded": False,
                "gains": None,
                "degraded_gains": None,
                "operator_disabled": True,
            }
            assert st["o2_sccm"]["gains"] == {"kp": 0.8, "ti_s": 120.0}
            do.set_stage("air_sccm", enabled=True)
            assert do.settings["stages"]["air_sccm"]["enabled"] is True
            assert r.tags["do.air_sccm.health"]["value"] == 1.0
        run.run(1800.0)
        assert run.controller.tags.read("temp_c", run.controller.now_s).value == pytest.approx(
            36.5, abs=0.15
        )
    finally:
        run.close()
    with HistoryReader(tmp_path / "run.db") as reader:
        # the run stops on its own (accelerated) time axis, after its last sample
        [stopped] = reader.runs()
        last = float(reader.samples("temp_c").times_s[-1])
        assert stopped.stopped_s is not None
        assert last <= stopped.stopped_s <= last + 20.0
        audit = [(a.actor, a.target, a.old_value, a.new_value) for a in reader.audit.records()]
        assert ("bob", "loops.ph.kp", 5.0, 8.0) in audit
        assert ("bob", "loops.temp.setpoint", 37.0, 36.5) in audit
        assert ("bob", "loops.do.stages.air_sccm.enabled", True, False) in audit
        assert ("bob", "loops.do.stages.o2_sccm.kp", 1.0, 0.8) in audit
        assert reader.audit.verify().is_intact


def test_a_run_shorter_than_settle_s_is_not_judged(tmp_path: Path) -> None:
    run = open_example(tmp_path)
    try:
        run.run(600.0)  # every loop of the example settles over 1800 s
        figures = run.figures()
        assert figures, "the example's loops have acceptance blocks"
        for f in figures.values():
            assert (f.judged, f.ok, f.n_samples) == (False, True, 0)
        text = run.summary()
        assert text.count("n/a (run shorter than settle_s)") == len(figures)
        assert "FAIL" not in text
        run.run(1800.0)
        assert all(f.judged and f.n_samples > 0 for f in run.figures().values())
    finally:
        run.close()


def test_feed_volume_limitation_is_an_event_and_in_the_summary(tmp_path: Path) -> None:
    # The fed-batch phase with its volume limit just above the start (2 L − the 5 mL sample
    # drawn on entry): feed and base bring the volume up to it, the feed stops, and the
    # limitation is a `limit` event and the summary's "feed limitation" line.
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["recipe"]["start"] = "fed-batch"
    fed = next(p for p in data["recipe"]["phases"] if p["name"] == "fed-batch")
    fed["feed"]["limits"]["max_volume_l"] = 1.997
    path = tmp_path / "reactor.toml"
    path.write_text(to_toml_text(data), encoding="utf-8")
    run = open_run(path, speed=SPEED, db=tmp_path / "run.db", socket_path=tmp_path / "run.sock")
    try:
        for _ in range(12):
            run.run(600.0)
            limiter = run.controller.recipe.limiter if run.controller.recipe else None
            if limiter is not None and limiter.active["volume"]:
                break
        assert limiter is not None
        assert limiter.active["volume"]
        run.run(60.0)
        assert run.controller.outputs["feed_ml_min"] == 0.0
        run.historian.flush()
        limits = [e.message for e in run.historian.events() if e.kind == "limit"]
        assert limits
        assert limits[0].startswith("volume limitation: volume 1.997 L >= 1.997 L")
        line = next(ln for ln in run.summary().splitlines() if "feed limitation" in ln)
        assert "volume 1×" in line
        assert "active at end" in line
    finally:
        run.close()
