"""The fleet against a real mosquitto and a real PostgreSQL 15 (private instances on loopback,
started by :mod:`edgectl.fleet.localsvc`; ``scripts/fleet-deps.sh`` installs them if missing).

Seeded reactors record into real historians while their publishers send Sparkplug B; the broker
is stopped and restarted, the collector killed -9 and restarted, one publisher killed -9 in the
middle of its backlog replay and restarted. At the end every reactor's rows in PostgreSQL equal
its own historian's, by count and checksum, and each outage's death and re-birth is recorded.
A real controller with ``[mqtt]`` answers NCMD commands through its operator service.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from tests._fleet import (
    ROOT,
    SeededReactor,
    checksum,
    collector_rows,
    count_rows,
    edgectl,
    historian_rows,
    new_database,
    services,
    wait_for,
)

from edgectl.config import to_toml_text
from edgectl.fleet.collector import Collector, fleet_status
from edgectl.fleet.config import MqttConfig
from edgectl.fleet.localsvc import LocalMosquitto, LocalPostgres
from edgectl.fleet.publisher import EdgePublisher, cursor_path_of, read_cursor
from edgectl.fleet.sparkplug import Payload, metric_quality, parse_topic, quality_code, topic
from edgectl.operator import UserStore
from edgectl.quality import Quality
from edgectl.runtime.build import open_run


@pytest.fixture(scope="module")
def fleet_services() -> Iterator[tuple[LocalMosquitto, LocalPostgres]]:
    yield from services()


def test_topics_and_quality_round_trip() -> None:
    t = topic("lab", "DDATA", "r01", "vessel")
    assert t == "spBv1.0/lab/DDATA/r01/vessel"
    assert parse_topic(t).device == "vessel"
    assert parse_topic("spBv1.0/lab/NDEATH/r01").kind == "NDEATH"
    with pytest.raises(ValueError, match="not a Sparkplug B topic"):
        parse_topic("spBv1.0/lab/BOGUS/r01")
    p = Payload()
    for q in Quality:
        m = p.metrics.add()
        if q is not Quality.GOOD:
            m.properties.keys.append("Quality")
            m.properties.values.add(type=3, int_value=quality_code(q))
    decoded = Payload.FromString(p.SerializeToString())
    assert [metric_quality(m) for m in decoded.metrics] == list(Quality)


def _collector_subscribed(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn) as con:
            return bool(con.execute("SELECT COUNT(*) FROM fleet_collector").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return False


def _lifecycle(dsn: str, reactor: str) -> list[str]:
    with psycopg.connect(dsn) as con:
        rows = con.execute(
            "SELECT kind FROM fleet_lifecycle WHERE reactor = %s ORDER BY id", (reactor,)
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.slow
def test_fleet_outages_lose_and_duplicate_nothing(
    tmp_path: Path, fleet_services: tuple[LocalMosquitto, LocalPostgres]
) -> None:
    broker, pg = fleet_services
    dsn = new_database(pg, "fleet_outages")
    group = "outages"
    collector = edgectl("collect", "--broker", broker.url, "--db", dsn, "--group", group)
    wait_for("the collector's subscription", lambda: _collector_subscribed(dsn))
    names = ["r1", "r2", "r3"]
    reactors = {n: SeededReactor(tmp_path / f"{n}.db", seed=i) for i, n in enumerate(names)}
    backlog3 = reactors["r3"].prefill(30_000)  # r3 has not reached the broker for a while
    for r in reactors.values():
        r.start()
    pubs = {
        n: EdgePublisher(
            MqttConfig(broker=broker.url, group=group, batch=200), reactors[n].path, node=n
        ).start()
        for n in ("r1", "r2")
    }
    p3: Any = None
    try:
        wait_for("r1's first rows", lambda: count_rows(dsn, "r1") > 500)
        # 1. the broker goes away; the reactors keep recording
        broker.stop()
        scans = reactors["r1"].scans
        time.sleep(2.0)
        assert reactors["r1"].scans > scans  # recording never waits for the network
        broker.start()
        wait_for("r1 reconnected", lambda: pubs["r1"].stats.connects >= 2)
        # 2. the collector is killed -9 and restarted
        collector.send_signal(signal.SIGKILL)
        collector.wait()
        time.sleep(1.0)
        collector = edgectl("collect", "--broker", broker.url, "--db", dsn, "--group", group)
        # 3. r3 has a backlog (never published); its publisher is killed -9 mid-replay
        cursor3 = cursor_path_of(reactors["r3"].path)
        p3 = edgectl("publish", str(reactors["r3"].path), "--broker", broker.url,
                     "--group", group, "--node", "r3")  # fmt: skip
        wait_for("r3 replaying", lambda: read_cursor(cursor3)["sample_id"] > 0)
        p3.send_signal(signal.SIGKILL)
        p3.wait()
        mid_replay = read_cursor(cursor3)["sample_id"]
        assert 0 < mid_replay < backlog3  # killed in the middle of its backlog
        p3 = edgectl("publish", str(reactors["r3"].path), "--broker", broker.url,
                     "--group", group, "--node", "r3")  # fmt: skip
    finally:
        for r in reactors.values():
            r.stop()
    try:
        for n in names:
            want = len(historian_rows(reactors[n].path))
            wait_for(f"{n}: {want} rows", lambda n=n, want=want: count_rows(dsn, n) >= want)
        for n in names:
            mine, theirs = historian_rows(reactors[n].path), collector_rows(dsn, n)
            assert len(theirs) == len(mine), n
            assert checksum(theirs) == checksum(mine), n
        # the backlog went as historical data; each outage left a death and a re-birth
        with psycopg.connect(dsn) as con:
            hist = con.execute(
                "SELECT COUNT(*) FILTER (WHERE historical), COUNT(*) FROM fleet_sample "
                "WHERE reactor = 'r3'"
            ).fetchone()
        assert hist is not None
        assert hist[0] >= backlog3
        for n in ("r1", "r2"):
            kinds = _lifecycle(dsn, n)
            assert kinds.count("birth") >= 2, (n, kinds)
            assert kinds.count("death") >= 1, (n, kinds)
        kinds3 = _lifecycle(dsn, "r3")
        assert kinds3[:3] == ["birth", "death", "birth"], kinds3  # NDEATH: the will of kill -9
    finally:
        for p in pubs.values():
            p.stop()
        if p3 is not None:
            p3.terminate()
            p3.wait()

        def all_offline() -> bool:
            return all(s["state"] == "offline" for s in fleet_status(dsn))

        # a clean stop sends NDEATH before disconnecting
        wait_for("every reactor offline", all_offline)
        collector.terminate()
        collector.wait()
    status = {s["reactor"]: s for s in fleet_status(dsn)}
    assert sorted(status) == names
    out = edgectl("fleet", "status", "--db", dsn).communicate()[0].decode()
    assert "r3" in out
    assert "offline" in out


def _command(url: str, group: str, node: str, **fields: str) -> dict[str, Any]:
    """Send one NCMD and wait for the node's ``Command/result``."""
    answers: list[dict[str, Any]] = []
    got = threading.Event()

    def on_message(c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        for m in Payload.FromString(msg.payload).metrics:
            if m.name == "Command/result" and m.string_value:
                a = json.loads(m.string_value)
                if a.get("id") == fields["id"]:
                    answers.append(a)
                    got.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"scada-{fields['id']}")
    c.on_message = on_message
    c.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
    c.subscribe(topic(group, "NDATA", node), qos=1)
    c.loop_start()
    try:
        time.sleep(0.3)
        p = Payload()
        for k, v in fields.items():
            m = p.metrics.add()
            m.name, m.datatype, m.string_value = f"Command/{k}", 12, v
        c.publish(topic(group, "NCMD", node), p.SerializeToString(), qos=1)
        assert got.wait(60.0), "no Command/result"
    finally:
        c.loop_stop()
        c.disconnect()
    return answers[0]


