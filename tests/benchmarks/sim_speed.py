"""Simulator speed through Python: simulated-time / wall-time ratios.

Runs a 14-day CHO fed-batch and a 40-hour E. coli fed-batch at 1 s outer steps with one
``Plant.advance`` call each (the Rust core integrates with the GIL released), then both once more
closed-loop with a Python controller calling ``read``/``write``/``step`` (every 60 s for CHO,
5 s for E. coli; the cost an emulator/HIL loop pays). Run after ``make build`` (release)::

    .venv/bin/python tests/benchmarks/sim_speed.py
"""

from __future__ import annotations

import math
import time

from edgectl.sim import Plant, PlantConfig

CHO_S = 14 * 86400.0
ECOLI_S = 40 * 3600.0


def cho_run() -> Plant:
    plant = Plant(PlantConfig.cho_2l())
    plant.write("feed_rate_ml_min", 0.02)
    plant.write("heater_duty", 0.12)
    plant.advance(CHO_S, dt_s=1.0)
    return plant


def ecoli_run() -> Plant:
    plant = Plant(PlantConfig.ecoli_2l())
    plant.write("stirrer_rpm_sp", 1200.0)
    plant.write("air_flow_sccm_sp", 4000.0)
    plant.write("feed_rate_ml_min", 0.15)
    plant.write("heater_duty", 0.12)
    plant.advance(ECOLI_S, dt_s=1.0)
    return plant


def ecoli_closed_loop(dt_s: float = 5.0) -> Plant:
    plant = Plant(PlantConfig.ecoli_2l())
    integral = 0.0
    for _ in range(round(ECOLI_S / dt_s)):
        e = 37.0 - plant.read("temp_c")
        if math.isfinite(e):
            integral = min(max(integral + 0.002 * e * dt_s, 0.0), 1.0)
            plant.write("heater_duty", min(max(0.5 * e + integral, 0.0), 1.0))
        do = plant.read("do_pct")
        if math.isfinite(do):
            rpm = min(max(plant.read("stirrer_rpm_sp") + 2.0 * (30.0 - do), 300.0), 1500.0)
            plant.write("stirrer_rpm_sp", rpm)
        plant.write("base_rate_ml_min", 3.0 if plant.read("ph") < 6.95 else 0.0)
        plant.write("feed_rate_ml_min", 0.15)
        plant.step(dt_s)
    return plant


def cho_closed_loop(dt_s: float = 60.0) -> Plant:
    plant = Plant(PlantConfig.cho_2l())
    integral = 0.0
    for _ in range(round(CHO_S / dt_s)):
        e = 37.0 - plant.read("temp_c")
        if math.isfinite(e):
            integral = min(max(integral + 0.002 * e * dt_s, 0.0), 1.0)
            plant.write("heater_duty", min(max(0.5 * e + integral, 0.0), 1.0))
        plant.write("o2_flow_sccm_sp", 20.0 if plant.read("do_pct") < 30.0 else 0.0)
        plant.write("base_rate_ml_min", 0.05 if plant.read("ph") < 7.0 else 0.0)
        plant.write("feed_rate_ml_min", 0.02 if plant.time_s > 3 * 86400 else 0.0)
        plant.step(dt_s)
    return plant


def measure(name: str, sim_s: float, run: object) -> None:
    t0 = time.perf_counter()
    plant = run()  # type: ignore[operator]
    wall = time.perf_counter() - t0
    s = plant.state()
    print(
        f"{name:>28}: {sim_s / 3600:6.0f} h simulated in {wall:7.3f} s wall"
        f"  ->  {sim_s / wall:>10,.0f}x real time   (final biomass {s['biomass_g_l']:.2f} g/L)"
    )


def main() -> None:
    measure("CHO 14 d, advance(dt 1 s)", CHO_S, cho_run)
    measure("E. coli 40 h, advance(dt 1 s)", ECOLI_S, ecoli_run)
    measure("CHO 14 d, Python loop 60 s", CHO_S, cho_closed_loop)
    measure("E. coli 40 h, Python loop 5 s", ECOLI_S, ecoli_closed_loop)


if __name__ == "__main__":
    main()
