"""Clocks for the scan: real (monotonic), scaled (faster than real time), virtual (tests).

All times are seconds on the clock's own axis, starting at 0 at construction, so a simulated run
and a real run record the same kind of numbers. Scheduling always uses absolute deadlines
(reference control.md §8.2: relative sleeping ran a 100 Hz loop at ~98 Hz).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "MonotonicClock", "PacedClock", "ScaledClock", "VirtualClock"]


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


class PacedClock(ScaledClock):
    """A scaled clock that never runs ahead of the scan: simulated time pauses while the process
    is starved of CPU, instead of jumping ahead of every reading.

    At ``speed=3600`` a 50 ms stall of a busy machine is three simulated minutes: every reading
    would go stale and every loop to its safe action, an artefact of the acceleration, not of the
    process. This clock stops at the next scan deadline until the scheduler reaches it
    (``now() <= last deadline + period_s``) and, when the scan is late, continues from the
    deadline rather than from where wall time would put it. For simulated plants only; scan
    lateness is then measured against the paced time (a stall does not count).
    """

    def __init__(self, speed: float = 1.0, start_s: float = 0.0, *, period_s: float) -> None:
        super().__init__(speed, start_s)
        if not period_s > 0.0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.period_s = float(period_s)
        self._cap = float(start_s) + self.period_s
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return min(super().now(), self._cap)

    def sleep_until(self, t_s: float) -> None:
        with self._lock:
            free = ScaledClock.now(self)
            if free > t_s:
                # late (stalled): continue from the deadline, time does not jump ahead
                self._t0 += (free - t_s) / self.speed
            self._cap = max(self._cap, t_s + self.period_s)
        if free > t_s:
            # a late scan loop never sleeps: let the I/O workers have the GIL once per scan
            time.sleep(0.0002)
        super().sleep_until(t_s)


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
