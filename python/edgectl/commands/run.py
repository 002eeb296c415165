"""``edgectl run CONFIG``: run a reactor; ``sim://`` ports run against the simulated plant.

Prints where the historian and the REPL socket are, scans until ``--duration`` hours of clock
time have passed, or with ``--until-end`` until the recipe enters its end phase (``[recipe] end``,
e.g. the harvest), or SIGINT/SIGTERM; makes every output safe, and prints the run summary. On a
terminal, one line rewritten at most once a second shows the phase, the simulated time, the
loops' PVs, the feed rate and the speed achieved; off a terminal nothing is printed meanwhile.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import Any

from edgectl.commands._args import existing_file, new_file, plain_text, positive_float, seed


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a reactor (sim:// ports run against the simulated plant)",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", type=existing_file, help="reactor configuration (TOML)")
    p.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        help="clock speed: simulated seconds per wall second (default 1 = real time)",
    )
    p.add_argument(
        "--duration", type=positive_float, default=None, help="hours of clock time to run"
    )
    p.add_argument(
        "--until-end",
        action="store_true",
        help="stop when the recipe enters its end phase ([recipe] end, e.g. harvest)",
    )
    p.add_argument(
        "--db",
        type=new_file,
        default=None,
        help="historian file; its directory must exist (default runs/NAME.db, runs/ created)",
    )
    p.add_argument(
        "--socket",
        type=new_file,
        default=None,
        help="REPL socket; its directory must exist (default runs/NAME.sock)",
    )
    p.add_argument(
        "--on-restart",
        choices=("resume", "hold"),
        default=None,
        help="when the historian holds a saved state: resume it, or hold every output safe",
    )
    p.add_argument(
        "--seed", type=seed, default=None, help="seed of the simulated plant (0 to 2**64-1)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 when a loop misses its acceptance band (for CI and HIL)",
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=None,
        help="serve the operator dashboard there (off by default; loopback unless --tls-cert "
        "and --tls-key are given and the users file has users)",
    )
    p.add_argument("--tls-cert", type=existing_file, default=None, help="dashboard TLS cert")
    p.add_argument("--tls-key", type=existing_file, default=None, help="dashboard TLS key")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from edgectl.runtime.build import open_run
    from edgectl.runtime.progress import ProgressLine

    run = open_run(
        args.config,
        speed=args.speed,
        db=args.db,
        socket_path=args.socket,
        on_restart=args.on_restart,
        seed=args.seed,
    )

    dashboard = None
    if args.http:
        from edgectl.web import DashboardServer, parse_http

        host, port = parse_http(args.http)
        try:
            dashboard = DashboardServer(
                run.controller.operator, host, port, tls_cert=args.tls_cert, tls_key=args.tls_key
            ).start()
        except BaseException:
            run.close("failed to start the dashboard")
            raise

    def _stop(signum: int, frame: FrameType | None) -> None:
        # the run stops after the current scan and records why (historian run.stop event)
        run.controller.request_stop(f"signal {signal.Signals(signum).name}")

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.monotonic()
    reason = "normal"
    progress: ProgressLine | None = None
    try:
        # inside the try: a closed stdout must not leave the outputs unsafe
        print(
            f"edgectl run: {run.cfg.reactor.name}: historian {run.historian.path}, "
            f"socket {run.rpc.path if run.rpc else '-'}, speed {args.speed:g}x"
            f"{', resumed' if run.resumed else ''}",
            flush=True,
        )
        if dashboard is not None:
            print(f"edgectl run: dashboard {dashboard.url}", flush=True)
        if sys.stdout.isatty():
            progress = ProgressLine(run.controller, sys.stdout, speed=args.speed).start()
        run.run(None if args.duration is None else args.duration * 3600.0, until_end=args.until_end)
    except BaseException as exc:
        reason = f"error: {type(exc).__name__}: {exc}"
        raise
    finally:
        if progress is not None:
            progress.stop()
        if dashboard is not None:
            dashboard.close()
        for s, h in old.items():
            signal.signal(s, h)
        try:
            figures = run.figures()
            summary = run.summary()
        finally:
            # an operator's stop or a signal is the reason, unless the run failed
            run.close(reason if reason != "normal" else (run.controller.stop_reason or reason))
    print(summary)
    print(f"  wall time              {time.monotonic() - t0:.1f} s")
    if args.check and not all(f.ok for f in figures.values()):
        print("edgectl run: a loop missed its acceptance band", file=sys.stderr)
        return 1
    return 0
