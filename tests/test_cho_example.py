"""The CHO example in process (``open_run``): soft-sensor glucose control, its tolerances, and
the fall-back to the feed profile when the spectrometer delivers unusable spectra.

The plant's true glucose at each spectrum is captured beside the run, so the soft sensor's
RMSEP against the truth is measured, not assumed. Runs use a scaled clock: the example's
tolerances (acceptance blocks) are asserted from the historian.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgectl.historian import HistoryReader
from edgectl.runtime.build import Run, open_run
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.runtime.softsensor import STATUS_CODES
from edgectl.runtime.summary import loop_figures
from edgectl.spectra import SoftSensor

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "cho-fedbatch-2L.toml"
SPEED = 3600.0


@dataclass
class Capture:
    """(clock time, status, prediction, true glucose) of every soft-sensor result."""

    rows: list[tuple[float, str, float, float]] = field(default_factory=list)
    truth: list[float] = field(default_factory=lambda: [math.nan])

    def rmsep(self) -> float:
        err = [p - t for _, s, p, t in self.rows if s == "in_model"]
        return float(np.sqrt(np.mean(np.square(err))))


def _instrument(run: Run) -> Capture:
    """Record the plant's true glucose at each new spectrum and pair it with the prediction."""
    cap = Capture()
    plant = run.plant
    before = run.controller.before_scan
    assert before is not None
    seen = [math.nan]

    def before_scan(now_s: float) -> None:
        before(now_s)
        if plant.spectrum_time_s != seen[0]:
            seen[0] = plant.spectrum_time_s
            cap.truth[0] = plant.state()["glucose_g_l"]

    run.controller.before_scan = before_scan
    block = run.controller.softsensors["glucose"]
    acquire = block._acquire

    def _acquire() -> Any:
        truth = cap.truth[0]
        r = acquire()
        if r is not None:
            cap.rows.append((r.time_s, r.status, r.value, truth))
        return r

    block._acquire = _acquire  # type: ignore[method-assign]
    return cap


@pytest.fixture
def run_cho(tmp_path: Path) -> Iterator[Any]:
    runs: list[Run] = []

    def start(hours: float, *, fault: tuple[float, float] | None = None) -> tuple[Run, Capture]:
        run = open_run(CONFIG, speed=SPEED, db=tmp_path / "cho.db", serve_rpc=False)
        runs.append(run)
        cap = _instrument(run)
        if fault is not None:
            start_h, hours_long = fault
            run.plant.inject_fault(
                "spectrometer_dropout", start_s=start_h * 3600.0, duration_s=hours_long * 3600.0
            )
        t0 = time.monotonic()
        run.run(hours * 3600.0)
        wall = time.monotonic() - t0
        run.close()
        print(f"CHO {hours:g} h at {SPEED:g}x: {wall:.1f} s wall", file=sys.stderr)
        return run, cap

    yield start
    for r in runs:
        r.close()


def _phase_start_s(reader: HistoryReader, t0: float) -> float:
    [ev] = [e for e in reader.events() if e.kind == "phase"]
    return ev.time_s - t0


@pytest.mark.timeout(900)  # a guard against a hung run (85 s at load 8), never a criterion
def test_cho_holds_tolerances_with_soft_sensor_glucose(run_cho: Any, tmp_path: Path) -> None:
    run, cap = run_cho(36.0)
    cfg = load_reactor_config(CONFIG)
    with HistoryReader(tmp_path / "cho.db") as reader:
        [r] = reader.runs()
        figures = loop_figures(reader, cfg, r.started_s)
        for loop in ("temp", "ph", "do", "glucose"):
            f = figures[loop]
            print(f"{loop}: worst {f.max_abs_dev:.3g} within {f.fraction_within:.3f}")
            assert f.n_samples > 100, loop
            assert f.ok, f"{loop}: worst deviation {f.max_abs_dev:.3g} > band {f.band:g}"
        # the feed loop ran on the soft sensor: fed-batch started on the glucose condition
        t_feed = _phase_start_s(reader, r.started_s)
        assert 3 * 3600 < t_feed < 24 * 3600
        status = reader.samples("glucose_g_l.status", r.started_s)
        assert np.mean(status.values == STATUS_CODES["in_model"]) > 0.9
    rmsep = cap.rmsep()
    print(f"soft sensor RMSEP vs true glucose: {rmsep:.4f} g/L over {len(cap.rows)} spectra")
    assert len(cap.rows) > 400  # one spectrum every 5 min for 36 h
    assert rmsep < 0.1  # calibration RMSECV 0.037 g/L
    # the tag used for control carries T² and Q beside it
    snap = run.controller.read_tags(["glucose_g_l", "glucose_g_l.t2", "glucose_g_l.q"])
    assert all(math.isfinite(v["value"]) for v in snap.values())


