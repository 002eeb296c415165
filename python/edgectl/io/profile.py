r"""Firmware profiles: one device model's serial protocol as data.

A profile is a TOML file ``firmware_profiles/<vendor>/<model>.toml``. The driver
(:mod:`edgectl.devices`) and the emulator (:mod:`edgectl.emulators`) read the same profile, so
they agree with each other; the emulators are also checked against each device's own
third-party client library (see ``tests/test_device_clients.py``).

Schema (every table is optional unless marked *required*)::

    [device]                     # required
    kind = "mfc"                 # mfc | probe | balance | pump | circulator | spectrometer
    vendor = "alicat"            # matches the folder name
    model = "MC-series"
    protocol = "line"            # line | propar | modbus-rtu | spectral-frame (edgectl.io.spectral)
    firmware = ">=5"             # firmware range the profile was written for
    manual = "..."               # where the protocol comes from (citation)
    client = "..."               # third-party client used to cross-check the emulator

    [serial]                     # line settings; ptys ignore them, so the checker validates them
    baudrate = 19200             # bytesize 5-8, parity N/E/O/M/S, stopbits 1/1.5/2
    terminator_out = "\r"        # appended to every command we send
    terminator_in = "\r"         # ends every reply line
    bare_replies = ["*", "#"]    # one-character replies sent without terminator (Reglo ICC)
    line_clear = "
"            # sent before a retry to flush the device's half-read input
    timeout_s = 0.5              # reply deadline per attempt
    retries = 2                  # extra attempts after a timeout or a garbled reply
    inter_command_gap_s = 0.0    # minimum idle time between two commands

    [startup]
    commands = ["stop_continuous"]   # commands run when the driver opens the device
    continuous_period_s = 1.0        # emulator: unsolicited readings at power-up (EZO)

    [[errors]]                   # replies that mean "refused"; raise DeviceError
    pattern = '^\?$'
    meaning = "unknown command"

    [commands.read]              # one table per command
    send = "{unit}"              # str.format template of what the driver sends
    expect = '^(?P<unit>[A-Z]) (?P<mass_flow_sccm>[-+0-9.]+) ...$'   # reply regex, named groups
    lines = 1                    # reply lines matched together (joined by "\n"); 0: no reply
    request = '^(?P<unit>[A-Z])$'    # emulator: regex recognising the command
    reply = "{unit} {mass_flow_sccm:+08.2f} ..."                     # emulator: reply template
    delay_s = 0.0                # emulator: processing time before the reply
    timeout_s = 0.5              # overrides [serial].timeout_s for this command

    [fields.mass_flow_sccm]      # scaling of a named value: engineering = raw * scale + offset
    unit = "sccm"
    scale = 1.0
    offset = 0.0

    [propar]                     # Bronkhorst: node address, mode, DDE parameter table
    [modbus]                     # slave address, word order, register map (see ModbusProfile)
    [emulator]                   # emulator settings: plant signals, identity strings
    signals = { mass_flow_sccm = "air_flow_sccm" }
    error_reply = "?"

Load with :func:`load_profile` (a path or ``"vendor/model"``); errors are :class:`ProfileError`
naming the file and the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from edgectl.config import Struct, decode_mapping, read_toml
from edgectl.errors import ConfigError, ProfileError

__all__ = [
    "BoardInput",
    "BoardOutput",
    "BoardProfile",
    "Command",
    "DeviceInfo",
    "DeviceProfile",
    "ErrorReply",
    "Field",
    "ModbusProfile",
    "ModbusRegister",
    "ProparParameter",
    "ProparProfile",
    "SerialSettings",
    "Startup",
    "find_profile",
    "iter_profiles",
    "load_any_profile",
    "load_board",
    "load_profile",
    "profile_root",
]

PositiveFloat = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0.0)]


class DeviceInfo(Struct, frozen=True, kw_only=True):
    kind: Literal["mfc", "probe", "balance", "pump", "circulator", "spectrometer"]
    vendor: str
    model: str
    protocol: Literal["line", "propar", "modbus-rtu", "spectral-frame"] = "line"
    firmware: str = ""
    manual: str = ""
    client: str = ""
    description: str = ""


class SerialSettings(Struct, frozen=True, kw_only=True):
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = 1
    rtscts: bool = False
    encoding: Literal["ascii", "latin-1"] = "ascii"
    terminator_out: str = "\r"
    terminator_in: str = "\r"
    bare_replies: list[str] = msgspec.field(default_factory=list)
    line_clear: str = ""
    timeout_s: PositiveFloat = 0.5
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    inter_command_gap_s: NonNegFloat = 0.0


class Startup(Struct, frozen=True, kw_only=True):
    commands: list[str] = msgspec.field(default_factory=list)
    continuous_period_s: NonNegFloat = 0.0


class ErrorReply(Struct, frozen=True, kw_only=True):
    pattern: str
    meaning: str


class Command(Struct, frozen=True, kw_only=True):
    send: str
    expect: str = ""
    lines: Annotated[int, msgspec.Meta(ge=0, le=8)] = 1
    request: str = ""
    reply: str = ""
    delay_s: NonNegFloat = 0.0
    timeout_s: PositiveFloat | None = None
    description: str = ""


class Field(Struct, frozen=True, kw_only=True):
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    min: float | None = None
    max: float | None = None


class ProparParameter(Struct, frozen=True, kw_only=True):
    dde: int
    process: Annotated[int, msgspec.Meta(ge=0, le=127)]
    parameter: Annotated[int, msgspec.Meta(ge=0, le=31)]
    type: Literal["int8", "int16", "int32", "float", "string"]
    writable: bool = False


class ProparProfile(Struct, frozen=True, kw_only=True):
    mode: Literal["ascii", "binary"] = "ascii"
    node: Annotated[int, msgspec.Meta(ge=1, le=247)] = 3
    capacity: PositiveFloat = 1000.0
    capacity_unit: str = "mln/min"
    full_scale_raw: Annotated[int, msgspec.Meta(gt=0)] = 32000
    parameters: dict[str, ProparParameter] = msgspec.field(default_factory=dict)


class ModbusRegister(Struct, frozen=True, kw_only=True):
    address: Annotated[int, msgspec.Meta(ge=0, le=65535)]
    function: Literal[3, 4] = 3
    type: Literal["u16", "i16", "u32", "f32"] = "u16"
    count: Annotated[int, msgspec.Meta(ge=1, le=125)] = 1
    offset: Annotated[int, msgspec.Meta(ge=0, le=124)] = 0
    scale: float = 1.0
    unit: str = ""
    writable: bool = False
    block_only: bool = False
    signal: str = ""
    default: float = 0.0
    description: str = ""


class ModbusProfile(Struct, frozen=True, kw_only=True):
    slave: Annotated[int, msgspec.Meta(ge=1, le=247)] = 1
    word_order: Literal["big", "little"] = "big"
    manual_numbering: Literal["0-based", "1-based"] = "0-based"
    registers: dict[str, ModbusRegister] = msgspec.field(default_factory=dict)


class DeviceProfile(Struct, frozen=True, kw_only=True):
    device: DeviceInfo
    serial: SerialSettings = msgspec.field(default_factory=SerialSettings)
    startup: Startup = msgspec.field(default_factory=Startup)
    errors: list[ErrorReply] = msgspec.field(default_factory=list)
    commands: dict[str, Command] = msgspec.field(default_factory=dict)
    fields: dict[str, Field] = msgspec.field(default_factory=dict)
    propar: ProparProfile | None = None
    modbus: ModbusProfile | None = None
    emulator: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.device.vendor}/{self.device.model}"


class BoardOutput(Struct, frozen=True, kw_only=True):
    kind: Literal["pwm", "relay"]
    pin: Annotated[int, msgspec.Meta(ge=0, le=27)]
    active_high: bool = True
    frequency_hz: Annotated[float, msgspec.Meta(gt=0.0, le=10000.0)] = 1.0
    safe_value: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    actuator: str = ""
    description: str = ""


class BoardInput(Struct, frozen=True, kw_only=True):
    kind: Literal["digital"] = "digital"
    pin: Annotated[int, msgspec.Meta(ge=0, le=27)]
    pull_up: bool = True
    bounce_time_s: NonNegFloat | None = None
    signal: str = ""
    description: str = ""


class BoardInfo(Struct, frozen=True, kw_only=True):
    model: str
    revision: str = ""
    pin_factory: Literal["lgpio", "rpigpio", "pigpio", "native", "mock"] = "lgpio"
    gpiochip: Annotated[int, msgspec.Meta(ge=0)] = 0
    description: str = ""


class BoardProfile(Struct, frozen=True, kw_only=True):
    board: BoardInfo
    outputs: dict[str, BoardOutput] = msgspec.field(default_factory=dict)
    inputs: dict[str, BoardInput] = msgspec.field(default_factory=dict)


def profile_root() -> Path:
    """Where ``"vendor/model"`` names are looked up: ``$EDGECTL_PROFILE_DIR`` if set, else the
    profiles shipped with the package.

    An installed wheel carries them as package data in ``edgectl/firmware_profiles/``; in a
    checkout that path is a link to the repository's ``firmware_profiles/`` (maturin's
    ``include`` in pyproject.toml packs them from there), and it is returned resolved.
    """
    env = os.environ.get("EDGECTL_PROFILE_DIR")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parents[1] / "firmware_profiles"
    if packaged.is_dir():
        return packaged.resolve()
    return Path(__file__).resolve().parents[3] / "firmware_profiles"


def find_profile(name: str | Path) -> Path:
    """Resolve ``"vendor/model"`` (or a path) to a profile file."""
    p = Path(name)
    if p.suffix == ".toml" and p.exists():
        return p
    candidate = profile_root() / f"{name}.toml"
    if candidate.exists():
        return candidate
    raise ProfileError(f"{name}: no such firmware profile (looked in {profile_root()})")


def _check_regexes(profile: DeviceProfile, source: str) -> None:
    for i, err in enumerate(profile.errors):
        _compile(err.pattern, source, f"$.errors[{i}].pattern")
    for key, cmd in profile.commands.items():
        for attr in ("expect", "request"):
            text = getattr(cmd, attr)
            if text:
                _compile(text, source, f"$.commands.{key}.{attr}")
    for name in profile.startup.commands:
        if name not in profile.commands:
            raise ProfileError(f"{source}: $.startup.commands: unknown command {name!r}")
    if profile.serial.stopbits not in (1, 1.5, 2):
        raise ProfileError(f"{source}: $.serial.stopbits: must be 1, 1.5 or 2")
    if profile.device.protocol == "modbus-rtu" and profile.modbus is None:
        raise ProfileError(f"{source}: $.modbus: required for protocol 'modbus-rtu'")
    if profile.device.protocol == "propar" and profile.propar is None:
        raise ProfileError(f"{source}: $.propar: required for protocol 'propar'")
    if profile.modbus is not None:
        for key, reg in profile.modbus.registers.items():
            width = 2 if reg.type in ("u32", "f32") else 1
            if reg.offset + width > reg.count:
                raise ProfileError(
                    f"{source}: $.modbus.registers.{key}: offset {reg.offset} + {width} "
                    f"register(s) exceeds count {reg.count}"
                )


def _compile(text: str, source: str, key: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ProfileError(f"{source}: {key}: bad regular expression: {exc}") from exc


def _decode(data: dict[str, Any], type_: type[Any], source: str) -> Any:
    try:
        return decode_mapping(data, type_, source=source)
    except ProfileError:
        raise
    except ConfigError as exc:
        raise ProfileError(str(exc)) from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        return read_toml(path)
    except ConfigError as exc:
        raise ProfileError(str(exc)) from exc


def load_profile(name: str | Path) -> DeviceProfile:
    """Load and validate a device profile (``"alicat/mc-series"`` or a path)."""
    path = find_profile(name)
    profile: DeviceProfile = _decode(_read(path), DeviceProfile, str(path))
    _check_regexes(profile, str(path))
    return profile


def load_board(name: str | Path) -> BoardProfile:
    """Load and validate a board pin map (``"boards/raspberry-pi-5"`` or a path)."""
    path = find_profile(name)
    board: BoardProfile = _decode(_read(path), BoardProfile, str(path))
    pins: dict[int, str] = {}
    for kind, table in (("outputs", board.outputs), ("inputs", board.inputs)):
        for key, item in table.items():
            if item.pin in pins:
                raise ProfileError(
                    f"{path}: $.{kind}.{key}.pin: GPIO{item.pin} already used by {pins[item.pin]}"
                )
            pins[item.pin] = key
    return board


def load_any_profile(path: str | Path) -> DeviceProfile | BoardProfile:
    """Load a device profile or, if it has a ``[board]`` table, a board profile."""
    p = Path(path)
    data = _read(p)
    if "board" in data:
        return load_board(p)
    return load_profile(p)


def iter_profiles(root: str | Path | None = None) -> list[Path]:
    """Every ``*.toml`` under ``root`` (default: the shipped profiles), sorted."""
    base = Path(root) if root is not None else profile_root()
    if base.is_file():
        return [base]
    if not base.exists():
        raise ProfileError(f"{base}: no such file or directory")
    return sorted(base.rglob("*.toml"))
