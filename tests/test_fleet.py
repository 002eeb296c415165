"""The fleet against a real mosquitto and a real PostgreSQL 15 (private instances on loopback,
started by :mod:`edgectl.fleet.localsvc`; ``scripts/fleet-deps.sh`` installs them if missing):
Sparkplug topics and qualities, the ``[mqtt]`` section's errors, a real controller with
``[mqtt]`` answering NCMD commands through its operator service, report by exception, the
example ACL's logins, the collector's resend path, and a TLS-only broker that takes the
publisher and the collector and refuses a client without the lab's CA. The outage test (broker,
collector and reactor killed, row-for-row equality) is ``test_fleet_outages.py``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import ssl
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from _fleet import (
    ROOT,
    checksum,
    collector_rows,
    collector_subscribed,
    command,
    count_rows,
    historian_rows,
    lab_ca,
    new_database,
    services,
    wait_for,
)
from edgectl.config import to_toml_text
from edgectl.errors import ConfigError
from edgectl.fleet.collector import Collector, fleet_status
from edgectl.fleet.config import MqttConfig, parse_broker_url
from edgectl.fleet.localsvc import LocalMosquitto, LocalPostgres
from edgectl.fleet.publisher import EdgePublisher, cursor_path_of
from edgectl.fleet.sparkplug import Payload, metric_quality, parse_topic, quality_code, topic
from edgectl.historian import Historian
from edgectl.operator import UserStore
from edgectl.quality import Quality
from edgectl.runtime.build import open_run
from edgectl.runtime.reactor_config import load_reactor_config


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


def test_mqtt_section_errors_name_the_key(tmp_path: Path) -> None:
    data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
    data["mqtt"] = {"broker": "http://broker.lab:80"}
    cfg = tmp_path / "reactor.toml"
    cfg.write_text(to_toml_text(data))
    with pytest.raises(ConfigError, match=r"mqtt.*not mqtt://host"):
        load_reactor_config(cfg)
    data["mqtt"] = {"broker": "mqtt://broker.lab", "group": "a/b"}
    cfg.write_text(to_toml_text(data))
    with pytest.raises(ConfigError, match=r"\$\.mqtt\.group"):
        load_reactor_config(cfg)
    data["mqtt"] = {"broker": "mqtts://broker.lab", "deadband": {"ph": 0.01}}
    cfg.write_text(to_toml_text(data))
    mq = load_reactor_config(cfg).mqtt
    assert mq is not None
    assert mq.deadband == {"ph": 0.01}
    assert parse_broker_url(mq.broker).port == 8883


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
    wait_for("the collector's subscription", lambda: collector_subscribed(dsn))
    run = open_run(cfg, speed=600.0, db=tmp_path / "run.db", socket_path=tmp_path / "run.sock")
    scan = threading.Thread(target=run.run, daemon=True)
    scan.start()
    try:
        assert run.publisher is not None
        wait_for("the controller's birth", lambda: run.publisher.stats.connects >= 1)
        params = json.dumps({"loop": "temp", "param": "setpoint", "value": 36.5})
        wrong = command(broker.url, group, "ecoli-1", id="c1", user="alice",
                         password="wrong", method="loop_set", params=params)  # fmt: skip
        assert not wrong["ok"]
        assert "refused" in wrong["error"]
        viewer = command(broker.url, group, "ecoli-1", id="c2", user="victor",
                          password="viewer pass", method="loop_set", params=params)  # fmt: skip
        assert not viewer["ok"]
        good = command(broker.url, group, "ecoli-1", id="c3", user="alice",
                        password="correct horse", method="loop_set", params=params,
                        reason="fleet test")  # fmt: skip
        assert good["ok"], good
        assert run.controller.loop_get("temp")["setpoint"] == 36.5
        actions = [(r.actor, r.action) for r in run.historian.audit.records()]
        assert ("alice", "login_failed") in actions
        assert ("victor", "refused") in actions
        assert any(a == "alice" and act != "login_failed" for a, act in actions)
        wait_for("the controller's samples", lambda: count_rows(dsn, "ecoli-1") > 0)
        # the recipe's first phase (not a transition event in the historian) reaches the site
        wait_for(
            "the phase in fleet status",
            lambda: [s["phase"] for s in fleet_status(dsn)] == ["batch"],
        )
    finally:
        run.stop()
        scan.join(30)
        run.close()
        col.stop()
        col_thread.join(30)
        col.close()
    assert os.path.exists(cursor_path_of(tmp_path / "run.db"))


def test_shelved_and_disabled_alarms_are_not_counted_as_active(
    tmp_path: Path, fleet_services: tuple[LocalMosquitto, LocalPostgres]
) -> None:
    from edgectl.operator.changes import Change

    broker, _ = fleet_services
    group = "alarm-status"
    data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
    data["mqtt"] = {"broker": broker.url, "group": group, "node": "ecoli-a"}
    data["alarms"]["do_low"].update({"limit": 200.0, "delay_s": 5.0})  # in alarm, never clears
    cfg = tmp_path / "reactor.toml"
    cfg.write_text(to_toml_text(data))
    store = UserStore(tmp_path / "run.users")
    store.add("alice", "operator", "correct horse", full_name="Alice")
    store.add("erin", "engineer", "engineer pass", full_name="Erin")
    status: dict[str, int] = {}
    lock = threading.Lock()

    def on_message(c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            for m in Payload.FromString(bytes(msg.payload)).metrics:
                if m.name in ("Status/alarms", "Status/alarms_suppressed"):
                    status[m.name] = int(m.long_value)

    def seen(alarms: int, suppressed: int) -> bool:
        with lock:
            return status == {"Status/alarms": alarms, "Status/alarms_suppressed": suppressed}

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scada-alarm-status")
    sub.on_message = on_message
    sub.connect("127.0.0.1", int(broker.url.rsplit(":", 1)[1]))
    sub.subscribe([(topic(group, k, "ecoli-a"), 1) for k in ("NBIRTH", "NDATA")])
    sub.loop_start()
    run = open_run(cfg, speed=600.0, db=tmp_path / "run.db", socket_path=tmp_path / "run.sock")
    scan = threading.Thread(target=run.run, daemon=True)
    scan.start()
    try:
        svc = run.controller.operator
        alice, erin = svc.login("alice", "correct horse"), svc.login("erin", "engineer pass")
        # every other alarm disabled first, so only do_low can be counted
        others = [r["name"] for r in svc.query(alice, "alarm_conditions") if r["name"] != "do_low"]
        assert others
        for name in others:
            svc.change(erin, Change.enable(name, False), reason="fleet test: only do_low")
        wait_for("do_low counted", lambda: seen(1, len(others)))
        svc.change(alice, Change.shelve("do_low", None), reason="probe being recalibrated")
        assert any(a["name"] == "do_low" for a in run.controller.alarms())  # still in alarm
        wait_for("do_low shelved, not counted", lambda: seen(0, len(others) + 1))
        svc.change(alice, Change.unshelve("do_low"), reason="probe back")
        wait_for("do_low counted again", lambda: seen(1, len(others)))
        svc.change(erin, Change.enable("do_low", False), reason="limit under review")
        wait_for("do_low disabled, not counted", lambda: seen(0, len(others) + 1))
    finally:
        run.stop()
        scan.join(30)
        run.close()
        sub.loop_stop()
        sub.disconnect()


def test_deadband_reports_by_exception_and_carries_quality(
    tmp_path: Path, fleet_services: tuple[LocalMosquitto, LocalPostgres]
) -> None:
    broker, pg = fleet_services
    dsn = new_database(pg, "fleet_deadband")
    group = "deadband"
    with Historian(tmp_path / "db.db") as h:
        h.register_tag("ph", unit="pH")
        h.register_tag("temp_c", unit="degC")
        for i, (ph, q) in enumerate(
            [(7.0, "good"), (7.01, "good"), (7.02, "good"), (7.2, "good"), (7.21, "uncertain"),
             (7.22, "uncertain"), (math.nan, "good"), (7.23, "stale")]
        ):  # fmt: skip
            h.record("ph", ph, 1000.0 + i, q)
            h.record("temp_c", 37.0 + i * 0.001, 1000.0 + i)
    col = Collector(broker.url, dsn, group=group)
    th = threading.Thread(target=col.run, daemon=True)
    th.start()
    try:
        wait_for("the collector's subscription", lambda: collector_subscribed(dsn))
        cfg = MqttConfig(broker=broker.url, group=group, deadband={"ph": 0.1})
        with EdgePublisher(cfg, tmp_path / "db.db", node="db1") as pub:
            wait_for("the backlog", lambda: pub.stats.cursor >= 16)
            wait_for("the rows", lambda: count_rows(dsn, "db1") >= 13)
            assert pub.stats.samples_skipped == 3
    finally:
        col.stop()
        th.join(30)
        col.close()
    ph = [(t, v, q) for tag, t, v, q in collector_rows(dsn, "db1") if tag == "ph"]
    # 7.01, 7.02 inside the band; 7.2 moved; 7.21 changed quality; 7.22 not; NaN; stale
    assert ph == [
        (1_000_000, 7.0, 0),
        (1_003_000, 7.2, 0),
        (1_004_000, 7.21, 1),
        (1_006_000, None, 2),
        (1_007_000, 7.23, 3),
    ]
    assert count_rows(dsn, "db1") == 8 + 5  # temp_c has no deadband: every sample
    with psycopg.connect(dsn) as con:
        units = dict(con.execute("SELECT name, unit FROM fleet_tag").fetchall())
    assert units == {"ph": "pH", "temp_c": "degC"}


def test_broker_logins_and_the_example_acl(tmp_path: Path) -> None:
    acl = (ROOT / "examples" / "fleet" / "mosquitto.acl").read_text()
    broker = LocalMosquitto(
        tempfile.mkdtemp(prefix="edgectl-mqtt-"),
        passwords={"collector": "c-pass", "r01": "r01-pass", "r02": "r02-pass"},
        acl=acl,
    ).start()
    pw = tmp_path / "r01.mqtt"
    pw.write_text("r01-pass\n")
    got: list[str] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watch")
    watcher.username_pw_set("collector", "c-pass")
    watcher.on_message = lambda c, u, m: got.append(m.topic)
    try:
        watcher.connect("127.0.0.1", broker.port)
        watcher.subscribe("spBv1.0/process-dev/#", qos=1)
        watcher.loop_start()
        with Historian(tmp_path / "r01.db") as h:
            h.record("ph", 7.0, 1.0)
        cfg = MqttConfig(
            broker=broker.url, group="process-dev", node="r01", username="r01",
            password_file=str(pw),
        )  # fmt: skip
        with EdgePublisher(cfg, tmp_path / "r01.db") as pub:
            wait_for("r01's sample acknowledged", lambda: pub.stats.cursor >= 1)
        # r01 cannot speak for r02: mosquitto refuses it (PUBACK "Not authorized", MQTT 5) and
        # the watcher sees only r01's topics. r01's own topic goes first: paho drops its
        # connection after a refused PUBACK (mosquitto 2.0.11 logs a bad socket read), so a
        # publish after the refusal would race that disconnect.
        acks: dict[int, Any] = {}
        rogue = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="rogue", protocol=mqtt.MQTTv5
        )
        rogue.username_pw_set("r01", "r01-pass")
        rogue.on_publish = lambda c, u, mid, rc, p: acks.__setitem__(mid, rc)
        rogue.connect("127.0.0.1", broker.port)
        rogue.loop_start()
        wait_for("the rogue's connection", rogue.is_connected)
        own = rogue.publish("spBv1.0/process-dev/NDATA/r01", b"", qos=1)
        wait_for("r01's own NDATA", lambda: "spBv1.0/process-dev/NDATA/r01" in got)
        foreign = rogue.publish("spBv1.0/process-dev/DDATA/r02/vessel", b"", qos=1)
        wait_for("the broker's answer to r02's topic", lambda: foreign.mid in acks)
        rogue.loop_stop()
        rogue.disconnect()
        assert not acks[own.mid].is_failure
        assert acks[foreign.mid].is_failure
        assert str(acks[foreign.mid]) == "Not authorized"
        watcher.publish("spBv1.0/process-dev/NCMD/r01", b"", qos=1).wait_for_publish(10)
        wait_for("the watcher's own round trip", lambda: "spBv1.0/process-dev/NCMD/r01" in got)
        assert "spBv1.0/process-dev/DDATA/r02/vessel" not in got
        assert {t.split("/")[3] for t in got} == {"r01"}  # NCMD/r01 is the collector's own
        assert "spBv1.0/process-dev/DBIRTH/r01/vessel" in got
        # a wrong password: the broker refuses the connection
        bad = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bad")
        bad.username_pw_set("r01", "wrong")
        codes: list[Any] = []
        bad.on_connect = lambda c, u, f, rc, p: codes.append(rc)
        bad.connect("127.0.0.1", broker.port)
        bad.loop_start()
        wait_for("the broker's answer", lambda: bool(codes))
        bad.loop_stop()
        assert codes[0].is_failure
    finally:
        watcher.loop_stop()
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)


def test_collector_writes_a_resent_block_once(
    fleet_services: tuple[LocalMosquitto, LocalPostgres],
) -> None:
    """A block of rows is copied straight into ``fleet_sample``; one that holds rows already
    stored (a resend) goes through ``ON CONFLICT DO NOTHING``: only its new rows are added.
    Tag names with COPY's special characters arrive as they were sent."""
    broker, pg = fleet_services
    dsn = new_database(pg, "fleet_resend")
    group = "resend"
    col = Collector(broker.url, dsn, group=group)
    th = threading.Thread(target=col.run, daemon=True)
    th.start()
    names = ["ph", "odd\\name\twith\ttabs\nand a newline"]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="resender")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()

    def ddata(seq: int, seconds: range) -> None:
        p = Payload(seq=seq)
        for s in seconds:
            for alias in (1, 2):
                m = p.metrics.add(alias=alias, timestamp=1_790_000_000_000 + s * 1000)
                m.datatype, m.double_value = 10, 7.0 + s * 0.01 + alias
        c.publish(topic(group, "DDATA", "x1", "vessel"), p.SerializeToString(), qos=1)

    try:
        wait_for("the collector's subscription", lambda: collector_subscribed(dsn))
        birth = Payload(seq=0)
        birth.metrics.add(name="bdSeq", datatype=8, long_value=0)
        c.publish(topic(group, "NBIRTH", "x1"), birth.SerializeToString(), qos=1)
        dbirth = Payload(seq=1)
        for alias, name in enumerate(names, start=1):
            dbirth.metrics.add(name=name, alias=alias, datatype=10)
        c.publish(topic(group, "DBIRTH", "x1", "vessel"), dbirth.SerializeToString(), qos=1)
        ddata(2, range(10))
        wait_for("the first block", lambda: count_rows(dsn, "x1") == 20)
        ddata(3, range(5, 12))  # 5..9 again, 10 and 11 new
        wait_for("the resent block", lambda: col.stats.resent_blocks >= 1)
        wait_for("its new rows", lambda: count_rows(dsn, "x1") == 24)
    finally:
        c.loop_stop()
        c.disconnect()
        col.stop()
        th.join(30)
        col.close()
    rows = collector_rows(dsn, "x1")
    assert len(rows) == 24
    assert {tag for tag, *_ in rows} == set(names)
    want = sorted(
        (name, 1_790_000_000_000 + s * 1000, 7.0 + s * 0.01 + alias, 0)
        for s in range(12)
        for alias, name in enumerate(names, start=1)
    )
    assert rows == want
    assert col.stats.rows_inserted == 24


