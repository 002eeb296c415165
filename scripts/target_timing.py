"""Loop timing on the machine this runs on: scan lateness and the cost of the scan's calls.

    python scripts/target_timing.py [--seconds 30] [--period-s 0.1]

Runs a 10 Hz scan on wall-clock deadlines (:class:`edgectl.runtime.scheduler.ScanScheduler`
with a :class:`~edgectl.runtime.clock.MonotonicClock`) whose body is a bank of PID updates and
one soft-sensor prediction of a 1000-point spectrum, then prints lateness p50/p99/max,
overruns, and the per-call cost of ``Pid.update`` and ``SoftSensor.predict``. Needs only the
installed wheel (run it on the Pi from the service's virtualenv). Under qemu the figures check
that it runs, nothing more.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from edgectl import spectra as sp
from edgectl.control import Pid
from edgectl.runtime.clock import MonotonicClock
from edgectl.runtime.scheduler import ScanScheduler


def per_call_s(fn: object, n: int) -> float:
    """Best of 5 timings of ``n`` calls, per call."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=30.0, help="wall time of the scan run")
    ap.add_argument("--period-s", type=float, default=0.1, help="scan period")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    axis = np.linspace(400.0, 1800.0, 1000)
    conc = rng.uniform(0.0, 10.0, size=(40, 2))
    peaks = np.stack([np.exp(-(((axis - c) / 30.0) ** 2)) for c in (1000.0, 1400.0)])
    x = conc @ peaks + 0.01 * rng.standard_normal((40, axis.size))
    steps = [sp.SavitzkyGolay(window=15, order=2, deriv=1), sp.Snv()]
    sensor = sp.SoftSensor.fit(axis, x, conc[:, 0], steps, 2)
    spectrum = x[0]
    pids = [Pid(2.0, ti_s=60.0, td_s=5.0, setpoint=37.0) for _ in range(8)]

    def scan(now_s: float, dt_s: float) -> None:
        for p in pids:
            p.update(36.5, dt_s)
        sensor.predict(spectrum)

    sched = ScanScheduler(args.period_s, MonotonicClock())
    sched.run(scan, until_s=sched.clock.now() + args.seconds)
    lat = sched.lateness.summary_ms()
    pid_us = per_call_s(lambda: pids[0].update(36.5, 0.1), 20000) * 1e6
    ss_us = per_call_s(lambda: sensor.predict(spectrum), 2000) * 1e6
    print(f"machine: {platform.machine()} {platform.node()} python {platform.python_version()}")
    print(f"scans: {sched.stats.scans} at {args.period_s:g} s, overruns {sched.stats.overruns}")
    print(
        f"scan lateness: p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, "
        f"max {lat['max_ms']:.3f} ms"
    )
    print(f"Pid.update: {pid_us:.2f} µs/call; SoftSensor.predict (1000 points): {ss_us:.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