def test_ncmd_goes_through_the_operator_service(
    tmp_path: Path, fleet_services: tuple[LocalMosquitto, LocalPostgres]
) -> None:
    broker, pg = fleet_services
    dsn = new_database(pg, "fleet_commands")
    group = "commands"
    data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
    data["mqtt"] = {"broker": broker.url, "group": group, "node": "ecoli-1"}
    cfg = tmp_path / "reactor.toml"
    cfg.write_text(to_toml_text(data))
    store = UserStore(tmp_path / "run.users")
    store.add("alice", "operator", "correct horse", full_name="Alice")
    store.add("victor", "viewer", "viewer pass", full_name="Victor")
    col = Collector(broker.url, dsn, group=group)
    col_thread = threading.Thread(target=col.run, daemon=True)
    col_thread.start()
    wait_for("the collector's subscription", lambda: _collector_subscribed(dsn))
    run = open_run(cfg, speed=600.0, db=tmp_path / "run.db", socket_path=tmp_path / "run.sock")
    scan = threading.Thread(target=run.run, daemon=True)
    scan.start()
    try:
        assert run.publisher is not None
        wait_for("the controller's birth", lambda: run.publisher.stats.connects >= 1)
        params = json.dumps({"loop": "temp", "param": "setpoint", "value": 36.5})
        wrong = _command(broker.url, group, "ecoli-1", id="c1", user="alice",
                         password="wrong", method="loop_set", params=params)  # fmt: skip
        assert not wrong["ok"]
        assert "refused" in wrong["error"]
        viewer = _command(broker.url, group, "ecoli-1", id="c2", user="victor",
                          password="viewer pass", method="loop_set", params=params)  # fmt: skip
        assert not viewer["ok"]
        good = _command(broker.url, group, "ecoli-1", id="c3", user="alice",
                        password="correct horse", method="loop_set", params=params,
                        reason="fleet test")  # fmt: skip
        assert good["ok"], good
        assert run.controller.loop_get("temp")["setpoint"] == 36.5
        actions = [(r.actor, r.action) for r in run.historian.audit.records()]
        assert ("alice", "login_failed") in actions
        assert ("victor", "refused") in actions
        assert any(a == "alice" and act != "login_failed" for a, act in actions)
        wait_for("the controller's samples", lambda: count_rows(dsn, "ecoli-1") > 0)
    finally:
        run.stop()
        scan.join(30)
        run.close()
        col.stop()
        col_thread.join(30)
        col.close()
    assert os.path.exists(cursor_path_of(tmp_path / "run.db"))
