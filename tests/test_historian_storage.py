"""Storage failures, exclusivity, file modes and descriptors of the historian (issue 12).

Real failures only: a full file system (a tmpfs of a few hundred KB, mounted as root), a
database locked by another connection (``BEGIN EXCLUSIVE``), a real second process holding the
writer lock. No sqlite call is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fs import fill, small_tmpfs
from edgectl.errors import InvalidInputError
from edgectl.historian import Historian, HistorianError, HistorianHealth, HistoryReader
from edgectl.historian.reader import MAX_IDLE_CONNECTIONS
from edgectl.runtime.rpc import RpcClient, RpcServer

NEVER_S = 3600.0  # the writer commits only on flush()/close()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 768 KB tmpfs: a real file system that fills up."""
    with small_tmpfs(tmp_path, "768k") as mnt:
        yield mnt


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- a full disk -----------------------------------------------------------------------------------


def test_full_disk_degrades_keeps_everything_and_recovers(small_fs: Path) -> None:
    db = small_fs / "reactor.db"
    changes: list[HistorianHealth] = []
    h = Historian(
        db,
        commit_interval_s=NEVER_S,
        max_pending=1000,
        spill_max_bytes=256 * 1024,
        on_health_change=changes.append,
    )
    h.start_run(time_s=0.0)
    for i in range(50):
        h.record("temp_c", 37.0, float(i))
    h.flush()
    filler = fill(small_fs)
    n = 3000
    for i in range(50, 50 + n):  # the scan goes on: appends never raise nor wait
        h.record_scan(float(i), {"temp_c": 37.0 + i * 1e-4, "ph": 7.0})
        if i % 200 == 0:
            h.flush(check=False)  # as the writer's timer does, every commit_interval_s
    h.record_event("phase", "fed-batch", time_s=60.0)
    with pytest.raises(HistorianError, match=r"commit failed.*(full|disk)"):
        h.flush()
    health = h.health()
    assert health.state == "degraded", health
    assert "full" in str(health.last_error)
    assert health.n_dropped == 0
    assert [c.state for c in changes] == ["degraded"]
    assert h.writer_stats().n_appended == 50 + 2 * n + 2  # nothing refused
    # memory is bounded: beyond a tenth of max_pending the backlog went to the spill file
    assert health.n_pending <= 100
    assert health.n_spilled + health.n_pending == 2 * n + 1 + 1  # + the event, the health event
    filler.unlink()
    final = h.flush()
    assert final.state == "ok", final
    assert [c.state for c in changes] == ["degraded", "ok"]
    assert h.count("sample") == 50 + 2 * n
    times = h.samples("temp_c").times_s
    assert times.tolist() == [float(i) for i in range(50 + n)]  # in order, none twice
    h.flush()  # the "ok" event was queued after the commit that recovered
    assert [e.details["state"] for e in h.events(kind="historian.health")] == [  # type: ignore[index]
        "degraded",
        "ok",
    ]
    assert h.events(kind="phase")[0].message == "fed-batch"
    assert h.close().state == "ok"


def test_close_on_a_full_disk_spills_counts_and_the_next_open_replays(small_fs: Path) -> None:
    db = small_fs / "reactor.db"
    h = Historian(db, commit_interval_s=NEVER_S, spill_max_bytes=256 * 1024)
    h.start_run(time_s=0.0)
    h.save_state("controller", {"now_s": 0.0})
    h.flush()
    filler = fill(small_fs)
    for i in range(1000):
        h.record("temp_c", 37.0, float(i))
    h.save_state("controller", {"now_s": 999.0})
    health = h.close("normal", time_s=1000.0)  # main: HistorianError, items discarded
    assert health.state == "degraded"
    assert (health.n_pending, health.n_dropped, health.n_dropped_records) == (0, 0, 0)
    # 1000 samples, the state, the run.stop event and the run stop, the health event
    assert health.n_spilled == 1004
    assert (small_fs / "reactor.db.spill").exists()
    filler.unlink()
    with Historian(db, commit_interval_s=NEVER_S) as again:
        assert again.health().state == "ok"
        assert again.samples("temp_c").times_s.tolist() == [float(i) for i in range(1000)]
        assert again.load_state("controller") == {"now_s": 999.0}
        (run,) = again.runs()
        assert (run.stop_reason, run.stopped_s) == ("normal", 1000.0)
    assert not (small_fs / "reactor.db.spill").exists()


def test_full_spill_file_drops_new_samples_with_an_exact_count(small_fs: Path) -> None:
    db = small_fs / "reactor.db"
    changes: list[str] = []
    h = Historian(
        db,
        commit_interval_s=NEVER_S,
        max_pending=1000,
        spill_max_bytes=8192,
        on_health_change=lambda health: changes.append(health.state),
    )
    h.flush()
    filler = fill(small_fs)
    for i in range(5000):
        h.record("temp_c", 37.0, float(i))
        if i % 500 == 499:
            h.flush(check=False)  # the writer moves what it can to the spill file
    for i in range(10):
        h.record_event("operator.note", f"note {i}", time_s=float(i))  # never dropped
    health = h.flush(check=False)
    assert health.state == "failed", health
    assert changes[-1] == "failed"
    assert health.n_pending <= 2 * 1000  # memory bounded by max_pending (twice, for records)
    assert health.n_dropped > 0
    assert health.n_dropped_records == 0
    filler.unlink()
    h.flush()
    n_samples = h.count("sample")
    assert n_samples + health.n_dropped == 5000  # exact: every sample committed or counted
    assert len(h.events(kind="operator.note")) == 10
    overflow = h.events(kind="historian.overflow")
    assert overflow
    assert f"{health.n_dropped} items dropped" in overflow[0].message
    h.close()


