"""Temperature circulators and panel controllers on Modbus RTU, driven by a register map."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from edgectl.devices.base import SerialDevice, check_address
from edgectl.errors import InvalidInputError
from edgectl.io.modbus import ModbusProtocol
from edgectl.io.profile import DeviceProfile
from edgectl.io.transport import Port

__all__ = ["ModbusCirculator"]


class ModbusCirculator(SerialDevice):
    """A circulator whose profile maps ``temp_c``, ``setpoint_c`` and ``run`` registers.

    Setpoint writes are rate-limited (``min_write_interval_s``): Eurotherm-style controllers
    keep the setpoint in EEPROM, rated for ~100 000 writes (devices.md §1.7). :meth:`close`
    stops circulation (``run`` = 0).
    """

    kind = "circulator"
    default_profile = "generic/modbus-circulator"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        check_address("slave", options.get("slave"), 1, 247)
        interval = options.get("min_write_interval_s", 0.0)
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not 0.0 <= interval <= 86_400.0
        ):
            raise InvalidInputError(
                f"min_write_interval_s must be in [0, 86400] s, got {interval!r}"
            )

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        slave: int | None = None,
        min_write_interval_s: float = 0.0,
        name: str | None = None,
    ) -> None:
        self.check_options(slave=slave, min_write_interval_s=min_write_interval_s)
        super().__init__(port, profile, name=name, startup=False)
        self.modbus = ModbusProtocol(self.port, self.profile, name=self.name, slave=slave)
        self.min_write_interval_s = min_write_interval_s
        self._last_sp_write = float("-inf")
        self._pending_sp: float | None = None

    def read_temp_c(self) -> float:
        self._check_open()
        return self.modbus.read("temp_c")

    def read_setpoint_c(self) -> float:
        self._check_open()
        return self.modbus.read("setpoint_c")

    def set_setpoint_c(self, setpoint_c: float) -> bool:
        """Write the setpoint; returns False if skipped by the EEPROM rate limit."""
        sp = float(setpoint_c)
        if not math.isfinite(sp) or not -40.0 <= sp <= 200.0:
            raise InvalidInputError(f"setpoint_c must be in [-40, 200], got {setpoint_c!r}")
        self._check_open()
        now = time.monotonic()
        if now - self._last_sp_write < self.min_write_interval_s:
            self._pending_sp = sp
            return False
        self.modbus.write("setpoint_c", sp)
        self._last_sp_write = now
        self._pending_sp = None
        return True

    def start(self) -> None:
        self._check_open()
        self.modbus.write("run", 1)

    def stop(self) -> None:
        self._check_open()
        self.modbus.write("run", 0)

    def is_running(self) -> bool:
        self._check_open()
        return self.modbus.read("run") >= 0.5

    def make_safe(self) -> None:
        self.stop()
