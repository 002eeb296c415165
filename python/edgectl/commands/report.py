"""``edgectl report RUN.db -o report.html``: the batch record of a run (self-contained HTML:
metadata and config hash, phase timeline, one plot per loop with setpoint and band, feeds,
alarms, soft sensors against the at-line references, the audit trail with e-signatures and its
verdict, the loop verdict table). Print it from a browser for a PDF."""

from __future__ import annotations

import argparse
from typing import Any

from edgectl.commands._args import existing_file, new_file, plain_text


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="write the batch report of a run (HTML)",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("db", type=existing_file, help="the run's historian file")
    p.add_argument("-o", "--output", type=new_file, required=True, help="report file (.html)")
    p.add_argument(
        "--config",
        type=existing_file,
        default=None,
        help="reactor configuration (default: the one the run recorded)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from edgectl.report import write_report

    path = write_report(args.db, args.output, args.config)
    print(f"edgectl report: {path} ({path.stat().st_size // 1024} KiB)")
    return 0
