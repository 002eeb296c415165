"""Fleet benchmarks, printing figures (no pass/fail): run with ``.venv/bin/python
scripts/fleet_bench.py`` (or ``make fleet-bench``). Starts a private mosquitto and a durable
PostgreSQL 15 (fsync on) on loopback, like the tests.

1. **collector ingest**: ``--reactors`` × ``--tags`` samples per second of process time for
   ``--seconds`` s, queued in the collector's persistent session as DDATA (one message per
   reactor-second), then drained by a fresh collector; samples/s from its start until the last
   row is committed.
2. **backlog replay**: a historian holding ``--hours`` h of ``--replay-tags`` tags at 1 Hz,
   published from cursor 0 until the broker acknowledged the last sample, and until the
   collector committed it; the ratio to real time.
3. **scan lateness while publishing**: a 100 Hz recording thread's lateness (p50/p99/max,
   ms) alone and while its historian is published.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _fleet import SeededReactor, new_database  # noqa: E402
from edgectl.fleet.collector import Collector  # noqa: E402
from edgectl.fleet.config import MqttConfig  # noqa: E402
from edgectl.fleet.localsvc import LocalMosquitto, LocalPostgres, ensure_installed  # noqa: E402
from edgectl.fleet.publisher import EdgePublisher  # noqa: E402
from edgectl.fleet.sparkplug import DATATYPE, Payload, topic  # noqa: E402
from edgectl.historian import Historian  # noqa: E402


def _rows(dsn: str) -> int:
    with psycopg.connect(dsn) as con:
        r = con.execute("SELECT COUNT(*) FROM fleet_sample").fetchone()
    return int(r[0]) if r else 0


def _drain(col: Collector, dsn: str, want: int) -> float:
    t0 = time.perf_counter()
    th = threading.Thread(target=col.run, daemon=True)
    th.start()
    while col.stats.rows_inserted < want:
        time.sleep(0.05)
    dt = time.perf_counter() - t0
    col.stop()
    th.join()
    col.close()
    assert _rows(dsn) >= want
    return dt


def ingest(
    broker: LocalMosquitto, pg: LocalPostgres, n_reactors: int, n_tags: int, n_s: int
) -> None:
    dsn = new_database(pg, "bench_ingest")
    group = "bench"
    col = Collector(broker.url, dsn, group=group)
    col.run(1.0)  # creates the persistent session and subscribes
    col.close()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-feeder")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    t_base_ms = 1_790_000_000_000
    infos = []
    for r in range(n_reactors):
        node = f"b{r:03d}"
        birth = Payload(seq=0)
        m = birth.metrics.add(name="bdSeq", datatype=DATATYPE["uint64"], long_value=0)
        c.publish(topic(group, "NBIRTH", node), birth.SerializeToString(), qos=1)
        db = Payload(seq=1)
        for k in range(n_tags):
            db.metrics.add(name=f"tag{k:02d}", alias=k + 1, datatype=DATATYPE["double"])
        infos.append(
            c.publish(topic(group, "DBIRTH", node, "vessel"), db.SerializeToString(), qos=1)
        )
    for s in range(n_s):
        for r in range(n_reactors):
            p = Payload(seq=(s + 2) % 256)
            for k in range(n_tags):
                m = p.metrics.add(alias=k + 1, timestamp=t_base_ms + s * 1000, datatype=10)
                m.double_value = 37.0 + 0.001 * s + k
            infos.append(
                c.publish(
                    topic(group, "DDATA", f"b{r:03d}", "vessel"), p.SerializeToString(), qos=1
                )
            )
    for info in infos:
        info.wait_for_publish(120)
    c.loop_stop()
    c.disconnect()
    want = n_reactors * n_tags * n_s
    col = Collector(broker.url, dsn, group=group)
    dt = _drain(col, dsn, want)
    print(
        f"collector ingest: {want} samples ({n_reactors} reactors x {n_tags} tags x {n_s} s) "
        f"in {dt:.2f} s = {want / dt:,.0f} samples/s (durable PostgreSQL, through mosquitto)"
    )


def replay(
    broker: LocalMosquitto, pg: LocalPostgres, hours: float, n_tags: int, workdir: Path
) -> None:
    path = workdir / "replay.db"
    h = Historian(path)
    for k in range(n_tags):
        h.register_tag(f"tag{k:02d}", unit="u")
    h.flush()
    h.close()
    n_s = int(hours * 3600)
    con = sqlite3.connect(path)
    ids = [r[0] for r in con.execute("SELECT id FROM tag ORDER BY id")]
    t0 = 1_790_000_000.0
    con.executemany(
        "INSERT INTO sample (tag_id, t, value, quality) VALUES (?, ?, ?, 0)",
        (
            (
                tid,
                t0 + s,
                37.0 + s * 1e-5,
            )
            for s in range(n_s)
            for tid in ids
        ),
    )
    con.commit()
    con.close()
    n = n_s * n_tags
    dsn = new_database(pg, "bench_replay")
    col = Collector(broker.url, dsn, group="replay")
    th = threading.Thread(target=col.run, daemon=True)
    th.start()
    time.sleep(1.0)
    pub = EdgePublisher(MqttConfig(broker=broker.url, group="replay", batch=1000), path, node="r")
    t_start = time.perf_counter()
    pub.start()
    while pub.stats.cursor < n:
        time.sleep(0.05)
    t_acked = time.perf_counter() - t_start
    while col.stats.rows_inserted < n:
        time.sleep(0.05)
    t_stored = time.perf_counter() - t_start
    pub.stop()
    col.stop()
    th.join()
    col.close()
    real_s = hours * 3600
    print(
        f"backlog replay: {hours:g} h x {n_tags} tags at 1 Hz = {n} samples; broker acked in "
        f"{t_acked:.1f} s ({real_s / t_acked:,.0f}x real time, {n / t_acked:,.0f} samples/s), "
        f"in PostgreSQL in {t_stored:.1f} s ({real_s / t_stored:,.0f}x real time)"
    )


def lateness(broker: LocalMosquitto, workdir: Path, seconds: float) -> None:
    def run(publish: bool) -> list[float]:
        r = SeededReactor(workdir / f"late-{publish}.db", seed=1)
        pub = None
        if publish:
            cfg = MqttConfig(broker=broker.url, group="late")
            pub = EdgePublisher(cfg, r.path, node="late").start()
        r.start()
        time.sleep(seconds)
        r.stop()
        if pub is not None:
            pub.stop()
        return r.late_s[10:]

    for label, late in (("alone", run(False)), ("publishing", run(True))):
        q = statistics.quantiles([x * 1000 for x in late], n=100)
        print(
            f"scan lateness {label:<10}: p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, "
            f"max {max(late) * 1000:.2f} ms over {len(late)} scans at 100 Hz"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reactors", type=int, default=100)
    ap.add_argument("--tags", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--replay-tags", type=int, default=40)
    ap.add_argument("--lateness-s", type=float, default=20.0)
    ap.add_argument("--only", choices=["ingest", "replay", "lateness"], help="one benchmark")
    args = ap.parse_args()
    ensure_installed()
    work = Path(tempfile.mkdtemp(prefix="edgectl-bench-"))
    broker = LocalMosquitto(tempfile.mkdtemp(prefix="edgectl-mqtt-")).start()
    pg = LocalPostgres(tempfile.mkdtemp(prefix="edgectl-pg-"), durable=True).start()
    try:
        if args.only in (None, "ingest"):
            ingest(broker, pg, args.reactors, args.tags, args.seconds)
        if args.only in (None, "replay"):
            replay(broker, pg, args.hours, args.replay_tags, work)
        if args.only in (None, "lateness"):
            lateness(broker, work, args.lateness_s)
    finally:
        broker.stop()
        pg.remove()


if __name__ == "__main__":
    main()
