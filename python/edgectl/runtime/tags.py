"""The tag store: the controller's process image of values with timestamps and quality.

I/O workers and the soft sensor write tags; the scan reads them once per cycle. A reading older
than its tag's ``max_age_s`` reads as STALE, so blocks depending on it take their safe action.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from edgectl.errors import ConfigError
from edgectl.quality import Quality

__all__ = ["Quality", "Sample", "Tag", "TagStore"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One tag value: ``value`` at ``time_s`` (clock seconds) with a quality."""

    value: float
    time_s: float
    quality: Quality


@dataclass(frozen=True, slots=True)
class Tag:
    """A named process value with its unit and the age after which it is stale."""

    name: str
    unit: str = ""
    max_age_s: float = math.inf
    description: str = ""


# A tag never written reads as BAD with no time.
_NEVER = Sample(math.nan, -math.inf, Quality.BAD)


class TagStore:
    """Thread-safe map of tag name → latest :class:`Sample`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tags: dict[str, Tag] = {}
        self._samples: dict[str, Sample] = {}

    def define(self, tag: Tag) -> None:
        """Declare a tag; declaring the same name twice is a configuration error."""
        with self._lock:
            if tag.name in self._tags:
                raise ConfigError(f"tag {tag.name!r} is defined twice")
            self._tags[tag.name] = tag
            self._samples[tag.name] = _NEVER

    def __contains__(self, name: object) -> bool:
        return name in self._tags

    @property
    def names(self) -> list[str]:
        """Tag names in definition order."""
        return list(self._tags)

    def tag(self, name: str) -> Tag:
        try:
            return self._tags[name]
        except KeyError:
            raise KeyError(f"unknown tag {name!r}") from None

    def write(
        self, name: str, value: float, time_s: float, quality: Quality = Quality.GOOD
    ) -> None:
        """Store a new value; NaN or infinite values are stored with BAD quality."""
        if name not in self._tags:
            raise KeyError(f"unknown tag {name!r}")
        v = float(value)
        q = quality if math.isfinite(v) else Quality.BAD
        with self._lock:
            self._samples[name] = Sample(v, float(time_s), q)

    def mark_bad(self, name: str, time_s: float) -> None:
        """Keep the last value but mark it BAD from ``time_s`` on."""
        with self._lock:
            old = self._samples[name]
            self._samples[name] = Sample(old.value, float(time_s), Quality.BAD)

    def read(self, name: str, now_s: float) -> Sample:
        """Latest sample, with GOOD downgraded to STALE when older than ``max_age_s``."""
        with self._lock:
            s = self._samples[name]
            tag = self._tags[name]
        if s.quality is Quality.GOOD and now_s - s.time_s > tag.max_age_s:
            return Sample(s.value, s.time_s, Quality.STALE)
        return s

    def snapshot(self, now_s: float) -> dict[str, Sample]:
        """Every tag read at ``now_s`` (one consistent copy, taken under the lock)."""
        with self._lock:
            samples = dict(self._samples)
        out = {}
        for name, s in samples.items():
            if s.quality is Quality.GOOD and now_s - s.time_s > self._tags[name].max_age_s:
                s = Sample(s.value, s.time_s, Quality.STALE)
            out[name] = s
        return out
