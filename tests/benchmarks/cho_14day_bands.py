"""The CHO example over its whole culture, per plant seed: each loop's worst deviation after
settling, the feed start, feed limitations, feed delivered and final volume (issue 13 item 6).

Each seed is one ``edgectl run examples/cho-fedbatch-2L.toml --seed N --speed 1e6 --duration
336`` as a child process (the lockstep clock: as fast as the scan and the I/O workers allow,
the figures depend on config and seed only), at most ``--jobs`` at a time, under ``nice``. The
figures are read back from each run's historian with the run summary's own functions
(:func:`edgectl.runtime.summary.loop_figures`), so they are the verdicts ``edgectl run``
prints. A script, no asserts::

    .venv/bin/python tests/benchmarks/cho_14day_bands.py                 # seeds 11 12 13, ~15 min
    .venv/bin/python tests/benchmarks/cho_14day_bands.py --seeds 11 --hours 72
    .venv/bin/python tests/benchmarks/cho_14day_bands.py --dbs a.db b.db  # figures of old runs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "cho-fedbatch-2L.toml"
LOOPS = ("temp", "ph", "do", "glucose")


def run_seeds(seeds: list[int], hours: float, jobs: int, out: Path) -> list[tuple[int, Path]]:
    """Run the example once per seed (``jobs`` at a time); the historian files in ``out``."""
    pending = list(seeds)
    running: list[tuple[int, Path, subprocess.Popen[bytes], float]] = []
    done: list[tuple[int, Path]] = []
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            db = out / f"cho-seed{seed}.db"
            cmd = [
                "nice", "-n", "10", sys.executable, "-c",
                "import sys; from edgectl.cli import main; sys.exit(main(sys.argv[1:]))",
                "run", str(CONFIG), "--seed", str(seed), "--speed", "1e6",
                "--duration", f"{hours:g}", "--db", str(db),
                "--socket", str(out / f"cho-seed{seed}.sock"),
            ]  # fmt: skip
            log = (out / f"cho-seed{seed}.log").open("wb")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            running.append((seed, db, proc, time.monotonic()))
        time.sleep(2.0)
        for item in list(running):
            seed, db, proc, t0 = item
            if proc.poll() is not None:
                running.remove(item)
                print(
                    f"seed {seed}: rc {proc.returncode}, {time.monotonic() - t0:.0f} s wall",
                    file=sys.stderr,
                )
                done.append((seed, db))
    return sorted(done)


def figures(db: Path) -> dict[str, object]:
    """Loop figures, feed start, limitations, doses and volume of one run's historian."""
    from edgectl.historian import HistoryReader, SampleSeries
    from edgectl.runtime.reactor_config import load_reactor_config
    from edgectl.runtime.summary import limitation_summary, loop_figures

    cfg = load_reactor_config(CONFIG)
    with HistoryReader(db) as r:
        run = r.runs()[0]
        t0 = run.started_s
        figs = loop_figures(r, cfg, t0)
        events = r.events(t0)
        phases = [e for e in events if e.kind == "phase"]
        end_s = max(float(e.time_s) for e in events) - t0
        feed = r.samples("feed_ml_min", t0)
        base = r.samples("base_ml_min", t0)

        def dosed_ml(s: SampleSeries) -> float:
            t, v = s.times_s, s.values
            return float(np.sum(v[:-1] * np.diff(t)) / 60.0) if len(t) > 1 else 0.0

        glc = r.samples("glucose_g_l", t0)
        rel_h = (glc.times_s - t0) / 3600.0
        good = glc.quality == 0
        days: dict[int, float] = {}
        for d in range(1, 15):
            sel = good & (rel_h >= 24 * d) & (rel_h < 24 * d + 24)
            if np.any(sel):
                days[d] = float(np.max(np.abs(glc.values[sel] - 2.5)))
    return {
        "loops": figs,
        "feed_start_h": (float(phases[0].time_s) - t0) / 3600.0 if phases else float("nan"),
        "limitation": limitation_summary(events, t0, end_s),
        "feed_ml": dosed_ml(feed),
        "base_ml": dosed_ml(base),
        "glucose_day_worst": days,
    }


def report(rows: list[tuple[str, dict[str, object]]]) -> None:
    print("| seed | " + " | ".join(LOOPS) + " | feed start | limitation | feed / base |")
    print("|---|" + "---|" * (len(LOOPS) + 3))
    for name, f in rows:
        cells = []
        for loop in LOOPS:
            lf = f["loops"][loop]  # type: ignore[index]
            cell = f"{lf.max_abs_dev:.3g} ({lf.fraction_within * 100:.1f} %"
            cell += f", {'PASS' if lf.ok else 'FAIL'})"
            if lf.good_fraction < 0.99:
                cell += f", not GOOD {(1 - lf.good_fraction) * 100:.1f} %"
            cells.append(cell)
        print(
            f"| {name} | " + " | ".join(cells) + f" | {f['feed_start_h']:.3f} h | "
            f"{f['limitation']} | {f['feed_ml']:.0f} / {f['base_ml']:.0f} mL |"
        )
    for name, f in rows:
        days = f["glucose_day_worst"]
        print(
            f"{name}: glucose worst |dev| per day "
            + " ".join(f"d{d}:{v:.2f}" for d, v in days.items())  # type: ignore[attr-defined]
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    ap.add_argument("--hours", type=float, default=336.0)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (2 cores)")
    ap.add_argument("--dbs", type=Path, nargs="+", help="report these historians, run nothing")
    args = ap.parse_args(argv)
    if args.dbs:
        report([(db.stem, figures(db)) for db in args.dbs])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        done = run_seeds(args.seeds, args.hours, args.jobs, Path(tmp))
        report([(str(seed), figures(db)) for seed, db in done])
    return 0


if __name__ == "__main__":
    sys.exit(main())
