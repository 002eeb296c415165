"""Alarms (hysteresis, delay, acknowledgement) and interlocks (limit, force, trip)."""

from __future__ import annotations

import math

import pytest

from edgectl.errors import AlarmError, ConfigError
from edgectl.quality import Quality
from edgectl.runtime.alarms import AlarmManager, AlarmSpec, AlarmState, InterlockSpec
from edgectl.runtime.tags import Sample


def s(value: float, q: Quality = Quality.GOOD) -> dict[str, Sample]:
    return {"temp_c": Sample(value, 0.0, q)}


def test_high_alarm_delay_hysteresis_and_ack() -> None:
    m = AlarmManager(
        {"t_high": AlarmSpec(tag="temp_c", kind="high", limit=39.0, hysteresis=0.5, delay_s=10.0)}
    )
    a = m.alarms["t_high"]
    assert m.evaluate(s(39.5), 0.0) == []  # pending: delay not elapsed
    assert m.evaluate(s(39.5), 9.9) == []
    [ev] = m.evaluate(s(39.5), 10.0)
    assert (ev.transition, ev.state, ev.value) == ("raise", AlarmState.ACTIVE, 39.5)
    assert m.evaluate(s(38.7), 11.0) == []  # inside the hysteresis band: still in alarm
    [ack] = m.acknowledge("t_high", 12.0, "alice")
    assert (ack.transition, ack.who, a.state) == ("ack", "alice", AlarmState.ACKED)
    [clear] = m.evaluate(s(38.4), 13.0)
    assert clear.transition == "clear"
    assert a.state is AlarmState.NORMAL
    assert a.time_in_alarm_s == pytest.approx(3.0)


def test_condition_must_persist_for_delay() -> None:
    m = AlarmManager({"lo": AlarmSpec(tag="temp_c", kind="low", limit=30.0, delay_s=5.0)})
    m.evaluate(s(29.0), 0.0)
    m.evaluate(s(31.0), 4.0)  # blip clears the pending timer
    assert m.evaluate(s(29.0), 6.0) == []
    assert m.evaluate(s(29.0), 10.9) == []
    assert [e.transition for e in m.evaluate(s(29.0), 11.0)] == ["raise"]


def test_unacknowledged_return_to_normal() -> None:
    m = AlarmManager({"hi": AlarmSpec(tag="temp_c", kind="high", limit=39.0)})
    m.evaluate(s(40.0), 0.0)
    m.evaluate(s(38.0), 1.0)
    assert m.alarms["hi"].state is AlarmState.RTN_UNACK
    assert [a.name for a in m.active()] == ["hi"]
    m.acknowledge(None, 2.0, "bob")
    assert m.active() == []
    with pytest.raises(AlarmError, match="nothing to acknowledge"):
        m.acknowledge("hi", 3.0, "bob")
    with pytest.raises(AlarmError, match="unknown alarm"):
        m.acknowledge("nope", 3.0, "bob")


def test_bad_quality_holds_limit_alarm_and_raises_stale() -> None:
    m = AlarmManager(
        {
            "hi": AlarmSpec(tag="temp_c", kind="high", limit=39.0),
            "stale": AlarmSpec(tag="temp_c", kind="stale", delay_s=2.0),
        }
    )
    m.evaluate(s(40.0), 0.0)
    assert m.alarms["hi"].in_alarm
    m.evaluate(s(math.nan, Quality.STALE), 1.0)
    assert m.alarms["hi"].in_alarm  # held, not cleared by a bad reading
    assert not m.alarms["stale"].in_alarm
    m.evaluate(s(math.nan, Quality.STALE), 3.0)
    assert m.alarms["stale"].in_alarm


def test_deviation_alarm() -> None:
    m = AlarmManager(
        {"dev": AlarmSpec(tag="temp_c", kind="deviation", limit=1.0, reference="temp_sp")}
    )
    samples = {"temp_c": Sample(38.5, 0, Quality.GOOD), "temp_sp": Sample(37.0, 0, Quality.GOOD)}
    assert [e.transition for e in m.evaluate(samples, 0.0)] == ["raise"]


def test_over_temperature_ladder_reduce_disable_trip() -> None:
    alarms = {
        "t_reduce": AlarmSpec(tag="temp_c", kind="high", limit=39.0, hysteresis=0.2),
        "t_disable": AlarmSpec(tag="temp_c", kind="high", limit=40.0, hysteresis=0.2),
        "t_trip": AlarmSpec(tag="temp_c", kind="high", limit=42.0, severity="critical"),
    }
    interlocks = {
        "reduce": InterlockSpec(alarms=["t_reduce"], action="limit", outputs={"heater": 0.3}),
        "disable": InterlockSpec(alarms=["t_disable"], action="force", outputs={"heater": 0.0}),
        "trip": InterlockSpec(alarms=["t_trip"], action="trip"),
    }
    m = AlarmManager(alarms, interlocks)
    safe = {"heater": 0.0, "feed": 0.0, "air": 200.0}

    def outputs_at(temp: float, t: float) -> dict[str, float]:
        m.evaluate(s(temp), t)
        out = {"heater": 0.9, "feed": 5.0, "air": 1000.0}
        m.apply(out, safe)
        return out

    assert outputs_at(38.0, 0) == {"heater": 0.9, "feed": 5.0, "air": 1000.0}
    assert outputs_at(39.5, 1)["heater"] == 0.3
    assert outputs_at(40.5, 2)["heater"] == 0.0
    assert outputs_at(42.5, 3) == safe
    assert m.tripped
    # cooled down: limit/force release by themselves, the trip latches until reset
    assert outputs_at(37.0, 4) == safe
    assert m.reset_trip() == []
    assert not m.tripped
    assert outputs_at(37.0, 5) == {"heater": 0.9, "feed": 5.0, "air": 1000.0}


def test_trip_reset_refused_while_alarm_active() -> None:
    m = AlarmManager(
        {"t": AlarmSpec(tag="temp_c", kind="high", limit=42.0)},
        {"trip": InterlockSpec(alarms=["t"], action="trip")},
    )
    m.evaluate(s(43.0), 0)
    assert m.reset_trip() == ["trip"]
    assert m.tripped


def test_interlock_naming_unknown_alarm_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"interlocks\.x\.alarms: unknown alarm 'nope'"):
        AlarmManager({}, {"x": InterlockSpec(alarms=["nope"], action="trip")})


def test_limit_alarm_needs_limit() -> None:
    with pytest.raises(ValueError, match="needs a finite limit"):
        AlarmSpec(tag="temp_c", kind="high")
