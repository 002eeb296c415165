"""Historian throughput and size: appends per second and bytes per sample at 40 tags.

Run: ``.venv/bin/python tests/benchmarks/historian_bench.py [--quick]``

For each scenario (40 tags at 1 Hz for one simulated hour, 40 tags at 10 Hz for ten simulated
minutes) the script replays the run as the controller would produce it, with one commit per
simulated second (``commit_interval_s = 1``):

* **scan-thread cost** — time inside ``record_scan`` (validation + queue append), per sample:
  what the scan pays; it never waits for the disk;
* **writer cost** — time of the commit of one second of samples (``flush``), per sample;
* **appends/s** — samples divided by (scan-thread + writer) time: the sustainable rate, to
  compare with the rate the scenario needs (40 or 400 samples/s);
* **bytes/sample** — size of the database file after ``close()`` (WAL checkpointed into the
  file) divided by the number of samples, indexes included.

The peers, measured in the same run on the same disk: one ``INSERT`` + commit per sample, with
``synchronous=NORMAL`` and with ``synchronous=FULL`` (what committing every sample durably
would cost the scan thread), and a free-running bulk append (writer thread on its own timer).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from edgectl.historian import Historian

N_TAGS = 40
T0 = 1_795_000_000.0


def tag_names() -> list[str]:
    return [f"tag_{i:02d}" for i in range(N_TAGS)]


def replay(db: Path, rate_hz: float, duration_s: float) -> dict[str, float]:
    rng = random.Random(1)
    names = tag_names()
    values = {n: rng.uniform(0, 100) for n in names}
    scans_per_s = round(rate_hz)
    scan_s = 0.0
    flush_s: list[float] = []
    n = 0
    with Historian(db, commit_interval_s=3600.0) as h:
        h.start_run(config_hash="bench", time_s=T0)
        for second in range(int(duration_s)):
            for k in range(scans_per_s):
                t = T0 + second + k / rate_hz
                for name in names:  # a noisy random walk, as real signals are
                    values[name] += rng.gauss(0.0, 0.05)
                start = time.perf_counter()
                h.record_scan(t, values)
                scan_s += time.perf_counter() - start
                n += N_TAGS
            start = time.perf_counter()
            h.flush()
            flush_s.append(time.perf_counter() - start)
        assert h.count("sample") == n
    size = db.stat().st_size
    wal = db.with_name(db.name + "-wal")
    size += wal.stat().st_size if wal.exists() else 0
    flush_sorted = sorted(flush_s)
    writer_s = sum(flush_s)
    return {
        "samples": n,
        "scan_us_per_sample": scan_s / n * 1e6,
        "writer_us_per_sample": writer_s / n * 1e6,
        "appends_per_s": n / (scan_s + writer_s),
        "needed_per_s": N_TAGS * rate_hz,
        "commit_p50_ms": statistics.median(flush_sorted) * 1e3,
        "commit_p99_ms": flush_sorted[int(0.99 * (len(flush_sorted) - 1))] * 1e3,
        "bytes_per_sample": size / n,
        "mb_per_day": size / duration_s * 86400 / 1e6,
    }


def free_running(db: Path, n_scans: int) -> float:
    """Append as fast as possible with the writer on its 1 s timer; samples/s incl. close."""
    names = tag_names()
    values = {n: 37.0 + i * 0.01 for i, n in enumerate(names)}
    start = time.perf_counter()
    with Historian(db, commit_interval_s=1.0) as h:
        for k in range(n_scans):
            h.record_scan(T0 + k * 0.1, values)
    return n_scans * N_TAGS / (time.perf_counter() - start)


def per_sample_commit(db: Path, n: int, synchronous: str) -> float:
    """The naive peer: one INSERT and one commit per sample; samples/s."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute(f"PRAGMA synchronous = {synchronous}")
    con.execute(
        "CREATE TABLE sample (id INTEGER PRIMARY KEY, tag_id INT, t REAL, value REAL, q INT)"
    )
    con.execute("CREATE INDEX s ON sample(tag_id, t)")
    start = time.perf_counter()
    for i in range(n):
        con.execute(
            "INSERT INTO sample (tag_id, t, value, q) VALUES (?, ?, ?, 0)",
            (i % N_TAGS, T0 + i / N_TAGS, 37.0 + i * 1e-6),
        )
    rate = n / (time.perf_counter() - start)
    con.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the durations")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(f"historian benchmark: {N_TAGS} tags, one commit per simulated second, {d}")
        print("(µs/S: microseconds per sample; appends/s sustainable; needed/s of the scenario)")
        print(
            f"{'scenario':<22} {'samples':>8} {'scan µs/S':>10} {'writer µs/S':>12} "
            f"{'appends/s':>10} {'needed/s':>9} {'commit p50/p99 ms':>18} {'B/sample':>9} "
            f"{'MB/day':>8}"
        )
        results = {}
        for label, rate_hz, duration_s in (
            ("40 tags @ 1 Hz, 1 h", 1.0, 3600.0),
            ("40 tags @ 10 Hz, 10 min", 10.0, 600.0),
        ):
            r = replay(d / f"{rate_hz}.db", rate_hz, duration_s * scale)
            results[label] = r
            print(
                f"{label:<22} {r['samples']:>8.0f} {r['scan_us_per_sample']:>10.2f} "
                f"{r['writer_us_per_sample']:>12.2f} {r['appends_per_s']:>10.0f} "
                f"{r['needed_per_s']:>9.0f} {r['commit_p50_ms']:>8.2f}/{r['commit_p99_ms']:<8.2f}"
                f"  {r['bytes_per_sample']:>9.1f} {r['mb_per_day']:>8.1f}"
            )
        bulk = free_running(d / "bulk.db", int(6000 * scale))
        naive_normal = per_sample_commit(d / "naive_normal.db", int(20000 * scale), "NORMAL")
        naive_full = per_sample_commit(d / "naive_full.db", int(2000 * scale), "FULL")
        print(f"free-running bulk append (writer thread, 1 s commits): {bulk:,.0f} samples/s")
        print(
            f"peer, INSERT + commit per sample, synchronous=NORMAL: {naive_normal:,.0f} samples/s"
            f" (historian bulk is {bulk / naive_normal:.1f}x)"
        )
        print(
            f"peer, INSERT + commit per sample, synchronous=FULL:   {naive_full:,.0f} samples/s"
            f" (historian bulk is {bulk / naive_full:.1f}x)"
        )


if __name__ == "__main__":
    main()
