"""Spectral soft sensor through the public API: preprocessing parity with scipy, PLS parity with
scikit-learn, diagnostics, model files, boundary checks and the bias Kalman filter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgectl import spectra as sp
from edgectl.errors import (
    ConfigError,
    InvalidInputError,
    ModelFileError,
    NumericalError,
    SpectrumShapeError,
)

scipy_signal = pytest.importorskip("scipy.signal")
scipy_stats = pytest.importorskip("scipy.stats")
sklearn_pls = pytest.importorskip("sklearn.cross_decomposition")
sklearn_ms = pytest.importorskip("sklearn.model_selection")

RTOL = 1e-9


def synthetic(n: int = 40, p: int = 300, targets: int = 1, seed: int = 0):
    """Mixture spectra: 3 analyte bands + a matrix band, offset, multiplicative scatter, noise."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(800.0, 1800.0, p)

    def band(c: float, w: float) -> np.ndarray:
        return np.exp(-(((axis - c) / w) ** 2))

    bands = np.stack([band(1000, 20), band(1150, 30), band(1400, 25)])
    conc = rng.uniform(0.0, 10.0, size=(n, 3))
    scatter = rng.uniform(0.9, 1.1, size=(n, 1))
    x = scatter * (0.1 * conc @ bands + 5.0 * band(1600, 60)) + rng.normal(0.0, 1e-3, (n, p))
    x += rng.uniform(-0.05, 0.05, size=(n, 1))
    y = conc[:, :targets] if targets > 1 else conc[:, 0]
    return axis, x, y


STEPS = [
    sp.Region(windows_cm1=((850.0, 1700.0),)),
    sp.SavitzkyGolay(window=15, order=2, deriv=1),
    sp.Snv(),
]


# --- Savitzky–Golay parity with scipy.signal.savgol_filter -----------------------------------


@pytest.mark.parametrize("mode", ["interp", "nearest", "mirror", "wrap"])
@pytest.mark.parametrize(
    ("window", "order", "deriv", "delta"),
    [(5, 2, 0, 1.0), (15, 2, 1, 1.0), (11, 3, 2, 0.5), (21, 4, 1, 2.0), (7, 6, 0, 1.0)],
)
def test_savgol_matches_scipy(mode, window, order, deriv, delta):
    rng = np.random.default_rng(window * 10 + order)
    x = np.cumsum(rng.normal(size=(3, 200)), axis=1)
    expect = scipy_signal.savgol_filter(x, window, order, deriv=deriv, delta=delta, mode=mode)
    got = sp.savgol_filter(x, window, order, deriv, delta, mode)
    scale = np.abs(expect).max()
    np.testing.assert_allclose(got, expect, rtol=RTOL, atol=1e-12 * scale)
    one = sp.savgol_filter(x[1], window, order, deriv, delta, mode)
    np.testing.assert_allclose(one, expect[1], rtol=RTOL, atol=1e-12 * scale)


@settings(max_examples=40, deadline=None)
@given(
    half=st.integers(1, 12),
    order=st.integers(0, 5),
    data=st.data(),
)
def test_savgol_exact_for_polynomials(half, order, data):
    window = 2 * half + 1
    if order >= window:
        order = window - 1
    deriv = data.draw(st.integers(0, order))
    coefs = data.draw(hnp.arrays(np.float64, order + 1, elements=st.floats(-3, 3)))
    n = data.draw(st.integers(window, window + 60))
    t = np.linspace(-1.0, 1.0, n)
    delta = t[1] - t[0]
    poly = np.polynomial.Polynomial(coefs)
    y = sp.savgol_filter(poly(t), window, order, deriv, delta, "interp")
    expect = poly.deriv(deriv)(t)
    scale = 1.0 + np.abs(expect).max()
    np.testing.assert_allclose(y, expect, atol=1e-7 * scale * max(1.0, n**deriv))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 4, "order": 2}, "window"),
        ({"window": 5, "order": 5}, "order"),
        ({"window": 5, "order": 2, "deriv": 3}, "deriv"),
        ({"window": 5, "order": 2, "mode": "constant"}, "mode"),
    ],
)
def test_savgol_rejects_bad_parameters(kwargs, match):
    with pytest.raises((InvalidInputError, ConfigError), match=match):
        sp.savgol_filter(np.ones(50) + np.arange(50.0), **kwargs)


