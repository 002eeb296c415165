"""The OPC UA LADS server against the whole controller on the simulated plant, checked with
asyncua's own client over Basic256Sha256 SignAndEncrypt: the LADS tree (types resolved in the
LADS namespace), PVs with status codes, a subscription, TargetValue writes through the operator
service (audited with the OPC UA user; out of range refused with a Bad status), control-function
and functional-unit methods, and refused credentials and certificates."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import threading
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("asyncua")

from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

import edgectl
from edgectl.config import to_toml_text
from edgectl.lab.certs import make_certificate
from edgectl.lab.lads_counters import COUNTERS_STATE, RunRecord
from edgectl.lab.lads_model import LADS_URI, load_nodesets
from edgectl.lab.opcua_cache import cache_key, prepare, seal
from edgectl.lab.opcua_server import OpcUaServer
from edgectl.operator import UserStore
from edgectl.runtime.build import Run, open_run

pytestmark = pytest.mark.slow  # the server imports four nodesets (about 45 s here)
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
PASSWORD = "correct horse battery"
CLIENT_URI = "urn:edgectl:test:opcua-client"
T = TypeVar("T")


@dataclass
class Lab:
    run: Run
    url: str
    tmp: Path
    server_cert: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_cert(tmp: Path, name: str, uri: str) -> tuple[Path, Path]:
    der, key = make_certificate(uri, name, ["127.0.0.1"])
    cert_path, key_path = tmp / f"{name}.der", tmp / f"{name}.pem"
    cert_path.write_bytes(der)
    key_path.write_bytes(key)
    return cert_path, key_path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("opcua")
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    port = _free_port()
    data["opcua"] = {"enabled": True, "host": "127.0.0.1", "port": port}
    # an alarm a setpoint change raises at once (the alarm test), and an operator transition
    # out of the batch phase (the result test)
    data["alarms"]["temp_dev"] = {
        "tag": "temp_c",
        "kind": "deviation",
        "reference": "temp.sp",
        "limit": 2.0,
        "hysteresis": 0.5,
        "severity": "low",
    }
    data["recipe"]["phases"][0]["transitions"].append({"to": "fed-batch", "operator": True})
    cfg = tmp / "reactor.toml"
    cfg.write_text(to_toml_text(data), encoding="utf-8")
    store = UserStore(tmp / "run.users")
    store.add("alice", "operator", PASSWORD, full_name="Alice Operator")
    store.add("victor", "viewer", PASSWORD)
    store.add("erin", "engineer", PASSWORD)
    client_cert, client_key = _write_cert(tmp, "client", CLIENT_URI)
    stranger_cert, stranger_key = _write_cert(tmp, "stranger", CLIENT_URI)
    trusted = tmp / "run.pki" / "trusted"
    trusted.mkdir(parents=True)
    (trusted / "client.der").write_bytes(client_cert.read_bytes())
    run = open_run(cfg, speed=60.0, db=tmp / "run.db", socket_path=tmp / "run.sock")
    worker = threading.Thread(target=run.run, name="scan", daemon=True)
    worker.start()
    try:
        (face,) = run.faces
        yield Lab(
            run,
            face.endpoint,
            tmp,
            tmp / "run.pki" / "server_cert.der",
            client_cert,
            client_key,
            stranger_cert,
            stranger_key,
        )
    finally:
        run.stop()
        worker.join(timeout=60.0)
        run.close()


async def _client(
    lab: Lab, user: str | None = "alice", password: str = PASSWORD, *, stranger: bool = False
) -> Client:
    client = Client(lab.url, timeout=60.0)
    client.application_uri = CLIENT_URI
    cert, key = (
        (lab.stranger_cert, lab.stranger_key) if stranger else (lab.client_cert, lab.client_key)
    )
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(cert),
        str(key),
        server_certificate=str(lab.server_cert),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    return client


def _with(lab: Lab, body: Callable[[Client], Awaitable[T]], user: str = "alice") -> T:
    async def main() -> T:
        client = await _client(lab, user)
        async with client:
            return await body(client)

    return asyncio.run(main())


async def _vessel(client: Client) -> tuple[Any, int, int]:
    lads = await client.get_namespace_index(LADS_URI)
    ns = await client.get_namespace_index("urn:edgectl:ecoli-2L")
    di = await client.get_namespace_index("http://opcfoundation.org/UA/DI/")
    device = await client.nodes.objects.get_child([f"{di}:DeviceSet", f"{ns}:ecoli-2L"])
    unit = await device.get_child([f"{lads}:FunctionalUnitSet", f"{ns}:Vessel"])
    return unit, lads, ns


async def _function(client: Client, name: str) -> tuple[Any, int, int]:
    unit, lads, ns = await _vessel(client)
    return await unit.get_child([f"{lads}:FunctionSet", f"{ns}:{name}"]), lads, ns


def _audit(lab: Lab, target: str) -> list[Any]:
    return [r for r in lab.run.historian.audit.records() if r.target == target]


def test_browse_the_lads_tree_types_in_the_lads_namespace(lab: Lab) -> None:
    async def body(client: Client) -> dict[str, Any]:
        lads = await client.get_namespace_index(LADS_URI)
        unit, _, _ns = await _vessel(client)
        device = await unit.get_parent()
        device = await device.get_parent()  # FunctionalUnitSet → device
        fset = await unit.get_child(f"{lads}:FunctionSet")
        functions = {
            (await c.read_browse_name()).Name: await c.read_type_definition()
            for c in await fset.get_children()
        }
        di = await client.get_namespace_index("http://opcfoundation.org/UA/DI/")
        ident = {
            name: await (await device.get_child(f"{di}:{name}")).read_value()
            for name in ("SoftwareRevision", "SerialNumber")
        }
        state = await unit.get_child([f"{lads}:FunctionalUnitState", "0:CurrentState"])
        return {
            "lads": lads,
            "device_type": await device.read_type_definition(),
            "unit_type": await unit.read_type_definition(),
            "functions": functions,
            "ident": ident,
            "state": (await state.read_value()).Text,
            "ns_array": await client.get_namespace_array(),
        }

    got = _with(lab, body)
    lads = got["lads"]
    assert got["ns_array"][lads] == LADS_URI
    assert got["device_type"] == ua.NodeId(1002, lads)  # LADSDeviceType
    assert got["unit_type"] == ua.NodeId(1003, lads)  # FunctionalUnitType
    control, sensor = ua.NodeId(1009, lads), ua.NodeId(1016, lads)
    assert {n for n, t in got["functions"].items() if t == control} == {
        f"{loop}_control" for loop in ("temp", "ph", "ph_acid", "do", "feed", "foam")
    }
    assert {"temp_c", "ph", "do_pct", "stirrer_rpm"} <= {
        n for n, t in got["functions"].items() if t == sensor
    }
    assert got["ident"]["SoftwareRevision"] == edgectl.__version__
    assert got["ident"]["SerialNumber"] == "ecoli-2L"
    assert got["state"] == "Running"


def test_pvs_with_status_codes_units_and_ranges(lab: Lab) -> None:
    async def body(client: Client) -> dict[str, Any]:
        fn, lads, _ = await _function(client, "temp_control")
        current = await fn.get_child(f"{lads}:CurrentValue")
        target = await fn.get_child(f"{lads}:TargetValue")
        return {
            "current": await current.read_data_value(),
            "target": await target.read_value(),
            "range": await (await target.get_child("0:EURange")).read_value(),
            "eu": await (await target.get_child("0:EngineeringUnits")).read_value(),
        }

    got = _with(lab, body)
    assert got["current"].StatusCode.is_good()
    assert 20.0 < got["current"].Value.Value < 45.0
    assert got["target"] == pytest.approx(lab.run.controller.loop_get("temp")["setpoint"])
    assert (got["range"].Low, got["range"].High) == (10.0, 40.0)  # [operator.loops.temp]
    assert got["eu"].DisplayName.Text == "°C"
    assert got["eu"].UnitId == 4408652  # UNECE "CEL"


def test_a_subscribed_client_receives_value_changes(lab: Lab) -> None:
    async def body(client: Client) -> list[float]:
        fn, lads, _ = await _function(client, "do_pct")
        node = await fn.get_child(f"{lads}:SensorValue")
        seen: list[float] = []
        changed = asyncio.Event()

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                seen.append(float(val))
                if len(set(seen)) >= 3:
                    changed.set()

        sub = await client.create_subscription(50, Handler())
        await sub.subscribe_data_change(node)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), 120.0)  # a bound, not a timing check
        await sub.delete()
        return seen

    seen = _with(lab, body)
    assert len(set(seen)) >= 3, f"only {seen} received"
    assert all(math.isfinite(v) for v in seen)


def test_target_value_write_is_audited_with_the_opc_user_and_out_of_range_refused(
    lab: Lab,
) -> None:
    async def body(client: Client) -> str:
        fn, lads, _ = await _function(client, "temp_control")
        target = await fn.get_child(f"{lads}:TargetValue")
        await target.write_value(ua.Variant(36.5, ua.VariantType.Double))
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await target.write_value(ua.Variant(55.0, ua.VariantType.Double))
        return type(refused.value).__name__

    refused = _with(lab, body)
    assert refused == "BadOutOfRange"
    assert lab.run.controller.loop_get("temp")["setpoint"] == 36.5
    records = _audit(lab, "loops.temp.setpoint")
    applied = [r for r in records if r.action == "set" and r.new_value == 36.5]
    assert applied
    assert applied[-1].actor == "alice"
    assert "OPC UA" in applied[-1].reason
    assert records[-1].action == "refused"
    assert records[-1].actor == "alice"
    assert records[-1].new_value["rule"] == "limits"


def test_a_viewer_cannot_write_a_target_value(lab: Lab) -> None:
    async def body(client: Client) -> str:
        fn, lads, _ = await _function(client, "ph_control")
        target = await fn.get_child(f"{lads}:TargetValue")
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await target.write_value(ua.Variant(7.2, ua.VariantType.Double))
        return type(refused.value).__name__

    assert _with(lab, body, user="victor") == "BadUserAccessDenied"
    last = _audit(lab, "loops.ph.setpoint")[-1]
    assert (last.actor, last.action, last.new_value["rule"]) == ("victor", "refused", "rights")
    assert lab.run.controller.loop_get("ph")["setpoint"] == 7.0


def test_control_function_stop_start_and_start_with_target_value(lab: Lab) -> None:
    async def call(name: str, *args: Any) -> None:
        client = await _client(lab)
        async with client:
            fn, lads, _ = await _function(client, "ph_control")
            state = await fn.get_child(f"{lads}:ControlFunctionState")
            await state.call_method(f"{lads}:{name}", *args)

    asyncio.run(call("Stop"))
    assert lab.run.controller.loop_get("ph")["mode"] == "off"
    asyncio.run(call("Start"))
    assert lab.run.controller.loop_get("ph")["mode"] == "auto"
    asyncio.run(call("StartWithTargetValue", ua.Variant(7.1, ua.VariantType.Double)))
    settings = lab.run.controller.loop_get("ph")
    assert (settings["setpoint"], settings["mode"]) == (7.1, "auto")
    modes = [r for r in _audit(lab, "loops.ph.mode") if r.action == "set"]
    assert [r.new_value for r in modes[-3:]] == ["off", "auto", "auto"]
    assert {r.actor for r in modes[-3:]} == {"alice"}


def test_functional_unit_stop_needs_an_e_signature_and_unknown_phase_is_refused(
    lab: Lab,
) -> None:
    async def body(client: Client) -> list[str]:
        unit, lads, _ = await _vessel(client)
        state = await unit.get_child(f"{lads}:FunctionalUnitState")
        out = []
        for name, args in (("Stop", []), ("StartProgram", ["no-such-phase"])):
            with pytest.raises(ua.UaStatusCodeError) as refused:
                await state.call_method(f"{lads}:{name}", *args)
            out.append(type(refused.value).__name__)
        return out

    assert _with(lab, body) == ["BadUserAccessDenied", "BadOutOfRange"]
    assert not lab.run.controller.stopped.is_set()
    last = _audit(lab, "run")[-1]
    assert (last.actor, last.action, last.new_value["rule"]) == ("alice", "refused", "e-signature")


def test_wrong_password_is_refused_and_audited(lab: Lab) -> None:
    async def main() -> None:
        client = await _client(lab, "alice", "not the password")
        with pytest.raises(ua.UaError):
            await client.connect()
        with contextlib.suppress(Exception):
            await client.disconnect()

    asyncio.run(main())
    failed = [r for r in lab.run.historian.audit.records() if r.action == "login_failed"]
    assert failed
    assert failed[-1].actor == "alice"


def test_anonymous_sessions_are_refused_by_default(lab: Lab) -> None:
    async def main() -> None:
        client = await _client(lab, None)
        with pytest.raises(ua.UaError):
            await client.connect()
        with contextlib.suppress(Exception):
            await client.disconnect()

    asyncio.run(main())


def test_an_untrusted_client_certificate_is_refused(lab: Lab) -> None:
    async def main() -> str:
        client = await _client(lab, stranger=True)
        with pytest.raises(ua.UaError) as refused:
            await client.connect()
        with contextlib.suppress(Exception):
            await client.disconnect()
        return type(refused.value).__name__

    assert asyncio.run(main()) == "BadCertificateUntrusted"
    assert lab.run.controller.info()["scans"] > 0


class _Events:
    """An asyncua subscription handler collecting condition events (by field name)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def event_notification(self, event: Any) -> None:
        self.seen.append({k: v.Value for k, v in event.get_event_props_as_fields_dict().items()})
        self.arrived.set()

    async def wait_for(self, since: int = 0, **fields: Any) -> dict[str, Any]:
        """The first event with these field values, from the ``since``-th event received (a
        bound of 120 s, not a timing check)."""

        def match() -> dict[str, Any] | None:
            for e in self.seen[since:]:
                if all(e.get(k) == v for k, v in fields.items()):
                    return e
            return None

        async def loop() -> dict[str, Any]:
            while (found := match()) is None:
                self.arrived.clear()
                await self.arrived.wait()
            return found

        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(loop(), 120.0)
        raise AssertionError(
            f"no event with {fields}; got {[e.get('ConditionName') for e in self.seen]}"
        )


