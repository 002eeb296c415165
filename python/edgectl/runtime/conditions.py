"""Tag conditions held for a time: ``do_pct > 60 for 30 s``.

Used by recipe transitions (the DO spike when batch glucose runs out), alarms and interlocks.
A condition on a tag whose quality is not GOOD is false and restarts its timer: a stale or bad
reading never triggers a phase change.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

import msgspec

from edgectl.config import Struct
from edgectl.quality import Quality
from edgectl.runtime.tags import Sample

__all__ = ["Condition", "ConditionTimer"]

Op = Literal[">", ">=", "<", "<=", "==", "!="]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class Condition(Struct, frozen=True, kw_only=True):
    """``tag op value`` that must hold continuously for ``for_s`` seconds.

    With ``edge = true`` the condition must first have been false (on a GOOD reading) since the
    timer started: a DO-stat trigger arms below the threshold and fires above it, so a DO that
    starts high (fresh medium, no cells yet) does not end the batch at once.
    """

    tag: str
    op: Op
    value: float
    for_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    edge: bool = False

    def holds(self, sample: Sample) -> bool:
        """The comparison on one sample (False unless the sample is GOOD)."""
        if sample.quality is not Quality.GOOD or not math.isfinite(sample.value):
            return False
        return _OPS[self.op](sample.value, self.value)

    def __str__(self) -> str:
        held = f" for {self.for_s:g} s" if self.for_s else ""
        edge = " (after being false)" if self.edge else ""
        return f"{self.tag} {self.op} {self.value:g}{held}{edge}"


class ConditionTimer:
    """Tracks how long a :class:`Condition` has held; ``update`` returns True once it has held
    for ``for_s`` seconds."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition
        self.since_s: float | None = None
        self.armed = not condition.edge

    def reset(self) -> None:
        self.since_s = None
        self.armed = not self.condition.edge

    def update(self, samples: Mapping[str, Sample], now_s: float) -> bool:
        sample = samples.get(self.condition.tag)
        if sample is None or not self.condition.holds(sample):
            if sample is not None and sample.quality is Quality.GOOD:
                self.armed = True
            self.since_s = None
            return False
        if not self.armed:
            return False
        if self.since_s is None:
            self.since_s = now_s
        return now_s - self.since_s >= self.condition.for_s