# --- SNV, MSC, AsLS, despiking, region, resampling --------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=3, max_side=40),
        elements=st.floats(-1e3, 1e3),
    ),
    ddof=st.sampled_from([0, 1]),
)
def test_snv_rows_have_mean_zero_and_sd_one(x, ddof):
    spread = x.max(axis=1) - x.min(axis=1)
    x = x[spread > 1e-3 * (1 + np.abs(x).max(axis=1))]
    if x.shape[0] == 0:
        return
    z = sp.snv(x, ddof)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=1, ddof=ddof), 1.0, rtol=1e-9)


def test_snv_refuses_flat_rows_by_index():
    x = np.vstack([np.arange(10.0), np.ones(10)])
    with pytest.raises(NumericalError, match="row 1: flat spectrum"):
        sp.snv(x)


def test_msc_matches_least_squares_reference():
    axis, x, _ = synthetic(20, 200)
    pipe, xt = sp.Pipeline(axis, [sp.Msc()]).fit(x)
    ref = x.mean(axis=0)
    for row, got in zip(x, xt, strict=True):
        b, a = np.polyfit(ref, row, 1)
        np.testing.assert_allclose(got, (row - a) / b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pipe.transform(x[3]), xt[3], rtol=1e-12)
    assert pipe.steps[0]["kind"] == "msc"
    np.testing.assert_allclose(pipe.steps[0]["reference"], ref, rtol=1e-12)


