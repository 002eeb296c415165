"""``edgectl sample add RUN --tag TAG --value V [--taken-at S] [--analyser NAME] [--reason R]``:
enter an at-line reference into a running controller.

``RUN`` is the run's REPL socket (``runs/NAME.sock``, printed by ``edgectl run``). ``--tag`` is
the soft sensor's tag (``glucose_g_l``) or its name (``glucose``); ``--taken-at`` is the
sampling time in seconds on the run's clock (default: now). The value goes through the
operator service like any change: you are identified by the socket (your OS user), your role
needs the ``add_reference`` right, the change is audited with you as the person who entered it,
and the soft sensor's correction uses it only from now on (prequentially). Prints the outcome
(the soft sensor's error at the sampling time; accepted or rejected by the outlier gate).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edgectl.commands._args import finite_float, plain_text
from edgectl.errors import InvalidInputError

__all__ = ["add_parser", "main", "resolve_sensor"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="enter an at-line reference into a running controller",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="one reference value for a soft sensor")
    add.add_argument("run", help="the run's REPL socket")
    add.add_argument("--tag", required=True, help="soft-sensor tag or name")
    add.add_argument("--value", required=True, type=finite_float, help="reference value")
    add.add_argument(
        "--taken-at", type=finite_float, metavar="S", help="sampling time, run clock s"
    )
    add.add_argument("--analyser", default="", help="the instrument that measured it")
    add.add_argument("--reason", default="", help="recorded with the change")
    parser.set_defaults(func=main)


def resolve_sensor(status: dict[str, Any], tag: str) -> str:
    """The soft sensor named ``tag`` or writing tag ``tag``."""
    if tag in status:
        return tag
    for name, s in status.items():
        if isinstance(s, dict) and s.get("tag") == tag:
            return name
    tags = sorted(str(s.get("tag")) for s in status.values() if isinstance(s, dict))
    raise InvalidInputError(
        f"--tag {tag!r}: no soft sensor with that name or tag (names: {sorted(status)}, "
        f"tags: {tags})"
    )


def main(args: argparse.Namespace) -> int:
    from edgectl.remote import connect

    r = connect(args.run)
    try:
        sensor = resolve_sensor(r.softsensors(), args.tag)
        r.reason = args.reason
        out = r.add_reference(sensor, args.value, args.taken_at, analyser=args.analyser)
    finally:
        close = getattr(r, "close", None)
        if callable(close):
            close()
    print(json.dumps({"sensor": sensor, **out}, default=str))
    return 0
