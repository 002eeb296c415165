"""systemd readiness and watchdog notifications, fed by the scan.

The protocol is ``sd_notify(3)``: newline-separated ``KEY=VALUE`` assignments sent as one
datagram to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` names a socket
in the abstract namespace). systemd sets ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) when the unit
has ``WatchdogSec=``; the service must then send ``WATCHDOG=1`` more often than that, or it is
killed with SIGABRT and, with ``Restart=on-failure``, started again (``systemd.service(5)``).

:class:`ScanWatchdog` pets the watchdog from a thread, but only while the scan makes progress:
it reads a counter of completed scans and stops sending ``WATCHDOG=1`` once the counter has not
moved for ``stall_s``. A scan stuck in Python (a hung driver call), in Rust with the GIL held, or
a dead scheduler all stop the petting, so systemd restarts the controller and the run's restart
policy (``[run] on_restart``) takes over.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

__all__ = ["Notifier", "ScanWatchdog", "scan_watchdog", "watchdog_interval_s"]


class Notifier:
    """Client of the ``$NOTIFY_SOCKET`` datagram socket (``sd_notify``).

    Parameters
    ----------
    address
        The socket path as systemd gives it: a file path, or ``@name`` for the abstract
        namespace. Empty: every call is a no-op (not started by systemd).
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET", ""))

    @property
    def is_enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines (``notify(READY=1, STATUS="scanning")``).

        Returns False when there is no socket or the send failed: a notification that cannot
        be delivered must never stop the controller (systemd then acts on the missing ping).
        """
        if self._sock is None:
            return False
        payload = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._sock.sendto(payload, target)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd asked for (``$WATCHDOG_USEC``), in seconds, or None.

    ``$WATCHDOG_PID``, when set, must be this process (a child does not inherit the duty).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


class ScanWatchdog:
    """Pets the systemd watchdog while ``progress()`` keeps increasing.

    Parameters
    ----------
    notifier
        Where ``READY=1`` and ``WATCHDOG=1`` go.
    progress
        Returns the number of completed scans; read from the feeder thread.
    timeout_s
        The watchdog timeout (``WatchdogSec``); pets are sent every ``timeout_s / 4``. None:
        no watchdog, only ``READY=1``.
    stall_s
        Progress older than this stops the petting (default ``timeout_s / 2``): systemd then
        kills the process within ``timeout_s`` of the last pet.
    clock
        Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        notifier: Notifier,
        progress: Callable[[], int],
        timeout_s: float | None,
        *,
        stall_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.progress = progress
        self.timeout_s = timeout_s
        self.stall_s = stall_s if stall_s is not None else (timeout_s or 0.0) / 2.0
        self.clock = clock
        self.pets = 0
        self.is_ready = False
        self._last_count = -1
        self._last_progress_s = clock()
        self._last_pet_s = -float("inf")
        self.pet_every_s = timeout_s / 4.0 if timeout_s else float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One feeder step: note progress, send READY=1 after the first scan, pet if not stalled.

        Returns whether ``WATCHDOG=1`` was sent (at most once per ``pet_every_s``).
        """
        now = self.clock()
        count = self.progress()
        if count != self._last_count:
            self._last_count = count
            self._last_progress_s = now
        if not self.is_ready and count > 0:
            self.is_ready = self.notifier.notify(READY=1, STATUS=f"scanning ({count} scans)")
        if self.timeout_s is None or count <= 0 or now - self._last_progress_s > self.stall_s:
            return False
        if now - self._last_pet_s < self.pet_every_s:
            return False
        sent = self.notifier.notify(WATCHDOG=1)
        if sent:
            self.pets += 1
            self._last_pet_s = now
        return sent

    def _loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.check()

    def start(self) -> None:
        """Start the feeder thread (a daemon: it never keeps a stopping process alive)."""
        if self._thread is not None or not self.notifier.is_enabled:
            return
        # wake often enough to report readiness soon after the first scan
        every_s = min(0.5, self.pet_every_s)
        self._thread = threading.Thread(
            target=self._loop, args=(every_s,), name="edgectl-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop petting and tell systemd the service is stopping."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.notifier.notify(STOPPING=1, STATUS="stopping")


@contextmanager
def scan_watchdog(
    progress: Callable[[], int], environ: Mapping[str, str] | None = None
) -> Iterator[ScanWatchdog]:
    """Feed the systemd watchdog from ``progress()`` while the block runs.

    Outside systemd (no ``$NOTIFY_SOCKET``) it costs nothing: no thread, no socket.
    """
    notifier = Notifier.from_env(environ)
    dog = ScanWatchdog(notifier, progress, watchdog_interval_s(environ))
    dog.start()
    try:
        yield dog
    finally:
        if notifier.is_enabled:
            dog.stop()
        notifier.close()
