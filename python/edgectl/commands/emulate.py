"""``edgectl emulate PROFILE [--pty] [--tcp PORT] [--plant CONFIG] [--fault SPEC]``.

Serves one emulated device until killed. The first line printed is the pty path (with
``--pty``, the default) or ``tcp 127.0.0.1:PORT``; with both, the pty path comes first. Output
is flushed at once so a parent process can read it.

``--plant`` names a TOML file of constant readings (``[readings] ph = 6.9``) until the
simulator is wired in. While running, lines on standard input change faults:
``fault <SPEC>`` (e.g. ``fault garbage*2``) and ``clear``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

import msgspec

from edgectl.commands._args import existing_file, int_in_range, plain_text
from edgectl.config import Struct, load_toml
from edgectl.emulators import create_endpoint
from edgectl.emulators.base import Emulator, EmulatorBus
from edgectl.emulators.server import PtyServer, TcpServer
from edgectl.errors import ConfigError
from edgectl.plant import ConstantPlant

__all__ = ["PlantConfig", "add_parser", "main"]


class PlantConfig(Struct, frozen=True, kw_only=True):
    """``--plant`` file: constant readings (signal name -> value)."""

    readings: dict[str, float] = msgspec.field(default_factory=dict)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "emulate",
        help="serve one emulated device on a pty or TCP port",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("profile", help="vendor/model or a profile path")
    p.add_argument("--pty", action="store_true", help="serve on a new pty (default)")
    p.add_argument(
        "--tcp",
        type=int_in_range(0, 65535),
        metavar="PORT",
        help="serve on 127.0.0.1:PORT (0 = any)",
    )
    p.add_argument(
        "--plant", type=existing_file, metavar="CONFIG", help="TOML of constant readings"
    )
    p.add_argument("--fault", metavar="SPEC", default="", help="e.g. 'garbage*2,late:0.5'")
    p.add_argument("--name", default="emulated", help="device name")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="emulator parameter (address=, delay_scale=, signal_<key>=...)",
    )
    p.set_defaults(func=main)


def _params(items: list[str], fault: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        params[key] = value
    if fault:
        params["fault"] = fault
    return params


def _stdin_commands(emulator: Emulator | EmulatorBus, stop: threading.Event) -> None:
    cmd = ""
    targets: list[Emulator | EmulatorBus] = [emulator]
    if isinstance(emulator, EmulatorBus):
        targets.extend(emulator.members.values())
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        try:
            if cmd == "fault":
                for target in targets:
                    target.faults.apply_spec(arg)
            elif cmd == "clear":
                for target in targets:
                    target.faults.clear()
            elif cmd == "quit":
                break
            else:
                continue
            print(f"ok {cmd} {arg}".rstrip(), flush=True)
        except ConfigError as exc:
            print(f"error {exc}", flush=True)
    if cmd == "quit":
        stop.set()


def main(args: argparse.Namespace) -> int:
    plant = ConstantPlant(load_toml(args.plant, PlantConfig).readings if args.plant else None)
    emulator = create_endpoint(args.profile, plant, args.name, _params(args.param, args.fault))
    servers: list[PtyServer | TcpServer] = []
    stop = threading.Event()
    try:
        if args.pty or args.tcp is None:
            pty = PtyServer(emulator)
            servers.append(pty)
            print(pty.path, flush=True)
        if args.tcp is not None:
            tcp = TcpServer(emulator, args.tcp)
            servers.append(tcp)
            print(f"tcp 127.0.0.1:{tcp.port}", flush=True)

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        threading.Thread(target=_stdin_commands, args=(emulator, stop), daemon=True).start()
        while not stop.wait(0.5):
            pass
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="edgectl")
    add_parser(parser.add_subparsers(dest="command", required=True))
    sys.exit(main(parser.parse_args(["emulate", *sys.argv[1:]])))
