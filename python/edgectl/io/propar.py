"""Bronkhorst ProPar messages: binary (DLE/STX framing) and ASCII (``:`` hex CRLF) codecs.

Protocol facts from Bronkhorst doc 9.17.027 "RS232 interface with ProPar protocol"
(reference devices.md §1.2): ASCII frames are ``:`` + length + node + data as hex pairs +
CR LF, the length counting the node and data bytes (``:06030401210120`` reads the measure of
node 3); binary frames are ``DLE STX seq node len data DLE ETX`` with DLE (0x10) doubled inside.
Commands: 0 status, 1 send parameter with status reply, 2 send/answer parameter, 4 request
parameter. A parameter byte is ``index | type`` (0x00 int8, 0x20 int16, 0x40 int32/float,
0x60 string); bit 7 of the process and parameter bytes chains the next item. Values are big
endian. The driver and the emulator share this module, the emulator is also checked against
the vendor's own client (``bronkhorst-propar``, binary mode).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from edgectl import timebase
from edgectl.errors import DeviceError, DeviceTimeoutError, ProfileError, ProtocolError

__all__ = [
    "CMD_REQUEST",
    "CMD_SEND",
    "CMD_SEND_ACK",
    "CMD_STATUS",
    "Item",
    "ProparProtocol",
    "decode_ascii",
    "decode_value",
    "encode_ascii",
    "encode_binary",
    "encode_value",
    "parse_items",
    "split_binary",
]

DLE, STX, ETX = 0x10, 0x02, 0x03
CMD_STATUS, CMD_SEND_ACK, CMD_SEND, CMD_REQUEST = 0, 1, 2, 4
TYPE_BITS = {"int8": 0x00, "int16": 0x20, "int32": 0x40, "float": 0x40, "string": 0x60}
ERRORS = {3: "propar error", 4: "protocol error", 5: "node rejected", 9: "response timeout"}
STATUS = {
    0: "ok",
    1: "process claimed",
    2: "command error",
    3: "process error",
    4: "parameter error",
    5: "parameter type error",
    6: "parameter value error",
    7: "network not active",
    8: "time-out start character",
    9: "time-out serial line",
}


@dataclass(frozen=True)
class Item:
    """One parameter in a message: process, parameter index, type bits, value or request."""

    process: int
    parameter: int
    type_bits: int
    value: bytes = b""
    # For requests: the parameter asked for (may differ from the answer's index).
    req_process: int = 0
    req_parameter: int = 0
    string_size: int = 0


def encode_value(type_name: str, value: float | int | str) -> bytes:
    if type_name == "int8":
        return struct.pack(">B", int(value) & 0xFF)
    if type_name == "int16":
        return struct.pack(">H", int(value) & 0xFFFF)
    if type_name == "int32":
        return struct.pack(">I", int(value) & 0xFFFFFFFF)
    if type_name == "float":
        return struct.pack(">f", float(value))
    text = str(value).encode("ascii", errors="replace")
    return bytes([len(text)]) + text


def decode_value(type_name: str, data: bytes) -> float | int | str:
    try:
        if type_name == "int8":
            return int(struct.unpack(">B", data[:1])[0])
        if type_name == "int16":
            return int(struct.unpack(">H", data[:2])[0])
        if type_name == "int32":
            return int(struct.unpack(">I", data[:4])[0])
        if type_name == "float":
            return float(struct.unpack(">f", data[:4])[0])
    except struct.error as exc:
        raise ProtocolError(f"ProPar value of type {type_name} too short: {data!r}") from exc
    if not data:
        raise ProtocolError("ProPar string value missing its length byte")
    size = data[0]
    body = data[1:] if size == 0 else data[1 : 1 + size]
    if size and len(body) < size:
        raise ProtocolError(f"ProPar string of {size} bytes truncated: {data!r}")
    return body.split(b"\x00", 1)[0].decode("ascii", errors="replace")


def _width(type_bits: int, data: bytes, pos: int) -> int:
    kind = type_bits & 0x60
    if kind == 0x00:
        return 1
    if kind == 0x20:
        return 2
    if kind == 0x40:
        return 4
    if pos >= len(data):
        raise ProtocolError("ProPar string parameter without length byte")
    size = data[pos]
    if size == 0:
        end = data.find(b"\x00", pos + 1)
        return (end if end >= 0 else len(data)) - pos + (1 if end >= 0 else 0)
    return 1 + size


def parse_items(data: bytes) -> tuple[int, list[Item]]:
    """Split a command's data (``data[0]`` is the command) into its chained items.

    Raises ProtocolError on any malformed message: truncated values, bad chaining.
    """
    if not data:
        raise ProtocolError("empty ProPar message")
    cmd = data[0]
    items: list[Item] = []
    pos = 1
    if cmd == CMD_STATUS:
        if len(data) < 2:
            raise ProtocolError(f"ProPar status message too short: {data.hex()}")
        return cmd, [Item(0, 0, 0, bytes(data[1:]))]
    if cmd not in (CMD_SEND_ACK, CMD_SEND, 3, CMD_REQUEST):
        if len(data) == 1:
            return cmd, []
        raise ProtocolError(f"unknown ProPar command {cmd} in {data.hex()}")
    proc_chained = True
    while proc_chained:
        if pos >= len(data):
            raise ProtocolError(f"ProPar message ends before a process byte: {data.hex()}")
        proc = data[pos]
        pos += 1
        proc_chained = bool(proc & 0x80)
        parm_chained = True
        while parm_chained:
            if pos >= len(data):
                raise ProtocolError(f"ProPar message ends before a parameter byte: {data.hex()}")
            parm = data[pos]
            pos += 1
            parm_chained = bool(parm & 0x80)
            type_bits = parm & 0x60
            if cmd == CMD_REQUEST:
                if pos + 2 > len(data):
                    raise ProtocolError(f"ProPar request truncated: {data.hex()}")
                rproc, rparm = data[pos], data[pos + 1]
                pos += 2
                size = 0
                if type_bits == 0x60:
                    if pos >= len(data):
                        raise ProtocolError(f"ProPar string request without size: {data.hex()}")
                    size = data[pos]
                    pos += 1
                items.append(
                    Item(proc & 0x7F, parm & 0x1F, type_bits, b"", rproc & 0x7F, rparm & 0x1F, size)
                )
            else:
                width = _width(type_bits, data, pos)
                if pos + width > len(data):
                    raise ProtocolError(f"ProPar value truncated: {data.hex()}")
                items.append(
                    Item(proc & 0x7F, parm & 0x1F, type_bits, bytes(data[pos : pos + width]))
                )
                pos += width
    if pos != len(data):
        raise ProtocolError(f"ProPar message has {len(data) - pos} trailing byte(s): {data.hex()}")
    return cmd, items


def encode_binary(seq: int, node: int, data: bytes) -> bytes:
    body = bytes([seq & 0xFF, node & 0xFF, len(data) & 0xFF]) + data
    return bytes([DLE, STX]) + body.replace(bytes([DLE]), bytes([DLE, DLE])) + bytes([DLE, ETX])


def split_binary(buf: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """Complete binary frames in ``buf`` as (seq, node, data); bytes outside frames dropped."""
    out: list[tuple[int, int, bytes]] = []
    i = 0
    n = len(buf)
    while True:
        start = buf.find(bytes([DLE, STX]), i)
        if start < 0:
            return out, buf[-1:] if buf.endswith(bytes([DLE])) else b""
        j = start + 2
        body = bytearray()
        complete = False
        while j < n:
            b = buf[j]
            if b == DLE:
                if j + 1 >= n:
                    break
                nxt = buf[j + 1]
                if nxt == DLE:
                    body.append(DLE)
                    j += 2
                    continue
                if nxt == ETX:
                    complete = True
                    j += 2
                    break
                # DLE followed by anything else: broken frame, resync at this DLE.
                break
            body.append(b)
            j += 1
        if not complete:
            if j >= n - 1:
                return out, buf[start:]
            i = j
            continue
        if len(body) >= 3:
            out.append((body[0], body[1], bytes(body[3:])))
        i = j


def encode_ascii(node: int, data: bytes) -> bytes:
    return f":{len(data) + 1:02X}{node:02X}{data.hex().upper()}\r\n".encode("ascii")


def decode_ascii(line: bytes) -> tuple[int, bytes]:
    """``:LLNNDD..`` (without CR LF) to (node, data); ProtocolError if malformed."""
    text = line.strip()
    if not text.startswith(b":") or len(text) < 5 or len(text) % 2 == 0:
        raise ProtocolError(f"not a ProPar ASCII frame: {line!r}")
    try:
        raw = bytes.fromhex(text[1:].decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"ProPar ASCII frame is not hex: {line!r}") from exc
    if raw[0] != len(raw) - 1:
        raise ProtocolError(f"ProPar ASCII length {raw[0]} does not match {len(raw) - 1}: {line!r}")
    if len(raw) < 3:
        raise ProtocolError(f"ProPar ASCII frame without data: {line!r}")
    return raw[1], raw[2:]


class ProparProtocol:
    """Request/write ProPar parameters of one node over a :class:`~edgectl.io.transport.Port`.

    Speaks the mode named in the profile (``[propar].mode``: ``ascii`` or ``binary``) with the
    profile's timeout and retries; errors name the device, the parameter and the bytes.
    """

    def __init__(self, port: Any, profile: Any, *, name: str, node: int | None = None) -> None:
        if profile.propar is None:
            raise ProfileError(f"{profile.name}: no [propar] table")
        self.port = port
        self.profile = profile
        self.cfg = profile.propar
        self.name = name
        self.node = node if node is not None else self.cfg.node
        self._seq = 0
        self.round_trips = 0
        self.retries_used = 0

    def param(self, key: str) -> Any:
        p = self.cfg.parameters.get(key)
        if p is None:
            raise ProfileError(f"{self.profile.name}: no ProPar parameter {key!r}")
        return p

    def _frame(self, data: bytes) -> bytes:
        self._seq = (self._seq + 1) & 0xFF
        if self.cfg.mode == "ascii":
            return encode_ascii(self.node, data)
        return encode_binary(self._seq, self.node, data)

    def _exchange(self, data: bytes, what: str) -> bytes:
        timeout = self.profile.serial.timeout_s
        attempts = self.profile.serial.retries + 1
        last: DeviceError | None = None
        with self.port.lock:
            for attempt in range(attempts):
                if attempt:
                    self.retries_used += 1
                try:
                    if not self.port.is_open:
                        self.port.open()
                    self.port.flush_input()
                    frame = self._frame(data)
                    self.port.write(frame, what=f"{self.name}: {what}")
                    reply = self._read_reply(timebase.monotonic() + timeout, what, frame)
                    self.round_trips += 1
                    return reply
                except (DeviceTimeoutError, ProtocolError) as exc:
                    last = exc
                except DeviceError as exc:
                    last = exc
                    timebase.sleep(min(timeout, 0.2))
        assert last is not None
        raise type(last)(f"{last} (after {attempts} attempt(s))") from last

    def _read_reply(self, deadline: float, what: str, sent: bytes) -> bytes:
        buf = b""
        seen = b""
        while True:
            chunk = self.port.read_some(deadline, what=what)
            if not chunk:
                if timebase.monotonic() >= deadline:
                    break
                continue
            buf += chunk
            seen += chunk
            if self.cfg.mode == "ascii":
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.strip()
                    if not line.startswith(b":"):
                        continue  # garbage before a frame: resync on the next ':'
                    try:
                        node, data = decode_ascii(line)
                    except ProtocolError:
                        continue
                    if node == self.node:
                        return data
            else:
                frames, buf = split_binary(buf)
                for _seq, node, data in frames:
                    if node == self.node:
                        return data
        if seen:
            raise ProtocolError(
                f"{self.name}: bad or incomplete reply to {what} ({sent!r}): got {seen[-120:]!r}"
            )
        raise DeviceTimeoutError(
            f"{self.name}: no reply to {what} ({sent!r}) "
            f"within {self.profile.serial.timeout_s:.3g} s"
        )

    def read(self, key: str) -> float | int | str:
        """Request parameter ``key`` (a name in ``[propar.parameters]``)."""
        p = self.param(key)
        tb = TYPE_BITS[p.type]
        req = bytes([CMD_REQUEST, p.process, p.parameter | tb, p.process, p.parameter | tb])
        if p.type == "string":
            req += b"\x00"
        data = self._exchange(req, f"read {key} (DDE {p.dde})")
        cmd, items = parse_items(data)
        if cmd == CMD_STATUS:
            code = items[0].value[0]
            raise DeviceError(
                f"{self.name}: read {key} (DDE {p.dde}) refused: status {code} "
                f"({STATUS.get(code, 'unknown')})"
            )
        if cmd != CMD_SEND or len(items) != 1:
            raise ProtocolError(f"{self.name}: unexpected answer to read {key}: {data.hex()}")
        item = items[0]
        if (item.process, item.parameter) != (p.process, p.parameter):
            raise ProtocolError(
                f"{self.name}: answer to read {key} is for process {item.process} parameter "
                f"{item.parameter}: {data.hex()}"
            )
        return self._finite(key, decode_value(p.type, item.value), data)

    def _finite(self, key: str, value: float | int | str, data: bytes) -> float | int | str:
        """A float parameter that is inf or NaN is a bad reading, never a value."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError(f"{self.name}: {key} is not finite ({value}): {data.hex()}")
        return value

    def read_many(self, keys: list[str]) -> dict[str, float | int | str]:
        """Request several parameters in one chained message (one round trip).

        Each parameter goes in its own process block, chained by bit 7 of the process byte
        (doc 9.17.027, chaining); the answer comes back in the same order.
        """
        if not keys:
            return {}
        params = [self.param(k) for k in keys]
        req = bytearray([CMD_REQUEST])
        for i, p in enumerate(params):
            tb = TYPE_BITS[p.type]
            more = 0x80 if i < len(params) - 1 else 0
            req += bytes([p.process | more, p.parameter | tb, p.process, p.parameter | tb])
            if p.type == "string":
                req.append(0)
        what = f"read {', '.join(keys)}"
        data = self._exchange(bytes(req), what)
        cmd, items = parse_items(data)
        if cmd == CMD_STATUS:
            code = items[0].value[0]
            raise DeviceError(
                f"{self.name}: {what} refused: status {code} ({STATUS.get(code, 'unknown')})"
            )
        got = [(it.process, it.parameter) for it in items]
        want = [(p.process, p.parameter) for p in params]
        if cmd != CMD_SEND or got != want:
            raise ProtocolError(f"{self.name}: unexpected answer to {what}: {data.hex()}")
        return {
            k: self._finite(k, decode_value(p.type, it.value), data)
            for k, p, it in zip(keys, params, items, strict=True)
        }

    def write(self, key: str, value: float | int | str) -> None:
        """Send parameter ``key`` with status reply (command 1)."""
        p = self.param(key)
        if not p.writable:
            raise ProfileError(f"{self.profile.name}: ProPar parameter {key!r} is not writable")
        tb = TYPE_BITS[p.type]
        msg = bytes([CMD_SEND_ACK, p.process, p.parameter | tb]) + encode_value(p.type, value)
        data = self._exchange(msg, f"write {key}={value} (DDE {p.dde})")
        if len(data) == 1 and data[0] in ERRORS:
            raise DeviceError(f"{self.name}: write {key}: {ERRORS[data[0]]}")
        cmd, items = parse_items(data)
        if cmd != CMD_STATUS:
            raise ProtocolError(f"{self.name}: unexpected answer to write {key}: {data.hex()}")
        code = items[0].value[0]
        if code != 0:
            raise DeviceError(
                f"{self.name}: write {key}={value} refused: status {code} "
                f"({STATUS.get(code, 'unknown')})"
            )
