"""The audit trail: every operator action and every setpoint or tuning change, append-only.

Each record says who (``actor``), when (``time_s``), what (``action`` and ``target``, e.g.
``set`` on ``loops.ph.kp``), old → new and why (``reason``), in the spirit of the
"secure, computer-generated, time-stamped audit trails" of 21 CFR 11.10(e).

Two independent protections:

* **Append-only** — SQLite triggers refuse ``UPDATE`` and ``DELETE`` on the ``audit`` table and
  an ``INSERT`` that does not extend the chain (next sequence number, previous record's hash).
* **Hash chain** — record *k* stores ``hash_k = SHA-256(canonical(record_k))`` where the
  canonical serialisation covers every field *and* ``prev_hash = hash_{k-1}`` (a fixed genesis
  value for *k* = 1). Editing a field, deleting, inserting or reordering records — even by
  someone who dropped the triggers — breaks the chain at the first record touched, and
  :func:`verify_chain` names it. The chain is keyless: someone able to rewrite the file could
  recompute every hash after an edit. The head hash (printed by ``edgectl audit show`` and
  stored at each run stop) anchors the chain: keep it outside the file (a run report, a
  notebook) and pass it as ``expected_head`` to detect a rewritten or truncated tail.

Canonical serialisation (version 1): UTF-8 JSON of the object
``{"v": 1, "seq", "t", "actor", "action", "target", "old", "new", "reason", "run", "prev"}``
with sorted keys, no whitespace (``separators=(",", ":")``), non-ASCII kept, ``t`` written by
Python's shortest round-trip float repr, ``old``/``new`` being the stored canonical JSON *texts*
of the values (sorted keys, no whitespace, no NaN).

Durability: each record is committed before :meth:`AuditTrail.record` returns, on a connection
with ``synchronous=FULL`` (the WAL is fsynced at commit), unlike the batched samples.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edgectl.errors import InvalidInputError
from edgectl.historian._db import (
    AUDIT_TRIGGERS,
    AUDIT_TRIGGERS_V1,
    HistorianError,
    check_text,
    check_time,
    connect,
)

__all__ = [
    "GENESIS_HASH",
    "AuditRecord",
    "AuditTrail",
    "AuditVerification",
    "RunClock",
    "canonical_record",
    "record_hash",
    "verify_chain",
]

CANONICAL_VERSION: Final = 1
# The prev_hash of the first record: SHA-256 of a fixed, versioned label.
GENESIS_HASH: Final = hashlib.sha256(b"edgectl audit trail genesis v1").hexdigest()

_COLUMNS: Final = (
    "seq, t, actor, action, target, old_value, new_value, reason, run_uid, prev_hash, hash"
)


def canonical_json(value: object, where: str) -> str:
    """The canonical JSON text of an old/new value (sorted keys, no whitespace, no NaN)."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{where}: value {value!r} cannot be recorded in the audit trail: {exc} "
            "(use numbers, strings, booleans, None, lists or dicts; no NaN or infinity)"
        ) from exc


