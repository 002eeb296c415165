"""The ``edgectl`` command line.

Each sub-command lives in its own module under :mod:`edgectl.commands` with two functions,
``add_parser(subparsers)`` and ``main(args) -> int``. Errors of the :mod:`edgectl.errors`
hierarchy are printed as one clear line and exit with status 2; nothing else is swallowed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgectl import __version__
from edgectl.errors import EdgectlError

# Sub-command modules, in the order `edgectl --help` lists them.
COMMANDS: tuple[str, ...] = (
    "run",
    "demo",
    "emulate",
    "rig",
    "profiles",
    "calibrate",
    "audit",
    "history",
    "service",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgectl", description="Open bench bioreactor controller."
    )
    parser.add_argument("--version", action="version", version=f"edgectl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"edgectl.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EdgectlError as exc:
        print(f"edgectl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