def test_an_alarm_is_a_condition_event_acknowledged_through_the_operator_service(
    lab: Lab,
) -> None:
    sp0 = float(lab.run.controller.loop_get("temp")["setpoint"])

    async def main() -> dict[str, Any]:
        alice, victor = await _client(lab), await _client(lab, "victor")
        async with alice, victor:
            unit, lads, _ = await _vessel(alice)
            fn, _, _ = await _function(alice, "temp_control")
            target = await fn.get_child(f"{lads}:TargetValue")
            events = _Events()
            sub = await alice.create_subscription(50, events)
            # the deviation alarm's type too, for its own fields (LimitState, SetpointNode)
            kinds = [ua.ObjectIds.AlarmConditionType, ua.ObjectIds.ExclusiveDeviationAlarmType]
            await sub.subscribe_events(unit, kinds)
            # the setpoint 4 °C below the temperature: the deviation alarm raises
            await target.write_value(ua.Variant(sp0 - 4.0, ua.VariantType.Double))
            raised = await events.wait_for(ConditionName="temp_dev", **{"ActiveState/Id": True})
            condition = alice.get_node(raised["NodeId"])
            # a viewer sees it (ConditionRefresh of a late subscription) but cannot acknowledge
            late = _Events()
            vsub = await victor.create_subscription(50, late)
            await vsub.subscribe_events(ua.ObjectIds.Server, ua.ObjectIds.AlarmConditionType)
            refresh = victor.get_node(ua.ObjectIds.ConditionType)
            await refresh.call_method(
                ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
                ua.Variant(vsub.subscription_id, ua.VariantType.UInt32),
            )
            replayed = await late.wait_for(ConditionName="temp_dev")
            eid = ua.Variant(raised["EventId"], ua.VariantType.ByteString)
            with pytest.raises(ua.UaStatusCodeError) as viewer_refused:
                await victor.get_node(raised["NodeId"]).call_method(
                    "0:Acknowledge", eid, ua.LocalizedText("viewer")
                )
            with pytest.raises(ua.UaStatusCodeError) as unknown_event:
                await condition.call_method(
                    "0:Acknowledge",
                    ua.Variant(b"not an event id", ua.VariantType.ByteString),
                    ua.LocalizedText("?"),
                )
            await condition.call_method("0:Acknowledge", eid, ua.LocalizedText("seen, on purpose"))
            acked = await events.wait_for(ConditionName="temp_dev", **{"AckedState/Id": True})
            with pytest.raises(ua.UaStatusCodeError) as again:
                await condition.call_method("0:Acknowledge", eid, ua.LocalizedText("twice"))
            acked_state = lab.run.controller.alarms()
            # the setpoint back: the alarm clears, the condition is no longer retained
            await target.write_value(ua.Variant(sp0, ua.VariantType.Double))
            cleared = await events.wait_for(ConditionName="temp_dev", Retain=False)
            await sub.delete()
            await vsub.delete()
            return {
                "raised": raised,
                "replayed": replayed,
                "viewer": type(viewer_refused.value).__name__,
                "unknown": type(unknown_event.value).__name__,
                "again": type(again.value).__name__,
                "acked": acked,
                "acked_state": acked_state,
                "cleared": cleared,
                "condition_type": await condition.read_type_definition(),
                "condition_parent": (await (await condition.get_parent()).read_browse_name()).Name,
                "setpoint_node": raised.get("SetpointNode"),
                "target": target.nodeid,
            }

    got = asyncio.run(main())
    raised, acked, cleared = got["raised"], got["acked"], got["cleared"]
    assert raised["EventType"] == ua.NodeId(ua.ObjectIds.ExclusiveDeviationAlarmType)
    assert got["condition_type"] == raised["EventType"]
    assert got["condition_parent"] == "temp_c"  # the sensor function of the alarm's tag
    assert raised["Severity"] == 300  # edgectl "low"
    assert raised["SourceName"] == "temp_c"
    assert (raised["Retain"], raised["AckedState/Id"]) == (True, False)
    assert raised["LimitState/CurrentState"].Text == "High"  # temperature above the setpoint
    assert got["setpoint_node"] == got["target"]
    assert got["replayed"]["EventId"] == raised["EventId"]  # the retained state, replayed
    assert got["viewer"] == "BadUserAccessDenied"
    assert got["unknown"] == "BadEventIdUnknown"
    assert got["again"] == "BadConditionBranchAlreadyAcked"
    assert (acked["ActiveState/Id"], acked["ClientUserId"]) == (True, "alice")
    assert acked["Comment"].Text == "seen, on purpose"
    assert {a["name"]: a["state"] for a in got["acked_state"]}.get("temp_dev") == "acked"
    assert (cleared["ActiveState/Id"], cleared["AckedState/Id"]) == (False, True)
    records = _audit(lab, "alarms.temp_dev")
    refused = [(r.actor, r.new_value["rule"]) for r in records if r.action == "refused"]
    assert refused == [("victor", "rights"), ("alice", "validation")]  # viewer; acked twice
    ack = [r for r in records if r.action == "ack"]
    assert (ack[-1].actor, ack[-1].reason) == ("alice", "OPC UA Acknowledge: seen, on purpose")


