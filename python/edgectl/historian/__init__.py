"""The historian: tag samples, events, alarms, state snapshots and the audit trail in SQLite.

One SQLite file in WAL mode per controller (``--db reactor.db``). A running controller writes
through :class:`Historian` (appends never block the scan; a writer thread commits every
``commit_interval_s``); the REPL, the run summary, exports and tests read through
:class:`HistoryReader` (or the same :class:`Historian`). Every operator action and setpoint or
tuning change goes to :attr:`Historian.audit`, an append-only, hash-chained
:class:`AuditTrail` committed durably at once; ``edgectl audit verify DB`` checks it.

See the README section "Historian and audit trail" for the schema and the guarantees.
"""

from __future__ import annotations

from edgectl.historian._db import SCHEMA_VERSION, HistorianError, Quality
from edgectl.historian.audit import (
    GENESIS_HASH,
    AuditRecord,
    AuditTrail,
    AuditVerification,
    verify_chain,
)
from edgectl.historian.export import export_csv
from edgectl.historian.reader import HistoryReader
from edgectl.historian.records import (
    AlarmTransition,
    Event,
    HistorianHealth,
    RunInfo,
    Sample,
    SampleSeries,
    TagInfo,
    TagStats,
    WriterStats,
)
from edgectl.historian.settings import HistorianSettings, config_hash
from edgectl.historian.store import ALARM_SEVERITIES, ALARM_TRANSITIONS, CLOCK_KINDS, Historian

__all__ = [
    "ALARM_SEVERITIES",
    "ALARM_TRANSITIONS",
    "CLOCK_KINDS",
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "AlarmTransition",
    "AuditRecord",
    "AuditTrail",
    "AuditVerification",
    "Event",
    "Historian",
    "HistorianError",
    "HistorianHealth",
    "HistorianSettings",
    "HistoryReader",
    "Quality",
    "RunInfo",
    "Sample",
    "SampleSeries",
    "TagInfo",
    "TagStats",
    "WriterStats",
    "config_hash",
    "export_csv",
    "verify_chain",
]
