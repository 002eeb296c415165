"""The DO-spike detector (runtime/spike.py) on shaped traces, through a recipe, and on the plant."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from edgectl.config import decode_mapping
from edgectl.errors import ConfigError
from edgectl.quality import Quality
from edgectl.runtime.conditions import Condition, ConditionTimer
from edgectl.runtime.recipe import Recipe, RecipeRunner
from edgectl.runtime.spike import Spike, SpikeDetector
from edgectl.runtime.tags import Sample

SPIKE = Spike(rise=25.0, rate_per_min=10.0, hold_s=300.0, arm_below=40.0)
EXHAUSTION_S = 10 * 3600.0


def batch_do(t_s: float) -> float:
    """A batch DO trace (% sat): descent from air saturation over the first hour, a cascade
    overshoot to 68 % at 1.4 h lasting 3 min, a slow drift to 58 % between 5 and 7 h, and the
    exhaustion spike at 10 h (OUR collapses; DO rises towards 95 % with a 30 s time constant)."""
    if t_s < 3600.0:
        return 100.0 - 70.0 * t_s / 3600.0
    if 5040.0 <= t_s < 5220.0:
        return 68.0
    if 5.0 * 3600.0 <= t_s < EXHAUSTION_S:
        return 30.0 + 28.0 * min(1.0, (t_s - 5.0 * 3600.0) / 7200.0)
    if t_s >= EXHAUSTION_S:
        return 58.0 + 37.0 * (1.0 - math.exp(-(t_s - EXHAUSTION_S) / 30.0))
    return 30.0


def first_fire(
    update: Callable[[dict[str, Sample], float], bool],
    trace: Callable[[float], float],
    end_s: float = 12 * 3600.0,
    period_s: float = 10.0,
    noise: random.Random | None = None,
) -> float | None:
    t = 0.0
    while t <= end_s:
        v = trace(t) + (noise.gauss(0.0, 1.0) if noise else 0.0)
        if update({"do_pct": Sample(v, t, Quality.GOOD)}, t):
            return t
        t += period_s
    return None


def test_plain_threshold_fires_on_the_overshoot_the_detector_ignores() -> None:
    # The old trigger (do_pct > 60 for 60 s, edge) fires on the 1.4 h overshoot: the bug.
    old = ConditionTimer(Condition(tag="do_pct", op=">", value=60.0, for_s=60.0, edge=True))
    t_old = first_fire(old.update, batch_do)
    assert t_old is not None
    assert t_old < 2 * 3600.0
    t_new = first_fire(SpikeDetector(SPIKE).update, batch_do)
    assert t_new is not None
    # Confirmed after the rise plus the hold, never on the descent, overshoot or drift.
    assert EXHAUSTION_S + SPIKE.hold_s <= t_new <= EXHAUSTION_S + SPIKE.hold_s + 120.0


def test_never_fires_on_the_initial_descent_or_a_slow_rise() -> None:
    # A slow, noisy descent (few cells: 3 h from air saturation to the setpoint) hovers around
    # the old threshold, which fires on the noise; the detector sees no rise at all.
    def descent(t: float) -> float:
        return max(30.0, 100.0 - 70.0 * t / (3 * 3600.0))

    old = ConditionTimer(Condition(tag="do_pct", op=">", value=60.0, for_s=60.0, edge=True))
    t_old = first_fire(old.update, descent, noise=random.Random(7))
    assert t_old is not None
    assert t_old < 2 * 3600.0
    det = SpikeDetector(SPIKE)
    assert first_fire(det.update, descent, noise=random.Random(7)) is None
    assert det.armed  # it did reach the control range
    # A slow rise (20 %/h, a culture slowing down) is as large but far slower than the spike.
    slow = SpikeDetector(SPIKE)
    assert first_fire(slow.update, lambda t: 30.0 + min(60.0, 20.0 * t / 3600.0)) is None


def test_not_armed_until_the_do_was_in_range_and_minimum_phase_time() -> None:
    # A step from 70 to 100 % before the DO ever came down to arm_below: not a spike.
    det = SpikeDetector(SPIKE)
    assert first_fire(det.update, lambda t: 70.0 if t < 3600.0 else 100.0) is None
    assert not det.armed
    # min_phase_s: the same exhaustion spike is ignored before the minimum batch time, and the
    # spike still held afterwards has no fresh rise, so it never fires; a later one does.
    late = Spike(**{**_fields(SPIKE), "min_phase_s": 11 * 3600.0})
    assert first_fire(SpikeDetector(late).update, batch_do) is None


def _fields(s: Spike) -> dict[str, float | str]:
    return {f: getattr(s, f) for f in s.__struct_fields__}


def test_a_bad_reading_or_a_fall_back_restarts_the_hold() -> None:
    det = SpikeDetector(Spike(rise=20.0, rate_per_min=5.0, hold_s=60.0))  # rise within 240 s
    good = Quality.GOOD
    for t in range(0, 300, 10):
        assert not det.update({"do_pct": Sample(30.0, t, good)}, t)
    assert not det.update({"do_pct": Sample(80.0, 300, good)}, 300)  # rise seen: hold starts
    assert det.since_s == 300
    assert not det.update({"do_pct": Sample(80.0, 330, Quality.STALE)}, 330)
    assert det.since_s is None  # a stale reading restarts the confirmation
    assert not det.update({"do_pct": Sample(80.0, 340, good)}, 340)
    assert det.since_s == 340
    assert not det.update({"do_pct": Sample(80.0, 390, good)}, 390)
    assert det.update({"do_pct": Sample(80.0, 400, good)}, 400)


def test_same_trace_and_seed_same_time() -> None:
    times = {
        seed: [
            first_fire(SpikeDetector(SPIKE).update, batch_do, noise=random.Random(seed))
            for _ in range(2)
        ]
        for seed in (1, 2, 3)
    }
    for seed, (a, b) in times.items():
        assert a == b, f"seed {seed}: {a} vs {b}"
        assert a is not None
        assert EXHAUSTION_S < a < EXHAUSTION_S + 600.0


RECIPE = {
    "phases": [
        {
            "name": "batch",
            "transitions": [
                {
                    "to": "fed-batch",
                    "spike": {
                        "rise": 25.0,
                        "rate_per_min": 10.0,
                        "hold_s": 300.0,
                        "arm_below": 40.0,
                        "min_phase_s": 3600.0,
                    },
                },
            ],
        },
        {"name": "fed-batch"},
    ]
}


def test_recipe_transition_on_a_confirmed_spike() -> None:
    r = RecipeRunner(decode_mapping(RECIPE, Recipe, source="recipe"))
    change = None
    t = 0.0
    while change is None and t < 12 * 3600.0:
        change = r.update({"do_pct": Sample(batch_do(t), t, Quality.GOOD)}, t)
        t += 10.0
    assert change is not None
    assert (change.from_phase, change.to_phase) == ("batch", "fed-batch")
    assert EXHAUSTION_S < change.time_s < EXHAUSTION_S + 600.0
    assert change.reason == "confirmed do_pct spike: +25 at >= 10/min, held 300 s"


@pytest.mark.parametrize(
    ("spike", "message"),
    [
        ({"rise": 0.0}, "rise"),
        ({"rate_per_min": -1.0}, "rate_per_min"),
        ({"hold_s": -5.0}, "hold_s"),
        ({"window_s": 3.0}, "window_s"),
    ],
)
def test_bad_spike_settings_are_config_errors(spike: dict[str, float], message: str) -> None:
    data = {"phases": [{"name": "a", "transitions": [{"to": "a", "spike": spike}]}]}
    with pytest.raises(ConfigError) as info:
        decode_mapping(data, Recipe, source="r.toml")
    assert message in str(info.value)
    assert "spike" in str(info.value)
