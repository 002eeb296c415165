"""A rise detector that confirms the DO spike of substrate exhaustion.

When the batch glucose of an E. coli culture runs out the oxygen uptake rate collapses within a
minute or two and the dissolved oxygen jumps far above its setpoint (the signal DO-stat feeding
uses: Lee 1996, *Trends Biotechnol.* 14:98; Åkesson & Hagander 2001, *Biotechnol. Bioeng.* 73:223
probe the same DO response with feed pulses). A plain ``do_pct > 60 for 60 s`` also fires on the
overshoots of a DO cascade early in the batch, when few cells consume little oxygen. This detector
asks for what the exhaustion spike has and an early overshoot lacks:

- **size and rate**: the value has risen at least ``rise`` above its minimum over the last
  ``rise / rate_per_min`` minutes (the baseline), i.e. by ``rise`` at ``rate_per_min`` or faster
  on average — so a falling signal (the initial descent from air saturation, where the trailing
  minimum *is* the present value) can never qualify, nor can a slow drift up;
- **held**: the value stays at or above baseline + ``rise`` for ``hold_s`` without a bad reading;
- **armed**: only after the value has once been at or below ``arm_below`` (the culture took the
  DO down to its control range) and ``min_phase_s`` after the phase began (a minimum batch time).

The detector is a pure function of the GOOD samples and their times, so on the lockstep clock the
same configuration and seed give the same transition time. A restart starts it afresh.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Annotated

import msgspec

from edgectl.config import Struct
from edgectl.quality import Quality
from edgectl.runtime.tags import Sample

__all__ = ["Spike", "SpikeDetector"]

_Positive = Annotated[float, msgspec.Meta(gt=0.0)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]


class Spike(Struct, frozen=True, kw_only=True):
    """Settings of a :class:`SpikeDetector` (``spike = {...}`` of a recipe transition).

    Units are the tag's (``do_pct``: % air saturation); times in s, rate per minute.
    """

    tag: str = "do_pct"
    rise: _Positive = 20.0
    rate_per_min: _Positive = 5.0
    hold_s: _NonNegative = 60.0
    min_phase_s: _NonNegative = 0.0
    arm_below: float = math.inf

    def __str__(self) -> str:
        return (
            f"{self.tag} spike: +{self.rise:g} at >= {self.rate_per_min:g}/min,"
            f" held {self.hold_s:g} s"
        )

    @property
    def rise_time_s(self) -> float:
        """The longest the rise may take (s): ``rise / rate_per_min`` minutes."""
        return 60.0 * self.rise / self.rate_per_min


class SpikeDetector:
    """Tracks one :class:`Spike`; :meth:`update` returns True once a spike is confirmed."""

    def __init__(self, spike: Spike, phase_start_s: float = 0.0) -> None:
        self.spike = spike
        self._window: deque[tuple[float, float]] = deque()
        self.reset(phase_start_s)

    def reset(self, phase_start_s: float) -> None:
        """Start afresh for a phase that began at ``phase_start_s`` (s)."""
        self.phase_start_s = phase_start_s
        self._window.clear()
        self.armed = False
        #: baseline (trailing minimum) and start time of the rise being confirmed
        self.baseline: float | None = None
        self.since_s: float | None = None

    def _drop_candidate(self) -> None:
        self.baseline = None
        self.since_s = None

    def update(self, samples: Mapping[str, Sample], now_s: float) -> bool:
        """Feed the present samples at ``now_s`` (s); True when the spike is confirmed."""
        sp = self.spike
        sample = samples.get(sp.tag)
        if sample is None or sample.quality is not Quality.GOOD or not math.isfinite(sample.value):
            self._drop_candidate()  # a stale or bad reading restarts the confirmation
            return False
        v = sample.value
        win = self._window
        while win and win[0][0] < now_s - sp.rise_time_s:
            win.popleft()
        win.append((now_s, v))
        if v <= sp.arm_below:
            self.armed = True
        if not self.armed or now_s - self.phase_start_s < sp.min_phase_s:
            self._drop_candidate()
            return False
        if self.baseline is not None and self.since_s is not None:
            if v < self.baseline + sp.rise:
                self._drop_candidate()  # fell back: an overshoot, not exhaustion
            else:
                return now_s - self.since_s >= sp.hold_s
        v_min = min(tv[1] for tv in win)
        if v - v_min < sp.rise:
            return False  # no rise, or one too slow (a culture slowing down) to be the spike
        self.baseline = v_min
        self.since_s = now_s
        return sp.hold_s == 0.0
