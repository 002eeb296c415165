"""``edgectl audit``: verify and show the audit trail of a historian database.

``edgectl audit verify DB [--head HASH]`` exits 0 when the chain is intact, 1 when it is not
(naming the first bad record and why), 2 when the file cannot be read. ``edgectl audit show
DB [--last N] [--target T] [--json]`` prints the records and the head hash, which can be kept
outside the file as an anchor (``--head`` then also detects a rewritten or truncated tail).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from edgectl.commands._args import int_in_range, not_a_directory, plain_text
from edgectl.historian.audit import AuditTrail

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
    verify.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
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
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    with AuditTrail.open(args.db, readonly=True) as trail:
        if args.action == "verify":
            result = trail.verify(expected_head=args.head)
            stream = sys.stdout if result.is_intact else sys.stderr
            print(f"{args.db}: {result.describe()}", file=stream)
            return 0 if result.is_intact else 1
        records = trail.records(target=args.target, last=args.last)
        for record in records:
            if args.json:
                print(json.dumps(dataclasses.asdict(record), ensure_ascii=False))
            else:
                print(record.describe())
        if not args.json:
            head = trail.head()
            print(f"head: #{head.seq} {head.hash}" if head else "head: empty trail")
    return 0
