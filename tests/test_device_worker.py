"""The per-port I/O worker: latest readings with quality, queued writes, never raises."""

from __future__ import annotations

import threading
import time

import pytest

from edgectl.errors import DeviceTimeoutError
from edgectl.io import IoWorker, Quality


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_readings_good_bad_then_good_again() -> None:
    state = {"fail": False, "value": 1.0}

    def read() -> float:
        if state["fail"]:
            raise DeviceTimeoutError("probe: no reply to 'R'")
        return state["value"]

    with IoWorker("port") as worker:
        worker.add_poll("ph", read, period_s=0.01)
        assert worker.wait_for("ph").value == 1.0
        state["fail"] = True
        bad = worker.wait_for("ph", quality=Quality.BAD)
        assert bad.quality is Quality.BAD
        assert bad.error == "DeviceTimeoutError: probe: no reply to 'R'"
        assert bad.value == 1.0
        assert bad.failures >= 1
        state.update(fail=False, value=2.0)
        good = worker.wait_for("ph")
        assert good.quality is Quality.GOOD
        assert good.value == 2.0
        assert worker.is_running


def test_unexpected_exceptions_never_escape() -> None:
    def broken() -> float:
        raise ZeroDivisionError("bug in a driver")

    with IoWorker("port") as worker:
        worker.add_poll("x", broken, period_s=0.01)
        deadline = time.monotonic() + 5
        while worker.latest("x").failures < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        r = worker.latest("x")
        assert r.quality is Quality.BAD
        assert r.failures >= 2
        assert "ZeroDivisionError" in (r.error or "")
        time.sleep(0.05)
        assert worker.is_running


def test_stale_when_older_than_max_age() -> None:
    clock = FakeClock()
    worker = IoWorker("port", max_age_s=5.0, clock=clock)
    worker.add_poll("t", lambda: 37.0, period_s=1.0)
    with worker:
        assert worker.wait_for("t").quality is Quality.GOOD
        worker.stop()
        clock.t = 10.0
        assert worker.latest("t").quality is Quality.STALE
        assert worker.latest("t").value == 37.0


def test_default_max_age_is_three_periods() -> None:
    clock = FakeClock()
    worker = IoWorker("port", clock=clock)
    worker.add_poll("t", lambda: 1.0, period_s=2.0)
    with worker:
        worker.wait_for("t")
    clock.t = 5.9
    assert worker.latest("t").quality is Quality.GOOD
    clock.t = 6.1
    assert worker.latest("t").quality is Quality.STALE


def test_queued_writes_run_on_the_worker_thread_and_report_errors() -> None:
    seen: list[str] = []

    def write(v: float) -> float:
        seen.append(threading.current_thread().name)
        if v < 0:
            raise ValueError("negative rate")
        return v * 2

    with IoWorker("pumps") as worker:
        assert worker.submit(write, 1.5).result(timeout=2) == 3.0
        fut = worker.submit(write, -1.0)
        with pytest.raises(ValueError, match="negative rate"):
            fut.result(timeout=2)
        assert worker.is_running
    assert seen == ["io-pumps", "io-pumps"]


def test_slow_device_does_not_block_the_reader() -> None:
    release = threading.Event()

    def slow() -> float:
        release.wait(2.0)
        return 1.0

    with IoWorker("slow") as worker:
        worker.add_poll("x", slow, period_s=0.01)
        time.sleep(0.02)
        start = time.monotonic()
        r = worker.latest("x")  # returns at once while the poll is blocked
        took = time.monotonic() - start
        release.set()
    assert r.quality is Quality.BAD  # never polled successfully yet
    assert took < 1.0


def test_pending_writes_cancelled_on_stop() -> None:
    gate = threading.Event()
    worker = IoWorker("w").start()
    first = worker.submit(gate.wait, 1.0)
    time.sleep(0.02)
    second = worker.submit(lambda: 1)
    gate.set()
    worker.stop()
    assert first.result(timeout=1) is True
    assert second.done()


@pytest.mark.parametrize(
    "module", ["edgectl.io.worker", "edgectl.devices.mfc", "edgectl.devices.gpio"]
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    from edgectl.emulators import reset_emulators

    reset_emulators()
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0


def test_submit_latest_coalesces_pending_setpoints() -> None:
    gate = threading.Event()
    sent: list[float] = []
    with IoWorker("mfc") as worker:
        blocker = worker.submit(gate.wait, 2.0)  # the port is busy
        time.sleep(0.02)
        futures = [worker.submit_latest("sp", sent.append, v) for v in (1.0, 2.0, 3.0)]
        gate.set()
        assert blocker.result(timeout=2) is True
        futures[-1].result(timeout=2)
    assert sent == [3.0]
    assert futures[0].cancelled()
    assert futures[1].cancelled()
