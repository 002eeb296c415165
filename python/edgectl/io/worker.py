"""One I/O worker per port: polls the port's devices, keeps the latest readings, runs writes.

The control scan never talks to a device: it reads :meth:`IoWorker.latest` (value, timestamp,
quality) and queues writes with :meth:`IoWorker.submit`. A slow or dead device therefore delays
only its own port's worker. The worker never lets an exception out: a failed poll marks that
reading ``BAD`` (keeping its last value and the error text) and is retried at the next period;
a reading older than ``max_age_s`` reads as ``STALE``.
"""

from __future__ import annotations

import enum
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgectl import timebase

if TYPE_CHECKING:
    from edgectl.runtime.clock import Gate

__all__ = ["IoWorker", "Quality", "Reading"]


class Quality(enum.Enum):
    """Quality of a tag, as in a PLC process image."""

    GOOD = "good"
    BAD = "bad"
    STALE = "stale"


@dataclass(frozen=True)
class Reading:
    """The latest value of one polled tag.

    ``timestamp_s`` is the worker clock (monotonic) of the last *successful* poll; ``value`` is
    that poll's value (NaN before the first success); ``error`` the last failure, if any.
    """

    tag: str
    value: float
    timestamp_s: float
    quality: Quality
    error: str | None = None
    failures: int = 0


@dataclass
class _Poll:
    tag: str
    fn: Callable[[], float]
    period_s: float
    next_due: float = 0.0


