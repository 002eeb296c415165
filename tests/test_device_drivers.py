"""Every driver against its emulator (sim://), with every fault kind.

A driver either recovers (transient fault, retried) or raises a clear error naming the device
within a generous bound of its configured timeout; the I/O worker keeps exceptions away from
the scan (reading goes bad, then good again).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from _devices import CASE_IDS, CASES, NO_ERROR_REPLY, DriverCase, fast_profile, max_wait_s
from edgectl.devices import AlicatMfc, BronkhorstMfc, ModbusCirculator, RegloIccPump, open_device
from edgectl.emulators import get_emulator, get_plant, reset_emulators
from edgectl.errors import (
    DeviceError,
    DeviceTimeoutError,
    InvalidInputError,
    ProfileError,
    ProtocolError,
)
from edgectl.io import IoWorker, Quality
from edgectl.plant import ConstantPlant


@pytest.fixture(autouse=True)
def _fresh_emulators() -> Iterator[None]:
    reset_emulators()
    yield
    reset_emulators()


def _open(case: DriverCase, **params: str):  # type: ignore[no-untyped-def]
    name, url = case.url(**params)
    return name, case.open(url)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reads_the_plant_value(case: DriverCase) -> None:
    _name, dev = _open(case)
    with dev:
        assert case.read(dev) == pytest.approx(case.expected, abs=case.tol)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.signal], ids=[c.id for c in CASES if c.signal]
)
def test_reading_follows_the_plant(case: DriverCase) -> None:
    plant = get_plant()
    assert isinstance(plant, ConstantPlant)
    plant.set_reading(case.signal, case.expected * 0.5 + 1.0)
    _name, dev = _open(case)
    with dev:
        assert case.read(dev) == pytest.approx(case.expected * 0.5 + 1.0, abs=case.tol)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_close_is_idempotent_and_refuses_later_use(case: DriverCase) -> None:
    _, dev = _open(case)
    dev.close()
    dev.close()
    assert dev.is_closed
    with pytest.raises(DeviceError, match="closed"):
        case.read(dev)


TRANSIENT = ["garbage", "truncate", "late", "silence"]


@pytest.mark.parametrize("kind", TRANSIENT)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_transient_fault_is_retried(case: DriverCase, kind: str) -> None:
    name, dev = _open(case)
    with dev:
        value = 0.3 if kind == "late" else None  # later than the 0.1 s deadline
        get_emulator(name).faults.inject(kind, value, count=1)
        assert case.read(dev) == pytest.approx(case.expected, abs=case.tol)
        proto = getattr(dev, "modbus", None) or getattr(dev, "propar", None) or dev.protocol
        assert proto.retries_used >= 1


PERSISTENT = [
    ("garbage", ProtocolError),
    ("truncate", (ProtocolError, DeviceTimeoutError)),
    ("late", DeviceTimeoutError),
    ("silence", DeviceTimeoutError),
]


@pytest.mark.parametrize(("kind", "error"), PERSISTENT, ids=[k for k, _ in PERSISTENT])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_persistent_fault_raises_in_time_then_recovers(
    case: DriverCase, kind: str, error: type[Exception]
) -> None:
    name, dev = _open(case)
    prof = fast_profile(case.profile)
    with dev:
        emu = get_emulator(name)
        emu.faults.inject(kind, 2.0 if kind == "late" else None)
        start = time.monotonic()
        with pytest.raises(error) as info:
            case.read(dev)
        assert time.monotonic() - start < max_wait_s(prof)
        assert name in str(info.value)
        if kind == "garbage" and prof.device.protocol == "line":
            assert "got b" in str(info.value)  # the bad bytes are in the message
        emu.faults.clear()
        assert case.read(dev) == pytest.approx(case.expected, abs=case.tol)


ERROR_CASES = [c for c in CASES if c.profile not in NO_ERROR_REPLY]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.id for c in ERROR_CASES])
def test_error_reply_raises_device_error_naming_device(case: DriverCase) -> None:
    name, dev = _open(case)
    with dev:
        emu = get_emulator(name)
        emu.faults.inject("error")
        with pytest.raises(DeviceError) as info:
            case.read(dev)
        assert not isinstance(info.value, DeviceTimeoutError)
        assert name in str(info.value)
        emu.faults.clear()
        assert case.read(dev) == pytest.approx(case.expected, abs=case.tol)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_disconnect_raises_then_reconnects(case: DriverCase) -> None:
    name, dev = _open(case)
    prof = fast_profile(case.profile)
    with dev:
        emu = get_emulator(name)
        emu.faults.inject("disconnect", 30.0)
        start = time.monotonic()
        with pytest.raises(DeviceError) as info:
            case.read(dev)
        assert time.monotonic() - start < max_wait_s(prof)
        assert name in str(info.value)
        emu.faults.clear()  # the device powers up again; the driver re-runs its start-up
        assert case.read(dev) == pytest.approx(case.expected, abs=case.tol)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.signal], ids=[c.id for c in CASES if c.signal]
)
def test_stuck_readings_freeze(case: DriverCase) -> None:
    plant = get_plant()
    assert isinstance(plant, ConstantPlant)
    name, dev = _open(case)
    with dev:
        before = case.read(dev)
        get_emulator(name).faults.inject("stuck")
        plant.set_reading(case.signal, case.expected * 0.5 + 1.0)
        assert case.read(dev) == pytest.approx(before, abs=case.tol)
        get_emulator(name).faults.clear()
        assert case.read(dev) == pytest.approx(case.expected * 0.5 + 1.0, abs=case.tol)


WORKER_FAULTS = ["silence", "garbage", "error", "disconnect"]


@pytest.mark.parametrize("kind", WORKER_FAULTS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_io_worker_marks_bad_then_good(case: DriverCase, kind: str) -> None:
    name, dev = _open(case)
    with dev, IoWorker(name) as worker:
        worker.add_poll("x", lambda: case.read(dev), period_s=0.02)
        assert worker.wait_for("x", timeout_s=5).quality is Quality.GOOD
        emu = get_emulator(name)
        emu.faults.inject(kind, 60.0 if kind == "disconnect" else None)
        bad = worker.wait_for("x", quality=Quality.BAD, timeout_s=5)
        assert bad.quality is Quality.BAD
        assert bad.error is not None
        assert name in bad.error
        assert bad.value == pytest.approx(case.expected, abs=case.tol)  # last good value kept
        emu.faults.clear()
        good = worker.wait_for("x", timeout_s=5)
        assert good.quality is Quality.GOOD
        assert worker.is_running


def test_alicat_setpoint_reaches_plant_and_close_makes_flow_safe() -> None:
    plant = get_plant()
    assert isinstance(plant, ConstantPlant)
    case = CASES[0]
    _, dev = _open(case)
    assert dev.set_flow_sccm(250.0) == pytest.approx(250.0)
    assert plant.actuators["air_flow_sccm_sp"] == pytest.approx(250.0)
    assert dev.read_setpoint_sccm() == pytest.approx(250.0)
    dev.close()
    assert plant.actuators["air_flow_sccm_sp"] == 0.0


def test_alicat_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        AlicatMfc("sim://x?profile=alicat/mc-series", unit="a")
    _, dev = _open(CASES[0])
    with dev, pytest.raises(InvalidInputError):
        dev.set_flow_sccm(float("nan"))


def test_alicat_multidrop_other_unit_is_silent() -> None:
    _, url = CASES[0].url()
    with pytest.raises(DeviceTimeoutError, match="no reply"):
        AlicatMfc(url, fast_profile("alicat/mc-series"), unit="B").read_flow_sccm()


def test_bronkhorst_setpoint_and_parameters() -> None:
    plant = get_plant()
    _, dev = _open(CASES[1])
    with dev:
        dev.set_flow_sccm(120.5)
        assert dev.read_setpoint_sccm() == pytest.approx(120.5)
        assert plant.actuators["air_flow_sccm_sp"] == pytest.approx(120.5)  # type: ignore[attr-defined]
        assert dev.read_measure_pct() == pytest.approx(100.0)
        assert dev.read_fluid() == "AIR"
        assert dev.read_capacity() == pytest.approx(1000.0)
    assert plant.actuators["air_flow_sccm_sp"] == 0.0  # type: ignore[attr-defined]


def test_hamilton_partial_block_read_is_refused() -> None:
    _, dev = _open(CASES[2])
    with dev:
        reading = dev.read_primary()
        assert reading.unit_bits == 0x1000
        assert reading.status == 0
        assert dev.read_temp_c() == pytest.approx(37.0)


def test_reglo_rate_start_stop_and_close_stops() -> None:
    plant = get_plant()
    _, dev = _open(CASES[9])
    assert isinstance(dev, RegloIccPump)
    dev.set_rate_ml_min(1.25)
    assert dev.read_rate_ml_min() == pytest.approx(1.25)
    dev.start()
    assert dev.is_running()
    assert plant.actuators["feed_rate_ml_min"] == pytest.approx(1.25)  # type: ignore[attr-defined]
    dev.close()
    assert plant.actuators["feed_rate_ml_min"] == 0.0  # type: ignore[attr-defined]


def test_reglo_dose_rate_runs_and_stops_the_pump() -> None:
    plant = get_plant()
    _, dev = _open(CASES[9])
    with dev:
        dev.set_dose_rate_ml_min(0.5)  # what the runtime writes for a pump output
        assert dev.is_running()
        assert plant.actuators["feed_rate_ml_min"] == pytest.approx(0.5)  # type: ignore[attr-defined]
        dev.set_dose_rate_ml_min(0.0)  # 0 stops (a Reglo refuses to *run* at rate 0)
        assert not dev.is_running()
        assert plant.actuators["feed_rate_ml_min"] == 0.0  # type: ignore[attr-defined]


def test_reglo_refuses_to_start_at_zero_rate() -> None:
    _, dev = _open(CASES[9])
    with dev:
        dev.set_rate_ml_min(0.0)
        with pytest.raises(DeviceError, match="cannot run"):
            dev.start()


def test_circulator_setpoint_run_and_rate_limit() -> None:
    plant = get_plant()
    _, url = CASES[10].url()
    dev = ModbusCirculator(url, fast_profile("generic/modbus-circulator"), min_write_interval_s=60)
    with dev:
        assert dev.set_setpoint_c(30.5)
        assert not dev.set_setpoint_c(31.0)  # within the EEPROM write interval
        assert dev.read_setpoint_c() == pytest.approx(30.5)
        dev.start()
        assert dev.is_running()
        assert plant.actuators["circulator_run"] == 1.0  # type: ignore[attr-defined]
    assert plant.actuators["circulator_run"] == 0.0  # type: ignore[attr-defined]


def test_balances_tare_and_zero() -> None:
    _, sics = _open(CASES[7])
    with sics:
        assert sics.tare() == pytest.approx(2000.0)
        assert sics.read_mass_g() == pytest.approx(0.0)
        assert sics.serial_number() == "B123456789"
    _, sbi = _open(CASES[8])
    with sbi:
        sbi.tare()
        assert sbi.read_mass_g() == pytest.approx(0.0)
        assert sbi.model() == "LA230S"


def test_mt_sics_overload_is_a_device_error() -> None:
    get_plant().set_reading("reactor_mass_g", 9000.0)  # type: ignore[attr-defined]
    _, dev = _open(CASES[7])
    with dev, pytest.raises(DeviceError, match="overload"):
        dev.read_mass_g()


def test_start_up_runs_again_after_a_reconnect() -> None:
    case = CASES[4]  # EZO pH: comes back from power loss in continuous mode
    name, dev = _open(case)
    with dev:
        emu = get_emulator(name)
        assert not emu.continuous  # type: ignore[attr-defined]
        emu.faults.inject("disconnect", 30.0)
        with pytest.raises(DeviceError):
            dev.read_ph()
        emu.faults.clear()
        assert dev.read_ph() == pytest.approx(7.0)
        assert emu.power_cycles == 1  # type: ignore[union-attr]  # came back in continuous mode
        assert not emu.continuous  # type: ignore[union-attr]  # ... and C,0 was sent again


def test_ezo_start_up_resyncs_out_of_continuous_mode() -> None:
    case = CASES[4]
    name, url = case.url()
    emu = get_emulator(name, case.profile, {"delay_scale": "0.01"})
    time.sleep(0.05)  # continuous readings pile up before the driver opens the port
    assert emu.continuous
    with case.open(url) as dev:
        assert not emu.continuous
        assert dev.read_ph() == pytest.approx(7.0)
        dev.set_temp_compensation_c(30.0)
        assert emu.temp_comp_c == pytest.approx(30.0)  # type: ignore[attr-defined]


def test_open_device_picks_the_driver() -> None:
    with open_device("sim://od?profile=alicat/mc-series", "alicat/mc-series") as dev:
        assert isinstance(dev, AlicatMfc)
    with pytest.raises(ProfileError, match="no such firmware profile"):
        open_device("sim://od2", "nobody/nothing")


def test_bad_url_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="cannot open port"):
        CASES[0].open("sim://nope")  # no profile= and no emulator of that name


def test_drift_fault_moves_readings_away_from_the_plant() -> None:
    name, dev = _open(CASES[2])  # Hamilton pH
    with dev:
        get_emulator(name).faults.inject("drift", 5.0)  # pH units per second
        time.sleep(0.1)
        drifted = dev.read_ph()
        assert drifted > 7.2
        get_emulator(name).faults.clear()
        assert dev.read_ph() == pytest.approx(7.0)


def test_multidrop_line_one_worker_one_port() -> None:
    """Two Alicats (units A, B) share one RS-485 line, one Port and one IoWorker: a silent
    unit B goes bad while unit A keeps good readings."""
    from edgectl.emulators import EmulatorBus
    from edgectl.io import Port

    prof = fast_profile("alicat/mc-series")
    port = Port("sim://gas-line?profile=alicat/mc-series&address=A,B", prof.serial)
    air = AlicatMfc(port, prof, unit="A", name="mfc-air")
    o2 = AlicatMfc(port, prof, unit="B", name="mfc-o2")
    bus = get_emulator("gas-line")
    assert isinstance(bus, EmulatorBus)
    bus.members["B"].signals["mass_flow_sccm"] = "o2_flow_sccm"
    get_plant().set_reading("o2_flow_sccm", 55.0)  # type: ignore[attr-defined]
    # A dead unit costs the line its retries (2 x 0.1 s here): max_age_s must cover that.
    with IoWorker("gas-line", max_age_s=2.0) as worker:
        worker.add_poll("air", air.read_flow_sccm, period_s=0.02)
        worker.add_poll("o2", o2.read_flow_sccm, period_s=0.02)
        assert worker.wait_for("air").value == pytest.approx(1000.0)
        assert worker.wait_for("o2").value == pytest.approx(55.0)
        bus.members["B"].faults.inject("silence")
        bad = worker.wait_for("o2", quality=Quality.BAD)
        assert "mfc-o2" in (bad.error or "")
        time.sleep(0.1)
        assert worker.latest("air").quality is Quality.GOOD
        bus.members["B"].faults.clear()
        assert worker.wait_for("o2").quality is Quality.GOOD
    air.close()
    o2.close()
    port.close()


def test_mixed_modbus_bus_with_attach() -> None:
    from edgectl.devices import HamiltonDoProbe, HamiltonPhProbe
    from edgectl.emulators import attach
    from edgectl.io import Port

    attach("probe-line", "hamilton/arc-ph", "1")
    attach("probe-line", "hamilton/arc-do", "2")
    ph_prof = fast_profile("hamilton/arc-ph")
    port = Port("sim://probe-line", ph_prof.serial)
    with (
        HamiltonPhProbe(port, ph_prof, slave=1) as ph,
        HamiltonDoProbe(port, fast_profile("hamilton/arc-do"), slave=2) as do,
    ):
        assert ph.read_ph() == pytest.approx(7.0)
        assert do.read_do_pct() == pytest.approx(40.0)
        with pytest.raises(DeviceTimeoutError, match="slave 3"):
            HamiltonPhProbe(port, ph_prof, slave=3).read_ph()
    port.close()


@pytest.mark.parametrize(
    "setting", [{"baudrate": 9600}, {"parity": "E"}, {"stopbits": 2}, {"bytesize": 7}]
)
def test_wrong_line_settings_garble_the_sim_line(setting: dict[str, object]) -> None:
    import msgspec

    prof = fast_profile("alicat/mc-series")
    bad = msgspec.structs.replace(prof, serial=msgspec.structs.replace(prof.serial, **setting))
    _, url = CASES[0].url()
    dev = AlicatMfc(url, bad, name="mfc-bad-line")
    with pytest.raises((ProtocolError, DeviceTimeoutError), match="mfc-bad-line"):
        dev.read_flow_sccm()
    dev.port.close()
    assert AlicatMfc(url, prof).read_flow_sccm() == pytest.approx(1000.0)


@pytest.mark.parametrize(("status", "raises"), [(0x08, False), (0x10, True)])
def test_hamilton_status_bits(status: int, raises: bool) -> None:
    from edgectl.devices import HamiltonPhProbe

    _, url = CASES[2].url(reg_primary_status=str(status))
    with HamiltonPhProbe(url, fast_profile("hamilton/arc-ph"), name="ph-probe") as probe:
        if raises:
            with pytest.raises(DeviceError, match=r"ph-probe: primary reports sensor error"):
                probe.read_ph()
        else:
            reading = probe.read_primary()
            assert reading.value == pytest.approx(7.0)
            assert probe.status_text(reading.status) == ["warning"]


def test_bronkhorst_chained_read_all() -> None:
    _, dev = _open(CASES[1])
    with dev:
        dev.set_flow_sccm(250.0)
        before = dev.propar.round_trips
        values = dev.read_all()
        assert dev.propar.round_trips == before + 1  # one chained message
        assert values == {
            "flow_sccm": pytest.approx(1000.0),
            "setpoint_sccm": pytest.approx(250.0),
            "measure_pct": pytest.approx(100.0),
        }


def test_inter_command_gap_is_kept() -> None:
    case = CASES[-1]  # Watson-Marlow: at least 10 ms between commands (manual)
    _, dev = _open(case)
    with dev:
        dev.read_rpm()
        start = time.monotonic()
        for _ in range(3):
            dev.read_rpm()
        assert time.monotonic() - start >= 3 * 0.01  # a lower bound: cannot be flaky


def test_failed_start_up_raises_and_releases_the_port() -> None:
    case = CASES[7]  # MT-SICS: start-up sends '@'
    name, url = case.url(fault="silence")
    with pytest.raises(DeviceTimeoutError, match=r"no reply to 'reset'"):
        case.open(url)
    emu = get_emulator(name)
    emu.faults.clear()
    with case.open(url) as dev:
        assert dev.read_mass_g() == pytest.approx(2000.0)


def test_bronkhorst_driver_in_binary_mode() -> None:
    import msgspec

    prof = fast_profile("bronkhorst/el-flow-propar")
    assert prof.propar is not None
    binary = msgspec.structs.replace(
        prof, propar=msgspec.structs.replace(prof.propar, mode="binary")
    )
    name, url = CASES[1].url()
    with BronkhorstMfc(url, binary) as dev:
        dev.set_flow_sccm(75.0)
        assert dev.read_setpoint_sccm() == pytest.approx(75.0)
        get_emulator(name).faults.inject("garbage", count=1)
        assert dev.read_flow_sccm() == pytest.approx(1000.0)
        assert dev.propar.retries_used == 1
