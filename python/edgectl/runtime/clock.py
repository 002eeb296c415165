"""Clocks for the scan: real (monotonic), scaled (faster than real time), lockstep (accelerated
simulation that waits for whoever is late), virtual (tests).

All times are seconds on the clock's own axis, starting at 0 at construction, so a simulated run
and a real run record the same kind of numbers. Scheduling always uses absolute deadlines
(reference control.md §8.2: relative sleeping ran a 100 Hz loop at ~98 Hz).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Protocol, runtime_checkable

__all__ = ["Clock", "Gate", "LockstepClock", "MonotonicClock", "ScaledClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the scheduler needs from a clock."""

    speed: float

    def now(self) -> float:
        """Seconds since the clock started, on the process (possibly simulated) time axis."""
        ...

    def sleep_until(self, t_s: float) -> None:
        """Block until ``now() >= t_s`` (returns at once if that time has passed)."""
        ...


class ScaledClock:
    """Monotonic time multiplied by ``speed``: ``speed=600`` runs ten simulated minutes a second.

    Parameters
    ----------
    speed
        Simulated seconds per wall second, > 0.
    start_s
        Clock reading at construction (to resume a run at its recorded time).
    """

    def __init__(self, speed: float = 1.0, start_s: float = 0.0) -> None:
        if not speed > 0.0 or speed != speed or speed == float("inf"):
            raise ValueError(f"speed must be a finite number > 0, got {speed}")
        self.speed = float(speed)
        self._start_s = float(start_s)
        self._t0 = time.monotonic()
        self._wake = threading.Event()

    def now(self) -> float:
        return self._start_s + (time.monotonic() - self._t0) * self.speed

    def wall_s(self, t_s: float) -> float:
        """The monotonic wall time at which this clock reads ``t_s``."""
        return self._t0 + (t_s - self._start_s) / self.speed

    def sleep_until(self, t_s: float) -> None:
        target = self.wall_s(t_s)
        while True:
            remaining = target - time.monotonic()
            if remaining <= 0.0:
                return
            # Sleep in one call; re-check because sleep may return early on signals.
            time.sleep(remaining)


class Gate:
    """One participant of a :class:`LockstepClock`: the clock never passes its hold.

    A participant (the scan, an I/O worker, the link to an out-of-process rig) holds the clock
    at the simulated time by which it must have done its next piece of work; while it is
    late, simulated time waits for it instead of running ahead of its readings or replies.
    Made by :meth:`LockstepClock.gate`; thread-safe.

    ``priority`` orders participants at one instant: the scan (0) sleeping until ``T`` waits
    for every other participant holding before ``T`` (work due before the scan is done first),
    and another participant sleeping until ``t`` waits while the scan holds at or before ``t``
    (at a tie the scan goes first: a poll due at a scan's time runs after that scan).
    """

    def __init__(self, clock: LockstepClock, name: str, priority: int) -> None:
        self.clock = clock
        self.name = name
        self.priority = priority
        self.poked = False  # work was handed in (see poke): an idle sleeper returns at once
        self._cv = threading.Condition(clock._lock)  # this participant's wake-ups
        self._target: float | None = None  # what it sleeps until, while it sleeps
        self._set_wall = 0.0  # monotonic time the hold last changed
        self._reached_wall: float | None = None  # when the clock reached the current hold

    def hold(self, t_s: float | None, *, wall_limit_s: float | None = None) -> None:
        """The clock may not pass ``t_s`` (None: no hold) until the next call, or for at most
        ``wall_limit_s`` wall seconds from now (then the hold lapses by itself: a transaction
        with a device that does not answer)."""
        self.clock._set_hold(self, t_s, wall_limit_s)

    def poke(self, hold_s: float) -> None:
        """Work was handed to this participant (from any thread): wake it if it sleeps idle,
        and hold the clock at ``hold_s`` at the latest until it has done the work."""
        self.clock._poke(self, hold_s)

    def take_poke(self) -> bool:
        """Clear the poke flag (before taking the work handed in); True if it was set."""
        with self.clock._cv:
            was, self.poked = self.poked, False
            return was

    def sleep_until(
        self, t_s: float, *, hold_s: float | None = None, wake_on_poke: bool = True
    ) -> float:
        """Hold the clock at ``hold_s`` (default ``t_s``) and block until it reads ``t_s`` and
        the participants that go first are done (see the class), or until poked (unless
        ``wake_on_poke`` is false: a wait inside a transaction). Returns how late the wake-up
        was in wall seconds (0 when poked)."""
        hold = t_s if hold_s is None else max(t_s, hold_s)
        return self.clock._sleep(self, t_s, hold, wake_on_poke)

    def may_run(self, t_s: float) -> bool:
        """True when work due at ``t_s`` may run now: the clock has reached it and no
        participant that goes first (see the class) still holds at or before it."""
        with self.clock._cv:
            return self.clock._advance(time.monotonic()) >= t_s and self.clock._may_wake(self, t_s)

    def close(self) -> None:
        """Leave the clock (the participant holds nothing any more)."""
        self.clock._set_hold(self, None)