class IoWorker:
    """Background thread serving the devices of one port.

    Parameters
    ----------
    name
        Port or worker name (thread name, messages).
    max_age_s
        A reading older than this is ``STALE`` (default: three times its poll period). On a
        multi-drop line a dead device costs every poll of the cycle its retries
        (``(retries + 1) * timeout_s``): choose ``max_age_s`` above period plus that.
    clock
        Monotonic clock (injectable for tests), or the controller's scaled clock.
    speed
        Clock seconds per wall second of ``clock`` (a simulation running 600× passes 600), so
        the worker sleeps the right wall time until its next poll is due.
    gate
        Participant of a :class:`~edgectl.runtime.clock.LockstepClock` (accelerated simulated
        runs): the clock then waits for this worker to start a poll that is due, or a write
        handed in, at most ``slack_s`` clock seconds late, so on a loaded machine readings
        and writes are not late on the simulated time axis. A transaction in flight with a
        device out of process (a pty rig) holds the clock ``slack_s`` after its start, for at
        most ``transaction_wall_s`` wall seconds: a reply the loaded host delivers late is
        still taken within ``slack_s`` of simulated time, and a silent device times out as
        it would (the hold lapses). With ``hold_transactions`` (in-process emulators,
        ``sim://``, whose transactions take microseconds of wall time) the clock is held
        through every transaction: every poll and write happens at exactly its time on the
        simulated axis (deterministic for a seed).
    transaction_wall_s
        Wall seconds a transaction in flight may hold the clock (above): more than a live
        device's reply takes on a loaded machine, at most its time-out.

    Examples
    --------
    >>> from edgectl.devices import AlicatMfc
    >>> mfc = AlicatMfc("sim://mfc-doc?profile=alicat/mc-series")
    >>> with IoWorker("doc", clock=time.monotonic) as worker:
    ...     worker.add_poll("air_flow_sccm", mfc.read_flow_sccm, period_s=0.05)
    ...     worker.submit(mfc.set_flow_sccm, 500.0).result(timeout=2)
    ...     worker.wait_for("air_flow_sccm", timeout_s=2).quality
    500.0
    <Quality.GOOD: 'good'>
    >>> mfc.close()
    """

    def __init__(
        self,
        name: str,
        *,
        max_age_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        speed: float = 1.0,
        gate: Gate | None = None,
        slack_s: float = 1.0,
        hold_transactions: bool = False,
        transaction_wall_s: float = 2.0,
    ) -> None:
        self.name = name
        self._gate = gate
        self._hold = hold_transactions
        self._slack_s = 0.0 if hold_transactions else float(slack_s)
        self._tx_wall_s = float(transaction_wall_s)
        self.max_age_s = max_age_s
        self._clock = clock
        self._speed = speed if math.isfinite(speed) and speed > 0 else 1.0
        self._polls: dict[str, _Poll] = {}
        self._readings: dict[str, Reading] = {}
        self._lock = threading.Lock()
        self._writes: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]] = (
            queue.Queue()
        )
        self._latest: dict[str, tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.cycles = 0

    # -- configuration -------------------------------------------------------------------
    def add_poll(self, tag: str, fn: Callable[[], float], *, period_s: float = 1.0) -> None:
        """Poll ``fn`` every ``period_s`` and keep its value as ``tag``."""
        with self._lock:
            self._polls[tag] = _Poll(tag, fn, period_s)
            self._readings[tag] = Reading(
                tag, float("nan"), float("-inf"), Quality.BAD, "not polled yet"
            )
        self._wake.set()

    # -- scan side (never blocks on I/O, never raises device errors) ---------------------
    def latest(self, tag: str) -> Reading:
        """The latest reading of ``tag``, its quality re-judged for age now."""
        with self._lock:
            r = self._readings[tag]
            poll = self._polls[tag]
        max_age = self.max_age_s if self.max_age_s is not None else 3.0 * poll.period_s
        if r.quality is Quality.GOOD and self._clock() - r.timestamp_s > max_age:
            return Reading(r.tag, r.value, r.timestamp_s, Quality.STALE, r.error, r.failures)
        return r

    def readings(self) -> dict[str, Reading]:
        with self._lock:
            tags = list(self._readings)
        return {t: self.latest(t) for t in tags}

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue a write (``fn(*args)``) for the worker thread; the Future holds its outcome."""
        fut: Future[Any] = Future()
        self._writes.put((fn, args, fut))
        self._handed_in()
        return fut

    def submit_latest(self, key: str, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue a write that replaces any still-pending write with the same ``key``.

        For setpoints written every scan to a slow device: only the newest value goes out;
        the superseded write's Future is cancelled.
        """
        fut: Future[Any] = Future()
        with self._lock:
            old = self._latest.pop(key, None)
            self._latest[key] = (fn, args, fut)
        if old is not None:
            old[2].cancel()
        self._handed_in()
        return fut

    def _handed_in(self) -> None:
        gate = self._gate
        if gate is not None:
            gate.poke(self._hold_for(self._clock()))
        self._wake.set()

    def _hold_for(self, t_s: float) -> float:
        """Where the clock waits for work due at ``t_s``: exactly there (in-process
        emulators: every poll and write starts at its simulated time), or ``slack_s`` later."""
        return t_s if self._hold else t_s + self._slack_s

    def wait_for(
        self, tag: str, *, quality: Quality = Quality.GOOD, timeout_s: float = 5.0
    ) -> Reading:
        """Block until ``tag`` has ``quality`` (for tests and start-up, not for the scan)."""
        deadline = time.monotonic() + timeout_s
        while True:
            r = self.latest(tag)
            if r.quality is quality or time.monotonic() >= deadline:
                return r
            time.sleep(0.005)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> IoWorker:
        if self._thread is None:
            self._stop.clear()
            gate = self._gate
            if gate is not None and self._hold:
                # from the start the clock waits for the first polls, not for this thread to
                # be scheduled: a poll due before the clock's start (a resumed run) is done
                # before the first scan, which then reads it (bumpless); at a tie (a fresh
                # run's time 0) the scan goes first
                with self._lock:
                    first = min((p.next_due for p in self._polls.values()), default=math.inf)
                if math.isfinite(first):
                    gate.hold(first)
            self._thread = threading.Thread(target=self._run, name=f"io-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._gate is not None:
            self._gate.poke(math.inf)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
        with self._lock:
            pending = [item[2] for item in self._latest.values()]
            self._latest.clear()
        for fut in pending:
            fut.cancel()
        while True:
            try:
                _, _, fut = self._writes.get_nowait()
            except queue.Empty:
                break
            fut.cancel()

    def __enter__(self) -> IoWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            timebase.bind_gate(None)
            if self._gate is not None:
                self._gate.close()  # a stopped worker holds nothing

    def _loop(self) -> None:
        while not self._stop.is_set():
            gate = self._gate
            # waits inside this thread's transactions hold the clock (in-process emulators)
            timebase.bind_gate(gate if self._hold else None)
            if gate is not None:
                gate.take_poke()
                if not self._hold:
                    gate.hold(None)  # the work is taken: transactions do not hold the clock
            self._drain_writes()
            now = self._clock()
            with self._lock:
                due = [p for p in self._polls.values() if p.next_due <= now]
            if due and gate is not None and self._hold:
                # exact simulated order: a poll due at a scan's time runs after that scan
                due = [p for p in due if gate.may_run(p.next_due)]
            with self._lock:
                upcoming = min((p.next_due for p in self._polls.values()), default=math.inf)
            for poll in due:
                if self._stop.is_set():
                    return
                self._drain_writes()
                with self._transaction():
                    self._poll(poll)
            self.cycles += 1
            if not due:
                if gate is not None and gate is self._gate:
                    gate.sleep_until(upcoming, hold_s=self._hold_for(upcoming))
                    continue
                if not math.isfinite(upcoming):
                    upcoming = now + 0.1
                wall_s = (upcoming - self._clock()) / self._speed
                self._wake.wait(max(0.0, min(wall_s, 0.1)))
                self._wake.clear()

    def _drain_writes(self) -> None:
        with self._lock:
            latest = list(self._latest.values())
            self._latest.clear()
        for item in latest:
            with self._transaction():
                self._execute(*item)
        while True:
            try:
                fn, args, fut = self._writes.get_nowait()
            except queue.Empty:
                return
            with self._transaction():
                self._execute(fn, args, fut)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A transaction with a device out of process (see ``gate``): the clock waits at
        ``slack_s`` after its start for its reply, for ``transaction_wall_s`` at most."""
        gate = self._gate
        if gate is None or self._hold:
            yield
            return
        gate.hold(self._clock() + self._slack_s, wall_limit_s=self._tx_wall_s)
        try:
            yield
        finally:
            gate.hold(None)

    @staticmethod
    def _execute(fn: Callable[..., Any], args: tuple[Any, ...], fut: Future[Any]) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # handed to the Future, never raised in the worker
            fut.set_exception(exc)

    def _poll(self, poll: _Poll) -> None:
        start = self._clock()
        # on the poll's own schedule (a simulated run polls at exact times); after an outage
        # the next poll is a period from now, without a burst
        due = poll.next_due if start - poll.next_due < poll.period_s else start
        poll.next_due = due + poll.period_s
        try:
            value = float(poll.fn())
        except Exception as exc:
            with self._lock:
                old = self._readings[poll.tag]
                self._readings[poll.tag] = Reading(
                    poll.tag,
                    old.value,
                    old.timestamp_s,
                    Quality.BAD,
                    f"{type(exc).__name__}: {exc}",
                    old.failures + 1,
                )
            return
        with self._lock:
            old = self._readings[poll.tag]
            self._readings[poll.tag] = Reading(
                poll.tag, value, self._clock(), Quality.GOOD, None, old.failures
            )
