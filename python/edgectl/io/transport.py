"""A serial port opened from a pyserial URL, with deadlines and reopen-after-disconnect.

Ports are URLs (``/dev/ttyUSB0``, ``socket://127.0.0.1:7000``, ``sim://mfc-air?profile=...``)
opened with :func:`serial.serial_for_url`, so drivers run unchanged against hardware, a TCP
gateway or an in-process emulator. Every failure of pyserial becomes a
:class:`~edgectl.errors.DeviceError` naming the port.
"""

from __future__ import annotations

import contextlib
import threading

import serial

from edgectl import timebase
from edgectl.errors import DeviceError
from edgectl.io.profile import SerialSettings

__all__ = ["Port", "register_sim_scheme"]


def register_sim_scheme() -> None:
    """Make ``sim://`` URLs resolve to :mod:`edgectl.emulators.protocol_sim`."""
    if "edgectl.emulators" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("edgectl.emulators")


class Port:
    """One serial line, shared by the devices on it (one I/O worker per port).

    Parameters
    ----------
    url
        A pyserial URL.
    settings
        Line settings from the profile (baud rate, parity, ...; ignored by ptys and sockets).
    name
        Used in error messages.
    """

    #: Read timeout of the port: reads return at least this often so deadlines are checked
    #: without reconfiguring the line (each ``timeout`` change is a ``tcsetattr`` on a tty).
    POLL_S = 0.02

    def __init__(self, url: str, settings: SerialSettings | None = None, *, name: str = "") -> None:
        self.url = url
        self.settings = settings or SerialSettings()
        self.name = name or url
        self.lock = threading.RLock()
        self._serial: serial.SerialBase | None = None
        self._last_io = 0.0
        #: How many times the port was (re)opened: devices re-run their start-up after a reopen.
        self.opens = 0
        register_sim_scheme()

    @property
    def serial(self) -> serial.SerialBase:
        """The open pyserial object (opened on first use)."""
        if self._serial is None:
            self.open()
        assert self._serial is not None
        return self._serial

    @property
    def is_open(self) -> bool:
        return self._serial is not None and bool(self._serial.is_open)

    def open(self) -> None:
        s = self.settings
        try:
            self._serial = serial.serial_for_url(
                self.url,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                rtscts=s.rtscts,
                timeout=min(self.POLL_S, s.timeout_s),
                write_timeout=max(1.0, s.timeout_s),
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._serial = None
            raise DeviceError(f"{self.name}: cannot open port {self.url!r}: {exc}") from exc
        self.opens += 1

    def reopen(self) -> None:
        """Close and open again (after a disconnect); raises DeviceError if it still fails."""
        self.close()
        self.open()

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def write(self, data: bytes, *, what: str = "") -> None:
        gap = self.settings.inter_command_gap_s
        if gap > 0.0:
            wait = self._last_io + gap - timebase.monotonic()
            if wait > 0:
                timebase.sleep(wait)
        try:
            self.serial.write(data)
            self.serial.flush()
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise DeviceError(f"{self.name}: write of {what or data!r} failed: {exc}") from exc
        self._last_io = timebase.monotonic()

    def read_some(self, deadline: float, *, what: str = "") -> bytes:
        """Bytes available now, or wait for at least one until ``deadline`` (monotonic)."""
        ser = self.serial
        remaining = deadline - timebase.monotonic()
        if remaining <= 0:
            return b""
        sim = timebase.clock() is not None and not isinstance(ser, serial.Serial)
        if sim and ser.timeout != remaining:
            # an in-process emulator on simulated time: wait on the clock until the deadline
            # in one read (no tty to reconfigure), not in POLL_S steps
            ser.timeout = remaining
        try:
            waiting = ser.in_waiting
            data = ser.read(waiting if waiting > 0 else 1)
            if data:
                more = ser.in_waiting
                if more:
                    data += ser.read(more)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise DeviceError(f"{self.name}: read after {what!r} failed: {exc}") from exc
        self._last_io = timebase.monotonic()
        return bytes(data)

    def read_exact(self, n: int, deadline: float, *, what: str = "") -> bytes:
        buf = bytearray()
        while len(buf) < n and timebase.monotonic() < deadline:
            buf += self.read_some(deadline, what=what)
        return bytes(buf)

    def flush_input(self) -> None:
        """Drop whatever is buffered (garbage, a late reply) before the next command."""
        if self._serial is None:
            return
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError):
            self.close()
