"""The lockstep clock: simulated time never passes a participant's hold, stalls are absorbed
(counted, not skipped), lateness is measured against the wall deadline the sleeper had."""

from __future__ import annotations

import threading
import time

import pytest

from edgectl.runtime.clock import LockstepClock
from edgectl.runtime.scheduler import ScanScheduler


def test_time_stops_at_a_hold_and_continues_from_it() -> None:
    clock = LockstepClock(1e3, start_s=0.0)
    gate = clock.gate("scan")
    gate.hold(10.0)  # 10 ms of wall time away
    time.sleep(0.05)  # 50 s of free time
    assert clock.now() == 10.0  # exactly at the hold, not beyond
    gate.hold(1e6)
    t = clock.now()
    assert 10.0 <= t <= 20.0  # continues from the hold: no jump over the stall
    timing = clock.timing()
    assert timing["held_wall_s"] > 0.005
    assert timing["held_by"]["scan"] == pytest.approx(timing["held_wall_s"])
    gate.close()
    time.sleep(0.02)
    assert clock.now() > 20.0  # released: runs free


def test_the_lowest_hold_binds_and_is_named() -> None:
    clock = LockstepClock(1e3)
    scan, worker = clock.gate("scan"), clock.gate("io temp")
    worker.hold(20.0)
    scan.hold(100.0)
    time.sleep(0.05)
    assert clock.now() == 20.0
    worker.hold(None)
    time.sleep(0.15)
    assert clock.now() == 100.0
    held = clock.timing()["held_by"]
    assert held["io temp"] > 0.0
    assert held["scan"] > 0.0


def test_a_sleeper_wakes_at_its_time_and_reports_its_lateness() -> None:
    clock = LockstepClock(1000.0)
    gate = clock.gate("scan")
    late = gate.sleep_until(5.0)  # 5 ms of wall time
    assert clock.now() == 5.0  # still held at the deadline until the sleeper moves on
    assert 0.0 <= late < 0.5
    # a sleeper that comes late: the clock waited for it, the lateness says how long
    gate.hold(6.0)
    time.sleep(0.05)  # the deadline 6.0 passed ~49 ms of wall time ago
    late = gate.sleep_until(6.0)
    assert late >= 0.045
    assert clock.now() == 6.0


def test_a_poke_wakes_a_sleeper_and_holds_until_the_work_is_taken() -> None:
    clock = LockstepClock(1e3)
    gate = clock.gate("io pump")
    woke = threading.Event()

    def worker() -> None:
        gate.sleep_until(1e12, hold_s=1e12)
        woke.set()

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.01)
    submitted_at = clock.now()
    gate.poke(submitted_at + 5.0)  # 5 ms of wall time of slack
    assert woke.wait(5.0)
    t.join(5.0)
    time.sleep(0.05)
    # the work was not taken (no take_poke / new hold): time waits at the poke's hold
    assert clock.now() == submitted_at + 5.0
    assert gate.take_poke() is True
    gate.hold(None)
    time.sleep(0.02)
    assert clock.now() > submitted_at + 5.0


def test_scheduler_on_a_lockstep_clock_runs_exact_deadlines_however_slow_the_scan() -> None:
    clock = LockstepClock(1e4)  # a 1 s period is 0.1 ms of wall time
    sched = ScanScheduler(1.0, clock)
    seen: list[tuple[float, float]] = []

    def scan(now: float, dt: float) -> None:
        seen.append((now, dt))
        if len(seen) % 5 == 0:
            time.sleep(0.02)  # a stall of 200 periods: the clock waits for the scan

    t0 = clock.now()
    sched.run(scan, until_s=t0 + 30.5)
    times = [now for now, _ in seen]
    # every scan after the first runs exactly on its deadline (the first starts the schedule)
    assert times[2:] == pytest.approx([times[1] + k for k in range(1, len(times) - 1)], abs=1e-9)
    assert len(times) >= 30
    assert all(dt == pytest.approx(1.0, abs=1e-9) for _, dt in seen[2:])
    assert sched.stats.overruns == 0  # simulated time never passed a deadline
    # ... the scans that took longer than their wall period are counted, and the wall time the
    # clock waited for them is charged to the scan; the lateness of the wake-ups is measured
    # apart from it (a stall inside the scan is not a late wake-up)
    assert sched.stats.wall_overruns == len(times) // 5
    assert clock.timing()["held_by"]["scan"] >= 0.02 * (len(times) // 5) * 0.9
    assert sched.lateness.count == len(times)


def test_bad_speed_rejected() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            LockstepClock(bad)


def test_a_hold_with_a_wall_limit_lapses_and_time_runs_on_to_the_next_hold() -> None:
    clock = LockstepClock(1e3, start_s=0.0)
    tx, scan = clock.gate("io rig"), clock.gate("scan", 0)
    scan.hold(50.0)
    t_hold = time.monotonic()
    tx.hold(10.0, wall_limit_s=0.5)  # a transaction in flight with a device that is silent
    now = clock.now()
    assert now <= 10.0 or time.monotonic() - t_hold >= 0.5
    time.sleep(0.6)
    # the hold lapsed by itself: time ran on from it and stops at the next one, exactly
    assert clock.now() == 50.0
    assert clock.timing()["held_by"]["io rig"] > 0.0
    tx.hold(None)  # the transaction ends after its hold lapsed: nothing left to release
    assert clock.now() == 50.0


def test_a_rig_transaction_reply_is_taken_within_the_slack_however_late_the_host() -> None:
    from edgectl.io import IoWorker

    clock = LockstepClock(1e3, start_s=0.0)
    spans: list[tuple[float, float]] = []

    def slow_read() -> float:
        t0 = clock.now()
        time.sleep(0.1)  # a loaded host: 100 s of free-running simulated time
        spans.append((t0, clock.now()))
        return 1.0

    gate = clock.gate("io rig")
    worker = IoWorker("rig", clock=clock.now, speed=1e3, gate=gate, slack_s=1.0)
    worker.add_poll("x", slow_read, period_s=5.0)  # as the hub does: polls, then start
    with worker:
        deadline = time.monotonic() + 60.0
        while len(spans) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(spans) >= 2
    for t0, t1 in spans:
        assert t1 - t0 <= 1.0  # held at the transaction's start + slack until the reply


def test_a_silent_rig_device_does_not_hold_the_clock_past_the_wall_limit() -> None:
    from edgectl.io import IoWorker

    clock = LockstepClock(1e3, start_s=0.0)
    spans: list[tuple[float, float]] = []

    def silent() -> float:
        t0 = clock.now()
        time.sleep(0.3)  # a time-out longer than the hold's wall limit
        spans.append((t0, clock.now()))
        raise TimeoutError("no reply")

    gate = clock.gate("io rig")
    worker = IoWorker(
        "rig", clock=clock.now, speed=1e3, gate=gate, slack_s=1.0, transaction_wall_s=0.05
    )
    worker.add_poll("x", silent, period_s=5.0)
    with worker:
        deadline = time.monotonic() + 60.0
        while not spans and time.monotonic() < deadline:
            time.sleep(0.01)
    assert spans
    t0, t1 = spans[0]
    assert t1 - t0 > 100.0  # the hold lapsed after 0.05 s: the time-out ran on free time
