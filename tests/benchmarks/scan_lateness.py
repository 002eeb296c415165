"""Scan lateness at 10 Hz in real time, with the I/O workers polling and a busy REPL.

Runs the E. coli example (all devices emulated in-process, the plant advanced before each
scan) with a 0.1 s scan period at speed 1 for ``--minutes`` of wall time, while two threads
act as a busy operator: one calls the in-process API (tags, loop settings, trends) in a tight
loop, one does the same over the REPL socket. Prints p50/p99/max lateness, overruns and the
process's resident memory (VmRSS, VmHWM).

    python tests/benchmarks/scan_lateness.py --minutes 10
"""

from __future__ import annotations

import argparse
import threading
import tomllib
from pathlib import Path
from tempfile import TemporaryDirectory

import edgectl
from edgectl.config import to_toml_text
from edgectl.runtime.build import open_run

ROOT = Path(__file__).resolve().parents[2]


def rss_mb() -> tuple[float, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--period-s", type=float, default=0.1)
    ap.add_argument(
        "--repl-pause-ms",
        type=float,
        default=0.0,
        help="pause between REPL calls (0: spin, the adversarial case)",
    )
    args = ap.parse_args()
    with TemporaryDirectory() as tmp:
        data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
        data["reactor"]["scan_period_s"] = args.period_s
        cfg = Path(tmp) / "reactor.toml"
        cfg.write_text(to_toml_text(data))
        run = open_run(cfg, speed=1.0, db=Path(tmp) / "run.db", socket_path=Path(tmp) / "r.sock")
        stop = threading.Event()
        calls = [0, 0]
        pause_s = args.repl_pause_ms / 1000.0

        def busy_local() -> None:
            r = edgectl.connect(run.controller)
            while not stop.is_set():
                r.tags["temp_c"]
                _ = r.loops["temp"].settings
                r.info()
                calls[0] += 3
                stop.wait(pause_s)

        def busy_socket() -> None:
            with edgectl.connect(Path(tmp) / "r.sock") as r:
                while not stop.is_set():
                    r.tags["ph"]
                    _ = r.loops["ph"].kp
                    r.trend("temp_c", 60.0)
                    calls[1] += 3
                    stop.wait(pause_s)

        threads = [threading.Thread(target=f, daemon=True) for f in (busy_local, busy_socket)]
        for t in threads:
            t.start()
        try:
            run.run(args.minutes * 60.0)
        finally:
            stop.set()
            for t in threads:
                t.join(5)
            lat = run.scheduler.lateness.summary_ms()
            stats = run.scheduler.stats
            rss, hwm = rss_mb()
            run.close()
    print(
        f"scan lateness at {1 / args.period_s:g} Hz over {args.minutes:g} min "
        f"({stats.scans} scans, {len(run.hub.workers) if run.hub.workers else 'all'} I/O workers, "
        f"REPL calls {calls[0]} in-process + {calls[1]} over the socket, "
        f"pause {args.repl_pause_ms:g} ms):"
    )
    print(
        f"  p50 {lat['p50_ms']:.3f} ms   p99 {lat['p99_ms']:.3f} ms   max {lat['max_ms']:.3f} ms"
        f"   overruns {stats.overruns}"
    )
    print(f"  controller resident memory: {rss:.1f} MB (peak {hwm:.1f} MB)")


if __name__ == "__main__":
    main()
