"""Balances: Mettler Toledo MT-SICS and Sartorius SBI."""

from __future__ import annotations

from edgectl.devices.base import SerialDevice
from edgectl.errors import DeviceError

__all__ = ["MtSicsBalance", "SartoriusSbiBalance"]


class MtSicsBalance(SerialDevice):
    """A balance speaking MT-SICS level 0/1 (devices.md §1.5). Start-up sends ``@`` (reset)."""

    kind = "balance"
    default_profile = "mettler-toledo/mt-sics"

    def read_mass_g(self, *, stable: bool = False) -> float:
        """Weight in g: ``SI`` (immediate, default) or ``S`` (waits for stability)."""
        values = self.query("read_stable" if stable else "read_immediate")
        status = values.get("status", "S")
        if status in ("+", "-"):
            raise DeviceError(
                f"{self.name}: balance {'overload' if status == '+' else 'underload'}"
            )
        if status == "I":
            raise DeviceError(f"{self.name}: balance busy, no weight available")
        if values.get("unit") not in (None, "g"):
            raise DeviceError(f"{self.name}: balance reports unit {values['unit']!r}, not g")
        return self._number(values, "mass_g", "read_stable" if stable else "read_immediate")

    def is_stable(self) -> bool:
        return self.query("read_immediate").get("status") == "S"

    def zero(self) -> None:
        self.query("zero")

    def tare(self) -> float:
        return self._number(self.query("tare"), "tare_g", "tare")

    def serial_number(self) -> str:
        return str(self.query("serial_number")["serial"])


class SartoriusSbiBalance(SerialDevice):
    """A Sartorius balance speaking SBI (``ESC P`` print, ``ESC T`` tare), devices.md §1.5."""

    kind = "balance"
    default_profile = "sartorius/sbi"

    def read_mass_g(self) -> float:
        values = self.query("print")
        if values.get("unit", "g") not in ("g", ""):
            raise DeviceError(f"{self.name}: balance reports unit {values['unit']!r}, not g")
        mass = self._number(values, "mass_g", "print")
        return -mass if values.get("sign") == "-" else mass

    def is_stable(self) -> bool:
        """SBI leaves the unit field empty while the weight is unstable."""
        return bool(self.query("print").get("unit"))

    def tare(self) -> None:
        self.query("tare")

    def model(self) -> str:
        return str(self.query("model")["model"])
