"""Pump-stall detection from the balance (edgectl.runtime.pumpcheck)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgectl.errors import ConfigError
from edgectl.quality import Quality
from edgectl.runtime.pumpcheck import PumpMonitor
from edgectl.runtime.reactor_config import PumpCheck, load_reactor_config
from edgectl.runtime.tags import Sample

ROOT = Path(__file__).resolve().parents[1]


def _run(delivered_fraction: float, *, rate_ml_min: float = 0.2) -> Sample:
    """Dose at ``rate_ml_min`` for 30 min while the bottle loses that × fraction."""
    mon = PumpMonitor(
        "base_pump",
        PumpCheck(output="base_ml_min", balance="base_mass_g", density_g_ml=0.96),
    )
    dosed, mass = 0.0, 500.0
    last = Sample(math.nan, 0.0, Quality.BAD)
    for t in range(0, 1801, 10):
        last = mon.update(float(t), dosed, Sample(mass, float(t), Quality.GOOD))
        dosed += rate_ml_min * 10 / 60.0
        mass -= rate_ml_min * 10 / 60.0 * 0.96 * delivered_fraction
    return last


@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.0])
def test_delivery_ratio_follows_what_left_the_bottle(fraction: float) -> None:
    s = _run(fraction)
    assert s.quality is Quality.GOOD
    assert s.value == pytest.approx(fraction, abs=1e-9)


def test_no_verdict_while_the_pump_rests() -> None:
    s = _run(0.0, rate_ml_min=0.0)
    assert s.quality is Quality.UNCERTAIN
    assert math.isnan(s.value)


def test_bad_balance_gives_no_verdict() -> None:
    mon = PumpMonitor("p", PumpCheck(output="o", balance="b"))
    s = mon.update(0.0, 0.0, Sample(math.nan, 0.0, Quality.STALE))
    assert s.quality is Quality.BAD


def test_pump_check_references_are_checked(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text()
    text = text.replace('balance = "base_mass_g"', 'balance = "nope_g"')
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"pump_checks\.base_pump\.balance: unknown tag 'nope_g'"):
        load_reactor_config(path)
