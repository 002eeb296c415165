"""``edgectl profiles check [PATH]``: validate firmware and board profiles.

Every ``*.toml`` under PATH (default: the shipped ``firmware_profiles/``) is decoded with the
profile schema (:mod:`edgectl.io.profile`); each bad file is reported on one line naming the
file and the key. Exit status 0 when all are valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgectl.commands._args import existing_path, plain_text
from edgectl.errors import ConfigError
from edgectl.io.profile import BoardProfile, iter_profiles, load_any_profile

__all__ = ["add_parser", "check", "main"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "profiles",
        help="validate firmware profiles",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = sub.add_parser("check", help="decode every profile under PATH")
    c.add_argument(
        "path",
        nargs="?",
        type=existing_path,
        default=None,
        help="file or folder (default: shipped)",
    )
    c.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=main)


def check(path: str | Path | None = None, *, quiet: bool = False) -> tuple[int, int]:
    """Validate profiles; print one line per file; returns (n_ok, n_bad)."""
    ok = bad = 0
    for file in iter_profiles(path):
        try:
            profile = load_any_profile(file)
        except ConfigError as exc:
            bad += 1
            print(f"FAIL {exc}", file=sys.stderr)
            continue
        ok += 1
        if not quiet:
            if isinstance(profile, BoardProfile):
                what = f"board {profile.board.model}"
            else:
                what = f"{profile.device.kind} {profile.device.protocol}"
            print(f"ok   {file} ({what})")
    return ok, bad


def main(args: argparse.Namespace) -> int:
    ok, bad = check(args.path, quiet=args.quiet)
    print(f"{ok} profile(s) valid, {bad} invalid")
    return 0 if bad == 0 else 1
