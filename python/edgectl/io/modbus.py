"""Modbus RTU devices driven by a profile register map, through minimalmodbus.

The framing (CRC-16, function codes, exception replies) is minimalmodbus's; this module adds
what the profile knows: PDU addresses, register blocks that must be read whole (Hamilton PMC
blocks, devices.md §1.3), the word order of 32-bit values, scaling, retries and errors that
name the device and the register.
"""

from __future__ import annotations

import math
import struct

import minimalmodbus
import serial

from edgectl import timebase
from edgectl.errors import DeviceError, DeviceTimeoutError, ProfileError, ProtocolError
from edgectl.io.profile import DeviceProfile, ModbusProfile, ModbusRegister
from edgectl.io.transport import Port

__all__ = ["ModbusProtocol", "decode_registers", "encode_registers"]


def decode_registers(words: list[int], reg: ModbusRegister, word_order: str) -> float:
    """The engineering value of ``reg`` inside the block ``words`` (scaled)."""
    i = reg.offset
    if reg.type in ("u16", "i16"):
        raw = words[i] & 0xFFFF
        value: float = raw - 0x10000 if reg.type == "i16" and raw >= 0x8000 else raw
    else:
        hi, lo = (words[i], words[i + 1]) if word_order == "big" else (words[i + 1], words[i])
        data = struct.pack(">HH", hi & 0xFFFF, lo & 0xFFFF)
        value = struct.unpack(">f" if reg.type == "f32" else ">I", data)[0]
    return float(value) * reg.scale


def encode_registers(value: float, reg: ModbusRegister, word_order: str) -> list[int]:
    """Register words for ``value`` in engineering units (inverse of :func:`decode_registers`)."""
    raw = value / reg.scale if reg.scale else value
    if reg.type in ("u16", "i16"):
        n = round(raw)
        lo, hi = (-0x8000, 0x7FFF) if reg.type == "i16" else (0, 0xFFFF)
        if not lo <= n <= hi:
            raise ValueError(f"{value} out of range for {reg.type} (scale {reg.scale})")
        return [n & 0xFFFF]
    if reg.type == "f32":
        data = struct.pack(">f", raw)
    else:
        n = round(raw)
        if not 0 <= n <= 0xFFFFFFFF:
            raise ValueError(f"{value} out of range for u32 (scale {reg.scale})")
        data = struct.pack(">I", n)
    hi, lo = struct.unpack(">HH", data)
    return [hi, lo] if word_order == "big" else [lo, hi]


class ModbusProtocol:
    """Reads and writes named registers of one Modbus RTU slave on a :class:`Port`."""

    def __init__(self, port: Port, profile: DeviceProfile, *, name: str, slave: int | None = None):
        if profile.modbus is None:
            raise ProfileError(f"{profile.name}: no [modbus] table")
        self.port = port
        self.profile = profile
        self.map: ModbusProfile = profile.modbus
        self.name = name
        self.slave = slave if slave is not None else self.map.slave
        self.round_trips = 0
        self.retries_used = 0

    def register(self, key: str) -> ModbusRegister:
        reg = self.map.registers.get(key)
        if reg is None:
            raise ProfileError(f"{self.profile.name}: no register {key!r} in [modbus.registers]")
        return reg

    def _instrument(self, timeout_s: float) -> minimalmodbus.Instrument:
        if not self.port.is_open:
            self.port.open()
        ser = self.port.serial
        if ser.timeout != timeout_s:
            ser.timeout = timeout_s
        inst = minimalmodbus.Instrument(ser, self.slave)
        inst.clear_buffers_before_each_transaction = True
        inst.close_port_after_each_call = False
        return inst

    def _call(self, what: str, fn: object) -> object:
        timeout = self.profile.serial.timeout_s
        attempts = self.profile.serial.retries + 1
        last: DeviceError | None = None
        with self.port.lock:
            for attempt in range(attempts):
                if attempt:
                    self.retries_used += 1
                try:
                    inst = self._instrument(timeout)
                    result = fn(inst)  # type: ignore[operator]
                    self.round_trips += 1
                    return result
                except minimalmodbus.NoResponseError as exc:
                    last = DeviceTimeoutError(
                        f"{self.name}: no reply to {what} (slave {self.slave}) "
                        f"within {timeout:.3g} s"
                    )
                    last.__cause__ = exc
                except minimalmodbus.SlaveReportedException as exc:
                    raise DeviceError(
                        f"{self.name}: slave {self.slave} refused {what}: {exc}"
                    ) from exc
                except (minimalmodbus.InvalidResponseError, minimalmodbus.ModbusException) as exc:
                    last = ProtocolError(f"{self.name}: bad reply to {what}: {exc}")
                    last.__cause__ = exc
                except (serial.SerialException, OSError, DeviceError) as exc:
                    self.port.close()
                    last = DeviceError(f"{self.name}: port failed during {what}: {exc}")
                    last.__cause__ = exc
                    timebase.sleep(min(timeout, 0.2))
                self.port.flush_input()
        assert last is not None
        raise type(last)(f"{last} (after {attempts} attempt(s))") from last.__cause__

    def read_block(self, key: str) -> list[int]:
        """The whole register block of ``key`` as raw words."""
        reg = self.register(key)
        what = f"read {key} (PDU {reg.address}, {reg.count} reg, FC{reg.function})"
        words = self._call(
            what,
            lambda inst: inst.read_registers(reg.address, reg.count, functioncode=reg.function),
        )
        assert isinstance(words, list)
        return words

    def read(self, key: str) -> float:
        """Engineering value of register ``key`` (reads its whole block)."""
        reg = self.register(key)
        value = decode_registers(self.read_block(key), reg, self.map.word_order)
        if not math.isfinite(value):
            raise ProtocolError(f"{self.name}: {key} is not finite ({value})")
        return value

    def write(self, key: str, value: float) -> None:
        reg = self.register(key)
        if not reg.writable:
            raise ProfileError(f"{self.profile.name}: register {key!r} is not writable")
        words = encode_registers(value, reg, self.map.word_order)
        what = f"write {key}={value} (PDU {reg.address + reg.offset})"
        self._call(what, lambda inst: inst.write_registers(reg.address + reg.offset, words))
