"""``make fleet-demo``: eight simulated reactors, a broker, the collector and PostgreSQL on this
machine, then ``edgectl fleet status``.

Starts a private mosquitto and PostgreSQL 15 on loopback (edgectl.fleet.localsvc), the collector
(``edgectl collect``), and eight ``edgectl run`` controllers of the E. coli example at 600×
real time, each with an ``[mqtt]`` section (group ``demo``, node ``reactor-1`` … ``reactor-8``,
seeds 1 … 8). After ``--wall-s`` seconds the controllers stop (each sends NDEATH), the
collector stops, and the fleet's state is printed. Everything lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import psycopg  # noqa: E402

from edgectl.config import to_toml_text  # noqa: E402
from edgectl.fleet.localsvc import LocalMosquitto, LocalPostgres, ensure_installed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reactors", type=int, default=8)
    ap.add_argument("--wall-s", type=float, default=60.0)
    args = ap.parse_args()
    ensure_installed()
    work = Path(tempfile.mkdtemp(prefix="edgectl-fleet-demo-"))
    broker = LocalMosquitto(tempfile.mkdtemp(prefix="edgectl-mqtt-")).start()
    pg = LocalPostgres(tempfile.mkdtemp(prefix="edgectl-pg-")).start()
    edgectl = [sys.executable, "-m", "edgectl.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        collector = subprocess.Popen(
            [*edgectl, "collect", "--broker", broker.url, "--db", pg.dsn, "--group", "demo"]
        )
        time.sleep(2.0)
        base = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
        hours = args.wall_s * 600 / 3600
        for i in range(1, args.reactors + 1):
            data = dict(base)
            data["mqtt"] = {"broker": broker.url, "group": "demo", "node": f"reactor-{i}"}
            cfg = work / f"reactor-{i}.toml"
            cfg.write_text(to_toml_text(data))
            procs.append(
                subprocess.Popen(
                    [
                        *edgectl,
                        "run",
                        str(cfg),
                        "--speed",
                        "600",
                        "--duration",
                        f"{hours:.3f}",
                        "--db",
                        str(work / f"reactor-{i}.db"),
                        "--socket",
                        str(work / f"reactor-{i}.sock"),
                        "--seed",
                        str(i),
                    ],
                    stdout=subprocess.DEVNULL,
                )
            )
        time.sleep(args.wall_s / 2)
        subprocess.run([*edgectl, "fleet", "status", "--db", pg.dsn], check=True)
        for p in procs:
            p.wait()
        time.sleep(2.0)
        collector.terminate()
        collector.wait()
        print("\nafter the runs ended:")
        subprocess.run([*edgectl, "fleet", "status", "--db", pg.dsn], check=True)
        print("\nsamples: each reactor's historian / rows in PostgreSQL")
        with psycopg.connect(pg.dsn) as con:
            stored = dict(
                con.execute("SELECT reactor, COUNT(*) FROM fleet_sample GROUP BY reactor")
            )
        for i in range(1, args.reactors + 1):
            db = sqlite3.connect(f"file:{work / f'reactor-{i}.db'}?mode=ro", uri=True)
            (recorded,) = db.execute("SELECT COUNT(*) FROM sample").fetchone()
            db.close()
            rows = stored.get(f"reactor-{i}", 0)
            same = "equal" if rows == recorded else "DIFFERENT"
            print(f"reactor-{i}: {recorded} / {rows} ({same})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        broker.stop()
        pg.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
