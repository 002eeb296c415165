"""Property tests: every reply parser, on random and mutated frames, parses or raises
ProtocolError, never anything else; emulators survive any bytes a host sends."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.emulators import create_emulator, parse_fault_spec
from edgectl.errors import ConfigError, DeviceError, ProtocolError
from edgectl.io import propar as pp
from edgectl.io.modbus import ModbusProtocol
from edgectl.io.profile import iter_profiles, load_profile
from edgectl.io.protocol import LineProtocol, ReplyParser, split_frames
from edgectl.io.transport import Port
from edgectl.plant import ConstantPlant

LINE_PROFILES = [
    "alicat/mc-series",
    "atlas-scientific/ezo-ph",
    "atlas-scientific/ezo-do",
    "atlas-scientific/ezo-rtd",
    "mettler-toledo/mt-sics",
    "sartorius/sbi",
    "ismatec/reglo-icc",
    "watson-marlow/520du",
]
SAMPLE_VALUES: dict[str, Any] = {
    "unit": "A",
    "channel": 1,
    "address": 1,
    "setpoint_sccm": 10.0,
    "register": 122,
    "value": 37,
    "temp_c": 25.0,
    "point": "mid",
    "enable": 1,
    "param": "mg",
    "rpm_x100": 5550,
    "pump": 1,
    "rpm": 55.5,
    "flow": "1200+0",
}


def _valid_replies() -> list[tuple[str, str, bytes]]:
    """(profile, command, reply bytes) from each emulator, for every command it answers."""
    out = []
    for name in LINE_PROFILES:
        prof = load_profile(name)
        proto = LineProtocol(Port("loop://", prof.serial), prof, name="fuzz")
        for cmd, spec in prof.commands.items():
            if not spec.expect or not spec.request:
                continue
            emu = create_emulator(prof, ConstantPlant(), params={"delay_scale": "0"})
            emu.continuous = False  # type: ignore[attr-defined]
            emu.receive(proto.encode(cmd, SAMPLE_VALUES))
            reply = emu.read(4096, 0.2)
            if reply and not reply.startswith(b"*ER"):  # e.g. DO "Calmid": not a DO command
                out.append((name, cmd, reply))
    return out


VALID = _valid_replies()


def test_every_line_command_has_a_valid_sample() -> None:
    assert len(VALID) >= 40
    for name, cmd, reply in VALID:
        prof = load_profile(name)
        parser = ReplyParser("fuzz", cmd, prof.commands[cmd], prof)
        assert isinstance(parser.parse(reply), dict), (name, cmd, reply)


def _parse_or_protocol_error(name: str, cmd: str, data: bytes) -> None:
    prof = load_profile(name)
    parser = ReplyParser("fuzz", cmd, prof.commands[cmd], prof)
    try:
        result = parser.parse(data)
    except ProtocolError as exc:
        assert "fuzz" in str(exc)  # noqa: PT017 - either outcome is fine
        return
    assert isinstance(result, dict)


@st.composite
def mutated(draw: st.DrawFn, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        if not data:
            data += draw(st.binary(min_size=1, max_size=4))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 3))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=6))
        elif op == "truncate":
            del data[i:]
        else:
            data += data[i:]
    return bytes(data)


@pytest.mark.parametrize(("name", "cmd", "reply"), VALID, ids=[f"{n}:{c}" for n, c, _ in VALID])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_line_parser_on_mutated_frames(
    name: str, cmd: str, reply: bytes, data: st.DataObject
) -> None:
    _parse_or_protocol_error(name, cmd, data.draw(mutated(reply)))


@pytest.mark.parametrize("name", LINE_PROFILES)
@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=64), index=st.integers(0, 100))
def test_line_parser_on_random_bytes(name: str, raw: bytes, index: int) -> None:
    prof = load_profile(name)
    cmds = [c for c, s in prof.commands.items() if s.expect]
    _parse_or_protocol_error(name, cmds[index % len(cmds)], raw)


@settings(max_examples=200, deadline=None)
@given(buf=st.binary(max_size=80), term=st.sampled_from([b"\r", b"\r\n", b"\n"]))
def test_split_frames_loses_nothing_but_terminators(buf: bytes, term: bytes) -> None:
    frames, rest = split_frames(buf, term)
    assert term.join([*frames, rest]) == buf


PROPAR_FRAMES = [
    bytes([pp.CMD_SEND, 33, 0x40]) + pp.encode_value("float", 321.5),
    bytes([pp.CMD_SEND, 1, 0x20]) + pp.encode_value("int16", 10288),
    bytes([pp.CMD_SEND, 1, 0x71]) + pp.encode_value("string", "AIR"),
    bytes([pp.CMD_STATUS, 0, 0]),
    bytes([pp.CMD_REQUEST, 1, 0x20, 1, 0x20]),
    bytes([pp.CMD_REQUEST, 0x81, 0xA0, 1, 0x20, 0x21, 1, 0x21, 33, 0x43, 33, 0x43]),
]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_propar_parse_items_on_random_and_mutated(data: st.DataObject) -> None:
    frame = data.draw(
        st.one_of(st.binary(max_size=40), st.sampled_from(PROPAR_FRAMES).flatmap(mutated))
    )
    try:
        cmd, items = pp.parse_items(frame)
    except ProtocolError:
        return
    assert 0 <= cmd <= 255
    for item in items:
        if item.type_bits != 0x60 and frame[0] != pp.CMD_REQUEST:
            pp.decode_value(
                {0x00: "int8", 0x20: "int16", 0x40: "float"}[item.type_bits], item.value
            )


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_propar_ascii_and_binary_codecs(data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(PROPAR_FRAMES))
    node = data.draw(st.integers(1, 247))
    line = pp.encode_ascii(node, payload)
    assert pp.decode_ascii(line.strip()) == (node, payload)
    framed = pp.encode_binary(data.draw(st.integers(0, 255)), node, payload)
    found, _ = pp.split_binary(framed)
    assert [(n, d) for _, n, d in found] == [(node, payload)]
    bad = data.draw(st.one_of(st.binary(max_size=30), mutated(line)))
    try:
        got = pp.decode_ascii(bad)
    except ProtocolError:
        pass
    else:
        assert isinstance(got, tuple)
    pp.split_binary(data.draw(st.one_of(st.binary(max_size=40), mutated(framed))))


@pytest.mark.parametrize("type_name", ["int8", "int16", "int32", "float", "string"])
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=12))
def test_propar_decode_value(type_name: str, raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        pp.decode_value(type_name, raw)


class _FakeSerial:
    """Returns canned bytes to minimalmodbus (whatever it asked for)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.is_open = True
        self.port = "fake"
        self.baudrate = 19200
        self.timeout = 0.01

    def open(self) -> None: ...
    def close(self) -> None: ...
    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out

    def reset_input_buffer(self) -> None: ...
    def reset_output_buffer(self) -> None: ...


