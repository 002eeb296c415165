"""Reading and writing a historian database.

:class:`HistoryReader` answers queries (latest values, ranges, trends, events, alarms,
statistics, state snapshots). :class:`Historian` adds the writer used by a running controller:
callers on the scan thread append samples, events, alarms and state snapshots to an in-memory
queue (a ``collections.deque``: no lock, no disk access, no fsync on the scan thread) and a
writer thread commits everything queued every ``commit_interval_s`` in one transaction.
``flush()`` commits now and waits; ``close()`` commits everything and stops the writer.

Guarantees:

* a process killed at any moment (kill -9) loses at most what was appended after the last
  commit — at most ``commit_interval_s`` of data plus the commit in progress — and the file is
  never corrupted (SQLite WAL: a transaction is in the file whole or not at all);
* bad input (unknown quality code, non-finite time, a value that is not a number, a bad tag
  name) raises :class:`~edgectl.errors.InvalidInputError` in the caller, before anything is
  queued, so nothing already recorded or queued is affected;
* a non-finite *value* (NaN, ±inf) is a reading, not a programming error: it is recorded with
  value NULL (read back as NaN) and its quality lowered to ``BAD`` when ``GOOD`` or
  ``UNCERTAIN`` was claimed (``STALE`` is kept), so the gap is visible in the history;
* readers (other threads, other processes) see committed data only, with snapshot isolation,
  and never block the writer.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from edgectl.errors import InvalidInputError
from edgectl.historian._db import (
    HistorianError,
    Quality,
    check_quality,
    check_tag_name,
    check_text,
    check_time,
    check_value,
    connect,
)
from edgectl.historian.audit import GENESIS_HASH, AuditTrail
from edgectl.historian.records import (
    AlarmTransition,
    Event,
    RunInfo,
    Sample,
    SampleSeries,
    TagInfo,
    TagStats,
    WriterStats,
)
from edgectl.historian.settings import HistorianSettings

__all__ = ["ALARM_SEVERITIES", "ALARM_TRANSITIONS", "Historian", "HistoryReader"]

ALARM_TRANSITIONS: Final = ("raise", "clear", "ack")
# ISA-18.2 style priorities, plus "info" for alarms that only inform.
ALARM_SEVERITIES: Final = ("info", "low", "medium", "high", "critical")

# Queue item kinds (first element of each queued tuple).
_SAMPLE: Final = 0
_EVENT: Final = 1
_ALARM: Final = 2
_STATE: Final = 3
_TAG: Final = 4
# Upper bound of items per transaction when a backlog has built up.
_MAX_BATCH: Final = 200_000

_BAD: Final = Quality.BAD
_GOOD_OR_UNCERTAIN: Final = frozenset((Quality.GOOD, Quality.UNCERTAIN))
_isfinite = math.isfinite


def _range_clause(
    column: str, start_s: float | None, end_s: float | None
) -> tuple[str, list[float]]:
    clauses, params = [], []
    if start_s is not None:
        clauses.append(f"{column} >= ?")
        params.append(check_time(start_s, "query start_s"))
    if end_s is not None:
        clauses.append(f"{column} <= ?")
        params.append(check_time(end_s, "query end_s"))
    return " AND ".join(clauses), params


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class HistoryReader:
    """Queries on a historian database; safe to use from several threads at once.

    Each thread gets its own SQLite connection (WAL readers never block the writer).

    Parameters
    ----------
    path
        The database file (``reactor.db``).

    Raises
    ------
    HistorianError
        Missing file, not an edgectl historian, newer schema.

    Examples
    --------
    >>> r = HistoryReader("run.db")                    # doctest: +SKIP
    >>> r.latest()["temp_c"].value                     # doctest: +SKIP
    37.02
    >>> r.stats("temp_c", start_s=t0 + 3600).max       # doctest: +SKIP
    37.08
    """

    _readonly: bool = True

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._con_lock = threading.Lock()
        self._closed = False
        self._audit: AuditTrail | None = None
        # Opening once here reports a missing or foreign file at construction.
        self._con()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- connections -------------------------------------------------------------------------

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            if self._closed:
                raise HistorianError(f"{self._path}: historian is closed")
            con = connect(self._path, readonly=self._readonly, genesis_hash=GENESIS_HASH)
            self._local.con = con
            with self._con_lock:
                self._connections.append(con)
        elif self._closed:
            raise HistorianError(f"{self._path}: historian is closed")
        return con

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._con().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistorianError(f"{self._path}: query failed: {exc}") from exc

    def _close_readers(self) -> None:
        with self._con_lock:
            for con in self._connections:
                con.close()
            self._connections.clear()
        self._local = threading.local()

    def close(self) -> None:
        """Close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._audit is not None:
            self._audit.close()
        self._close_readers()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- audit -------------------------------------------------------------------------------

    @property
    def audit(self) -> AuditTrail:
        """The database's audit trail (read-only through a reader)."""
        if self._audit is None:
            if self._closed:
                raise HistorianError(f"{self._path}: historian is closed")
            self._audit = AuditTrail.open(self._path, readonly=True)
        return self._audit

    # -- tags and samples --------------------------------------------------------------------

    def tags(self) -> list[TagInfo]:
        """Every tag, by name."""
        rows = self._query("SELECT name, unit, description FROM tag ORDER BY name")
        return [TagInfo(*r) for r in rows]

    def _tag_id(self, tag: str) -> int | None:
        rows = self._query("SELECT id FROM tag WHERE name = ?", (tag,))
        if rows:
            return int(rows[0][0])
        if self._is_known_pending(tag):
            return None
        known = ", ".join(t.name for t in self.tags()[:20]) or "none yet"
        raise InvalidInputError(f"{self._path}: unknown tag {tag!r} (known: {known})")

    def _is_known_pending(self, tag: str) -> bool:
        return False

    def latest(self, tags: Iterable[str] | None = None) -> dict[str, Sample]:
        """The most recent committed sample of each tag (of ``tags``, or of every tag)."""
        rows = self._query(
            "SELECT tag.name, s.t, s.value, s.quality FROM tag JOIN sample AS s ON s.id = "
            "(SELECT id FROM sample WHERE tag_id = tag.id ORDER BY t DESC, id DESC LIMIT 1) "
            "ORDER BY tag.name"
        )
        wanted = None if tags is None else set(tags)
        return {
            name: Sample(name, t, math.nan if v is None else v, Quality(q))
            for name, t, v, q in rows
            if wanted is None or name in wanted
        }

    def samples(
        self, tag: str, start_s: float | None = None, end_s: float | None = None
    ) -> SampleSeries:
        """Samples of ``tag`` with ``start_s <= time_s <= end_s`` (None: unbounded), by time.

        Raises
        ------
        InvalidInputError
            Unknown tag (the message lists known ones), non-finite bounds.
        """
        check_tag_name(tag)
        clause, params = _range_clause("t", start_s, end_s)
        tag_id = self._tag_id(tag)
        if tag_id is None:
            rows: list[tuple[Any, ...]] = []
        else:
            where = f" AND {clause}" if clause else ""
            rows = self._query(
                f"SELECT t, value, quality FROM sample WHERE tag_id = ?{where} ORDER BY t, id",
                [tag_id, *params],
            )
        n = len(rows)
        times = np.fromiter((r[0] for r in rows), dtype=np.float64, count=n)
        values = np.fromiter(
            (math.nan if r[1] is None else r[1] for r in rows), dtype=np.float64, count=n
        )
        quality = np.fromiter((r[2] for r in rows), dtype=np.int8, count=n)
        return SampleSeries(tag, times, values, quality)

    def trend(self, tag: str, last_s: float, *, now_s: float | None = None) -> SampleSeries:
        """Samples of ``tag`` in the last ``last_s`` seconds before ``now_s``.

        ``now_s`` defaults to the time of the tag's latest sample (so the trend works on a
        simulated time base as on Unix time).
        """
        span = check_time(last_s, "trend last_s")
        if span <= 0:
            raise InvalidInputError(f"trend last_s must be > 0, got {last_s}")
        if now_s is None:
            latest = self.latest([tag]).get(tag)
            if latest is None:
                return self.samples(tag, 0.0, -1.0)
            now_s = latest.time_s
        now = check_time(now_s, "trend now_s")
        return self.samples(tag, now - span, now)

    def stats(self, tag: str, start_s: float | None = None, end_s: float | None = None) -> TagStats:
        """min/max/mean/std of ``tag``'s GOOD samples in [start_s, end_s]; see :class:`TagStats`.

        Computed in SQLite (two passes, one read snapshot): no sample is loaded into Python.
        """
        check_tag_name(tag)
        clause, params = _range_clause("t", start_s, end_s)
        tag_id = self._tag_id(tag)
        nan = math.nan
        if tag_id is None:
            return TagStats(tag, 0, 0, nan, nan, nan, nan, nan, nan)
        where = "tag_id = ?" + (f" AND {clause}" if clause else "")
        good = f"{where} AND quality = 0 AND value IS NOT NULL"
        con = self._con()
        try:
            con.execute("BEGIN")
            try:
                n, first, last = con.execute(
                    f"SELECT count(*), min(t), max(t) FROM sample WHERE {where}",
                    [tag_id, *params],
                ).fetchone()
                n_good, lo, hi, mean = con.execute(
                    f"SELECT count(*), min(value), max(value), avg(value) FROM sample WHERE {good}",
                    [tag_id, *params],
                ).fetchone()
                var = con.execute(
                    f"SELECT avg((value - ?) * (value - ?)) FROM sample WHERE {good}",
                    [mean, mean, tag_id, *params],
                ).fetchone()[0]
            finally:
                con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise HistorianError(f"{self._path}: statistics query failed: {exc}") from exc

        def f(x: float | None) -> float:
            return nan if x is None else float(x)

        return TagStats(
            tag=tag,
            n_samples=int(n),
            n_good=int(n_good),
            min=f(lo),
            max=f(hi),
            mean=f(mean),
            std=math.sqrt(var) if var is not None else nan,
            first_time_s=f(first),
            last_time_s=f(last),
        )

    def fraction_within(
        self,
        tag: str,
        low: float,
        high: float,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> float:
        """Fraction of ``tag``'s GOOD samples in [start_s, end_s] with low <= value <= high.

        NaN when there is no GOOD sample. Used by run summaries ("T within ±0.1 °C").
        """
        check_tag_name(tag)
        lo = check_value(low, "fraction_within low")
        hi = check_value(high, "fraction_within high")
        clause, params = _range_clause("t", start_s, end_s)
        tag_id = self._tag_id(tag)
        if tag_id is None:
            return math.nan
        where = "tag_id = ? AND quality = 0 AND value IS NOT NULL" + (
            f" AND {clause}" if clause else ""
        )
        inside, total = self._query(
            f"SELECT coalesce(sum(value BETWEEN ? AND ?), 0), count(*) FROM sample WHERE {where}",
            [lo, hi, tag_id, *params],
        )[0]
        return math.nan if total == 0 else inside / total

    # -- events, alarms, runs, state -----------------------------------------------------------

    def events(
        self,
        start_s: float | None = None,
        end_s: float | None = None,
        *,
        kind: str | None = None,
        source: str | None = None,
    ) -> list[Event]:
        """Events in [start_s, end_s], optionally of one ``kind`` or ``source``, by time."""
        clause, params = _range_clause("e.t", start_s, end_s)
        clauses = [clause] if clause else []
        if kind is not None:
            clauses.append("e.kind = ?")
            params.append(kind)  # type: ignore[arg-type]
        if source is not None:
            clauses.append("e.source = ?")
            params.append(source)  # type: ignore[arg-type]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "SELECT e.id, e.t, e.kind, e.source, e.message, e.details, run.run_uid FROM event AS e "
            f"LEFT JOIN run ON run.id = e.run_id{where} ORDER BY e.t, e.id",
            params,
        )
        return [Event(i, t, k, s, m, _json_or_none(d), r) for i, t, k, s, m, d, r in rows]

    def alarms(
        self,
        start_s: float | None = None,
        end_s: float | None = None,
        *,
        name: str | None = None,
    ) -> list[AlarmTransition]:
        """Alarm transitions in [start_s, end_s], optionally of one alarm, by time."""
        clause, params = _range_clause("a.t", start_s, end_s)
        clauses = [clause] if clause else []
        if name is not None:
            clauses.append("a.name = ?")
            params.append(name)  # type: ignore[arg-type]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "SELECT a.id, a.t, a.name, a.transition, a.severity, a.message, a.tag, a.value, "
            "a.actor, run.run_uid FROM alarm AS a LEFT JOIN run ON run.id = a.run_id"
            f"{where} ORDER BY a.t, a.id",
            params,
        )
        return [AlarmTransition(*r) for r in rows]

    def active_alarms(self) -> dict[str, AlarmTransition]:
        """Alarms whose last raise has not been cleared, by name (the raise transition)."""
        active: dict[str, AlarmTransition] = {}
        for a in self.alarms():
            if a.transition == "raise":
                active[a.name] = a
            elif a.transition == "clear":
                active.pop(a.name, None)
        return active

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        rows = self._query(
            "SELECT run_uid, config_hash, config_path, started_s, stopped_s, stop_reason, "
            "resumed_from, edgectl_version, hostname, pid, audit_head FROM run ORDER BY id"
        )
        return [RunInfo(*r) for r in rows]

    def load_state(self, name: str, default: Any = None) -> Any:
        """The latest snapshot saved under ``name`` (bytes or the decoded JSON), or ``default``."""
        check_text(name, "state name", "load_state")
        rows = self._query("SELECT kind, data FROM state WHERE name = ?", (name,))
        if not rows:
            return default
        kind, data = rows[0]
        return _decode_state(kind, data)

    def state_names(self) -> list[str]:
        """Names with a committed state snapshot."""
        return [r[0] for r in self._query("SELECT name FROM state ORDER BY name")]

    def count(self, table: str) -> int:
        """Rows in one table: ``sample``, ``event``, ``alarm``, ``audit``, ``tag``, ``run``."""
        if table not in ("sample", "event", "alarm", "audit", "tag", "run", "state"):
            raise InvalidInputError(f"count: unknown table {table!r}")
        return int(self._query(f"SELECT count(*) FROM {table}")[0][0])


