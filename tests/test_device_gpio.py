"""GPIO devices through gpiozero's MockFactory (injected, as on a Pi it would be lgpio)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edgectl.devices import Board, FoamProbe, Heater, RelayPump, Valve
from edgectl.errors import InvalidInputError


def closes_safe(factory: MockFactory, device: object, pins_safe: dict[int, float]) -> bool:
    """Close ``device`` and check each pin was driven to its safe value during close()."""
    marks = {pin: len(factory.pin(pin).states) for pin in pins_safe}
    device.close()  # type: ignore[attr-defined]
    return all(
        safe in [s.state for s in factory.pin(pin).states[marks[pin] :]]
        for pin, safe in pins_safe.items()
    )


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(revision="d04170", pin_class=MockPWMPin)  # reports a Pi 5
    yield f
    f.reset()  # MockFactory keeps pins across close() (gpiozero#1087)


def test_heater_pwm_duty_and_safe_close(factory: MockFactory) -> None:
    heater = Heater(12, frequency_hz=1.0, pin_factory=factory)
    heater.set_duty(0.35)
    assert factory.pin(12).state == pytest.approx(0.35)
    assert heater.duty == pytest.approx(0.35)
    with pytest.raises(InvalidInputError, match="duty"):
        heater.set_duty(1.5)
    assert closes_safe(factory, heater, {12: 0})
    heater.close()
    with pytest.raises(InvalidInputError, match="closed"):
        heater.set_duty(0.1)


def test_active_low_valve_states(factory: MockFactory) -> None:
    valve = Valve(5, active_high=False, pin_factory=factory, name="valve_air")
    valve.open()
    assert valve.is_open
    assert factory.pin(5).state == 0  # active low: driven low when open
    valve.close_valve()
    assert factory.pin(5).state == 1
    valve.open()
    assert closes_safe(factory, valve, {5: 1})  # closed (driven high) on close()


def test_relay_pump_stops_on_close(factory: MockFactory) -> None:
    pump = RelayPump(20, active_high=False, pin_factory=factory)
    pump.start()
    assert pump.is_running
    assert closes_safe(factory, pump, {20: 1})


def test_foam_probe(factory: MockFactory) -> None:
    with FoamProbe(26, pull_up=True, pin_factory=factory) as foam:
        assert foam.read() == 0.0
        factory.pin(26).drive_low()
        assert foam.is_foam
        assert foam.read() == 1.0


@pytest.mark.parametrize("board", ["boards/raspberry-pi-4", "boards/raspberry-pi-5"])
def test_board_profile_builds_devices_and_closes_safe(factory: MockFactory, board: str) -> None:
    b = Board(board, pin_factory=factory)
    assert isinstance(b["heater"], Heater)
    assert isinstance(b["valve_o2"], Valve)
    assert isinstance(b["pump_antifoam"], RelayPump)
    assert isinstance(b["foam"], FoamProbe)
    b["heater"].set_duty(0.5)
    b["valve_o2"].open()
    b["pump_antifoam"].start()
    assert factory.pin(12).state == pytest.approx(0.5)
    assert closes_safe(factory, b, {12: 0, 6: 1, 20: 1})  # active-low relays: high = off
    assert b.profile.board.gpiochip == 0


def test_simulated_pins_keep_a_bounded_history() -> None:
    """A 14-day simulated run sets the heater duty every scan: gpiozero's MockPWMPin keeps every
    change (RSS grew ~1.3 MB per simulated day); SimPWMPin keeps the last HISTORY only."""
    from edgectl.devices.gpio import SimPWMPin

    factory = MockFactory(pin_class=SimPWMPin)
    heater = Heater(18, frequency_hz=1.0, pin_factory=factory, name="heater")
    for k in range(3 * SimPWMPin.HISTORY):
        heater.set_duty((k % 100) / 100.0)
    states = factory.pin(18).states
    assert len(states) == SimPWMPin.HISTORY
    assert states[-1].state == pytest.approx(((3 * SimPWMPin.HISTORY - 1) % 100) / 100.0)
    heater.close()
