r"""Spectrum frames: counted binary frames with a CRC for spectrometer data.

A spectrum of ~1000 values does not fit the regex reply engine (:mod:`edgectl.io.protocol`):
the ``generic/spectrometer-ascii`` profile answers its text commands (``*IDN?``, ``INT 1000``)
with lines, and its data commands (``AXIS?``, ``ACQ``) with one binary frame::

    offset  size  field
    0       1     '#' start byte
    1       1     kind: 'A' wavenumber axis, 'S' spectrum
    2       1     dtype: 'f' float32, 'd' float64 (IEEE 754, big endian)
    3       1     flags: bit 0 detector saturated, bit 1 dark-corrected
    4       4     sequence number (uint32, big endian): acquisition counter
    8       2     count of values (uint16, big endian), 1..16384
    10      n     count × 4 or 8 bytes of values
    10+n    2     CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over bytes 1 .. 9+n, big endian
    12+n    2     "\r\n"

The decoder skips bytes before a plausible header (line noise, a late reply), waits for the
counted length, and refuses a frame whose CRC or trailer is wrong with a
:class:`~edgectl.errors.ProtocolError` naming the offending bytes; it never returns values
from a corrupted frame. A text line starting with ``ERR`` where a frame is expected is the
device refusing the command.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgectl import timebase
from edgectl.errors import DeviceError, DeviceTimeoutError, ProtocolError
from edgectl.io.transport import Port

__all__ = [
    "FLAG_DARK",
    "FLAG_SATURATED",
    "MAX_COUNT",
    "FrameDecoder",
    "SpectralProtocol",
    "SpectrumFrame",
    "crc16_ccitt",
    "encode_frame",
]

START = 0x23  # '#'
KINDS = b"AS"
DTYPES = {ord("f"): (4, ">f4"), ord("d"): (8, ">f8")}
HEADER = struct.Struct(">BBBBIH")
TRAILER = b"\r\n"
MAX_COUNT = 16384
FLAG_SATURATED = 0x01
FLAG_DARK = 0x02


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).

    Check value of ``b"123456789"`` is 0x29B1 (the catalogue check of this CRC).
    """
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# A byte table makes the CRC of a 4 kB frame cheap enough for a Pi at one spectrum a minute.
_TABLE = [crc16_ccitt(bytes([i]), 0) for i in range(256)]


def _crc(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True)
class SpectrumFrame:
    """One decoded frame: ``kind`` ``"A"`` (axis) or ``"S"`` (spectrum) and its values."""

    kind: str
    seq: int
    flags: int
    values: npt.NDArray[np.float64]

    @property
    def is_saturated(self) -> bool:
        return bool(self.flags & FLAG_SATURATED)


def encode_frame(
    kind: str, values: npt.ArrayLike, *, dtype: str = "f", seq: int = 0, flags: int = 0
) -> bytes:
    """Encode one frame (see the module docstring)."""
    if kind not in ("A", "S"):
        raise ValueError(f"frame kind must be 'A' or 'S', got {kind!r}")
    if dtype not in ("f", "d"):
        raise ValueError(f"frame dtype must be 'f' or 'd', got {dtype!r}")
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not 1 <= arr.size <= MAX_COUNT:
        raise ValueError(f"a frame holds 1..{MAX_COUNT} values, got {arr.size}")
    np_dtype = DTYPES[ord(dtype)][1]
    body = HEADER.pack(START, ord(kind), ord(dtype), flags & 0xFF, seq & 0xFFFFFFFF, arr.size)
    body += arr.astype(np_dtype).tobytes()
    return body + struct.pack(">H", _crc(body[1:])) + TRAILER


