"""Device emulators backed by a plant, reachable in-process or over a pty / TCP port.

- In process: ``serial.serial_for_url("sim://<device>?profile=<vendor>/<model>&...")`` (the
  handler is :mod:`edgectl.emulators.protocol_sim`, registered by importing :mod:`edgectl.io`).
  Query parameters: ``plant=<name>`` (see :func:`set_plant`; default a shared
  :class:`~edgectl.plant.ConstantPlant`), ``address=``, ``fault=<spec>``, ``delay_scale=``,
  ``seed=``, ``signal_<key>=<plant signal>``. The same ``<device>`` name always reaches the
  same emulator (so tests can inject faults with :func:`get_emulator`). ``address=A,B`` puts
  one emulator per address on a multi-drop line (:class:`EmulatorBus`); :func:`attach` adds
  devices of other models to a line.
- Out of process: ``edgectl emulate PROFILE --pty | --tcp PORT`` (:mod:`edgectl.emulators.server`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from edgectl.emulators.base import (
    FAULT_KINDS,
    Emulator,
    EmulatorBus,
    Fault,
    Faults,
    parse_fault_spec,
)
from edgectl.emulators.line import (
    AlicatEmulator,
    EzoEmulator,
    LineEmulator,
    MtSicsEmulator,
    RegloIccEmulator,
    SbiEmulator,
    WatsonMarlowEmulator,
)
from edgectl.emulators.modbus import ModbusRtuEmulator
from edgectl.emulators.propar import ProparEmulator
from edgectl.emulators.spectrometer import SpectrometerEmulator
from edgectl.errors import ProfileError
from edgectl.io.profile import DeviceProfile, load_profile
from edgectl.plant import ConstantPlant, PlantIO

__all__ = [
    "EMULATORS",
    "FAULT_KINDS",
    "AlicatEmulator",
    "Emulator",
    "EmulatorBus",
    "Endpoint",
    "EzoEmulator",
    "Fault",
    "Faults",
    "LineEmulator",
    "ModbusRtuEmulator",
    "MtSicsEmulator",
    "ProparEmulator",
    "RegloIccEmulator",
    "SbiEmulator",
    "SpectrometerEmulator",
    "WatsonMarlowEmulator",
    "attach",
    "create_emulator",
    "create_endpoint",
    "get_emulator",
    "get_plant",
    "parse_fault_spec",
    "reset_emulators",
    "set_plant",
]

#: Emulator class for each ``[emulator] type`` of a profile.
EMULATORS: dict[str, type[Emulator]] = {
    "alicat": AlicatEmulator,
    "propar": ProparEmulator,
    "modbus-rtu": ModbusRtuEmulator,
    "ezo": EzoEmulator,
    "mt-sics": MtSicsEmulator,
    "sbi": SbiEmulator,
    "reglo-icc": RegloIccEmulator,
    "watson-marlow": WatsonMarlowEmulator,
    "spectrometer": SpectrometerEmulator,
}

#: What a ``sim://`` port talks to: one emulator, or a multi-drop bus of them.
Endpoint = Emulator | EmulatorBus

_lock = threading.Lock()
_plants: dict[str, PlantIO] = {}
_emulators: dict[str, Endpoint] = {}


def set_plant(plant: PlantIO, name: str = "default") -> None:
    """Make ``plant`` the one ``sim://...&plant=<name>`` emulators use."""
    with _lock:
        _plants[name] = plant


def get_plant(name: str = "default") -> PlantIO:
    """The named plant; ``default`` is created as a :class:`ConstantPlant` on first use."""
    with _lock:
        if name not in _plants:
            if name != "default":
                raise ProfileError(f"sim://: no plant named {name!r} (use set_plant)")
            _plants[name] = ConstantPlant()
        return _plants[name]


def create_emulator(
    profile: str | Path | DeviceProfile,
    plant: PlantIO | None = None,
    *,
    name: str = "device",
    params: Mapping[str, str] | None = None,
) -> Emulator:
    """A new emulator for ``profile`` (its ``[emulator] type`` picks the class)."""
    prof = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
    kind = str(prof.emulator.get("type", ""))
    cls = EMULATORS.get(kind)
    if cls is None:
        raise ProfileError(
            f"{prof.name}: $.emulator.type {kind!r} is not one of {', '.join(EMULATORS)}"
        )
    return cls(prof, plant if plant is not None else get_plant(), name=name, params=params)


def get_emulator(
    name: str,
    profile: str | None = None,
    params: Mapping[str, str] | None = None,
) -> Endpoint:
    """The emulator behind ``sim://<name>``; created from ``profile`` if it does not exist.

    ``address=A,B,C`` creates a multi-drop :class:`EmulatorBus` of one emulator per address.
    """
    with _lock:
        emu = _emulators.get(name)
    if emu is not None:
        return emu
    if profile is None:
        raise ProfileError(f"sim://{name}: no such emulator and no profile= to create it")
    params = dict(params or {})
    new = create_endpoint(profile, get_plant(params.get("plant", "default")), name, params)
    with _lock:
        return _emulators.setdefault(name, new)


def create_endpoint(
    profile: str | Path | DeviceProfile,
    plant: PlantIO,
    name: str,
    params: Mapping[str, str],
) -> Endpoint:
    """One emulator, or a bus of one per address when ``params["address"]`` is ``A,B,...``."""
    addresses = [a for a in params.get("address", "").split(",") if a]
    if len(addresses) <= 1:
        return create_emulator(profile, plant, name=name, params=params)
    bus = EmulatorBus(name)
    for address in addresses:
        member = create_emulator(
            profile, plant, name=f"{name}/{address}", params={**params, "address": address}
        )
        bus.add(address, member)
    return bus


def attach(name: str, profile: str | Path | DeviceProfile, address: str, **params: str) -> Emulator:
    """Add a device at ``address`` to the multi-drop line ``sim://<name>`` (mixed models:
    e.g. a Hamilton pH and a DO sensor as Modbus slaves 1 and 2 of one RS-485 line)."""
    with _lock:
        bus = _emulators.get(name)
        if bus is None:
            bus = _emulators[name] = EmulatorBus(name)
    if not isinstance(bus, EmulatorBus):
        raise ProfileError(f"sim://{name}: already a single-device port, not a bus")
    plant = get_plant(params.get("plant", "default"))
    member = create_emulator(
        profile, plant, name=f"{name}/{address}", params={**params, "address": address}
    )
    bus.add(address, member)
    return member


def reset_emulators() -> None:
    """Forget every ``sim://`` emulator and plant (tests call it between cases)."""
    with _lock:
        _emulators.clear()
        _plants.clear()