def test_operation_counters_and_a_finished_phase_in_the_result_set(lab: Lab) -> None:
    async def body(client: Client) -> dict[str, Any]:
        di = await client.get_namespace_index("http://opcfoundation.org/UA/DI/")
        machinery = await client.get_namespace_index("http://opcfoundation.org/UA/Machinery/")
        unit, lads, _ = await _vessel(client)
        device = await (await unit.get_parent()).get_parent()
        counters = await device.get_child(
            [f"{machinery}:MachineryBuildingBlocks", f"{di}:OperationCounters"]
        )

        async def read() -> dict[str, Any]:
            return {
                n: await (await counters.get_child(f"{di}:{n}")).read_value()
                for n in ("PowerOnDuration", "OperationDuration", "OperationCycleCounter")
            }

        before = await read()
        state = await unit.get_child(f"{lads}:FunctionalUnitState")
        await state.call_method(f"{lads}:StartProgram", "fed-batch")  # an operator transition
        results = await unit.get_child([f"{lads}:ProgramManager", f"{lads}:ResultSet"])
        for _ in range(600):  # a bound (60 s), not a timing check
            children = await results.get_children(nodeclassmask=ua.NodeClass.Object)
            names = [
                (await c.read_browse_name()).Name
                for n in children[:1]
                for c in await n.get_children()
            ]
            if "DeviceProgramRunId" in names:  # written last: the result is complete
                break
            await asyncio.sleep(0.1)
        (result,) = children
        fields = {
            n: await (await result.get_child(f"{lads}:{n}")).read_value()
            for n in ("Started", "Stopped", "TotalRuntime", "DeviceProgramRunId")
        }
        template = await result.get_child([f"{lads}:ProgramTemplate", f"{lads}:DeviceTemplateId"])
        after = await read()
        return {
            "before": before,
            "after": after,
            "name": (await result.read_browse_name()).Name,
            "type": await result.read_type_definition(),
            "template": await template.read_value(),
            "lads": lads,
            **fields,
        }

    got = _with(lab, body)
    before, after = got["before"], got["after"]
    assert before["PowerOnDuration"] > 0.0
    assert after["OperationDuration"] >= before["OperationDuration"] > 0.0
    assert after["OperationDuration"] <= lab.run.controller.info()["time_s"] * 1000.0
    assert after["OperationCycleCounter"] == before["OperationCycleCounter"] + 1
    timeline = lab.run.controller.recipe_status()["timeline"]
    assert after["OperationCycleCounter"] == len(timeline)
    assert got["type"] == ua.NodeId(1021, got["lads"])  # ResultType
    assert (got["name"], got["template"]) == ("1_batch", "batch")
    assert got["DeviceProgramRunId"] == "ecoli-2L/1"
    batch = timeline[0]
    assert (batch["phase"], batch["running"]) == ("batch", False)
    span_ms = (got["Stopped"] - got["Started"]).total_seconds() * 1000.0
    assert got["TotalRuntime"] == pytest.approx(batch["duration_s"] * 1000.0, abs=1.0)
    assert span_ms == pytest.approx(got["TotalRuntime"], abs=1.0)
    assert lab.run.controller.info()["phase"] == "fed-batch"
    requested = [r for r in _audit(lab, "recipe.phase") if r.action == "phase_request"]
    assert [(r.actor, r.new_value) for r in requested] == [("alice", "fed-batch")]


