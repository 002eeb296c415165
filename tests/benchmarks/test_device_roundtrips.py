"""pytest-benchmark: one read round trip of a driver over a pty, beside the peer client.

Disabled by default (``--benchmark-disable`` in addopts: each runs once as a smoke test);
``make bench`` enables them. The full table is ``tests/benchmarks/device_roundtrips.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgectl.devices import AlicatMfc, HamiltonPhProbe
from edgectl.emulators import create_emulator
from edgectl.emulators.server import PtyServer
from edgectl.plant import ConstantPlant


@pytest.fixture
def pty() -> Iterator[object]:
    servers: list[PtyServer] = []

    def serve(profile: str) -> PtyServer:
        srv = PtyServer(create_emulator(profile, ConstantPlant(), params={"delay_scale": "0"}))
        servers.append(srv)
        return srv

    yield serve
    for s in servers:
        s.stop()


def test_alicat_read_flow_roundtrip(benchmark, pty) -> None:  # type: ignore[no-untyped-def]
    with AlicatMfc(pty("alicat/mc-series").path) as mfc:
        assert benchmark(mfc.read_flow_sccm) == pytest.approx(1000.0)


def test_hamilton_read_ph_roundtrip(benchmark, pty) -> None:  # type: ignore[no-untyped-def]
    with HamiltonPhProbe(pty("hamilton/arc-ph").path) as probe:
        assert benchmark(probe.read_ph) == pytest.approx(7.0)


def test_minimalmodbus_read_block_roundtrip_peer(benchmark, pty) -> None:  # type: ignore[no-untyped-def]
    minimalmodbus = pytest.importorskip("minimalmodbus")
    inst = minimalmodbus.Instrument(pty("hamilton/arc-ph").path, 1)
    inst.serial.stopbits = 2
    inst.serial.timeout = 0.3
    try:
        words = benchmark(inst.read_registers, 2089, 10, 3)
        assert words[0] == 0x1000
    finally:
        inst.serial.close()
