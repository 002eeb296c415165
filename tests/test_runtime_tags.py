"""The tag store: quality, staleness, bad values."""

from __future__ import annotations

import math

import pytest

from edgectl.errors import ConfigError
from edgectl.quality import Quality
from edgectl.runtime.tags import Tag, TagStore


def make() -> TagStore:
    store = TagStore()
    store.define(Tag("temp_c", "°C", max_age_s=5.0))
    store.define(Tag("ph", "", max_age_s=math.inf))
    return store


def test_never_written_is_bad() -> None:
    s = make().read("temp_c", 0.0)
    assert s.quality is Quality.BAD
    assert math.isnan(s.value)


def test_reading_goes_stale_after_max_age() -> None:
    store = make()
    store.write("temp_c", 37.0, 10.0)
    assert store.read("temp_c", 15.0).quality is Quality.GOOD
    stale = store.read("temp_c", 15.01)
    assert stale.quality is Quality.STALE
    assert stale.value == 37.0
    assert store.snapshot(15.01)["temp_c"].quality is Quality.STALE
    assert store.snapshot(15.01)["ph"].quality is Quality.BAD


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_bad(value: float) -> None:
    store = make()
    store.write("ph", value, 1.0)
    assert store.read("ph", 1.0).quality is Quality.BAD


def test_mark_bad_keeps_last_value() -> None:
    store = make()
    store.write("ph", 7.01, 1.0)
    store.mark_bad("ph", 2.0)
    s = store.read("ph", 2.0)
    assert (s.value, s.time_s, s.quality) == (7.01, 2.0, Quality.BAD)


def test_unknown_and_duplicate_tags() -> None:
    store = make()
    with pytest.raises(KeyError, match="unknown tag 'x'"):
        store.write("x", 1.0, 0.0)
    with pytest.raises(ConfigError, match="defined twice"):
        store.define(Tag("ph"))
    assert store.names == ["temp_c", "ph"]
