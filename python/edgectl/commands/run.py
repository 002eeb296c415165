"""``edgectl run CONFIG``: run a reactor; ``sim://`` ports run against the simulated plant.

Prints where the historian and the REPL socket are, scans until ``--duration`` hours of clock
time have passed (or SIGINT/SIGTERM), makes every output safe, and prints the run summary.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a reactor (sim:// ports run against the simulated plant)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", type=Path, help="reactor configuration (TOML)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="clock speed: simulated seconds per wall second (default 1 = real time)",
    )
    p.add_argument("--duration", type=float, default=None, help="hours of clock time to run")
    p.add_argument("--db", type=Path, default=None, help="historian file (default runs/NAME.db)")
    p.add_argument("--socket", type=Path, default=None, help="REPL socket (default runs/NAME.sock)")
    p.add_argument(
        "--on-restart",
        choices=("resume", "hold"),
        default=None,
        help="when the historian holds a saved state: resume it, or hold every output safe",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the simulated plant")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 when a loop misses its acceptance band (for CI and HIL)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from edgectl.runtime.build import open_run

    run = open_run(
        args.config,
        speed=args.speed,
        db=args.db,
        socket_path=args.socket,
        on_restart=args.on_restart,
        seed=args.seed,
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        run.stop()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    print(
        f"edgectl run: {run.cfg.reactor.name}: historian {run.historian.path}, "
        f"socket {run.rpc.path if run.rpc else '-'}, speed {args.speed:g}x"
        f"{', resumed' if run.resumed else ''}",
        flush=True,
    )
    t0 = time.monotonic()
    reason = "normal"
    try:
        run.run(None if args.duration is None else args.duration * 3600.0)
    except BaseException as exc:
        reason = f"error: {type(exc).__name__}: {exc}"
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        figures = run.figures()
        summary = run.summary()
        run.close(reason)
    print(summary)
    print(f"  wall time              {time.monotonic() - t0:.1f} s")
    if args.check and not all(f.ok for f in figures.values()):
        print("edgectl run: a loop missed its acceptance band", file=sys.stderr)
        return 1
    return 0
