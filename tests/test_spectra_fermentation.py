"""The soft sensor on real data: the chemotools fermentation set (ATR-MIR, glucose by HPLC;
Cabaneros Lopez et al., Biotechnol. Bioeng. 118 (2021) 579), shipped inside the chemotools
wheel and read from its package files (no network). Targets: reference softsensor.md §7–§8.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

from edgectl import spectra as sp

pytest.importorskip("chemotools")
scipy_signal = pytest.importorskip("scipy.signal")
sklearn_pls = pytest.importorskip("sklearn.cross_decomposition")
sklearn_ms = pytest.importorskip("sklearn.model_selection")

DATA = files("chemotools.datasets") / "data"
STEPS = [
    sp.Region(windows_cm1=((950.0, 1550.0),)),
    sp.SavitzkyGolay(window=15, order=2, deriv=1),
    sp.Snv(ddof=1),
]
# Reference §8, pipeline P2 (cut + SG-d1 + SNV), LOO and KFold(10), 1…10 LV, g/L.
P2_LOO = [5.15, 2.34, 1.71, 1.30, 1.31, 1.29, 1.31, 1.31, 1.28, 1.29]
P2_10FOLD = [5.89, 2.26, 1.87, 1.87, 1.86, 1.84, 1.87, 1.89, 1.86, 1.86]
SPECTRUM_PERIOD_H = 1.25 / 60.0


@pytest.fixture(scope="module")
def train():
    axis, x = sp.read_spectra_csv(DATA / "train_spectra.csv")
    names, y = sp.read_references_csv(DATA / "train_hplc.csv")
    assert names == ["glucose"]
    return axis, x, y[:, 0]


@pytest.fixture(scope="module")
def inline(train):
    axis, x = sp.read_spectra_csv(DATA / "fermentation_spectra.csv")
    np.testing.assert_array_equal(axis, train[0])
    _, hplc = sp.read_references_csv(DATA / "fermentation_hplc.csv", ["time", "glucose"])
    return x, hplc


@pytest.fixture(scope="module")
def sensor(train):
    axis, x, y = train
    return sp.SoftSensor.fit(axis, x, y, STEPS, 4, target_names=("glucose",), units=("g/L",))


def reference_preprocess(axis: np.ndarray, x: np.ndarray) -> np.ndarray:
    keep = (axis >= 950.0) & (axis <= 1550.0)
    d = scipy_signal.savgol_filter(x[:, keep], 15, 2, deriv=1, axis=1)
    return (d - d.mean(axis=1, keepdims=True)) / d.std(axis=1, ddof=1, keepdims=True)


def test_data_set_shape(train, inline):
    axis, x, _y = train
    assert x.shape == (21, 1047)
    assert axis[0] == 428.0
    assert axis[-1] == 1833.0
    assert inline[0].shape == (1629, 1047)
    assert inline[1].shape == (34, 2)


def test_preprocessing_matches_scipy(train, sensor):
    axis, x, _ = train
    ours = sensor.pipeline.transform(x)
    assert ours.shape == (21, 446)
    np.testing.assert_allclose(ours, reference_preprocess(axis, x), rtol=1e-9, atol=1e-12)


def test_predictions_match_sklearn_on_the_inline_run(train, inline, sensor):
    axis, x, y = train
    ref = sklearn_pls.PLSRegression(n_components=4, scale=False).fit(
        reference_preprocess(axis, x), y
    )
    xi = inline[0][:1626]  # rows 1626–1628 are flat dropouts (tested below)
    expect = ref.predict(reference_preprocess(axis, xi))
    got = sensor.predict_batch(xi).value
    np.testing.assert_allclose(got, expect, rtol=1e-9)
    np.testing.assert_allclose(sensor.pls.coef, ref.coef_, rtol=1e-8, atol=1e-12)
    one = sensor.predict(np.ascontiguousarray(xi[700]))
    assert one.value == pytest.approx(expect[700], rel=1e-9)


@pytest.mark.parametrize(
    ("scheme", "splitter", "table"),
    [("loo", sklearn_ms.LeaveOneOut(), P2_LOO), ("blocks:10", sklearn_ms.KFold(10), P2_10FOLD)],
)
def test_rmsecv_curve_matches_sklearn_and_reference(train, scheme, splitter, table):
    axis, x, y = train
    cv = sp.cross_validate(axis, x, y, STEPS, 10, cv=scheme)
    xp = reference_preprocess(axis, x)
    for a in range(1, 11):
        pred = sklearn_ms.cross_val_predict(
            sklearn_pls.PLSRegression(n_components=a, scale=False), xp, y, cv=splitter
        )
        np.testing.assert_allclose(cv.predictions(a)[:, 0], pred, rtol=1e-9)
        assert cv.rmsecv[a - 1, 0] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)), rel=1e-9)
    # Reference table values are printed with two decimals.
    np.testing.assert_allclose(cv.rmsecv_combined, table, rtol=0.01, atol=0.005)


def test_reference_pipeline_rmsecv_and_parsimonious_choice(train):
    axis, x, y = train
    cal = sp.calibrate(
        axis, x, y, STEPS, max_components=10, cv="loo", target_names=("glucose",), units=("g/L",)
    )
    assert cal.n_components == 4
    assert cal.rmsecv == pytest.approx(1.30, rel=0.01)
    assert cal.sensor.rmsec[0] < cal.rmsecv


def test_flat_dropout_spectra_are_invalid_and_never_nan_downstream(inline, sensor):
    b = sensor.predict_batch(inline[0])
    assert b.status[1626:] == ["invalid"] * 3
    assert not b.is_in_model[1626:].any()
    assert not b.is_valid[1626:].any()
    assert np.isnan(b.value[1626:]).all()
    assert np.isfinite(b.value[:1626]).all()
    assert b.is_valid[:1626].all()
    for row in inline[0][1626:]:
        p = sensor.predict(row)
        assert p.status == "invalid"
        assert "flat" in p.reason


def test_q_limit_survives_the_jackson_mudholkar_breakdown(train, sensor):
    # Reference §3: on this set JM's h0 <= 0 and chemotools' JM limit (0.473) flags every
    # calibration spectrum; the Box limit keeps the calibration set inside.
    _axis, x, _ = train
    assert sensor.q_limit_method == "box"
    cal = sensor.predict_batch(x)
    assert np.mean(cal.q > sensor.q_limit) <= 0.10
    assert np.mean(cal.t2 > sensor.t2_limit) <= 0.10
    assert sensor.q_limit == pytest.approx(3.35, rel=0.05)


def test_inline_spectra_are_flagged_out_of_model(inline, sensor):
    # The transfer gap (reference §7): every in-line spectrum lies far beyond the Q limit.
    b = sensor.predict_batch(inline[0][:1626])
    assert not b.is_in_model.any()
    assert np.median(b.q / sensor.q_limit) > 50


def matched_predictions(values: np.ndarray, valid: np.ndarray, times_h: np.ndarray) -> np.ndarray:
    """Prediction at each reference time: spectrum round(t / 1.25 min), stepping back to the
    last valid one (reference §6)."""
    out = []
    for t in times_h:
        i = min(round(t / SPECTRUM_PERIOD_H), values.size - 1)
        while not valid[i]:
            i -= 1
        out.append(values[i])
    return np.array(out)


def prequential_corrected(values, valid, hplc, **tuning) -> tuple[np.ndarray, int]:
    """Feed predictions and references in time order; score each reference against the
    estimate *before* it is assimilated (at equal times the reference is scored first)."""
    kf = sp.BiasKalman(**tuning)
    events = [(i * SPECTRUM_PERIOD_H, 1, v) for i, v in enumerate(values) if valid[i]]
    events += [(t, 0, v) for t, v in hplc]
    events.sort(key=lambda e: (e[0], e[1]))
    errors, rejected = [], 0
    for t, kind, v in events:
        if kind == 1:
            kf.update_prediction(t, v)
            continue
        est = kf.estimate_at(t)
        errors.append(np.nan if est is None else est.value - v)
        if est is not None:
            rejected += not kf.update_reference(t, v).accepted
    return np.array(errors), rejected


def test_online_correction_improves_rmsep(train, inline, sensor):
    axis, x, y = train
    cv = sp.cross_validate(axis, x, y, STEPS, 4)
    rmsecv = float(cv.rmsecv[3, 0])
    b = sensor.predict_batch(inline[0])
    hplc = inline[1]
    raw_err = matched_predictions(b.value, b.is_valid, hplc[:, 0]) - hplc[:, 1]
    rmsep_raw_all = np.sqrt(np.mean(raw_err**2))
    rmsep_raw = np.sqrt(np.mean(raw_err[1:] ** 2))  # references 2…34, as the corrected one
    assert rmsep_raw_all == pytest.approx(5.90, rel=0.01)  # reference §8, P2 4 LV
    err, rejected = prequential_corrected(b.value, b.is_valid, hplc, r_prediction=rmsecv**2)
    rmsep_kf = np.sqrt(np.mean(err[1:] ** 2))
    assert rmsep_kf < rmsep_raw < rmsep_raw_all
    assert rmsep_kf < 0.6 * rmsep_raw_all
    assert rejected <= 3


def test_innovation_gate_rejects_a_wrong_reference(inline, sensor):
    b = sensor.predict_batch(inline[0])
    hplc = inline[1].copy()
    hplc[10, 1] += 40.0  # a transcription error
    gated, rejected = prequential_corrected(b.value, b.is_valid, hplc, r_prediction=1.69)
    open_, none = prequential_corrected(
        b.value, b.is_valid, hplc, r_prediction=1.69, gate_sigma=1e9
    )
    keep = np.ones(34, bool)
    keep[[0, 10]] = False
    assert rejected >= 1
    assert none == 0
    assert np.sqrt(np.mean(gated[keep] ** 2)) < 0.8 * np.sqrt(np.mean(open_[keep] ** 2))
