"""Round trips per second of each driver against its emulator, over a pty and over sim://.

Run: ``.venv/bin/python tests/benchmarks/device_roundtrips.py [--seconds 0.5]``. Prints a
Markdown table (the README's "Devices and emulators" figures). Where the device's third-party
client is synchronous it is timed on the same pty as the peer. Emulator processing delays are
off (``delay_scale=0``), so the figures measure the software path: pty, framing, parsing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from edgectl.devices import DRIVERS
from edgectl.emulators import create_emulator, reset_emulators
from edgectl.emulators.server import PtyServer
from edgectl.plant import ConstantPlant

READ: dict[str, Callable[[Any], float]] = {
    "alicat/mc-series": lambda d: d.read_flow_sccm(),
    "bronkhorst/el-flow-propar": lambda d: d.read_flow_sccm(),
    "hamilton/arc-ph": lambda d: d.read_ph(),
    "hamilton/arc-do": lambda d: d.read_do_pct(),
    "atlas-scientific/ezo-ph": lambda d: d.read_ph(),
    "atlas-scientific/ezo-do": lambda d: d.read_do_pct(),
    "atlas-scientific/ezo-rtd": lambda d: d.read_temp_c(),
    "mettler-toledo/mt-sics": lambda d: d.read_mass_g(),
    "sartorius/sbi": lambda d: d.read_mass_g(),
    "ismatec/reglo-icc": lambda d: d.read_rpm(),
    "generic/modbus-circulator": lambda d: d.read_temp_c(),
    "watson-marlow/520du": lambda d: d.read_rpm(),
}


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def peer(profile: str, path: str) -> tuple[str, Callable[[], object], Callable[[], None]] | None:
    """A synchronous third-party client reading the same value, or None."""
    if profile == "hamilton/arc-ph":
        import minimalmodbus

        inst = minimalmodbus.Instrument(path, 1)
        inst.serial.timeout = 0.3
        inst.serial.stopbits = 2
        return "minimalmodbus", lambda: inst.read_registers(2089, 10, 3), inst.serial.close
    if profile == "generic/modbus-circulator":
        import minimalmodbus

        inst = minimalmodbus.Instrument(path, 1)
        inst.serial.timeout = 0.3
        inst.serial.baudrate = 9600  # the profile's: minimalmodbus's silent period follows it
        return "minimalmodbus", lambda: inst.read_register(1, 1, signed=True), inst.serial.close
    if profile == "bronkhorst/el-flow-propar":
        import propar

        dev = propar.instrument(path, address=3)

        def stop() -> None:
            dev.master.propar.stop()
            dev.master.propar.run = False

        return "bronkhorst-propar", lambda: dev.readParameter(205), stop
    if profile == "ismatec/reglo-icc":
        from ismatec.peristaltic_pump import RegloICC

        pump = RegloICC(path)
        return "ismatec", lambda: pump.get_flow_rate_rpm(1), pump.disconnect
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    print("| driver | profile | pty round trips/s | sim:// round trips/s | peer client (pty) |")
    print("|---|---|---:|---:|---|")
    for profile, cls in DRIVERS.items():
        reset_emulators()
        plant = ConstantPlant()
        server = PtyServer(create_emulator(profile, plant, params={"delay_scale": "0"}))
        try:
            dev = cls(server.path, profile)
            pty_rate = rate(lambda d=dev, r=READ[profile]: r(d), args.seconds)
            dev.close()
            sim = cls(f"sim://bench?profile={profile}&delay_scale=0", profile)
            sim_rate = rate(lambda d=sim, r=READ[profile]: r(d), args.seconds)
            sim.close()
            p = peer(profile, server.path)
            peer_text = "—"
            if p is not None:
                name, fn, stop = p
                try:
                    peer_rate = rate(fn, args.seconds)
                finally:
                    stop()
                peer_text = f"{name}: {peer_rate:,.0f}/s (driver {pty_rate / peer_rate:.2f}×)"
            print(
                f"| {cls.__name__} | {profile} | {pty_rate:,.0f} | {sim_rate:,.0f} | {peer_text} |",
                flush=True,
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
