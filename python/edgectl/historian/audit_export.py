"""A checksummed export of the audit trail (``edgectl audit export DB -o FILE``).

The export is JSON lines: a header object ``{"format": "edgectl-audit-export", "v": 1, "db",
"n_records", "head", "exported_utc"}``, then one object per record with the fields hashed by
the chain (``seq, t, actor, action, target, old, new, reason, run, prev, hash``; ``old``/``new``
are the stored canonical JSON texts) plus ``clock`` (``wall``/``sim``/null). Beside it,
``FILE.sha256`` holds the SHA-256 of the file in ``sha256sum`` format (``sha256sum -c`` checks
it too). :func:`verify_export` checks the checksum, then the chain inside the file (every hash
recomputed, every link, the header's count and head), so an edited, truncated or reordered export
is found even without the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edgectl.historian._db import HistorianError
from edgectl.historian.audit import (
    GENESIS_HASH,
    AuditTrail,
    canonical_json,
    canonical_record,
    record_hash,
)

__all__ = ["EXPORT_FORMAT", "ExportVerification", "checksum_path", "export_audit", "verify_export"]

EXPORT_FORMAT: Final = "edgectl-audit-export"


def checksum_path(export: Path) -> Path:
    """``FILE.sha256`` beside the export."""
    return export.with_name(export.name + ".sha256")


def export_audit(trail: AuditTrail, db: Path, out: Path, *, mode: int = 0o600) -> tuple[int, str]:
    """Write every record of ``trail`` to ``out`` and its checksum beside it.

    Returns the number of records and the SHA-256 of the file.

    Raises
    ------
    HistorianError
        The files cannot be written.
    """
    records = trail.records()
    clocks = trail.run_clocks()
    head = records[-1].hash if records else GENESIS_HASH
    lines = [
        {
            "format": EXPORT_FORMAT,
            "v": 1,
            "db": str(db),
            "n_records": len(records),
            "head": head,
            "exported_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    ]
    for r in records:
        clock = clocks.get(r.run_uid) if r.run_uid is not None else None
        lines.append(
            {
                "seq": r.seq,
                "t": r.time_s,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "old": canonical_json(r.old_value, f"record #{r.seq} old"),
                "new": canonical_json(r.new_value, f"record #{r.seq} new"),
                "reason": r.reason,
                "run": r.run_uid,
                "prev": r.prev_hash,
                "hash": r.hash,
                "clock": None if clock is None else clock.kind,
            }
        )
    data = b"".join(
        json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for obj in lines
    )
    digest = hashlib.sha256(data).hexdigest()
    _write(out, data, mode)
    _write(checksum_path(out), f"{digest}  {out.name}\n".encode(), mode)
    return len(records), digest


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise HistorianError(f"cannot write {path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ExportVerification:
    """The result of :func:`verify_export`: ``is_intact``, records, head, why not."""

    is_intact: bool
    n_records: int
    head_hash: str | None
    reason: str | None

    def describe(self) -> str:
        if self.is_intact:
            return f"export intact: {self.n_records} records, head {self.head_hash}"
        return f"export NOT intact: {self.reason}"


def verify_export(path: Path) -> ExportVerification:
    """Check an export against its ``.sha256`` file and the chain inside it.

    Raises
    ------
    HistorianError
        The export or its checksum file cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistorianError(f"cannot read {path}: {exc}") from exc
    sums = checksum_path(path)
    try:
        expected = sums.read_text(encoding="utf-8").split()[0].lower()
    except (OSError, IndexError) as exc:
        raise HistorianError(f"cannot read the checksum file {sums}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        return ExportVerification(
            False,
            0,
            None,
            f"SHA-256 of {path.name} is {actual}, {sums.name} says {expected}: the file changed",
        )
    try:
        objs = [json.loads(line) for line in data.splitlines()]
    except ValueError as exc:
        return ExportVerification(False, 0, None, f"not JSON lines: {exc}")
    if not objs or not isinstance(objs[0], dict) or objs[0].get("format") != EXPORT_FORMAT:
        return ExportVerification(False, 0, None, f"not an {EXPORT_FORMAT} file")
    header, rows = objs[0], objs[1:]
    prev = GENESIS_HASH
    for k, row in enumerate(rows, start=1):
        problem = _check_export_row(row, k, prev)
        if problem is not None:
            return ExportVerification(False, k - 1, prev, f"record #{k}: {problem}")
        prev = row["hash"]
    if header.get("n_records") != len(rows) or header.get("head") != prev:
        return ExportVerification(
            False,
            len(rows),
            prev,
            f"header says {header.get('n_records')} records, head {header.get('head')}; the "
            f"file has {len(rows)}, head {prev}",
        )
    return ExportVerification(True, len(rows), prev, None)


def _check_export_row(row: Any, k: int, prev: str) -> str | None:
    if not isinstance(row, dict):
        return "not an object"
    try:
        canonical = canonical_record(
            seq=row["seq"],
            time_s=row["t"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            old_json=row["old"],
            new_json=row["new"],
            reason=row["reason"],
            run_uid=row["run"],
            prev_hash=row["prev"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed record ({exc})"
    if row["seq"] != k:
        return f"sequence number {row['seq']!r}, expected {k}"
    if record_hash(canonical) != row["hash"]:
        return "hash does not match the record's content"
    if row["prev"] != prev:
        return "prev does not match the previous record's hash"
    return None