def canonical_record(
    *,
    seq: int,
    time_s: float,
    actor: str,
    action: str,
    target: str,
    old_json: str,
    new_json: str,
    reason: str,
    run_uid: str | None,
    prev_hash: str,
) -> bytes:
    """The bytes hashed for one record (see the module docstring for the format)."""
    obj = {
        "v": CANONICAL_VERSION,
        "seq": seq,
        "t": time_s,
        "actor": actor,
        "action": action,
        "target": target,
        "old": old_json,
        "new": new_json,
        "reason": reason,
        "run": run_uid,
        "prev": prev_hash,
    }
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(canonical: bytes) -> str:
    """SHA-256 of a canonical record, as 64 lowercase hex digits."""
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit record as stored (``old_value``/``new_value`` decoded from JSON)."""

    seq: int
    time_s: float
    actor: str
    action: str
    target: str
    old_value: Any
    new_value: Any
    reason: str
    run_uid: str | None
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> AuditRecord:
        seq, t, actor, action, target, old, new, reason, run_uid, prev_hash, h = row
        return cls(
            seq=seq,
            time_s=t,
            actor=actor,
            action=action,
            target=target,
            old_value=_loads_or_raw(old),
            new_value=_loads_or_raw(new),
            reason=reason,
            run_uid=run_uid,
            prev_hash=prev_hash,
            hash=h,
        )

    def describe(self, clock: RunClock | None = None) -> str:
        """One line: ``#12 2026-11-22T20:41:07.250Z operator set loops.ph.kp 0.5 → 0.8 (why)``.

        With the ``clock`` of a run on a simulated time axis the time reads
        ``sim t=+3600.000 s`` (seconds since that run's start) instead of a UTC date, which it
        is not.
        """
        stamp = format_time(self.time_s) if clock is None else clock.label(self.time_s)
        old = json.dumps(self.old_value, ensure_ascii=False)
        new = json.dumps(self.new_value, ensure_ascii=False)
        reason = f" ({self.reason})" if self.reason else ""
        return f"#{self.seq} {stamp} {self.actor} {self.action} {self.target} {old} → {new}{reason}"


@dataclass(frozen=True, slots=True)
class RunClock:
    """The time axis of one run: ``kind`` ``"wall"`` (Unix time) or ``"sim"`` (simulated),
    and the run's start on that axis."""

    kind: str
    started_s: float

    def label(self, time_s: float) -> str:
        """``2026-11-22T20:41:07.250Z`` on the wall clock, ``sim t=+3600.000 s`` otherwise."""
        if self.kind == "sim":
            return f"sim t=+{time_s - self.started_s:.3f} s"
        return format_time(time_s)


def _loads_or_raw(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def format_time(time_s: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-22T20:41:07.250Z``."""
    try:
        whole = time.gmtime(time_s)
    except (OverflowError, OSError, ValueError):
        return repr(time_s)
    ms = round((time_s - int(time_s)) * 1000) % 1000 if time_s >= 0 else 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{ms:03d}Z"


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The result of :func:`verify_chain`.

    Attributes
    ----------
    is_intact
        True when every record checks, the append-only triggers are present and (if given)
        the expected head hash is in the chain.
    n_records
        Records checked.
    first_bad_seq
        Sequence number (as stored) of the first record that fails, or None.
    reason
        Why it fails (None when intact).
    head_hash
        Hash of the last record (the genesis value for an empty trail).
    """

    is_intact: bool
    n_records: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: str

    def describe(self) -> str:
        if self.is_intact:
            return f"audit trail intact: {self.n_records} records, head {self.head_hash}"
        where = f"record #{self.first_bad_seq}: " if self.first_bad_seq is not None else ""
        return f"audit trail NOT intact: {where}{self.reason}"


def verify_chain(con: sqlite3.Connection, *, expected_head: str | None = None) -> AuditVerification:
    """Check every audit record in order and return the first failure.

    Checks, for record *k* in ``seq`` order: its ``seq`` is *k* (no gap, nothing inserted),
    its fields have the stored types, its hash equals the SHA-256 of its canonical form (no
    field edited), and its ``prev_hash`` equals record *k-1*'s hash (nothing deleted, inserted or
    reordered). Then: the head stored in the file (``meta.audit_head``, ``seq:hash``, kept by a
    trigger at each insert; schema version 2) is the chain's last record, so a cut-off tail is
    found; every head recorded at a run's stop (``run.audit_head``) is in the chain; the
    append-only triggers exist; and ``expected_head`` (when given) is the hash of some record.
    """
    prev = GENESIS_HASH
    n = 0
    seen: set[str] = {GENESIS_HASH}
    try:
        genesis_row = con.execute("SELECT value FROM meta WHERE key = 'audit_genesis'").fetchone()
        rows: Iterator[tuple[Any, ...]] = con.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
        for row in rows:
            n += 1
            bad = _check_row(row, n, prev)
            if bad is not None:
                seq = row[0] if isinstance(row[0], int) else n
                return AuditVerification(False, n, seq, bad, prev)
            prev = row[10]
            seen.add(prev)
        triggers = {
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'audit'"
            )
        }
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        stored_row = con.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
        run_heads = con.execute(
            "SELECT run_uid, audit_head FROM run WHERE audit_head IS NOT NULL ORDER BY id"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise HistorianError(f"cannot read the audit trail: {exc}") from exc

    def fail(reason: str) -> AuditVerification:
        return AuditVerification(False, n, None, reason, prev)

    if genesis_row is None or genesis_row[0] != GENESIS_HASH:
        return fail("the genesis value in table meta was changed or removed")
    required = AUDIT_TRIGGERS if version >= 2 else AUDIT_TRIGGERS_V1
    missing = sorted(set(required) - triggers)
    if missing:
        return fail(
            f"append-only triggers missing ({', '.join(missing)}): the table was opened for edits"
        )
    if version >= 2 or stored_row is not None:
        problem = _check_stored_head(None if stored_row is None else stored_row[0], n, prev)
        if problem is not None:
            return fail(problem)
    for run_uid, head in run_heads:
        if head not in seen:
            return fail(
                f"run {run_uid} stopped with audit head {head}, which is not in the chain: "
                "records were removed from the tail or rewritten"
            )
    if expected_head is not None and expected_head not in seen:
        return fail(
            f"expected head hash {expected_head} is not in the chain: records after it were "
            "rewritten or removed"
        )
    return AuditVerification(True, n, None, None, prev)


def _check_stored_head(stored: str | None, n: int, last_hash: str) -> str | None:
    """Compare the head stored in ``meta`` with the chain's last record (#n, ``last_hash``)."""
    if stored is None:
        return "the stored head (meta.audit_head) was removed"
    seq_text, _, stored_hash = str(stored).partition(":")
    if not seq_text.isdigit() or not stored_hash:
        return f"the stored head (meta.audit_head) is malformed: {stored!r}"
    stored_seq = int(seq_text)
    if stored_seq > n:
        first = n + 1
        which = f"record #{first}" if first == stored_seq else f"records #{first}..#{stored_seq}"
        return (
            f"tail truncated: the file's stored head is record #{stored_seq} ({stored_hash}) "
            f"but the chain ends at #{n}: {which} removed"
        )
    if stored_seq < n:
        return (
            f"the stored head is record #{stored_seq} but the chain has {n} records: records "
            "were appended with the head trigger bypassed"
        )
    if stored_hash != last_hash:
        return (
            f"the stored head hash of record #{stored_seq} ({stored_hash}) does not match the "
            f"chain's ({last_hash}): the tail was rewritten"
        )
    return None


def _check_row(row: tuple[Any, ...], k: int, prev: str) -> str | None:
    seq, t, actor, action, target, old, new, reason, run_uid, prev_hash, h = row
    if seq != k:
        if isinstance(seq, int) and seq > k:
            return f"sequence gap: expected #{k}, found #{seq} (records deleted)"
        return f"sequence out of order: expected #{k}, found {seq!r} (records inserted or moved)"
    texts = (actor, action, target, old, new, reason, prev_hash, h)
    if not isinstance(t, float) or not all(isinstance(x, str) for x in texts):
        return "malformed record: a field has the wrong type (edited outside edgectl)"
    if run_uid is not None and not isinstance(run_uid, str):
        return "malformed record: run_uid has the wrong type (edited outside edgectl)"
    canonical = canonical_record(
        seq=seq,
        time_s=t,
        actor=actor,
        action=action,
        target=target,
        old_json=old,
        new_json=new,
        reason=reason,
        run_uid=run_uid,
        prev_hash=prev_hash,
    )
    if record_hash(canonical) != h:
        return "stored hash does not match the record's content (a field or the hash was edited)"
    if prev_hash != prev:
        what = "the genesis value" if k == 1 else f"the hash of record #{k - 1}"
        return (
            f"prev_hash does not match {what} (a record before it was deleted, inserted, "
            "reordered or rewritten)"
        )
    return None


class AuditTrail:
    """Append and read audit records of one historian database.

    Usually reached as :attr:`edgectl.historian.Historian.audit`; open one directly with
    :meth:`open` (``edgectl audit``). Thread-safe: appends are serialised by a lock and by
    SQLite's write lock (``BEGIN IMMEDIATE``), so several threads or processes can append.

    Parameters
    ----------
    con
        A connection to the database (owned by the trail from now on).
    clock
        Wall clock for records without an explicit ``time_s``.
    run_uid
        Callable returning the current run's id (or None), stored in each record.
    """

    def __init__(
        self,
        con: sqlite3.Connection,
        *,
        path: Path,
        clock: Callable[[], float] = time.time,
        run_uid: Callable[[], str | None] = lambda: None,
        readonly: bool = False,
    ) -> None:
        self._con = con
        self._path = path
        self._clock = clock
        self._run_uid = run_uid
        self._readonly = readonly
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        readonly: bool = False,
        create: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> AuditTrail:
        """Open the audit trail of the historian database at ``path``.

        Raises
        ------
        HistorianError
            Missing file (unless ``create``), not an edgectl historian, unreadable.
        """
        p = Path(path)
        con = connect(
            p, readonly=readonly, synchronous="FULL", create=create, genesis_hash=GENESIS_HASH
        )
        return cls(con, path=p, clock=clock, readonly=readonly)

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        old: Any,
        new: Any,
        reason: str = "",
        time_s: float | None = None,
    ) -> AuditRecord:
        """Append one record and commit it durably before returning.

        Parameters
        ----------
        actor
            Who: an operator name, ``"recipe"``, ``"runtime"``, ``"repl:alice"``.
        action
            What kind: ``"set"`` (setpoint, tuning), ``"mode"``, ``"ack"``, ``"autotune"``,
            ``"phase"``, ``"start"``, ...
        target
            What was acted on, as a dotted path: ``"loops.ph.kp"``, ``"alarms.temp_high"``.
        old, new
            Values before and after (JSON-serialisable; None when not applicable).
        reason
            Why (free text; may be empty).
        time_s
            When, in seconds (Unix time); the trail's clock when omitted.

        Raises
        ------
        InvalidInputError
            Empty actor/action/target, a non-finite time, a value that is not JSON.
        HistorianError
            The database refused the write (read-only, disk full, locked for 10 s).
        """
        where = f"audit record ({target!r})"
        check_text(actor, "actor", where)
        check_text(action, "action", where)
        check_text(target, "target", where)
        check_text(reason, "reason", where, allow_empty=True)
        t = check_time(self._clock() if time_s is None else time_s, where)
        old_json = canonical_json(old, f"{where} old")
        new_json = canonical_json(new, f"{where} new")
        run_uid = self._run_uid()
        with self._lock:
            self._check_open()
            con = self._con
            try:
                con.execute("BEGIN IMMEDIATE")
                last = con.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
                h = record_hash(
                    canonical_record(
                        seq=seq,
                        time_s=t,
                        actor=actor,
                        action=action,
                        target=target,
                        old_json=old_json,
                        new_json=new_json,
                        reason=reason,
                        run_uid=run_uid,
                        prev_hash=prev,
                    )
                )
                con.execute(
                    f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, t, actor, action, target, old_json, new_json, reason, run_uid, prev, h),
                )
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise HistorianError(
                    f"{self._path}: cannot append to the audit trail: {exc}"
                ) from exc
        return AuditRecord(
            seq,
            t,
            actor,
            action,
            target,
            json.loads(old_json),
            json.loads(new_json),
            reason,
            run_uid,
            prev,
            h,
        )

    def records(
        self,
        *,
        start_s: float | None = None,
        end_s: float | None = None,
        target: str | None = None,
        last: int | None = None,
    ) -> list[AuditRecord]:
        """Records in ``seq`` order, optionally within [start_s, end_s], for one target, or
        only the ``last`` N."""
        clauses: list[str] = []
        params: list[Any] = []
        if start_s is not None:
            clauses.append("t >= ?")
            params.append(check_time(start_s, "audit records"))
        if end_s is not None:
            clauses.append("t <= ?")
            params.append(check_time(end_s, "audit records"))
        if target is not None:
            clauses.append("target = ?")
            params.append(target)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_COLUMNS} FROM audit{where} ORDER BY seq"
        if last is not None:
            sql = (
                f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS} FROM audit{where} "
                "ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            )
            params.append(int(last))
        with self._lock:
            self._check_open()
            try:
                rows = self._con.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistorianError(f"{self._path}: cannot read the audit trail: {exc}") from exc
        return [AuditRecord.from_row(r) for r in rows]

    def run_clocks(self) -> dict[str, RunClock]:
        """The time axis of each run with a recorded clock kind (schema version 2), by run id."""
        with self._lock:
            self._check_open()
            try:
                columns = {r[1] for r in self._con.execute("PRAGMA table_info(run)")}
                if "clock" not in columns:
                    return {}
                rows = self._con.execute(
                    "SELECT run_uid, clock, started_s FROM run WHERE clock IS NOT NULL"
                ).fetchall()
            except sqlite3.Error as exc:
                raise HistorianError(f"{self._path}: cannot read the runs: {exc}") from exc
        return {uid: RunClock(str(kind), float(start)) for uid, kind, start in rows}

    def head(self) -> AuditRecord | None:
        """The last record, or None for an empty trail."""
        rows = self.records(last=1)
        return rows[0] if rows else None

    def verify(self, *, expected_head: str | None = None) -> AuditVerification:
        """Verify the whole chain; see :func:`verify_chain`."""
        with self._lock:
            self._check_open()
            return verify_chain(self._con, expected_head=expected_head)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._con.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise HistorianError(f"{self._path}: audit trail is closed")
