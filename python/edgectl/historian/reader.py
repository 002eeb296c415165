"""Reading a historian database: :class:`HistoryReader`.

:class:`HistoryReader` answers queries (latest values, ranges, trends, events, alarms,
statistics, state snapshots) from any thread or process; :class:`~edgectl.historian.Historian`
(in :mod:`edgectl.historian.store`) adds the writer. Readers see committed data only, with
snapshot isolation, and never block the writer.

Connections: a query borrows a connection from a small pool and gives it back, so the number
of open files does not grow with the number of threads that ever queried (the REPL server
runs each client session on a new thread: a connection per thread leaked the database and its
WAL, two descriptors per session, until the controller stopped). At most
:data:`MAX_IDLE_CONNECTIONS` idle connections are kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from edgectl.errors import InvalidInputError
from edgectl.historian._db import (
    ROLLUP_S,
    HistorianError,
    Quality,
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
)

__all__ = ["MAX_IDLE_CONNECTIONS", "HistoryReader"]

# Idle read connections kept for reuse (each holds the database and its WAL open).
MAX_IDLE_CONNECTIONS: Final = 4


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

    Each query borrows a pooled SQLite connection (WAL readers never block the writer); the
    pool keeps at most :data:`MAX_IDLE_CONNECTIONS` idle, whatever the number of threads.

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
        self._idle: list[sqlite3.Connection] = []
        self._n_open = 0
        self._con_lock = threading.Lock()
        self._closed = False
        self._audit: AuditTrail | None = None
        self._rollup: bool | None = None
        # Opening once here reports a missing or foreign file at construction.
        with self._connection():
            pass

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- connections -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a read connection for one query or one read transaction."""
        with self._con_lock:
            if self._closed:
                raise HistorianError(f"{self._path}: historian is closed")
            con = self._idle.pop() if self._idle else None
        if con is None:
            con = connect(self._path, readonly=self._readonly, genesis_hash=GENESIS_HASH)
            with self._con_lock:
                self._n_open += 1
        try:
            yield con
        finally:
            with self._con_lock:
                keep = not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS
                if keep and con.in_transaction:
                    keep = False  # a failed read transaction: do not hand it on
                if keep:
                    self._idle.append(con)
                else:
                    self._n_open -= 1
            if not keep:
                con.close()

    @property
    def n_open_connections(self) -> int:
        """Read connections open now (borrowed or idle); bounded for a long-lived reader."""
        return self._n_open

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._connection() as con:
                return con.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistorianError(f"{self._path}: query failed: {exc}") from exc

    def _close_readers(self) -> None:
        with self._con_lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._n_open -= len(idle)
        for con in idle:
            con.close()

    def close(self) -> None:
        """Close every connection (idempotent)."""
        if self._closed:
            return
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

    def minmax(
        self, tag: str, start_s: float, end_s: float, n_buckets: int
    ) -> list[tuple[float, float, float, float]]:
        """``tag`` in [start_s, end_s] cut into ``n_buckets`` equal time buckets, one row per
        non-empty bucket: (first time, last time, min, max) of its finite values,
        aggregated by SQLite (a 14-day trend is read without loading every sample; the
        min/max-per-pixel idea of trend displays, cf. Steinarsson's "Downsampling time series
        for visual representation", 2013, section 4.1).

        When a bucket spans at least four rollup blocks (``ROLLUP_S`` = 60 s: buckets of
        4 min, i.e. 800 buckets over 53 h or more), the whole minutes inside the window come
        from ``sample_rollup`` (one row per minute instead of one per sample) and only the
        partial minutes at the two ends from the samples: every extreme and every first and
        last time is still exact; a minute that straddles two buckets counts in the one it
        starts in (at most a quarter of a bucket away)."""
        check_tag_name(tag)
        start, end = check_time(start_s, "minmax start_s"), check_time(end_s, "minmax end_s")
        if not end > start or int(n_buckets) < 1:
            raise InvalidInputError(
                f"minmax needs start_s < end_s and n_buckets >= 1, got {start_s}, {end_s}, "
                f"{n_buckets}"
            )
        tag_id = self._tag_id(tag)
        if tag_id is None:
            return []
        n = int(n_buckets)
        width = (end - start) / n
        raw = (
            "SELECT MIN(t), MAX(t), MIN(value), MAX(value), CAST((t - ?) / ? AS INTEGER) AS bk "
            "FROM sample WHERE tag_id = ? AND t >= ? AND {upper} AND value IS NOT NULL "
            "GROUP BY bk"
        )
        b_lo, b_hi = math.ceil(start / ROLLUP_S), math.floor(end / ROLLUP_S)
        if width >= 4.0 * ROLLUP_S and b_hi > b_lo and self._has_rollup():
            rows = self._query(
                "SELECT MIN(t_first), MAX(t_last), MIN(vmin), MAX(vmax), "
                "CAST((b * ? - ?) / ? AS INTEGER) AS bk FROM sample_rollup "
                "WHERE tag_id = ? AND b >= ? AND b < ? GROUP BY bk",
                (ROLLUP_S, start, width, tag_id, b_lo, b_hi),
            )
            rows += self._query(
                raw.format(upper="t < ?"), (start, width, tag_id, start, b_lo * ROLLUP_S)
            )
            rows += self._query(
                raw.format(upper="t <= ?"), (start, width, tag_id, b_hi * ROLLUP_S, end)
            )
        else:
            rows = self._query(raw.format(upper="t <= ?"), (start, width, tag_id, start, end))
        buckets: dict[int, tuple[float, float, float, float]] = {}
        for a, z, lo, hi, bucket in rows:
            k = min(int(bucket), n - 1)  # t == end_s falls past the last bucket: it is its
            row = (float(a), float(z), float(lo), float(hi))
            p = buckets.get(k)
            if p is not None:
                row = (min(p[0], row[0]), max(p[1], row[1]), min(p[2], row[2]), max(p[3], row[3]))
            buckets[k] = row
        return [buckets[k] for k in sorted(buckets)]

    def _has_rollup(self) -> bool:
        """True when the file has the rollup (schema 3; a file of an older edgectl opened
        read-only has not)."""
        if self._rollup is None:
            self._rollup = bool(
                self._query("SELECT 1 FROM sqlite_schema WHERE name = 'sample_rollup'")
            )
        return self._rollup

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
        try:
            with self._connection() as con:
                con.execute("BEGIN")
                try:
                    n, first, last = con.execute(
                        f"SELECT count(*), min(t), max(t) FROM sample WHERE {where}",
                        [tag_id, *params],
                    ).fetchone()
                    n_good, lo, hi, mean = con.execute(
                        "SELECT count(*), min(value), max(value), avg(value) FROM sample "
                        f"WHERE {good}",
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
        columns = {r[1] for r in self._query("PRAGMA table_info(run)")}
        clock = "clock" if "clock" in columns else "NULL"  # schema version 1 has no clock
        rows = self._query(
            "SELECT run_uid, config_hash, config_path, started_s, stopped_s, stop_reason, "
            f"resumed_from, edgectl_version, hostname, pid, audit_head, {clock} FROM run "
            "ORDER BY id"
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
