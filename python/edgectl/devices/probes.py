"""Probes: Hamilton ARC (Modbus RTU) and Atlas Scientific EZO (UART) pH, DO and RTD."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgectl.devices.base import SerialDevice, check_address
from edgectl.errors import DeviceError, InvalidInputError, ProtocolError
from edgectl.io.modbus import ModbusProtocol, decode_registers
from edgectl.io.profile import DeviceProfile
from edgectl.io.transport import Port

__all__ = [
    "ArcReading",
    "EzoDoProbe",
    "EzoPhProbe",
    "EzoProbe",
    "EzoRtdProbe",
    "HamiltonArcProbe",
    "HamiltonDoProbe",
    "HamiltonPhProbe",
]

# Hamilton PMC status bits (pH ARC Modbus manual EPHUM011 p. 23, devices.md §1.3).
ARC_STATUS_BITS = {
    0x01: "temperature out of measurement range",
    0x02: "out of operating range",
    0x04: "calibration",
    0x08: "warning",
    0x10: "error",
}


class ArcReading(tuple[float, int, int]):
    """(value, unit bitmask, status bits) of one PMC block."""

    __slots__ = ()

    @property
    def value(self) -> float:
        return self[0]

    @property
    def unit_bits(self) -> int:
        return self[1]

    @property
    def status(self) -> int:
        return self[2]


class HamiltonArcProbe(SerialDevice):
    """A Hamilton ARC sensor on Modbus RTU: primary value (PMC1) and temperature (PMC6).

    Reads whole 10-register PMC blocks, as the manual requires; floats and u32 fields are low
    word first (the profile's ``word_order``). A status with the *error* bit raises
    :class:`~edgectl.errors.DeviceError`.
    """

    kind = "probe"
    default_profile = "hamilton/arc-ph"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        check_address("slave", options.get("slave"), 1, 247)

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        slave: int | None = None,
        name: str | None = None,
    ) -> None:
        self.check_options(slave=slave)
        super().__init__(port, profile, name=name, startup=False)
        self.modbus = ModbusProtocol(self.port, self.profile, name=self.name, slave=slave)

    def _block(self, key: str) -> ArcReading:
        self._check_open()
        words = self.modbus.read_block(key)
        m = self.modbus.map
        regs = m.registers
        unit = int(decode_registers(words, regs[f"{key}_unit"], m.word_order))
        value = decode_registers(words, regs[key], m.word_order)
        status = int(decode_registers(words, regs[f"{key}_status"], m.word_order))
        if status & 0x10:
            raise DeviceError(f"{self.name}: {key} reports sensor error (status 0x{status:02x})")
        if not math.isfinite(value):
            raise ProtocolError(
                f"{self.name}: {key} is not finite: {value} (status 0x{status:02x})"
            )
        return ArcReading((value, unit, status))

    def read_primary(self) -> ArcReading:
        """PMC1 block: pH, DO (% air saturation) or conductivity, by sensor."""
        return self._block("primary")

    def read_temp_c(self) -> float:
        return self._block("temperature").value

    def status_text(self, status: int) -> list[str]:
        return [text for bit, text in ARC_STATUS_BITS.items() if status & bit]


class HamiltonPhProbe(HamiltonArcProbe):
    """Hamilton EasyFerm Plus / Polilyte Plus ARC pH sensor."""

    default_profile = "hamilton/arc-ph"

    def read_ph(self) -> float:
        return self.read_primary().value


class HamiltonDoProbe(HamiltonArcProbe):
    """Hamilton VisiFerm DO ARC sensor (primary value in % air saturation)."""

    default_profile = "hamilton/arc-do"

    def read_do_pct(self) -> float:
        return self.read_primary().value


class EzoProbe(SerialDevice):
    """An Atlas Scientific EZO circuit in UART mode (devices.md §1.4).

    Start-up turns continuous mode off (``C,0``) and response codes on (``*OK,1``); stray
    continuous readings that arrive anyway are skipped by the protocol engine.
    """

    kind = "probe"

    def read(self) -> dict[str, Any]:
        return self.query("read")

    def info(self) -> dict[str, Any]:
        return self.query("info")

    def set_temp_compensation_c(self, temp_c: float) -> None:
        if not -20.0 <= float(temp_c) <= 150.0:
            raise InvalidInputError(f"temp_c must be in [-20, 150], got {temp_c!r}")
        self.query("set_temp_compensation", temp_c=float(temp_c))

    def calibrate(self, point: str, value: float) -> None:
        self.query("calibrate", point=point, value=float(value))


class EzoPhProbe(EzoProbe):
    default_profile = "atlas-scientific/ezo-ph"

    def read_ph(self) -> float:
        return self._number(self.read(), "ph", "read")


class EzoDoProbe(EzoProbe):
    default_profile = "atlas-scientific/ezo-do"

    def read_do_pct(self) -> float:
        return self._number(self.read(), "do_pct", "read")

    def read_do_mg_l(self) -> float:
        return self._number(self.read(), "do_mg_l", "read")


class EzoRtdProbe(EzoProbe):
    default_profile = "atlas-scientific/ezo-rtd"

    def read_temp_c(self) -> float:
        return self._number(self.read(), "temp_c", "read")