async def _call_refused(node: Any, method: Any, *args: Any) -> str:
    with pytest.raises(ua.UaStatusCodeError) as refused:
        await node.call_method(method, *args)
    return type(refused.value).__name__


def test_condition_shelve_comment_confirm_enable_through_the_operator_service(lab: Lab) -> None:
    sp0 = float(lab.run.controller.loop_get("temp")["setpoint"])
    hour_ms = ua.Variant(3_600_000.0, ua.VariantType.Double)
    log0 = len(lab.run.controller.alarm_log(last=5000))

    async def main() -> dict[str, Any]:
        alice, victor, erin = [await _client(lab, u) for u in ("alice", "victor", "erin")]
        async with alice, victor, erin:
            unit, lads, _ = await _vessel(alice)
            fn, _, _ = await _function(alice, "temp_control")
            target = await fn.get_child(f"{lads}:TargetValue")
            events = _Events()
            sub = await alice.create_subscription(50, events)
            kinds = [ua.ObjectIds.AlarmConditionType, ua.ObjectIds.ExclusiveDeviationAlarmType]
            await sub.subscribe_events(unit, kinds)
            temp_c = await _function(alice, "temp_c")
            condition = await temp_c[0].get_child(f"{temp_c[2]}:temp_dev")
            shelving = await condition.get_child("0:ShelvingState")
            out: dict[str, Any] = {"refused": {}}
            refused = out["refused"]
            refused["over_max"] = await _call_refused(
                shelving, "0:TimedShelve", ua.Variant(9 * 3_600_000.0, ua.VariantType.Double)
            )
            refused["viewer_shelve"] = await _call_refused(
                victor.get_node(shelving.nodeid), "0:OneShotShelve"
            )
            refused["unshelve_unshelved"] = await _call_refused(shelving, "0:Unshelve")
            # shelved for an hour: the event of the shelve, then the alarm raises unannounced
            n = len(events.seen)
            await shelving.call_method("0:TimedShelve", hour_ms)
            shelved = await events.wait_for(
                n, ConditionName="temp_dev", SuppressedOrShelved=True, **{"ActiveState/Id": False}
            )
            out["unshelve_time"] = await (await shelving.get_child("0:UnshelveTime")).read_value()
            await target.write_value(ua.Variant(sp0 - 4.0, ua.VariantType.Double))
            active = await condition.get_child(["0:ActiveState", "0:Id"])
            for _ in range(1200):  # a bound (120 s), not a timing check
                if await active.read_value():
                    break
                await asyncio.sleep(0.1)
            out["active_node"] = await active.read_value()
            refused["again"] = await _call_refused(shelving, "0:TimedShelve", hour_ms)
            n = len(events.seen)
            await shelving.call_method("0:Unshelve")
            unshelved = await events.wait_for(
                n, ConditionName="temp_dev", SuppressedOrShelved=False, **{"ActiveState/Id": True}
            )
            between = events.seen[events.seen.index(shelved) + 1 : events.seen.index(unshelved)]
            out["while_shelved"] = [e for e in between if e.get("ConditionName") == "temp_dev"]
            eid = ua.Variant(unshelved["EventId"], ua.VariantType.ByteString)
            refused["confirm_unacked"] = await _call_refused(
                condition, "0:Confirm", eid, ua.LocalizedText("too early")
            )
            refused["unknown_event"] = await _call_refused(
                condition,
                "0:AddComment",
                ua.Variant(b"no such event", ua.VariantType.ByteString),
                ua.LocalizedText("?"),
            )
            n = len(events.seen)
            await condition.call_method("0:AddComment", eid, ua.LocalizedText("heater checked"))
            out["commented"] = await events.wait_for(
                n,
                ConditionName="temp_dev",
                ClientUserId="alice",
                Comment=ua.LocalizedText("heater checked"),
            )
            n = len(events.seen)
            await condition.call_method("0:Acknowledge", eid, ua.LocalizedText("seen"))
            await events.wait_for(n, ConditionName="temp_dev", **{"AckedState/Id": True})
            n = len(events.seen)
            await condition.call_method("0:Confirm", eid, ua.LocalizedText("relay replaced"))
            out["confirmed"] = await events.wait_for(
                n, ConditionName="temp_dev", **{"ConfirmedState/Id": True}
            )
            refused["confirm_twice"] = await _call_refused(
                condition, "0:Confirm", eid, ua.LocalizedText("twice")
            )
            # disabling is an engineer's right; the type's methods, called on the condition
            disable = ua.NodeId(ua.ObjectIds.ConditionType_Disable)
            refused["operator_disable"] = await _call_refused(condition, disable)
            erin_condition = erin.get_node(condition.nodeid)
            n = len(events.seen)
            await erin_condition.call_method(disable)
            out["disabled"] = await events.wait_for(
                n, ConditionName="temp_dev", **{"EnabledState/Id": False}
            )
            refused["disable_twice"] = await _call_refused(erin_condition, disable)
            refused["comment_disabled"] = await _call_refused(
                condition, "0:AddComment", eid, ua.LocalizedText("while disabled")
            )
            n = len(events.seen)
            await erin_condition.call_method(ua.NodeId(ua.ObjectIds.ConditionType_Enable))
            out["enabled"] = await events.wait_for(
                n, ConditionName="temp_dev", **{"EnabledState/Id": True}
            )
            n = len(events.seen)
            await target.write_value(ua.Variant(sp0, ua.VariantType.Double))
            await events.wait_for(n, ConditionName="temp_dev", Retain=False)
            await sub.delete()
            out["shelved"] = shelved
            out["unshelved"] = unshelved
            return out

    got = asyncio.run(main())
    assert got["refused"] == {
        "over_max": "BadShelvingTimeOutOfRange",
        "viewer_shelve": "BadUserAccessDenied",
        "unshelve_unshelved": "BadConditionNotShelved",
        "again": "BadConditionAlreadyShelved",  # a timed shelve already (no re-shelve)
        "confirm_unacked": "BadInvalidState",
        "unknown_event": "BadEventIdUnknown",
        "confirm_twice": "BadConditionBranchAlreadyConfirmed",
        "operator_disable": "BadUserAccessDenied",
        "disable_twice": "BadConditionAlreadyDisabled",
        "comment_disabled": "BadConditionDisabled",
    }
    shelved, unshelved = got["shelved"], got["unshelved"]
    assert shelved["ShelvingState/CurrentState"].Text == "TimedShelved"
    assert 0.0 < got["unshelve_time"] <= 3_600_000.0
    assert got["active_node"] is True
    assert got["while_shelved"] == []  # the raise was not evented while shelved
    assert unshelved["ShelvingState/CurrentState"].Text == "Unshelved"
    assert unshelved["Retain"] is True
    assert got["confirmed"]["ClientUserId"] == "alice"
    assert got["confirmed"]["Comment"].Text == "relay replaced"
    assert (got["disabled"]["Retain"], got["disabled"]["EnabledState"].Text) == (False, "Disabled")
    assert (got["enabled"]["Retain"], got["enabled"]["ActiveState/Id"]) == (True, True)
    # nothing recorded is lost: the raise during the shelve is in the alarm log
    log = [a for a in lab.run.controller.alarm_log(last=5000)[log0:] if a["name"] == "temp_dev"]
    assert [a["transition"] for a in log][:2] == ["raise", "ack"]
    records = _audit(lab, "alarms.temp_dev")
    done = [(r.actor, r.action) for r in records if r.action != "refused"]
    assert done[-7:] == [
        ("alice", "shelve"),  # TimedShelve
        ("alice", "shelve"),  # Unshelve
        ("alice", "comment"),
        ("alice", "ack"),
        ("alice", "confirm"),
        ("erin", "enable"),  # Disable
        ("erin", "enable"),  # Enable
    ]
    assert [r.new_value for r in records if r.action == "enable"][-2:] == [
        {"enabled": False},
        {"enabled": True},
    ]
    (comment,) = [r for r in records if r.action == "comment"]
    assert (comment.new_value, comment.reason) == ("heater checked", "OPC UA AddComment")
    (confirm,) = [r for r in records if r.action == "confirm"]
    assert confirm.reason == "OPC UA Confirm: relay replaced"
    refusals = [(r.actor, r.new_value["rule"]) for r in records if r.action == "refused"]
    assert refusals[-9:] == [
        ("alice", "limits"),  # over MaxTimeShelved
        ("victor", "rights"),
        ("alice", "validation"),  # not shelved
        ("alice", "validation"),  # already shelved
        ("alice", "validation"),  # confirm before the acknowledgement
        ("alice", "validation"),  # confirmed twice
        ("alice", "rights"),  # an operator may not disable
        ("erin", "validation"),  # already disabled
        ("alice", "validation"),  # comment on a disabled alarm
    ]


