"""Scan scheduling on absolute deadlines: measured dt, overruns skipped, lateness statistics."""

from __future__ import annotations

import math
import threading
import time

import pytest

from edgectl.runtime.clock import MonotonicClock, ScaledClock, VirtualClock
from edgectl.runtime.scheduler import LatenessStats, ScanScheduler


def test_virtual_clock_runs_scans_on_exact_deadlines() -> None:
    clock = VirtualClock()
    sched = ScanScheduler(0.1, clock)
    seen: list[tuple[float, float]] = []
    sched.run(lambda now, dt: seen.append((now, dt)), until_s=1.0)
    assert len(seen) == 11
    assert seen[0] == (0.0, pytest.approx(0.1))
    for k, (now, dt) in enumerate(seen):
        assert now == pytest.approx(0.1 * k)
        assert dt == pytest.approx(0.1)
    assert sched.stats.overruns == 0
    assert sched.lateness.max_s == 0.0


def test_overrun_skips_to_next_deadline_without_burst() -> None:
    clock = VirtualClock()
    sched = ScanScheduler(1.0, clock)
    times: list[float] = []

    def scan(now: float, dt: float) -> None:
        times.append(now)
        if len(times) == 3:
            clock.advance(2.5)  # this scan takes 2.5 periods

    sched.run(scan, until_s=8.0)
    # deadlines 0,1,2 then the scan at 2 ends at 4.5: next deadline 5, never 3 or 4
    assert times == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0, 8.0]
    assert sched.stats.overruns == 1
    assert sched.stats.skipped_deadlines == 2


def test_measured_dt_reflects_late_scans() -> None:
    clock = VirtualClock()
    sched = ScanScheduler(1.0, clock)
    dts: list[float] = []

    def scan(now: float, dt: float) -> None:
        dts.append(dt)
        if len(dts) == 2:
            clock.advance(1.5)

    sched.run(scan, until_s=5.0)
    assert dts[2] == pytest.approx(2.0)  # 1 → 3 after the overrun


def test_stop_from_another_thread_returns() -> None:
    sched = ScanScheduler(0.01, MonotonicClock())
    timer = threading.Timer(0.2, sched.stop)
    timer.start()
    count = [0]
    sched.run(lambda now, dt: count.__setitem__(0, count[0] + 1))
    timer.join()
    assert count[0] >= 2
    assert sched.lateness.count == count[0]


def test_scaled_clock_runs_simulated_time_faster() -> None:
    clock = ScaledClock(speed=100.0)
    t_wall = time.monotonic()
    clock.sleep_until(5.0)  # 5 simulated seconds = 50 ms wall
    assert clock.now() >= 5.0
    assert time.monotonic() - t_wall >= 0.049


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_period_and_speed_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="period_s"):
        ScanScheduler(bad, VirtualClock())
    with pytest.raises(ValueError, match="speed"):
        ScaledClock(bad)


def test_lateness_percentiles() -> None:
    stats = LatenessStats(resolution_s=1e-5)
    for i in range(1000):
        stats.record(i * 1e-5)  # 0 .. 9.99 ms uniformly
    stats.record(0.5)  # one 500 ms scan beyond the histogram range
    s = stats.summary_ms()
    assert s["p50_ms"] == pytest.approx(5.0, abs=0.02)
    assert s["p99_ms"] == pytest.approx(9.9, abs=0.03)
    assert s["max_ms"] == pytest.approx(500.0)
    assert stats.percentile(100) == pytest.approx(0.5)
    assert math.isnan(LatenessStats().percentile(50))
