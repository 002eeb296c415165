"""Device drivers, one module per family, configured by firmware profiles.

Serial devices take a pyserial URL (``/dev/ttyUSB0``, ``socket://…``, ``sim://…``) and a
profile name; GPIO devices take a pin and an injected gpiozero pin factory.
"""

from __future__ import annotations

from pathlib import Path

from edgectl.devices.balances import MtSicsBalance, SartoriusSbiBalance
from edgectl.devices.base import SerialDevice
from edgectl.devices.circulators import ModbusCirculator
from edgectl.devices.gpio import Board, FoamProbe, Heater, Relay, RelayPump, Valve
from edgectl.devices.mfc import AlicatMfc, BronkhorstMfc, MassFlowController
from edgectl.devices.probes import (
    EzoDoProbe,
    EzoPhProbe,
    EzoProbe,
    EzoRtdProbe,
    HamiltonArcProbe,
    HamiltonDoProbe,
    HamiltonPhProbe,
)
from edgectl.devices.pumps import RegloIccPump, WatsonMarlowPump
from edgectl.devices.spectrometers import Spectrometer, Spectrum
from edgectl.errors import ProfileError
from edgectl.io.profile import find_profile, load_profile

__all__ = [
    "DRIVERS",
    "AlicatMfc",
    "Board",
    "BronkhorstMfc",
    "EzoDoProbe",
    "EzoPhProbe",
    "EzoProbe",
    "EzoRtdProbe",
    "FoamProbe",
    "HamiltonArcProbe",
    "HamiltonDoProbe",
    "HamiltonPhProbe",
    "Heater",
    "MassFlowController",
    "ModbusCirculator",
    "MtSicsBalance",
    "RegloIccPump",
    "Relay",
    "RelayPump",
    "SartoriusSbiBalance",
    "SerialDevice",
    "Spectrometer",
    "Spectrum",
    "Valve",
    "WatsonMarlowPump",
    "open_device",
]

#: Driver class for each shipped profile (``vendor/model``).
DRIVERS: dict[str, type[SerialDevice]] = {
    "alicat/mc-series": AlicatMfc,
    "bronkhorst/el-flow-propar": BronkhorstMfc,
    "hamilton/arc-ph": HamiltonPhProbe,
    "hamilton/arc-do": HamiltonDoProbe,
    "atlas-scientific/ezo-ph": EzoPhProbe,
    "atlas-scientific/ezo-do": EzoDoProbe,
    "atlas-scientific/ezo-rtd": EzoRtdProbe,
    "mettler-toledo/mt-sics": MtSicsBalance,
    "sartorius/sbi": SartoriusSbiBalance,
    "ismatec/reglo-icc": RegloIccPump,
    "generic/modbus-circulator": ModbusCirculator,
    "watson-marlow/520du": WatsonMarlowPump,
    "generic/spectrometer-ascii": Spectrometer,
}


def open_device(url: str, profile: str | Path, **kwargs: object) -> SerialDevice:
    """Open the driver for ``profile`` (``"vendor/model"``) on ``url``."""
    path = find_profile(profile)
    cls = DRIVERS.get(f"{path.parent.name}/{path.stem}")
    if cls is None:
        raise ProfileError(f"{path}: no driver for this profile (known: {', '.join(DRIVERS)})")
    return cls(url, load_profile(path), **kwargs)  # type: ignore[arg-type]
