"""Mass-flow controllers: Alicat (ASCII) and Bronkhorst (ProPar)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgectl.devices.base import SerialDevice, check_address
from edgectl.errors import DeviceError, InvalidInputError
from edgectl.io.profile import DeviceProfile
from edgectl.io.propar import ProparProtocol
from edgectl.io.transport import Port

__all__ = ["AlicatMfc", "BronkhorstMfc", "MassFlowController"]


class MassFlowController(SerialDevice):
    """Common API of the gas mass-flow controllers (flows in sccm)."""

    kind = "mfc"
    safe_flow_sccm: float = 0.0

    def set_flow_sccm(self, flow_sccm: float) -> float:
        raise NotImplementedError

    def read_flow_sccm(self) -> float:
        raise NotImplementedError

    def read_setpoint_sccm(self) -> float:
        raise NotImplementedError

    def make_safe(self) -> None:
        self.set_flow_sccm(self.safe_flow_sccm)

    @staticmethod
    def _check_safe(safe_flow_sccm: Any) -> None:
        flow = safe_flow_sccm
        if isinstance(flow, bool) or not isinstance(flow, int | float) or not math.isfinite(flow):
            raise InvalidInputError(f"safe_flow_sccm must be a finite number, got {flow!r}")
        if flow < 0.0:
            raise InvalidInputError(f"safe_flow_sccm must be >= 0, got {flow!r}")

    @staticmethod
    def _check_flow(flow_sccm: float) -> float:
        flow = float(flow_sccm)
        if not math.isfinite(flow) or flow < 0.0:
            raise InvalidInputError(f"flow_sccm must be finite and >= 0, got {flow_sccm!r}")
        return flow


class AlicatMfc(MassFlowController):
    """Alicat MC-series mass-flow controller (ASCII protocol, devices.md §1.1).

    Parameters
    ----------
    port, profile, name
        See :class:`~edgectl.devices.base.SerialDevice`.
    unit
        Unit ID ``A``-``Z`` on a multi-drop line.
    safe_flow_sccm
        Setpoint written on :meth:`close`.

    Examples
    --------
    >>> with AlicatMfc("sim://mfc-air?profile=alicat/mc-series") as mfc:
    ...     mfc.set_flow_sccm(250.0)
    ...     round(mfc.read_flow_sccm(), 1)
    250.0
    1000.0
    """

    default_profile = "alicat/mc-series"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        unit = options.get("unit", "A")
        if not isinstance(unit, str) or len(unit) != 1 or not ("A" <= unit <= "Z"):
            raise InvalidInputError(f"Alicat unit ID must be one letter A-Z, got {unit!r}")
        cls._check_safe(options.get("safe_flow_sccm", 0.0))

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        unit: str = "A",
        safe_flow_sccm: float = 0.0,
        name: str | None = None,
    ) -> None:
        self.check_options(unit=unit, safe_flow_sccm=safe_flow_sccm)
        self.unit = unit
        self.safe_flow_sccm = safe_flow_sccm
        super().__init__(port, profile, name=name)

    def _format_values(self) -> dict[str, Any]:
        return {"unit": self.unit}

    def _frame(self, values: dict[str, Any], command: str) -> dict[str, Any]:
        if values.get("unit") != self.unit:
            raise DeviceError(
                f"{self.name}: reply to {command!r} is from unit {values.get('unit')!r}, "
                f"expected {self.unit!r}"
            )
        return values

    def read_all(self) -> dict[str, Any]:
        """One data frame: pressure_psia, temp_c, vol_flow_sccm, mass_flow_sccm,
        setpoint_sccm, gas."""
        return self._frame(self.query("poll"), "poll")

    def read_flow_sccm(self) -> float:
        return self._number(self.read_all(), "mass_flow_sccm", "poll")

    def read_setpoint_sccm(self) -> float:
        return self._number(self.read_all(), "setpoint_sccm", "poll")

    def read_temp_c(self) -> float:
        return self._number(self.read_all(), "temp_c", "poll")

    def read_pressure_psia(self) -> float:
        return self._number(self.read_all(), "pressure_psia", "poll")

    def set_flow_sccm(self, flow_sccm: float) -> float:
        """Write the setpoint; returns the setpoint the controller reports back."""
        flow = self._check_flow(flow_sccm)
        values = self._frame(self.query("set_setpoint", setpoint_sccm=flow), "set_setpoint")
        got = self._number(values, "setpoint_sccm", "set_setpoint")
        if abs(got - flow) > max(0.01, 1e-3 * abs(flow)):
            raise DeviceError(
                f"{self.name}: setpoint {flow} sccm not taken, controller reports {got}"
            )
        return got

    def hold_valve(self) -> None:
        self.query("hold")

    def cancel_hold(self) -> None:
        self.query("cancel_hold")

    def firmware(self) -> str:
        return str(self.query("firmware")["firmware"])


class BronkhorstMfc(MassFlowController):
    """Bronkhorst EL-FLOW (ProPar over RS232, ASCII or binary mode, devices.md §1.2).

    Flows are read and written as ``fMeasure``/``fSetpoint`` (DDE 205/206) in the capacity unit,
    which the profile states (``mln/min`` = sccm at the instrument's normal conditions).
    """

    default_profile = "bronkhorst/el-flow-propar"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        check_address("node", options.get("node"), 1, 247)
        cls._check_safe(options.get("safe_flow_sccm", 0.0))

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        node: int | None = None,
        safe_flow_sccm: float = 0.0,
        name: str | None = None,
    ) -> None:
        self.check_options(node=node, safe_flow_sccm=safe_flow_sccm)
        self.safe_flow_sccm = safe_flow_sccm
        self._node = node
        super().__init__(port, profile, name=name, startup=False)
        self.propar = ProparProtocol(self.port, self.profile, name=self.name, node=node)

    def read_flow_sccm(self) -> float:
        self._check_open()
        return float(self.propar.read("fmeasure"))

    def read_all(self) -> dict[str, float]:
        """Flow, setpoint and measure % in one chained ProPar request."""
        self._check_open()
        v = self.propar.read_many(["fmeasure", "fsetpoint", "measure"])
        assert self.profile.propar is not None
        raw = int(v["measure"])
        raw = raw - 65536 if raw > 41942 else raw
        return {
            "flow_sccm": float(v["fmeasure"]),
            "setpoint_sccm": float(v["fsetpoint"]),
            "measure_pct": 100.0 * raw / self.profile.propar.full_scale_raw,
        }

    def read_setpoint_sccm(self) -> float:
        self._check_open()
        return float(self.propar.read("fsetpoint"))

    def read_measure_pct(self) -> float:
        """Measure as % of capacity (DDE 8, 32000 = 100 %)."""
        self._check_open()
        raw = int(self.propar.read("measure"))
        if raw > 41942:  # Bronkhorst signed int16: 41943..65535 are negative readings
            raw -= 65536
        assert self.profile.propar is not None
        return 100.0 * raw / self.profile.propar.full_scale_raw

    def read_fluid(self) -> str:
        self._check_open()
        return str(self.propar.read("fluid_name"))

    def read_capacity(self) -> float:
        self._check_open()
        return float(self.propar.read("capacity"))

    def set_flow_sccm(self, flow_sccm: float) -> float:
        flow = self._check_flow(flow_sccm)
        self._check_open()
        self.propar.write("fsetpoint", flow)
        return flow