def _encode_state(value: Any, name: str) -> tuple[str, bytes]:
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes", bytes(value)
    try:
        return "json", json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"save_state({name!r}): value is neither bytes nor JSON-serialisable: {exc}"
        ) from exc


def _decode_state(kind: str, data: bytes) -> Any:
    if kind == "bytes":
        return bytes(data)
    return json.loads(bytes(data).decode("utf-8"))


class Historian(HistoryReader):
    """The historian of a running controller: batched writes, durable audit trail, queries.

    Parameters
    ----------
    path
        The database file; created with the schema when missing.
    commit_interval_s
        How often the writer thread commits what was appended (seconds, > 0). A kill -9 loses
        at most this much data.
    synchronous
        ``"NORMAL"`` (default) or ``"FULL"`` for the sample writer; see
        :mod:`edgectl.historian._db` for the trade-off. Audit records always use FULL.
    max_pending
        Items held in memory when the disk cannot keep up; beyond it new items are dropped and
        counted (``writer_stats().n_dropped``, and an ``historian.overflow`` event), so the scan
        never waits for the disk.
    clock
        Wall clock (seconds) for events, alarms and audit records given without ``time_s``.

    Examples
    --------
    >>> with Historian("run.db", commit_interval_s=1.0) as h:     # doctest: +SKIP
    ...     run = h.start_run(config_hash="sha256:…")
    ...     h.record_scan(t, {"temp_c": 37.01, "ph": 7.02})
    ...     h.audit.record(actor="alice", action="set", target="loops.ph.kp",
    ...                    old=0.5, new=0.8, reason="oscillation")
    """

    _readonly = False

    def __init__(
        self,
        path: str | Path,
        *,
        commit_interval_s: float = 1.0,
        synchronous: str = "NORMAL",
        max_pending: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        interval = check_time(commit_interval_s, "Historian commit_interval_s")
        if interval <= 0:
            raise InvalidInputError(f"Historian commit_interval_s must be > 0, got {interval}")
        if not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidInputError(
                f"Historian max_pending must be an int >= 1, got {max_pending!r}"
            )
        self._path = Path(path)
        self._commit_interval_s = interval
        self._clock = clock
        self._max_pending = max_pending
        self._run_id: int | None = None
        self._run_uid: str | None = None
        # The audit/control connection (synchronous=FULL) creates the file and schema.
        ctl = connect(self._path, synchronous="FULL", create=True, genesis_hash=GENESIS_HASH)
        self._audit_w = AuditTrail(ctl, path=self._path, clock=clock, run_uid=lambda: self._run_uid)
        self._ctl = ctl
        try:
            super().__init__(self._path)
            self._wcon = connect(self._path, synchronous=synchronous, genesis_hash=GENESIS_HASH)
        except BaseException:
            self._audit_w.close()
            self._close_readers()
            raise
        self._audit = self._audit_w
        # Caller side (scan thread): the queue and caches touched without a lock.
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._valid_tags: set[str] = set()
        self._states: dict[str, tuple[str, bytes]] = {}
        self._n_appended = 0
        self._n_dropped = 0
        # Writer side.
        self._tag_ids: dict[str, int] = {
            name: tag_id for tag_id, name in self._wcon.execute("SELECT id, name FROM tag")
        }
        self._n_committed = 0
        self._n_commits = 0
        self._n_dropped_reported = 0
        self._last_commit_s = 0.0
        self._max_commit_s = 0.0
        self._last_error: str | None = None
        self._cv = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._stopping = False
        self._writer = threading.Thread(
            target=self._writer_loop, name=f"historian-writer:{self._path.name}", daemon=True
        )
        self._writer.start()
        # A Historian left open at interpreter exit still commits what it holds.
        atexit.register(self._close_at_exit)

    @classmethod
    def from_settings(
        cls,
        settings: HistorianSettings,
        *,
        path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Historian:
        """Open the historian described by a config's ``[historian]`` table (``path`` overrides
        ``settings.path``, as ``edgectl run --db`` does)."""
        return cls(
            settings.path if path is None else path,
            commit_interval_s=settings.commit_interval_s,
            synchronous=settings.synchronous,
            max_pending=settings.max_pending,
            clock=clock,
        )

    # -- runs ----------------------------------------------------------------------------------

    @property
    def run_uid(self) -> str | None:
        """The current run's id (None before :meth:`start_run`)."""
        return self._run_uid

    @property
    def commit_interval_s(self) -> float:
        """Seconds between the writer's commits."""
        return self._commit_interval_s

    def start_run(
        self,
        *,
        config_hash: str | None = None,
        config_path: str | None = None,
        resumed_from: str | None = None,
        time_s: float | None = None,
    ) -> str:
        """Record the start of a run (committed durably) and return its id (a UUID hex).

        Events, alarms and audit records appended afterwards carry this run.
        """
        from edgectl import __version__

        if self._run_uid is not None:
            raise InvalidInputError(f"{self._path}: run {self._run_uid} is already started")
        t = check_time(self._clock() if time_s is None else time_s, "start_run")
        uid = uuid.uuid4().hex
        with self._audit_w._lock:
            try:
                cur = self._ctl.execute(
                    "INSERT INTO run (run_uid, config_hash, config_path, started_s, resumed_from,"
                    " edgectl_version, hostname, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        config_hash,
                        config_path,
                        t,
                        resumed_from,
                        __version__,
                        socket.gethostname(),
                        os.getpid(),
                    ),
                )
            except sqlite3.Error as exc:
                raise HistorianError(f"{self._path}: cannot record the run start: {exc}") from exc
        self._run_id = int(cur.lastrowid or 0)
        self._run_uid = uid
        self.record_event(
            "run.start",
            f"run {uid} started",
            source="historian",
            time_s=t,
            details={"config_hash": config_hash, "resumed_from": resumed_from},
        )
        return uid

    def stop_run(self, reason: str = "normal", *, time_s: float | None = None) -> None:
        """Flush, then record the stop of the current run with the audit head hash."""
        if self._run_uid is None:
            return
        t = check_time(self._clock() if time_s is None else time_s, "stop_run")
        self.record_event(
            "run.stop", f"run {self._run_uid} stopped: {reason}", source="historian", time_s=t
        )
        self.flush()
        head = self._audit_w.head()
        with self._audit_w._lock:
            try:
                self._ctl.execute(
                    "UPDATE run SET stopped_s = ?, stop_reason = ?, audit_head = ? WHERE id = ?",
                    (t, reason, head.hash if head else GENESIS_HASH, self._run_id),
                )
            except sqlite3.Error as exc:
                raise HistorianError(f"{self._path}: cannot record the run stop: {exc}") from exc
        self._run_uid = None
        self._run_id = None

    # -- appends (scan thread; never touch the disk) -------------------------------------------

    def _put(self, item: tuple[Any, ...]) -> bool:
        if len(self._queue) >= self._max_pending:
            self._n_dropped += 1
            return False
        self._queue.append(item)
        self._n_appended += 1
        return True

    def register_tag(self, name: str, *, unit: str = "", description: str = "") -> None:
        """Declare a tag with its unit and description (optional: samples create tags too)."""
        check_tag_name(name)
        check_text(unit, "unit", f"register_tag({name!r})", allow_empty=True)
        check_text(description, "description", f"register_tag({name!r})", allow_empty=True)
        self._valid_tags.add(name)
        self._put((_TAG, name, unit, description))

    def record(
        self, tag: str, value: float, time_s: float, quality: Quality | int | str = Quality.GOOD
    ) -> None:
        """Append one sample (non-blocking).

        Parameters
        ----------
        tag
            Tag name (``temp_c``, ``vessel.ph``); created on first use.
        value
            The reading. NaN/±inf are recorded as NULL with quality lowered to BAD.
        time_s
            Sample time in seconds; must be finite.
        quality
            :class:`Quality`, its code (0–3) or name (``"good"``).

        Raises
        ------
        InvalidInputError
            Bad tag name, non-finite time, non-numeric value, unknown quality code.
        """
        if tag not in self._valid_tags:
            check_tag_name(tag)
            self._valid_tags.add(tag)
        t = (
            time_s
            if type(time_s) is float and _isfinite(time_s)
            else check_time(time_s, f"sample of {tag!r}")
        )
        v = value if type(value) is float else check_value(value, f"sample of {tag!r}")
        q = quality if type(quality) is Quality else check_quality(quality, f"sample of {tag!r}")
        if not _isfinite(v):
            self._put((_SAMPLE, tag, t, None, int(_BAD if q in _GOOD_OR_UNCERTAIN else q)))
        else:
            self._put((_SAMPLE, tag, t, v, int(q)))

    def record_scan(
        self,
        time_s: float,
        values: Mapping[str, float | tuple[float, Quality | int | str]],
        quality: Quality | int | str = Quality.GOOD,
    ) -> None:
        """Append one sample per tag at the same time: ``{tag: value}`` or ``{tag: (value, q)}``.

        Every entry is validated before any is queued, so a bad entry queues nothing.
        """
        t = check_time(time_s, "record_scan")
        q_default = check_quality(quality, "record_scan")
        items: list[tuple[Any, ...]] = []
        for tag, entry in values.items():
            if tag not in self._valid_tags:
                check_tag_name(tag)
            if isinstance(entry, tuple):
                value, q_raw = entry
                q = check_quality(q_raw, f"sample of {tag!r}")
            else:
                value, q = entry, q_default
            v = value if type(value) is float else check_value(value, f"sample of {tag!r}")
            if not _isfinite(v):
                items.append((_SAMPLE, tag, t, None, int(_BAD if q in _GOOD_OR_UNCERTAIN else q)))
            else:
                items.append((_SAMPLE, tag, t, v, int(q)))
        for item in items:
            self._valid_tags.add(item[1])
            self._put(item)

    def record_event(
        self,
        kind: str,
        message: str,
        *,
        source: str = "",
        time_s: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an event (non-blocking): ``kind`` such as ``phase``, ``overrun``,
        ``device.fault``, ``operator.note``; ``details`` a JSON-serialisable mapping."""
        where = f"event {kind!r}"
        check_text(kind, "kind", where)
        check_text(message, "message", where, allow_empty=True)
        check_text(source, "source", where, allow_empty=True)
        t = check_time(self._clock() if time_s is None else time_s, where)
        details_json = None
        if details is not None:
            if not isinstance(details, Mapping):
                raise InvalidInputError(f"{where}: details must be a mapping, got {details!r}")
            try:
                details_json = json.dumps(dict(details), sort_keys=True, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"{where}: details are not JSON-serialisable: {exc}"
                ) from exc
        self._put((_EVENT, self._run_id, t, kind, source, message, details_json))

    def record_alarm(
        self,
        name: str,
        transition: str,
        *,
        severity: str,
        message: str = "",
        tag: str | None = None,
        value: float | None = None,
        actor: str | None = None,
        time_s: float | None = None,
    ) -> None:
        """Append an alarm transition (non-blocking).

        Parameters
        ----------
        name
            Alarm name (``temp_high``).
        transition
            ``"raise"``, ``"clear"`` or ``"ack"``.
        severity
            One of :data:`ALARM_SEVERITIES`.
        tag, value
            The tag and value that caused it (optional).
        actor
            Who acknowledged (for ``ack``).
        """
        where = f"alarm {name!r}"
        check_text(name, "name", where)
        if transition not in ALARM_TRANSITIONS:
            raise InvalidInputError(
                f"{where}: transition must be one of {', '.join(ALARM_TRANSITIONS)}, "
                f"got {transition!r}"
            )
        if severity not in ALARM_SEVERITIES:
            raise InvalidInputError(
                f"{where}: severity must be one of {', '.join(ALARM_SEVERITIES)}, got {severity!r}"
            )
        check_text(message, "message", where, allow_empty=True)
        if tag is not None:
            check_tag_name(tag)
        v = None
        if value is not None:
            v = check_value(value, where)
            v = v if _isfinite(v) else None
        if actor is not None:
            check_text(actor, "actor", where)
        t = check_time(self._clock() if time_s is None else time_s, where)
        self._put((_ALARM, self._run_id, t, name, transition, severity, message, tag, v, actor))

    def save_state(self, name: str, value: Any, *, time_s: float | None = None) -> None:
        """Queue a state snapshot (bytes, or anything JSON-serialisable) under ``name``.

        Only the latest snapshot per name is kept; it is replaced atomically in the writer's
        next commit, together with the samples queued before it. :meth:`load_state` in this
        process returns it at once, before the commit.
        """
        check_text(name, "state name", "save_state")
        t = check_time(self._clock() if time_s is None else time_s, f"save_state({name!r})")
        kind, data = _encode_state(value, name)
        self._states[name] = (kind, data)
        self._put((_STATE, name, t, kind, data))

    def load_state(self, name: str, default: Any = None) -> Any:
        """The latest snapshot under ``name`` (saved here or committed), or ``default``."""
        pending = self._states.get(name)
        if pending is not None:
            return _decode_state(*pending)
        return super().load_state(name, default)

    def _is_known_pending(self, tag: str) -> bool:
        return tag in self._valid_tags

    # -- writer ----------------------------------------------------------------------------------

    def writer_stats(self) -> WriterStats:
        """Counters of the batching writer (see :class:`WriterStats`)."""
        return WriterStats(
            n_appended=self._n_appended,
            n_committed=self._n_committed,
            n_pending=len(self._queue),
            n_dropped=self._n_dropped,
            n_commits=self._n_commits,
            last_commit_s=self._last_commit_s,
            max_commit_s=self._max_commit_s,
            last_error=self._last_error,
        )

    def flush(self, timeout_s: float = 60.0) -> None:
        """Commit everything appended so far and wait for it.

        Raises
        ------
        HistorianError
            The commit failed (the items stay queued and are retried) or timed out.
        """
        with self._cv:
            if not self._writer.is_alive():
                raise HistorianError(f"{self._path}: historian writer is stopped")
            self._flush_requested += 1
            generation = self._flush_requested
            self._cv.notify_all()
            done = self._cv.wait_for(
                lambda: self._flush_done >= generation or not self._writer.is_alive(), timeout_s
            )
        if not done:
            raise HistorianError(f"{self._path}: flush did not complete within {timeout_s} s")
        if self._last_error is not None:
            raise HistorianError(
                f"{self._path}: commit failed, {len(self._queue)} items kept in memory: "
                f"{self._last_error}"
            )

    def close(self, reason: str = "normal", *, time_s: float | None = None) -> None:
        """Stop the run (if started; at ``time_s``, default the clock), commit everything, stop
        the writer, close (idempotent)."""
        if self._closed:
            return
        atexit.unregister(self._close_at_exit)
        try:
            if self._run_uid is not None and self._writer.is_alive():
                self.stop_run(reason, time_s=time_s)
        finally:
            with self._cv:
                self._stopping = True
                self._cv.notify_all()
            self._writer.join()
            lost = len(self._queue)
            # Fold the WAL into the main file so the closed database is one file (a reader
            # holding a snapshot can prevent it; the WAL is then folded in later).
            with contextlib.suppress(sqlite3.Error):
                self._wcon.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._wcon.close()
            super().close()
        if lost:
            raise HistorianError(
                f"{self._path}: closed with {lost} items not written: {self._last_error}"
            )

    def _close_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.close("interpreter exit")

    def __enter__(self) -> Historian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("normal" if exc[0] is None else "error")

    def _writer_loop(self) -> None:
        next_commit = time.monotonic() + self._commit_interval_s
        while True:
            with self._cv:
                self._cv.wait_for(
                    lambda: self._stopping or self._flush_requested > self._flush_done,
                    max(0.0, next_commit - time.monotonic()),
                )
                generation = self._flush_requested
                stopping = self._stopping
            next_commit = time.monotonic() + self._commit_interval_s
            ok = self._commit_all()
            with self._cv:
                self._flush_done = generation
                self._cv.notify_all()
            if stopping and (ok or not self._queue):
                return
            # On close, one retry, then give up (close() reports what was lost).
            if stopping and not self._commit_all():
                return

    def _commit_all(self) -> bool:
        while self._queue or self._n_dropped > self._n_dropped_reported:
            n = min(len(self._queue), _MAX_BATCH)
            items = [self._queue.popleft() for _ in range(n)]
            if not self._commit_batch(items):
                self._queue.extendleft(reversed(items))
                return False
        return True

    def _commit_batch(self, items: list[tuple[Any, ...]]) -> bool:
        con = self._wcon
        new_tags: list[str] = []
        dropped = self._n_dropped
        start = time.perf_counter()
        try:
            con.execute("BEGIN")
            samples: list[tuple[Any, ...]] = []
            events: list[tuple[Any, ...]] = []
            alarms: list[tuple[Any, ...]] = []
            states: dict[str, tuple[Any, ...]] = {}
            tag_ids = self._tag_ids
            for item in items:
                kind = item[0]
                if kind == _SAMPLE:
                    name = item[1]
                    tag_id = tag_ids.get(name)
                    if tag_id is None:
                        tag_id = self._insert_tag(con, name, None, None)
                        new_tags.append(name)
                    samples.append((tag_id, item[2], item[3], item[4]))
                elif kind == _EVENT:
                    events.append(item[1:])
                elif kind == _ALARM:
                    alarms.append(item[1:])
                elif kind == _STATE:
                    states[item[1]] = item[1:]
                else:
                    if item[1] not in tag_ids:
                        new_tags.append(item[1])
                    self._insert_tag(con, item[1], item[2], item[3])
            if dropped > self._n_dropped_reported:
                events.append(
                    (
                        self._run_id,
                        self._clock(),
                        "historian.overflow",
                        "historian",
                        f"{dropped - self._n_dropped_reported} items dropped: the disk "
                        "did not keep up (max_pending reached)",
                        None,
                    )
                )
            con.executemany(
                "INSERT INTO sample (tag_id, t, value, quality) VALUES (?, ?, ?, ?)", samples
            )
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
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                if con.in_transaction:
                    con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for name in new_tags:
                self._tag_ids.pop(name, None)
            self._last_error = f"{type(exc).__name__}: {exc}"
            return False
        elapsed = time.perf_counter() - start
        self._n_dropped_reported = dropped
        self._n_committed += len(items)
        self._n_commits += 1
        self._last_commit_s = elapsed
        self._max_commit_s = max(self._max_commit_s, elapsed)
        self._last_error = None
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
        self._tag_ids[name] = tag_id
        return tag_id
