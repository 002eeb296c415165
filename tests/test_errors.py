"""Core errors arrive as classes of the edgectl.errors hierarchy, with the core's message."""

from __future__ import annotations

import math

import pytest

from edgectl import _core
from edgectl.errors import EdgectlError, InvalidInputError


@pytest.mark.parametrize(
    ("dt_s", "message"),
    [
        (0.0, "dt_s must be > 0, got 0"),
        (-0.5, "dt_s must be > 0, got -0.5"),
        (math.nan, "dt_s is not finite (got NaN)"),
        (math.inf, "dt_s is not finite (got inf)"),
    ],
)
def test_bad_dt_maps_to_invalid_input(dt_s: float, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        _core.check_dt(dt_s)
    assert str(info.value) == message
    assert isinstance(info.value, EdgectlError)
    assert isinstance(info.value, ValueError)


def test_good_dt_passes() -> None:
    assert _core.check_dt(0.1) is None
