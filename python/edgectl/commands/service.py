"""``edgectl service install CONFIG``: the systemd unit and udev rules of a reactor.

Writes ``edgectl-<reactor>.service`` (``Type=notify`` with a watchdog fed by the scan,
``Restart=on-failure``, the configuration's restart policy, groups ``dialout`` and ``gpio``)
and ``99-edgectl-<reactor>.rules`` (``/dev/edgectl/<device>`` for each serial device, matched
on its USB adapter). Without ``--output`` they go to ``/etc/systemd/system`` and
``/etc/udev/rules.d``; ``--enable`` then reloads systemd and udev and starts the unit.

A device's USB identity comes from ``--usb DEVICE=VID:PID[:SERIAL]`` or, when its configured
port exists now, from the adapter plugged into it; a device with neither gets a commented rule
that says how to find it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from edgectl.commands._args import plain_text
from edgectl.errors import ConfigError

__all__ = ["add_parser", "install", "main"]

SYSTEMD_DIR = Path("/etc/systemd/system")
UDEV_DIR = Path("/etc/udev/rules.d")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "service",
        help="systemd unit and udev rules for running a reactor on a Pi",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    i = sub.add_parser("install", help="write the unit and udev rules of CONFIG")
    i.add_argument("config", type=Path, help="reactor configuration (TOML)")
    i.add_argument("--user", default="edgectl", help="account the controller runs as")
    i.add_argument(
        "--output",
        type=Path,
        default=None,
        help="folder for both files (default: /etc/systemd/system and /etc/udev/rules.d)",
    )
    i.add_argument(
        "--usb",
        action="append",
        default=[],
        metavar="DEVICE=VID:PID[:SERIAL]",
        help="USB identity of a serial device's adapter (repeatable)",
    )
    i.add_argument("--watchdog-s", type=int, default=None, help="WatchdogSec (default 30)")
    i.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="working directory of the run (default /var/lib/edgectl/<reactor>)",
    )
    i.add_argument(
        "--executable",
        type=Path,
        default=None,
        help="edgectl entry point (default: the one beside this Python)",
    )
    i.add_argument(
        "--enable",
        action="store_true",
        help="then run systemctl daemon-reload, enable --now, and reload udev",
    )
    p.set_defaults(func=main)


def _default_executable() -> Path:
    beside = Path(sys.executable).parent / "edgectl"
    if beside.exists():
        return beside.absolute()
    found = shutil.which("edgectl")
    if found is None:
        raise ConfigError("no edgectl executable found; pass --executable PATH")
    return Path(found).absolute()


def install(args: argparse.Namespace) -> tuple[Path, Path, list[str]]:
    """Write the unit and the rules; returns their paths and the devices without identity."""
    from serial.tools import list_ports

    from edgectl.runtime.reactor_config import load_reactor_config
    from edgectl.service.units import (
        identities_from_ports,
        parse_usb,
        render_udev_rules,
        render_unit,
        unit_name,
    )

    config_path = args.config.resolve()
    cfg = load_reactor_config(config_path)
    identities = identities_from_ports(cfg, list_ports.comports())
    identities.update(parse_usb(spec) for spec in args.usb)
    unit = render_unit(
        cfg,
        config_path,
        executable=args.executable or _default_executable(),
        user=args.user,
        working_directory=args.workdir,
        watchdog_s=args.watchdog_s,
    )
    rules, missing = render_udev_rules(cfg, config_path, identities)
    unit_dir = args.output or SYSTEMD_DIR
    rules_dir = args.output or UDEV_DIR
    unit_path = unit_dir / unit_name(cfg)
    rules_path = rules_dir / f"99-edgectl-{cfg.reactor.name}.rules"
    for folder in {unit_dir, rules_dir}:
        folder.mkdir(parents=True, exist_ok=True)
    unit_path.write_text(unit)
    rules_path.write_text(rules)
    return unit_path, rules_path, missing


def main(args: argparse.Namespace) -> int:
    unit_path, rules_path, missing = install(args)
    print(f"edgectl service: wrote {unit_path}")
    print(f"edgectl service: wrote {rules_path}")
    for device in missing:
        print(
            f"edgectl service: {device}: USB identity unknown, its rule is commented out "
            f"(plug it in and rerun, or pass --usb {device}=VID:PID:SERIAL)",
            file=sys.stderr,
        )
    steps = [
        ["udevadm", "control", "--reload"],
        ["udevadm", "trigger", "--subsystem-match=tty"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", unit_path.name],
    ]
    if not args.enable:
        print("then: " + " && ".join(" ".join(s) for s in steps))
        return 0
    for step in steps:
        print("$ " + " ".join(step), flush=True)
        done = subprocess.run(step, check=False)
        if done.returncode != 0:
            print(f"edgectl service: {step[0]} failed ({done.returncode})", file=sys.stderr)
            return 1
    return 0
