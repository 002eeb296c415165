"""Feeding that respects the vessel: the recipe's feed stepped back while the vessel cannot take it.

An exponential feed keeps growing after the vessel's oxygen transfer and titrant capacity are
used up; the culture then goes oxygen-limited and acidifies (issue 13). Fed-batch practice limits
the feed by what the vessel can take: DO-stat feeding lowers the feed when the DO cannot be held
(Lee 1996, *Trends Biotechnol.* 14:98, "DO-stat"; Åkesson & Hagander 2001, *Biotechnol. Bioeng.*
73:223, which steps the feed back when the DO controller's output is saturated), and an OUR-
limited feed caps substrate uptake at the vessel's oxygen transfer capacity (Korz et al. 1995,
*J. Biotechnol.* 39:59). Three limitations are watched:

- ``do``: the DO cascade at its top stage **and** DO below ``do_below_pct`` for ``hold_s``
  (the oxygen transfer capacity is used up);
- ``titrant``: the base output at its maximum for ``hold_s`` (the titrant cannot keep the pH);
- ``volume``: the working volume at ``max_volume_l`` (the feed stops).

While ``do`` or ``titrant`` holds, the feed factor steps down by ``step_back`` every ``step_s``
(not below ``min_factor``); when no limitation holds it steps back up the same way, to 1. Each
limitation raises an event when it starts and another when it ends; it ends by itself when the
cause clears. A pure function of the values and times passed in: repeatable on the lockstep clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from edgectl.config import Struct

__all__ = ["FeedLimiter", "FeedLimits", "LimitEvent", "VesselState"]

_Positive = Annotated[float, msgspec.Meta(gt=0.0)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
_Fraction = Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)]

#: the limitations in the order the summary lists them
KINDS = ("do", "titrant", "volume")


class FeedLimits(Struct, frozen=True, kw_only=True):
    """``limits = {...}`` of a recipe feed. A limitation whose key is absent is not watched.

    ``do_loop`` names the DO cascade loop, ``do_below_pct`` its limit (% sat); ``base_output``
    the base pump output; ``max_volume_l`` the largest working volume (L).
    """

    do_loop: str | None = None
    do_below_pct: _NonNegative = 20.0
    base_output: str | None = None
    max_volume_l: _Positive | None = None
    hold_s: _NonNegative = 120.0
    step_back: _Fraction = 0.8
    step_s: _Positive = 300.0
    min_factor: _Fraction = 0.1


@dataclass(frozen=True, slots=True)
class VesselState:
    """What the limiter looks at in one scan (``nan`` / None: not known, treated as clear)."""

    do_pct: float = math.nan
    do_at_top_stage: bool = False
    base_at_max: bool = False
    volume_l: float = math.nan
    #: feed delivered so far (mL): the recipe's ``fed_ml`` end condition
    fed_ml: float = math.nan


@dataclass(frozen=True, slots=True)
class LimitEvent:
    """A limitation started (``active``) or ended at ``time_s``."""

    kind: str
    active: bool
    time_s: float
    factor: float
    message: str


@dataclass
class FeedLimiter:
    """Steps the recipe's feed back while a limitation holds; see the module docs."""

    limits: FeedLimits
    factor: float = 1.0
    active: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, False))
    #: seconds each limitation has been active in all
    limited_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    _since: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(KINDS))
    _last_step_s: float | None = None
    _last_s: float | None = None

    def _cause(self, kind: str, v: VesselState) -> bool:
        lim = self.limits
        if kind == "do":
            return (
                lim.do_loop is not None
                and v.do_at_top_stage
                and math.isfinite(v.do_pct)
                and v.do_pct < lim.do_below_pct
            )
        if kind == "titrant":
            return lim.base_output is not None and v.base_at_max
        return (
            lim.max_volume_l is not None
            and math.isfinite(v.volume_l)
            and v.volume_l >= lim.max_volume_l
        )

    def update(self, v: VesselState, now_s: float) -> list[LimitEvent]:
        """Watch the vessel at ``now_s`` (s); returns the limitations that started or ended."""
        events: list[LimitEvent] = []
        dt = 0.0 if self._last_s is None else max(0.0, now_s - self._last_s)
        self._last_s = now_s
        for kind in KINDS:
            if self.active[kind]:
                self.limited_s[kind] += dt
            cause = self._cause(kind, v)
            hold = 0.0 if kind == "volume" else self.limits.hold_s
            if cause:
                since = self._since[kind]
                if since is None:
                    self._since[kind] = since = now_s
                if not self.active[kind] and now_s - since >= hold:
                    self.active[kind] = True
                    events.append(self._event(kind, True, now_s, v))
            else:
                self._since[kind] = None
                if self.active[kind]:
                    self.active[kind] = False
                    events.append(self._event(kind, False, now_s, v))
        stepping = self.active["do"] or self.active["titrant"]
        if self._last_step_s is None or now_s - self._last_step_s >= self.limits.step_s:
            if stepping and self.factor > self.limits.min_factor:
                self.factor = max(self.limits.min_factor, self.factor * self.limits.step_back)
                self._last_step_s = now_s
            elif not stepping and self.factor < 1.0:
                up = self.factor / self.limits.step_back
                self.factor = 1.0 if up > 1.0 - 1e-9 else up
                self._last_step_s = now_s
        return events

    def limit(self, rate_ml_min: float) -> float:
        """The recipe's feed rate (mL/min) after the limitations now in force."""
        if self.active["volume"]:
            return 0.0
        return rate_ml_min * self.factor

    def _event(self, kind: str, active: bool, now_s: float, v: VesselState) -> LimitEvent:
        lim = self.limits
        cause = {
            "do": f"DO {v.do_pct:.1f} % < {lim.do_below_pct:g} % with {lim.do_loop} at its top"
            " stage",
            "titrant": f"{lim.base_output} at its maximum",
            "volume": f"volume {v.volume_l:.3f} L >= {lim.max_volume_l} L",
        }[kind]
        if active:
            what = "feed stopped" if kind == "volume" else f"feed steps back x{lim.step_back:g}"
            held = 0.0 if kind == "volume" else lim.hold_s
            msg = f"{kind} limitation: {cause} for {held:g} s; {what}"
        else:
            msg = f"{kind} limitation cleared; feed factor {self.factor:.2f} recovers"
        return LimitEvent(kind, active, now_s, self.factor, msg)

    def state(self) -> dict[str, object]:
        """What a restart needs (the factor and the time in limitation)."""
        return {"factor": self.factor, "limited_s": dict(self.limited_s)}

    def restore(self, state: dict[str, object]) -> None:
        """Resume from :meth:`state` output."""
        f = state.get("factor")
        if isinstance(f, int | float) and 0.0 < f <= 1.0:
            self.factor = float(f)
        saved = state.get("limited_s")
        if isinstance(saved, dict):
            for k in KINDS:
                if isinstance(saved.get(k), int | float):
                    self.limited_s[k] = float(saved[k])
