"""Writing a historian database: :class:`Historian`, the writer of a running controller.

Callers on the scan thread append samples, events, alarms and state snapshots to an in-memory
queue (a ``collections.deque``: no lock, no disk access, no fsync on the scan thread) and a
writer thread (:mod:`edgectl.historian._writer`) commits everything queued every
``commit_interval_s`` in one transaction. ``flush()`` commits now and waits; ``close()``
commits everything and stops the writer.

Guarantees:

* a process killed at any moment (kill -9) loses at most what was appended after the last
  commit — at most ``commit_interval_s`` of data plus the commit in progress — and the file is
  never corrupted (SQLite WAL: a transaction is in the file whole or not at all);
* storage never blocks the scan and never loses silently: when commits fail (disk full,
  read-only, locked, I/O error) memory stays bounded (``max_pending``; the excess goes to a
  preallocated spill file and is replayed when writes succeed again), :meth:`Historian.health`
  turns ``degraded`` or ``failed`` with exact counts, ``on_health_change`` is called and an event
  is recorded; at close, what could not be written is in the spill file (replayed at the next
  open) or counted as lost in the health that ``close()`` returns;
* one writer per database: the Historian holds ``<db>.lock`` (:mod:`edgectl.historian._files`)
  for its life, and a second one refuses with the holder's pid; every file it creates is 0600
  (or 0640) whatever the umask;
* bad input (unknown quality code, non-finite time, a value that is not a number, a bad tag
  name) raises :class:`~edgectl.errors.InvalidInputError` in the caller, before anything is
  queued, so nothing already recorded or queued is affected;
* a non-finite *value* (NaN, ±inf) is a reading, not a programming error: it is recorded with
  value NULL (read back as NaN) and its quality lowered to ``BAD`` when ``GOOD`` or
  ``UNCERTAIN`` was claimed (``STALE`` is kept), so the gap is visible in the history.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

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
from edgectl.historian._files import WriterLock, check_file_mode
from edgectl.historian._writer import (
    ALARM,
    EVENT,
    RUN_STOP,
    SAMPLE,
    STATE,
    TAG,
    BatchWriter,
    HealthCallback,
)
from edgectl.historian.audit import GENESIS_HASH, AuditTrail
from edgectl.historian.reader import HistoryReader, _decode_state, _encode_state
from edgectl.historian.records import HistorianHealth, WriterStats
from edgectl.historian.settings import HistorianSettings
from edgectl.historian.spill import SpillFile, spill_path_for

__all__ = [
    "ALARM_SEVERITIES",
    "ALARM_TRANSITIONS",
    "CLOCK_KINDS",
    "Historian",
    "HistoryReader",
]

log = logging.getLogger("edgectl.historian")

ALARM_TRANSITIONS: Final = ("raise", "clear", "ack")
# ISA-18.2 style priorities, plus "info" for alarms that only inform.
ALARM_SEVERITIES: Final = ("info", "low", "medium", "high", "critical")
# What a run's times are: Unix wall-clock time, or a simulated (accelerated, virtual) axis.
CLOCK_KINDS: Final = ("wall", "sim")
# The longest commit interval accepted (beyond it, timers overflow and a kill loses hours).
MAX_COMMIT_INTERVAL_S: Final = 3600.0
# Default bound of the spill file (preallocated): ~250 000 samples.
DEFAULT_SPILL_MAX_BYTES: Final = 16 << 20

_BAD: Final = Quality.BAD
_GOOD_OR_UNCERTAIN: Final = frozenset((Quality.GOOD, Quality.UNCERTAIN))
_isfinite = math.isfinite


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
        Items held in memory when commits fail; beyond a tenth of it items move to the spill
        file, and when that is full too, new samples are dropped and counted exactly
        (``health().n_dropped``, an ``historian.overflow`` event), so the scan never waits.
    clock
        Wall clock (seconds) for events, alarms and audit records given without ``time_s``.
    spill_path
        The spill file (default ``<db>.spill``); put it on another file system to survive a
        full disk beyond the reservation.
    spill_max_bytes
        Bound of the spill file, preallocated at open (0: no spill file).
    file_mode
        Mode of the files created: ``0o600`` (default) or ``0o640``.
    on_health_change
        Called on the writer thread with the new :class:`HistorianHealth` whenever the state
        (ok / degraded / failed) changes; the controller turns it into an alarm.

    Raises
    ------
    HistorianError
        Another Historian holds the database (the message names its pid), or the file cannot
        be created, opened or is not an edgectl historian.

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
        max_pending: int = 100_000,
        clock: Callable[[], float] = time.time,
        spill_path: str | Path | None = None,
        spill_max_bytes: int = DEFAULT_SPILL_MAX_BYTES,
        file_mode: int = 0o600,
        on_health_change: HealthCallback | None = None,
    ) -> None:
        interval = check_time(commit_interval_s, "Historian commit_interval_s")
        if not 0 < interval <= MAX_COMMIT_INTERVAL_S:
            raise InvalidInputError(
                f"Historian commit_interval_s must be > 0 and <= {MAX_COMMIT_INTERVAL_S:g} s, "
                f"got {interval}"
            )
        if not isinstance(max_pending, int) or isinstance(max_pending, bool) or max_pending < 1:
            raise InvalidInputError(
                f"Historian max_pending must be an int >= 1, got {max_pending!r}"
            )
        if not isinstance(spill_max_bytes, int) or spill_max_bytes < 0:
            raise InvalidInputError(
                f"Historian spill_max_bytes must be an int >= 0, got {spill_max_bytes!r}"
            )
        mode = check_file_mode(file_mode)
        self._path = Path(path)
        self._commit_interval_s = interval
        self._clock = clock
        self._max_pending = max_pending
        self._run_id: int | None = None
        self._run_uid: str | None = None
        self._final_health: HistorianHealth | None = None
        # One writer per database, for the life of this object.
        self._lock = WriterLock(self._path, mode=mode)
        try:
            # The audit/control connection (synchronous=FULL) creates the file and schema.
            ctl = connect(
                self._path,
                synchronous="FULL",
                create=True,
                genesis_hash=GENESIS_HASH,
                file_mode=mode,
            )
        except BaseException:
            self._lock.release()
            raise
        self._audit_w = AuditTrail(ctl, path=self._path, clock=clock, run_uid=lambda: self._run_uid)
        self._ctl = ctl
        try:
            super().__init__(self._path)
            wcon = connect(self._path, synchronous=synchronous, genesis_hash=GENESIS_HASH)
            spill, spill_error = _open_spill(self._path, spill_path, spill_max_bytes, mode, wcon)
        except BaseException:
            self._audit_w.close()
            self._close_readers()
            self._lock.release()
            raise
        self._audit = self._audit_w
        self._w = BatchWriter(
            self._path,
            wcon,
            commit_interval_s=interval,
            max_pending=max_pending,
            clock=clock,
            run_id=lambda: self._run_id,
            spill=spill,
            spill_error=spill_error,
            on_health_change=on_health_change,
        )
        # Caller side (scan thread): the queue and caches touched without a lock.
        self._queue = self._w.queue
        self._valid_tags: set[str] = set()
        self._states: dict[str, tuple[str, bytes]] = {}
        self._w.start()
        if spill is not None and spill.n_items:
            log.warning(
                "%s: replaying %d items left in the spill file %s by an earlier run",
                self._path,
                spill.n_items,
                spill.path,
            )
            self._w.flush(60.0)
        # A Historian left open at interpreter exit still commits what it holds.
        atexit.register(self._close_at_exit)

    @property
    def on_health_change(self) -> HealthCallback | None:
        """Called on the writer thread with the new health at each change of state."""
        return self._w.on_health_change

    @on_health_change.setter
    def on_health_change(self, callback: HealthCallback | None) -> None:
        self._w.on_health_change = callback

    def health(self) -> HistorianHealth:
        """Whether writes succeed, with exact counts (see :class:`HistorianHealth`).

        Cheap and lock-free (no disk access): safe to poll from the scan thread.
        """
        if self._final_health is not None:
            return self._final_health
        return self._w.health()

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
            spill_max_bytes=settings.spill_max_bytes,
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
        clock: Literal["wall", "sim"] = "wall",
    ) -> str:
        """Record the start of a run (committed durably) and return its id (a UUID hex).

        Events, alarms and audit records appended afterwards carry this run. ``clock`` says
        what the run's times are: ``"wall"`` (Unix time) or ``"sim"`` (a simulated axis: an
        accelerated or virtual clock); ``edgectl audit show`` labels times accordingly.
        """
        from edgectl import __version__

        if self._run_uid is not None:
            raise InvalidInputError(f"{self._path}: run {self._run_uid} is already started")
        if clock not in CLOCK_KINDS:
            raise InvalidInputError(
                f"{self._path}: start_run clock must be one of {', '.join(CLOCK_KINDS)}, "
                f"got {clock!r}"
            )
        t = check_time(self._clock() if time_s is None else time_s, "start_run")
        uid = uuid.uuid4().hex
        with self._audit_w._lock:
            try:
                cur = self._ctl.execute(
                    "INSERT INTO run (run_uid, config_hash, config_path, started_s, resumed_from,"
                    " edgectl_version, hostname, pid, clock) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        config_hash,
                        config_path,
                        t,
                        resumed_from,
                        __version__,
                        socket.gethostname(),
                        os.getpid(),
                        clock,
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
        """Record the stop of the current run (with the audit head hash at its commit) and
        flush. The stop goes through the writer like any item: on a failing disk it waits in
        memory or in the spill file with the rest, and is written when they are."""
        if self._run_uid is None:
            return
        t = check_time(self._clock() if time_s is None else time_s, "stop_run")
        self.record_event(
            "run.stop", f"run {self._run_uid} stopped: {reason}", source="historian", time_s=t
        )
        self._queue.append((RUN_STOP, self._run_id, t, reason))
        self._w.n_appended += 1
        self._run_uid = None
        self._run_id = None
        self.flush(check=False)

    # -- appends (scan thread; never touch the disk) -------------------------------------------

    def _put(self, item: tuple[Any, ...]) -> bool:
        queue = self._queue
        if len(queue) >= self._max_pending:
            w = self._w
            if item[0] == SAMPLE:
                w.n_refused_samples += 1
                return False
            if len(queue) >= 2 * self._max_pending:
                w.n_refused_records += 1
                return False
        queue.append(item)
        w = self._w
        w.n_appended += 1
        if len(queue) == w.wake_at:  # a burst: commit now, not at the end of the interval
            w.wake()
        return True

    def register_tag(self, name: str, *, unit: str = "", description: str = "") -> None:
        """Declare a tag with its unit and description (optional: samples create tags too)."""
        check_tag_name(name)
        check_text(unit, "unit", f"register_tag({name!r})", allow_empty=True)
        check_text(description, "description", f"register_tag({name!r})", allow_empty=True)
        self._valid_tags.add(name)
        self._put((TAG, name, unit, description))

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
            self._put((SAMPLE, tag, t, None, int(_BAD if q in _GOOD_OR_UNCERTAIN else q)))
        else:
            self._put((SAMPLE, tag, t, v, int(q)))

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
                items.append((SAMPLE, tag, t, None, int(_BAD if q in _GOOD_OR_UNCERTAIN else q)))
            else:
                items.append((SAMPLE, tag, t, v, int(q)))
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
        self._put((EVENT, self._run_id, t, kind, source, message, details_json))

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
        self._put((ALARM, self._run_id, t, name, transition, severity, message, tag, v, actor))

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
        self._put((STATE, name, t, kind, data))

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
        w = self._w
        spill = w.spill
        return WriterStats(
            n_appended=w.n_appended,
            n_committed=w.n_committed,
            n_pending=len(w.queue),
            n_dropped=w.n_lost(),
            n_commits=w.n_commits,
            last_commit_s=w.last_commit_s,
            max_commit_s=w.max_commit_s,
            last_error=w.last_error,
            n_spilled=spill.n_items if spill is not None else 0,
        )

    def flush(self, timeout_s: float = 60.0, *, check: bool = True) -> HistorianHealth:
        """Commit everything appended so far, wait for it, return the health.

        Parameters
        ----------
        check
            Raise when the commit failed (default). With ``check=False`` a failed commit is
            only reported in the returned health (a run summary, a stop).

        Raises
        ------
        HistorianError
            The commit failed (the items stay queued or spilled and are retried) or timed out.
        """
        if not self._w.alive:
            raise HistorianError(f"{self._path}: historian writer is stopped")
        done = self._w.flush(timeout_s)
        health = self._w.health()
        if check and not done:
            raise HistorianError(f"{self._path}: flush did not complete within {timeout_s} s")
        if check and health.n_failures:
            raise HistorianError(
                f"{self._path}: commit failed, {health.n_pending + health.n_spilled} items kept "
                f"({health.n_pending} in memory, {health.n_spilled} in the spill file): "
                f"{health.last_error}"
            )
        return health

    def close(  # type: ignore[override]  # returns the final health; a reader's returns None
        self, reason: str = "normal", *, time_s: float | None = None
    ) -> HistorianHealth:
        """Stop the run (if started; at ``time_s``, default the clock), commit everything, stop
        the writer, release the database (idempotent).

        Never raises for a failing disk: what could not be committed is in the spill file (and
        is written when this database is next opened) or counted as lost; the returned health
        gives the exact counts (``n_spilled``, ``n_dropped``, ``n_dropped_records``) and a
        warning is logged unless the state is ``ok``.
        """
        if self._final_health is not None:
            return self._final_health
        atexit.unregister(self._close_at_exit)
        try:
            if self._run_uid is not None and self._w.alive:
                self.stop_run(reason, time_s=time_s)
        finally:
            self._w.stop()
            health = self._w.health()
            self._final_health = health
            self._w.close()
            super().close()
            self._lock.release()
        if not health.ok or health.n_dropped or health.n_dropped_records:
            spill = f" (written at the next open of {self._path})" if health.n_spilled else ""
            log.warning(
                "%s: closed: %d items not written to the database are in the spill file%s; "
                "%d samples and %d other items lost; last error: %s",
                self._path,
                health.n_spilled,
                spill,
                health.n_dropped,
                health.n_dropped_records,
                health.last_error,
            )
        return health

    def _close_at_exit(self) -> None:
        try:
            self.close("interpreter exit")
        except Exception:
            log.exception("%s: closing the historian at exit failed", self._path)

    def __enter__(self) -> Historian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("normal" if exc[0] is None else "error")


def _open_spill(
    db: Path, given: str | Path | None, max_bytes: int, mode: int, con: sqlite3.Connection
) -> tuple[SpillFile | None, str | None]:
    """The spill file (resumed at the position committed in ``meta``), or None and why."""
    if max_bytes == 0:
        return None, "no spill file (spill_max_bytes = 0)"
    path = Path(given) if given is not None else spill_path_for(db)
    try:
        spill = SpillFile(path, max_bytes=max_bytes, mode=mode)
    except OSError as exc:
        return None, f"spill file {path}: cannot open: {exc}"
    row = con.execute("SELECT value FROM meta WHERE key = 'spill'").fetchone()
    spill.resume_from(row[0] if row else None)
    if not spill.reserved:
        log.warning("%s: could not reserve %d bytes for the spill file", path, max_bytes)
    return spill, None
