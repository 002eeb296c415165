"""Feed limitation (runtime/feedlimit.py); the recipe's end conditions (volume, feed delivered)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from edgectl.config import decode_mapping
from edgectl.errors import ConfigError
from edgectl.runtime.feedlimit import FeedLimiter, FeedLimits, VesselState
from edgectl.runtime.recipe import Recipe, RecipeRunner

LIMITS = FeedLimits(
    do_loop="do", do_below_pct=20.0, base_output="base_ml_min", max_volume_l=2.5,
    hold_s=120.0, step_back=0.8, step_s=300.0, min_factor=0.1,
)  # fmt: skip


def run(
    limiter: FeedLimiter,
    vessel: VesselState,
    start_s: float,
    end_s: float,
    dt_s: float = 10.0,
    rate: float | Callable[[float], float] = 1.0,
) -> list[tuple[float, str, bool]]:
    """Scan the limiter as the recipe does: watch the vessel, then limit the profile's rate."""
    events = []
    t = start_s
    while t < end_s:
        events += [(e.time_s, e.kind, e.active) for e in limiter.update(vessel, t)]
        limiter.limit(rate(t) if callable(rate) else rate)
        t += dt_s
    return events


def test_do_limitation_caps_the_feed_and_clears_by_itself() -> None:
    lim = FeedLimiter(LIMITS)
    ok = VesselState(do_pct=30.0, do_at_top_stage=True, volume_l=2.1)
    assert run(lim, ok, 0.0, 600.0) == []
    assert lim.limit(1.0) == 1.0
    # DO below its limit with the cascade at its top stage: after hold_s a limitation begins,
    # the feed is capped at 0.8 x what it was, and 0.8 x again every 300 s while it lasts.
    low = VesselState(do_pct=12.0, do_at_top_stage=True, volume_l=2.1)
    ev = run(lim, low, 600.0, 600.0 + 1200.0)
    assert ev == [(720.0, "do", True)]
    assert lim.cap_ml_min == pytest.approx(0.8**4)  # steps at 720, 1020, 1320, 1620 s
    # a cap on the rate, not a factor of the profile: a growing profile is held at the cap
    assert lim.limit(1.5) == pytest.approx(0.8**4)
    assert lim.limit(0.2) == 0.2  # below the cap the recipe's own rate
    # DO low but the cascade not at its top stage (stirrer still has room): not a limitation.
    assert not FeedLimiter(LIMITS)._cause("do", VesselState(do_pct=12.0, volume_l=2.1))
    # The cause clears: the limitation ends at once, the cap rises x1.02 per 300 s, and is
    # lifted when the recipe's rate is below it.
    ev = run(lim, ok, 1800.0, 1800.0 + 3000.0)
    assert ev[0] == (1800.0, "do", False)
    assert lim.cap_ml_min == pytest.approx(0.8**4 * 1.02**10)
    run(lim, ok, 4800.0, 4800.0 + 300.0 * 80)
    assert lim.cap_ml_min is None
    assert lim.factor == 1.0
    assert lim.limited_s["do"] == pytest.approx(1800.0 - 720.0)


def test_an_exponential_profile_does_not_grow_back_into_the_limitation() -> None:
    # mu = 0.25 /h: over 5 h the profile grows 3.5-fold; the cap holds the feed where it was
    # stepped back to, and the factor (cap / profile) falls as the profile grows.
    lim = FeedLimiter(LIMITS)
    profile = lambda t: 0.5 * math.exp(0.25 * t / 3600.0)  # noqa: E731
    low = VesselState(do_pct=12.0, do_at_top_stage=True)
    run(lim, low, 0.0, 130.0, rate=profile)  # the limitation starts at 120 s
    cap = lim.cap_ml_min
    assert cap == pytest.approx(0.8 * profile(110.0))
    ok = VesselState(do_pct=30.0, do_at_top_stage=True)
    run(lim, ok, 130.0, 5 * 3600.0, rate=profile)
    # recovery x1.02 per 5 min: 0.24 /h, slower than the profile's 0.25 /h: still capped
    assert lim.cap_ml_min is not None
    assert lim.limit(profile(5 * 3600.0)) < profile(5 * 3600.0)
    assert lim.factor < 0.8


def test_limitation_before_saturation() -> None:
    lim = FeedLimits(do_loop="do", top_high=0.8, base_output="base_ml_min", base_high=0.8)
    f = FeedLimiter(lim)
    # the O2 stage at 85 % of its range with DO still at its setpoint: oxygen is nearly used up
    assert f._cause("do", VesselState(do_pct=30.0, do_at_top_stage=True, top_frac=0.85))
    assert not f._cause("do", VesselState(do_pct=30.0, do_at_top_stage=True, top_frac=0.7))
    assert not f._cause("do", VesselState(do_pct=30.0, do_at_top_stage=False, top_frac=0.85))
    assert f._cause("titrant", VesselState(base_frac=0.8))
    assert not f._cause("titrant", VesselState(base_frac=0.79))
    # the defaults (1.0): only a saturated output counts
    d = FeedLimiter(FeedLimits(do_loop="do", base_output="base_ml_min"))
    assert not d._cause("do", VesselState(do_pct=30.0, do_at_top_stage=True, top_frac=0.99))
    assert not d._cause("titrant", VesselState(base_frac=0.99))
    assert d._cause("titrant", VesselState(base_frac=1.0))


def test_a_short_dip_is_no_limitation() -> None:
    lim = FeedLimiter(LIMITS)
    low = VesselState(do_pct=12.0, do_at_top_stage=True)
    ok = VesselState(do_pct=30.0, do_at_top_stage=True)
    assert run(lim, low, 0.0, 100.0) == []  # 100 s < hold_s
    assert run(lim, ok, 100.0, 200.0) == []
    assert run(lim, low, 200.0, 300.0) == []  # the hold restarted
    assert lim.factor == 1.0
    assert lim.cap_ml_min is None


