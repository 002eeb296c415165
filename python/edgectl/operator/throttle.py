"""Password guessing slowed down: after ``max_failures`` wrong passwords in a row for one user
name, that name is locked for ``lockout_s`` seconds, doubling at each further lock-out up to
``max_lockout_s``; a locked name is refused without its password being checked, so guesses made
while it is locked count for nothing. A right password (outside a lock-out) clears the count.

This is the account lock-out with exponential back-off of OWASP's Authentication Cheat Sheet
("Protect against automated attacks") and NIST SP 800-63B §5.2.2 (rate limiting: at most 100
consecutive failed attempts on one account). It counts per user name, not per client, so it
covers every face alike (the dashboard, OPC UA, SiLA 2, the REPL's ``login``, e-signatures);
the time is the wall clock's monotonic seconds, never the run's simulated time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginThrottle"]


@dataclass(slots=True)
class _Record:
    failures: int = 0
    lockouts: int = 0
    locked_until_s: float = 0.0


class LoginThrottle:
    """Wrong-password counts and lock-outs per user name (thread-safe).

    Parameters
    ----------
    max_failures
        Wrong passwords in a row that lock the name.
    lockout_s
        The first lock-out (seconds); each further one doubles, up to ``max_lockout_s``.
    clock
        Monotonic seconds (tests pass their own).
    """

    #: names remembered at most (the oldest unlocked are forgotten first): a flood of made-up
    #: names cannot grow the table without bound
    MAX_NAMES = 10_000

    def __init__(
        self,
        max_failures: int = 5,
        lockout_s: float = 60.0,
        max_lockout_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or not 0 < lockout_s <= max_lockout_s:
            raise ValueError(
                "login throttle: need max_failures >= 1 and 0 < lockout_s <= max_lockout_s, "
                f"got {max_failures}, {lockout_s}, {max_lockout_s}"
            )
        self.max_failures = int(max_failures)
        self.lockout_s = float(lockout_s)
        self.max_lockout_s = float(max_lockout_s)
        self.clock = clock
        self._lock = threading.Lock()
        self._by_name: dict[str, _Record] = {}

    def locked_for_s(self, name: str) -> float:
        """Seconds ``name`` stays locked (0.0: it may try)."""
        with self._lock:
            rec = self._by_name.get(name)
            if rec is None:
                return 0.0
            return max(0.0, rec.locked_until_s - self.clock())

    def failed(self, name: str) -> float:
        """Count a wrong password of ``name``; returns the lock-out it starts (s) or 0.0."""
        with self._lock:
            now = self.clock()
            rec = self._by_name.get(name)
            if rec is None:
                self._forget_some(now)
                rec = self._by_name[name] = _Record()
            rec.failures += 1
            if rec.failures < self.max_failures:
                return 0.0
            span = min(self.lockout_s * 2.0**rec.lockouts, self.max_lockout_s)
            rec.lockouts += 1
            rec.failures = 0
            rec.locked_until_s = now + span
            return span

    def succeeded(self, name: str) -> None:
        """A right password of ``name``: its count and back-off start again."""
        with self._lock:
            self._by_name.pop(name, None)

    def _forget_some(self, now: float) -> None:
        if len(self._by_name) < self.MAX_NAMES:
            return
        for name in [n for n, r in self._by_name.items() if r.locked_until_s <= now]:
            del self._by_name[name]
            if len(self._by_name) < self.MAX_NAMES // 2:
                return
        while len(self._by_name) >= self.MAX_NAMES:  # all locked: the oldest goes
            del self._by_name[next(iter(self._by_name))]
