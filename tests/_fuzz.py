"""Reply fuzzing of the device drivers through their real transport.

A :class:`FuzzPort` is a real :class:`~edgectl.io.transport.Port` whose pyserial object is a
:class:`FuzzSerial`: every command the driver writes goes to the device's emulator, and the
emulator's true reply is then mutated by hypothesis before the driver reads it. Mutations keep
the framing valid often enough to reach the value parsers: numbers in text replies are swapped
for ``inf``, ``nan``, ``1e999``, 400-digit integers, empty fields...; binary payloads (Modbus
RTU, ProPar, spectrum frames) get IEEE-754 infinities and NaNs, random bytes and wrong counts,
with the checksum recomputed so the frame is accepted; other replies are cut, padded, replaced
by noise or dropped.

The driver contract checked by :func:`exercise`: each call returns, or raises an error of the
:class:`~edgectl.errors.DeviceError` family; a returned number (or array) is finite.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from edgectl.devices import DRIVERS, SerialDevice, Spectrum
from edgectl.emulators import create_emulator
from edgectl.errors import DeviceError
from edgectl.io import propar as pp
from edgectl.io.profile import DeviceProfile, load_profile
from edgectl.io.spectral import crc16_ccitt
from edgectl.io.transport import Port
from edgectl.plant import ConstantPlant

#: Reply deadline of the fuzzed profiles: a cut reply costs one deadline per attempt.
FUZZ_TIMEOUT_S = 0.001

#: Numbers a careless or broken firmware might print where a reading belongs.
EVIL_NUMBERS = [
    b"inf",
    b"-inf",
    b"+inf",
    b"Infinity",
    b"nan",
    b"NaN",
    b"-nan",
    b"1e999",
    b"-1e999",
    b"1e308",
    b"1.8e308",
    b"4e-400",
    b"9" * 400,
    b"-" + b"9" * 40,
    b"1" + b"0" * 30,
    b"-0",
    b"0",
    b"",
    b"1e",
    b".",
    b"+",
    b"--1",
    b"0x1F",
    b"1_000",
    b"\xff\xfe",
    b"12.5.3",
]

#: Digit runs that match a profile's ``[0-9.]+`` yet overflow a float or an int.
LONG_DIGITS = [b"9" * 400, b"1" + b"0" * 309, b"9" * 309 + b".9", b"0" * 40 + b"1", b"9" * 25]

#: IEEE-754 patterns (big and little endian, float32 and float64) for binary payloads.
EVIL_WORDS = [
    struct.pack(">f", math.inf),
    struct.pack(">f", -math.inf),
    struct.pack(">f", math.nan),
    struct.pack("<f", math.inf),
    struct.pack("<f", math.nan),
    struct.pack(">d", math.inf),
    struct.pack(">d", math.nan),
    struct.pack(">f", 3.4e38),
    b"\x00\x00",
    b"\xff\xff",
    b"\xff\xff\xff\xff",
    b"\x7f\xff",
    b"\x80\x00",
]

_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@functools.cache
def fuzz_profile(name: str) -> DeviceProfile:
    """The shipped profile with a tiny deadline, one retry and no inter-command gap."""
    prof = load_profile(name)
    commands = {
        k: msgspec.structs.replace(c, timeout_s=FUZZ_TIMEOUT_S if c.timeout_s else c.timeout_s)
        for k, c in prof.commands.items()
    }
    serial = msgspec.structs.replace(
        prof.serial, timeout_s=FUZZ_TIMEOUT_S, retries=1, inter_command_gap_s=0.0
    )
    return msgspec.structs.replace(prof, serial=serial, commands=commands)


def _modbus_crc(data: bytes) -> bytes:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


class Codec:
    """How to reach the payload of one reply and wrap it again with valid framing."""

    def unwrap(self, reply: bytes) -> tuple[bytes, Any] | None:
        return None

    def wrap(self, payload: bytes, ctx: Any) -> bytes:
        raise NotImplementedError


class ModbusCodec(Codec):
    def unwrap(self, reply: bytes) -> tuple[bytes, Any] | None:
        return (reply[:-2], None) if len(reply) > 4 else None

    def wrap(self, payload: bytes, ctx: Any) -> bytes:
        return payload + _modbus_crc(payload)


class ProparAsciiCodec(Codec):
    def unwrap(self, reply: bytes) -> tuple[bytes, Any] | None:
        try:
            node, data = pp.decode_ascii(reply.strip())
        except DeviceError:
            return None
        return data, node

    def wrap(self, payload: bytes, ctx: Any) -> bytes:
        return pp.encode_ascii(int(ctx), payload)


class SpectrumFrameCodec(Codec):
    def unwrap(self, reply: bytes) -> tuple[bytes, Any] | None:
        if not reply.startswith(b"#") or len(reply) < 14:
            return None
        return reply[:-4], None

    def wrap(self, payload: bytes, ctx: Any) -> bytes:
        return payload + struct.pack(">H", crc16_ccitt(payload[1:])) + b"\r\n"


def codec_for(profile: DeviceProfile) -> Codec:
    if profile.device.protocol == "modbus-rtu":
        return ModbusCodec()
    if profile.device.protocol == "propar":
        return ProparAsciiCodec()
    if profile.device.kind == "spectrometer":
        return SpectrumFrameCodec()
    return Codec()


@dataclass
class Stats:
    """What one fuzz run did: cases, calls, returns, DeviceErrors by class name and escapes
    (a call that raised outside the DeviceError family or returned a non-finite reading), by
    ``"<call>: <what>"``, when :func:`exercise` counts them instead of raising."""

    cases: int = 0
    replies: int = 0
    mutated: int = 0
    calls: int = 0
    returned: int = 0
    device_errors: dict[str, int] = field(default_factory=dict)
    escapes: dict[str, int] = field(default_factory=dict)

    def escaped(self, key: str) -> None:
        self.escapes[key] = self.escapes.get(key, 0) + 1


class FuzzSerial:
    """The pyserial face the drivers use, answering with mutated emulator replies."""

    port = "fuzz"
    baudrate = 115200
    is_open = True

    def __init__(self, emulator: Any, mutate: Callable[[bytes], bytes], stats: Stats) -> None:
        self.emulator = emulator
        self.mutate = mutate
        self.stats = stats
        self.timeout: float | None = FUZZ_TIMEOUT_S
        self.buf = b""

    def write(self, data: bytes) -> int:
        self.emulator.receive(bytes(data))
        reply = self.emulator.read(1 << 20, 0.0)
        if reply:
            self.stats.replies += 1
            self.buf += self.mutate(reply)
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self.buf)

    def read(self, n: int = 1) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self.buf = b""

    def reset_output_buffer(self) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


class FuzzPort(Port):
    """A real :class:`Port` whose (re)open hands out the fuzzing serial object."""

    def __init__(self, fake: FuzzSerial, profile: DeviceProfile) -> None:
        super().__init__("fuzz://", profile.serial, name="fuzz")
        self.fake = fake

    def open(self) -> None:
        self._serial = self.fake  # type: ignore[assignment]
        self.opens += 1

    def read_some(self, deadline: float, *, what: str = "") -> bytes:
        # The reply is buffered before the driver starts reading: hand it over whatever the
        # clock says, so a loaded machine cannot turn a reply into a timeout (and make the
        # drawn mutations differ between runs of one example).
        data, self.fake.buf = self.fake.buf, b""
        return data


_KINDS = ["keep", "keep", "number", "number", "number", "payload", "payload", "bytes", "cut"]
_KINDS += ["noise", "silence"]


def _evil_number(rng: random.Random) -> bytes:
    """A number as a firmware might print it: from the evil lists, or random in shape."""
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(LONG_DIGITS)
    if pick < 0.7:
        return rng.choice(EVIL_NUMBERS)
    text = rng.choice(["", "-", "+"]) + "".join(rng.choices("0123456789", k=rng.randint(0, 12)))
    if rng.random() < 0.5:
        text += "." + "".join(rng.choices("0123456789", k=rng.randint(0, 6)))
    if rng.random() < 0.5:
        text += rng.choice("eE") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 9999))
    return text.encode()


def _bytes(rng: random.Random, lo: int, hi: int) -> bytes:
    return rng.randbytes(rng.randint(lo, hi))


def mutator(rng: random.Random, codec: Codec, stats: Stats) -> Callable[[bytes], bytes]:
    """Mutate each reply as ``rng`` decides (hypothesis draws its seed)."""

    def mutate(reply: bytes) -> bytes:
        kind = rng.choice(_KINDS)
        if kind == "keep":
            return reply
        stats.mutated += 1
        if kind == "number":
            spots = list(_NUMBER.finditer(reply))
            if spots:
                m = rng.choice(spots)
                evil = _evil_number(rng)
                sign = m.group()[:1]
                if sign in (b"+", b"-") and rng.random() < 0.5 and evil[:1] not in (b"+", b"-"):
                    evil = sign + evil  # a profile may want the sign (Alicat: [-+][0-9.]+)
                return reply[: m.start()] + evil + reply[m.end() :]
            kind = "payload"
        if kind == "payload":
            unwrapped = codec.unwrap(reply)
            if unwrapped is not None:
                payload, ctx = unwrapped
                at = rng.randint(0, max(0, len(payload) - 1))
                patch = rng.choice(EVIL_WORDS) if rng.random() < 0.6 else _bytes(rng, 1, 8)
                return codec.wrap(payload[:at] + patch + payload[at + len(patch) :], ctx)
            kind = "bytes"
        if kind == "bytes":
            at = rng.randint(0, len(reply))
            return reply[:at] + _bytes(rng, 0, 8) + reply[at + rng.randint(0, 4) :]
        if kind == "cut":
            return reply[: rng.randint(0, max(0, len(reply) - 1))]
        if kind == "noise":
            return _bytes(rng, 0, 64) + reply[-2:]
        return b""  # silence

    return mutate


#: Calls with arguments, beyond the argument-free ``read_*``/``is_*`` methods of each driver.
EXTRA_CALLS: dict[str, list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = {
    "alicat/mc-series": [("set_flow_sccm", (10.0,), {}), ("firmware", (), {})],
    "bronkhorst/el-flow-propar": [("set_flow_sccm", (10.0,), {})],
    "atlas-scientific/ezo-ph": [("info", (), {}), ("set_temp_compensation_c", (25.0,), {})],
    "atlas-scientific/ezo-do": [("info", (), {}), ("set_temp_compensation_c", (25.0,), {})],
    "atlas-scientific/ezo-rtd": [("info", (), {})],
    "mettler-toledo/mt-sics": [
        ("read_mass_g", (), {"stable": True}),
        ("tare", (), {}),
        ("zero", (), {}),
        ("serial_number", (), {}),
    ],
    "sartorius/sbi": [("tare", (), {}), ("model", (), {})],
    "ismatec/reglo-icc": [
        ("set_rate_ml_min", (1.2,), {}),
        ("set_rpm", (10.0,), {}),
        ("set_dose_rate_ml_min", (1.0,), {}),
        ("start", (), {}),
        ("stop", (), {}),
    ],
    "watson-marlow/520du": [
        ("set_rpm", (10.0,), {}),
        ("set_rate_ml_min", (0.5,), {}),
        ("start", (), {}),
        ("stop", (), {}),
    ],
    "generic/modbus-circulator": [
        ("set_setpoint_c", (37.0,), {}),
        ("start", (), {}),
        ("stop", (), {}),
    ],
    "generic/spectrometer-ascii": [
        ("identify", (), {}),
        ("acquire", (), {}),
        ("set_integration_time_ms", (500,), {}),
    ],
}

# The two Hamilton ARC drivers and the three EZO drivers share their families' calls.
EXTRA_CALLS["hamilton/arc-ph"] = []
EXTRA_CALLS["hamilton/arc-do"] = []
FUZZ_DRIVERS = sorted(DRIVERS)


def calls_of(profile_name: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Every argument-free ``read_*``/``is_*`` method of the driver, then the extra calls."""
    cls = DRIVERS[profile_name]
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith(("read_", "is_")) or name == "is_closed":
            continue
        params = list(inspect.signature(fn).parameters.values())[1:]
        if all(p.default is not inspect.Parameter.empty for p in params):
            calls.append((name, (), {}))
    return calls + EXTRA_CALLS[profile_name]