def test_tls_broker_publisher_and_collector(
    tmp_path: Path, fleet_services: tuple[LocalMosquitto, LocalPostgres]
) -> None:
    """A TLS-only mosquitto listener with a CA and a server certificate made in the test: the
    publisher and the collector trust the lab's CA and move every sample; a client that trusts
    only the system's CAs, or another CA, is refused in the TLS handshake."""
    _, pg = fleet_services
    pki = lab_ca(tmp_path / "pki")
    other = lab_ca(tmp_path / "other-pki", name="someone else's CA")
    broker = LocalMosquitto(
        tempfile.mkdtemp(prefix="edgectl-mqtts-"), tls=(pki["ca"], pki["cert"], pki["key"])
    ).start()
    assert broker.url.startswith("mqtts://127.0.0.1:")
    dsn = new_database(pg, "fleet_tls")
    group = "tls"
    col = Collector(broker.url, dsn, group=group, ca_file=str(pki["ca"]))
    th = threading.Thread(target=col.run, daemon=True)
    th.start()
    try:
        wait_for("the collector's subscription over TLS", lambda: collector_subscribed(dsn))
        with Historian(tmp_path / "t1.db") as h:
            h.register_tag("ph", unit="pH")
            for i in range(50):
                h.record("ph", 7.0 + i * 0.001, 1000.0 + i, "uncertain" if i % 7 == 0 else "good")
        cfg = MqttConfig(broker=broker.url, group=group, ca_file=str(pki["ca"]))
        with EdgePublisher(cfg, tmp_path / "t1.db", node="t1") as pub:
            wait_for("the samples acknowledged over TLS", lambda: pub.stats.cursor >= 50)
            wait_for("the rows", lambda: count_rows(dsn, "t1") >= 50)
        mine, theirs = historian_rows(tmp_path / "t1.db"), collector_rows(dsn, "t1")
        assert checksum(theirs) == checksum(mine)
        assert len(theirs) == 50
        # without the lab's CA the broker's certificate does not verify: no connection. (The
        # handshake as paho's tls_set() makes it; paho itself leaves the socket of a failed
        # handshake unclosed, which this suite's warnings-as-errors would report.)
        for ca in (None, other["ca"]):
            ctx = ssl.create_default_context(cafile=ca)
            with (
                socket.create_connection(("127.0.0.1", broker.port), timeout=30) as raw,
                pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"),
            ):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()
        with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as raw:
            ctx = ssl.create_default_context(cafile=pki["ca"])
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")  # the lab's CA: accepted
    finally:
        col.stop()
        th.join(30)
        col.close()
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)
    status = {s["reactor"]: s for s in fleet_status(dsn)}
    assert status["t1"]["state"] == "offline"  # its clean stop's NDEATH came over TLS too
