"""Tests of edgectl.sim through the public API: contract, config, balances, determinism,
snapshots, faults, steady states, the runner, the example, and a PLS soft sensor calibrated on
simulated spectra."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl import _core
from edgectl.errors import ConfigError, InvalidInputError, ModelFileError
from edgectl.plant import DEFAULT_READINGS, PlantIO
from edgectl.sim import (
    ACTUATORS,
    FAULT_KINDS,
    SIGNALS,
    GasConfig,
    Plant,
    PlantConfig,
    PlantRunner,
    ThermalConfig,
    load_plant_config,
)

ROOT = Path(__file__).resolve().parents[1]


def test_python_defaults_equal_the_rust_scenario() -> None:
    # The Struct defaults (Python) and PlantConfig::ecoli_2l (Rust) must not drift apart.
    rust = msgspec.json.decode(_core.Plant.scenario_json("ecoli_2l"))
    assert msgspec.to_builtins(PlantConfig()) == rust
    assert PlantConfig.ecoli_2l() == PlantConfig()
    cho = PlantConfig.cho_2l(seed=3)
    assert cho.organism == "cho"
    assert cho.seed == 3
    assert cho.ph.sid_mm == 24.0


def test_plant_implements_the_contract() -> None:
    plant = Plant()
    assert isinstance(plant, PlantIO)
    for name in DEFAULT_READINGS:
        assert name in SIGNALS
        assert math.isfinite(plant.read(name))
    for name in ACTUATORS:
        assert math.isfinite(plant.read(name))
    axis, spec = plant.spectrum()
    assert axis.shape == spec.shape == (1047,)
    assert axis[0] == 400.0
    assert axis[-1] == 1800.0
    with pytest.raises(KeyError):
        plant.read("warp_core_temp_c")
    with pytest.raises(KeyError):
        plant.write("warp_drive", 1.0)
    with pytest.raises(InvalidInputError):
        plant.write("heater_duty", float("nan"))
    with pytest.raises(InvalidInputError):
        plant.advance(10.0, dt_s=0.0)
    plant.write("feed_rate_ml_min", 99.0)
    assert plant.read("feed_rate_ml_min") == 10.0  # clamped to the pump's range


def test_toml_loading_with_scenario_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "cho.toml"
    good.write_text(
        'scenario = "cho_2l"\nseed = 9\n[vessel]\nvolume0_l = 1.5\n'
        '[[faults]]\nkind = "pump_stall"\ntarget = "feed"\nat_s = 60.0\n'
    )
    cfg = load_plant_config(good)
    assert cfg.organism == "cho"
    assert cfg.seed == 9
    assert cfg.vessel.volume0_l == 1.5
    assert cfg.gas.kla_c == 0.026  # from scenario B underneath
    plant = Plant.from_toml(good)
    assert plant.faults()[0].kind == "pump_stall"
    bad = tmp_path / "bad.toml"
    bad.write_text("[gas]\nkla_factor = -1.0\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*\$\.gas\.kla_factor"):
        load_plant_config(bad)
    bad.write_text("[thermal]\nheater_powr_w = 100.0\n")
    with pytest.raises(ConfigError, match="heater_powr_w"):
        load_plant_config(bad)
    fault = PlantConfig(faults=[msgspec.convert({"kind": "meteor", "at_s": 1.0}, type=_fs())])
    with pytest.raises(ConfigError, match=r"faults\[0\].*meteor"):
        Plant(fault)


def _fs() -> type:
    from edgectl.sim import FaultSpec

    return FaultSpec


def _fedbatch(plant: Plant, hours: float, dt_s: float = 10.0) -> None:
    plant.write("stirrer_rpm_sp", 1200.0)
    plant.write("air_flow_sccm_sp", 4000.0)
    plant.write("heater_duty", 0.08)
    for _ in range(round(hours * 3600 / dt_s)):
        glc = plant.state()["glucose_g_l"]
        plant.write("feed_rate_ml_min", 0.15 if glc < 0.5 else 0.0)
        plant.write("base_rate_ml_min", 1.0 if plant.read("ph") < 6.95 else 0.0)
        plant.advance(dt_s, dt_s)


def test_volume_and_carbon_balances_close() -> None:
    plant = Plant(seed=2)
    _fedbatch(plant, 10.0)
    plant.take_sample(20.0)
    _fedbatch(plant, 2.0)
    b = plant.balances()
    s = plant.state()
    pumped = b["feed_ml"] + b["base_ml"] + b["acid_ml"] + b["antifoam_ml"]
    assert b["feed_ml"] > 10.0
    assert b["base_ml"] > 1.0
    v = 2000.0 + pumped - b["evaporated_ml"] - b["sampled_ml"] - b["overflow_ml"]
    assert v == pytest.approx(s["volume_l"] * 1000.0, abs=1e-6)
    c_in = b["carbon_initial_mmol"] + b["carbon_in_mmol"]
    lhs = c_in + b["carbon_clamped_mmol"] - b["carbon_gas_out_mmol"] - b["carbon_removed_mmol"]
    assert lhs == pytest.approx(b["carbon_now_mmol"], rel=1e-9)
    # Feed carbon from the feed bottle's balance (independent of the ledger).
    feed_ml = (1000.0 - plant.read("feed_mass_g")) / 1.1
    assert feed_ml * 1e-3 * 300.0 * 0.391 / 12.011e-3 == pytest.approx(
        b["carbon_in_mmol"], rel=0.01
    )


def test_same_seed_identical_different_seed_differs() -> None:
    def run(seed: int) -> Plant:
        p = Plant(seed=seed)
        _fedbatch(p, 0.5)
        return p

    a, b, c = run(5), run(5), run(6)
    assert a.snapshot() == b.snapshot()
    assert a.readings() == b.readings()
    assert np.array_equal(a.spectrum()[1], b.spectrum()[1])
    assert a.snapshot() != c.snapshot()
    assert a.readings() != c.readings()


def test_snapshot_restore_continues_bit_for_bit() -> None:
    a = Plant(seed=11)
    _fedbatch(a, 0.5)
    snap = a.snapshot()
    b = Plant.from_snapshot(snap)
    c = Plant(PlantConfig.cho_2l())
    c.restore(snap)
    for p in (a, b, c):
        _fedbatch(p, 0.5)
    assert a.snapshot() == b.snapshot() == c.snapshot()
    assert c.config == a.config
    with pytest.raises(ModelFileError):
        Plant.from_snapshot(b"not a snapshot")


def test_ph_7_44_with_24_mm_bicarbonate_under_5_percent_co2() -> None:
    cfg = PlantConfig.cho_2l()
    cfg = msgspec.structs.replace(
        cfg,
        organism="none",
        gas=msgspec.structs.replace(cfg.gas, initial_ct_mm=1.0),
        # Isothermal at 37 °C, no evaporation (which would concentrate the bicarbonate).
        thermal=msgspec.structs.replace(cfg.thermal, ambient_c=37.0, condenser_efficiency=1.0),
    )
    plant = Plant(cfg)
    plant.write("air_flow_sccm_sp", 190.0)
    plant.write("co2_flow_sccm_sp", 10.0)
    plant.write("stirrer_rpm_sp", 200.0)
    plant.advance(144 * 3600.0, dt_s=60.0)
    assert plant.state()["ph"] == pytest.approx(7.44, abs=0.01)
    assert plant.read("ph") == pytest.approx(7.44, abs=0.03)


def test_thermal_steady_state_matches_hand_solution() -> None:
    cfg = PlantConfig(
        organism="none",
        thermal=ThermalConfig(ambient_c=20.0),
        gas=GasConfig(),
    )
    plant = Plant(cfg)
    plant.write("stirrer_rpm_sp", 0.0)
    plant.write("air_flow_sccm_sp", 0.0)
    plant.write("heater_duty", 0.2)  # 30 W
    plant.advance(5 * 86400.0, dt_s=120.0)
    a, b, d = 5.0, 0.7, 0.3
    t_l = 20.0 + 30.0 * a / (b * (a + d) + a * d)
    assert plant.state()["temp_c"] == pytest.approx(t_l, abs=1e-3)


FAULTS = [
    # kind, target, value, actuator writes, check(plant_with_fault, plant_without)
    ("pump_stall", "feed", None, {"feed_rate_ml_min": 1.0}, "feed_ml"),
    ("pump_blocked", "base", None, {"base_rate_ml_min": 1.0}, "base_ml"),
    ("heater_stuck_on", "", 1.0, {}, "temp_c"),
    ("aeration_loss", "", None, {}, "do_pct"),
    ("mfc_failure", "air", 0.0, {}, "air_flow_sccm"),
    ("sensor_drift", "temp_c", 0.4, {}, "temp_reading"),
    ("sensor_dropout", "ph", None, {}, "ph_reading"),
    ("growth_change", "", 0.3, {}, "biomass_g_l"),
    ("power_loss", "", None, {}, "stirrer_rpm"),
    ("cooling_failure", "", None, {"cooling_duty": 1.0}, "temp_c"),
    ("stirrer_failure", "", None, {}, "stirrer_rpm"),
    ("pressure_step", "", 0.5, {}, "pressure_bar"),
]


@pytest.mark.parametrize(("kind", "target", "value", "writes", "what"), FAULTS)
def test_faults_have_their_effect(
    kind: str, target: str, value: float | None, writes: dict[str, float], what: str
) -> None:
    def run(with_fault: bool) -> Plant:
        p = Plant(PlantConfig(ecoli=msgspec.structs.replace(PlantConfig().ecoli, x0_g_l=2.0)))
        for k, v in writes.items():
            p.write(k, v)
        if with_fault:
            p.inject_fault(kind, target, value=value)
            assert p.active_faults()[0].kind == kind
        p.advance(3600.0, dt_s=2.0)
        return p

    f, n = run(True), run(False)
    sf, sn, bf, bn = f.state(), n.state(), f.balances(), n.balances()
    if what in ("feed_ml", "base_ml"):
        assert bf[what] == 0.0
        assert bn[what] > 50.0
    elif what == "temp_c" and kind == "heater_stuck_on":
        assert sf["temp_c"] > sn["temp_c"] + 10.0
    elif what == "temp_c":
        assert sf["temp_c"] > sn["temp_c"] + 2.0
    elif what == "do_pct":
        assert sf["do_pct"] < 0.5 * sn["do_pct"]
    elif what == "air_flow_sccm":
        assert f.read("air_flow_sccm") == 0.0
        assert n.read("air_flow_sccm") > 1000.0
    elif what == "temp_reading":
        assert f.read("temp_c") - sf["temp_c"] == pytest.approx(0.4, abs=0.05)
    elif what == "ph_reading":
        assert math.isnan(f.read("ph"))
        assert not math.isnan(n.read("ph"))
    elif what == "biomass_g_l":
        assert sf["biomass_g_l"] < sn["biomass_g_l"] - 0.5
    elif what == "stirrer_rpm":
        assert sf["stirrer_rpm"] < 1.0
        assert sn["stirrer_rpm"] > 700.0
    elif what == "pressure_bar":
        assert sf["pressure_bar"] == pytest.approx(0.5)
        assert sf["o2_sat_mm"] > sn["o2_sat_mm"]


def test_fault_clear_and_schedule() -> None:
    plant = Plant()
    plant.write("feed_rate_ml_min", 1.0)
    fid = plant.inject_fault("pump_stall", "feed", start_s=60.0, duration_s=60.0)
    plant.advance(300.0)
    assert plant.balances()["feed_ml"] == pytest.approx(4.0, abs=0.05)
    assert not plant.faults()[0].is_active_at(plant.time_s)
    fid = plant.inject_fault("pump_stall", "feed")
    assert plant.clear_fault(fid)
    assert not plant.clear_fault(999)
    with pytest.raises(ConfigError):
        plant.inject_fault("pump_stall", "o2")
    assert set(FAULT_KINDS) >= {"sensor_stuck", "heater_stuck_on", "power_loss"}


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ACTUATORS), st.floats(0.0, 2000.0), st.floats(1.0, 900.0)),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["ecoli", "cho"]),
)
def test_states_never_negative(moves: list[tuple[str, float, float]], organism: str) -> None:
    cfg = PlantConfig.cho_2l() if organism == "cho" else PlantConfig()
    plant = Plant(cfg)
    signed = {"sid_mm", "mu_h", "our_mm_h", "cer_mm_h", "otr_mm_h", "pressure_bar"}
    for name, value, seconds in moves:
        plant.write(name, value)
        plant.advance(seconds, dt_s=5.0)
        for k, v in plant.state().items():
            assert math.isfinite(v), k
            if k not in signed and k != "metabolic_heat_w":
                assert v >= 0.0, (k, v)


def test_readers_while_a_runner_advances() -> None:
    plant = Plant()
    ticks = iter(range(10**9))
    lock = threading.Lock()

    def fake_clock() -> float:
        with lock:
            return next(ticks) * 1.0  # one "wall second" per call

    runner = PlantRunner(plant, speed=10.0, dt_s=5.0, tick_s=0.001, clock=fake_clock)
    values = []
    with runner:
        while plant.time_s < 100.0:  # readers and writers race the stepping thread
            values.append(plant.read("temp_c"))
            plant.write("heater_duty", 0.1)
    assert runner.error is None
    assert not runner.is_running
    assert all(math.isfinite(v) for v in values)
    calls = next(ticks)  # clock calls made by the runner (the first one is the start)
    # Simulated time = speed × elapsed fake wall time, in whole steps, minus the backlog.
    assert plant.time_s == pytest.approx(10.0 * (calls - 1) - runner.backlog_s, abs=1e-6)
    assert plant.time_s % 5.0 == 0.0
    with pytest.raises(InvalidInputError):
        PlantRunner(plant, speed=0.0)


def test_example_script_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "simulate_ecoli.py"),
            "--hours",
            "1",
            "--dt",
            "10",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "wrote" in proc.stdout
    lines = out.read_text().splitlines()
    assert lines[0].startswith("run,time_h,biomass_g_l")
    runs = {line.split(",")[0] for line in lines[1:]}
    assert runs == {"controlled", "uncontrolled"}
    assert len(lines) == 1 + 2 * 13


def test_pls_soft_sensor_calibrates_on_simulated_spectra() -> None:
    pls = pytest.importorskip("sklearn.cross_decomposition")
    x, y = [], []
    for seed, s0 in [(1, 4.94), (2, 8.0), (3, 2.0)]:
        cfg = PlantConfig(seed=seed, ecoli=msgspec.structs.replace(PlantConfig().ecoli, s0_g_l=s0))
        plant = Plant(cfg)
        plant.write("stirrer_rpm_sp", 1200.0)
        for _ in range(24):
            plant.advance(1200.0, dt_s=5.0)
            x.append(plant.spectrum()[1])
            y.append(plant.state()["glucose_g_l"])
    xa, ya = np.array(x), np.array(y)
    assert ya.max() - ya.min() > 3.0
    model = pls.PLSRegression(n_components=4).fit(xa[::2], ya[::2])
    pred = model.predict(xa[1::2]).ravel()
    rmsep = float(np.sqrt(np.mean((pred - ya[1::2]) ** 2)))
    assert rmsep < 0.3, rmsep


@pytest.mark.parametrize("name", ["plant_cho_2l.toml", "plant_ecoli_2l.toml"])
def test_shipped_plant_configs_load_and_run(name: str) -> None:
    plant = Plant.from_toml(ROOT / "examples" / name)
    assert plant.faults()
    plant.advance(600.0, dt_s=5.0)
    assert all(math.isfinite(v) for v in plant.state().values())


def test_cho_example_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "cho.csv"
    script = ROOT / "examples" / "simulate_cho.py"
    cmd = [sys.executable, str(script), "--days", "2", "--dt", "60", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
    assert "wrote" in proc.stdout
    lines = out.read_text().splitlines()
    assert lines[0].startswith("time_d,xv_cells_ml")
    assert len(lines) == 1 + 48
    last = dict(zip(lines[0].split(","), lines[-1].split(","), strict=True))
    assert float(last["xv_cells_ml"]) > 3e5  # grew
    assert not math.isnan(float(last["offline_glucose_mm"]))  # the day-1 sample


def test_advance_releases_the_gil() -> None:
    plant = Plant.cho_2l()
    busy = threading.Event()
    stop = threading.Event()
    counts = {"during": 0}

    def spin() -> None:
        while not stop.is_set():
            if busy.is_set():
                counts["during"] += 1
            time.sleep(0)  # hand the GIL back at once: it can only run while nobody holds it

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        busy.set()
        plant.advance(3 * 86400.0, dt_s=1.0)
        busy.clear()
    finally:
        stop.set()
        worker.join()
    # Had advance held the GIL, the worker could only slip in around the call (a few counts).
    assert counts["during"] > 100
    assert "organism=cho" in repr(plant)