def test_counters_continue_over_runs_by_the_run_time_base() -> None:
    """A resumed run (same time base) continues its clock time and phases from the saved
    counters; a new run adds its own to the runs before it; PowerOnDuration adds up."""
    first = RunRecord("r", "urn:x")
    first.count({"time_base_s": 100.0, "time_s": 50.0}, {"timeline": [{}, {}]})
    saved = first.snapshot()
    assert saved is not None
    resumed = RunRecord("r", "urn:x")
    resumed.resume(saved)
    resumed.count({"time_base_s": 100.0, "time_s": 80.0}, {"timeline": [{}, {}, {}]})
    power, operation, cycles = resumed.values()
    assert power >= saved["power_on_ms"]
    assert (operation, cycles) == (80_000.0, 3)  # the same run: not counted twice
    later = RunRecord("r", "urn:x")
    later.resume(resumed.snapshot())
    later.count({"time_base_s": 900.0, "time_s": 10.0}, {"timeline": [{}]})
    assert later.values()[1:] == (90_000.0, 4)  # a new run: added to the one before
    fresh = RunRecord("r", "urn:x")
    fresh.resume({"power_on_ms": "garbage", "cycles": -3})
    fresh.count({"time_base_s": 1.0, "time_s": 2.0}, None)
    assert fresh.values()[1:] == (2000.0, 0)


