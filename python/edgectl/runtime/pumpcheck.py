"""Pump-stall detection from the balance weight (issue 6; Pioreactor's
``test_chemostat_detects_pump_malfunction`` is the peer behaviour, plant-models.md §10).

The controller integrates each pump's commanded volume; the balance under its bottle says what
left. Over a sliding window, ``delivery = (mass lost / density) / commanded volume``: about 1 for
a healthy pump, near 0 for a stalled pump, a blocked line or a bottle that is not draining.
"""

from __future__ import annotations

import math
from collections import deque

from edgectl.quality import Quality
from edgectl.runtime.reactor_config import PumpCheck
from edgectl.runtime.tags import Sample

__all__ = ["PumpMonitor"]


class PumpMonitor:
    """Sliding-window delivery ratio of one pump against its balance."""

    def __init__(self, name: str, spec: PumpCheck) -> None:
        self.name = name
        self.spec = spec
        self._window: deque[tuple[float, float, float]] = deque()  # (t, commanded mL, mass g)

    def update(self, now_s: float, commanded_ml: float, balance: Sample) -> Sample:
        """Add one scan; return the ``<name>.delivery`` sample (BAD when not judgeable)."""
        if balance.quality is not Quality.GOOD or not math.isfinite(balance.value):
            return Sample(math.nan, now_s, Quality.BAD)
        self._window.append((now_s, commanded_ml, balance.value))
        while len(self._window) > 2 and now_s - self._window[1][0] >= self.spec.window_s:
            self._window.popleft()
        t0, v0, m0 = self._window[0]
        if now_s - t0 < self.spec.window_s:
            return Sample(math.nan, now_s, Quality.UNCERTAIN)  # window not full yet
        commanded = commanded_ml - v0
        if commanded < self.spec.min_volume_ml:
            return Sample(math.nan, now_s, Quality.UNCERTAIN)  # too little asked to judge
        delivered = (m0 - balance.value) / self.spec.density_g_ml
        return Sample(delivered / commanded, now_s, Quality.GOOD)