def test_locked_database_does_not_block_appends_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    changes: list[str] = []
    h = Historian(
        db,
        commit_interval_s=NEVER_S,
        on_health_change=lambda health: changes.append(health.state),
    )
    h.record("temp_c", 37.0, 0.0)
    h.flush()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(1, 1001):
            h.record("temp_c", 37.0, float(i))
        with pytest.raises(HistorianError, match="database is locked"):
            h.flush()
        assert h.health().state == "degraded"
        assert changes == ["degraded"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert h.flush().state == "ok"
    assert changes == ["degraded", "ok"]
    assert h.count("sample") == 1001
    h.close()


def test_huge_commit_interval_is_refused_before_the_writer_starts(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="commit_interval_s must be > 0 and <= 3600"):
        Historian(tmp_path / "x.db", commit_interval_s=1e30)


# -- one writer per database ---------------------------------------------------------------------


HOLDER = """
import sys, time
from edgectl.historian import Historian
h = Historian(sys.argv[1])
print("ready", flush=True)
time.sleep(600)
"""


def test_second_writer_refuses_naming_the_db_and_the_holder_pid(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(HistorianError) as err:
            Historian(db)
        message = str(err.value)
        assert str(db) in message
        assert f"pid {proc.pid}" in message
        assert "in use by another historian" in message
        with HistoryReader(db) as r:  # readers are not blocked
            assert r.count("sample") == 0
        proc.send_signal(signal.SIGKILL)  # the kernel releases the lock of a dead holder
        proc.wait(timeout=30)
        Historian(db).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_second_writer_in_the_same_process_refuses_until_the_first_closes(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    first = Historian(db)
    with pytest.raises(HistorianError, match=rf"pid {os.getpid()}"):
        Historian(db)
    first.close()
    Historian(db).close()


# -- file modes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_files_are_private_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    db = tmp_path / "reactor.db"
    old = os.umask(0)
    try:
        h = Historian(db, file_mode=mode)
        h.record("temp_c", 37.0, 1.0)
        h.flush()
        files = [db, tmp_path / "reactor.db-wal", tmp_path / "reactor.db-shm"]
        files += [tmp_path / "reactor.db.lock", tmp_path / "reactor.db.spill"]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
        h.close()
    finally:
        os.umask(old)
    assert modes == {p.name: mode for p in files}


def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    Historian(db).close()
    os.chmod(db, 0o644)  # as main created it
    Historian(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


# -- descriptors -----------------------------------------------------------------------------------


class _TrendTarget:
    def __init__(self, h: Historian) -> None:
        self.h = h

    def trend(self, tag: str, seconds: float) -> list[float]:
        return self.h.trend(tag, seconds).values.tolist()


def test_trend_sessions_do_not_leak_descriptors(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    h = Historian(db, commit_interval_s=NEVER_S)
    for i in range(100):
        h.record("temp_c", 37.0, float(i))
    h.flush()
    server = RpcServer(tmp_path / "r.sock", _TrendTarget(h), ["trend"]).start()
    try:

        def session() -> None:
            client = RpcClient(tmp_path / "r.sock")
            try:
                assert len(client.call("trend", tag="temp_c", seconds=10.0)) == 11
            finally:
                client.close()

        session()
        before = fd_count()
        for _ in range(150):  # main: +2 descriptors per session (the db and its WAL)
            session()
        # server threads may still be closing their last socket
        after = fd_count()
        assert after - before <= 2 * MAX_IDLE_CONNECTIONS + 4
        assert h.n_open_connections <= MAX_IDLE_CONNECTIONS
    finally:
        server.close()
        h.close()


def test_reader_threads_share_a_bounded_pool(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    with Historian(db) as h:
        h.record("ph", 7.0, 1.0)
        h.flush()
        with HistoryReader(db) as r:
            threads = [threading.Thread(target=lambda: r.latest()) for _ in range(200)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert r.n_open_connections <= MAX_IDLE_CONNECTIONS


# -- a file size limit (RLIMIT_FSIZE): a real write failure without mounting anything --------------

FSIZE_CHILD = """
import json, os, resource, signal, sys
from edgectl.historian import Historian

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes beyond the limit fail with EFBIG
h = Historian(sys.argv[1], commit_interval_s=3600, max_pending=1000, spill_max_bytes=256 << 10)
h.start_run(time_s=0.0)
h.flush()
resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 10, 512 << 10))
n = 0
while h.health().ok and n < 200_000:
    for _ in range(100):
        h.record_scan(float(n), {"temp_c": 37.0, "ph": 7.0})
        n += 1
    h.flush(check=False)
for _ in range(500):  # the scan goes on after the failure
    h.record_scan(float(n), {"temp_c": 37.0, "ph": 7.0})
    n += 1
    if n % 100 == 0:
        h.flush(check=False)
during = h.flush(check=False)
final = h.close("normal", time_s=float(n))
print(json.dumps({"n": n, "during": during.as_dict(), "final": final.as_dict()}))
"""


def test_a_file_size_limit_degrades_and_nothing_is_lost(tmp_path: Path) -> None:
    db = tmp_path / "reactor.db"
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD, str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    during, final = result["during"], result["final"]
    assert during["state"] == "degraded", during
    assert during["last_error"], during
    assert (final["n_dropped"], final["n_dropped_records"], final["n_pending"]) == (0, 0, 0)
    assert final["n_spilled"] > 0
    with Historian(db) as again:  # no limit here: the spill file is replayed
        assert again.health().state == "ok"
        assert again.count("sample") == 2 * result["n"]
        assert again.runs()[-1].stop_reason == "normal"
