"""Restart and resume: `edgectl run` killed with SIGKILL mid-run, started again on the same
historian with the resume policy, continues without a bump in its outputs and without losing
what was committed; with the hold policy every loop starts safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _runs import ECOLI, kill9, start_run, wait_for_samples
from edgectl.historian import HistoryReader


def start(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return start_run(tmp_path, *extra, speed=600.0)


@pytest.mark.slow
def test_kill9_then_resume_without_bump_or_data_loss(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    first = start(tmp_path)
    try:
        wait_for_samples(db, "temp_c", 400)  # > 1 h of simulated time at 10 s sampling
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    with HistoryReader(db) as r:
        before = {t: r.samples(t) for t in ("temp_c", "heater", "base_ml_min", "stirrer_rpm")}
        saved = r.load_state("controller")
    assert saved is not None
    t_kill = before["temp_c"].times_s[-1]

    second = start(tmp_path, "--duration", "0.5", "--on-restart", "resume")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, out + err
    assert ", resumed" in out.splitlines()[0]
    with HistoryReader(db) as r:
        after = {t: r.samples(t) for t in before}
        runs = r.runs()
        events = [e.message for e in r.events(kind="start")]
    assert len(runs) == 2
    assert any("resumed" in m for m in events)
    for tag, series in before.items():
        # nothing committed before the kill was lost, and the run continued on the same axis
        assert np.array_equal(after[tag].times_s[: len(series)], series.times_s), tag
        newer = after[tag].times_s[after[tag].times_s > t_kill]
        assert len(newer) >= 150, tag
        assert newer[0] - t_kill < 120.0, tag  # resumed near where it stopped: no long gap
    # no bump: the first outputs after the restart continue from the last ones before the kill
    heater = after["heater"]
    i = int(np.searchsorted(heater.times_s, t_kill, side="right"))
    assert abs(heater.values[i] - before["heater"].values[-1]) < 0.1
    stirrer = after["stirrer_rpm"]
    assert abs(stirrer.values[i] - before["stirrer_rpm"].values[-1]) < 30.0
    temp_after = after["temp_c"].values[after["temp_c"].times_s > t_kill]
    assert np.max(np.abs(temp_after - 37.0)) < 0.15


@pytest.mark.slow
def test_hold_policy_starts_every_loop_safe(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    first = start(tmp_path, "--duration", "0.2")
    first.communicate(timeout=300)
    assert first.returncode == 0
    second = start(tmp_path, "--duration", "0.05", "--on-restart", "hold")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, out + err
    with HistoryReader(db) as r:
        held = [e for e in r.events(kind="restart") if "held safe" in e.message]
        heater = r.samples("heater")
        t_restart = r.runs()[-1].started_s
    assert {e.source for e in held} >= {"loops.temp", "loops.ph", "loops.do"}
    assert np.all(heater.values[heater.times_s > t_restart + 1.0] == 0.0)
    assert os.path.exists(db)


def test_sigint_is_the_recorded_stop_reason(tmp_path: Path) -> None:
    """main before issue 12 recorded an interrupted run's stop reason as ``normal``."""
    db = tmp_path / "run.db"
    proc = start(tmp_path)
    try:
        wait_for_samples(db, "temp_c", 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert "run summary" in out
    with HistoryReader(db) as r:
        [run] = r.runs()
    assert run.stop_reason == "signal SIGINT"
    assert run.stopped_s is not None


def test_a_second_controller_on_the_same_database_is_refused(tmp_path: Path) -> None:
    """main before issue 12: a second run on the live run's database resumed from its state and
    wrote into the same file (sample times went backwards)."""
    db = tmp_path / "run.db"
    first = start(tmp_path)
    try:
        wait_for_samples(db, "temp_c", 2)
        cmd = [sys.executable, "-m", "edgectl.cli", "run", str(ECOLI), "--speed", "600"]
        cmd += ["--duration", "0.01", "--db", str(db), "--socket", str(tmp_path / "b.sock")]
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "database is in use by another historian" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert first.poll() is None  # the live run runs on
        with HistoryReader(db) as r:
            assert len(r.runs()) == 1
            times = r.samples("temp_c").times_s
        assert np.all(np.diff(times) > 0)
    finally:
        kill9(first)
