"""Feeding that respects the vessel: the recipe's feed stepped back while the vessel cannot take it.

An exponential feed keeps growing after the vessel's oxygen transfer and titrant capacity are
used up; the culture then goes oxygen-limited and acidifies (issue 13). Fed-batch practice limits
the feed by what the vessel can take: DO-stat feeding lowers the feed when the DO cannot be held
(Lee 1996, *Trends Biotechnol.* 14:98, "DO-stat"; Åkesson & Hagander 2001, *Biotechnol. Bioeng.*
73:223, which steps the feed back when the DO controller's output is saturated), and an OUR-
limited feed caps substrate uptake at the vessel's oxygen transfer capacity (Korz et al. 1995,
*J. Biotechnol.* 39:59). Three limitations are watched:

- ``do``: the DO cascade at its top stage **and** either DO below ``do_below_pct`` or the top
  stage's output above ``top_high`` of its range, for ``hold_s`` (the oxygen transfer capacity is
  used up, or nearly: the culture is limited *before* DO falls out of its band);
- ``titrant``: the base output above ``base_high`` of its maximum for ``hold_s`` (the titrant can
  hardly keep the pH; the pH loop keeps the rest of its range for disturbances);
- ``volume``: the working volume at ``max_volume_l`` (the feed stops).

The limit is a cap on the feed *rate* (mL/min), not a factor of the recipe's profile: an
exponential profile keeps growing, so a factor of it would grow back into the limitation. When
``do`` or ``titrant`` starts, the cap is set to ``step_back`` × the rate fed then, and it steps
down by ``step_back`` every ``step_s`` while the limitation lasts (not below ``min_factor`` × the
recipe's rate). When no limitation holds, the cap rises by ``recover`` every ``step_s`` (by
default about the growth of a µ = 0.2 /h profile, so the feed approaches the vessel's capacity
again from below, as in probing feed control, Åkesson & Hagander 2001) until the recipe's own
rate is below it, and the cap is lifted. Each limitation raises an event when it starts and
another when it ends; it ends by itself when the cause clears. A pure function of the values
and times passed in: repeatable on the lockstep clock.
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
_Unit = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
_Recover = Annotated[float, msgspec.Meta(gt=1.0, le=2.0)]

#: the limitations in the order the summary lists them
KINDS = ("do", "titrant", "volume")


class FeedLimits(Struct, frozen=True, kw_only=True):
    """``limits = {...}`` of a recipe feed. A limitation whose key is absent is not watched.

    ``do_loop`` names the DO cascade loop, ``do_below_pct`` its limit (% sat), ``top_high`` the
    fraction of its top stage's range above which oxygen transfer counts as used up;
    ``base_output`` the base pump output, ``base_high`` the fraction of its maximum above which
    the titrant counts as used up; ``max_volume_l`` the largest working volume (L).
    """

    do_loop: str | None = None
    do_below_pct: _NonNegative = 20.0
    top_high: _Unit = 1.0
    base_output: str | None = None
    base_high: _Unit = 1.0
    max_volume_l: _Positive | None = None
    hold_s: _NonNegative = 120.0
    step_back: _Fraction = 0.8
    step_s: _Positive = 300.0
    min_factor: _Fraction = 0.1
    recover: _Recover = 1.02


@dataclass(frozen=True, slots=True)
class VesselState:
    """What the limiter looks at in one scan (``nan`` / None: not known, treated as clear)."""

    do_pct: float = math.nan
    do_at_top_stage: bool = False
    base_at_max: bool = False
    volume_l: float = math.nan
    #: feed delivered so far (mL): the recipe's ``fed_ml`` end condition
    fed_ml: float = math.nan
    #: the top cascade stage's output as a fraction of its range (0..1), nan: not known
    top_frac: float = math.nan
    #: the base output as a fraction of its maximum (0..1), nan: not known
    base_frac: float = math.nan


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
    #: the largest feed rate allowed now (mL/min); None: the recipe's rate is not capped
    cap_ml_min: float | None = None
    active: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, False))
    #: seconds each limitation has been active in all
    limited_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    _since: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(KINDS))
    _last_step_s: float | None = None
    _last_s: float | None = None
    _rate_ml_min: float = 0.0  # the recipe's rate at the last limit() call

    def _cause(self, kind: str, v: VesselState) -> bool:
        lim = self.limits
        if kind == "do":
            low = math.isfinite(v.do_pct) and v.do_pct < lim.do_below_pct
            high = lim.top_high < 1.0 and math.isfinite(v.top_frac) and v.top_frac >= lim.top_high
            return lim.do_loop is not None and v.do_at_top_stage and (low or high)
        if kind == "titrant":
            high = math.isfinite(v.base_frac) and v.base_frac >= lim.base_high - 1e-9
            return lim.base_output is not None and (v.base_at_max or high)
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
        lim = self.limits
        stepping = self.active["do"] or self.active["titrant"]
        started = any(e.active and e.kind != "volume" for e in events)
        rate = self._rate_ml_min
        floor = lim.min_factor * rate
        if started or self._last_step_s is None or now_s - self._last_step_s >= lim.step_s:
            if stepping:
                fed = rate if self.cap_ml_min is None else min(rate, self.cap_ml_min)
                self.cap_ml_min = max(floor, fed * lim.step_back)
                self._last_step_s = now_s
            elif self.cap_ml_min is not None:
                up = self.cap_ml_min * lim.recover
                self.cap_ml_min = None if up >= rate else up
                self._last_step_s = now_s
        return events

    @property
    def factor(self) -> float:
        """The feed allowed now as a fraction of the recipe's rate (1: not limited)."""
        if self.cap_ml_min is None or self._rate_ml_min <= 0.0:
            return 1.0
        return min(1.0, self.cap_ml_min / self._rate_ml_min)

    def limit(self, rate_ml_min: float) -> float:
        """The recipe's feed rate (mL/min) after the limitations now in force."""
        self._rate_ml_min = rate_ml_min
        if self.active["volume"]:
            return 0.0
        if self.cap_ml_min is None:
            return rate_ml_min
        return min(rate_ml_min, max(self.cap_ml_min, self.limits.min_factor * rate_ml_min))

    def _event(self, kind: str, active: bool, now_s: float, v: VesselState) -> LimitEvent:
        lim = self.limits
        top = f"{lim.do_loop}'s top stage at {v.top_frac:.0%} of its range"
        cause = {
            "do": f"DO {v.do_pct:.1f} % < {lim.do_below_pct:g} % with {lim.do_loop} at its top"
            " stage"
            if math.isfinite(v.do_pct) and v.do_pct < lim.do_below_pct
            else top,
            "titrant": f"{lim.base_output} at its maximum"
            if v.base_at_max or not math.isfinite(v.base_frac)
            else f"{lim.base_output} at {v.base_frac:.0%} of its maximum",
            "volume": f"volume {v.volume_l:.3f} L >= {lim.max_volume_l} L",
        }[kind]
        if active:
            what = "feed stopped" if kind == "volume" else f"feed steps back x{lim.step_back:g}"
            if kind != "volume" and self._rate_ml_min > 0.0:
                fed = self._rate_ml_min * self.factor
                what += f" from {fed:.3g} mL/min"
            held = 0.0 if kind == "volume" else lim.hold_s
            msg = f"{kind} limitation: {cause} for {held:g} s; {what}"
        else:
            msg = f"{kind} limitation cleared; feed factor {self.factor:.2f} recovers"
            if self.cap_ml_min is not None:
                msg += f" from {self.cap_ml_min:.3g} mL/min"
        return LimitEvent(kind, active, now_s, self.factor, msg)

    def state(self) -> dict[str, object]:
        """What a restart needs (the cap, the recipe's rate and the time in limitation)."""
        return {
            "cap_ml_min": self.cap_ml_min,
            "rate_ml_min": self._rate_ml_min,
            "limited_s": dict(self.limited_s),
        }

    def restore(self, state: dict[str, object]) -> None:
        """Resume from :meth:`state` output."""
        cap = state.get("cap_ml_min")
        if isinstance(cap, int | float) and math.isfinite(cap) and cap >= 0.0:
            self.cap_ml_min = float(cap)
        rate = state.get("rate_ml_min")
        if isinstance(rate, int | float) and math.isfinite(rate) and rate >= 0.0:
            self._rate_ml_min = float(rate)
        saved = state.get("limited_s")
        if isinstance(saved, dict):
            for k in KINDS:
                if isinstance(saved.get(k), int | float):
                    self.limited_s[k] = float(saved[k])