async def _counters(client: Client) -> dict[str, Any]:
    di = await client.get_namespace_index("http://opcfoundation.org/UA/DI/")
    machinery = await client.get_namespace_index("http://opcfoundation.org/UA/Machinery/")
    unit, _, _ = await _vessel(client)
    device = await (await unit.get_parent()).get_parent()
    counters = await device.get_child(
        [f"{machinery}:MachineryBuildingBlocks", f"{di}:OperationCounters"]
    )
    return {
        n: await (await counters.get_child(f"{di}:{n}")).read_value()
        for n in ("PowerOnDuration", "OperationDuration", "OperationCycleCounter")
    }


def test_operation_counters_continue_after_the_server_restarts(lab: Lab) -> None:
    before = _with(lab, _counters)
    (old,) = lab.run.faces
    old.close()  # saves the counters in the historian's state table
    saved = lab.run.historian.load_state(COUNTERS_STATE)
    assert saved["power_on_ms"] >= before["PowerOnDuration"] > 0.0
    assert saved["run_cycles"] == before["OperationCycleCounter"]
    # a known lifetime before this server: PowerOnDuration must continue from it
    lifetime_ms = saved["power_on_ms"] + 1e9
    lab.run.historian.save_state(COUNTERS_STATE, {**saved, "power_on_ms": lifetime_ms})
    # the first start built the standard address-space cache beside the database and sealed
    # it; the restarted server (same default folder) serves the LADS tree from it
    assert old.cache_dir == lab.run.historian.path.with_suffix(".opcua-cache")
    assert (old.cache_dir / f"standard-aspace-{cache_key()}").is_file()
    t0 = time.monotonic()
    new = OpcUaServer(old.service, old.config, old.pki).start()
    assert new.cache_dir == old.cache_dir
    lab.run.faces[0] = new  # closed by the fixture
    after = _with(lab, _counters)
    up_ms = (time.monotonic() - t0) * 1000.0
    assert new.endpoint == lab.url
    assert lifetime_ms <= after["PowerOnDuration"] <= lifetime_ms + up_ms
    assert after["OperationDuration"] >= before["OperationDuration"]
    assert after["OperationDuration"] <= lab.run.controller.info()["time_s"] * 1000.0
    assert after["OperationCycleCounter"] == before["OperationCycleCounter"]


