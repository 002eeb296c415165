"""GPIO devices through gpiozero, with the pin factory injected.

On a Pi, pass ``pin_factory=None`` (gpiozero's default) or build it from the board profile
(:meth:`Board.make_pin_factory`, lgpio with ``chip=0`` on a Pi 5, devices.md §5). Elsewhere
inject ``gpiozero.pins.mock.MockFactory(pin_class=MockPWMPin)``; there is no ``if testing``
branch. gpiozero + lgpio PWM is software-timed with 1 % duty resolution: fine for a heater
blanket through a zero-cross SSR (period 1-10 s), not for servos.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

from gpiozero import DigitalInputDevice, OutputDevice, PWMOutputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockPWMPin

from edgectl.errors import ConfigError, InvalidInputError
from edgectl.io.profile import BoardProfile, load_board

__all__ = ["Board", "FoamProbe", "Heater", "Relay", "RelayPump", "SimPWMPin", "Valve"]


class SimPWMPin(MockPWMPin):
    """gpiozero's ``MockPWMPin`` keeping only its last :attr:`HISTORY` state changes.

    ``MockPin`` appends every change to ``states`` for its assertions; a simulated run sets its
    heater duty every scan, so over a 14-day culture that list grew by ~1.3 MB a day. The pins
    of simulated runs (``sim://`` plants, ``pin_factory = "mock"``) keep a bounded history.
    """

    HISTORY = 1000

    def clear_states(self) -> None:
        super().clear_states()
        self.states: Any = collections.deque(self.states, maxlen=self.HISTORY)


class _GpioDevice:
    name: str
    _closed: bool = False

    def make_safe(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Outputs to their safe state, then release the pin. Safe to call twice."""
        if self._closed:
            return
        try:
            self.make_safe()
        finally:
            self._closed = True
            self._release()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Heater(_GpioDevice):
    """A heater blanket driven by PWM (SSR or MOSFET); duty 0-1.

    Examples
    --------
    >>> from gpiozero.pins.mock import MockFactory, MockPWMPin
    >>> factory = MockFactory(pin_class=MockPWMPin)
    >>> with Heater(18, pin_factory=factory) as heater:
    ...     heater.set_duty(0.35)
    ...     factory.pin(18).state
    0.35
    >>> factory.pin(18).state
    0.0
    """

    def __init__(
        self,
        pin: int,
        *,
        frequency_hz: float = 1.0,
        active_high: bool = True,
        pin_factory: Factory | None = None,
        name: str = "heater",
    ) -> None:
        self.name = name
        self._dev = PWMOutputDevice(
            pin,
            active_high=active_high,
            initial_value=0.0,
            frequency=frequency_hz,
            pin_factory=pin_factory,
        )

    @property
    def duty(self) -> float:
        return float(self._dev.value)

    def set_duty(self, duty: float) -> None:
        d = float(duty)
        if not math.isfinite(d) or not 0.0 <= d <= 1.0:
            raise InvalidInputError(f"{self.name}: duty must be in [0, 1], got {duty!r}")
        if self._closed:
            raise InvalidInputError(f"{self.name}: heater is closed")
        self._dev.value = d

    def make_safe(self) -> None:
        self._dev.value = 0.0

    def _release(self) -> None:
        self._dev.close()


class Relay(_GpioDevice):
    """One relay channel (often active-low on relay boards)."""

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        safe_on: bool = False,
        pin_factory: Factory | None = None,
        name: str = "relay",
    ) -> None:
        self.name = name
        self.safe_on = safe_on
        self._dev = OutputDevice(
            pin, active_high=active_high, initial_value=safe_on, pin_factory=pin_factory
        )

    @property
    def is_on(self) -> bool:
        return bool(self._dev.value)

    def on(self) -> None:
        self._dev.on()

    def off(self) -> None:
        self._dev.off()

    def make_safe(self) -> None:
        if self.safe_on:
            self._dev.on()
        else:
            self._dev.off()

    def _release(self) -> None:
        self._dev.close()


class Valve(Relay):
    """A solenoid valve on a relay: ``open``/``close_valve``; safe state closed."""

    def open(self) -> None:
        self.on()

    def close_valve(self) -> None:
        self.off()

    @property
    def is_open(self) -> bool:
        return self.is_on


class RelayPump(Relay):
    """A fixed-speed pump switched by a relay: ``start``/``stop``; safe state stopped."""

    def start(self) -> None:
        self.on()

    def stop(self) -> None:
        self.off()

    @property
    def is_running(self) -> bool:
        return self.is_on


class FoamProbe(_GpioDevice):
    """Foam (level) probe: a contact closing to ground when foam touches it."""

    def __init__(
        self,
        pin: int,
        *,
        pull_up: bool = True,
        bounce_time_s: float | None = None,
        pin_factory: Factory | None = None,
        name: str = "foam",
    ) -> None:
        self.name = name
        self._dev = DigitalInputDevice(
            pin, pull_up=pull_up, bounce_time=bounce_time_s, pin_factory=pin_factory
        )

    @property
    def is_foam(self) -> bool:
        return bool(self._dev.is_active)

    def read(self) -> float:
        """1.0 with foam, else 0.0 (the plant signal ``foam``)."""
        return 1.0 if self.is_foam else 0.0

    def make_safe(self) -> None:
        pass

    def _release(self) -> None:
        self._dev.close()


class Board:
    """All GPIO devices of a board profile (``firmware_profiles/boards/*.toml``).

    Outputs of kind ``pwm`` become :class:`Heater`; ``relay`` outputs become :class:`Valve`
    when the name starts with ``valve``, :class:`RelayPump` when it starts with ``pump``,
    else :class:`Relay`; inputs become :class:`FoamProbe`.
    """

    def __init__(
        self, profile: str | Path | BoardProfile, *, pin_factory: Factory | None = None
    ) -> None:
        self.profile = profile if isinstance(profile, BoardProfile) else load_board(profile)
        self.devices: dict[str, Any] = {}
        try:
            for key, out in self.profile.outputs.items():
                if out.kind == "pwm":
                    self.devices[key] = Heater(
                        out.pin,
                        frequency_hz=out.frequency_hz,
                        active_high=out.active_high,
                        pin_factory=pin_factory,
                        name=key,
                    )
                else:
                    cls = (
                        Valve
                        if key.startswith("valve")
                        else RelayPump
                        if key.startswith("pump")
                        else Relay
                    )
                    self.devices[key] = cls(
                        out.pin,
                        active_high=out.active_high,
                        safe_on=out.safe_value >= 0.5,
                        pin_factory=pin_factory,
                        name=key,
                    )
            for key, inp in self.profile.inputs.items():
                self.devices[key] = FoamProbe(
                    inp.pin,
                    pull_up=inp.pull_up,
                    bounce_time_s=inp.bounce_time_s,
                    pin_factory=pin_factory,
                    name=key,
                )
        except Exception:
            self.close()
            raise

    def make_pin_factory(self) -> Factory:
        """The real pin factory the profile names (lgpio ``chip=`` on a Pi 5). Only on a Pi."""
        board = self.profile.board
        if board.pin_factory == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory(chip=board.gpiochip)
        if board.pin_factory == "mock":
            from gpiozero.pins.mock import MockFactory

            return MockFactory(revision=board.revision or None, pin_class=SimPWMPin)
        raise ConfigError(f"board {board.model}: pin factory {board.pin_factory!r} not supported")

    def __getitem__(self, key: str) -> Any:
        return self.devices[key]

    def close(self) -> None:
        """Every output to its safe state; idempotent."""
        for dev in self.devices.values():
            dev.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
