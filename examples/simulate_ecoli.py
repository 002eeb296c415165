"""Simulate an E. coli fed-batch (scenario A, 2 L) uncontrolled and with simple controllers.

The controllers here are deliberately plain (PI on the heater, a stirrer → O2 DO cascade with a
proportional step, on/off base, an exponential feed at μ_set = 0.2 1/h after the batch glucose
runs out); the real control core lives in ``edgectl.control``. Writes one CSV with both runs::

    python examples/simulate_ecoli.py --hours 24 --out ecoli_runs.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from edgectl.sim import Plant, PlantConfig

COLUMNS = [
    "run",
    "time_h",
    "biomass_g_l",
    "glucose_g_l",
    "acetate_g_l",
    "volume_l",
    "temp_c",
    "ph",
    "do_pct",
    "stirrer_rpm",
    "o2_flow_sccm",
    "feed_rate_ml_min",
    "base_ml",
    "our_mm_h",
    "foam",
]


class SimpleControllers:
    """Temperature PI, DO cascade, pH on/off, exponential feed, antifoam pulse."""

    def __init__(self, mu_set_h: float = 0.2, feed0_ml_min: float = 0.1) -> None:
        self.mu_set_h = mu_set_h
        self.feed0_ml_min = feed0_ml_min
        self.temp_integral = 0.0
        self.feed_start_h: float | None = None

    def apply(self, plant: Plant, dt_s: float) -> None:
        t_h = plant.time_s / 3600.0
        temp = plant.read("temp_c")
        if math.isfinite(temp):
            e = 37.0 - temp
            self.temp_integral = min(max(self.temp_integral + 0.002 * e * dt_s, 0.0), 1.0)
            plant.write("heater_duty", min(max(0.5 * e + self.temp_integral, 0.0), 1.0))
            plant.write("cooling_duty", min(max(-2.0 * e, 0.0), 1.0))
        do = plant.read("do_pct")
        if math.isfinite(do):
            rpm = plant.read("stirrer_rpm_sp") + 2.0 * (30.0 - do)
            rpm = min(max(rpm, 300.0), 1500.0)
            plant.write("stirrer_rpm_sp", rpm)
            o2 = plant.read("o2_flow_sccm_sp")
            if rpm >= 1500.0 and do < 25.0:
                o2 = min(o2 + 5.0, 2000.0)
            elif do > 40.0:
                o2 = max(o2 - 5.0, 0.0)
            plant.write("o2_flow_sccm_sp", o2)
        ph = plant.read("ph")
        if math.isfinite(ph):
            plant.write("base_rate_ml_min", 3.0 if ph < 6.95 else 0.0)
        # The batch ends when glucose runs out: DO jumps while the stirrer is still high.
        if self.feed_start_h is None and plant.state()["glucose_g_l"] < 0.1:
            self.feed_start_h = t_h
        if self.feed_start_h is not None:
            rate = self.feed0_ml_min * math.exp(self.mu_set_h * (t_h - self.feed_start_h))
            plant.write("feed_rate_ml_min", min(rate, 10.0))
        foam = plant.read("foam")
        plant.write("antifoam_rate_ml_min", 1.0 if foam == 1.0 else 0.0)


def row(run: str, plant: Plant) -> list[float | str]:
    s = plant.state()
    r = plant.readings()
    return [
        run,
        round(plant.time_s / 3600.0, 4),
        s["biomass_g_l"],
        s["glucose_g_l"],
        s["acetate_g_l"],
        s["volume_l"],
        r["temp_c"],
        r["ph"],
        r["do_pct"],
        r["stirrer_rpm"],
        r["o2_flow_sccm"],
        plant.read("feed_rate_ml_min"),
        plant.balances()["base_ml"],
        s["our_mm_h"],
        r["foam"],
    ]


def simulate(
    controlled: bool, hours: float, dt_s: float, record_every_s: float, seed: int
) -> list[list[float | str]]:
    """One run; returns its rows."""
    plant = Plant(PlantConfig.ecoli_2l(seed=seed))
    ctl = SimpleControllers() if controlled else None
    name = "controlled" if controlled else "uncontrolled"
    rows = [row(name, plant)]
    steps_per_record = max(1, round(record_every_s / dt_s))
    n_steps = round(hours * 3600.0 / dt_s)
    for i in range(1, n_steps + 1):
        if ctl is not None:
            ctl.apply(plant, dt_s)
        plant.step(dt_s)
        if i % steps_per_record == 0:
            rows.append(row(name, plant))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--dt", type=float, default=5.0, help="control and plant step, s")
    ap.add_argument("--record-every", type=float, default=300.0, help="CSV row period, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("ecoli_runs.csv"))
    args = ap.parse_args(argv)
    with args.out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for controlled in (False, True):
            rows = simulate(controlled, args.hours, args.dt, args.record_every, args.seed)
            w.writerows(rows)
            last = dict(zip(COLUMNS, rows[-1], strict=True))
            print(
                f"{last['run']:>12}: {last['time_h']} h, X {float(last['biomass_g_l']):.2f} g/L, "
                f"S {float(last['glucose_g_l']):.3f} g/L, A {float(last['acetate_g_l']):.3f} g/L, "
                f"T {float(last['temp_c']):.2f} °C, pH {float(last['ph']):.2f}"
            )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
