"""Pump delivery checks from the balance (edgectl.runtime.pumpcheck)."""

from __future__ import annotations

import math

import pytest

from edgectl.quality import Quality
from edgectl.runtime.pumpcheck import PumpCheck, PumpCheckConfig
from edgectl.runtime.tags import Tag, TagStore


def _run(delivered_fraction: float, *, rate_ml_min: float = 0.2) -> float:
    """Dose at ``rate_ml_min`` for 30 min while the bottle loses that × fraction; the ratio."""
    tags = TagStore()
    tags.define(Tag("base_mass_g"))
    tags.define(Tag("base_pump.delivery"))
    check = PumpCheck(
        "base_pump",
        PumpCheckConfig(output="base_ml_min", balance="base_mass_g", density_g_ml=0.96),
    )
    dosed = 0.0
    mass = 500.0
    for t in range(0, 1800, 10):
        tags.write("base_mass_g", mass, float(t))
        check.update(tags.snapshot(float(t)), dosed, float(t), tags)
        dosed += rate_ml_min * 10 / 60.0
        mass -= rate_ml_min * 10 / 60.0 * 0.96 * delivered_fraction
    s = tags.snapshot(1800.0)["base_pump.delivery"]
    return s.value if s.quality is Quality.GOOD else math.nan


@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.0])
def test_delivery_ratio_follows_what_left_the_bottle(fraction: float) -> None:
    assert _run(fraction) == pytest.approx(fraction, abs=1e-9)


def test_no_verdict_while_the_pump_rests() -> None:
    assert math.isnan(_run(0.0, rate_ml_min=0.0))


def test_pump_check_references_are_checked(tmp_path: object) -> None:
    from pathlib import Path

    from edgectl.errors import ConfigError
    from edgectl.runtime.reactor_config import load_reactor_config

    root = Path(__file__).resolve().parents[1]
    text = (root / "examples" / "ecoli-fedbatch-2L.toml").read_text()
    text += '\n[pump_checks.base_pump]\noutput = "base_ml_min"\nbalance = "nope_g"\n'
    path = Path(str(tmp_path)) / "r.toml"
    path.write_text(text.replace('config = ""', ""))
    with pytest.raises(ConfigError, match=r"pump_checks\.base_pump\.balance: unknown tag"):
        load_reactor_config(path)
