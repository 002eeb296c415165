"""Recipes: transitions on time, tag conditions and operator action; feeds; sampling."""

from __future__ import annotations

import copy
import math

import pytest

from edgectl.config import decode_mapping
from edgectl.errors import ConfigError, EdgectlError
from edgectl.quality import Quality
from edgectl.runtime.recipe import FeedProfile, Recipe, RecipeRunner
from edgectl.runtime.tags import Sample

RECIPE = {
    "phases": [
        {
            "name": "batch",
            "setpoints": {"temp": 37.0, "do": 30.0},
            "transitions": [
                {
                    "to": "fed-batch",
                    "when": {"tag": "do_pct", "op": ">", "value": 60.0, "for_s": 30.0},
                },
                {"to": "fed-batch", "after_s": 36000.0},
            ],
        },
        {
            "name": "fed-batch",
            "feed": {
                "kind": "exponential",
                "mu_set_h": 0.22,
                "yield_xs_g_g": 0.5,
                "x0_g_l": 2.5,
                "v0_l": 2.0,
                "feed_conc_g_l": 300.0,
            },
            "sampling": [{"every_s": 3600.0, "volume_ml": 5.0}],
            "transitions": [{"to": "harvest", "operator": True}],
        },
        {"name": "harvest", "modes": {"feed": "off"}},
    ]
}


def do(v: float, q: Quality = Quality.GOOD) -> dict[str, Sample]:
    return {"do_pct": Sample(v, 0.0, q)}


def runner() -> RecipeRunner:
    return RecipeRunner(decode_mapping(RECIPE, Recipe, source="recipe"))


def test_do_spike_must_hold_before_transition() -> None:
    r = runner()
    assert r.phase_name == "batch"
    assert r.update(do(70.0), 100.0) is None
    assert r.update(do(50.0), 110.0) is None  # spike too short: timer restarts
    assert r.update(do(70.0), 120.0) is None
    assert r.update(do(70.0, Quality.STALE), 140.0) is None  # stale never triggers
    assert r.update(do(70.0), 150.0) is None
    change = r.update(do(70.0), 180.0)
    assert change is not None
    assert (change.from_phase, change.to_phase, change.time_s) == ("batch", "fed-batch", 180.0)
    assert "do_pct > 60 for 30 s" in change.reason


def test_time_transition() -> None:
    r = runner()
    change = r.update(do(20.0), 36000.0)
    assert change is not None
    assert change.reason == "36000 s in phase"


def test_exponential_feed_follows_the_formula() -> None:
    r = runner()
    assert r.feed_rate_ml_min(0.0) is None
    r.update(do(20.0), 36000.0)
    # (0.22/0.5)·2.5·2.0 / 300 L/h = 7.333 mL/h... at t=0; ×e^(0.22·t_h)
    f0 = 0.44 * 2.5 * 2.0 / 300.0 * 1000.0 / 60.0
    assert r.feed_rate_ml_min(36000.0) == pytest.approx(f0)
    assert r.feed_rate_ml_min(36000.0 + 3600.0 * 5) == pytest.approx(f0 * math.exp(1.1))


def test_feed_cap_and_constant() -> None:
    assert FeedProfile(kind="constant", rate_ml_min=3.0, max_rate_ml_min=2.0).rate_at(0) == 2.0
    exp = FeedProfile(kind="exponential", mu_set_h=1.0, x0_g_l=10, v0_l=2, max_rate_ml_min=5.0)
    assert exp.rate_at(3600 * 20) == 5.0


def test_operator_transition_and_refusal() -> None:
    r = runner()
    with pytest.raises(EdgectlError, match="no operator transition to 'harvest'"):
        r.request("harvest")
    r.update(do(20.0), 36000.0)
    r.request("harvest")
    change = r.update(do(20.0), 36001.0)
    assert change is not None
    assert (change.to_phase, change.reason) == ("harvest", "operator request")


def test_sampling_events_once_per_period() -> None:
    r = runner()
    r.update(do(20.0), 0.0 + 36000.0)
    assert [s.volume_ml for s in r.due_samples(36000.0)] == [5.0]
    assert r.due_samples(36001.0) == []
    assert len(r.due_samples(36000.0 + 3600.0)) == 1
    # a long gap yields one event, not a burst
    assert len(r.due_samples(36000.0 + 5 * 3600.0)) == 1


def test_state_round_trip_resumes_phase_and_timers() -> None:
    r = runner()
    r.update(do(20.0), 36000.0)
    r.due_samples(36000.0)
    saved = r.state()
    r2 = runner()
    r2.restore(saved)
    assert r2.phase_name == "fed-batch"
    assert r2.feed_rate_ml_min(40000.0) == r.feed_rate_ml_min(40000.0)
    assert r2.due_samples(36100.0) == []
    with pytest.raises(ConfigError, match="unknown phase"):
        r2.restore({"phase": "nope", "entered_s": 0.0})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["phases"][0]["transitions"][0].update(to="nope"), "unknown phase 'nope'"),
        (lambda d: d["phases"][2].update(name="batch"), "phase names must be unique"),
        (lambda d: d["phases"][0]["transitions"].append({"to": "harvest"}), "needs after_s"),
        (lambda d: d["phases"][0]["transitions"][0]["when"].update(op="=>"), "$.phases[0]"),
    ],
)
def test_bad_recipes_are_config_errors(mutate, message: str) -> None:  # type: ignore[no-untyped-def]

    data = copy.deepcopy(RECIPE)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        decode_mapping(data, Recipe, source="r.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("r.toml: ")


def test_edge_condition_arms_below_before_firing() -> None:
    data = copy.deepcopy(RECIPE)
    data["phases"][0]["transitions"][0]["when"]["edge"] = True
    r = RecipeRunner(decode_mapping(data, Recipe, source="recipe"))
    assert r.update(do(100.0), 0.0) is None  # fresh medium: DO high, not armed yet
    assert r.update(do(100.0), 100.0) is None
    assert r.update(do(30.0), 200.0) is None  # cells consume O2: armed
    assert r.update(do(70.0), 300.0) is None
    change = r.update(do(70.0), 330.0)
    assert change is not None
    assert "(after being false)" in change.reason