def test_address_space_cache_is_keyed_sealed_and_rebuilt_when_stale(tmp_path: Path) -> None:
    from asyncua import Server

    folder = tmp_path / "cache"
    folder.mkdir()
    for stale in ("standard-aspace-0123456789abcdef", "standard-aspace-0123456789abcdef.dat"):
        (folder / stale).write_text("another asyncua's cache")
    shelf = prepare(folder)
    assert shelf.name == f"standard-aspace-{cache_key()}"
    assert not any(p.name.startswith("standard-aspace-0123") for p in folder.iterdir())
    # an interrupted build (shelve files, no seal) is removed so asyncua builds it again
    (folder / (shelf.name + ".dat")).write_bytes(b"half a shelf")
    assert prepare(folder) == shelf
    assert not (folder / (shelf.name + ".dat")).exists()

    async def start(loaded: list[int]) -> None:
        server = Server()
        await server.init(shelf)
        seal(shelf)
        await load_nodesets(server)
        lads = await server.get_namespace_index(LADS_URI)
        device_type = server.get_node(ua.NodeId(1002, lads))  # LADSDeviceType
        assert (await device_type.read_browse_name()).Name == "LADSDeviceType"
        alarm_type = server.get_node(ua.NodeId(ua.ObjectIds.ExclusiveLevelAlarmType))
        assert (await alarm_type.read_browse_name()).Name == "ExclusiveLevelAlarmType"
        assert LADS_URI in await server.get_namespace_array()
        loaded.append(len(server.iserver.aspace.keys()))

    first: list[int] = []
    asyncio.run(start(first))  # builds and seals the shelf
    assert shelf.is_file()
    assert any(folder.glob(shelf.name + ".*"))
    again: list[int] = []
    asyncio.run(start(again))  # loads it: only the nodes in use are in memory
    assert again[0] < first[0] / 2


