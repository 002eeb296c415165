"""The profile-driven protocol engine for line-based (ASCII) devices.

:class:`LineProtocol` sends a profile command (``commands.<name>.send`` formatted with the
caller's values), collects reply lines until ``commands.<name>.expect`` matches the last
``lines`` lines, and returns the named groups as numbers (scaled by ``fields``) or strings.

Resynchronisation: lines that do not complete a match are skipped (unsolicited output,
garbage cut at a terminator); a timeout or a garbled reply flushes the input buffer and resends
(after ``serial.line_clear``, if the profile has one, to empty the device's half-read input),
up to ``serial.retries`` times. A reply matching an ``[[errors]]`` pattern raises
:class:`CommandRefusedError` at once (the device understood and refused), except on a line with
``line_clear``, where junk may have garbled the command: it is cleared and retried once.
Every error names the device, the command and the bytes received.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from edgectl import timebase
from edgectl.errors import DeviceError, DeviceTimeoutError, ProfileError, ProtocolError
from edgectl.io.profile import Command, DeviceProfile
from edgectl.io.transport import Port

__all__ = ["CommandRefusedError", "LineProtocol", "ReplyParser", "split_frames"]

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


class CommandRefusedError(ProtocolError):
    """The device answered with one of its error replies (``?``, ``*ER``, ``ES``, ...)."""


def split_frames(
    buf: bytes, terminator: bytes, bare: tuple[bytes, ...] = ()
) -> tuple[list[bytes], bytes]:
    """Cut ``buf`` into complete frames; return them and the unfinished rest.

    A frame that starts with one of ``bare`` (single-byte replies sent without terminator) is
    that byte alone.
    """
    frames: list[bytes] = []
    rest = buf
    while rest:
        if bare and rest[:1] in bare:
            frames.append(rest[:1])
            rest = rest[1:]
            if rest.startswith(terminator):
                rest = rest[len(terminator) :]
            continue
        i = rest.find(terminator)
        if i < 0:
            break
        frames.append(rest[:i])
        rest = rest[i + len(terminator) :]
    return frames, rest


@dataclass(frozen=True)
class ReplyParser:
    """Matches reply lines of one command and converts its named groups."""

    device: str
    command: str
    spec: Command
    profile: DeviceProfile

    def __post_init__(self) -> None:
        object.__setattr__(self, "_expect", re.compile(self.spec.expect or r"^.*$", re.DOTALL))
        object.__setattr__(
            self, "_errors", [(re.compile(e.pattern), e.meaning) for e in self.profile.errors]
        )

    def error_meaning(self, line: str) -> str | None:
        for pattern, meaning in self._errors:  # type: ignore[attr-defined]
            if pattern.search(line):
                return meaning
        return None

    def match(self, lines: list[str]) -> dict[str, Any] | None:
        """Values if the last ``spec.lines`` lines match ``expect``, else None."""
        n = self.spec.lines
        if len(lines) < n:
            return None
        m = self._expect.match("\n".join(lines[-n:]))  # type: ignore[attr-defined]
        if m is None:
            return None
        return self.convert(m.groupdict())

    def convert(self, groups: dict[str, str | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, text in groups.items():
            if text is None:
                continue
            field = self.profile.fields.get(key)
            number: float | None = None
            if _NUMBER.match(text):
                try:  # the pattern's \s takes control characters float() refuses ("\x1e4")
                    number = float(text)
                except ValueError:
                    number = None
            if number is not None:
                value = number
                if field is not None:
                    value = value * field.scale + field.offset
                if not math.isfinite(value):
                    # "1e999" is a number to the pattern and inf to float(): never a reading
                    raise ProtocolError(
                        f"{self.device}: reply to {self.command!r}: field {key} is not a finite "
                        f"number: {text!r}"
                    )
                out[key] = value
            elif field is not None:
                raise ProtocolError(
                    f"{self.device}: reply to {self.command!r}: field {key} is not a number: "
                    f"{text!r}"
                )
            else:
                out[key] = text.strip()
        return out

    def parse(self, data: bytes) -> dict[str, Any]:
        """Parse one complete reply (terminator-separated lines); raise ProtocolError if bad."""
        enc = self.profile.serial.encoding
        term = self.profile.serial.terminator_in.encode(enc)
        frames, rest = split_frames(data, term, _bare(self.profile))
        if rest:
            frames.append(rest)
        lines = [f.decode(enc, errors="replace") for f in frames]
        for line in lines:
            meaning = self.error_meaning(line)
            if meaning is not None:
                raise CommandRefusedError(
                    f"{self.device}: {self.command!r} refused: {line!r} ({meaning})"
                )
        values = self.match(lines)
        if values is None:
            raise ProtocolError(f"{self.device}: bad reply to {self.command!r}: {data!r}")
        return values


def _bare(profile: DeviceProfile) -> tuple[bytes, ...]:
    enc = profile.serial.encoding
    return tuple(b.encode(enc) for b in profile.serial.bare_replies)


class LineProtocol:
    """Query/command engine for one line-based device on a :class:`Port`.

    Parameters
    ----------
    port
        The serial line (may be shared with other devices).
    profile
        The device's firmware profile.
    name
        Device name used in every error message.
    """

    def __init__(self, port: Port, profile: DeviceProfile, *, name: str) -> None:
        self.port = port
        self.profile = profile
        self.name = name
        self._parsers: dict[str, ReplyParser] = {}
        self._enc = profile.serial.encoding
        self._term_in = profile.serial.terminator_in.encode(self._enc)
        self._term_out = profile.serial.terminator_out.encode(self._enc)
        self._bare = _bare(profile)
        self._line_clear = profile.serial.line_clear.encode(self._enc)
        self.round_trips = 0
        self.retries_used = 0

    def parser(self, command: str) -> ReplyParser:
        if command not in self._parsers:
            spec = self.profile.commands.get(command)
            if spec is None:
                raise ProfileError(f"{self.profile.name}: no command {command!r} in the profile")
            self._parsers[command] = ReplyParser(self.name, command, spec, self.profile)
        return self._parsers[command]

    def encode(self, command: str, values: dict[str, Any]) -> bytes:
        spec = self.parser(command).spec
        try:
            text = spec.send.format(**values)
        except (KeyError, ValueError, IndexError) as exc:
            raise ProfileError(
                f"{self.profile.name}: commands.{command}.send {spec.send!r} cannot be "
                f"formatted with {sorted(values)}: {exc}"
            ) from exc
        return text.encode(self._enc) + self._term_out

    def query(self, command: str, **values: Any) -> dict[str, Any]:
        """Send ``command`` and return the reply's named values (scaled numbers or strings).

        Raises
        ------
        DeviceTimeoutError
            No complete reply within the timeout, after every retry.
        ProtocolError
            Replies came but never matched (the last bytes are in the message).
        DeviceError
            The device refused the command, or the port failed.
        """
        parser = self.parser(command)
        payload = self.encode(command, values)
        timeout = parser.spec.timeout_s or self.profile.serial.timeout_s
        attempts = self.profile.serial.retries + 1
        last: DeviceError | None = None
        with self.port.lock:
            for attempt in range(attempts):
                if attempt:
                    self.retries_used += 1
                try:
                    if not self.port.is_open:
                        self.port.open()
                    if attempt and self._line_clear:
                        # Junk (noise, a cut frame) may sit in the device's input buffer.
                        self.port.write(self._line_clear, what=f"{self.name}: line clear")
                    self.port.flush_input()
                    self.port.write(payload, what=f"{self.name}: {command}")
                    if parser.spec.lines == 0:
                        self.round_trips += 1
                        return {}
                    result = self._collect(parser, payload, timebase.monotonic() + timeout)
                    self.round_trips += 1
                    return result
                except CommandRefusedError as exc:
                    # A refusal is final, unless the line can be cleared of junk that may
                    # have garbled the command (then one more try, if any are left).
                    if not self._line_clear or attempt + 1 >= attempts:
                        raise
                    last = exc
                except (DeviceTimeoutError, ProtocolError) as exc:
                    last = exc
                except DeviceError as exc:
                    last = exc
                    # A port that failed (disconnect): wait out part of the timeout, then reopen.
                    timebase.sleep(min(timeout, 0.2))
        assert last is not None
        raise type(last)(f"{last} (after {attempts} attempt(s))") from last

    def _collect(self, parser: ReplyParser, payload: bytes, deadline: float) -> dict[str, Any]:
        buf = b""
        lines: list[str] = []
        seen = b""
        what = f"{self.name}: {parser.command}"
        while True:
            chunk = self.port.read_some(deadline, what=what)
            if not chunk:
                if timebase.monotonic() >= deadline:
                    break
                continue
            buf += chunk
            seen += chunk
            frames, buf = split_frames(buf, self._term_in, self._bare)
            for frame in frames:
                line = frame.decode(self._enc, errors="replace")
                meaning = parser.error_meaning(line)
                if meaning is not None:
                    raise CommandRefusedError(
                        f"{self.name}: {parser.command!r} ({payload!r}) refused: {line!r} "
                        f"({meaning})"
                    )
                lines.append(line)
                values = parser.match(lines)
                if values is not None:
                    return values
            if timebase.monotonic() >= deadline:
                break  # a device that keeps talking without answering must not hold the port
        if seen:
            raise ProtocolError(
                f"{self.name}: bad or incomplete reply to {parser.command!r} ({payload!r}): "
                f"got {seen[-120:]!r}"
            )
        raise DeviceTimeoutError(
            f"{self.name}: no reply to {parser.command!r} ({payload!r}) within "
            f"{parser.spec.timeout_s or self.profile.serial.timeout_s:.3g} s"
        )
