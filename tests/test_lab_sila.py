"""The SiLA 2 server against the whole controller on the simulated plant, checked with the
sila2 package's own client over TLS: the features it serves, reads, commands through the
operator service (audited with the SiLA user; out of range and missing rights refused), login
and access-token checks."""

from __future__ import annotations

import socket
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sila2")

from sila2.client import SilaClient

from edgectl.config import to_toml_text
from edgectl.lab.certs import make_certificate
from edgectl.lab.sila_server import FEATURES
from edgectl.operator import UserStore
from edgectl.runtime.build import Run, open_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
PASSWORD = "correct horse battery"


@dataclass
class Lab:
    run: Run
    port: int
    certificate: bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("sila")
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    port = _free_port()
    data["sila"] = {"enabled": True, "host": "127.0.0.1", "port": port}
    cfg = tmp / "reactor.toml"
    cfg.write_text(to_toml_text(data), encoding="utf-8")
    store = UserStore(tmp / "run.users")
    store.add("alice", "operator", PASSWORD)
    store.add("victor", "viewer", PASSWORD)
    run = open_run(cfg, speed=60.0, db=tmp / "run.db", socket_path=tmp / "run.sock")
    worker = threading.Thread(target=run.run, name="scan", daemon=True)
    worker.start()
    try:
        (face,) = run.faces
        ready = Lab(run, port, face.certificate)
        _wait_for_a_first_reading(ready)
        yield ready
    finally:
        run.stop()
        worker.join(timeout=60.0)
        run.close()


def _wait_for_a_first_reading(lab: Lab) -> None:
    """Until the first scans: the server publishes NaN before the temperature is measured."""
    client = _client(lab)
    got = threading.Event()

    def measured(value: float) -> None:
        if value == value:  # not NaN
            got.set()

    subscription = client.TemperatureController.CurrentTemperature.subscribe(
        metadata=_login(client), callbacks=[measured]
    )
    got.wait(timeout=120.0)
    subscription.cancel()


def _client(lab: Lab) -> SilaClient:
    return SilaClient("127.0.0.1", lab.port, root_certs=lab.certificate)


def _login(client: SilaClient, user: str = "alice", password: str = PASSWORD) -> list[Any]:
    server = str(client.SiLAService.ServerUUID.get())
    token = client.AuthenticationService.Login(
        UserIdentification=user, Password=password, RequestedServer=server, RequestedFeatures=[]
    ).AccessToken
    return [client.AuthorizationService.AccessToken(token)]


def _audit(lab: Lab, target: str) -> list[Any]:
    return [r for r in lab.run.historian.audit.records() if r.target == target]


def test_the_server_serves_silaservice_and_the_edgectl_features(lab: Lab) -> None:
    client = _client(lab)
    implemented = client.SiLAService.ImplementedFeatures.get()
    names = {f.split("/")[-2] for f in implemented}
    served = {"SiLAService", "AuthenticationService", "AuthorizationService", "LockController"}
    assert set(FEATURES) | served <= names
    assert client.SiLAService.ServerType.get() == "BioreactorController"


