"""pyserial URL handler for ``sim://<device>?profile=<vendor>/<model>&...``.

pyserial imports ``<package>.protocol_<scheme>`` for every package in
``serial.protocol_handler_packages``; :func:`edgectl.io.transport.register_sim_scheme` appends
``"edgectl.emulators"``. The port talks to the in-process emulator named ``<device>``
(see :mod:`edgectl.emulators` for the query parameters).

Unlike a pty, this port honours line settings: opened with a baud rate, byte size, parity or
stop bits other than the profile's, the device receives and sends scrambled bytes, as a real
UART would (``strict_line=0`` in the URL turns that off).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlparse

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from edgectl import timebase
from edgectl.emulators import get_emulator
from edgectl.emulators.base import Emulator, EmulatorBus
from edgectl.errors import EdgectlError

__all__ = ["Serial"]


class Serial(SerialBase):
    """A serial port whose other end is an emulator."""

    is_open: bool
    _emulator: Emulator | EmulatorBus | None = None
    _strict_line = True

    def _line_ok(self, emu: Emulator | EmulatorBus) -> bool:
        """Whether our line settings match the device's (profile ``[serial]``)."""
        if not self._strict_line:
            return True
        member = emu if isinstance(emu, Emulator) else next(iter(emu.members.values()), None)
        if member is None:
            return True
        s = member.profile.serial
        return (
            self._baudrate == s.baudrate
            and self._bytesize == s.bytesize
            and self._parity == s.parity
            and float(self._stopbits) == float(s.stopbits)
        )

    @staticmethod
    def _scramble(data: bytes) -> bytes:
        # What a UART makes of a frame sent at the wrong speed or framing: other bytes.
        return bytes(((b * 37) ^ 0xA5) & 0xFF for b in data)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("port already open")
        if self._port is None:
            raise SerialException("port must be set before open()")
        self._emulator = self.from_url(str(self._port))
        self.is_open = True

    def from_url(self, url: str) -> Emulator | EmulatorBus:
        parts = urlparse(url)
        if parts.scheme != "sim" or not parts.netloc:
            raise SerialException(f"expected sim://<device>?profile=<vendor>/<model>, got {url!r}")
        params = dict(parse_qsl(parts.query))
        self._strict_line = params.get("strict_line", "1") != "0"
        try:
            return get_emulator(parts.netloc, params.pop("profile", None), params)
        except EdgectlError as exc:
            raise SerialException(f"{url}: {exc}") from exc

    def _reconfigure_port(self) -> None:
        """Line settings have no effect on an emulator."""

    def close(self) -> None:
        self.is_open = False
        self._emulator = None

    def _emu(self) -> Emulator | EmulatorBus:
        if not self.is_open or self._emulator is None:
            raise PortNotOpenError()
        emu = self._emulator
        if not emu.line_is_up():
            raise SerialException(f"{self._port}: device disconnected")
        return emu

    @property
    def in_waiting(self) -> int:
        return self._emu().in_waiting()

    def read(self, size: int = 1) -> bytes:
        emu = self._emu()
        if size <= 0:
            return b""
        deadline = None if self._timeout is None else timebase.monotonic() + self._timeout
        buf = bytearray()
        while len(buf) < size:
            remaining = None if deadline is None else max(0.0, deadline - timebase.monotonic())
            chunk = emu.read(size - len(buf), remaining)
            if not emu.line_is_up():
                raise SerialException(f"{self._port}: device disconnected")
            buf += chunk if self._line_ok(emu) else self._scramble(chunk)
            if not chunk and (deadline is None or timebase.monotonic() >= deadline):
                break
            if self._timeout == 0:
                break
        return bytes(buf)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        emu = self._emu()
        payload = bytes(data)
        emu.receive(payload if self._line_ok(emu) else self._scramble(payload))
        return len(payload)

    def flush(self) -> None:
        self._emu()

    def reset_input_buffer(self) -> None:
        self._emu().reset_output()

    def reset_output_buffer(self) -> None:
        self._emu()

    def send_break(self, duration: float = 0.25) -> None:
        self._emu()

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True


# pyserial looks the class up by this name.
serial_class = Serial
_ = serial
