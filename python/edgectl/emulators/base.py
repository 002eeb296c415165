"""The emulator core: a byte-stream device model with a reply queue and fault injection.

An :class:`Emulator` receives the bytes a host writes (:meth:`Emulator.receive`), cuts them
into frames, answers each frame from its plant (:class:`~edgectl.plant.PlantIO`) and queues the
reply with the time it becomes readable (device processing delay, injected lateness).
Transports pull replies with :meth:`Emulator.read`: the in-process ``sim://`` serial class, a
pty or a TCP connection (:mod:`edgectl.emulators.server`).

Faults (:class:`Faults`) act on replies, whatever the protocol:

============  ==========================================================================
``garbage``   the reply is replaced by random bytes (one terminator at the end)
``truncate``  only the first half of the reply is sent, no terminator
``late:S``    the reply is sent S seconds late (default 1.0)
``silence``   no reply at all
``disconnect:S``  the line is dead for S seconds (default 1.0): ``sim://`` reads and writes
              raise ``SerialException``; a TCP client is dropped; a pty swallows everything
``error``     the device's own error reply (``?``, ``*ER``, ``ES``, Modbus exception 04, ...)
``stuck``     readings freeze at the value they had when the fault began
``drift:R``   readings drift away from the plant at R units per second (default 1.0)
``spike:N``   spectrometers only: N cosmic-ray spikes on every spectrum (default 3)
``band:A``    spectrometers only: an interferent band of A × the spectrum's maximum on
              every spectrum (default 0.05): out of a calibrated model
============  ==========================================================================

Spec strings (``--fault`` and ``sim://...&fault=``): comma-separated ``kind[:value][*count]``;
``count`` limits the fault to that many replies (for ``stuck``, reads; for ``spike`` and
``band``, spectra), e.g. ``garbage*2,late:0.3*1``. Without ``*count`` the fault lasts until
cleared.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from edgectl import timebase
from edgectl.errors import ConfigError
from edgectl.io.profile import DeviceProfile
from edgectl.plant import PlantIO

__all__ = ["FAULT_KINDS", "Emulator", "EmulatorBus", "Fault", "Faults", "parse_fault_spec"]

FAULT_KINDS = (
    "garbage",
    "truncate",
    "late",
    "silence",
    "disconnect",
    "error",
    "stuck",
    "drift",
    "spike",
    "band",
)
_SPEC = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<value>[0-9.]+))?(?:\*(?P<count>\d+))?$")


@dataclass
class Fault:
    """One active fault; ``remaining`` None means until cleared."""

    kind: str
    value: float | None = None
    remaining: int | None = None


def parse_fault_spec(spec: str) -> list[Fault]:
    """Parse ``"garbage*2,late:0.3"`` into faults; ConfigError names the bad part."""
    faults: list[Fault] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = _SPEC.match(part)
        if m is None or m["kind"] not in FAULT_KINDS:
            raise ConfigError(
                f"fault spec {spec!r}: bad part {part!r} (expected kind[:value][*count], "
                f"kind one of {', '.join(FAULT_KINDS)})"
            )
        faults.append(
            Fault(
                m["kind"],
                float(m["value"]) if m["value"] else None,
                int(m["count"]) if m["count"] else None,
            )
        )
    return faults


@dataclass
class Faults:
    """The faults active on one emulator (thread-safe)."""

    _active: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    disconnected_until: float = 0.0
    power_cycle_pending: bool = False
    drift_rate: float = 0.0
    drift_since: float = 0.0
    #: whether the spectral faults (``spike``, ``band``) apply (set by spectrometer emulators)
    spectral: bool = False

    def drift_offset(self) -> float:
        """Current drift (value units) if a ``drift`` fault is active, else 0."""
        if not self.is_active("drift"):
            return 0.0
        return self.drift_rate * (timebase.monotonic() - self.drift_since)

    def inject(
        self, kind: str, value: float | None = None, count: int | None = None
    ) -> Fault | None:
        """Start a fault (see the module table); ``count`` replies, or until :meth:`clear`.
        Returns the active fault (None for ``disconnect``, which is a time window)."""
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if kind in ("spike", "band") and not self.spectral:
            raise ConfigError(f"fault {kind!r} acts on spectrometers only")
        if kind == "disconnect":
            self.disconnected_until = timebase.monotonic() + (value if value is not None else 1.0)
            self.power_cycle_pending = True
            return None
        if kind == "drift":
            self.drift_rate = value if value is not None else 1.0
            self.drift_since = timebase.monotonic()
        fault = Fault(kind, value, count)
        with self._lock:
            self._active.append(fault)
        return fault

    def apply_spec(self, spec: str) -> list[Fault]:
        """Start every fault of ``spec``; returns those now active (to end them later)."""
        parsed = parse_fault_spec(spec)
        for f in parsed:  # all or nothing
            if f.kind in ("spike", "band") and not self.spectral:
                raise ConfigError(f"fault spec {spec!r}: {f.kind!r} acts on spectrometers only")
        started = [self.inject(f.kind, f.value, f.remaining) for f in parsed]
        return [f for f in started if f is not None]

    def end(self, faults: Collection[Fault]) -> None:
        """End these faults (started by :meth:`apply_spec`); others of the same kind go on."""
        ids = {id(f) for f in faults}
        with self._lock:
            self._active[:] = [f for f in self._active if id(f) not in ids]

    def clear(self) -> None:
        with self._lock:
            self._active.clear()
        self.disconnected_until = 0.0

    def remove(self, kinds: Collection[str]) -> None:
        """End the active faults of ``kinds`` (the others, and a disconnect, go on)."""
        with self._lock:
            self._active[:] = [f for f in self._active if f.kind not in kinds]

    @property
    def is_disconnected(self) -> bool:
        until = self.disconnected_until
        # No disconnect (0: time bases start at 0 or later): no need to read the clock, which
        # on a lockstep run takes its lock; this is asked several times per byte-stream call.
        return until > 0.0 and timebase.monotonic() < until

    def is_active(self, kind: str) -> bool:
        with self._lock:
            return any(f.kind == kind for f in self._active)

    def take(self, kinds: tuple[str, ...]) -> Fault | None:
        """The first active fault among ``kinds``, consuming one of its count."""
        with self._lock:
            for f in self._active:
                if f.kind in kinds:
                    if f.remaining is not None:
                        f.remaining -= 1
                        if f.remaining <= 0:
                            self._active.remove(f)
                    return Fault(f.kind, f.value, None)
        return None

    @property
    def active(self) -> list[str]:
        with self._lock:
            return [f.kind for f in self._active]


class Emulator:
    """Base of every device emulator.

    Subclasses implement :meth:`split` (cut the input into frames) and :meth:`handle` (answer
    one frame with reply bytes, or None for no reply), and may override :meth:`error_reply`
    and :meth:`tick` (unsolicited output).

    Parameters
    ----------
    profile
        The device's firmware profile.
    plant
        Where readings come from and actuator writes go.
    name
        Device name (``sim://<name>``).
    params
        Extra settings (URL query): ``signal_<key>=<plant signal>`` rebinds a plant signal,
        ``address=`` the device address, ``fault=`` a fault spec, ``seed=`` the garbage RNG.
    """

    #: whether the spectral faults (``spike``, ``band``) apply to this device
    SPECTRAL = False

    def __init__(
        self,
        profile: DeviceProfile,
        plant: PlantIO,
        *,
        name: str = "device",
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.profile = profile
        self.plant = plant
        self.name = name
        self.params = dict(params or {})
        self.faults = Faults(spectral=self.SPECTRAL)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rx = b""
        self._out: list[tuple[float, bytes]] = []
        self._stuck: dict[str, float] = {}
        self._rng = random.Random(int(self.params.get("seed", "0")))
        self.frames_handled = 0
        self.power_cycles = 0
        self.signals: dict[str, str] = dict(profile.emulator.get("signals", {}))
        for key, value in self.params.items():
            if key.startswith("signal_"):
                self.signals[key[len("signal_") :]] = value
        if "fault" in self.params:
            self.faults.apply_spec(self.params["fault"])
        self.power_on()

    # -- to override ---------------------------------------------------------------------
    def power_on(self) -> None:
        """Reset to the power-up state (called at creation and after a disconnect)."""

    def split(self, buf: bytes) -> tuple[list[bytes], bytes]:
        raise NotImplementedError

    def handle(self, frame: bytes) -> bytes | None:
        raise NotImplementedError

    def error_reply(self, frame: bytes) -> bytes | None:
        text = self.profile.emulator.get("error_reply")
        if text is None:
            return None
        return str(text).encode(self.profile.serial.encoding)

    def tick(self, now: float) -> None:
        """Called while a host waits for bytes: emit unsolicited output here."""

    def next_tick_s(self) -> float:
        """When :meth:`tick` will next emit something (infinity: never by itself); a host
        waiting on simulated time sleeps until then instead of polling."""
        return float("inf")

    def reply_delay(self, frame: bytes) -> float:
        return 0.0

    def garbage_terminator(self) -> bytes:
        return self.profile.serial.terminator_in.encode(self.profile.serial.encoding)

    # -- plant access --------------------------------------------------------------------
    def read_signal(self, key: str, default: float = 0.0) -> float:
        """Plant reading bound to ``key`` (``emulator.signals``), honouring ``stuck``."""
        signal = self.signals.get(key, key)
        with self._lock:
            if self.faults.is_active("stuck") and signal in self._stuck:
                self.faults.take(("stuck",))
                return self._stuck[signal]
            try:
                value = float(self.plant.read(signal))
            except KeyError:
                value = default
            value += self.faults.drift_offset()
            self._stuck[signal] = value
            return value

    def write_signal(self, key: str, value: float) -> None:
        signal = self.signals.get(key, key)
        with contextlib.suppress(KeyError):
            self.plant.write(signal, float(value))

    # -- byte stream ---------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes written by the host."""
        if self.faults.is_disconnected:
            return
        with self._cond:
            self._rx += data
            frames, self._rx = self.split(self._rx)
            for frame in frames:
                self.frames_handled += 1
                try:
                    reply = self.handle(frame)
                except (ValueError, KeyError, IndexError, ArithmeticError):
                    reply = self.error_reply(frame)
                if reply is not None:
                    self._queue_reply(reply, self.reply_delay(frame), frame)

    def emit(self, data: bytes, delay_s: float = 0.0) -> None:
        """Queue unsolicited bytes (no faults applied)."""
        with self._cond:
            self._out.append((timebase.monotonic() + delay_s, data))
            self._cond.notify_all()

    def _queue_reply(self, reply: bytes, delay_s: float, frame: bytes) -> None:
        fault = self.faults.take(("garbage", "truncate", "late", "silence", "error"))
        if fault is not None:
            if fault.kind == "silence":
                return
            if fault.kind == "garbage":
                n = max(4, len(reply))
                junk = bytes(self._rng.choice(b"\x00\x7f\xff#%&Z~qwe1239.-") for _ in range(n))
                reply = junk + self.garbage_terminator()
            elif fault.kind == "truncate":
                reply = reply[: max(1, len(reply) // 2)]
                term = self.garbage_terminator()
                if term:
                    reply = reply.replace(term, b"")
            elif fault.kind == "late":
                delay_s += fault.value if fault.value is not None else 1.0
            elif fault.kind == "error":
                err = self.error_reply(frame)
                if err is None:
                    return
                reply = err
        self._out.append((timebase.monotonic() + delay_s, reply))
        self._cond.notify_all()

    def _ready(self, now: float) -> int:
        n = 0
        for t, _ in self._out:
            if t > now:
                break
            n += 1
        return n

    def in_waiting(self) -> int:
        now = timebase.monotonic()
        with self._cond:
            self.tick(now)
            self._out.sort(key=lambda item: item[0])
            return sum(len(d) for _, d in self._out[: self._ready(now)])

    def read(self, max_bytes: int, timeout_s: float | None) -> bytes:
        """Up to ``max_bytes`` readable bytes, waiting at most ``timeout_s`` for the first."""
        deadline = None if timeout_s is None else timebase.monotonic() + timeout_s
        while True:
            with self._cond:
                now = timebase.monotonic()
                self.tick(now)
                self._out.sort(key=lambda item: item[0])
                n = self._ready(now)
                if n:
                    data = b"".join(d for _, d in self._out[:n])
                    head, tail = data[:max_bytes], data[max_bytes:]
                    del self._out[:n]
                    if tail:
                        self._out.insert(0, (now, tail))
                    return head
                if deadline is not None and now >= deadline:
                    return b""
                if timebase.clock() is None:
                    wait = 0.02 if deadline is None else min(0.02, deadline - now)
                    if self._out:
                        wait = min(wait, max(0.0, self._out[0][0] - now))
                    self._cond.wait(max(wait, 0.0005))
                    continue
                # simulated time: nothing happens here before the next reply, the next
                # unsolicited output or the time-out, whichever is first
                wake = min(
                    math.inf if deadline is None else deadline,
                    self._out[0][0] if self._out else math.inf,
                    self.next_tick_s(),
                )
            # sleep on the clock until then (outside the lock), as a participant of it when
            # the caller's thread is one; a wait without any end is re-checked each second
            timebase.sleep_until(wake if math.isfinite(wake) else now + 1.0)

    def reset_output(self) -> None:
        """Drop replies already readable (the host flushed its input buffer)."""
        now = timebase.monotonic()
        with self._cond:
            self._out[:] = [(t, d) for t, d in self._out if t > now]

    def reset_input(self) -> None:
        with self._cond:
            self._rx = b""

    def disconnect_over(self) -> None:
        """Called when a disconnect ends: the device comes back as after power-up."""
        with self._cond:
            self._out.clear()
            self._rx = b""
            self.power_cycles += 1
            self.power_on()

    def line_is_up(self) -> bool:
        """False while disconnected; the first call after a disconnect power-cycles the device."""
        if self.faults.is_disconnected:
            return False
        if self.faults.power_cycle_pending:
            self.faults.power_cycle_pending = False
            self.disconnect_over()
        return True


class EmulatorBus:
    """Several emulators on one multi-drop line (RS-485): every member hears every frame and
    answers only its own address (Alicat unit, Modbus slave, ProPar node); the replies share
    the line. ``faults`` are line faults (``disconnect``); each member keeps its own device
    faults (``members[address].faults``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, Emulator] = {}
        self.faults = Faults()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._out: list[tuple[float, bytes]] = []

    def add(self, address: str, emulator: Emulator) -> None:
        """Put ``emulator`` on the line (its address must be unique on the bus)."""
        if address in self.members:
            raise ConfigError(f"sim://{self.name}: address {address!r} already on the bus")
        with self._cond:
            emulator._lock = self._lock
            emulator._cond = self._cond
            emulator._out = self._out
            self.members[address] = emulator

    def _any(self) -> Emulator:
        if not self.members:
            raise ConfigError(f"sim://{self.name}: empty bus")
        return next(iter(self.members.values()))

    def receive(self, data: bytes) -> None:
        if self.faults.is_disconnected:
            return
        with self._cond:
            for member in self.members.values():
                member.receive(data)

    def read(self, max_bytes: int, timeout_s: float | None) -> bytes:
        return self._any().read(max_bytes, timeout_s)

    def in_waiting(self) -> int:
        return self._any().in_waiting()

    def reset_output(self) -> None:
        self._any().reset_output()

    def reset_input(self) -> None:
        for member in self.members.values():
            member.reset_input()

    def disconnect_over(self) -> None:
        for member in self.members.values():
            member.disconnect_over()

    def line_is_up(self) -> bool:
        if self.faults.is_disconnected:
            return False
        if self.faults.power_cycle_pending:
            self.faults.power_cycle_pending = False
            self.disconnect_over()
        return all(member.line_is_up() for member in self.members.values())
