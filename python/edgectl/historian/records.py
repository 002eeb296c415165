"""Plain, frozen result types returned by historian queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from edgectl.historian._db import Quality

__all__ = [
    "HEALTH_STATES",
    "AlarmTransition",
    "Event",
    "HistorianHealth",
    "RunInfo",
    "Sample",
    "SampleSeries",
    "TagInfo",
    "TagStats",
    "WriterStats",
]

HEALTH_STATES: Final = ("ok", "degraded", "failed")


@dataclass(frozen=True, slots=True)
class TagInfo:
    """A tag known to the historian (created on its first sample or by ``register_tag``)."""

    name: str
    unit: str
    description: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One recorded sample; ``value`` is NaN when the reading was not finite."""

    tag: str
    time_s: float
    value: float
    quality: Quality


@dataclass(frozen=True, slots=True, eq=False)
class SampleSeries:
    """Samples of one tag in time order, as numpy arrays of equal length.

    ``values`` holds NaN where the reading was not finite; ``quality`` holds
    :class:`~edgectl.historian.Quality` codes (``int8``).
    """

    tag: str
    times_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    quality: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.times_s.shape[0])

    def good(self) -> SampleSeries:
        """Only the samples of GOOD quality."""
        mask = self.quality == int(Quality.GOOD)
        return SampleSeries(self.tag, self.times_s[mask], self.values[mask], self.quality[mask])


@dataclass(frozen=True, slots=True)
class TagStats:
    """Statistics of one tag's GOOD samples between two times (``count`` of them).

    ``n_samples`` counts every sample in the range, ``n_good`` the GOOD ones. ``mean`` and
    ``std`` are per-sample (not time-weighted): exact for a tag sampled at a fixed period.
    min/max/mean/std are NaN when there is no GOOD sample.
    """

    tag: str
    n_samples: int
    n_good: int
    min: float
    max: float
    mean: float
    std: float
    first_time_s: float
    last_time_s: float


@dataclass(frozen=True, slots=True)
class Event:
    """A recorded event (phase change, operator note, device fault, overrun)."""

    id: int
    time_s: float
    kind: str
    source: str
    message: str
    details: dict[str, Any] | None
    run_uid: str | None


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One alarm transition: ``raise``, ``clear`` or ``ack``."""

    id: int
    time_s: float
    name: str
    transition: str
    severity: str
    message: str
    tag: str | None
    value: float | None
    actor: str | None
    run_uid: str | None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One controller run recorded in the database."""

    run_uid: str
    config_hash: str | None
    config_path: str | None
    started_s: float
    stopped_s: float | None
    stop_reason: str | None
    resumed_from: str | None
    edgectl_version: str
    hostname: str
    pid: int
    audit_head: str | None
    clock: str | None = None  # "wall", "sim", or None (recorded before schema version 2)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of the batching writer.

    ``n_appended`` items accepted from callers, ``n_committed`` items committed, ``n_pending``
    waiting in memory, ``n_dropped`` refused because ``max_pending`` was reached, ``n_commits``
    transactions, ``last_commit_s``/``max_commit_s`` commit durations (seconds), ``last_error``
    the last write failure (None once a later commit succeeded).
    """

    n_appended: int
    n_committed: int
    n_pending: int
    n_dropped: int
    n_commits: int
    last_commit_s: float
    max_commit_s: float
    last_error: str | None
    n_spilled: int = 0


@dataclass(frozen=True, slots=True)
class HistorianHealth:
    """Whether the historian is writing, as an alarm-able status (:meth:`Historian.health`).

    Attributes
    ----------
    state
        ``"ok"``: commits succeed and nothing waits in the spill file. ``"degraded"``: commits
        fail (or the spill file is being replayed) but every item is kept, in memory or in the
        spill file. ``"failed"``: commits fail and items are being lost (the spill file is full
        or cannot be written) — ``n_dropped`` counts them exactly.
    n_pending
        Items in memory, not committed.
    n_spilled
        Items in the spill file, not committed yet (replayed first when commits succeed).
    n_dropped
        Samples lost since the Historian opened (memory and spill file full); exact.
    n_dropped_records
        Events, alarms, tags and states lost (only when memory is full twice over); exact.
    n_failures
        Failed commit attempts in a row (0 when the last one succeeded).
    last_error
        The last write failure (``"OperationalError: database or disk is full"``), or None.
    since_s
        Wall-clock time (Unix seconds) of the first failure of the current episode, or None.
    spill_path
        The spill file, or None when it could not be opened.
    spill_free_bytes
        Room left in the spill file.
    """

    state: Literal["ok", "degraded", "failed"]
    n_pending: int
    n_spilled: int
    n_dropped: int
    n_dropped_records: int
    n_failures: int
    last_error: str | None
    since_s: float | None
    spill_path: str | None
    spill_free_bytes: int

    @property
    def ok(self) -> bool:
        """True in state ``"ok"``."""
        return self.state == "ok"

    def describe(self) -> str:
        """One line for an alarm message or a log."""
        text = (
            f"historian {self.state}: {self.n_pending} pending in memory, {self.n_spilled} in "
            f"the spill file, {self.n_dropped} samples and {self.n_dropped_records} other items "
            "lost"
        )
        return text + (f"; last error: {self.last_error}" if self.last_error else "")

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for an event's details or the operator API)."""
        return {
            "state": self.state,
            "n_pending": self.n_pending,
            "n_spilled": self.n_spilled,
            "n_dropped": self.n_dropped,
            "n_dropped_records": self.n_dropped_records,
            "n_failures": self.n_failures,
            "last_error": self.last_error,
            "since_s": self.since_s,
            "spill_path": self.spill_path,
            "spill_free_bytes": self.spill_free_bytes,
        }