def test_signed_stop_needs_password_meaning_and_reason_and_is_audited(lab: Lab) -> None:
    """Last in the file: it stops the fixture's run."""

    def s(text: str) -> ua.Variant:
        return ua.Variant(text, ua.VariantType.String)

    async def main() -> dict[str, str]:
        alice, victor = await _client(lab), await _client(lab, "victor")
        async with alice, victor:
            unit, lads, ns = await _vessel(alice)
            state = await unit.get_child(f"{lads}:FunctionalUnitState")
            method = f"{ns}:SignedStop"
            out = {
                "wrong_password": await _call_refused(
                    state, method, s("not it"), s("approved"), s("end of test")
                ),
                "no_reason": await _call_refused(state, method, s(PASSWORD), s("approved"), s(" ")),
                "no_meaning": await _call_refused(state, method, s(PASSWORD), s(""), s("end")),
                "missing_args": await _call_refused(state, method, s(PASSWORD)),
                "viewer": await _call_refused(
                    victor.get_node(state.nodeid), method, s(PASSWORD), s("approved"), s("end")
                ),
            }
            assert not lab.run.controller.stopped.is_set()
            await state.call_method(method, s(PASSWORD), s("approved"), s("end of test"))
            return out

    refused = asyncio.run(main())
    assert refused == {
        "wrong_password": "BadUserAccessDenied",
        "no_reason": "BadUserAccessDenied",
        "no_meaning": "BadInvalidArgument",
        "missing_args": "BadInvalidArgument",
        "viewer": "BadUserAccessDenied",
    }
    assert lab.run.controller.stopped.is_set()
    records = _audit(lab, "run")
    rules = [(r.actor, r.new_value["rule"]) for r in records if r.action == "refused"][-4:]
    assert rules == [
        ("alice", "e-signature"),  # wrong password
        ("alice", "e-signature"),  # no reason
        ("alice", "meaning"),
        ("victor", "rights"),
    ]
    (stop,) = [r for r in records if r.action == "stop"]
    assert stop.actor == "alice"
    assert stop.reason == (
        "OPC UA SignedStop: end of test [e-signed by alice (Alice Operator), meaning: approved]"
    )
    assert (
        lab.run.controller.stop_reason == "operator stop by alice: OPC UA SignedStop: end of test"
    )