def asls_reference(y: np.ndarray, lam: float, p: float, max_iter: int) -> np.ndarray:
    """Dense-sparse AsLS (Eilers & Boelens 2005) with scipy.sparse, same stopping rule."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    n = y.size
    d = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
    penalty = lam * (d.T @ d)
    w = np.ones(n)
    z = y
    for _ in range(max_iter):
        z = spsolve((sparse.diags(w) + penalty).tocsc(), w * y)
        new = np.where(y > z, p, 1.0 - p)
        if np.array_equal(new, w):
            break
        w = new
    return z


@pytest.mark.parametrize(("lam", "p"), [(1e3, 0.01), (1e5, 0.001), (1e7, 0.05)])
def test_asls_matches_sparse_solver(lam, p):
    _axis, x, _ = synthetic(2, 400, seed=3)
    y = x[0] + 0.3 * np.linspace(0, 1, 400) ** 2
    z = sp.asls_baseline(y, lam, p, 50)
    # The Whittaker system has condition number ~λ; both solvers carry ~λ·eps of rounding.
    np.testing.assert_allclose(z, asls_reference(y, lam, p, 50), rtol=0, atol=1e-10 + 1e-13 * lam)


def test_despike_removes_cosmic_ray_and_keeps_bands():
    axis, x, _ = synthetic(1, 500, seed=4)
    spiky = x[0].copy()
    spiky[250] += 5.0
    pipe = sp.Pipeline(axis, [sp.Despike(threshold=15.0, half_window=3)])
    out = pipe.transform(spiky)
    assert abs(out[250] - x[0][250]) < 0.01
    # At a threshold above the band-flank z-scores the clean spectrum is untouched.
    np.testing.assert_array_equal(pipe.transform(x[0]), x[0])


def test_region_with_two_windows_filters_each_segment():
    axis, x, _ = synthetic(5, 300)
    steps = [
        sp.Region(windows_cm1=((900.0, 1100.0), (1300.0, 1500.0))),
        sp.SavitzkyGolay(window=9, order=2, deriv=1),
    ]
    out = sp.Pipeline(axis, steps).transform(x)
    m1 = (axis >= 900) & (axis <= 1100)
    m2 = (axis >= 1300) & (axis <= 1500)
    expect = np.hstack(
        [scipy_signal.savgol_filter(x[:, m], 9, 2, deriv=1, axis=1) for m in (m1, m2)]
    )
    np.testing.assert_allclose(out, expect, rtol=RTOL, atol=1e-14)
    out_axis = sp.Pipeline(axis, steps).output_wavenumber_cm1
    np.testing.assert_array_equal(out_axis, np.concatenate([axis[m1], axis[m2]]))


def test_resample_matches_numpy_interp():
    src = np.linspace(400.0, 2000.0, 700)
    y = np.sin(src / 50.0)
    dst = np.linspace(500.0, 1900.0, 333)
    np.testing.assert_allclose(sp.resample(src, y, dst), np.interp(dst, src, y), rtol=1e-12)
    np.testing.assert_allclose(
        sp.resample(src[::-1].copy(), y[::-1].copy(), dst), np.interp(dst, src, y), rtol=1e-12
    )
    with pytest.raises(SpectrumShapeError, match="not covered"):
        sp.resample(src, y, np.linspace(300.0, 1000.0, 10))
    bad = src.copy()
    bad[10] = bad[9]
    with pytest.raises(SpectrumShapeError, match="monotone"):
        sp.resample(bad, y, dst)


# --- PLS parity with scikit-learn -------------------------------------------------------------


@pytest.mark.parametrize("targets", [1, 3])
@pytest.mark.parametrize("n_components", [1, 2, 5, 8])
def test_pls_nipals_matches_sklearn(targets, n_components):
    _, x, y = synthetic(40, 120, targets=targets, seed=targets)
    ref = sklearn_pls.PLSRegression(n_components=n_components, scale=False).fit(x, y)
    model = sp.PlsModel.fit(x, y, n_components)
    _, xt, _ = synthetic(25, 120, targets=targets, seed=99)
    np.testing.assert_allclose(model.predict(xt), ref.predict(xt), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(
        model.coef, ref.coef_, rtol=1e-8, atol=1e-12 * np.abs(ref.coef_).max()
    )
    np.testing.assert_allclose(model.intercept, np.atleast_1d(ref.intercept_), rtol=1e-12)
    np.testing.assert_allclose(model.x_weights, ref.x_weights_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.x_loadings, ref.x_loadings_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.x_rotations, ref.x_rotations_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.transform(xt), ref.transform(xt), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("n_components", [1, 3, 6])
def test_pls_simpls_equals_sklearn_for_one_response(n_components):
    _, x, y = synthetic(30, 150, seed=5)
    ref = sklearn_pls.PLSRegression(n_components=n_components, scale=False).fit(x, y)
    model = sp.PlsModel.fit(x, y, n_components, "simpls")
    assert model.algorithm == "simpls"
    np.testing.assert_allclose(model.predict(x), ref.predict(x), rtol=RTOL, atol=1e-12)


def test_pls_nested_predictions_equal_separate_fits():
    _, x, y = synthetic(30, 100, seed=6)
    big = sp.PlsModel.fit(x, y, 7)
    for a in range(1, 8):
        ref = sklearn_pls.PLSRegression(n_components=a, scale=False).fit(x, y)
        np.testing.assert_allclose(big.predict(x, a), ref.predict(x), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize(
    ("scheme", "splitter"),
    [
        ("loo", lambda n: sklearn_ms.LeaveOneOut()),
        ("blocks:5", lambda n: sklearn_ms.KFold(5)),
        ("venetian:4", lambda n: sklearn_ms.PredefinedSplit(np.arange(n) % 4)),
    ],
)
def test_cross_validation_matches_sklearn(scheme, splitter):
    axis, x, y = synthetic(30, 200, seed=7)
    xp = sp.Pipeline(axis, STEPS).transform(x)
    cv = sp.cross_validate(axis, x, y, STEPS, 6, cv=scheme)
    assert cv.scheme == ("blocks:5" if scheme == "blocks:5" else scheme)
    for a in range(1, 7):
        ref = sklearn_ms.cross_val_predict(
            sklearn_pls.PLSRegression(n_components=a, scale=False), xp, y, cv=splitter(30)
        )
        np.testing.assert_allclose(cv.predictions(a)[:, 0], ref, rtol=RTOL, atol=1e-12)
        rmse = np.sqrt(np.mean((ref - y) ** 2))
        np.testing.assert_allclose(cv.rmsecv[a - 1, 0], rmse, rtol=RTOL)


def test_cross_validation_by_groups_leaves_whole_batches_out():
    axis, x, y = synthetic(24, 200, seed=8)
    groups = np.repeat(np.arange(4), 6)
    cv = sp.cross_validate(axis, x, y, STEPS, 3, groups=groups.tolist())
    xp = sp.Pipeline(axis, STEPS).transform(x)
    ref = sklearn_ms.cross_val_predict(
        sklearn_pls.PLSRegression(n_components=3, scale=False),
        xp,
        y,
        cv=sklearn_ms.LeaveOneGroupOut(),
        groups=groups,
    )
    np.testing.assert_allclose(cv.predictions(3)[:, 0], ref, rtol=RTOL, atol=1e-12)


def test_choose_components_is_parsimonious():
    axis, x, y = synthetic(40, 200, seed=9)
    cv = sp.cross_validate(axis, x, y, STEPS, 8)
    curve = cv.rmsecv_combined
    a = cv.choose_components(0.02)
    assert curve[a - 1] <= 1.02 * curve.min()
    assert all(curve[: a - 1] > 1.02 * curve.min())


# --- quantiles and diagnostics ----------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(("d1", "d2"), [(1, 5), (4, 17), (10, 290), (3.5, 7.25)])
def test_f_quantile_matches_scipy(alpha, d1, d2):
    assert sp.f_quantile(alpha, d1, d2) == pytest.approx(scipy_stats.f.ppf(alpha, d1, d2), rel=1e-9)


@pytest.mark.parametrize("alpha", [0.95, 0.99])
@pytest.mark.parametrize("dof", [0.3, 1.0, 2.7, 10.0, 155.5])
def test_chi2_quantile_matches_scipy(alpha, dof):
    assert sp.chi2_quantile(alpha, dof) == pytest.approx(scipy_stats.chi2.ppf(alpha, dof), rel=1e-9)


def test_t2_and_q_follow_their_definitions():
    axis, x, y = synthetic(40, 300, seed=10)
    sensor = sp.SoftSensor.fit(axis, x, y, STEPS, 3)
    xp = sensor.pipeline.transform(x)
    ref = sklearn_pls.PLSRegression(n_components=3, scale=False).fit(xp, y)
    t_cal = ref.x_scores_
    s2 = t_cal.var(axis=0, ddof=1)
    np.testing.assert_allclose(sensor.pls.score_variance, s2, rtol=1e-9)
    _, xn, _ = synthetic(5, 300, seed=11)
    b = sensor.predict_batch(xn)
    xpn = sensor.pipeline.transform(xn)
    t = ref.transform(xpn)
    np.testing.assert_allclose(b.t2, (t**2 / s2).sum(axis=1), rtol=1e-8)
    resid = xpn - ref._x_mean - t @ ref.x_loadings_.T
    np.testing.assert_allclose(b.q, (resid**2).sum(axis=1), rtol=1e-7)
    n, a = 40, 3
    t2_lim = a * (n - 1) * (n + 1) / (n * (n - a)) * scipy_stats.f.ppf(0.95, a, n - a)
    assert sensor.t2_limit == pytest.approx(t2_lim, rel=1e-9)
    # Box limit from the calibration Q values (used when Jackson–Mudholkar's h0 <= 0).
    resid_cal = xp - ref._x_mean - t_cal @ ref.x_loadings_.T
    q_cal = (resid_cal**2).sum(axis=1)
    m, v = q_cal.mean(), q_cal.var(ddof=1)
    box = v / (2 * m) * scipy_stats.chi2.ppf(0.95, 2 * m * m / v)
    lam = np.linalg.eigvalsh(np.cov(resid_cal, rowvar=False))
    th = [np.sum(lam**i) for i in (1, 2, 3)]
    h0 = 1 - 2 * th[0] * th[2] / (3 * th[1] ** 2)
    if h0 > 0:
        z = scipy_stats.norm.ppf(0.95)
        jm = th[0] * (
            z * np.sqrt(2 * th[1] * h0**2) / th[0] + 1 + th[1] * h0 * (h0 - 1) / th[0] ** 2
        ) ** (1 / h0)
        assert sensor.q_limit_method == "jackson_mudholkar"
        assert sensor.q_limit == pytest.approx(jm, rel=1e-6)
    else:
        assert sensor.q_limit_method == "box"
        assert sensor.q_limit == pytest.approx(box, rel=1e-7)


def test_foreign_band_is_out_of_model_and_flat_is_invalid():
    axis, x, y = synthetic(40, 300, seed=12)
    sensor = sp.SoftSensor.fit(axis, x, y, STEPS, 3, target_names=("glucose",), units=("g/L",))
    good = sensor.predict(x[0])
    assert good.is_in_model
    assert good.is_valid
    assert good.status == "in_model"
    assert good.value == pytest.approx(y[0], abs=0.5)
    odd = x[1] + 0.5 * np.exp(-(((axis - 1250.0) / 15.0) ** 2))
    p = sensor.predict(odd)
    assert not p.is_in_model
    assert p.status == "out_of_model"
    assert p.q > sensor.q_limit
    flat = sensor.predict(np.full(axis.size, 1.0))
    assert flat.status == "invalid"
    assert not flat.is_valid
    assert np.isnan(flat.value)
    assert "flat" in flat.reason
    assert sensor.predict_value(flat_spectrum := np.full(axis.size, 2.0))[1] is False
    assert np.isnan(sensor.predict_value(flat_spectrum)[0])


# --- boundary: dtypes, shapes, NaN ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sensor_and_axis():
    axis, x, y = synthetic(40, 300, seed=13)
    return sp.SoftSensor.fit(axis, x, y, STEPS, 3), axis, x


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.int64, np.int32, np.complex128, np.float16]))
def test_wrong_dtype_is_a_type_error(sensor_and_axis, dtype):
    sensor, _axis, x = sensor_and_axis
    with pytest.raises(TypeError, match="float64"):
        sensor.predict(x[0].astype(dtype))
    with pytest.raises(TypeError, match="float64"):
        sensor.predict_batch(x[:3].astype(dtype))
    with pytest.raises(TypeError, match="float64"):
        sp.savgol_filter(x[0].astype(dtype), 5, 2)


@settings(max_examples=30, deadline=None)
@given(step=st.integers(2, 4), start=st.integers(0, 1))
def test_non_contiguous_input_gives_the_same_result(sensor_and_axis, step, start):
    sensor, _axis, x = sensor_and_axis
    wide = np.zeros((x.shape[0], x.shape[1] * step))
    wide[:, start::step] = x
    strided = wide[:, start::step]
    assert not strided.flags["C_CONTIGUOUS"]
    assert sensor.predict(strided[2]).value == sensor.predict(x[2]).value
    np.testing.assert_array_equal(
        sensor.predict_batch(strided).value, sensor.predict_batch(x).value
    )
    np.testing.assert_array_equal(
        sensor.predict_batch(np.asfortranarray(x)).t2, sensor.predict_batch(x).t2
    )


@pytest.mark.parametrize("shape", [(), (2, 3, 300)])
def test_wrong_dimensions_are_shape_errors(sensor_and_axis, shape):
    sensor, _, _ = sensor_and_axis
    with pytest.raises(SpectrumShapeError):
        sensor.predict(np.zeros(shape))
    with pytest.raises(SpectrumShapeError):
        sensor.predict_batch(np.zeros(shape))


def test_one_d_versus_two_d(sensor_and_axis):
    sensor, _, x = sensor_and_axis
    with pytest.raises(SpectrumShapeError, match="1-D"):
        sensor.predict(x[:2])
    with pytest.raises(SpectrumShapeError, match="2-D"):
        sensor.predict_batch(x[0])
    assert sensor.predict_batch(x[:1]).value[0] == sensor.predict(x[0]).value


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 600).filter(lambda v: v != 300))
def test_mismatched_length_is_rejected(sensor_and_axis, n):
    sensor, _, _ = sensor_and_axis
    with pytest.raises(SpectrumShapeError, match=f"has {n} points, expected 300"):
        sensor.predict(np.linspace(0.0, 1.0, n))


@settings(max_examples=30, deadline=None)
@given(index=st.integers(0, 299), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_non_finite_values_are_rejected(sensor_and_axis, index, bad):
    sensor, _, x = sensor_and_axis
    spectrum = x[0].copy()
    spectrum[index] = bad
    with pytest.raises(InvalidInputError, match=f"value {index} is not finite"):
        sensor.predict(spectrum)
    batch = x[:4].copy()
    batch[2, index] = bad
    with pytest.raises(InvalidInputError, match="row 2"):
        sensor.predict_batch(batch)


# --- model file ---------------------------------------------------------------------------------


def test_model_file_round_trip_and_contents(tmp_path: Path):
    axis, x, y = synthetic(30, 250, seed=14)
    steps = [
        sp.Despike(threshold=12.0),
        sp.Region(windows_cm1=((850.0, 1300.0), (1350.0, 1700.0))),
        sp.AsLs(lam=1e5, p=0.01),
        sp.SavitzkyGolay(window=11, order=2, deriv=1, mode="nearest"),
        sp.Msc(),
        sp.MeanCenter(),
    ]
    cal = sp.calibrate(
        axis,
        x,
        y,
        steps,
        max_components=5,
        cv="blocks:5",
        target_names=("glucose",),
        units=("g/L",),
        description="test model",
    )
    path = cal.sensor.save(tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "edgectl-softsensor"
    assert doc["format_version"] == 1
    assert doc["targets"] == [{"name": "glucose", "unit": "g/L"}]
    assert [s["kind"] for s in doc["pipeline"]] == [
        "despike",
        "region",
        "asls",
        "savitzky_golay",
        "msc",
        "mean_center",
    ]
    assert doc["pipeline"][3]["mode"] == "nearest"
    assert len(doc["axis"]["wavenumber_cm1"]) == 250
    assert doc["calibration"]["cv"]["scheme"] == "blocks:5"
    assert len(doc["calibration"]["cv"]["rmsecv"]) == 5
    assert {lim["confidence"] for lim in doc["diagnostics"]["limits"]} == {0.95, 0.99}
    assert doc["created_at"].endswith("+00:00")
    loaded = sp.SoftSensor.load(path, wavenumber_cm1=axis)
    _, xn, _ = synthetic(6, 250, seed=15)
    a, b = loaded.predict_batch(xn), cal.sensor.predict_batch(xn)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.q, b.q)
    assert loaded.n_components == cal.n_components
    assert loaded.limits_at(0.99)[0] > loaded.t2_limit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format_version=2), "format_version 2 is not supported"),
        (lambda d: d.update(format="something-else"), "not an edgectl soft-sensor model"),
        (lambda d: d["pls"]["coef"][0].__setitem__(0, 123.0), "corrupt"),
        (lambda d: d["output_axis_cm1"].pop(), "output_axis_cm1 does not match"),
        (lambda d: d["pipeline"][1].update(window=4), "window"),
        (lambda d: d.update(extra_key=1), "extra_key"),
    ],
)
def test_load_refuses_bad_files_naming_them(tmp_path: Path, edit, match):
    axis, x, y = synthetic(30, 200, seed=16)
    sensor = sp.SoftSensor.fit(axis, x, y, STEPS, 2)
    doc = json.loads(sensor.to_json())
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises((ModelFileError, SpectrumShapeError), match=match) as info:
        sp.SoftSensor.load(path)
    assert "bad.json" in str(info.value)


def test_load_refuses_missing_garbage_and_other_axis(tmp_path: Path):
    with pytest.raises(ModelFileError, match=r"nope\.json: model file not found"):
        sp.SoftSensor.load(tmp_path / "nope.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"garbage\.json: not a JSON document"):
        sp.SoftSensor.load(garbage)
    axis, x, y = synthetic(30, 200, seed=17)
    path = sp.SoftSensor.fit(axis, x, y, STEPS, 2).save(tmp_path / "m.json")
    with pytest.raises(SpectrumShapeError, match=r"m\.json: axis has 199 points"):
        sp.SoftSensor.load(path, wavenumber_cm1=axis[:-1])
    shifted = axis.copy()
    shifted[50] += 0.5
    with pytest.raises(SpectrumShapeError, match=r"m\.json: axis differs .* index 50"):
        sp.SoftSensor.load(path, wavenumber_cm1=shifted)


def test_predict_resamples_a_spectrum_from_another_axis():
    axis, x, y = synthetic(40, 300, seed=18)
    sensor = sp.SoftSensor.fit(axis, x, y, STEPS, 3)
    fine = np.sort(np.concatenate([axis, 0.5 * (axis[1:] + axis[:-1])]))
    spectrum = np.interp(fine, axis, x[4])
    p = sensor.predict(spectrum, wavenumber_cm1=fine)
    assert p.value == pytest.approx(sensor.predict(x[4]).value, abs=1e-9)


def test_bad_steps_are_configuration_errors():
    axis, _, _ = synthetic(5, 100)
    with pytest.raises(InvalidInputError, match="not a step"):
        sp.Pipeline(axis, ["snv"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="longer than"):
        sp.Pipeline(
            axis, [sp.Region(windows_cm1=((800.0, 830.0),)), sp.SavitzkyGolay(window=15, order=2)]
        )
    with pytest.raises(ConfigError, match="select 0 points"):
        sp.Pipeline(axis, [sp.Region(windows_cm1=((100.0, 200.0),))])


# --- bias Kalman filter --------------------------------------------------------------------------


def test_bias_kalman_late_reference_equals_timely_reference():
    timely, late = sp.BiasKalman(), sp.BiasKalman()
    for k in range(200):
        t = k / 48
        v = 20.0 + np.sin(k / 10)
        timely.update_prediction(t, v)
        late.update_prediction(t, v)
        if k == 60:
            timely.update_reference(t, 17.0)
    out = late.update_reference(60 / 48, 17.0)
    assert out.accepted
    assert late.estimate.value == pytest.approx(timely.estimate.value, abs=1e-9)
    assert late.estimate.bias == pytest.approx(timely.estimate.bias, abs=1e-9)


def test_bias_kalman_gate_rejects_outliers_then_yields_to_persistent_shift():
    kf = sp.BiasKalman(gate_sigma=4.0, max_consecutive_rejections=2)
    for k in range(100):
        kf.update_prediction(k / 48, 10.0)
    assert kf.update_reference(1.0, 10.5).accepted
    before = kf.estimate.value
    first = kf.update_reference(1.5, 40.0)
    assert not first.accepted
    assert first.normalized > 4.0
    assert kf.estimate.value == before
    assert not kf.update_reference(1.6, 40.0).accepted
    assert kf.update_reference(1.7, 40.0).accepted


@pytest.mark.parametrize("kwargs", [{"q_bias": 0.0}, {"r_reference": -1.0}, {"gate_sigma": np.nan}])
def test_bias_kalman_rejects_bad_tuning(kwargs):
    with pytest.raises(InvalidInputError):
        sp.BiasKalman(**kwargs)


def test_bias_kalman_needs_a_prediction_and_ordered_times():
    kf = sp.BiasKalman()
    with pytest.raises(InvalidInputError, match="at least one"):
        kf.update_reference(0.0, 1.0)
    kf.update_prediction(1.0, 5.0)
    with pytest.raises(InvalidInputError, match="earlier"):
        kf.update_prediction(0.5, 5.0)
    with pytest.raises(InvalidInputError):
        kf.update_prediction(2.0, float("nan"))


def simpls_reference(x: np.ndarray, y: np.ndarray, a: int):
    """de Jong (1993) SIMPLS written out in numpy, for PLS2 (no peer library implements it)."""
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    x0, y0 = x - xm, y - ym
    s = x0.T @ y0
    rs, qs, vs = [], [], []
    for _ in range(a):
        _, vecs = np.linalg.eigh(s.T @ s)
        r = s @ vecs[:, -1]
        t = x0 @ r
        norm = np.linalg.norm(t)
        t, r = t / norm, r / norm
        p = x0.T @ t
        v = p.copy()
        for _ in range(2):
            for vk in vs:
                v -= (vk @ v) * vk
        v /= np.linalg.norm(v)
        s = s - np.outer(v, v @ s)
        rs.append(r)
        qs.append(y0.T @ t)
        vs.append(v)
    b = np.array(rs).T @ np.array(qs)
    return lambda xn: (xn - xm) @ b + ym


@pytest.mark.parametrize("n_components", [1, 3, 6])
def test_pls_simpls_pls2_matches_de_jong(n_components):
    _, x, y = synthetic(35, 120, targets=3, seed=21)
    model = sp.PlsModel.fit(x, y, n_components, "simpls")
    _, xt, _ = synthetic(10, 120, targets=3, seed=22)
    expect = simpls_reference(x, y, n_components)(xt)
    np.testing.assert_allclose(model.predict(xt), expect, rtol=1e-8, atol=1e-10)
