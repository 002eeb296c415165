"""A whole seeded reactor in its own process, for the fleet test's kill -9: the recording
thread of :class:`_fleet.SeededReactor` and its :class:`EdgePublisher` together, so a SIGKILL
takes both down at once, as a power cut of the reactor's computer would.

``python tests/_fleet_reactor.py DB --broker URL --group G --node N --seed S [--prefill K]``:
on a new historian, ``--prefill`` records K scans at once first (a backlog the broker has not
seen) and writes their sample count to ``DB.backlog``. Then it records live and publishes.
SIGUSR1 stops the recording (the historian closed, then ``DB.stopped`` is written; the
publisher goes on until everything is sent); SIGTERM stops the publisher cleanly (NDEATH).
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from _fleet import SeededReactor
from edgectl.fleet.config import MqttConfig
from edgectl.fleet.publisher import EdgePublisher


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--period-s", type=float, default=0.01)
    ap.add_argument("--prefill", type=int, default=0)
    args = ap.parse_args()
    stop_recording, stop = threading.Event(), threading.Event()
    signal.signal(signal.SIGUSR1, lambda *a: stop_recording.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    is_new = not args.db.exists()
    reactor = SeededReactor(args.db, seed=args.seed, period_s=args.period_s)
    if is_new and args.prefill:
        n = reactor.prefill(args.prefill)
        tmp = args.db.with_name(args.db.name + ".backlog.tmp")
        tmp.write_text(f"{n}\n")
        tmp.replace(args.db.with_name(args.db.name + ".backlog"))
    reactor.start()
    cfg = MqttConfig(broker=args.broker, group=args.group, batch=200)
    pub = EdgePublisher(cfg, args.db, node=args.node).start()
    while not stop.wait(0.1):
        if stop_recording.is_set() and reactor.is_recording:
            reactor.stop()
            args.db.with_name(args.db.name + ".stopped").write_text("")
    if reactor.is_recording:
        reactor.stop()
    pub.stop()


if __name__ == "__main__":
    main()
