"""kill -9 during writes: the file stays intact and holds a prefix of what was appended.

A child process appends samples (value = time = sequence number) continuously with a short
commit interval, audit records now and then, and state snapshots every few "scans"; after each
commit it prints how many items the writer has committed. The parent SIGKILLs it mid-stream at
several points, reopens the file and checks: integrity_check is ok, the audit chain verifies,
every sample committed before the kill is there, the samples are exactly 0..n-1 in id order
(monotone ids, nothing half-written, no gap), the state snapshot is whole and consistent with
the samples, and the historian can be reopened and appended to.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgectl.historian import Historian, HistoryReader

CHILD = textwrap.dedent(
    """
    import sys, time
    from edgectl.historian import Historian

    h = Historian(sys.argv[1], commit_interval_s=float(sys.argv[2]))
    h.start_run(config_hash="crash-test")
    i = 0
    reported = -1
    while True:
        h.record("seq", float(i), float(i))
        h.record("const", 1.0, float(i))
        i += 1
        if i % 50 == 0:
            h.save_state("controller", {"i": i, "padding": "x" * 200})
        if i % 500 == 0:
            h.audit.record(actor="child", action="set", target="loops.x.kp", old=i - 500,
                           new=i, reason="crash test")
        if i % 100 == 0:
            stats = h.writer_stats()
            if stats.n_committed != reported:
                reported = stats.n_committed
                print(f"{stats.n_committed} {stats.n_commits}", flush=True)
            time.sleep(0.001)
    """
)


def _run_and_kill(db: Path, commit_interval_s: float, min_commits: int) -> int:
    """Start the child, wait for ``min_commits`` commits, SIGKILL it; return the last
    committed-items count it reported."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(commit_interval_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last_committed = 0
    deadline = time.monotonic() + 60.0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            committed, commits = (int(x) for x in line.split())
            last_committed = committed
            if commits >= min_commits or time.monotonic() > deadline:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, stderr
    assert last_committed > 0, f"child committed nothing: {stderr}"
    return last_committed


@pytest.mark.parametrize(("commit_interval_s", "min_commits"), [(0.02, 5), (0.05, 12), (0.2, 4)])
def test_kill_9_during_writes_loses_only_uncommitted_data(
    tmp_path: Path, commit_interval_s: float, min_commits: int
) -> None:
    db = tmp_path / "crash.db"
    reported = _run_and_kill(db, commit_interval_s, min_commits)

    # Raw checks first, before edgectl touches the file (opening recovers the WAL).
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = con.execute(
            "SELECT s.id, s.t, s.value, s.quality FROM sample AS s JOIN tag ON tag.id = s.tag_id "
            "WHERE tag.name = 'seq' ORDER BY s.id"
        ).fetchall()
        n_const = con.execute(
            "SELECT count(*) FROM sample AS s JOIN tag ON tag.id = s.tag_id "
            "WHERE tag.name = 'const'"
        ).fetchone()[0]
        n_items = con.execute("SELECT count(*) FROM sample").fetchone()[0]
        n_events = con.execute("SELECT count(*) FROM event").fetchone()[0]
    finally:
        con.close()
    n = len(rows)
    # Everything committed before the kill is there. The child reported committed queue
    # items: samples, events (run.start) and state snapshots (one per 50 scans).
    assert n_items + n_events + (n + 1) // 50 >= reported
    # A prefix: values 0..n-1 in id order, ids strictly increasing, nothing half-written.
    assert [r[2] for r in rows] == [float(i) for i in range(n)]
    assert [r[1] for r in rows] == [float(i) for i in range(n)]
    assert all(b[0] > a[0] for a, b in itertools.pairwise(rows))
    assert {r[3] for r in rows} == {0}
    # Both tags of a scan are appended together; a commit may split a scan by one sample.
    assert n_const in (n, n - 1, n + 1)

    with HistoryReader(db) as r:
        assert r.audit.verify().is_intact
        state = r.load_state("controller")
        (run,) = r.runs()
    assert run.stopped_s is None  # killed: never stopped
    if state is not None:
        assert state["padding"] == "x" * 200
        # The snapshot was committed with (or after) the samples appended before it.
        assert state["i"] <= n + 1

    # The file is usable again: a resumed run appends after the survivors. Opening it replays
    # the spill file first: under load an audit record's own durable commit can hold the write
    # lock past the writer's short busy timeout, the commit fails and the writer moves queued
    # items to the spill file. Those were recorded, so they come back, in order, right after
    # the committed prefix (the spill takes the oldest queued items): still a gap-free prefix.
    with Historian(db) as h:
        h.flush()
        survivors = h.samples("seq").values.tolist()
        m = len(survivors)
        assert m >= n
        assert survivors == [float(i) for i in range(m)]
        h.start_run(config_hash="crash-test", resumed_from=run.run_uid)
        h.record("seq", float(m), float(m))
        h.audit.record(actor="test", action="resume", target="runtime", old=None, new=m)
        h.flush()
        assert h.samples("seq").values.tolist() == [float(i) for i in range(m + 1)]
        assert h.audit.verify().is_intact