class FrameDecoder:
    """Incremental decoder: feed bytes, take complete frames.

    Parameters
    ----------
    device
        Name used in error messages.
    """

    def __init__(self, device: str = "spectrometer") -> None:
        self.device = device
        self.buf = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> None:
        self.buf += data

    def _header_at(self, i: int) -> tuple[int, int] | None:
        """(total length, value size) if a plausible header starts at ``i``."""
        b = self.buf
        if b[i] != START or len(b) - i < 2:
            return (0, 0) if b[i] == START else None
        if b[i + 1] not in KINDS:
            return None
        if len(b) - i < 3:
            return (0, 0)
        if b[i + 2] not in DTYPES:
            return None
        if len(b) - i < HEADER.size:
            return (0, 0)
        count = struct.unpack_from(">H", b, i + 8)[0]
        if not 1 <= count <= MAX_COUNT:
            return None
        size = DTYPES[b[i + 2]][0]
        return HEADER.size + count * size + 2 + len(TRAILER), size

    def next_frame(self) -> SpectrumFrame | None:
        """The next complete frame, or None when more bytes are needed.

        Raises
        ------
        ProtocolError
            A complete frame whose CRC or trailer is wrong (it is dropped from the buffer),
            or an ``ERR`` line from the device.
        """
        b = self.buf
        i = 0
        while i < len(b):
            if b[i] == ord("E") and b[i : i + 3] == b"ERR"[: len(b) - i]:
                end = b.find(b"\n", i)
                text = bytes(b[i : end if end >= 0 else len(b)]).rstrip(b"\r")
                if all(0x20 <= c < 0x7F for c in text):  # a text line, not binary noise
                    if end < 0:
                        break  # wait for the rest of the line
                    del b[: end + 1]
                    raise ProtocolError(f"{self.device}: device refused: {text!r}")
            head = self._header_at(i)
            if head is None:
                i += 1
                continue
            total = head[0]
            if total == 0 or len(b) - i < total:
                break  # a plausible header: wait for the rest
            frame = bytes(b[i : i + total])
            self.skipped += i
            got = struct.unpack_from(">H", frame, total - 4)[0]
            want = _crc(frame[1 : total - 4])
            if got != want or frame[-2:] != TRAILER:
                del b[: i + 1]  # resynchronise after this start byte
                what = "CRC" if got != want else "trailer"
                raise ProtocolError(
                    f"{self.device}: bad {what} in a {total}-byte frame: CRC {got:#06x} "
                    f"(computed {want:#06x}), header {frame[:10].hex(' ')}, "
                    f"end {frame[-4:].hex(' ')}"
                )
            del b[: i + total]
            _, kind, dtype, flags, seq, count = HEADER.unpack_from(frame, 0)
            values = np.frombuffer(frame, DTYPES[dtype][1], count, HEADER.size)
            with np.errstate(invalid="ignore", over="ignore"):
                # a garbled payload may hold NaN/inf bit patterns: the caller checks finiteness
                as_f64 = values.astype(np.float64)
            return SpectrumFrame(chr(kind), seq, flags, as_f64)
        # keep a possible partial header; drop bytes that cannot start one
        self.skipped += i
        del b[:i]
        return None


class SpectralProtocol:
    """Sends a data command and waits for its frame, with retries (profile ``[serial]``).

    Parameters
    ----------
    port
        The serial line.
    name
        Device name in error messages.
    terminator
        Appended to every command.
    timeout_s, retries
        Per-attempt reply deadline and extra attempts after a timeout or a bad frame.
    """

    def __init__(
        self, port: Port, *, name: str, terminator: bytes, timeout_s: float, retries: int
    ) -> None:
        self.port = port
        self.name = name
        self.terminator = terminator
        self.timeout_s = timeout_s
        self.retries = retries
        self.round_trips = 0
        self.retries_used = 0
        self.bad_frames = 0

    def request(self, command: str, kind: str, *, timeout_s: float | None = None) -> SpectrumFrame:
        """Send ``command``; return its frame of ``kind``.

        Raises
        ------
        DeviceTimeoutError
            No complete frame after every attempt.
        ProtocolError
            Frames came but were corrupt, or the device refused (``ERR``).
        """
        timeout = timeout_s or self.timeout_s
        payload = command.encode("ascii") + self.terminator
        last: DeviceError | None = None
        attempts = self.retries + 1
        with self.port.lock:
            for attempt in range(attempts):
                if attempt:
                    self.retries_used += 1
                try:
                    if not self.port.is_open:
                        self.port.open()
                    self.port.flush_input()
                    self.port.write(payload, what=f"{self.name}: {command}")
                    frame = self._collect(command, kind, timebase.monotonic() + timeout)
                    self.round_trips += 1
                    return frame
                except ProtocolError as exc:
                    if "device refused" in str(exc):
                        raise
                    self.bad_frames += 1
                    last = exc
                except DeviceTimeoutError as exc:
                    last = exc
                except DeviceError as exc:
                    last = exc
                    timebase.sleep(min(timeout, 0.2))
        assert last is not None
        raise type(last)(f"{last} (after {attempts} attempt(s))") from last

    def _collect(self, command: str, kind: str, deadline: float) -> SpectrumFrame:
        dec = FrameDecoder(self.name)
        error: ProtocolError | None = None
        while True:
            chunk = self.port.read_some(deadline, what=f"{self.name}: {command}")
            if chunk:
                dec.feed(chunk)
                while True:
                    try:
                        frame = dec.next_frame()
                    except ProtocolError as exc:
                        if "device refused" in str(exc):
                            raise ProtocolError(f"{exc} (command {command!r})") from None
                        error = exc
                        continue
                    if frame is None:
                        break
                    if frame.kind == kind:
                        return frame
            elif timebase.monotonic() >= deadline:
                break
        if error is not None:
            raise error
        if dec.buf or dec.skipped:
            raise ProtocolError(
                f"{self.name}: incomplete reply to {command!r}: "
                f"{len(dec.buf)} byte(s) pending, {dec.skipped} skipped, "
                f"start {bytes(dec.buf[:16]).hex(' ')}"
            )
        raise DeviceTimeoutError(f"{self.name}: no reply to {command!r} within {self.timeout_s} s")