def check_value(where: str, value: Any) -> None:
    """A returned reading must be finite all the way down."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        assert math.isfinite(value), f"{where} returned a non-finite reading {value!r}"
    elif isinstance(value, np.ndarray):
        assert np.all(np.isfinite(value)), f"{where} returned non-finite values in an array"
    elif isinstance(value, Spectrum):
        check_value(f"{where}.wavenumber_cm1", value.wavenumber_cm1)
        check_value(f"{where}.intensities", value.intensities)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_value(f"{where}[{k!r}]", v)
    elif isinstance(value, tuple | list):
        for i, v in enumerate(value):
            check_value(f"{where}[{i}]", v)


def exercise(profile_name: str, seed: int, stats: Stats, *, count_escapes: bool = False) -> None:
    """Open the driver on a fuzzing port and make every call once, in an order and with reply
    mutations drawn from ``seed``. An escape raises (the default: hypothesis reports and shrinks
    the case) or, with ``count_escapes``, is counted in ``stats.escapes`` (the long run's table)."""
    stats.cases += 1
    rng = random.Random(seed)
    prof = fuzz_profile(profile_name)
    emulator = create_emulator(prof, ConstantPlant(), params={"delay_scale": "0"})
    emulator.continuous = False  # EZO circuits: no unsolicited readings between commands
    fake = FuzzSerial(emulator, mutator(rng, codec_for(prof), stats), stats)
    port = FuzzPort(fake, prof)
    cls: type[SerialDevice] = DRIVERS[profile_name]
    try:
        device = cls(port, prof, name="fuzzed")
    except DeviceError as exc:
        stats.device_errors[type(exc).__name__] = stats.device_errors.get(type(exc).__name__, 0) + 1
        return
    except Exception as exc:
        if not count_escapes:
            raise
        stats.escaped(f"__init__: {type(exc).__name__}")
        return
    calls = calls_of(profile_name)
    rng.shuffle(calls)
    for name, args, kwargs in calls:
        stats.calls += 1
        try:
            value = getattr(device, name)(*args, **kwargs)
        except DeviceError as exc:
            key = type(exc).__name__
            stats.device_errors[key] = stats.device_errors.get(key, 0) + 1
            continue
        except Exception as exc:
            if not count_escapes:
                raise
            stats.escaped(f"{name}: {type(exc).__name__}")
            continue
        stats.returned += 1
        try:
            check_value(f"{profile_name}: {name}()", value)
        except AssertionError:
            if not count_escapes:
                raise
            stats.escaped(f"{name}: non-finite reading")
