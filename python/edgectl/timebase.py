"""The time base of device I/O: wall time, or a lockstep simulation's clock.

Drivers, the line protocols and the emulators read time and wait through this module instead
of :func:`time.monotonic` and :func:`time.sleep`. Normally that *is* the wall clock. An
in-process simulated run (``sim://`` ports on a :class:`~edgectl.runtime.clock.LockstepClock`)
installs its clock with :func:`use`: an emulator's processing delay, a driver's reply time-out
and a retry back-off are then simulated seconds, and an I/O worker waiting for a reply is a
participant of the clock that sleeps until the simulated time the reply is due (its
:class:`~edgectl.runtime.clock.Gate`, bound to its thread with :func:`bind_gate`), so every
transaction happens at its simulated time whatever the host's load.

Only the process that runs the simulated plant installs a clock: a controller talking to an
emulated rig over ptys, or to a bench, keeps wall-clock time-outs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["bind_gate", "clock", "monotonic", "sleep", "sleep_until", "use"]

_clock: Any = None
_local = threading.local()


def use(clock: Any | None) -> None:
    """Install ``clock`` (a LockstepClock) as the process's I/O time base; None: wall time."""
    global _clock
    _clock = clock


def clock() -> Any | None:
    """The installed clock (None: wall time)."""
    return _clock


def bind_gate(gate: Any | None) -> None:
    """Make ``gate`` the current thread's participant: its waits hold the clock."""
    _local.gate = gate


def monotonic() -> float:
    """Seconds on the I/O time base (monotonic)."""
    c = _clock
    return time.monotonic() if c is None else float(c.now())


def sleep_until(t_s: float) -> None:
    """Wait until the time base reads ``t_s``."""
    c = _clock
    if c is None:
        remaining = t_s - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        return
    gate = getattr(_local, "gate", None)
    if gate is not None and gate.clock is c:
        # a wait inside a transaction: the clock stops at t_s until this thread has woken
        # (the reply is taken at exactly its simulated time)
        gate.sleep_until(t_s, wake_on_poke=False)
    else:
        c.sleep_until(t_s)


def sleep(seconds: float) -> None:
    """Wait ``seconds`` on the time base."""
    if _clock is None:
        if seconds > 0:
            time.sleep(seconds)
        return
    sleep_until(monotonic() + max(0.0, seconds))
