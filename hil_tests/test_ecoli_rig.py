"""The whole E. coli culture over ptys: batch → fed-batch on the DO spike, the DO cascade, the
exponential feed until the vessel's titrant capacity caps it, and the end of the culture
(plant-models.md §11 scenario A; control.md §4).

The culture is the main job's, ``examples/ecoli-fedbatch-2L-seed.toml`` (``make run``): the
plant starts late in the batch (X0 1.0 g/L, S0 3.0 g/L: an inoculum from a seed train, its
plant file) so the batch glucose runs out within the first simulated hours, the base line is a
smaller tube (0.25 mL/min at most, so the titrant limits the feed after a few hours of
fed-batch, not after eight), and the fed-batch ends after 6 h. The controller, its own process
on the pty ports and the GPIO bridge, runs with ``--until-end``: it must switch to fed-batch on
the DO spike, feed exponentially at μ_set = 0.22 h⁻¹ until the base pump works above 80 % of
its range, then hold the feed capped (a ``limit`` event; the limitation ends by itself), stop
at the harvest, and hold T ±0.1 °C, pH ±0.05 and DO ≥ sp − 5 % after the start-up transient.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np

from conftest import (
    EXAMPLE,
    HIL_OVERRIDES,
    ControllerProcess,
    Recorder,
    alarm_spans,
    bench_for,
    clock_speed,
    controller_config,
    max_sample_gap,
    wall_budget_s,
)
from edgectl.historian import HistoryReader
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.runtime.summary import loop_figures

SPEED = 300.0
HOURS = 12.0  # a bound: the main job's recipe ends the culture at about 10 h
MAIN_JOB = EXAMPLE.with_name("ecoli-fedbatch-2L-seed.toml")
# the rig's plant is the emulators' (the controller's [plant] is dropped): the main job's
with MAIN_JOB.with_name("ecoli-fedbatch-2L-seed.plant.toml").open("rb") as _f:
    PLANT = {"ecoli": tomllib.load(_f)["ecoli"]}


def test_ecoli_whole_culture(bench_target: str, tmp_path: Path, verdict: Recorder) -> None:
    speed = clock_speed(bench_target, SPEED)
    with bench_for(bench_target, tmp_path, speed=speed, plant=PLANT) as bench:
        cfg_path = controller_config(bench, tmp_path / "reactor.toml", HIL_OVERRIDES, MAIN_JOB)
        ctl = ControllerProcess(
            cfg_path,
            speed=speed,
            duration_h=HOURS,
            db=tmp_path / "run.db",
            socket_path=tmp_path / "run.sock",
            log=tmp_path / "controller.log",
            until_end=True,
        )
        rc = ctl.wait(wall_budget_s(HOURS, speed))
        truth = bench.status() if bench.rig is not None else None
    assert rc == 0, ctl.output()

    cfg = load_reactor_config(cfg_path)
    with HistoryReader(tmp_path / "run.db") as reader:
        [run] = reader.runs()
        t0 = run.started_s
        figs = loop_figures(reader, cfg, t0)
        phases = reader.events(kind="phase")
        fb = [e for e in phases if e.message.startswith("batch → fed-batch")]
        hv = [e for e in phases if e.message.startswith("fed-batch → harvest")]
        verdict.require(len(fb) == 1, f"one batch → fed-batch transition, got {phases}")
        verdict.require(len(hv) == 1, f"the culture ends in the harvest, got {phases}")
        t_fb = fb[0].time_s if fb else math.inf
        t_end = hv[0].time_s if hv else math.inf
        verdict.figure("fed-batch at h", (t_fb - t0) / 3600.0)
        verdict.figure("harvest at h", (t_end - t0) / 3600.0)
        verdict.require("do_pct" in (fb[0].message if fb else ""), "on the DO spike")
        last = reader.samples("temp_c").times_s[-1]
        verdict.require(
            last - t_end <= 30.0, f"the run stopped at the harvest (+{last - t_end:.0f} s)"
        )
        # the bands hold through the batch (after the start-up transient) ...
        t_sp = t0 + 1800.0
        temp_b = reader.samples("temp_c", t_sp, t_fb).good().values - 37.0
        do_b = reader.samples("do_pct", t_sp, t_fb).good().values - 30.0
        verdict.figure("T batch worst dev", float(np.max(np.abs(temp_b))))
        verdict.figure("DO batch min dev", float(np.min(do_b)))
        verdict.require(float(np.max(np.abs(temp_b))) <= 0.1 + 1e-9, "T ±0.1 °C in the batch")
        verdict.require(float(np.min(do_b)) >= -5.0, "DO ≥ sp − 5 % in the batch")
        # ... and the glucose-exhaustion transient (metabolic heat and OUR collapse at once) is
        # reported as its excursion: the example's tuning takes it with T within ±0.3 °C; the
        # fed-batch, limitation included, up to the harvest
        temp_f = reader.samples("temp_c", t_fb, t_end).good().values - 37.0
        do_f = reader.samples("do_pct", t_fb, t_end).good().values - 30.0
        verdict.figure("T fed-batch worst dev", float(np.max(np.abs(temp_f))))
        verdict.figure("DO fed-batch min dev", float(np.min(do_f)))
        verdict.require(float(np.max(np.abs(temp_f))) <= 0.3, "T ±0.3 °C through the transition")
        verdict.require(float(np.min(do_f)) >= -5.0, "DO ≥ sp − 5 % in the fed-batch")
        # pH: ±0.05 from the start-up transient to the harvest, through the alkaline swing at
        # glucose exhaustion (the acid loop) and the limitation (the base pump keeps 20 %)
        ph = reader.samples("ph", t_sp, t_end).good().values - cfg.loops["ph"].setpoint
        verdict.figure("ph worst dev", float(np.max(np.abs(ph))))
        verdict.require(float(np.max(np.abs(ph))) <= 0.05 + 1e-9, "pH ±0.05 to the harvest")
        verdict.figure("acid dosed mL", float(np.sum(reader.samples("acid_ml_min").values) / 6.0))
        # the vessel's titrant capacity limited the feed: an event, the feed capped below the
        # profile, the base pump held below its maximum
        limits = [e for e in reader.events(kind="limit") if "limitation:" in e.message]
        verdict.figure("feed limitations", len(limits))
        verdict.require(
            any(e.message.startswith("titrant limitation") for e in limits),
            f"a titrant limitation in the fed-batch: {[e.message for e in limits]}",
        )
        t_lim = limits[0].time_s if limits else t_end
        verdict.figure("first limitation at h", (t_lim - t0) / 3600.0)
        base = reader.samples("base_ml_min", t_fb, t_end).values
        verdict.figure("base max mL/min", float(np.max(base)) if len(base) else math.nan)
        # the exponential feed: log(rate) grows at mu_set until the first limitation
        feed = reader.samples("feed_ml_min", t_fb + 300.0, t_lim)
        ok = feed.values > 0
        verdict.require(int(ok.sum()) > 20, f"feed running after the transition: {feed.values}")
        if ok.sum() > 20:
            slope = np.polyfit(feed.times_s[ok], np.log(feed.values[ok]), 1)[0] * 3600.0
            verdict.figure("feed mu_h", float(slope))
            verdict.require(abs(slope - 0.22) <= 0.02, f"feed grows at {slope:.3f}/h, not 0.22")
        capped = reader.samples("feed_ml_min", t_lim, t_end).values
        if len(capped) and ok.sum() > 0:
            # the profile would be e^(0.22 h⁻¹ · t) above its value at the first limitation
            grow = math.exp(0.22 * (t_end - t_lim) / 3600.0)
            verdict.figure(
                "feed max after limit / at limit", float(np.max(capped) / feed.values[ok][-1])
            )
            verdict.require(
                float(np.max(capped)) < feed.values[ok][-1] * grow,
                "the feed is capped below its exponential profile once limited",
            )
        verdict.figure(
            "loops judged to the harvest",
            ", ".join(f"{k} {f.max_abs_dev:.3g}" for k, f in figs.items()),
        )
        # the cascade worked its first stage up in the batch
        stirrer = reader.samples("stirrer_rpm").values
        verdict.figure("stirrer max rpm", float(np.max(stirrer)))
        verdict.require(float(np.max(stirrer)) > 450.0, "the DO cascade raised the stirrer")
        alarms = [a.name for a in reader.alarms() if a.transition == "raise"]
        verdict.figure("alarms", len(alarms))
        verdict.require(not alarms, f"no alarm in a healthy run: {alarms}")
        in_alarm = sum(b - a for n in cfg.alarms for a, b in alarm_spans(reader, n, t_end))
        verdict.figure("time in alarm s", in_alarm)
        gap = max_sample_gap(reader, "heater")
        verdict.figure("max sample gap s", gap)
        verdict.require(gap <= 60.0, f"a {gap:.0f} s gap in the record")
    if truth is not None:
        # what the plant's own balance says the feed pump delivered vs what the controller dosed
        info_total = float(
            next(
                ln.split("feed_ml_min ")[1].split(" mL")[0]
                for ln in ctl.output().splitlines()
                if "doses" in ln
            )
        )
        delivered = truth["balances"]["feed_ml"]
        verdict.figure("feed dosed/delivered mL", f"{info_total:.1f}/{delivered:.1f}")
        verdict.require(
            abs(delivered - info_total) <= 0.1 * max(info_total, 1.0),
            f"plant received {delivered:.2f} mL of feed, controller dosed {info_total:.2f} mL",
        )
    verdict.finish()
