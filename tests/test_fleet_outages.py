"""The fleet's outage test against a real mosquitto and a real PostgreSQL 15 (private instances
on loopback, started by :mod:`edgectl.fleet.localsvc`; ``scripts/fleet-deps.sh`` installs them
if missing).

Reactors (3 in the default suite, 24 under ``-m long``: ``make fleet-test-24``) publish
Sparkplug B into one broker: the first is a real controller (``open_run`` of the E. coli
example with ``[mqtt]``, its operator service behind the publisher's commands), the others
seeded recorders (:class:`_fleet.SeededReactor`), each with its own :class:`EdgePublisher`, the
last one recording and publishing in a process of its own. The broker is stopped and
restarted; the controller is then sent an ``NCMD`` with a wrong password (refused, audited)
and a ``DCMD`` with the right password (applied, audited); the collector is killed -9 and
restarted; the last reactor is killed -9 in the middle of its backlog replay and restarted.
At the end
every reactor's rows in PostgreSQL equal its own historian's, by count and checksum, and each
outage's death and re-birth is recorded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from _fleet import (
    ROOT,
    SeededReactor,
    checksum,
    collector_rows,
    collector_subscribed,
    command,
    count_rows,
    edgectl,
    edgectl_output,
    historian_count,
    historian_rows,
    new_database,
    services,
    wait_for,
)
from edgectl.config import to_toml_text
from edgectl.fleet.collector import fleet_status
from edgectl.fleet.config import MqttConfig
from edgectl.fleet.localsvc import LocalMosquitto, LocalPostgres
from edgectl.fleet.publisher import EdgePublisher, cursor_path_of, read_cursor
from edgectl.historian.audit import AuditRecord
from edgectl.operator import UserStore
from edgectl.runtime.build import Run, open_run


@pytest.fixture(scope="module")
def fleet_services() -> Iterator[tuple[LocalMosquitto, LocalPostgres]]:
    yield from services()


def _lifecycle(dsn: str, reactor: str) -> list[str]:
    with psycopg.connect(dsn) as con:
        rows = con.execute(
            "SELECT kind FROM fleet_lifecycle WHERE reactor = %s ORDER BY id", (reactor,)
        ).fetchall()
    return [r[0] for r in rows]


def _reactor_process(
    db: Path, broker: LocalMosquitto, group: str, node: str, seed: int, period_s: float, log: Path
) -> subprocess.Popen[bytes]:
    """A whole reactor (recording and publishing) in its own process: ``_fleet_reactor.py``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "_fleet_reactor.py"), str(db),
             "--broker", broker.url, "--group", group, "--node", node, "--seed", str(seed),
             "--period-s", str(period_s), "--prefill", "30000"],
            stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip


def _controller(
    tmp_path: Path, mq: MqttConfig, *, speed: float
) -> tuple[Run, threading.Thread, Path]:
    """A real controller of the E. coli example publishing with ``[mqtt]`` = ``mq`` (its
    simulated plant seeded by the config), scanning in a thread; its users file holds the
    operator ``alice``. Returns the run, the scan thread and the historian's path."""
    data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
    data["mqtt"] = {f: getattr(mq, f) for f in ("broker", "group", "node", "batch")}
    cfg = tmp_path / f"{mq.node}.toml"
    cfg.write_text(to_toml_text(data))
    db = tmp_path / f"{mq.node}.db"
    UserStore(db.with_suffix(".users")).add("alice", "operator", "correct horse", full_name="Alice")
    run = open_run(cfg, speed=speed, db=db, serve_rpc=False)
    scan = threading.Thread(target=run.run, name=f"scan-{mq.node}", daemon=True)
    scan.start()
    return run, scan, db


