"""The main job: ``edgectl demo`` closes a loop around the simulated vessel."""

from __future__ import annotations

import pytest

from edgectl import cli
from edgectl.commands.demo import Vessel, run_demo


def test_vessel_plant_is_what_the_demo_claims() -> None:
    v = Vessel(noise_k=0.0, sensor_delay_s=1.0)
    assert v.gain_k_per_pct == pytest.approx(0.375)
    assert v.tau_s == pytest.approx(2093.0)
    for _ in range(8 * 3600):
        y = v.step(True)
    assert y == pytest.approx(22.0 + 37.5, abs=0.2)
    v.add_liquid(0.2, 4.0)
    assert v.temp_c == pytest.approx((2.0 * y + 0.2 * 4.0) / 2.2, abs=0.01)


@pytest.mark.parametrize("rule", ["simc", "amigo_pi"])
def test_demo_tunes_and_controls(rule: str) -> None:
    r = run_demo(rule=rule)
    # The fitted model finds the plant gain (the step test gives it).
    assert r.model.gain == pytest.approx(r.true_gain, rel=0.05)
    assert r.tuning.kp > 0
    assert r.tuning.action == "heating"
    # Closed loop: small overshoot, settles within an hour, holds ±0.1 K (reference §4.2).
    assert r.step.overshoot_k < 0.3
    assert r.step.settling_s < 3600.0
    assert r.step.max_output_pct == 100.0
    assert r.steady_std_k < 0.05
    assert r.disturbance.settling_s < 3600.0
    assert r.interlock_level == "normal"


def test_demo_command_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    for text in ("Relay at", "FOPDT fit", "Tuning (simc)", "overshoot", "settling", "IAE"):
        assert text in out
