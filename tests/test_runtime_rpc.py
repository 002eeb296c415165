"""The REPL transport: JSON lines over a Unix socket, errors re-raised as the same class."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from edgectl.errors import ConfigError, EdgectlError
from edgectl.runtime.rpc import RpcClient, RpcServer


class Target:
    def __init__(self) -> None:
        self.values: dict[str, float] = {"kp": 1.0}

    def get(self, name: str) -> float:
        return self.values[name]

    def set(self, name: str, value: float) -> None:
        if value < 0:
            raise ConfigError(f"loops.temp.{name} must be >= 0, got {value}")
        self.values[name] = value

    def secret(self) -> str:
        return "not exported"

    def nan(self) -> list[Any]:
        return [float("nan"), 1.0]


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "r.sock"
    srv = RpcServer(path, Target(), ["get", "set", "nan"]).start()
    yield path
    srv.close()


def test_call_round_trip_and_socket_is_private(server: Path) -> None:
    c = RpcClient(server)
    assert c.call("get", name="kp") == 1.0
    c.call("set", name="kp", value=0.8)
    assert c.call("get", name="kp") == 0.8
    assert stat.S_IMODE(os.stat(server).st_mode) == 0o600
    c.close()


def test_errors_are_reraised_as_the_same_class(server: Path) -> None:
    c = RpcClient(server)
    with pytest.raises(ConfigError, match=r"loops\.temp\.kp must be >= 0, got -1"):
        c.call("set", name="kp", value=-1)
    with pytest.raises(EdgectlError, match="unknown method 'secret'"):
        c.call("secret")
    with pytest.raises(KeyError):
        c.call("get", name="nope")
    assert c.call("get", name="kp") == 1.0  # the server lives on after errors
    c.close()


def test_nan_survives_the_trip(server: Path) -> None:
    c = RpcClient(server)
    v = c.call("nan")
    assert v[0] != v[0]
    assert v[1] == 1.0
    c.close()


def test_concurrent_clients(server: Path) -> None:
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            c = RpcClient(server)
            for _ in range(50):
                c.call("set", name=f"k{i}", value=float(i))
                assert c.call("get", name=f"k{i}") == float(i)
            c.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_stale_socket_file_is_replaced_and_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sock"
    path.write_bytes(b"")  # leftover of a crashed run (not a live socket)
    srv = RpcServer(path, Target(), ["get"]).start()
    with pytest.raises(EdgectlError, match="already serving"):
        RpcServer(path, Target(), ["get"])
    srv.close()
    srv.close()  # idempotent
    assert not path.exists()


def test_connect_to_nothing_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(EdgectlError, match=r"cannot connect to a controller at .*nope\.sock"):
        RpcClient(tmp_path / "nope.sock")