def test_reads_through_the_features(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    t = client.TemperatureController
    assert 20.0 < t.CurrentTemperature.get(metadata=meta) < 45.0
    assert t.TemperatureQuality.get(metadata=meta) == "good"
    assert t.TargetTemperature.get(metadata=meta) == lab.run.controller.loop_get("temp")["setpoint"]
    assert client.RecipeRunner.CurrentPhase.get(metadata=meta) == "batch"
    assert client.RecipeRunner.Phases.get(metadata=meta) == ["batch", "fed-batch", "harvest"]
    assert client.StirrerController.CurrentSpeed.get(metadata=meta) >= 200.0
    assert client.SoftSensorProvider.EstimateTags.get(metadata=meta) == []


def test_set_target_is_audited_with_the_sila_user_and_out_of_range_refused(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    client.TemperatureController.SetTargetTemperature(36.0, metadata=meta)
    assert lab.run.controller.loop_get("temp")["setpoint"] == 36.0
    with pytest.raises(Exception, match="refused") as refused:
        client.TemperatureController.SetTargetTemperature(55.0, metadata=meta)
    assert "alice" in str(refused.value)
    assert lab.run.controller.loop_get("temp")["setpoint"] == 36.0
    records = _audit(lab, "loops.temp.setpoint")
    applied = [r for r in records if r.action == "set"]
    assert applied[-1].actor == "alice"
    assert applied[-1].new_value == 36.0
    assert "SiLA 2" in applied[-1].reason
    assert records[-1].action == "refused"
    assert records[-1].new_value["rule"] == "limits"


def test_a_viewer_is_refused_a_command(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client, "victor")
    assert client.PhController.CurrentPh.get(metadata=meta) > 0.0  # a viewer reads
    with pytest.raises(Exception, match="no right"):
        client.PhController.SetTargetPh(7.2, metadata=meta)
    last = _audit(lab, "loops.ph.setpoint")[-1]
    assert (last.actor, last.action, last.new_value["rule"]) == ("victor", "refused", "rights")


def test_stop_and_start_control(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    client.PhController.StopControl(metadata=meta)
    assert client.PhController.ControllerMode.get(metadata=meta) == "off"
    client.PhController.StartControl(metadata=meta)
    assert lab.run.controller.loop_get("ph")["mode"] == "auto"
    client.PumpController.StopFeed(metadata=meta)
    assert lab.run.controller.loop_get("feed")["mode"] == "off"
    client.PumpController.StartFeed(metadata=meta)
    assert client.PumpController.FeedMode.get(metadata=meta) == "auto"
    modes = [r for r in _audit(lab, "loops.ph.mode") if r.action == "set"]
    assert [(r.actor, r.new_value) for r in modes[-2:]] == [("alice", "off"), ("alice", "auto")]


def test_login_and_token_are_checked(lab: Lab) -> None:
    client = _client(lab)
    with pytest.raises(Exception, match="AuthenticationFailed"):
        _login(client, "alice", "not the password")
    failed = [r for r in lab.run.historian.audit.records() if r.action == "login_failed"]
    assert failed[-1].actor == "alice"
    with pytest.raises(Exception, match="InvalidAccessToken"):
        client.TemperatureController.CurrentTemperature.get(
            metadata=[client.AuthorizationService.AccessToken("not-a-token")]
        )
    with pytest.raises(Exception, match="no operator transition"):
        client.RecipeRunner.RequestPhase("no-such-phase", metadata=_login(client))


def test_a_client_that_does_not_trust_the_server_certificate_cannot_connect(lab: Lab) -> None:
    other, _ = make_certificate("urn:edgectl:other", "other", ["127.0.0.1"], pem=True)
    with pytest.raises(Exception):  # noqa: B017, PT011 (the TLS handshake fails in grpc)
        SilaClient("127.0.0.1", lab.port, root_certs=other).SiLAService.ServerName.get()


def _values_of(
    prop: Any,
    meta: list[Any],
    count: int,
    then: Callable[[], Any] = lambda: None,
    bound_s: float = 120.0,
) -> list[Any]:
    """The first ``count`` distinct values a subscription to ``prop`` delivers; ``then`` runs
    once the first one arrived (each wait up to ``bound_s``)."""
    seen: list[Any] = []
    changed = threading.Condition()

    def got(value: Any) -> None:
        with changed:
            if value not in seen:
                seen.append(value)
            changed.notify_all()

    subscription = prop.subscribe(metadata=meta, callbacks=[got])
    try:
        with changed:
            changed.wait_for(lambda: len(seen) >= 1, timeout=bound_s)
        then()
        with changed:
            changed.wait_for(lambda: len(seen) >= count, timeout=bound_s)
    finally:
        subscription.cancel()
    with changed:
        return list(seen)


def test_a_subscription_receives_the_live_values_as_they_change(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    temperatures = _values_of(client.TemperatureController.CurrentTemperature, meta, 2)
    assert len(temperatures) == 2
    assert all(20.0 < t < 45.0 for t in temperatures)
    assert client.PhController.CurrentPh.get(metadata=meta) > 0.0  # get: the first value
    assert client.PumpController.FeedRate.get(metadata=meta) >= 0.0
    assert client.PumpController.FeedMode.get(metadata=meta) in ("auto", "manual", "off")
    assert client.SoftSensorProvider.Estimates.get(metadata=meta) == []  # no soft sensor here


def test_a_subscription_sees_a_setpoint_change(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    first = lab.run.controller.loop_get("do")["setpoint"]
    do = client.DissolvedOxygenController
    targets = _values_of(
        do.TargetDissolvedOxygen,
        meta,
        2,
        then=lambda: do.SetTargetDissolvedOxygen(first - 5.0, metadata=meta),
    )
    assert targets == [first, first - 5.0]


def test_a_subscription_needs_a_valid_access_token(lab: Lab) -> None:
    client = _client(lab)
    bad = [client.AuthorizationService.AccessToken("not-a-token")]
    with pytest.raises(Exception, match="InvalidAccessToken"):
        client.PumpController.FeedRate.get(metadata=bad)


def test_a_locked_server_refuses_commands_without_the_lock_identifier(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    lock = client.LockController
    assert lock.IsLocked.get(metadata=meta) is False
    with pytest.raises(Exception, match="may not lock"):
        lock.LockServer("viewer-lock", 0, metadata=_login(client, "victor"))
    lock.LockServer("bench-7", 0, metadata=meta)
    try:
        assert lock.IsLocked.get(metadata=meta) is True
        with pytest.raises(Exception, match="ServerAlreadyLocked"):
            lock.LockServer("other", 0, metadata=meta)
        with pytest.raises(Exception, match="InvalidLockIdentifier"):
            client.TemperatureController.SetTargetTemperature(
                35.0, metadata=[*meta, lock.LockIdentifier("wrong")]
            )
        with pytest.raises(Exception, match="LockIdentifier"):
            client.TemperatureController.SetTargetTemperature(35.0, metadata=meta)
        assert lab.run.controller.loop_get("temp")["setpoint"] != 35.0
        # reads stay open while locked
        assert 20.0 < client.TemperatureController.CurrentTemperature.get(metadata=meta) < 45.0
        keyed = [*meta, lock.LockIdentifier("bench-7")]
        client.TemperatureController.SetTargetTemperature(35.0, metadata=keyed)
        assert lab.run.controller.loop_get("temp")["setpoint"] == 35.0
        # the lock is on top of the operator service: out of range is still refused
        with pytest.raises(Exception, match="refused"):
            client.TemperatureController.SetTargetTemperature(55.0, metadata=keyed)
        with pytest.raises(Exception, match="InvalidLockIdentifier"):
            lock.UnlockServer("wrong", metadata=meta)
    finally:
        lock.UnlockServer("bench-7", metadata=meta)
    assert lock.IsLocked.get(metadata=meta) is False
    with pytest.raises(Exception, match="ServerNotLocked"):
        lock.UnlockServer("bench-7", metadata=meta)
    client.TemperatureController.SetTargetTemperature(36.0, metadata=meta)  # no identifier needed
    assert lab.run.controller.loop_get("temp")["setpoint"] == 36.0


def test_a_lock_with_a_timeout_expires(lab: Lab) -> None:
    client = _client(lab)
    meta = _login(client)
    lock = client.LockController
    lock.LockServer("short", 1, metadata=meta)
    assert lock.IsLocked.get(metadata=meta) is True
    pause = threading.Event()
    for _ in range(300):  # until it expires (bound: 60 s)
        if not lock.IsLocked.get(metadata=meta):
            break
        pause.wait(0.2)
    assert lock.IsLocked.get(metadata=meta) is False
    client.TemperatureController.SetTargetTemperature(36.5, metadata=meta)
    assert lab.run.controller.loop_get("temp")["setpoint"] == 36.5