@pytest.mark.timeout(900)  # a guard against a hung run (85 s at load 8), never a criterion
def test_out_of_model_spectra_fall_back_to_the_feed_profile_then_recover(
    run_cho: Any, tmp_path: Path
) -> None:
    fault_h, fault_len_h = 20.0, 4.0
    _, cap = run_cho(30.0, fault=(fault_h, fault_len_h))
    cfg = load_reactor_config(CONFIG)
    assert cfg.recipe is not None
    feed = cfg.recipe.phase("fed-batch").feed
    assert feed is not None
    with HistoryReader(tmp_path / "cho.db") as reader:
        [r] = reader.runs()
        t0 = r.started_s
        t_feed = _phase_start_s(reader, t0)
        assert t_feed < fault_h * 3600
        glc = reader.samples("glucose_g_l", t0)
        status = reader.samples("glucose_g_l.status", t0)
        out = reader.samples("feed_ml_min", t0)
        rel = glc.times_s - t0
        # well inside the fault: invalid spectra, the tag BAD (never GOOD)
        inside = (rel > (fault_h + 0.2) * 3600) & (rel < (fault_h + fault_len_h) * 3600)
        assert inside.sum() > 100
        assert not np.any(glc.quality[inside] == 0)
        st_rel = status.times_s - t0
        st_in = (st_rel > (fault_h + 0.2) * 3600) & (st_rel < (fault_h + fault_len_h) * 3600)
        # a dropout spectrum (flat baseline + detector noise) is far outside the model
        unusable = (STATUS_CODES["out_of_model"], STATUS_CODES["invalid"])
        assert np.all(np.isin(status.values[st_in], unusable))
        # ... and the feed follows the recipe's profile alone
        o_rel = out.times_s - t0
        o_in = (o_rel > (fault_h + 0.2) * 3600) & (o_rel < (fault_h + fault_len_h) * 3600)
        profile = np.array([feed.rate_at(t - t_feed) for t in o_rel[o_in]])
        np.testing.assert_allclose(out.values[o_in], profile, rtol=1e-6, atol=1e-9)
        # before the fault and after recovery the soft-sensor loop trims the profile
        for lo, hi in ((fault_h - 6, fault_h), (fault_h + fault_len_h + 1, 30.0)):
            sel = (o_rel > lo * 3600) & (o_rel < hi * 3600)
            prof = np.array([feed.rate_at(t - t_feed) for t in o_rel[sel]])
            assert np.max(np.abs(out.values[sel] - prof)) > 1e-3, (lo, hi)
        after = rel > (fault_h + fault_len_h + 0.5) * 3600
        assert np.mean(glc.quality[after] == 0) > 0.9  # GOOD again
        assert np.max(np.abs(glc.values[after] - 2.5)) < 0.4
        events = [e.kind for e in reader.events()]
        assert "phase" in events
    rejected = [row for row in cap.rows if row[1] != "in_model"]
    assert len(rejected) >= 40  # every spectrum of the 4 h fault


def test_calibration_script_reproduces_the_committed_model() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import calibrate_cho_softsensor as cal
    finally:
        sys.path.pop(0)
    assert cal.main(["--check"]) == 0
    sensor = SoftSensor.load(cal.MODEL)
    assert sensor.n_components <= 6
    assert sensor.rmsec[0] < 0.1


@pytest.mark.timeout(600)  # a guard against a hung run, never a criterion
def test_reference_over_the_repl_socket_is_audited(tmp_path: Path) -> None:
    from edgectl.operator import RefusedError, UserStore
    from edgectl.remote import connect

    sock = tmp_path / "cho.sock"
    run = open_run(CONFIG, speed=SPEED, db=tmp_path / "cho.db", socket_path=sock)
    try:
        run.run(1800.0)  # six spectra
        UserStore(tmp_path / "cho.users").add("ana", "operator", "ana's password")
        with connect(sock, user="ana", password="ana's password") as r:
            status = r.softsensors()["glucose"]
            assert status["counts"]["in_model"] >= 5
            out = r.add_reference("glucose", 3.1, sampled_s=1500.0)
            assert out["value"] == 3.1
            assert abs(out["error"]) < 0.2  # prediction − reference
            with pytest.raises(RefusedError, match="lactate"):
                r.add_reference("lactate", 1.0)
    finally:
        run.close()
    with HistoryReader(tmp_path / "cho.db") as reader:
        [rec] = [a for a in reader.audit.records() if a.action == "add_reference"]
        assert rec.actor == "ana"
        assert rec.target == "softsensors.glucose"
        assert reader.audit.verify().is_intact


@pytest.mark.parametrize(("rate", "height"), [(0.2, 0.2), (5.0, 0.5), (30.0, 1.0)])
def test_cosmic_ray_spikes_are_despiked_not_passed_to_control(rate: float, height: float) -> None:
    """Spikes (Poisson ``rate`` per spectrum) are removed by the model's Despike step: the
    prediction stays in model and as accurate as on clean spectra."""
    import msgspec

    from edgectl.sim import Plant, load_plant_config

    sensor = SoftSensor.load(ROOT / "examples" / "models" / "cho-glucose.json")
    cfg = load_plant_config(ROOT / "examples" / "cho-fedbatch-2L.plant.toml")
    spec = msgspec.structs.replace(cfg.spectrometer, spike_rate=rate, spike_height=height)
    plant = Plant(msgspec.structs.replace(cfg, spectrometer=spec))
    errors, in_model = [], 0
    for _ in range(30):
        plant.advance(300.0, 30.0)
        p = sensor.predict(plant.spectrum()[1])
        if p.is_in_model:
            in_model += 1
            errors.append(p.value - plant.state()["glucose_g_l"])
    assert in_model >= 27
    assert float(np.sqrt(np.mean(np.square(errors)))) < 0.08
