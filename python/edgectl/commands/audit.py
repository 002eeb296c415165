"""``edgectl audit``: verify and show the audit trail of a historian database.

``edgectl audit verify DB [--head HASH]`` exits 0 when the chain is intact, 1 when it is not
(naming the first bad record and why), 2 when the file cannot be read. ``edgectl audit show
DB [--last N] [--target T] [--json]`` prints the records and the head hash, which can be kept
outside the file as an anchor (``--head`` then also detects a rewritten tail; a truncated tail
is found from the head stored in the file). Times of runs on a simulated clock print as
``sim t=+S s`` (seconds since that run's start), wall-clock times as UTC. ``edgectl audit export
DB -o FILE`` writes the trail as JSON lines with ``FILE.sha256`` beside it; ``edgectl audit verify
--export FILE`` checks both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from edgectl.commands._args import int_in_range, not_a_directory, plain_text
from edgectl.historian.audit import AuditTrail
from edgectl.historian.audit_export import export_audit, verify_export

__all__ = ["add_parser", "main"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="verify or show the hash-chained audit trail of a historian database",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check the hash chain; exit 1 if tampered")
    verify.add_argument(
        "db", nargs="?", type=not_a_directory, help="historian database (SQLite file)"
    )
    verify.add_argument(
        "--export", metavar="FILE", help="check an export against FILE.sha256 and its chain"
    )
    verify.add_argument(
        "--head",
        metavar="HASH",
        help="a head hash kept elsewhere; fail if it is no longer in the chain",
    )
    show = actions.add_parser("show", help="print audit records and the head hash")
    show.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    show.add_argument(
        "--last", type=int_in_range(1), metavar="N", help="only the last N records (N >= 1)"
    )
    show.add_argument("--target", help="only records for this target (e.g. loops.ph.kp)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    export = actions.add_parser("export", help="write the trail as JSON lines + FILE.sha256")
    export.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="export file")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.action == "verify" and args.export is not None:
        checked = verify_export(Path(args.export))
        stream = sys.stdout if checked.is_intact else sys.stderr
        print(f"{args.export}: {checked.describe()}", file=stream)
        if not checked.is_intact:
            return 1
        if args.db is None:
            return 0
        args.head = args.head or checked.head_hash  # the export's head must be in the chain
    if args.db is None:
        print("edgectl audit verify: give a database, --export FILE, or both", file=sys.stderr)
        return 2
    with AuditTrail.open(args.db, readonly=True) as trail:
        if args.action == "export":
            n, digest = export_audit(trail, Path(args.db), Path(args.output))
            print(f"wrote {n} records to {args.output}, sha256 {digest}", file=sys.stderr)
            return 0
        if args.action == "verify":
            result = trail.verify(expected_head=args.head)
            stream = sys.stdout if result.is_intact else sys.stderr
            print(f"{args.db}: {result.describe()}", file=stream)
            return 0 if result.is_intact else 1
        records = trail.records(target=args.target, last=args.last)
        clocks = trail.run_clocks()
        for record in records:
            clock = clocks.get(record.run_uid) if record.run_uid is not None else None
            if args.json:
                obj = dataclasses.asdict(record)
                obj["clock"] = None if clock is None else clock.kind
                print(json.dumps(obj, ensure_ascii=False))
            else:
                print(record.describe(clock))
        if not args.json:
            head = trail.head()
            print(f"head: #{head.seq} {head.hash}" if head else "head: empty trail")
    return 0
