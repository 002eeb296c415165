"""pytest-benchmark timings of the soft sensor and its peers (disabled by default; run with
``--benchmark-enable``). Ratios measured in one run: ``tests/benchmarks/spectra_ratios.py``."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

from edgectl import spectra as sp

pytest.importorskip("chemotools")
scipy_signal = pytest.importorskip("scipy.signal")
sklearn_pls = pytest.importorskip("sklearn.cross_decomposition")

DATA = files("chemotools.datasets") / "data"


@pytest.fixture(scope="module")
def setup():
    axis, x = sp.read_spectra_csv(DATA / "train_spectra.csv")
    _, y = sp.read_references_csv(DATA / "train_hplc.csv")
    steps = [
        sp.Region(windows_cm1=((950.0, 1550.0),)),
        sp.SavitzkyGolay(window=15, order=2, deriv=1),
        sp.Snv(),
    ]
    sensor = sp.SoftSensor.fit(axis, x, y[:, 0], steps, 4)
    keep = (axis >= 950.0) & (axis <= 1550.0)

    def prep(s):
        d = scipy_signal.savgol_filter(s[..., keep], 15, 2, deriv=1, axis=-1)
        return (d - d.mean(axis=-1, keepdims=True)) / d.std(axis=-1, ddof=1, keepdims=True)

    peer = sklearn_pls.PLSRegression(4, scale=False).fit(prep(x), y[:, 0])
    rng = np.random.default_rng(0)
    batch = prep(x[rng.integers(0, 21, 1000)] * rng.uniform(0.9, 1.1, (1000, 1)))
    return sensor, peer, prep, np.ascontiguousarray(x[5]), batch


def test_preprocess_predict_one_spectrum(benchmark, setup):
    sensor, _, _, spectrum, _ = setup
    p = benchmark(sensor.predict, spectrum)
    assert p.is_valid


def test_preprocess_predict_one_spectrum_scipy_sklearn(benchmark, setup):
    _, peer, prep, spectrum, _ = setup
    out = benchmark(lambda: peer.predict(prep(spectrum)[None]))
    assert out.shape == (1,)


def test_pls_predict_1000(benchmark, setup):
    sensor, _, _, _, batch = setup
    out = benchmark(sensor.pls.predict, batch)
    assert out.shape == (1000,)


def test_numpy_matvec_1000(benchmark, setup):
    sensor, _, _, _, batch = setup
    b = sensor.pls.coef[0]
    b0 = float(sensor.pls.intercept[0] - sensor.pls.x_mean @ b)
    out = benchmark(lambda: batch @ b + b0)
    assert out.shape == (1000,)


@pytest.fixture(scope="module")
def fit_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 1000)).cumsum(axis=1)
    return x, x[:, 100] - 0.5 * x[:, 600] + rng.normal(scale=0.1, size=300)


@pytest.mark.parametrize("algorithm", ["nipals", "simpls"])
def test_pls_fit_10lv_300x1000(benchmark, fit_data, algorithm):
    x, y = fit_data
    m = benchmark(sp.PlsModel.fit, x, y, 10, algorithm)
    assert m.n_components == 10


def test_pls_fit_10lv_300x1000_sklearn(benchmark, fit_data):
    x, y = fit_data
    m = benchmark(lambda: sklearn_pls.PLSRegression(10, scale=False).fit(x, y))
    assert m.coef_.shape == (1, 1000)