def test_titrant_limitation_and_min_factor() -> None:
    lim = FeedLimiter(LIMITS)
    ev = run(lim, VesselState(base_at_max=True), 0.0, 20000.0, rate=2.0)
    assert ev == [(120.0, "titrant", True)]
    assert lim.factor == pytest.approx(0.1)  # never below min_factor of the recipe's rate
    assert lim.limit(2.0) == pytest.approx(0.2)


def test_volume_limitation_stops_the_feed_until_the_volume_falls() -> None:
    lim = FeedLimiter(LIMITS)
    ev = run(lim, VesselState(volume_l=2.5), 0.0, 50.0)
    assert ev == [(0.0, "volume", True)]  # at once: no hold for a full vessel
    assert lim.limit(1.0) == 0.0
    assert lim.cap_ml_min is None  # the volume stop does not cap the rate
    ev = run(lim, VesselState(volume_l=2.45), 50.0, 60.0)  # a sample drawn
    assert ev == [(50.0, "volume", False)]
    assert lim.limit(1.0) == 1.0


def test_unwatched_limitations_never_fire() -> None:
    lim = FeedLimiter(FeedLimits())
    bad = VesselState(
        do_pct=0.0, do_at_top_stage=True, base_at_max=True, volume_l=100.0, top_frac=1.0,
        base_frac=1.0,
    )  # fmt: skip
    assert run(lim, bad, 0.0, 3600.0) == []
    assert lim.limit(1.0) == 1.0


def test_state_round_trip() -> None:
    lim = FeedLimiter(LIMITS)
    run(lim, VesselState(base_at_max=True), 0.0, 1000.0)
    again = FeedLimiter(LIMITS)
    again.restore(lim.state())
    assert again.cap_ml_min == lim.cap_ml_min is not None
    assert again.factor == lim.factor < 1.0
    assert again.limited_s == lim.limited_s
    assert again.limit(1.0) == lim.limit(1.0) < 1.0


RECIPE = {
    "phases": [
        {
            "name": "fed-batch",
            "feed": {
                "kind": "constant",
                "rate_ml_min": 1.0,
                "limits": {"max_volume_l": 2.6, "base_output": "base_ml_min"},
            },
            "transitions": [
                {"to": "harvest", "fed_ml": 500.0},
                {"to": "harvest", "volume_l": 2.8},
                {"to": "harvest", "operator": True},
            ],
        },
        {"name": "harvest", "modes": {"feed": "off"}},
    ]
}


def test_recipe_applies_the_limiter_and_ends_on_feed_or_volume() -> None:
    r = RecipeRunner(decode_mapping(RECIPE, Recipe, source="recipe"))
    assert r.limiter is not None
    assert r.watch_vessel(VesselState(volume_l=2.6), 0.0)[0].kind == "volume"
    assert r.feed_rate_ml_min(0.0) == 0.0
    assert r.watch_vessel(VesselState(volume_l=2.5), 10.0)[0].active is False
    assert r.feed_rate_ml_min(10.0) == 1.0
    assert r.update({}, 20.0, VesselState(volume_l=2.5, fed_ml=499.0)) is None
    assert r.update({}, 30.0) is None  # no vessel figures: the end conditions never fire
    change = r.update({}, 40.0, VesselState(volume_l=2.5, fed_ml=500.0))
    assert change is not None
    assert (change.to_phase, change.reason) == ("harvest", "feed delivered 500.0 mL >= 500 mL")
    assert r.limiter is None  # the harvest phase has no feed
    assert r.feed_rate_ml_min(50.0) is None

    r = RecipeRunner(decode_mapping(RECIPE, Recipe, source="recipe"))
    change = r.update({}, 0.0, VesselState(volume_l=2.81, fed_ml=math.nan))
    assert change is not None
    assert change.reason == "volume 2.810 L >= 2.8 L"


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"step_back": 1.0}, "step_back"),
        ({"min_factor": 0.0}, "min_factor"),
        ({"max_volume_l": -1.0}, "max_volume_l"),
        ({"do_below": 20.0}, "do_below"),
    ],
)
def test_bad_limits_are_config_errors(limits: dict[str, float], message: str) -> None:
    data = {"phases": [{"name": "a", "feed": {"kind": "constant", "limits": limits}}]}
    with pytest.raises(ConfigError) as info:
        decode_mapping(data, Recipe, source="r.toml")
    assert message in str(info.value)
    assert "limits" in str(info.value)


def test_summary_line_from_limit_events() -> None:
    from types import SimpleNamespace

    from edgectl.runtime.summary import limitation_summary

    def ev(t_h: float, msg: str, kind: str = "limit") -> SimpleNamespace:
        return SimpleNamespace(kind=kind, message=msg, time_s=1000.0 + t_h * 3600.0)

    events = [
        ev(1.0, "phase went on", kind="phase"),
        ev(12.0, "do limitation: DO 20.0 % < 27 % with do at its top stage for 120 s; ..."),
        ev(12.5, "do limitation cleared; feed factor 0.80 recovers"),
        ev(20.0, "titrant limitation: base_ml_min at its maximum for 120 s; ..."),
    ]
    line = limitation_summary(events, 1000.0, 24 * 3600.0)
    assert line == "do 1× 0.50 h (12.000–12.500); titrant 1× 4.00 h (20.000–active at end)"
    assert limitation_summary(events[:1], 1000.0, 3600.0) == "none"
