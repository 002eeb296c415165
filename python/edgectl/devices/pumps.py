"""Peristaltic pumps: Ismatec Reglo ICC (channel addressing) and Watson-Marlow Du drives."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgectl.devices.base import SerialDevice, check_address
from edgectl.errors import DeviceError, InvalidInputError
from edgectl.io.profile import DeviceProfile
from edgectl.io.protocol import CommandRefusedError
from edgectl.io.transport import Port

__all__ = ["RegloIccPump", "WatsonMarlowPump", "format_mmmmse"]


def format_mmmmse(value: float) -> str:
    """Reglo "volume type 1": m.mmm x 10^e written ``mmmm±e`` (1.2 -> ``1200+0``).

    Reglo ICC manual, data types (devices.md §1.6).
    """
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"value must be finite and >= 0, got {value!r}")
    if value == 0:
        return "0000+0"
    e = math.floor(math.log10(value))
    m = round(value / 10**e * 1000)
    if m >= 10000:
        m //= 10
        e += 1
    if not -9 <= e <= 9:
        raise InvalidInputError(f"{value} is out of the Reglo number range")
    return f"{m:04d}{'+' if e >= 0 else '-'}{abs(e)}"


class _Dosing:
    """What a controller output means by a pump rate, for pumps with start/stop."""

    def set_rate_ml_min(self, rate_ml_min: float) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def set_dose_rate_ml_min(self, rate_ml_min: float) -> None:
        """Deliver ``rate_ml_min``: 0 stops the pump, > 0 sets the rate and runs it.

        What a controller output means by a pump rate (the runtime writes this); the plain
        :meth:`set_rate_ml_min` only changes the setting, as on the keypad.
        """
        rate = float(rate_ml_min)
        if rate <= 0.0:
            self.stop()
            return
        self.set_rate_ml_min(rate)
        self.start()


class RegloIccPump(_Dosing, SerialDevice):
    """One channel of an Ismatec Reglo ICC, run in flow-rate mode.

    Start-up sets the pump address (``@1``), channel addressing (``1~1``) and turns event
    messages off (``1xE0``). :meth:`close` stops the channel.
    """

    kind = "pump"
    default_profile = "ismatec/reglo-icc"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        check_address("channel", options.get("channel", 1), 1, 4)
        check_address("address", options.get("address", 1), 1, 8)

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        channel: int = 1,
        address: int = 1,
        name: str | None = None,
    ) -> None:
        self.check_options(channel=channel, address=address)
        self.channel = channel
        self.address = address
        super().__init__(port, profile, name=name)

    def _format_values(self) -> dict[str, Any]:
        return {"channel": self.channel, "address": self.address}

    def set_rate_ml_min(self, rate_ml_min: float) -> None:
        """Flow-rate mode at ``rate_ml_min`` (does not start the pump)."""
        text = format_mmmmse(float(rate_ml_min))
        self.query("mode_flow")
        self.query("set_flow", flow=text)

    def read_rate_ml_min(self) -> float:
        return self._number(self.query("read_flow"), "flow_ml_min", "read_flow")

    def set_rpm(self, rpm: float) -> None:
        if not 0 <= rpm <= 9999.99:
            raise InvalidInputError(f"rpm must be in [0, 9999.99], got {rpm!r}")
        self.query("mode_rpm")
        self.query("set_rpm", rpm_x100=round(rpm * 100))

    def read_rpm(self) -> float:
        return self._number(self.query("read_rpm"), "rpm", "read_rpm")

    def start(self) -> None:
        """Run the channel. A channel that already runs answers ``H`` with ``#`` (not executed):
        that is no failure when ``E`` says it runs (a new rate applies as soon as it is set), so
        a rate change of a running pump is not an output fault."""
        try:
            reply = self.query("start").get("reply")
        except CommandRefusedError:
            if self.is_running():
                return
            raise
        if reply == "-":
            raise DeviceError(f"{self.name}: channel {self.channel} cannot run with these settings")

    def stop(self) -> None:
        self.query("stop")

    def is_running(self) -> bool:
        return self.query("is_running").get("reply") == "+"

    def make_safe(self) -> None:
        self.stop()


class WatsonMarlowPump(_Dosing, SerialDevice):
    """A Watson-Marlow 520Du/620Du drive on RS232 (echo on; devices.md §1.6).

    Set commands are confirmed by their echo only; :meth:`read_status` parses ``RS``. Rates in
    mL/min use the drive's own mL/rev from the status line. :meth:`close` stops the pump.
    """

    kind = "pump"
    default_profile = "watson-marlow/520du"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        check_address("pump number", options.get("pump", 1), 1, 32)

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        pump: int = 1,
        name: str | None = None,
    ) -> None:
        self.check_options(pump=pump)
        self.pump = pump
        super().__init__(port, profile, name=name)

    def _format_values(self) -> dict[str, Any]:
        return {"pump": self.pump}

    def read_status(self) -> dict[str, Any]:
        return self.query("status")

    def read_rpm(self) -> float:
        return self._number(self.read_status(), "rpm", "status")

    def is_running(self) -> bool:
        return self._number(self.read_status(), "running", "status") == 1.0

    def set_rpm(self, rpm: float) -> None:
        field = self.profile.fields.get("rpm")
        top = field.max if field is not None and field.max is not None else 9999.0
        if not math.isfinite(rpm) or not 0.0 <= rpm <= top:
            raise InvalidInputError(f"rpm must be in [0, {top}], got {rpm!r}")
        self.query("set_rpm", rpm=float(rpm))

    def set_rate_ml_min(self, rate_ml_min: float) -> None:
        ml_per_rev = self._number(self.read_status(), "ml_per_rev", "status")
        if ml_per_rev <= 0.0:
            raise DeviceError(f"{self.name}: drive reports {ml_per_rev} mL/rev")
        self.set_rpm(round(float(rate_ml_min) / ml_per_rev, 1))

    def start(self) -> None:
        self.query("start")

    def stop(self) -> None:
        self.query("stop")

    def make_safe(self) -> None:
        self.stop()
