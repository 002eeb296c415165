"""pytest-benchmark of the control core through the binding (``make bench`` enables them).

The same operations as ``rust/edgectl-core/benches/pid.rs``, so the gap is the boundary cost;
simple-pid is timed beside for the ratio the design is held to (DESIGN: ≥ 5×).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgectl.control import DoCascade, LoopBank, Pid, SplitRange

simple_pid = pytest.importorskip("simple_pid")


def make_bank16() -> LoopBank:
    bank = LoopBank()
    for k in range(14):
        bank.add_pid(f"pid{k}", Pid(2.0, ti_s=60.0, td_s=5.0, setpoint=37.0))
    bank.add_split_range("ph", Pid(2.0, ti_s=60.0, output_min=-100.0, setpoint=7.0), SplitRange())
    bank.add_cascade(
        "do", DoCascade(Pid(2.0, ti_s=60.0, setpoint=40.0), [(200, 800), (0.5, 2), (0, 60)])
    )
    return bank


def test_pid_update(benchmark) -> None:  # type: ignore[no-untyped-def]
    pid = Pid(2.0, ti_s=60.0, td_s=5.0, setpoint=37.0)
    u = benchmark(pid.update, 36.0, 0.01)
    assert 0.0 <= u <= 100.0


def test_simple_pid_call(benchmark) -> None:  # type: ignore[no-untyped-def]
    pid = simple_pid.PID(2.0, 2.0 / 60.0, 10.0, setpoint=37.0, sample_time=None,
                         output_limits=(0.0, 100.0))  # fmt: skip
    u = benchmark(pid, 36.0, 0.01)
    assert 0.0 <= u <= 100.0


def test_loop_bank_16_step(benchmark) -> None:  # type: ignore[no-untyped-def]
    bank = make_bank16()
    y = np.full(16, 36.0)
    out = benchmark(bank.step, y, 0.1)
    assert out.shape == (bank.n_outputs,)


def test_loop_bank_16_step_into(benchmark) -> None:  # type: ignore[no-untyped-def]
    bank = make_bank16()
    y = np.full(16, 36.0)
    out = np.empty(bank.n_outputs)
    benchmark(bank.step_into, y, 0.1, out)
    assert np.isfinite(out).all()
