"""Pump delivery checks from the balance weight: what left the bottle vs what was dosed.

A peristaltic pump whose rotor stalls or whose tubing is blocked still answers its serial line
and still "runs" at its setpoint; only the balance under its bottle says nothing is delivered
(Pioreactor's ``test_chemostat_detects_pump_malfunction``, plant-models.md §10: "pump that does
not deliver"). Each ``[pump_checks.<name>]`` compares, over a sliding window, the mass lost by
the bottle (g / density → mL) with the volume the controller dosed (the integral of the output
in mL/min) and writes the ratio to the tag ``<name>.delivery`` (1 = as dosed, 0 = nothing). A
``low`` alarm on that tag, with an interlock if wanted, turns it into pump-stall detection::

    [pump_checks.base_pump]
    output = "base_ml_min"
    balance = "base_mass_g"
    density_g_ml = 1.0
    window_s = 600.0
    min_dosed_ml = 1.0

    [alarms.base_pump_stall]
    tag = "base_pump.delivery"
    kind = "low"
    limit = 0.5

The ratio is only judged over windows in which at least ``min_dosed_ml`` was dosed (a pump at
rest delivers nothing and is not stalled); between judgements the tag keeps its last value.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Annotated

import msgspec

from edgectl.config import Struct
from edgectl.quality import Quality
from edgectl.runtime.tags import Sample, TagStore

__all__ = ["PumpCheck", "PumpCheckConfig"]


class PumpCheckConfig(Struct, frozen=True, kw_only=True):
    """One pump whose delivery the balance under its bottle verifies."""

    output: str  #: the dosing output, mL/min
    balance: str  #: the bottle's mass tag, g
    density_g_ml: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    window_s: Annotated[float, msgspec.Meta(gt=0.0)] = 600.0
    min_dosed_ml: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0


class PumpCheck:
    """Runtime state of one :class:`PumpCheckConfig`; :meth:`update` once per scan."""

    def __init__(self, name: str, cfg: PumpCheckConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.tag = f"{name}.delivery"
        self._hist: deque[tuple[float, float, float]] = deque()  # (t, dosed mL, mass g)

    def update(
        self, samples: Mapping[str, Sample], dosed_ml: float, now_s: float, tags: TagStore
    ) -> None:
        """Record (dosed total, balance mass) and, once a window is full, write the ratio."""
        s = samples.get(self.cfg.balance)
        if s is None or s.quality is not Quality.GOOD or not math.isfinite(s.value):
            return  # no weight, no verdict; the balance's own stale alarm covers it
        hist = self._hist
        hist.append((now_s, dosed_ml, s.value))
        while len(hist) > 1 and hist[1][0] <= now_s - self.cfg.window_s:
            hist.popleft()
        t0, dosed0, mass0 = hist[0]
        if now_s - t0 < self.cfg.window_s:
            return
        dosed = dosed_ml - dosed0
        if dosed < self.cfg.min_dosed_ml:
            return
        delivered = (mass0 - s.value) / self.cfg.density_g_ml
        tags.write(self.tag, max(0.0, delivered / dosed), now_s)
