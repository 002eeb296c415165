"""A generic Modbus RTU slave, its register map taken from the device profile.

Used for the Hamilton ARC sensors and the generic circulator (devices.md §1.3, §1.7). Serves
FC 3/4 reads and FC 6/16 writes; CRC-16 (reflected polynomial 0xA001, initial 0xFFFF, low byte
first, Modbus over Serial Line v1.02 §6.2.2); exception replies 01 (function), 02 (address;
also a partial read of a ``block_only`` block, as the Hamilton manual forbids them) and 03
(value). Register contents come from the plant: a register's ``signal`` is read (or written, if
``writable``) through the emulator's signal bindings; ``reg_<key>=<value>`` in the URL pins a
register (a probe status with its error bit, a unit code).
"""

from __future__ import annotations

import struct

from edgectl import timebase
from edgectl.emulators.base import Emulator
from edgectl.io.modbus import decode_registers, encode_registers
from edgectl.io.profile import ModbusRegister

__all__ = ["ModbusRtuEmulator", "crc16"]


def crc16(data: bytes) -> bytes:
    """Modbus CRC-16, returned low byte first as it goes on the wire."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def _request_length(buf: bytes) -> int | None:
    """Length of the request starting ``buf`` (None: need more bytes)."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        if len(buf) < 7:
            return None
        return 9 + buf[6]
    return 4  # unknown function: address, function, CRC


class ModbusRtuEmulator(Emulator):
    """Profile-driven Modbus RTU slave."""

    def power_on(self) -> None:
        assert self.profile.modbus is not None
        self.map = self.profile.modbus
        self.slave = int(self.params.get("address", str(self.map.slave)))
        self.words: dict[int, int] = {}
        self.held: dict[str, float] = {}
        for key, reg in self.map.registers.items():
            if reg.writable:
                self.held[key] = reg.default
        self._last_rx = timebase.monotonic()

    # RTU frames are delimited by silence, which a pty does not reproduce; frames are cut by
    # their length instead, and a bad CRC drops the buffer (the device stays silent).
    def split(self, buf: bytes) -> tuple[list[bytes], bytes]:
        frames: list[bytes] = []
        while buf:
            n = _request_length(buf)
            if n is None or len(buf) < n:
                return frames, buf
            frame, buf = buf[:n], buf[n:]
            if crc16(frame[:-2]) != frame[-2:]:
                return frames, b""
            frames.append(frame)
        return frames, b""

    def _value(self, key: str, reg: ModbusRegister) -> float:
        override = self.params.get(f"reg_{key}")
        if override is not None:  # e.g. reg_primary_status=16: a sensor reporting an error
            return float(override)
        if reg.writable:
            return self.held[key]
        if reg.signal:
            return self.read_signal(reg.signal, reg.default)
        return reg.default

    def _block(self, address: int, count: int, fc: int) -> list[int] | int:
        """Register words for a read, or an exception code."""
        words = [0] * count
        covered = [False] * count
        for key, reg in self.map.registers.items():
            if reg.function != fc and not (fc in (3, 4) and reg.function in (3, 4)):
                continue
            start = reg.address
            end = reg.address + reg.count
            if end <= address or start >= address + count:
                continue
            if reg.block_only and (start < address or end > address + count):
                return 2
            width = 2 if reg.type in ("u32", "f32") else 1
            enc = encode_registers(self._value(key, reg), reg, self.map.word_order)
            for k in range(width):
                i = start + reg.offset + k - address
                if 0 <= i < count:
                    words[i] = enc[k]
            for i in range(max(start, address), min(end, address + count)):
                covered[i - address] = True
        if not any(covered):
            return 2
        return words

    def _write(self, address: int, values: list[int]) -> int:
        """Apply a write; returns 0 or an exception code."""
        done = 0
        for key, reg in self.map.registers.items():
            if not reg.writable:
                continue
            at = reg.address + reg.offset
            width = 2 if reg.type in ("u32", "f32") else 1
            if address <= at and at + width <= address + len(values):
                words = [0] * reg.count
                for k in range(width):
                    words[reg.offset + k] = values[at - address + k]
                value = decode_registers(words, reg, self.map.word_order)
                self.held[key] = value
                if reg.signal:
                    self.write_signal(reg.signal, value)
                done += width
        return 0 if done == len(values) else 2

    def handle(self, frame: bytes) -> bytes | None:
        slave, fc = frame[0], frame[1]
        if slave != self.slave:
            return None
        body: bytes
        if fc in (3, 4):
            address, count = struct.unpack(">HH", frame[2:6])
            if not 1 <= count <= 125:
                return self._exception(fc, 3)
            block = self._block(address, count, fc)
            if isinstance(block, int):
                return self._exception(fc, block)
            body = bytes([slave, fc, 2 * count]) + struct.pack(f">{count}H", *block)
        elif fc == 6:
            address, value = struct.unpack(">HH", frame[2:6])
            code = self._write(address, [value])
            if code:
                return self._exception(fc, code)
            body = frame[:6]
        elif fc == 16:
            address, count = struct.unpack(">HH", frame[2:6])
            values = list(struct.unpack(f">{count}H", frame[7 : 7 + 2 * count]))
            code = self._write(address, values)
            if code:
                return self._exception(fc, code)
            body = frame[:6]
        else:
            return self._exception(fc, 1)
        return body + crc16(body)

    def _exception(self, fc: int, code: int) -> bytes:
        body = bytes([self.slave, fc | 0x80, code])
        return body + crc16(body)

    def error_reply(self, frame: bytes) -> bytes | None:
        fc = frame[1] if len(frame) > 1 else 3
        return self._exception(fc & 0x7F, 4)  # slave device failure

    def garbage_terminator(self) -> bytes:
        return b""
