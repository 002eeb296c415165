"""Shared tables and helpers of the device tests (drivers, emulators, faults)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from edgectl.devices import (
    AlicatMfc,
    BronkhorstMfc,
    EzoDoProbe,
    EzoPhProbe,
    EzoRtdProbe,
    HamiltonDoProbe,
    HamiltonPhProbe,
    ModbusCirculator,
    MtSicsBalance,
    RegloIccPump,
    SartoriusSbiBalance,
    SerialDevice,
    WatsonMarlowPump,
)
from edgectl.io.profile import DeviceProfile, load_profile

# Short timeouts keep the fault tests fast; the bound asserted is generous relative to them.
TIMEOUT_S = 0.1
RETRIES = 1
_counter = itertools.count()


def fast_profile(name: str) -> DeviceProfile:
    """The shipped profile with a 0.1 s reply deadline and one retry (command overrides too)."""
    prof = load_profile(name)
    commands = {
        k: msgspec.structs.replace(c, timeout_s=TIMEOUT_S) for k, c in prof.commands.items()
    }
    serial = msgspec.structs.replace(prof.serial, timeout_s=TIMEOUT_S, retries=RETRIES)
    return msgspec.structs.replace(prof, serial=serial, commands=commands)


def max_wait_s(prof: DeviceProfile) -> float:
    """Generous bound on one failing call: every attempt's deadline plus reopen pauses."""
    attempts = prof.serial.retries + 1
    return attempts * (prof.serial.timeout_s + 0.25) + 2.0


@dataclass(frozen=True)
class DriverCase:
    """How to open one driver and what its main reading must be on the default plant."""

    profile: str
    cls: type[SerialDevice]
    read: Callable[[Any], float]
    signal: str  # plant signal behind the reading
    expected: float
    tol: float = 1e-3

    @property
    def id(self) -> str:
        return self.profile.replace("/", "-")

    def url(self, name: str | None = None, **params: str) -> tuple[str, str]:
        device = name or f"{self.id}-{next(_counter)}"
        query = "&".join(f"{k}={v}" for k, v in {"delay_scale": "0.01", **params}.items())
        return device, f"sim://{device}?profile={self.profile}&{query}"

    def open(self, url: str) -> Any:
        return self.cls(url, fast_profile(self.profile))


CASES = [
    DriverCase(
        "alicat/mc-series", AlicatMfc, lambda d: d.read_flow_sccm(), "air_flow_sccm", 1000.0
    ),
    DriverCase(
        "bronkhorst/el-flow-propar",
        BronkhorstMfc,
        lambda d: d.read_flow_sccm(),
        "air_flow_sccm",
        1000.0,
    ),
    DriverCase("hamilton/arc-ph", HamiltonPhProbe, lambda d: d.read_ph(), "ph", 7.0),
    DriverCase("hamilton/arc-do", HamiltonDoProbe, lambda d: d.read_do_pct(), "do_pct", 40.0),
    DriverCase("atlas-scientific/ezo-ph", EzoPhProbe, lambda d: d.read_ph(), "ph", 7.0),
    DriverCase(
        "atlas-scientific/ezo-do", EzoDoProbe, lambda d: d.read_do_pct(), "do_pct", 40.0, 0.05
    ),
    DriverCase("atlas-scientific/ezo-rtd", EzoRtdProbe, lambda d: d.read_temp_c(), "temp_c", 37.0),
    DriverCase(
        "mettler-toledo/mt-sics",
        MtSicsBalance,
        lambda d: d.read_mass_g(),
        "reactor_mass_g",
        2000.0,
        0.01,
    ),
    DriverCase(
        "sartorius/sbi",
        SartoriusSbiBalance,
        lambda d: d.read_mass_g(),
        "feed_mass_g",
        500.0,
        0.01,
    ),
    DriverCase(
        "ismatec/reglo-icc",
        RegloIccPump,
        lambda d: d.read_rpm(),
        "",
        0.0,
    ),
    DriverCase(
        "generic/modbus-circulator",
        ModbusCirculator,
        lambda d: d.read_temp_c(),
        "jacket_temp_c",
        37.0,
        0.051,
    ),
    DriverCase("watson-marlow/520du", WatsonMarlowPump, lambda d: d.read_rpm(), "", 0.0),
]
#: Profiles whose protocol defines no error reply (the "error" fault is then silence).
NO_ERROR_REPLY = {"watson-marlow/520du"}
CASE_IDS = [c.id for c in CASES]
