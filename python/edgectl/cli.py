"""The ``edgectl`` command line.

Each sub-command lives in its own module under :mod:`edgectl.commands` with two functions,
``add_parser(subparsers)`` and ``main(args) -> int``. A bad command-line value is refused by
argparse (its ``type=`` validators, :mod:`edgectl.commands._args`) with one line naming the
option, exit status 2. Errors of the :mod:`edgectl.errors` hierarchy and OS errors (a missing
file, a permission) are printed as one line ``edgectl CMD: error: ...`` and exit with status
2; nothing else is swallowed. A closed standard output (``edgectl history export DB -o - |
head``) ends the command quietly with status 141, as a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    "report",
    "users",
    "service",
    "softsensor",
    "sample",
    "fleet",
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


#: exit status of a command whose standard output was closed (128 + SIGPIPE)
EXIT_BROKEN_PIPE = 141


def _describe(exc: BaseException) -> str:
    """One line for an error: an OSError names its file and the system's reason."""
    if isinstance(exc, OSError) and not isinstance(exc, EdgectlError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        return ": ".join([*names, exc.strerror]) if names else exc.strerror
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return "; ".join(lines) or type(exc).__name__


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush of what
    is still buffered does not raise again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:  # --help into a closed pipe
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    try:
        status = int(args.func(args))
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except (EdgectlError, OSError) as exc:
        print(f"edgectl {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
