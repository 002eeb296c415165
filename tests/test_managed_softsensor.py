"""The managed soft sensor on the real in-line run (chemotools fermentation set, ATR-MIR,
glucose by HPLC; Cabaneros Lopez et al., Biotechnol. Bioeng. 118 (2021) 579), fed
prequentially: spectra and references in time order, each reference scored against the
estimate before it is assimilated (reference softsensor.md §6)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import pytest

from edgectl import spectra as sp
from edgectl.cli import main
from edgectl.errors import InvalidInputError
from edgectl.historian.softsensor_registry import ModelRegistry, RegistryError
from edgectl.managed import (
    Cusum,
    DriftMonitor,
    Estimate,
    ManagedEstimator,
    PrequentialError,
    Reference,
    calibration_sha256,
)

pytest.importorskip("chemotools")

DATA = files("chemotools.datasets") / "data"
STEPS: list[sp.Step] = [
    sp.Region(windows_cm1=((950.0, 1550.0),)),
    sp.SavitzkyGolay(window=15, order=2, deriv=1),
    sp.Snv(ddof=1),
]
PERIOD_H = 1.25 / 60.0


@dataclass
class Run:
    estimator: ManagedEstimator
    errors: np.ndarray  # prequential error at each of the 34 references, g/L
    versions_used: list[int]
    monitor: DriftMonitor
    estimates: list[Estimate]


@pytest.fixture(scope="module")
def data():
    axis, xc = sp.read_spectra_csv(DATA / "train_spectra.csv")
    _, yc = sp.read_references_csv(DATA / "train_hplc.csv")
    _, xi = sp.read_spectra_csv(DATA / "fermentation_spectra.csv")
    _, hplc = sp.read_references_csv(DATA / "fermentation_hplc.csv", ["time", "glucose"])
    return axis, xc, yc[:, 0], xi, hplc


def feed(axis, xc, yc, xi, hplc) -> Run:
    """Spectrum i at i·1.25 min; reference k scored at spectrum round(t/1.25 min) (§6), then
    assimilated, known at its sampling time (HPLC delay not recorded in the data set)."""
    m = ManagedEstimator(axis, xc, yc, STEPS)
    mon = DriftMonitor()
    last = xi.shape[0] - 1
    events = [(min(round(t / PERIOD_H), last) * PERIOD_H, 1, k) for k, t in enumerate(hplc[:, 0])]
    events += [(i * PERIOD_H, 0, i) for i in range(xi.shape[0])]
    events.sort(key=lambda e: (e[0], e[1]))
    errors, used, estimates = [], [], []
    for t, kind, k in events:
        if kind == 0:
            estimates.append(m.add_spectrum(t, xi[k]))
            mon.on_estimate(estimates[-1])
            continue
        est = m.estimate_at(t)
        assert est is not None
        errors.append(est.value - hplc[k, 1])
        used.append(est.model_version)
        m.add_reference(
            Reference(hplc[k, 0], hplc[k, 1], analyser="HPLC"), now_h=max(t, hplc[k, 0])
        )
        mon.on_innovation(t, errors[-1])
    return Run(m, np.array(errors), used, mon, estimates)


@pytest.fixture(scope="module")
def run(data) -> Run:
    axis, xc, yc, xi, hplc = data
    return feed(axis, xc, yc, xi, hplc)


def rmsep(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e**2)))


def test_recalibrated_estimator_beats_the_offline_and_corrected_models(run):
    # Reference figures over samples 2–34 (issue 18; tests/test_spectra_fermentation.py):
    # off-line model 3.24 g/L raw, 3.10 g/L with the bias Kalman filter fed prequentially.
    figure = rmsep(run.errors[1:])
    print(f"managed estimator RMSEP over samples 2-34: {figure:.2f} g/L")
    assert figure < 2.4  # measured 2.25 g/L (2.37 with lv_choice="all"); the goal of 2.0 is not met
    assert figure < 0.8 * 3.10
    # The first sample is scored by the off-line model (nothing known before it).
    assert run.versions_used[0] == 0
    assert abs(run.errors[0]) > 20.0


def test_every_estimate_uses_only_references_known_before_it(run, data):
    hplc = data[4]
    m = run.estimator
    for k, version in enumerate(run.versions_used):
        v = m.versions[version]
        t_ref = hplc[k, 0]
        if v.trained_until_known_h is not None:
            assert v.trained_until_known_h < t_ref
        assert v.n_inline <= k
        assert v.released_at_h is not None
        assert v.released_at_h <= t_ref + PERIOD_H / 2
    # Each version is fitted only after the references it contains were known.
    for v in m.versions[1:]:
        assert v.trained_until_known_h is not None
        assert v.trained_until_known_h <= v.fitted_at_h


def test_a_reference_offered_before_it_is_known_is_refused(data):
    axis, xc, yc, xi, _ = data
    m = ManagedEstimator(axis, xc, yc, STEPS)
    for i in range(10):
        m.add_spectrum(i * PERIOD_H, xi[100 + i])
    with pytest.raises(PrequentialError, match=r"known at 5\.0 h"):
        m.add_reference(Reference(0.1, 40.0, known_at_h=5.0))
    with pytest.raises(InvalidInputError, match="before the sampling time"):
        Reference(1.0, 40.0, known_at_h=0.5)
    assert len(m.versions) == 1


def test_a_reference_without_steady_spectra_is_not_paired(run):
    first = run.estimator.references[0]
    assert not first.paired
    assert "not paired" in first.reason
    assert all(o.paired for o in run.estimator.references[1:])


def test_registry_records_provenance_and_lv_choice(run, data):
    m = run.estimator
    _axis, xc, yc, _, _ = data
    v0 = m.versions[0]
    assert v0.released_by == "calibration"
    assert v0.n_components == 4  # the off-line parsimonious choice (reference §8, P2)
    assert v0.rmsecv == pytest.approx(1.30, rel=0.01)
    assert v0.calibration_sha256 == calibration_sha256(xc, yc, STEPS)
    assert v0.calibration_sha256 != calibration_sha256(xc, yc + 1e-9, STEPS)
    last = m.versions[-1]
    assert last.n_inline == 33
    assert last.parent is not None
    s = last.summary()
    assert s["pipeline"][0]["kind"] == "region"
    assert s["inline_rmsecv"] is not None
    assert s["inline_rmsecv"] > 0
    assert {v.n_components for v in m.versions} <= set(range(1, 9))


def test_release_and_restore_are_recorded(data):
    axis, xc, yc, xi, hplc = data
    m = ManagedEstimator(axis, xc, yc, STEPS, auto_release=False)
    for i in range(140):
        m.add_spectrum(i * PERIOD_H, xi[i])
    out = m.add_reference(Reference(hplc[1, 0], hplc[1, 1]))
    assert out.paired
    assert not out.released
    assert out.candidate == 1
    assert m.released == 0
    with pytest.raises(InvalidInputError, match="name of who"):
        m.release(1, by="", reason="x")
    m.release(1, by="alice", reason="reviewed figures")
    assert m.model.released_by == "alice"
    assert m.add_spectrum(140 * PERIOD_H, xi[140]).model_version == 1
    assert m.restore_previous(by="bob", reason="back out") == 0
    assert m.add_spectrum(141 * PERIOD_H, xi[141]).model_version == 0
    assert [s[1:3] for s in m.switches] == [(0, 0), (0, 1), (1, 0)]
    assert "bob" in m.switches[-1][3]


def test_cusum_follows_pages_recursion():
    c = Cusum(k=0.5, h=2.0)
    assert [c.update(z) for z in (1.0, 1.0, 1.0, 1.0, 1.0)] == [False] * 4 + [True]
    assert c.s == pytest.approx(2.5)
    c.update(math.nan)
    assert c.s == pytest.approx(2.5)
    c.update(-10.0)
    assert c.s == 0.0


def _estimates(sensor: sp.SoftSensor, x: np.ndarray, start_h: float) -> list[Estimate]:
    b = sensor.predict_batch(x)
    return [
        Estimate(
            start_h + i * PERIOD_H,
            float(b.value[i]),
            bool(b.is_valid[i]),
            bool(b.is_in_model[i]),
            float(b.t2[i] / sensor.t2_limit),
            float(b.q[i] / sensor.q_limit),
            1,
        )
        for i in range(x.shape[0])
    ]


def test_drift_alarm_on_an_interferent_and_not_on_the_clean_run(run, data):
    axis, _, _, xi, _ = data
    sensor = run.estimator.model.sensor
    x = xi[240:1626]  # from 5 h, after the early recalibrations
    clean = DriftMonitor()
    for e in _estimates(sensor, x, 5.0):
        clean.on_estimate(e)
    assert not clean.alarm
    assert clean.events == []
    # An interferent (a Gaussian band at 1150 cm⁻¹, 20 cm⁻¹ wide, 2 % of the mean absorbance)
    # appears at 20 h: a plant fault the calibration has never seen.
    band = 0.02 * float(np.mean(x)) * np.exp(-0.5 * ((axis - 1150.0) / 20.0) ** 2)
    faulty = x.copy()
    onset = round((20.0 - 5.0) / PERIOD_H)
    faulty[onset:] += band
    mon = DriftMonitor()
    for e in _estimates(sensor, faulty, 5.0):
        mon.on_estimate(e)
    assert mon.alarm
    assert mon.events[0][1] == "q_drift"
    assert 20.0 <= mon.events[0][0] < 21.0


def test_registry_round_trip_and_report(run, tmp_path, capsys):
    db = tmp_path / "run.db"
    m = run.estimator
    with ModelRegistry(db) as reg:
        reg.record("glucose", m, time_base_s=1000.0)
        reg.record("glucose", m, time_base_s=1000.0)  # idempotent
        assert reg.add_estimates("glucose", run.estimates, time_base_s=1000.0) == 1629
    with ModelRegistry(db) as reg:
        assert reg.sensors() == ["glucose"]
        stored = reg.versions("glucose")
        assert [v.version for v in stored] == [v.version for v in m.versions]
        for a, b in zip(stored, m.versions, strict=True):
            assert a.calibration_sha256 == b.calibration_sha256
            assert a.n_components == b.n_components
            assert a.released_by == b.released_by
        back = reg.load_model("glucose", stored[-1].version)
        x = np.ascontiguousarray(m.spectra[:3])
        np.testing.assert_allclose(
            back.predict_batch(x).value, m.versions[-1].sensor.predict_batch(x).value, rtol=1e-12
        )
        with pytest.raises(RegistryError, match="no version 99"):
            reg.load_model("glucose", 99)
        ests = reg.estimates("glucose")
        assert len(ests) == 1629
        assert [e.model_version for e in ests] == [e.model_version for e in run.estimates]
        assert ests[0].time_s == pytest.approx(1000.0)
        refs = reg.references("glucose")
        assert len(refs) == 34
        assert refs[0].analyser == "HPLC"
        assert not refs[0].paired
        assert len(reg.switches("glucose")) == len(m.switches)
    assert main(["softsensor", "report", str(db), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["glucose"]
    assert len(rep["versions"]) == len(m.versions)
    assert sum(v["estimates"] for v in rep["versions"]) == 1629
    assert rep["rmsep"] == pytest.approx(
        rmsep(np.array([r.prequential_error for r in m.references[1:]])), rel=1e-9
    )
    assert main(["softsensor", "report", str(db)]) == 0
    text = capsys.readouterr().out
    assert "soft sensor glucose (registry): " in text
    assert "not paired" in text
    assert main(["softsensor", "report", str(db), "--sensor", "lactate"]) == 2
    assert "no soft sensor 'lactate'" in capsys.readouterr().err


def _inline_curve(m: ManagedEstimator, cv: sp.CvResult, y: np.ndarray) -> np.ndarray:
    no = m.values.size
    return np.array(
        [rmsep(cv.predictions(k)[no:, 0] - y[no:]) for k in range(1, cv.max_components + 1)]
    )


def test_lv_count_is_chosen_on_the_inline_pairs_by_default(run, data):
    axis, xc, yc, _, _ = data
    m = run.estimator
    assert m.lv_choice == "inline"
    differ = 0
    for v in m.versions[1:]:
        pairs = m._pairs[: v.n_inline]
        x = np.vstack([xc, np.stack([p.spectrum for p in pairs])])
        y = np.concatenate([yc, [p.reference.value for p in pairs]])
        max_a = min(8, y.size - 2)
        cv = sp.cross_validate(axis, x, y, STEPS, max_a, cv="loo", groups=list(range(y.size)))
        curve = _inline_curve(m, cv, y)
        inline_choice = int(np.nonzero(curve <= 1.02 * curve.min())[0][0]) + 1
        assert v.n_components == inline_choice
        assert v.inline_rmsecv == pytest.approx(curve[inline_choice - 1], rel=1e-12)
        differ += cv.choose_components(0.02) != inline_choice
    # The earlier rule (all rows' error) picks another count for some of the candidates, so
    # the checks above tell the two rules apart.
    assert differ > 0


def test_lv_choice_all_uses_every_row_and_bad_choice_is_refused(data):
    axis, xc, yc, xi, hplc = data
    with pytest.raises(InvalidInputError, match="lv_choice must be 'inline' or 'all'"):
        ManagedEstimator(axis, xc, yc, STEPS, lv_choice="pairs")  # type: ignore[arg-type]
    m = ManagedEstimator(axis, xc, yc, STEPS, lv_choice="all", auto_release=False)
    for i in range(400):
        m.add_spectrum(i * PERIOD_H, xi[i])
    for k in (1, 2, 3, 4):
        m.add_reference(Reference(hplc[k, 0], hplc[k, 1]))
    x = np.vstack([xc, np.stack([p.spectrum for p in m._pairs])])
    y = np.concatenate([yc, [p.reference.value for p in m._pairs]])
    cv = sp.cross_validate(axis, x, y, STEPS, 8, cv="loo", groups=list(range(y.size)))
    assert m.versions[-1].n_components == cv.choose_components(0.02)
    assert m.versions[-1].inline_rmsecv == pytest.approx(
        _inline_curve(m, cv, y)[cv.choose_components(0.02) - 1], rel=1e-12
    )