@pytest.mark.parametrize("name", ["hamilton/arc-ph", "generic/modbus-circulator"])
@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=30), valid_prefix=st.booleans())
def test_modbus_replies_parse_or_raise_device_errors(
    name: str, raw: bytes, valid_prefix: bool
) -> None:
    prof = load_profile(name)
    prof = msgspec.structs.replace(
        prof, serial=msgspec.structs.replace(prof.serial, retries=0, timeout_s=0.01)
    )
    port = Port("fake://", prof.serial, name="fuzz")
    if valid_prefix:
        raw = bytes([1, 3, 20]) + raw
    port._serial = _FakeSerial(raw)  # type: ignore[assignment]
    proto = ModbusProtocol(port, prof, name="fuzz")
    key = "primary" if "hamilton" in name else "temp_c"
    try:
        proto.read(key)
    except DeviceError as exc:  # ProtocolError, DeviceTimeoutError or a slave exception
        assert "fuzz" in str(exc)  # noqa: PT017 - either outcome is fine


EMULATED = [
    str(p.relative_to(p.parents[1]).with_suffix(""))
    for p in iter_profiles()
    if "boards" not in p.parts
]


@pytest.mark.parametrize("name", EMULATED)
@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.binary(max_size=24), max_size=5))
def test_emulators_survive_any_host_bytes(name: str, chunks: list[bytes]) -> None:
    emu = create_emulator(name, ConstantPlant(), params={"delay_scale": "0"})
    for chunk in chunks:
        emu.receive(chunk)
    emu.read(4096, 0.0)


@settings(max_examples=200, deadline=None)
@given(spec=st.text(max_size=30))
def test_fault_spec_parses_or_config_error(spec: str) -> None:
    try:
        faults = parse_fault_spec(spec)
    except ConfigError as exc:
        assert "fault spec" in str(exc)  # noqa: PT017 - either outcome is fine
        return
    assert all(f.kind for f in faults)


def test_fault_spec_examples() -> None:
    faults = parse_fault_spec("garbage*2, late:0.3*1,stuck")
    assert [(f.kind, f.value, f.remaining) for f in faults] == [
        ("garbage", None, 2),
        ("late", 0.3, 1),
        ("stuck", None, None),
    ]
    with pytest.raises(ConfigError, match="bad part 'melt'"):
        parse_fault_spec("melt")


@settings(max_examples=300, deadline=None)
@given(value=st.floats(min_value=1e-6, max_value=9.9e8, allow_nan=False))
def test_reglo_number_format_round_trips(value: float) -> None:
    from edgectl.devices.pumps import format_mmmmse

    text = format_mmmmse(value)
    m = re.fullmatch(r"(\d{4})([-+]\d)", text)
    assert m is not None
    decoded = int(m.group(1)) / 1000 * 10 ** int(m.group(2))
    assert decoded == pytest.approx(value, rel=6e-4)  # 4 significant digits


@pytest.mark.parametrize("word_order", ["big", "little"])
@pytest.mark.parametrize("type_name", ["u16", "i16", "u32", "f32"])
@settings(max_examples=100, deadline=None)
@given(raw=st.integers(0, 0xFFFFFFFF), scale=st.sampled_from([1.0, 0.1, 0.01]))
def test_modbus_register_codec_round_trips(
    word_order: str, type_name: str, raw: int, scale: float
) -> None:
    from edgectl.io.modbus import decode_registers, encode_registers
    from edgectl.io.profile import ModbusRegister

    reg = ModbusRegister(address=0, type=type_name, count=2, scale=scale)  # type: ignore[arg-type]
    words = [raw >> 16, raw & 0xFFFF] if type_name in ("u32", "f32") else [raw & 0xFFFF, 0]
    value = decode_registers(words, reg, word_order)
    if value != value or abs(value) == float("inf"):
        return  # NaN/inf floats have no engineering value
    again = encode_registers(value, reg, word_order)
    assert decode_registers([*again, 0], reg, word_order) == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize("type_name", ["int8", "int16", "int32", "float"])
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(min_size=4, max_size=4))
def test_propar_value_codec_round_trips(type_name: str, raw: bytes) -> None:
    value = pp.decode_value(type_name, raw)
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return
    assert pp.decode_value(type_name, pp.encode_value(type_name, value)) == value
