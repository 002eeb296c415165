"""Common base of the serial device drivers: profile, port, lifecycle and safe close."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgectl.errors import DeviceError, InvalidInputError, ProfileError, ProtocolError
from edgectl.io.profile import DeviceProfile, load_profile
from edgectl.io.protocol import LineProtocol
from edgectl.io.transport import Port

__all__ = ["SerialDevice", "check_address", "reply_int", "reply_number"]

log = logging.getLogger(__name__)


def check_address(name: str, value: Any, lo: int, hi: int) -> None:
    """A bus address option (Modbus slave, ProPar node, pump number): a whole number in
    ``[lo, hi]``, or None for the profile's own."""
    if value is not None and (isinstance(value, bool) or value not in range(lo, hi + 1)):
        raise InvalidInputError(f"{name} must be {lo}-{hi}, got {value!r}")


def _default_name(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "sim":
        return parsed.netloc or url
    return url


def reply_number(values: Mapping[str, Any], key: str, *, device: str, what: str) -> float:
    """The finite number ``key`` of a parsed reply to ``what``.

    Raises
    ------
    ProtocolError
        The reply has no ``key``, or it is not a number, or not finite (``inf``, ``nan``,
        ``1e999``): a reading the controller must mark BAD, never use.
    """
    if key not in values:
        raise ProtocolError(f"{device}: reply to {what!r} has no {key}: {dict(values)!r}")
    raw = values[key]
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise ProtocolError(
            f"{device}: reply to {what!r}: {key} is not a number: {raw!r}"
        ) from None
    if not math.isfinite(value):
        raise ProtocolError(f"{device}: reply to {what!r}: {key} is not finite: {raw!r}")
    return value


def reply_int(
    values: Mapping[str, Any], key: str, *, device: str, what: str, lo: int, hi: int
) -> int:
    """The whole number ``key`` of a parsed reply, within ``[lo, hi]``; ProtocolError if not."""
    value = reply_number(values, key, device=device, what=what)
    if value != int(value) or not lo <= value <= hi:
        raise ProtocolError(
            f"{device}: reply to {what!r}: {key} must be a whole number in [{lo}, {hi}], "
            f"got {values[key]!r}"
        )
    return int(value)


class SerialDevice:
    """A device on a serial line described by a firmware profile.

    Parameters
    ----------
    port
        A pyserial URL (opened with ``serial.serial_for_url``) or a shared :class:`Port`.
    profile
        ``"vendor/model"``, a path, or a loaded :class:`DeviceProfile`.
    name
        Device name in errors (default: the ``sim://`` device name or the URL).
    startup
        Run the profile's ``[startup] commands`` now.

    Devices are context managers; :meth:`close` is idempotent and first makes outputs safe
    (:meth:`make_safe`), then closes the port if the device opened it.
    """

    kind: str = ""
    default_profile: str = ""

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Refuse driver options (the ``options`` table of a reactor config's device) that
        the constructor would refuse, without opening a port: the config loader calls it.

        Raises
        ------
        InvalidInputError
            An option out of its range (names the option and the range).
        """

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        name: str | None = None,
        startup: bool = True,
    ) -> None:
        prof = profile if profile is not None else self.default_profile
        self.profile = prof if isinstance(prof, DeviceProfile) else load_profile(prof)
        if self.kind and self.profile.device.kind != self.kind:
            raise ProfileError(
                f"{self.profile.name}: device.kind is {self.profile.device.kind!r}, "
                f"{type(self).__name__} needs {self.kind!r}"
            )
        if isinstance(port, Port):
            self.port = port
            self._owns_port = False
        else:
            self.port = Port(port, self.profile.serial, name=name or _default_name(port))
            self._owns_port = True
        self.name = name or _default_name(self.port.url)
        self._closed = False
        self._ready_opens = -1
        self.protocol = LineProtocol(self.port, self.profile, name=self.name)
        if not self.port.is_open:
            self.port.open()
        if startup:
            try:
                self.start_up()
            except Exception:
                if self._owns_port:
                    self.port.close()  # do not leak the port of a device that never came up
                raise

    def start_up(self) -> None:
        """Bring the device into a known state (the profile's start-up commands).

        Run at open and again, automatically, before the first command after the port was
        reopened (a device that lost power comes back in its power-up state: EZO circuits in
        continuous mode, a Reglo ICC without channel addressing).
        """
        for _ in range(2):
            opens = self.port.opens
            for command in self.profile.startup.commands:
                self.protocol.query(command, **self._format_values())
            if self.port.opens == opens:
                self._ready_opens = opens
                return

    def _format_values(self) -> dict[str, Any]:
        """Values every command template may use (address, unit, channel)."""
        return {}

    def query(self, command: str, **values: Any) -> dict[str, Any]:
        """Send a profile command; reply values as a dict (see :class:`LineProtocol`)."""
        self._check_open()
        if self.profile.startup.commands and self.port.opens != self._ready_opens:
            self.start_up()
        return self.protocol.query(command, **{**self._format_values(), **values})

    def _number(self, values: Mapping[str, Any], key: str, what: str) -> float:
        """:func:`reply_number` naming this device."""
        return reply_number(values, key, device=self.name, what=what)

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceError(f"{self.name}: device is closed")

    def make_safe(self) -> None:
        """Put outputs in their safe state (pump stopped, flow to the safe value)."""

    @property
    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Make outputs safe, then release the port. Safe to call twice."""
        if self._closed:
            return
        try:
            self.make_safe()
        except DeviceError as exc:
            log.warning("%s: could not make outputs safe on close: %s", self.name, exc)
        finally:
            self._closed = True
            if self._owns_port:
                self.port.close()

    def __enter__(self) -> SerialDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.port.url!r}, profile={self.profile.name!r})"
