"""``edgectl collect``, ``edgectl fleet status`` and ``edgectl publish``: the fleet over MQTT.

``edgectl collect --broker mqtt://HOST[:PORT] --db postgresql://… [--group G]`` runs the site
collector: Sparkplug B from the broker into PostgreSQL (persistent session, QoS 1, rows
committed before a message is acknowledged, idempotent on reactor/tag/time).
``edgectl fleet status --db postgresql://…`` prints each reactor: online/offline since, phase,
alarms, last sample age. ``edgectl publish DB --broker URL --node NAME`` publishes a historian
file as a Sparkplug edge node (store and forward from its cursor; read-only: commands are
refused) — a running controller publishes by itself when its config has ``[mqtt]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from edgectl.commands._args import not_a_directory, plain_text

__all__ = ["add_parser", "main"]


def _broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, help="mqtt://host[:port] or mqtts://host[:port]")
    p.add_argument("--group", default="edgectl", help="Sparkplug group id (default: edgectl)")
    p.add_argument("--username", default="", help="broker user")
    p.add_argument("--password-file", default="", help="file whose first line is the password")
    p.add_argument("--ca-file", default="", help="CA certificate of the broker (mqtts)")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = plain_text(__doc__)
    collect = subparsers.add_parser(
        "collect",
        help="site collector: Sparkplug B from MQTT into PostgreSQL",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _broker_args(collect)
    collect.add_argument("--db", required=True, help="postgresql://user@host:port/dbname")
    collect.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    collect.set_defaults(func=main)
    fleet = subparsers.add_parser(
        "fleet",
        help="the fleet's state as the collector recorded it",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = fleet.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="each reactor: online/offline, phase, alarms")
    status.add_argument("--db", required=True, help="postgresql://user@host:port/dbname")
    status.add_argument("--json", action="store_true", help="one JSON object per reactor")
    fleet.set_defaults(func=main)
    publish = subparsers.add_parser(
        "publish",
        help="publish a historian file as a Sparkplug B edge node",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    _broker_args(publish)
    publish.add_argument("--node", required=True, help="Sparkplug edge node id")
    publish.add_argument("--until-caught-up", action="store_true", help="exit once replayed")
    publish.set_defaults(func=main)


def _password(path: str) -> str:
    from edgectl.fleet.config import MqttConfig

    return MqttConfig(broker="mqtt://x", password_file=path).password("--password-file")


def _until_signal(stop: Any) -> None:
    def handler(signum: int, frame: object) -> None:
        stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def main(args: argparse.Namespace) -> int:
    if args.command == "collect":
        from edgectl.fleet.collector import Collector

        col = Collector(
            args.broker,
            args.db,
            group=args.group,
            username=args.username,
            password=_password(args.password_file),
            ca_file=args.ca_file,
        )
        _until_signal(col.stop)
        try:
            col.run(args.duration)
        finally:
            col.close()
        print(json.dumps(vars(col.stats)))
        return 0
    if args.command == "fleet":
        from edgectl.fleet.collector import fleet_status

        rows = fleet_status(args.db)
        if args.json:
            for r in rows:
                print(json.dumps(r))
            return 0
        print(f"{'reactor':<16} {'state':<8} {'since':<26} {'phase':<14} alarms  last sample")
        for r in rows:
            age = "-" if r["last_sample_age_s"] is None else f"{r['last_sample_age_s']:.1f} s ago"
            print(
                f"{r['reactor']:<16} {r['state']:<8} {r['since']:<26} {r['phase']:<14} "
                f"{r['alarms']:>6}  {age}"
            )
        return 0
    from edgectl.fleet.config import MqttConfig
    from edgectl.fleet.publisher import EdgePublisher

    cfg = MqttConfig(
        broker=args.broker,
        group=args.group,
        node=args.node,
        username=args.username,
        password_file=args.password_file,
        ca_file=args.ca_file,
    )
    pub = EdgePublisher(cfg, args.db)
    done = threading.Event()
    _until_signal(done.set)
    pub.start()
    while not done.is_set():
        if (
            args.until_caught_up
            and pub.backlog_done.is_set()
            and pub.stats.cursor >= _max_id(args.db)
        ):
            break
        done.wait(0.2)
    pub.stop()
    print(json.dumps(pub.stats.to_dict()), file=sys.stdout)
    return 0


def _max_id(db: str) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT COALESCE(MAX(id), 0) FROM sample").fetchone()[0])
    finally:
        con.close()
