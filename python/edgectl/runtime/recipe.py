"""Recipes: phases (batch → fed-batch → induction → harvest) with per-phase setpoints, loop modes,
feed profiles and sampling events, and transitions on time, tag conditions or operator action.

The exponential feed follows control.md §4.1: F(t) = (μ_set/Y_xs + m)·X0·V0/S_f·e^(μ_set·t)
(bioprocesstools.com fed-batch calculator; m term after Korz et al. 1995, J. Biotechnol. 39:59),
with t counted from the start of the phase that feeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from edgectl.config import Struct
from edgectl.errors import ConfigError, EdgectlError
from edgectl.runtime.conditions import Condition, ConditionTimer
from edgectl.runtime.feedlimit import FeedLimiter, FeedLimits, LimitEvent, VesselState
from edgectl.runtime.spike import Spike, SpikeDetector
from edgectl.runtime.tags import Sample

__all__ = [
    "FeedProfile",
    "Phase",
    "PhaseChange",
    "Recipe",
    "RecipeRunner",
    "Sampling",
    "Transition",
]

Positive = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]


class Transition(Struct, frozen=True, kw_only=True):
    """Leave the phase for ``to`` when any given trigger fires: ``after_s`` in the phase,
    ``when`` a tag condition held, a confirmed ``spike`` (:class:`~edgectl.runtime.spike.Spike`,
    the DO spike of substrate exhaustion), the working volume reaching ``volume_l`` (L), the feed
    delivered reaching ``fed_ml`` (mL, since the run began), or (``operator = true``) an
    operator's request. The last ones end a culture: a transition to a harvest phase."""

    to: str
    after_s: NonNegative | None = None
    when: Condition | None = None
    spike: Spike | None = None
    volume_l: Positive | None = None
    fed_ml: Positive | None = None
    operator: bool = False

    def has_trigger(self) -> bool:
        """True when at least one trigger is given."""
        return self.operator or any(
            x is not None for x in (self.after_s, self.when, self.spike, self.volume_l, self.fed_ml)
        )

    def triggers(self) -> list[str]:
        """Each trigger in words (the dashboard's recipe page, the report)."""
        out = []
        if self.after_s is not None:
            out.append(f"after {self.after_s / 3600.0:g} h in the phase")
        if self.when is not None:
            out.append(f"when {self.when}")
        if self.spike is not None:
            out.append(str(self.spike))
        if self.volume_l is not None:
            out.append(f"working volume reaches {self.volume_l:g} L")
        if self.fed_ml is not None:
            out.append(f"feed delivered reaches {self.fed_ml:g} mL")
        if self.operator:
            out.append("operator request")
        return out


class FeedProfile(Struct, frozen=True, kw_only=True):
    """Feed pump rate during a phase.

    ``constant``: ``rate_ml_min``. ``exponential``: F(t) = (μ/Y_xs + m)·X0·V0/S_f·e^(μt) with
    ``mu_set_h`` [1/h], ``yield_xs_g_g``, ``maintenance_g_g_h``, ``x0_g_l``, ``v0_l`` and
    ``feed_conc_g_l``; capped at ``max_rate_ml_min``. ``limits`` steps the feed back while the
    vessel cannot take it (:mod:`edgectl.runtime.feedlimit`).
    """

    kind: Literal["constant", "exponential"]
    rate_ml_min: NonNegative = 0.0
    mu_set_h: NonNegative = 0.0
    yield_xs_g_g: Positive = 0.5
    maintenance_g_g_h: NonNegative = 0.0
    x0_g_l: NonNegative = 0.0
    v0_l: NonNegative = 0.0
    feed_conc_g_l: Positive = 500.0
    max_rate_ml_min: Positive = 1e9
    limits: FeedLimits | None = None

    def rate_at(self, t_in_phase_s: float) -> float:
        """Feed rate in mL/min ``t_in_phase_s`` seconds after the phase started."""
        if self.kind == "constant":
            return min(self.rate_ml_min, self.max_rate_ml_min)
        t_h = max(0.0, t_in_phase_s) / 3600.0
        demand_g_h = (
            (self.mu_set_h / self.yield_xs_g_g + self.maintenance_g_g_h) * self.x0_g_l * self.v0_l
        )
        rate_l_h = demand_g_h / self.feed_conc_g_l * math.exp(self.mu_set_h * t_h)
        return min(rate_l_h * 1000.0 / 60.0, self.max_rate_ml_min)


