"""sd_notify readiness and the scan-fed watchdog, against a fake ``$NOTIFY_SOCKET``.

The fake is what systemd is to the controller: an ``AF_UNIX`` datagram socket that receives
``KEY=VALUE`` lines. A stalled scan must stop the ``WATCHDOG=1`` pets (so systemd restarts the
controller); a scanning controller must keep sending them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl.runtime.build import open_run
from edgectl.service.notify import Notifier, ScanWatchdog, scan_watchdog, watchdog_interval_s

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:  # sun_path is 108 bytes
        pytest.fail(f"{path}: too long for an AF_UNIX address")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield str(path), sock
    finally:
        sock.close()


def receive_all(sock: socket.socket, timeout_s: float) -> list[dict[str, str]]:
    """Every datagram that arrives within ``timeout_s``, decoded into dicts."""
    out: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        out.append(dict(line.split("=", 1) for line in data.decode().splitlines()))
    return out


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class RecordingNotifier(Notifier):
    def __init__(self) -> None:
        super().__init__("")
        self.sent: list[dict[str, str | int]] = []

    @property
    def is_enabled(self) -> bool:
        return True

    def notify(self, **fields: str | int) -> bool:
        self.sent.append(fields)
        return True


def test_notifier_sends_key_value_lines_to_path_and_abstract_sockets(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    n = Notifier(path)
    assert n.notify(READY=1, STATUS="scanning")
    assert receive_all(sock, 0.3) == [{"READY": "1", "STATUS": "scanning"}]
    n.close()

    name = f"edgectl-test-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind("\0" + name)
    try:
        n = Notifier("@" + name)
        assert n.notify(WATCHDOG=1)
        assert receive_all(abstract, 0.3) == [{"WATCHDOG": "1"}]
        n.close()
    finally:
        abstract.close()


def test_no_notify_socket_costs_nothing_and_a_dead_socket_does_not_raise(
    tmp_path: Path,
) -> None:
    assert not Notifier("").notify(READY=1)
    gone = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert gone.notify(WATCHDOG=1) is False  # systemd acts on the missing ping, we go on
    gone.close()
    with scan_watchdog(Counter(), environ={}) as dog:
        assert dog._thread is None


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process_only() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    me = str(os.getpid())
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": me}) == 2.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog_interval_s({}) is None


def test_pets_only_while_scans_progress() -> None:
    clock, scans, notifier = FakeClock(), Counter(), RecordingNotifier()
    dog = ScanWatchdog(notifier, scans, timeout_s=8.0, clock=clock)  # pet every 2 s, stall 4 s
    assert dog.check() is False  # no scan yet: neither ready nor alive
    assert notifier.sent == []

    pets = 0
    for _ in range(10):  # scanning: one scan per second, a check per second
        clock.now_s += 1.0
        scans.value += 1
        pets += dog.check()
    assert notifier.sent[0] == {"READY": 1, "STATUS": "scanning (1 scans)"}
    assert pets == 5  # every 2 s, not on every check

    # the scan stalls: pets go on only until the last progress is stall_s old
    stalled_pets = []
    for _ in range(20):
        clock.now_s += 1.0
        stalled_pets.append(dog.check())
    assert sum(stalled_pets) <= 2
    assert not any(stalled_pets[4:])  # nothing once the stall is older than 4 s
    assert dog.pets == pets + sum(stalled_pets)

    scans.value += 1  # the scan came back (systemd would have restarted us by now)
    clock.now_s += 1.0
    assert dog.check() is True
    assert sum("READY" in m for m in notifier.sent) == 1


def test_a_stalled_scan_of_a_real_run_stops_feeding_the_watchdog(
    tmp_path: Path,
    notify_socket: tuple[str, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The controller on the simulated plant under a fake systemd: READY=1 after the first
    scan, WATCHDOG=1 while it scans, none once a scan hangs, STOPPING=1 at the end."""
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "800000")  # pet every 0.2 s, stall after 0.4 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    run = open_run(EXAMPLE, speed=600.0, db=tmp_path / "run.db", socket_path=tmp_path / "r.sock")
    hang = threading.Event()
    release = threading.Event()
    scan = run.controller.scan
    n = 0

    def scan_then_hang(now_s: float, dt_s: float) -> None:
        nonlocal n
        n += 1
        if n == 600:  # one simulated minute... then a driver call never returns
            hang.set()
            release.wait(30.0)
        scan(now_s, dt_s)

    monkeypatch.setattr(run.controller, "scan", scan_then_hang)
    worker = threading.Thread(target=run.run, args=(None,), daemon=True)
    worker.start()
    try:
        before = receive_all(sock, 0.0)
        while not hang.wait(0.05):
            before += receive_all(sock, 0.05)
            assert worker.is_alive(), "the run ended before its scan hung"
        before += receive_all(sock, 0.0)
        during = receive_all(sock, 2.0)  # ten pet periods of a hung scan
    finally:
        run.stop()
        release.set()
        worker.join(30.0)
        run.close()
    after = receive_all(sock, 0.5)
    assert not worker.is_alive()
    assert any(m.get("READY") == "1" for m in before)
    assert sum(m.get("WATCHDOG") == "1" for m in before) >= 1
    # at most the pets of the stall allowance (0.4 s at one per 0.2 s), never ten
    assert sum(m.get("WATCHDOG") == "1" for m in during) <= 2
    assert any(m.get("STOPPING") == "1" for m in during + after)
