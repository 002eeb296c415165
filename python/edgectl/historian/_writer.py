"""The historian's batching writer thread: bounded memory, spill file, health, retries.

Callers (the scan thread) append tuples to :attr:`BatchWriter.queue` without a lock and without
touching the disk; this thread commits everything queued every ``commit_interval_s`` in one
transaction. When a commit fails (disk full, read-only file system, database locked, I/O error):

* the items stay queued and the commit is retried with exponential backoff (``commit_interval_s``
  doubling up to :data:`MAX_BACKOFF_S`; ``flush()`` retries at once);
* memory stays bounded: items beyond a tenth of ``max_pending`` move to the spill file (see
  :mod:`edgectl.historian.spill`), oldest first; when the spill file is full or cannot be
  written, the queue grows to ``max_pending`` and the caller then drops new *samples*, counted
  exactly (events, alarms, tags and states are kept up to twice ``max_pending``, then counted);
* a burst that fills a quarter of ``max_pending`` between two commits wakes the writer at once
  instead of waiting out the commit interval;
* any loss, even with a healthy disk that only could not keep up with a burst, turns the health
  ``failed`` at once (on the caller's thread) and keeps it so until ``LOSS_HOLD_S`` have passed
  without a new loss, so a controller polling it raises its alarm however short the burst;
* :meth:`BatchWriter.health` says ``degraded`` (nothing lost) or ``failed`` (items lost), the
  ``on_health_change`` callback is called on each change of state, and an event
  ``historian.health`` is queued, so it is in the history once writes succeed again.

When commits succeed again the spill file is replayed first, then memory, in order.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from edgectl.historian._db import ROLLUP_UPSERT
from edgectl.historian.records import HistorianHealth
from edgectl.historian.spill import SpillFile

__all__ = ["ALARM", "EVENT", "MAX_BACKOFF_S", "RUN_STOP", "SAMPLE", "STATE", "TAG", "BatchWriter"]

log = logging.getLogger("edgectl.historian")

# Queue item kinds (first element of each queued tuple).
SAMPLE: Final = 0
EVENT: Final = 1
ALARM: Final = 2
STATE: Final = 3
TAG: Final = 4
RUN_STOP: Final = 5
# Upper bound of items per transaction when a backlog has built up.
_MAX_BATCH: Final = 200_000
# Items per transaction when the spill file is replayed.
_SPILL_CHUNK: Final = 50_000
# Longest wait between two commit attempts while commits fail.
MAX_BACKOFF_S: Final = 30.0
# The writer's busy timeout: short, since it retries anyway and must keep spilling.
WRITER_BUSY_TIMEOUT_MS: Final = 1000
# Below this much room the spill file counts as full.
_SPILL_MIN_FREE_BYTES: Final = 4096
# After a loss the health stays ``failed`` until this many wall seconds pass without another.
LOSS_HOLD_S: Final = 5.0

HealthCallback = Callable[[HistorianHealth], None]


class BatchWriter:
    """Owns the write connection, the queue, the spill file and the writer thread.

    Parameters
    ----------
    path
        The database (for messages).
    con
        The write connection (``synchronous`` as configured); owned from now on.
    commit_interval_s, max_pending
        See :class:`~edgectl.historian.Historian`.
    clock
        Time of the events the writer adds (overflow, health).
    run_id
        Callable returning the current run's row id (events carry it).
    spill
        The spill file, or None when it could not be opened (``spill_error`` says why).
    on_health_change
        Called on the writer thread with the new :class:`HistorianHealth` at each change of
        state; must return quickly (set a flag, queue an alarm).
    """

    def __init__(
        self,
        path: Path,
        con: sqlite3.Connection,
        *,
        commit_interval_s: float,
        max_pending: int,
        clock: Callable[[], float],
        run_id: Callable[[], int | None],
        spill: SpillFile | None,
        spill_error: str | None,
        on_health_change: HealthCallback | None,
    ) -> None:
        self._path = path
        self._con = con
        con.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")
        self._interval_s = commit_interval_s
        self.max_pending = max_pending
        self._clock = clock
        self._run_id = run_id
        self.spill = spill
        self._spill_error = spill_error
        self.on_health_change = on_health_change
        # Caller side: appended to without a lock (deque.append is atomic).
        self.queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self.n_appended = 0
        self.n_refused_samples = 0  # counted by callers when the queue is full
        self.n_refused_records = 0
        # Writer side.
        self.tag_ids: dict[str, int] = {
            name: tag_id for tag_id, name in con.execute("SELECT id, name FROM tag")
        }
        self.n_lost_samples = 0  # lost at stop: no database, no spill file
        self.n_lost_records = 0
        self.n_committed = 0
        self.n_commits = 0
        self._n_lost_reported = 0
        # losses up to this count are over (LOSS_HOLD_S without a new one); beyond it: failed
        self._n_lost_cleared = 0
        self._n_lost_seen = 0
        self._last_loss_mono = 0.0
        # a caller's append that makes the queue this long wakes the writer before its interval
        self.wake_at = max(1, max_pending // 4)
        self._wake_requested = False
        self.last_commit_s = 0.0
        self.max_commit_s = 0.0
        self.last_error: str | None = None
        self.n_failures = 0
        self._since_s: float | None = None
        self._lost_at_episode_start = 0
        self._next_retry = 0.0
        self._state = "ok"
        self._cv = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._stopping = False
        self._thread = threading.Thread(
            target=self._loop, name=f"historian-writer:{path.name}", daemon=True
        )

    # -- control (any thread) ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Ask for a commit now without waiting for it (a caller whose burst fills the queue)."""
        with self._cv:
            self._wake_requested = True
            self._cv.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def n_lost(self) -> int:
        """Items lost so far (refused by callers or lost at stop)."""
        return (
            self.n_refused_samples
            + self.n_refused_records
            + self.n_lost_samples
            + self.n_lost_records
        )

    def health(self) -> HistorianHealth:
        """The current status; cheap, no lock, no disk access (safe on the scan thread)."""
        spill = self.spill
        n_spilled = spill.n_items if spill is not None else 0
        failing = self.n_failures > 0
        n_lost = self.n_lost()
        if n_lost > self._n_lost_cleared or (
            failing and (n_lost > self._lost_at_episode_start or not self._spill_usable())
        ):
            state = "failed"
        elif failing or n_spilled:
            state = "degraded"
        else:
            state = "ok"
        return HistorianHealth(
            state=state,  # type: ignore[arg-type]
            n_pending=len(self.queue),
            n_spilled=n_spilled,
            n_dropped=self.n_refused_samples + self.n_lost_samples,
            n_dropped_records=self.n_refused_records + self.n_lost_records,
            n_failures=self.n_failures,
            last_error=self.last_error if failing else (self.last_error or self._spill_error),
            since_s=self._since_s,
            spill_path=str(spill.path) if spill is not None else None,
            spill_free_bytes=spill.free_bytes if spill is not None else 0,
        )

    def _spill_usable(self) -> bool:
        spill = self.spill
        return (
            spill is not None
            and self._spill_error is None
            and spill.free_bytes >= _SPILL_MIN_FREE_BYTES
        )

    def flush(self, timeout_s: float) -> bool:
        """Ask for a commit attempt now and wait for it; False on timeout."""
        with self._cv:
            self._flush_requested += 1
            generation = self._flush_requested
            self._cv.notify_all()
            return self._cv.wait_for(
                lambda: self._flush_done >= generation or not self._thread.is_alive(), timeout_s
            )

    def stop(self) -> None:
        """Last commit attempt; what cannot be committed goes to the spill file or is counted
        as lost. Then the thread ends."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join()

    def close(self) -> None:
        """Fold the WAL into the database and close the connection and the spill file."""
        # A reader holding a snapshot can prevent the checkpoint; the WAL is folded in later.
        with contextlib.suppress(sqlite3.Error):
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._con.close()
        if self.spill is not None:
            with contextlib.suppress(OSError):
                self.spill.close(remove_if_empty=True)

    # -- the thread ------------------------------------------------------------------------------

    def _loop(self) -> None:
        next_wake = time.monotonic() + self._interval_s
        while True:
            with self._cv:
                self._cv.wait_for(
                    lambda: (
                        self._stopping
                        or self._wake_requested
                        or self._flush_requested > self._flush_done
                    ),
                    max(0.0, next_wake - time.monotonic()),
                )
                self._wake_requested = False
                generation = self._flush_requested
                stopping = self._stopping
                asked = generation > self._flush_done
            next_wake = time.monotonic() + self._interval_s
            try:
                self._step(stopping=stopping, asked=asked)
            except Exception as exc:  # a bug here must not end the writer: note it, go on
                self._failed(f"{type(exc).__name__}: {exc}")
                log.exception("%s: historian writer step failed", self._path)
            with self._cv:
                self._flush_done = generation
                self._cv.notify_all()
            if stopping:
                return

    def _step(self, *, stopping: bool, asked: bool) -> None:
        now = time.monotonic()
        if self.n_failures == 0 or asked or stopping or now >= self._next_retry:
            if self._commit_all():
                self._succeeded()
            else:
                backoff = min(self._interval_s * 2.0 ** min(self.n_failures, 16), MAX_BACKOFF_S)
                self._next_retry = now + max(backoff, self._interval_s)
        if stopping:  # the health event goes with the rest to the spill file
            self._check_health()
        if self.n_failures:
            self._relieve_memory(everything=stopping)
        self._check_health()

    def _failed(self, error: str) -> None:
        if self.n_failures == 0:
            self._since_s = time.time()
            self._lost_at_episode_start = self.n_lost()
        self.n_failures += 1
        self.last_error = error

    def _succeeded(self) -> None:
        self.n_failures = 0
        self._since_s = None
        self.last_error = None

    def _check_health(self) -> None:
        n_lost, now = self.n_lost(), time.monotonic()
        if n_lost > self._n_lost_seen:
            self._n_lost_seen, self._last_loss_mono = n_lost, now
        elif n_lost > self._n_lost_cleared and now - self._last_loss_mono >= LOSS_HOLD_S:
            self._n_lost_cleared = n_lost
        health = self.health()
        if health.state == self._state:
            return
        before, self._state = self._state, health.state
        message = f"{health.describe()} (was {before})"
        self.queue.append(
            (
                EVENT,
                self._run_id(),
                self._clock(),
                "historian.health",
                "historian",
                message,
                json.dumps(health.as_dict(), sort_keys=True, separators=(",", ":")),
            )
        )
        if health.state == "ok":
            log.warning("%s: %s", self._path, message)
        else:
            log.error("%s: %s", self._path, message)
        callback = self.on_health_change
        if callback is not None:
            try:
                callback(health)
            except Exception:  # the callback's bug must not stop the writer
                log.exception("%s: on_health_change callback failed", self._path)

    def _relieve_memory(self, *, everything: bool) -> None:
        """Move queued items beyond a tenth of ``max_pending`` (all, at stop) to the spill file;
        at stop, count what neither the database nor the spill file took as lost."""
        keep = 0 if everything else self.max_pending // 10
        excess = len(self.queue) - keep
        if excess <= 0:
            return
        items = [self.queue.popleft() for _ in range(excess)]
        written = 0
        if self.spill is not None:
            try:
                written = self.spill.append(items)
                self._spill_error = None
            except OSError as exc:
                self._spill_error = f"spill file {self.spill.path}: {exc}"
        rest = items[written:]
        if not rest:
            return
        if everything:
            n_samples = sum(1 for item in rest if item[0] == SAMPLE)
            self.n_lost_samples += n_samples
            self.n_lost_records += len(rest) - n_samples
        else:
            self.queue.extendleft(reversed(rest))

    def _commit_all(self) -> bool:
        spill = self.spill
        while spill is not None and spill.n_items:
            items, offset = spill.read_chunk(_SPILL_CHUNK)
            if not items:  # the counts disagree with the file: nothing left to replay
                spill.committed(offset, spill.n_items)
                break
            if not self._commit_batch(items, spill_position=spill.position(offset)):
                return False
            # Once all is replayed the file starts a new generation: meta.spill then names the
            # old one, which a reopened spill file ignores.
            spill.committed(offset, len(items))
        while self.queue or self.n_lost() > self._n_lost_reported:
            n = min(len(self.queue), _MAX_BATCH)
            items = [self.queue.popleft() for _ in range(n)]
            if not self._commit_batch(items):
                self.queue.extendleft(reversed(items))
                return False
        return True

    def _commit_batch(
        self, items: list[tuple[Any, ...]], spill_position: str | None = None
    ) -> bool:
        con = self._con
        new_tags: list[str] = []
        lost = self.n_lost()
        start = time.perf_counter()
        try:
            con.execute("BEGIN")
            samples: list[tuple[Any, ...]] = []
            events: list[tuple[Any, ...]] = []
            alarms: list[tuple[Any, ...]] = []
            states: dict[str, tuple[Any, ...]] = {}
            stops: list[tuple[Any, ...]] = []
            tag_ids = self.tag_ids
            for item in items:
                kind = item[0]
                if kind == SAMPLE:
                    name = item[1]
                    tag_id = tag_ids.get(name)
                    if tag_id is None:
                        tag_id = self._insert_tag(con, name, None, None)
                        new_tags.append(name)
                    samples.append((tag_id, item[2], item[3], item[4]))
                elif kind == EVENT:
                    events.append(item[1:])
                elif kind == ALARM:
                    alarms.append(item[1:])
                elif kind == STATE:
                    states[item[1]] = item[1:]
                elif kind == RUN_STOP:
                    stops.append(item[1:])
                else:
                    if item[1] not in tag_ids:
                        new_tags.append(item[1])
                    self._insert_tag(con, item[1], item[2], item[3])
            if lost > self._n_lost_reported:
                events.append(
                    (
                        self._run_id(),
                        self._clock(),
                        "historian.overflow",
                        "historian",
                        f"{lost - self._n_lost_reported} items dropped: the disk did not keep "
                        "up (max_pending reached, spill file full or unwritable)",
                        None,
                    )
                )
            if samples:
                last_id = con.execute("SELECT COALESCE(MAX(id), 0) FROM sample").fetchone()[0]
                con.executemany(
                    "INSERT INTO sample (tag_id, t, value, quality) VALUES (?, ?, ?, ?)", samples
                )
                con.execute(ROLLUP_UPSERT, (last_id,))  # the same commit: never behind
            con.executemany(
                "INSERT INTO event (run_id, t, kind, source, message, details) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                events,
            )
            con.executemany(
                "INSERT INTO alarm (run_id, t, name, transition, severity, message, tag, value, "
                "actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                alarms,
            )
            con.executemany(
                "INSERT INTO state (name, t, kind, data, version) VALUES (?, ?, ?, ?, 1) "
                "ON CONFLICT(name) DO UPDATE SET t = excluded.t, kind = excluded.kind, "
                "data = excluded.data, version = state.version + 1",
                list(states.values()),
            )
            # The run's stop, with the audit head at that moment (the genesis value if empty).
            con.executemany(
                "UPDATE run SET stopped_s = ?, stop_reason = ?, audit_head = coalesce("
                "(SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), "
                "(SELECT value FROM meta WHERE key = 'audit_genesis')) WHERE id = ?",
                [(t, reason, run_id) for run_id, t, reason in stops],
            )
            if spill_position is not None:
                con.execute(
                    "INSERT INTO meta (key, value) VALUES ('spill', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (spill_position,),
                )
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if con.in_transaction:
                    con.execute("ROLLBACK")
            for name in new_tags:
                self.tag_ids.pop(name, None)
            self._failed(f"{type(exc).__name__}: {exc}")
            return False
        elapsed = time.perf_counter() - start
        self._n_lost_reported = lost
        self.n_committed += len(items)
        self.n_commits += 1
        self.last_commit_s = elapsed
        self.max_commit_s = max(self.max_commit_s, elapsed)
        return True

    def _insert_tag(
        self, con: sqlite3.Connection, name: str, unit: str | None, description: str | None
    ) -> int:
        if unit is None:
            con.execute("INSERT OR IGNORE INTO tag (name) VALUES (?)", (name,))
        else:
            con.execute(
                "INSERT INTO tag (name, unit, description) VALUES (?, ?, ?) ON CONFLICT(name) "
                "DO UPDATE SET unit = excluded.unit, description = excluded.description",
                (name, unit, description),
            )
        tag_id = int(con.execute("SELECT id FROM tag WHERE name = ?", (name,)).fetchone()[0])
        self.tag_ids[name] = tag_id
        return tag_id
