"""A whole run whose disk fills up mid-run (issue 12): the controller goes on controlling, the
summary still prints, and what the disk refused is counted and replayed at the next open.

On main, ``Run.figures()`` raised ``HistorianError`` (no summary) and ``close()`` discarded the
queued items (``edgectl run`` exited 2).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _fs import fill, small_tmpfs
from edgectl.historian import Historian, HistoryReader
from edgectl.runtime.build import open_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MB tmpfs (the database and its 16 MB spill reservation fit; then it is filled)."""
    with small_tmpfs(tmp_path, "32m") as mnt:
        yield mnt


def test_a_run_on_a_disk_that_fills_up_prints_its_summary(disk: Path) -> None:
    db = disk / "run.db"
    run = open_run(EXAMPLE, db=db, virtual_clock=True, serve_rpc=False)
    try:
        run.run(300.0)
        run.historian.flush()
        filler = fill(disk)
        run.run(600.0)  # the scan goes on (a virtual clock: faster than the writer's timer)
        health = run.historian.flush(check=False)  # one commit attempt, as the timer makes
        assert health.state == "degraded", health
        assert "full" in str(health.last_error)
        assert run.controller.now_s >= 900.0
        summary = run.summary()  # main: HistorianError from figures(): no summary
        assert "run summary" in summary
    finally:
        final = run.historian.close("normal")
        run.close()
    assert final.n_spilled > 0
    assert (final.n_pending, final.n_dropped, final.n_dropped_records) == (0, 0, 0)
    filler.unlink()
    with Historian(db) as again:  # replays the spill file
        assert again.health().state == "ok"
        last = max(s.time_s for s in again.latest().values())
        (r,) = again.runs()
        assert r.stop_reason == "normal"
        assert last - r.started_s >= 899.0  # the samples of the full-disk period are there


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Wait for ``condition`` (a generous deadline only guards against a hung child)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_edgectl_run_on_a_disk_that_fills_up_exits_0_with_summary_and_counts(
    disk: Path, tmp_path: Path
) -> None:
    db = disk / "run.db"
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        cmd = [sys.executable, "-m", "edgectl.cli", "run", str(EXAMPLE), "--speed", "60"]
        proc = subprocess.Popen(
            [*cmd, "--db", str(db), "--socket", str(tmp_path / "run.sock")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:

        def has_samples() -> bool:
            if proc.poll() is not None:
                raise AssertionError(log.read_text(errors="replace"))
            try:
                with HistoryReader(db) as r:
                    return r.count("sample") > 0
            except Exception:
                return False

        wait_for(has_samples, "the first committed samples")
        filler = fill(disk)
        wait_for(lambda: "historian degraded" in log.read_text(errors="replace"), "degraded")
        proc.send_signal(signal.SIGINT)  # the operator stops the run
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert rc == 0, text  # main: rc 2, the queued items discarded, no summary
    assert "run summary" in text
    assert "items not written to the database are in the spill file" in text
    assert "0 samples and 0 other items lost" in text
    filler.unlink()
    with Historian(db) as again:
        assert again.health().state == "ok"
        assert again.runs()[-1].stopped_s is not None
