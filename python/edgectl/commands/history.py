"""``edgectl history``: read a historian database from the shell.

``edgectl history export DB -o out.csv [--tags a,b] [--start S] [--end S] [--layout long|wide]``
writes tag samples as CSV (``-o -`` for standard output; layouts in
:mod:`edgectl.historian.export`). ``edgectl history tags DB`` lists every tag with its sample
count, latest value and GOOD-sample statistics; ``edgectl history runs DB`` lists the runs.
Times are seconds on the run's time base (Unix time for real runs).
"""

from __future__ import annotations

import argparse
import sys

from edgectl.commands._args import finite_float, new_file, not_a_directory, plain_text
from edgectl.errors import InvalidInputError
from edgectl.historian.audit import format_time
from edgectl.historian.export import LAYOUTS, export_csv
from edgectl.historian.store import HistoryReader

__all__ = ["add_parser", "main"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "history",
        help="export or summarise the samples of a historian database",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write tag samples as CSV")
    export.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    export.add_argument(
        "-o", "--output", required=True, type=_output, help="CSV file, or - for stdout"
    )
    export.add_argument("--tags", help="comma-separated tag names (default: every tag)")
    export.add_argument("--start", type=finite_float, metavar="S", help="first time, seconds")
    export.add_argument("--end", type=finite_float, metavar="S", help="last time, seconds")
    export.add_argument("--layout", choices=LAYOUTS, default="long", help="default: long")
    tags = actions.add_parser("tags", help="list tags with counts, latest value and statistics")
    tags.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    runs = actions.add_parser("runs", help="list the runs recorded in the database")
    runs.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    parser.set_defaults(func=main)


def _output(text: str) -> str:
    """``-`` (standard output) or a CSV file whose directory exists."""
    return text if text == "-" else str(new_file(text))


def main(args: argparse.Namespace) -> int:
    if args.action == "export" and None not in (args.start, args.end) and args.start > args.end:
        raise InvalidInputError(f"--start {args.start:g} is after --end {args.end:g}")
    with HistoryReader(args.db) as reader:
        if args.action == "export":
            names = None if args.tags is None else [t.strip() for t in args.tags.split(",") if t]
            n = export_csv(
                reader,
                args.output,
                tags=names,
                start_s=args.start,
                end_s=args.end,
                layout=args.layout,
            )
            if args.output != "-":
                print(f"wrote {n} rows ({args.layout}) to {args.output}", file=sys.stderr)
        elif args.action == "tags":
            latest = reader.latest()
            print(
                f"{'tag':<24} {'unit':<8} {'samples':>9} {'latest':>12} {'min':>10} "
                f"{'mean':>10} {'max':>10}"
            )
            for tag in reader.tags():
                stats = reader.stats(tag.name)
                last = latest.get(tag.name)
                last_text = f"{last.value:.6g}" if last else "-"
                print(
                    f"{tag.name:<24} {tag.unit:<8} {stats.n_samples:>9} {last_text:>12} "
                    f"{stats.min:>10.4g} {stats.mean:>10.4g} {stats.max:>10.4g}"
                )
        else:
            for run in reader.runs():
                stop = format_time(run.stopped_s) if run.stopped_s is not None else "running/killed"
                print(
                    f"{run.run_uid} {format_time(run.started_s)} → {stop} "
                    f"{run.stop_reason or ''} config={run.config_hash or '-'} "
                    f"audit_head={run.audit_head or '-'}"
                )
    return 0
