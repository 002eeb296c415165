"""The emulated rig (edgectl.emulators.rig) and its GPIO bridge (edgectl.emulators.gpio_bridge):
protocol round trips, polarity, release, plant wiring, fault commands and schedules."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from edgectl.devices.gpio import FoamProbe, Heater, Relay, SimPWMPin
from edgectl.emulators.gpio_bridge import (
    BridgeFactory,
    GpioBridgeServer,
    bridge_from_env,
    parse_bridge_address,
)
from edgectl.emulators.rig import Rig, RigFault, RigSchedule
from edgectl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


def _until(cond: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("tcp://127.0.0.1:5000", ("127.0.0.1", 5000)), ("localhost:7", ("localhost", 7))],
)
def test_parse_bridge_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_bridge_address(text) == expected


@pytest.mark.parametrize("text", ["udp://127.0.0.1:1", "tcp://127.0.0.1", "nonsense"])
def test_parse_bridge_address_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="GPIO bridge address"):
        parse_bridge_address(text)


def test_bridge_address_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGECTL_GPIO_BRIDGE", raising=False)
    with pytest.raises(ConfigError, match="EDGECTL_GPIO_BRIDGE"):
        bridge_from_env("")
    monkeypatch.setenv("EDGECTL_GPIO_BRIDGE", "tcp://127.0.0.1:9")
    assert bridge_from_env("") == "tcp://127.0.0.1:9"
    assert bridge_from_env("tcp://127.0.0.1:8") == "tcp://127.0.0.1:8"


def test_bridge_carries_outputs_release_and_inputs() -> None:
    seen: list[tuple[str, float | None]] = []
    srv = GpioBridgeServer(inputs={"GPIO26": True}, on_output=lambda p, v: seen.append((p, v)))
    factory = BridgeFactory(srv.address)
    try:
        heater = Heater(12, pin_factory=factory)
        relay = Relay(23, active_high=False, pin_factory=factory)
        probe = FoamProbe(26, pin_factory=factory)
        heater.set_duty(0.35)
        relay.on()  # active-low: the pin goes low
        assert _until(lambda: srv.outputs.get("GPIO12") == 0.35 and srv.outputs["GPIO23"] == 0)
        assert not probe.is_foam
        srv.set_input("GPIO26", False)  # foam shorts the pulled-up pin to ground
        assert _until(lambda: probe.is_foam)
        relay.close()
        assert _until(lambda: ("GPIO23", None) in seen)
        assert "GPIO23" not in srv.outputs
        heater.close()
        probe.close()
    finally:
        factory.close()
        srv.close()


def test_bridge_pins_keep_a_bounded_history() -> None:
    """A controller on the rig sets its heater duty every scan; gpiozero's MockPWMPin kept
    every change for the whole run (RSS grew over long rig runs). BridgePin keeps the last
    HISTORY changes and still forwards every one."""
    srv = GpioBridgeServer()
    factory = BridgeFactory(srv.address)
    try:
        heater = Heater(12, frequency_hz=1.0, pin_factory=factory, name="heater")
        n = 3 * SimPWMPin.HISTORY
        for k in range(n):
            heater.set_duty((k % 100) / 100.0)
        states = factory.pin(12).states
        assert len(states) == SimPWMPin.HISTORY
        last = ((n - 1) % 100) / 100.0
        assert states[-1].state == pytest.approx(last)
        assert _until(lambda: srv.outputs.get("GPIO12") == pytest.approx(last))
        heater.close()
    finally:
        factory.close()
        srv.close()


def test_bridge_factory_needs_a_rig() -> None:
    srv = GpioBridgeServer()
    address = srv.address
    srv.close()
    with pytest.raises(ConnectionError, match="GPIO bridge"):
        BridgeFactory(address)


def test_rig_wires_gpio_to_the_plant_and_serves_ptys() -> None:
    with Rig(EXAMPLE, speed=50.0, start_on_connect=True) as rig:
        info = rig.announcement()
        assert info["devices"]["pump_feed"] == info["devices"]["pump_base"]  # one Reglo line
        assert len(info["lines"]) == 8
        assert rig.status()["time_s"] == 0.0  # held until a controller connects
        factory = BridgeFactory(str(info["gpio_bridge"]))
        try:
            heater = Heater(12, pin_factory=factory)
            heater.set_duty(0.5)
            valve = Relay(23, active_high=False, pin_factory=factory)
            valve.on()
            assert _until(lambda: rig.time_s > 5.0)
            assert _until(lambda: rig.plant.actuators()["heater_duty"] == pytest.approx(0.5))
            assert rig.plant.actuators()["cooling_duty"] == pytest.approx(1.0)
            valve.close()  # released: the relay drops out
            assert _until(lambda: rig.plant.actuators()["cooling_duty"] == 0.0)
            heater.close()
        finally:
            factory.close()
        with serial.Serial(info["devices"]["temp"], 9600, timeout=0.5) as port:
            port.write(b"C,0\r")
            time.sleep(0.2)
            port.reset_input_buffer()
            port.write(b"R\r")
            reply = port.read_until(b"*OK\r")
        assert 30.0 < float(reply.split(b"\r")[0]) < 45.0


def test_rig_commands() -> None:
    with Rig(EXAMPLE, speed=50.0) as rig:
        assert rig.command("plant-fault pump_stall feed duration_s=60").startswith("ok {")
        assert [f["kind"] for f in rig.status()["faults"]] == ["pump_stall"]
        assert rig.command("plant-clear") == "ok null"
        assert rig.command("device-fault pump_feed garbage*2") == "ok null"
        assert rig.status()["lines"]["pumps"]["faults"] == ["garbage"]
        assert rig.command("device-clear pumps") == "ok null"
        assert rig.command("power ph off") == "ok null"
        assert not rig.status()["lines"]["ph"]["up"]
        assert rig.command("power ph on") == "ok null"
        assert rig.status()["lines"]["ph"]["up"]
        assert rig.command("device-fault nowhere garbage").startswith("error ConfigError")
        assert rig.command("plant-fault").startswith("error")
        assert rig.command("fly").startswith("error unknown")


def test_rig_fault_schedule() -> None:
    schedule = RigSchedule(
        faults=[
            RigFault(at_s=2.0, kind="heater_stuck_on", value=1.0),
            RigFault(at_s=2.0, device="ph", power_off_s=3.0),
        ]
    )
    # driven in lockstep, as a controller's ticks drive it: plant time moves only on a tick
    with Rig(EXAMPLE, speed=100.0, schedule=schedule, start_on_connect=True) as rig:
        rig.tick(0.0)
        rig.tick(3.5)
        assert rig.time_s == pytest.approx(3.5)
        assert not rig.status()["lines"]["ph"]["up"]
        assert [f.kind for f in rig.plant.faults()] == ["heater_stuck_on"]
        rig.tick(4.5)
        assert not rig.status()["lines"]["ph"]["up"]
        rig.tick(5.5)
        assert rig.status()["lines"]["ph"]["up"]
        assert rig.status()["lockstep"]


def test_rig_disconnect_lasts_its_plant_seconds_however_slow_the_plant_runs() -> None:
    with Rig(EXAMPLE, speed=100.0, start_on_connect=True) as rig:
        rig.tick(0.0)
        assert rig.command("disconnect temp 60") == "ok null"
        time.sleep(0.7)  # 70 s at the nominal speed: the plant has not moved, nor the outage
        assert not rig.status()["lines"]["temp"]["up"]
        rig.tick(59.0)
        assert not rig.status()["lines"]["temp"]["up"]
        rig.tick(61.0)
        assert rig.status()["lines"]["temp"]["up"]


def test_rig_device_spec_fault_for_a_duration() -> None:
    """``duration_s`` on a device ``spec`` removes the faults it started (plant seconds);
    other faults of the device go on, of other kinds and of the same kind."""
    schedule = RigSchedule(
        faults=[
            RigFault(at_s=1.0, device="ph", spec="late:0.5,garbage", duration_s=3.0),
            RigFault(at_s=1.0, device="ph", spec="error,garbage"),
        ]
    )
    with Rig(EXAMPLE, speed=20.0, schedule=schedule) as rig:
        assert _until(
            lambda: (
                sorted(rig.status()["lines"]["ph"]["faults"])
                == ["error", "garbage", "garbage", "late"]
            )
        )
        assert _until(lambda: sorted(rig.status()["lines"]["ph"]["faults"]) == ["error", "garbage"])
        assert rig.time_s >= 4.0


def test_spectral_faults_only_on_spectrometers() -> None:
    with Rig(EXAMPLE, speed=20.0) as rig:
        with pytest.raises(ConfigError, match="'spike' acts on spectrometers only"):
            rig.device_fault("ph", "garbage,spike:3")
        assert rig.status()["lines"]["ph"]["faults"] == []


def test_rig_schedule_refuses_a_bad_spec() -> None:
    with pytest.raises(ConfigError, match="bad part 'melt'"):
        Rig(EXAMPLE, schedule=RigSchedule(faults=[RigFault(at_s=1.0, device="ph", spec="melt")]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"at_s": 1.0},
        {"at_s": 1.0, "kind": "pump_stall", "device": "ph"},
        {"at_s": 1.0, "device": "ph"},
        {"at_s": 1.0, "device": "ph", "disconnect_s": 5.0, "duration_s": 5.0},
    ],
)
def test_rig_fault_needs_one_target(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, ConfigError)):
        RigFault(**kwargs)  # type: ignore[arg-type]
