"""``edgectl rig CONFIG [--speed X] [--seed N] [--fault-schedule TOML]``: an emulated bench rig.

One simulated plant (the config's ``[plant]``) on a scaled real-time clock, every device of the
config on its own pty, and the GPIO header behind a loopback bridge (see
:mod:`edgectl.emulators.rig`). Prints ONE JSON line first (``devices``: device → pty path,
``lines``, ``gpio_bridge``: ``tcp://127.0.0.1:PORT``, ``control``: the control socket), then
runs until killed. Control commands (``status``, ``plant-fault``, ``device-fault``,
``disconnect``, ``power``, ...) are read from standard input and from the control socket; each
gets one reply line.

A controller talks to it as to a real rig: its config names the pty paths as ports and
``[gpio] pin_factory = "bridge"`` with the bridge address (or ``EDGECTL_GPIO_BRIDGE``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any

from edgectl.commands._args import existing_file, plain_text, positive_float, seed


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "rig",
        help="serve an emulated rig: plant, devices on ptys, GPIO bridge",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config", type=existing_file, help="reactor configuration with sim:// ports and [plant]"
    )
    p.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        help="simulated seconds per wall second (default 1)",
    )
    p.add_argument(
        "--seed", type=seed, default=None, help="plant seed, 0 to 2**64-1 (default: the config's)"
    )
    p.add_argument(
        "--fault-schedule",
        type=existing_file,
        default=None,
        help="TOML of [[faults]] at plant times",
    )
    p.add_argument(
        "--start-on-connect",
        action="store_true",
        help="hold the plant clock until a controller connects to the GPIO bridge",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from edgectl.emulators.rig import Rig, load_fault_schedule

    schedule = load_fault_schedule(args.fault_schedule) if args.fault_schedule else None
    stop = threading.Event()
    rig = Rig(
        args.config,
        speed=args.speed,
        seed=args.seed,
        start_on_connect=args.start_on_connect,
        schedule=schedule,
    )
    try:
        port = rig.serve_control()
        info = rig.announcement()
        info["control"] = f"tcp://127.0.0.1:{port}"
        print(json.dumps(info), flush=True)

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

        def _stdin() -> None:
            for line in sys.stdin:  # end of input just ends the commands, not the rig
                if line.strip() == "quit":
                    stop.set()
                    break
                if line.strip():
                    print(rig.command(line), flush=True)

        threading.Thread(target=_stdin, name="rig-stdin", daemon=True).start()
        while not stop.wait(0.5):
            pass
    finally:
        rig.close()
    return 0
