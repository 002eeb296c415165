"""Plain, frozen result types returned by historian queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgectl.historian._db import Quality

__all__ = [
    "AlarmTransition",
    "Event",
    "RunInfo",
    "Sample",
    "SampleSeries",
    "TagInfo",
    "TagStats",
    "WriterStats",
]


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
