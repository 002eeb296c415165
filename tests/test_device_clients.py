"""Each emulator driven over a real pty by the device's own third-party client.

Clients (test dependencies only; alicat and sartorius are GPL and never imported by shipped
code): alicat, bronkhorst-propar, ismatec, sartorius, labmcp-atlas-ezo, minimalmodbus,
pymodbus. mettler_toledo_device does not install with current dependencies (devices.md §3), so
the MT-SICS emulator is checked with raw bytes against the manual's reply formats.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import serial

from edgectl.emulators import create_emulator
from edgectl.emulators.server import PtyServer, TcpServer
from edgectl.plant import ConstantPlant

READINGS = {
    "air_flow_sccm": 321.5,
    "feed_mass_g": 512.34,
    "reactor_mass_g": 1834.25,
    "ph": 6.85,
    "do_pct": 35.0,
    "temp_c": 36.5,
    "jacket_temp_c": 35.2,
}


@pytest.fixture
def plant() -> ConstantPlant:
    return ConstantPlant(READINGS)


@pytest.fixture
def serve(plant: ConstantPlant) -> Iterator[object]:
    servers: list[PtyServer | TcpServer] = []

    def _serve(profile: str, *, tcp: bool = False, **params: str) -> PtyServer | TcpServer:
        emu = create_emulator(profile, plant, name=profile, params=params)
        srv: PtyServer | TcpServer = TcpServer(emu) if tcp else PtyServer(emu)
        servers.append(srv)
        return srv

    yield _serve
    for s in servers:
        s.stop()


def test_alicat_client(serve, plant: ConstantPlant) -> None:  # type: ignore[no-untyped-def]
    alicat = pytest.importorskip("alicat")
    srv = serve("alicat/mc-series")

    async def run() -> tuple[dict, dict]:  # type: ignore[type-arg]
        async with alicat.FlowController(srv.path) as fc:
            before = await fc.get()
            await fc.set_flow_rate(12.5)
            return before, await fc.get()

    before, after = asyncio.run(run())
    assert before["mass_flow"] == pytest.approx(321.5)
    assert before["control_point"] == "mass flow"  # register 122 = 37
    assert after["setpoint"] == pytest.approx(12.5)
    assert plant.actuators["air_flow_sccm_sp"] == pytest.approx(12.5)


# The client closes its TCP StreamWriter without awaiting wait_closed (its bug, not ours).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_alicat_client_over_tcp(serve) -> None:  # type: ignore[no-untyped-def]
    alicat = pytest.importorskip("alicat")
    srv = serve("alicat/mc-series", tcp=True)

    async def run() -> dict:  # type: ignore[type-arg]
        async with alicat.FlowMeter(f"127.0.0.1:{srv.port}") as fm:
            return await fm.get()

    assert asyncio.run(run())["mass_flow"] == pytest.approx(321.5)


def test_bronkhorst_propar_client(serve, plant: ConstantPlant) -> None:  # type: ignore[no-untyped-def]
    propar = pytest.importorskip("propar")
    srv = serve("bronkhorst/el-flow-propar")
    inst = propar.instrument(srv.path, address=3)
    try:
        assert inst.readParameter(205) == pytest.approx(321.5)  # fMeasure
        assert inst.readParameter(8) == round(321.5 / 1000 * 32000)  # measure, 32000 = 100 %
        assert inst.readParameter(25) == "AIR"  # fluid name
        assert inst.readParameter(21) == pytest.approx(1000.0)  # capacity
        assert inst.writeParameter(206, 55.5) is True  # fSetpoint with status reply
        assert inst.readParameter(206) == pytest.approx(55.5)
        assert inst.readParameter(9) == round(55.5 / 1000 * 32000)
        assert plant.actuators["air_flow_sccm_sp"] == pytest.approx(55.5)
    finally:
        inst.master.propar.stop()
        inst.master.propar.run = False


def test_ismatec_client(serve, plant: ConstantPlant) -> None:  # type: ignore[no-untyped-def]
    peristaltic = pytest.importorskip("ismatec.peristaltic_pump")
    srv = serve("ismatec/reglo-icc")
    pump = peristaltic.RegloICC(srv.path)
    try:
        pump.set_mode_pump_flow_rate(1)
        pump.set_flow_rate_ml_min(2.5, 1)
        assert pump.get_flow_rate_ml_min(1) == pytest.approx(2.5)
        pump.start(1)
        assert pump.running() is True
        assert plant.actuators["feed_rate_ml_min"] == pytest.approx(2.5)
        pump.set_mode_pump_rpm(2)
        pump.set_flow_rate_rpm(55.5, 2)
        assert pump.get_flow_rate_rpm(2) == pytest.approx(55.5)
        pump.stop(1)
        assert pump.running() is False
        assert plant.actuators["feed_rate_ml_min"] == 0.0
    finally:
        pump.disconnect()


def test_sartorius_client(serve) -> None:  # type: ignore[no-untyped-def]
    sartorius = pytest.importorskip("sartorius")
    srv = serve("sartorius/sbi")

    async def run() -> tuple[dict, dict, dict]:  # type: ignore[type-arg]
        async with sartorius.Scale(srv.path) as scale:
            first = await scale.get()
            info = await scale.get_info()
            await scale.zero()
            return first, info, await scale.get()

    first, info, zeroed = asyncio.run(run())
    assert first == {"mass": 512.34, "units": "g", "stable": True, "measurement": "net"}
    assert info == {"model": "LA230S", "serial": "37454321", "software": "00-37-09"}
    assert zeroed["mass"] == 0.0


@pytest.mark.parametrize(
    ("model", "sensor", "values"),
    [
        ("ph", "pH", {"ph": 6.85}),
        ("do", "Dissolved oxygen", {"do_percent_saturation": 35.0}),
        ("rtd", "Temperature (RTD)", {"temperature": 36.5}),
    ],
)
def test_atlas_ezo_client(serve, model: str, sensor: str, values: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    driver = pytest.importorskip("labmcp_atlas_ezo.driver")
    transport = pytest.importorskip("labmcp.transports.serial")
    srv = serve(f"atlas-scientific/ezo-{model}", delay_scale="0.05")
    circuit = driver.EZOCircuit(
        transport.SerialTransport(srv.path, read_termination="\r", write_termination="\r")
    )
    try:
        circuit.initialise()  # C,0 out of continuous mode, *OK,1, i, O,? / S,?
        assert circuit.identify()["sensor"] == sensor
        reading = circuit.read()
        for key, value in values.items():
            assert reading.values[key] == pytest.approx(value)
        with pytest.raises(driver.InstrumentProtocolError, match=r"\*ER"):
            circuit.command("Bogus,1")
    finally:
        circuit.close()


def test_ezo_emits_continuous_readings_until_c0(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve("atlas-scientific/ezo-ph", delay_scale="0.05")
    with serial.Serial(srv.path, 9600, timeout=1.0) as port:
        line = port.read_until(b"\r")  # unsolicited, nothing sent
        assert line == b"6.850\r"
        port.write(b"C,0\r")
        time.sleep(0.15)
        port.reset_input_buffer()
        port.write(b"R\r")
        assert port.read_until(b"\r") + port.read_until(b"\r") == b"6.850\r*OK\r"


@pytest.mark.parametrize(
    ("profile", "stopbits", "value"),
    [("hamilton/arc-ph", 2, 6.85), ("hamilton/arc-do", 2, 35.0)],
)
def test_hamilton_minimalmodbus(serve, profile: str, stopbits: int, value: float) -> None:  # type: ignore[no-untyped-def]
    minimalmodbus = pytest.importorskip("minimalmodbus")
    srv = serve(profile)
    inst = minimalmodbus.Instrument(srv.path, 1)
    inst.serial.baudrate = 19200
    inst.serial.stopbits = stopbits
    inst.serial.timeout = 0.3
    try:
        words = inst.read_registers(2089, 10, functioncode=3)  # PMC1, the whole block
        raw = bytes.fromhex("".join(f"{w:04x}" for w in (words[3], words[2])))
        assert struct_unpack_f(raw) == pytest.approx(value, rel=1e-6)  # low word first
        assert inst.read_registers(2409, 10, functioncode=4)[2:4] != [0, 0]  # PMC6 temperature
        with pytest.raises(minimalmodbus.IllegalRequestError):
            inst.read_float(2091, functioncode=3)  # partial block read: exception 02
    finally:
        inst.serial.close()


def struct_unpack_f(raw: bytes) -> float:
    import struct

    return float(struct.unpack(">f", raw)[0])


def test_hamilton_pymodbus(serve) -> None:  # type: ignore[no-untyped-def]
    client_mod = pytest.importorskip("pymodbus.client")
    srv = serve("hamilton/arc-ph")
    client = client_mod.ModbusSerialClient(srv.path, baudrate=19200, stopbits=2, timeout=0.5)
    assert client.connect()
    try:
        rr = client.read_holding_registers(2089, count=10, device_id=1)
        assert not rr.isError()
        ph = client.convert_from_registers(
            rr.registers[2:4], client.DATATYPE.FLOAT32, word_order="little"
        )
        unit = client.convert_from_registers(
            rr.registers[0:2], client.DATATYPE.UINT32, word_order="little"
        )
        assert ph == pytest.approx(6.85, rel=1e-6)
        assert unit == 0x1000  # pH unit bit
        temp = client.read_input_registers(2409, count=10, device_id=1)
        t = client.convert_from_registers(
            temp.registers[2:4], client.DATATYPE.FLOAT32, word_order="little"
        )
        assert t == pytest.approx(36.5, rel=1e-6)
    finally:
        client.close()


def test_circulator_minimalmodbus_and_pymodbus(serve, plant: ConstantPlant) -> None:  # type: ignore[no-untyped-def]
    minimalmodbus = pytest.importorskip("minimalmodbus")
    client_mod = pytest.importorskip("pymodbus.client")
    srv = serve("generic/modbus-circulator")
    inst = minimalmodbus.Instrument(srv.path, 1)
    inst.serial.timeout = 0.3
    try:
        assert inst.read_register(1, 1, signed=True) == pytest.approx(35.2)
        inst.write_register(2, 30.5, 1, signed=True)
        assert plant.actuators["jacket_temp_sp_c"] == pytest.approx(30.5)
        inst.write_register(199, 1)
        assert plant.actuators["circulator_run"] == 1.0
    finally:
        inst.serial.close()
    client = client_mod.ModbusSerialClient(srv.path, baudrate=9600, timeout=0.5)
    assert client.connect()
    try:
        rr = client.read_holding_registers(1, count=2, device_id=1)
        assert rr.registers == [352, 305]
    finally:
        client.close()


def test_mt_sics_raw_bytes(serve) -> None:  # type: ignore[no-untyped-def]
    # mettler_toledo_device 1.5.0 does not install (see the profile); check the manual's formats.
    srv = serve("mettler-toledo/mt-sics")
    with serial.Serial(srv.path, 9600, timeout=0.5) as port:

        def ask(cmd: bytes) -> bytes:
            port.write(cmd + b"\r\n")
            return port.read_until(b"\r\n")

        assert ask(b"@") == b'I4 A "B123456789"\r\n'
        assert re.fullmatch(rb"S S +1834\.25 g\r\n", ask(b"SI"))
        assert re.fullmatch(rb"S S +1834\.25 g\r\n", ask(b"S"))
        assert re.fullmatch(rb"T S +1834\.25 g\r\n", ask(b"T"))
        assert re.fullmatch(rb"S S +0\.00 g\r\n", ask(b"SI"))
        assert ask(b"TAC") == b"TAC A\r\n"
        assert ask(b"Z") == b"Z A\r\n"
        assert ask(b"XYZ") == b"ES\r\n"


def _emulate(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "edgectl.commands.emulate", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_edgectl_emulate_pty_subprocess_with_plant_file_and_faults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    alicat = pytest.importorskip("alicat")
    plant_file = tmp_path / "plant.toml"
    plant_file.write_text("[readings]\nair_flow_sccm = 42.5\n")
    proc = _emulate("alicat/mc-series", "--pty", "--plant", str(plant_file), "--fault", "silence*1")
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/")

        async def get() -> dict | None:  # type: ignore[type-arg]
            async with alicat.FlowMeter(path) as fm:
                try:
                    return await fm.get()
                except OSError:
                    return None

        assert asyncio.run(get()) is None  # the one silent reply: the client gives up
        assert asyncio.run(get())["mass_flow"] == pytest.approx(42.5)  # type: ignore[index]
        proc.stdin.write("fault error\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok fault error"
        with serial.Serial(path, 19200, timeout=0.5) as port:
            port.write(b"A\r")
            assert port.read_until(b"\r") == b"?\r"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        assert proc.returncode == 0


def test_edgectl_emulate_tcp_subprocess() -> None:
    proc = _emulate("sartorius/sbi", "--tcp", "0")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        m = re.fullmatch(r"tcp 127\.0\.0\.1:(\d+)", first)
        assert m is not None
        port = serial.serial_for_url(f"socket://127.0.0.1:{m.group(1)}", timeout=1.0)
        with port:
            port.write(b"\x1bP")
            line = port.read_until(b"\r\n")
        assert len(line) == 22
        assert line.startswith(b"N     +")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        assert proc.returncode == 0


def test_watson_marlow_raw_bytes(serve, plant: ConstantPlant) -> None:  # type: ignore[no-untyped-def]
    # No PyPI client exists: check the manual's echo and RS formats byte for byte.
    srv = serve("watson-marlow/520du")
    with serial.Serial(srv.path, 9600, stopbits=2, timeout=0.5) as port:

        def ask(cmd: bytes, lines: int) -> bytes:
            port.write(cmd + b"\r")
            return b"".join(port.read_until(b"\r") for _ in range(lines))

        assert ask(b"1RS", 2) == b"1RS\r520Du 15.84 520R 9.6MM 0.0 CW P/N 1 0 0 !\r"
        assert ask(b"1SP100.0", 1) == b"1SP100.0\r"  # echo only
        assert ask(b"1GO", 1) == b"1GO\r"
        assert plant.actuators["feed_rate_ml_min"] == pytest.approx(1584.0)
        assert ask(b"1RS", 2).endswith(b" 100.0 CW P/N 1 0 1 !\r")
        assert ask(b"1XYZ", 1) == b"1XYZ\r"  # unknown: echoed, ignored
        assert ask(b"2RS", 1) == b""  # another pump number: silence
        assert ask(b"1ST", 1) == b"1ST\r"
        assert plant.actuators["feed_rate_ml_min"] == 0.0