def _commands_through_the_operator_service(
    run: Run, broker_url: str, group: str
) -> list[AuditRecord]:
    """A wrong password (``NCMD``): refused, audited as ``login_failed``, nothing applied;
    then the right one (``DCMD`` to the vessel): the setpoint applied and audited with the user
    and the reason. Returns the two audit records."""
    node = run.cfg.mqtt.node if run.cfg.mqtt is not None else None
    assert node is not None
    assert run.publisher is not None
    before = run.controller.loop_get("temp")["setpoint"]
    target = before - 0.5
    params = json.dumps({"loop": "temp", "param": "setpoint", "value": target})
    n_audit = len(run.historian.audit.records())
    wrong = command(broker_url, group, node, id="wrong-1", user="alice", password="wrong",
                    method="loop_set", params=params, reason="fleet outage test")  # fmt: skip
    assert not wrong["ok"], wrong
    assert wrong["type"] == "AuthenticationError"
    assert "refused" in wrong["error"]
    assert run.controller.loop_get("temp")["setpoint"] == before
    refused = run.historian.audit.records()[n_audit:]
    assert [(r.actor, r.action, r.target) for r in refused] == [
        ("alice", "login_failed", "operator.login")
    ]
    assert refused[0].reason.startswith("wrong password")
    good = command(broker_url, group, node, device="vessel", id="right-1", user="alice",
                   password="correct horse", method="loop_set", params=params,
                   reason="fleet outage test")  # fmt: skip
    assert good["ok"], good
    assert good["result"] == before  # loop_set answers the old value
    assert run.controller.loop_get("temp")["setpoint"] == target
    applied = run.historian.audit.records()[n_audit + 1 :]
    assert [(r.actor, r.target, r.new_value, r.reason) for r in applied] == [
        ("alice", "loops.temp.setpoint", target, "fleet outage test")
    ]
    assert run.historian.audit.verify().is_intact
    assert (run.publisher.stats.commands, run.publisher.stats.commands_refused) == (2, 1)
    return [*refused, *applied]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_reactors", "period_s"),
    [
        pytest.param(3, 0.01, id="3-reactors"),
        # `make fleet-test-24` (marked long: deselected by default, see README "Fleet")
        pytest.param(
            24, 0.02, id="24-reactors", marks=[pytest.mark.long, pytest.mark.timeout(900)]
        ),
    ],
)
def test_fleet_outages_lose_and_duplicate_nothing(
    tmp_path: Path,
    fleet_services: tuple[LocalMosquitto, LocalPostgres],
    n_reactors: int,
    period_s: float,
) -> None:
    broker, pg = fleet_services
    dsn = new_database(pg, f"fleet_outages_{n_reactors}")
    group = f"outages{n_reactors}"
    log = tmp_path / "children.log"
    collector = edgectl("collect", "--broker", broker.url, "--db", dsn, "--group", group, log=log)
    wait_for("the collector's subscription", lambda: collector_subscribed(dsn))
    names = [f"r{i:02d}" for i in range(1, n_reactors + 1)]
    ctl_name, seeded, last = names[0], names[1:-1], names[-1]
    ctl_mq = MqttConfig(broker=broker.url, group=group, node=ctl_name, batch=200)
    # the controller scans (1 s period) as often as the seeded reactors record
    run, scan, ctl_db = _controller(tmp_path, ctl_mq, speed=1.0 / period_s)
    ctl_pub = run.publisher
    assert ctl_pub is not None
    reactors = {
        n: SeededReactor(tmp_path / f"{n}.db", seed=i, period_s=period_s)
        for i, n in enumerate(seeded, start=1)
    }
    for r in reactors.values():
        r.start()
    pubs = {
        n: EdgePublisher(
            MqttConfig(broker=broker.url, group=group, batch=200), reactors[n].path, node=n
        ).start()
        for n in seeded
    }
    last_db = tmp_path / f"{last}.db"
    backlog_file = last_db.with_name(last_db.name + ".backlog")
    stopped_file = last_db.with_name(last_db.name + ".stopped")
    proc: subprocess.Popen[bytes] | None = None
    try:
        wait_for(
            "every reactor's first rows",
            lambda: all(count_rows(dsn, n) > 500 for n in [ctl_name, *seeded]),
        )
        # 1. the broker goes away; the reactors keep recording, the controller scanning
        broker.stop()
        scans = {n: r.scans for n, r in reactors.items()}
        ctl_scans = run.scheduler.stats.scans
        time.sleep(2.0)
        for n, r in reactors.items():
            assert r.scans > scans[n], n  # recording never waits for the network
        assert run.scheduler.stats.scans > ctl_scans, ctl_name
        broker.start()
        wait_for(
            "every publisher reconnected",
            lambda: all(p.stats.connects >= 2 for p in [ctl_pub, *pubs.values()]),
        )
        # 2. commands to the re-born controller: a wrong password, then the right one
        audited = _commands_through_the_operator_service(run, broker.url, group)
        # 3. the collector is killed -9 and restarted
        collector.send_signal(signal.SIGKILL)
        collector.wait()
        time.sleep(1.0)
        collector = edgectl(
            "collect", "--broker", broker.url, "--db", dsn, "--group", group, log=log
        )
        # 4. the last reactor, recording and publishing in one process, has a backlog the
        # broker never saw; the whole reactor is killed -9 in the middle of its replay, then
        # started again: it records on from its historian and publishes from its cursor
        cursor = cursor_path_of(last_db)
        proc = _reactor_process(last_db, broker, group, last, n_reactors, period_s, log)
        wait_for("the backlog recorded", backlog_file.exists)
        backlog = int(backlog_file.read_text())
        wait_for("the replay", lambda: cursor.exists() and read_cursor(cursor)["sample_id"] > 0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_replay = read_cursor(cursor)["sample_id"]
        assert 0 < mid_replay < backlog  # killed in the middle of its backlog
        recorded = historian_count(last_db)
        proc = _reactor_process(last_db, broker, group, last, n_reactors, period_s, log)
        wait_for("the restarted reactor recording", lambda: historian_count(last_db) > recorded)
    finally:
        for r in reactors.values():
            r.stop()
        # the controller stops (outputs safe, historian closed, its publisher stopped); what
        # it recorded after its publisher's last acknowledgement goes out as `edgectl publish`
        # of the historian file would send it, from the cursor
        run.stop()
        scan.join(60)
        run.close()
        pubs[ctl_name] = EdgePublisher(ctl_mq, ctl_db).start()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)  # stop recording; publishing goes on
    try:
        wait_for("the last reactor's recording stopped", stopped_file.exists)
        for n in names:
            want = historian_count(tmp_path / f"{n}.db")
            wait_for(f"{n}: {want} rows", lambda n=n, want=want: count_rows(dsn, n) >= want)
        compared = {}
        for n in names:
            mine, theirs = historian_rows(tmp_path / f"{n}.db"), collector_rows(dsn, n)
            assert len(theirs) == len(mine), n
            assert checksum(theirs) == checksum(mine), n
            compared[n] = len(mine)
        each = [compared[n] for n in seeded]
        print(
            f"{n_reactors} reactors: {sum(compared.values())} samples equal in PostgreSQL "
            f"(controller {ctl_name}: {compared[ctl_name]}; seeded: {min(each)}-{max(each)} "
            f"each; {last}: {compared[last]}, of which backlog {backlog})"
        )
        # the backlog went as historical data; each outage left a death and a re-birth
        with psycopg.connect(dsn) as con:
            hist = con.execute(
                "SELECT COUNT(*) FILTER (WHERE historical), COUNT(*) FROM fleet_sample "
                "WHERE reactor = %s",
                (last,),
            ).fetchone()
        assert hist is not None
        assert hist[0] >= backlog
        for n in [ctl_name, *seeded]:
            kinds = _lifecycle(dsn, n)
            assert kinds.count("birth") >= 2, (n, kinds)
            assert kinds.count("death") >= 1, (n, kinds)
        kinds_last = _lifecycle(dsn, last)
        assert kinds_last[:3] == ["birth", "death", "birth"], kinds_last  # the will of kill -9
        # the refusal and the change stay in the controller's historian file after its run:
        # as an auditor reads it, the same records (same hashes), the chain intact
        trail = [
            json.loads(line)
            for line in edgectl_output("audit", "show", str(ctl_db), "--json").splitlines()
        ]
        by_seq = {r["seq"]: r for r in trail}
        assert [(by_seq[r.seq]["action"], by_seq[r.seq]["hash"]) for r in audited] == [
            (r.action, r.hash) for r in audited
        ]
        assert "audit trail intact: " in edgectl_output("audit", "verify", str(ctl_db))
    finally:
        for p in pubs.values():
            p.stop()
        if proc is not None:
            proc.terminate()  # a clean stop: NDEATH
            proc.wait()

        def all_offline() -> bool:
            return all(s["state"] == "offline" for s in fleet_status(dsn))

        # a clean stop sends NDEATH before disconnecting
        wait_for("every reactor offline", all_offline)
        collector.terminate()
        collector.wait()
    status = {s["reactor"]: s for s in fleet_status(dsn)}
    assert sorted(status) == names
    out = edgectl_output("fleet", "status", "--db", dsn)
    assert last in out
    assert "offline" in out