class LockstepClock:
    """A scaled clock that never passes the hold of any of its participants (:class:`Gate`).

    The clock runs ``speed`` simulated seconds per wall second while every participant keeps
    up. When one is late (the scan thread was not scheduled in time, an I/O worker has not yet
    done a poll that is due, an out-of-process rig has not yet caught up with the last scan),
    simulated time stops at that participant's hold and continues from there once it moves on,
    instead of jumping ahead: on a loaded machine the run is slower, and its verdict is the
    same. The wall time absorbed so is counted per participant (:meth:`timing`), and the scan
    lateness the scheduler reports is measured against the wall deadlines it really had.

    With :mod:`edgectl.timebase` installed on it (in-process ``sim://`` runs), the emulators'
    processing delays and the drivers' time-outs are simulated seconds too, and a run is
    deterministic for a seed: every poll, write and reply happens at its simulated time.

    Parameters
    ----------
    speed
        Simulated seconds per wall second when nothing is late, > 0.
    start_s
        Clock reading at construction (a resumed run continues on its saved time axis).
    hold_until_start
        Time waits at ``start_s`` until :meth:`start` (the scheduler's first scan).
    """

    def __init__(
        self, speed: float = 1.0, start_s: float = 0.0, *, hold_until_start: bool = False
    ) -> None:
        if not speed > 0.0 or speed != speed or speed == float("inf"):
            raise ValueError(f"speed must be a finite number > 0, got {speed}")
        self.speed = float(speed)
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)  # wake-ups of non-participants
        self._start_s = float(start_s)
        self._t0 = time.monotonic()
        self._t = float(start_s)
        self._holds: dict[Gate, float] = {}
        self._expires: dict[Gate, float] = {}  # monotonic time a hold lapses (wall_limit_s)
        self._unblocked_wall = -math.inf  # last time a participant stopped blocking the scan
        self.held_wall_s = 0.0
        self.held_by: dict[str, float] = {}
        self._origin = (self._t0, float(start_s))
        # Until the scan starts (:meth:`start`), time waits at ``start_s``: the wall time the
        # run spends setting up (opening ports, the historian, workers' first polls) does not
        # move the simulated schedule, so the scans of a seed fall at the same times every run.
        self._start_gate: Gate | None = None
        if hold_until_start:
            self._start_gate = Gate(self, "start", 1)
            self._holds[self._start_gate] = float(start_s)

    # -- reading ---------------------------------------------------------------------------
    def now(self) -> float:
        with self._cv:
            return self._advance(time.monotonic())

    def wall_s(self, t_s: float) -> float:
        """The monotonic wall time at which the clock reads ``t_s`` if nothing is late."""
        with self._cv:
            return self._t0 + (t_s - self._start_s) / self.speed

    def _advance(self, mono: float) -> float:
        if self._expires:
            lapsed = sorted((e, g.name, g) for g, e in self._expires.items() if e <= mono)
            for at, _name, gate in lapsed:
                # time passes under the lapsing hold up to its limit, then without it
                del self._expires[gate]
                self._advance_to(at)
                self._holds.pop(gate, None)
                gate._set_wall = at
                gate._reached_wall = None
            if lapsed:
                self._notify()
        return self._advance_to(mono)

    def _advance_to(self, mono: float) -> float:
        free = self._start_s + (mono - self._t0) * self.speed
        limit = math.inf
        binding: Gate | None = None
        for gate, hold in self._holds.items():
            # at a tie the scan goes first (see Gate): the wait is charged to the scan
            if hold < limit or (hold == limit and binding is not None and not gate.priority):
                limit, binding = hold, gate
        floor = max(limit, self._t)
        if free > floor and binding is not None:
            # every hold at or below where time stops is reached: when, on the old schedule
            for gate, hold in self._holds.items():
                if hold <= floor and gate._reached_wall is None:
                    at = self._t0 + (max(hold, self._t) - self._start_s) / self.speed
                    gate._reached_wall = max(gate._set_wall, at)
            # held: the excess wall time is absorbed, time continues from the hold, not ahead
            excess = (free - floor) / self.speed
            self._t0 += excess
            self.held_wall_s += excess
            self.held_by[binding.name] = self.held_by.get(binding.name, 0.0) + excess
            free = floor
        if free > self._t:
            self._t = free
        return self._t

    def timing(self) -> dict[str, Any]:
        """Wall seconds the clock was held (in all and per participant), and the speed
        achieved: simulated seconds per wall second since the clock started."""
        with self._cv:
            mono = time.monotonic()
            now = self._advance(mono)
            wall = mono - self._origin[0]
            return {
                "speed": self.speed,
                "achieved_speed": (now - self._origin[1]) / wall if wall > 0 else math.nan,
                "wall_s": wall,
                "held_wall_s": self.held_wall_s,
                "held_by": dict(self.held_by),
            }

    def start(self) -> None:
        """Release the hold at the start time (the scheduler calls this once its scan holds
        the clock); wall time waited before is not counted as held time. Idempotent."""
        with self._cv:
            gate, self._start_gate = self._start_gate, None
            if gate is None:
                return
            mono = time.monotonic()
            self._advance(mono)
            # the set-up time moves the origin of the achieved speed; it is not held time
            waited = self.held_by.pop(gate.name, 0.0)
            self.held_wall_s -= waited
            self._origin = (self._origin[0] + waited, self._origin[1])
            self._put(gate, None, mono)

    # -- participants ----------------------------------------------------------------------
    def gate(self, name: str, priority: int = 1) -> Gate:
        """A new participant (it holds nothing until it says so); see :class:`Gate`."""
        return Gate(self, name, priority)

    def _may_wake(self, gate: Gate, t_s: float) -> bool:
        # the scan at T waits for other work held before T; other work at t waits for a scan
        # held at or before t: at a tie the scan goes first, and neither waits for the other
        # in a circle
        scan = gate.priority == 0
        for g, hold in self._holds.items():
            if g is gate or (g.priority == 0) == scan:
                continue
            if hold < t_s or (hold == t_s and not scan):
                return False
        return True

    def _wait_s(self, gate: Gate | None, t_s: float, now: float) -> float:
        # While another participant holds the clock short of t_s (or may go first), nothing
        # changes until a hold moves, which notifies: wait long (a safety re-check), instead
        # of spinning on wall-clock time-outs that cannot advance the clock.
        held = min((h for g, h in self._holds.items() if g is not gate), default=math.inf)
        wait = 0.5 if held < t_s or now >= t_s else min(max((t_s - now) / self.speed, 1e-4), 0.05)
        if self._expires:  # re-check when a hold lapses
            lapse = min(self._expires.values()) - time.monotonic()
            wait = min(wait, max(lapse, 1e-4))
        return wait

    def _put(self, gate: Gate, t_s: float | None, mono: float) -> None:
        old = self._holds.get(gate)
        if gate.priority and old is not None:
            for g, hold in self._holds.items():
                if g.priority == 0 and old < hold and (t_s is None or t_s >= hold):
                    self._unblocked_wall = mono
        self._expires.pop(gate, None)
        if t_s is None:
            self._holds.pop(gate, None)
        else:
            self._holds[gate] = t_s
        if t_s != old:
            gate._set_wall = mono
            gate._reached_wall = None
        self._notify()

    def _notify(self) -> None:
        # Wake only the sleepers that a moved hold may let go (each wakes one thread, not
        # every participant: at hundreds of holds per simulated second that is the cost).
        self._cv.notify_all()
        for g, _hold in self._holds.items():
            t = g._target
            if t is None:
                continue
            if g.poked:
                g._cv.notify()
                continue
            others = min((h for o, h in self._holds.items() if o is not g), default=math.inf)
            if others >= t and self._may_wake(g, t):
                g._cv.notify()

    def _set_hold(self, gate: Gate, t_s: float | None, wall_limit_s: float | None = None) -> None:
        with self._cv:
            mono = time.monotonic()
            self._advance(mono)  # time up to now passes under the old holds
            self._put(gate, None if t_s is None else float(t_s), mono)
            if t_s is not None and wall_limit_s is not None:
                self._expires[gate] = mono + max(0.0, float(wall_limit_s))

    def _poke(self, gate: Gate, hold_s: float) -> None:
        with self._cv:
            mono = time.monotonic()
            self._advance(mono)
            gate.poked = True
            old = self._holds.get(gate, math.inf)
            lapse = self._expires.get(gate)
            self._put(gate, min(old, float(hold_s)), mono)
            if lapse is not None and float(hold_s) >= old:
                self._expires[gate] = lapse  # the hold in force is unchanged, so is its limit

    def _sleep(self, gate: Gate, t_s: float, hold_s: float, wake_on_poke: bool) -> float:
        with self._cv:
            mono = time.monotonic()
            self._advance(mono)
            if wake_on_poke and gate.poked:
                return 0.0
            gate._target = t_s
            try:
                self._put(gate, hold_s, mono)
                while True:
                    mono = time.monotonic()
                    now = self._advance(mono)
                    if now >= t_s and self._may_wake(gate, t_s):
                        reached = gate._reached_wall
                        if reached is None:
                            return 0.0
                        if gate.priority == 0 and self._unblocked_wall >= gate._set_wall:
                            reached = max(reached, self._unblocked_wall)
                        return max(0.0, mono - reached)
                    if wake_on_poke and gate.poked:
                        return 0.0
                    gate._cv.wait(self._wait_s(gate, t_s, now))
            finally:
                gate._target = None

    def sleep_until(self, t_s: float) -> None:
        """Block until ``now() >= t_s`` without holding the clock (not a participant)."""
        with self._cv:
            while True:
                now = self._advance(time.monotonic())
                if now >= t_s:
                    return
                self._cv.wait(self._wait_s(None, t_s, now))


class MonotonicClock(ScaledClock):
    """Real time: ``time.monotonic()`` since construction."""

    def __init__(self, start_s: float = 0.0) -> None:
        super().__init__(1.0, start_s)


class VirtualClock:
    """A clock that only moves when slept on: ``sleep_until`` jumps straight to the deadline.

    Deterministic and instant, for tests and for as-fast-as-possible simulation.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self.speed = float("inf")
        self._t = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, dt_s: float) -> None:
        """Move the clock forward by ``dt_s`` (simulates work taking time)."""
        if not dt_s >= 0.0:
            raise ValueError(f"dt_s must be >= 0, got {dt_s}")
        with self._lock:
            self._t += dt_s

    def sleep_until(self, t_s: float) -> None:
        with self._lock:
            self._t = max(self._t, t_s)
