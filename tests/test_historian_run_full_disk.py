"""A whole run whose disk fills up mid-run (issue 12): the controller goes on controlling, the
summary still prints, and what the disk refused is counted and replayed at the next open.

On main, ``Run.figures()`` raised ``HistorianError`` (no summary) and ``close()`` discarded the
queued items (``edgectl run`` exited 2).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl.historian import Historian
from edgectl.runtime.build import open_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MB tmpfs (the database and its 16 MB spill reservation fit; then it is filled)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\xff" * size) == size:
                    pass
    finally:
        os.close(fd)
    return filler


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
