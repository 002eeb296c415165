"""The controller as a service on the emulated rig: REPL tuning (setpoint step, relay autotune)
and a SIGKILL followed by a restart with resume (no output bump, no committed data lost).
"""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any

import numpy as np

from conftest import (
    HIL_OVERRIDES,
    ControllerProcess,
    Recorder,
    _merge,
    bench_for,
    clock_speed,
    controller_config,
    wall_budget_s,
)
from edgectl.historian import HistoryReader
from edgectl.operator import UserStore

PASSWORD = "hil scenario password"


def _os_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _wait_time(reactor: Any, t_s: float, proc: ControllerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while reactor.info()["time_s"] < t_s:
        assert proc.proc.poll() is None, proc.output()
        assert time.monotonic() < deadline, f"controller stuck before t = {t_s} s"
        time.sleep(0.05)


# A heating-only temperature loop (the cooling valve stays shut): a single-output PID, which is
# what the relay autotune works on (control.md §3, SIMC rules).
HEAT_ONLY = {
    "loops": {
        "temp": {
            "type": "pid",
            "pv": "temp_c",
            "setpoint": 37.0,
            "output": "heater",
            "pid": {"kp": 0.5, "ti_s": 600.0, "td_s": 0.0, "tt_s": 120.0},
            "raise_output": None,
            "lower_output": None,
            "deadband_pct": None,
        }
    },
}


def test_temp_step_and_autotune(bench_target: str, tmp_path: Path, verdict: Recorder) -> None:
    speed = clock_speed(bench_target, 300.0)
    with bench_for(bench_target, tmp_path, speed=speed) as bench:
        cfg = controller_config(bench, tmp_path / "reactor.toml", _merge(HIL_OVERRIDES, HEAT_ONLY))
        UserStore(tmp_path / "run.users").add(_os_user(), "engineer", PASSWORD)
        ctl = ControllerProcess(
            cfg,
            speed=speed,
            duration_h=None,
            db=tmp_path / "run.db",
            socket_path=tmp_path / "run.sock",
            log=tmp_path / "controller.log",
        )
        try:
            r = ctl.connect()
            temp = r.loops["temp"]
            _wait_time(r, 1800.0, ctl, wall_budget_s(0.5, speed))
            t_step = r.info()["time_s"]
            temp.setpoint = 37.5
            _wait_time(r, t_step + 2700.0, ctl, wall_budget_s(0.75, speed))
            started = temp.autotune(amplitude=0.2)
            verdict.require(started["state"] == "running", f"autotune started: {started}")
            deadline = time.monotonic() + wall_budget_s(4.0, speed)  # its max_time_s, 4 h
            status = temp.autotune_status()
            while status.get("state") == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
                status = temp.autotune_status()
            t_end = r.info()["time_s"]
            gains = {k: temp.settings.get(k) for k in ("kp", "ti_s")}
            # stopping is e-signed: the password of the user the controller knows us as
            r.stop(reason="end of the HIL scenario", meaning="performed", password=PASSWORD)
            r.close()
            ctl.wait(30)
        finally:
            ctl.stop()
    verdict.figure("autotune", status.get("state"))
    verdict.require(status.get("state") == "done", f"autotune finished: {status}")
    for key in ("hysteresis", "amplitude_pv", "ku", "pu_s", "rule"):
        verdict.figure(key, status.get(key))
    verdict.figure("new kp", gains["kp"])
    verdict.figure("new ti_s", gains["ti_s"])
    verdict.require(
        all(isinstance(v, float) and v > 0 for v in gains.values()), f"gains set: {gains}"
    )
    verdict.figure("autotune h", (t_end - t_step - 2700.0) / 3600.0)
    with HistoryReader(tmp_path / "run.db") as h:
        t0 = h.runs()[0].started_s
        s = h.samples("temp_c", t0 + t_step, t0 + t_step + 2700.0).good()
        reached = s.times_s[s.values >= 37.4]
        rise = float(reached[0] - (t0 + t_step)) if len(reached) else float("inf")
        verdict.figure("rise to 90 % s", rise)
        verdict.require(rise <= 1800.0, "reaches 90 % of the step within 30 min")
        overshoot = float(s.values.max() - 37.5)
        verdict.figure("overshoot K", overshoot)
        verdict.require(overshoot <= 0.2 + 1e-9, "overshoot ≤ 0.2 K")
        settled = h.samples("temp_c", t0 + t_step + 1800.0, t0 + t_step + 2700.0).good().values
        verdict.figure("dev last 15 min", float(np.abs(settled - 37.5).max()))
        verdict.require(float(np.abs(settled - 37.5).max()) <= 0.1 + 1e-9, "settles ±0.1")
        audit = [a for a in h.audit.records() if a.target.startswith("loops.temp")]
        verdict.figure("audit records", len(audit))
        verdict.require(len(audit) >= 2, "setpoint change and autotune are in the audit trail")
    verdict.finish()


def test_kill_and_resume(bench_target: str, tmp_path: Path, verdict: Recorder) -> None:
    """SIGKILL mid-run, restart with ``--on-restart resume``: the outputs continue where they
    were (the plant kept running meanwhile, as a real one does) and every sample committed
    before the kill is still there."""
    speed = clock_speed(bench_target, 200.0)
    with bench_for(bench_target, tmp_path, speed=speed) as bench:
        cfg = controller_config(bench, tmp_path / "reactor.toml", HIL_OVERRIDES)
        db = tmp_path / "run.db"
        kw: dict[str, Any] = {
            "speed": speed,
            "db": db,
            "socket_path": tmp_path / "run.sock",
            "log": tmp_path / "controller.log",
        }
        first = ControllerProcess(cfg, duration_h=None, **kw)
        r = first.connect()
        _wait_time(r, 2400.0, first, wall_budget_s(2400.0 / 3600.0, speed))
        before = r.info()["outputs"]
        r.close()
        with HistoryReader(db) as h:
            committed = len(h.samples("heater").times_s)
            last_committed = float(h.samples("heater").times_s[-1])
        first.kill()
        (tmp_path / "run.sock").unlink(missing_ok=True)
        second = ControllerProcess(cfg, duration_h=0.5, on_restart="resume", **kw)
        r2 = second.connect()
        after = r2.info()["outputs"]
        r2.close()
        rc = second.wait(wall_budget_s(0.5, speed))
    assert rc == 0, second.output()
    for name, limit in (("stirrer_rpm", 60.0), ("air_sccm", 1.0), ("heater", 0.15)):
        bump = abs(after[name] - before[name])
        verdict.figure(f"{name} bump", bump)
        verdict.require(bump <= limit, f"{name}: {before[name]} → {after[name]}")
    with HistoryReader(db) as h:
        runs = h.runs()
        verdict.figure("runs", len(runs))
        verdict.require(len(runs) == 2 and runs[1].resumed_from is not None, f"resumed: {runs}")
        kept = len(h.samples("heater", None, last_committed).times_s)
        verdict.figure("samples lost", max(0, committed - kept))
        verdict.require(kept >= committed, f"{committed - kept} committed samples lost")
        verdict.require(h.audit.verify().is_intact, "audit chain intact")
    verdict.finish()
