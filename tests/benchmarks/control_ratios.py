"""Measure, in one run, edgectl's Pid.update through Python against simple-pid, and a 16-block
loop-bank scan in one call. Prints ns per call and the ratio (design target: ≥ 5× for the PID,
< 2 µs for the bank scan). Run after ``make build`` (release extension):

    .venv/bin/python tests/benchmarks/control_ratios.py
"""

from __future__ import annotations

import statistics
import timeit

import numpy as np
import simple_pid

from edgectl.control import DoCascade, LoopBank, Pid, SplitRange

REPEAT = 7


def best_ns(stmt: str, env: dict[str, object], number: int) -> tuple[float, float]:
    """Best and median ns per call over REPEAT runs of ``number`` calls."""
    runs = [
        t / number * 1e9 for t in timeit.repeat(stmt, globals=env, number=number, repeat=REPEAT)
    ]
    return min(runs), statistics.median(runs)


def make_bank16() -> LoopBank:
    bank = LoopBank()
    for k in range(14):
        bank.add_pid(f"pid{k}", Pid(2.0, ti_s=60.0, td_s=5.0, setpoint=37.0))
    bank.add_split_range("ph", Pid(2.0, ti_s=60.0, output_min=-100.0, setpoint=7.0), SplitRange())
    bank.add_cascade(
        "do", DoCascade(Pid(2.0, ti_s=60.0, setpoint=40.0), [(200, 800), (0.5, 2), (0, 60)])
    )
    return bank


def main() -> None:
    n = 200_000
    ours = Pid(2.0, ti_s=60.0, td_s=5.0, output_min=0.0, output_max=100.0, setpoint=37.0)
    theirs = simple_pid.PID(
        2.0, 2.0 / 60.0, 10.0, setpoint=37.0, sample_time=None, output_limits=(0.0, 100.0)
    )
    e_best, e_med = best_ns("update(36.0, 0.01)", {"update": ours.update}, n)
    s_best, s_med = best_ns("pid(36.0, dt=0.01)", {"pid": theirs}, n)
    print("Pid.update through Python (explicit dt, limits, filtered D, back-calculation)")
    print(f"  edgectl    {e_best:8.1f} ns best   {e_med:8.1f} ns median")
    print(f"  simple-pid {s_best:8.1f} ns best   {s_med:8.1f} ns median")
    print(
        f"  ratio      {s_best / e_best:8.1f} x (best)   {s_med / e_med:8.1f} x (median)"
        "   target >= 5x"
    )

    bank = make_bank16()
    y = np.full(16, 36.0)
    out = np.empty(bank.n_outputs)
    b_best, b_med = best_ns("bank.step(y, 0.1)", {"bank": bank, "y": y}, n // 10)
    i_best, i_med = best_ns(
        "bank.step_into(y, 0.1, out)", {"bank": bank, "y": y, "out": out}, n // 10
    )
    print("LoopBank of 16 blocks (14 PID, PID + split range, DO cascade of 3), one call per scan")
    print(f"  step       {b_best:8.1f} ns best   {b_med:8.1f} ns median   target < 2000 ns")
    print(f"  step_into  {i_best:8.1f} ns best   {i_med:8.1f} ns median")
    loop_best, _ = best_ns(
        "for p in pids: p.update(36.0, 0.1)",
        {"pids": [Pid(2.0, ti_s=60.0, td_s=5.0, setpoint=37.0) for _ in range(16)]},
        n // 10,
    )
    print(f"  (16 separate Pid.update calls from a Python loop: {loop_best:.1f} ns)")


if __name__ == "__main__":
    main()