class Sampling(Struct, frozen=True, kw_only=True):
    """A sampling event every ``every_s`` seconds in the phase (an at-line sample taken).

    ``analyse`` maps soft-sensor names to what the at-line analyser measures in the sample (a
    key of the simulated plant's sample, e.g. ``{ glucose = "glucose_g_l" }``); the result is
    known ``result_delay_s`` after sampling and then goes to that soft sensor as a reference
    (:mod:`edgectl.runtime.atline`; on a simulated plant only).
    """

    every_s: Positive
    volume_ml: NonNegative = 0.0
    first_s: NonNegative = 0.0
    label: str = "sample"
    analyse: dict[str, str] = {}
    result_delay_s: NonNegative = 0.0
    analyser: str = "at-line"


class Phase(Struct, frozen=True, kw_only=True):
    """One recipe phase: what each loop does while it lasts."""

    name: str
    setpoints: dict[str, float] = {}
    modes: dict[str, Literal["auto", "manual", "off"]] = {}
    outputs: dict[str, float] = {}
    feed: FeedProfile | None = None
    sampling: list[Sampling] = []
    transitions: list[Transition] = []


class Recipe(Struct, frozen=True, kw_only=True):
    """Phases in order; the run starts in ``start`` (default: the first).

    ``end`` names the phase that ends the culture (e.g. a harvest phase that holds the broth
    chilled with the feed off): the loops' acceptance is judged up to the moment it is
    entered, and ``edgectl run --until-end`` stops there. ``""``: the culture has no end phase.
    """

    phases: list[Phase]
    start: str = ""
    end: str = ""

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValueError("a recipe needs at least one phase")
        names = [p.name for p in self.phases]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"phase names must be unique, repeated: {sorted(dup)}")
        for i, p in enumerate(self.phases):
            for j, t in enumerate(p.transitions):
                if t.to not in names:
                    raise ValueError(
                        f"phases[{i}].transitions[{j}].to: unknown phase {t.to!r} (phases: {names})"
                    )
                if not t.has_trigger():
                    raise ValueError(
                        f"phases[{i}].transitions[{j}]: needs after_s, when, spike, volume_l,"
                        " fed_ml or operator = true"
                    )
        if self.start and self.start not in names:
            raise ValueError(f"start: unknown phase {self.start!r}")
        if self.end and self.end not in names:
            raise ValueError(f"end: unknown phase {self.end!r} (phases: {names})")
        if self.end and self.end == (self.start or names[0]):
            raise ValueError(f"end: {self.end!r} is the phase the culture starts in")

    def phase(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class PhaseChange:
    """A transition that happened: from → to at ``time_s`` because of ``reason``."""

    from_phase: str
    to_phase: str
    time_s: float
    reason: str


@dataclass
class RecipeRunner:
    """Steps a :class:`Recipe` through its phases."""

    recipe: Recipe
    phase_name: str = ""
    entered_s: float = 0.0
    _timers: list[ConditionTimer] = field(default_factory=list)
    _spikes: list[SpikeDetector | None] = field(default_factory=list)
    _next_sample_s: list[float] = field(default_factory=list)
    _requested: str | None = None
    #: the feed limiter of the present phase (None: its feed has no ``limits``)
    limiter: FeedLimiter | None = None

    def __post_init__(self) -> None:
        if not self.phase_name:
            self.phase_name = self.recipe.start or self.recipe.phases[0].name
        self._enter(self.phase_name, self.entered_s)

    @property
    def phase(self) -> Phase:
        return self.recipe.phase(self.phase_name)

    def _enter(self, name: str, now_s: float) -> None:
        self.phase_name = name
        self.entered_s = now_s
        p = self.phase
        self._timers = [ConditionTimer(t.when) if t.when else _NEVER for t in p.transitions]
        self._spikes = [SpikeDetector(t.spike, now_s) if t.spike else None for t in p.transitions]
        self._next_sample_s = [now_s + s.first_s for s in p.sampling]
        self._requested = None
        limits = p.feed.limits if p.feed is not None else None
        self.limiter = FeedLimiter(limits) if limits is not None else None

    def watch_vessel(self, vessel: VesselState, now_s: float) -> list[LimitEvent]:
        """Let the phase's feed limiter look at the vessel; the limitations started or ended."""
        return [] if self.limiter is None else self.limiter.update(vessel, now_s)

    def request(self, to: str) -> None:
        """Operator asks for phase ``to``; refused unless an operator transition leads there."""
        allowed = [t.to for t in self.phase.transitions if t.operator]
        if to not in allowed:
            raise EdgectlError(
                f"phase {self.phase_name!r} has no operator transition to {to!r}"
                f" (allowed: {allowed})"
            )
        self._requested = to

    def update(
        self, samples: Mapping[str, Sample], now_s: float, vessel: VesselState | None = None
    ) -> PhaseChange | None:
        """Check transitions (in declaration order); enter the next phase when one fires.

        ``vessel`` (volume, feed delivered) is what the ``volume_l`` and ``fed_ml`` end
        conditions look at; without it they never fire."""
        in_phase = now_s - self.entered_s
        v = vessel if vessel is not None else VesselState()
        for t, timer, spike in zip(self.phase.transitions, self._timers, self._spikes, strict=True):
            reason = None
            if t.operator and self._requested == t.to:
                reason = "operator request"
            elif t.when is not None and timer.update(samples, now_s):
                reason = f"condition {t.when}"
            elif spike is not None and spike.update(samples, now_s):
                reason = f"confirmed {spike.spike}"
            elif t.after_s is not None and in_phase >= t.after_s:
                reason = f"{t.after_s:g} s in phase"
            elif t.volume_l is not None and v.volume_l >= t.volume_l:
                reason = f"volume {v.volume_l:.3f} L >= {t.volume_l:g} L"
            elif t.fed_ml is not None and v.fed_ml >= t.fed_ml:
                reason = f"feed delivered {v.fed_ml:.1f} mL >= {t.fed_ml:g} mL"
            if reason:
                change = PhaseChange(self.phase_name, t.to, now_s, reason)
                self._enter(t.to, now_s)
                return change
        return None

    def feed_rate_ml_min(self, now_s: float) -> float | None:
        """The phase's feed rate now, or None when the phase has no feed profile."""
        feed = self.phase.feed
        if feed is None:
            return None
        rate = feed.rate_at(now_s - self.entered_s)
        return rate if self.limiter is None else self.limiter.limit(rate)

    def due_samples(self, now_s: float) -> list[Sampling]:
        """Sampling events due at ``now_s`` (each returned once per period)."""
        due = []
        for i, s in enumerate(self.phase.sampling):
            if now_s >= self._next_sample_s[i]:
                due.append(s)
                while self._next_sample_s[i] <= now_s:
                    self._next_sample_s[i] += s.every_s
        return due

    def state(self) -> dict[str, Any]:
        """What a restart needs to resume the recipe where it was."""
        return {
            "phase": self.phase_name,
            "entered_s": self.entered_s,
            "next_sample_s": list(self._next_sample_s),
            "feed_limiter": None if self.limiter is None else self.limiter.state(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state` output."""
        try:
            name = str(state["phase"])
            self.recipe.phase(name)
        except KeyError as exc:
            raise ConfigError(f"saved recipe state names unknown phase {exc}") from None
        self._enter(name, float(state["entered_s"]))
        saved = [float(x) for x in state.get("next_sample_s", [])]
        if len(saved) == len(self._next_sample_s):
            self._next_sample_s = saved
        limiter = state.get("feed_limiter")
        if self.limiter is not None and isinstance(limiter, dict):
            self.limiter.restore(limiter)


class _Never(ConditionTimer):
    def __init__(self) -> None:
        self.since_s = None
        self.armed = False

    def update(self, samples: Mapping[str, Sample], now_s: float) -> bool:
        return False


_NEVER = _Never()
