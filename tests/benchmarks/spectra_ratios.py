"""Soft-sensor speed against its peers, measured side by side in one run.

Run after ``make build`` (release extension)::

    .venv/bin/python tests/benchmarks/spectra_ratios.py

Prints medians and the ratios the design is held to (DESIGN.md, reference softsensor.md §9):

1. preprocess + predict one 1047-point fermentation spectrum (cut 950–1550 cm⁻¹, SG 15/2 d1,
   SNV, 4-LV PLS): edgectl through Python vs scipy ``savgol_filter`` + numpy SNV + scikit-learn
   ``PLSRegression.predict`` — target ≥ 40× and < 10 µs;
2. PLS prediction of 1000 preprocessed spectra: ``PlsModel.predict`` vs a bare numpy
   matrix-vector product ``X @ b + b0`` — target within 3× — and, the same work on both sides,
   the full pipeline on 1000 raw spectra: ``SoftSensor.predict_batch`` (cut, SG, SNV, value,
   T², Q) vs scipy ``savgol_filter`` + numpy SNV, centring, scores, value, T² and Q;
3. 10-component PLS fit on 300 × 1000: edgectl NIPALS and SIMPLS vs scikit-learn NIPALS —
   target no slower — and vs ikpls algorithm 1 (issue 18: at least as fast);
4. PLS prediction of 1000 spectra at widths 100…3000 vs numpy ``X @ b + b0`` (issue 18: within
   2× at every width), numpy with its default BLAS threads and pinned to one thread. This is
   the bare regression on both sides: ``PlsModel.predict`` on spectra that are already
   preprocessed, (x − x̄)·b + ȳ, against numpy's product with the intercept b0 = ȳ − x̄·b
   folded in beforehand; edgectl splits batches of ≥ 2^18 values over the cores, as numpy's
   BLAS does.

Sections 3 and 4 time the contenders in interleaved batches (A B C, A B C, …) and report the
median of the per-round ratios, so that load from other jobs on a shared machine falls on
every contender alike; run the script several times and take the median of the ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from importlib.resources import files

import numpy as np

from edgectl import spectra as sp


def _calibrate(fn: Callable[[], object], min_time_s: float) -> tuple[int, float]:
    """(n, seconds): after one warm-up call, the first doubling of n calls that took more than
    ``min_time_s / 5``, and how long those n calls took."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time_s / 5:
            return n, dt
        n *= 2


def timeit(fn: Callable[[], object], *, min_time_s: float = 0.2, repeats: int = 7) -> float:
    """Median seconds per call over ``repeats`` batches of at least ``min_time_s`` each."""
    n, dt = _calibrate(fn, min_time_s)
    n = max(1, int(n * min_time_s / max(dt, 1e-9) / 5))
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def paired(
    fns: dict[str, Callable[[], object]],
    *,
    min_time_s: float = 0.1,
    rounds: int = 9,
    contexts: dict[str, Callable[[], AbstractContextManager[object]]] | None = None,
) -> tuple[dict[str, float], Callable[[str, str], float]]:
    """Seconds per call of each function, measured in interleaved batches.

    ``contexts`` optionally names a context manager entered around each of a function's
    batches (not each call), e.g. a BLAS thread limit. Returns the median per function and
    ``ratio(a, b)``, the median over rounds of a's time divided by b's time in the same round.
    """
    ctx = contexts or {}
    counts = {}
    for name, fn in fns.items():
        with ctx.get(name, nullcontext)():
            n, dt = _calibrate(fn, min_time_s)
        counts[name] = max(1, int(n * min_time_s / max(dt, 1e-9)))
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = counts[name]
            with ctx.get(name, nullcontext)():
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                runs[name].append((time.perf_counter() - t0) / n)

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True))

    return {name: statistics.median(v) for name, v in runs.items()}, ratio


def main() -> int:
    from scipy.signal import savgol_filter
    from sklearn.cross_decomposition import PLSRegression

    data = files("chemotools.datasets") / "data"
    axis, x = sp.read_spectra_csv(data / "train_spectra.csv")
    _, y = sp.read_references_csv(data / "train_hplc.csv")
    _, inline = sp.read_spectra_csv(data / "fermentation_spectra.csv")
    y = y[:, 0]
    steps = [
        sp.Region(windows_cm1=((950.0, 1550.0),)),
        sp.SavitzkyGolay(window=15, order=2, deriv=1),
        sp.Snv(),
    ]
    sensor = sp.SoftSensor.fit(axis, x, y, steps, 4)
    keep = (axis >= 950.0) & (axis <= 1550.0)

    def peer_preprocess(s: np.ndarray) -> np.ndarray:
        d = savgol_filter(s[..., keep], 15, 2, deriv=1, axis=-1)
        return (d - d.mean(axis=-1, keepdims=True)) / d.std(axis=-1, ddof=1, keepdims=True)

    peer = PLSRegression(n_components=4, scale=False).fit(peer_preprocess(x), y)
    spectrum = np.ascontiguousarray(inline[700])
    assert (
        abs(sensor.predict(spectrum).value - peer.predict(peer_preprocess(spectrum)[None])[0])
        < 1e-9 * 50
    )

    print("1) preprocess + predict one 1047-point spectrum")
    t_ours = timeit(lambda: sensor.predict(spectrum))
    t_value = timeit(lambda: sensor.predict_value(spectrum))
    t_peer = timeit(lambda: peer.predict(peer_preprocess(spectrum)[None]))
    print(f"   edgectl SoftSensor.predict (value, T², Q, flag): {t_ours * 1e6:8.2f} µs")
    print(f"   edgectl SoftSensor.predict_value:                {t_value * 1e6:8.2f} µs")
    print(f"   scipy savgol_filter + SNV + sklearn predict:     {t_peer * 1e6:8.2f} µs")
    print(f"   ratio: {t_peer / t_ours:6.1f}× faster (target ≥ 40×, < 10 µs)")

    print("2) PLS prediction of 1000 preprocessed spectra")
    rng = np.random.default_rng(0)
    xp_cal = peer_preprocess(x)
    model = sp.PlsModel.fit(xp_cal, y, 4)
    batch = peer_preprocess(inline[rng.integers(0, 1626, size=1000)])
    b = model.coef[0]
    b0 = float(model.intercept[0] - model.x_mean @ b)
    np.testing.assert_allclose(model.predict(batch), batch @ b + b0, rtol=1e-9)
    t_pls = timeit(lambda: model.predict(batch))
    t_np = timeit(lambda: batch @ b + b0)
    print(
        f"   edgectl PlsModel.predict: {t_pls * 1e6:8.1f} µs   "
        f"numpy X @ b + b0: {t_np * 1e6:8.1f} µs"
    )
    print(f"   ratio: {t_pls / t_np:5.2f}× the bare mat-vec (target within 3×)")
    full = rng.normal(size=(1000, 1047))
    model_full = sp.PlsModel.fit(rng.normal(size=(50, 1047)), rng.normal(size=50), 4)
    bf = model_full.coef[0]
    bf0 = float(model_full.intercept[0] - model_full.x_mean @ bf)
    t_pls_f = timeit(lambda: model_full.predict(full))
    t_np_f = timeit(lambda: full @ bf + bf0)
    print(
        f"   1047 variables: edgectl {t_pls_f * 1e6:8.1f} µs   numpy {t_np_f * 1e6:8.1f} µs   "
        f"ratio {t_pls_f / t_np_f:5.2f}×"
    )
    raw = np.ascontiguousarray(inline[:1000])
    pls = sensor.pls
    rot, load = pls.x_rotations, pls.x_loadings
    if rot.shape[0] != len(pls.x_mean):  # (A, p) → (p, A)
        rot, load = rot.T, load.T
    inv_var = 1.0 / pls.score_variance
    pb, pb0 = pls.coef[0], float(pls.intercept[0])

    def peer_batch(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xc = peer_preprocess(s) - pls.x_mean
        t = xc @ rot
        resid = xc - t @ load.T
        return xc @ pb + pb0, (t * t) @ inv_var, np.einsum("ij,ij->i", resid, resid)

    ours_b = sensor.predict_batch(raw)
    peer_v, peer_t2, peer_q = peer_batch(raw)
    np.testing.assert_allclose(ours_b.value, peer_v, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours_b.t2, peer_t2, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours_b.q, peer_q, rtol=1e-6, atol=1e-9)
    t_b, r_b = paired(
        {"ours": lambda: sensor.predict_batch(raw), "peer": lambda: peer_batch(raw)},
        min_time_s=0.2,
    )
    print(
        f"   full pipeline, 1000 raw spectra (cut, SG 15/2 d1, SNV, value, T², Q): edgectl "
        f"SoftSensor.predict_batch {t_b['ours'] * 1e3:.2f} ms, scipy savgol_filter + numpy "
        f"{t_b['peer'] * 1e3:.2f} ms: {r_b('peer', 'ours'):4.2f}× faster"
    )

    print("3) 10-component PLS fit, 300 × 1000")
    xf = rng.normal(size=(300, 1000)).cumsum(axis=1)
    yf = xf[:, 100] - 0.5 * xf[:, 600] + rng.normal(scale=0.1, size=300)
    fits: dict[str, Callable[[], object]] = {
        "nipals": lambda: sp.PlsModel.fit(xf, yf, 10),
        "simpls": lambda: sp.PlsModel.fit(xf, yf, 10, "simpls"),
        "sklearn": lambda: PLSRegression(10, scale=False).fit(xf, yf),
    }
    try:
        from ikpls.numpy import PLS as IkPls
    except ImportError:
        print("   ikpls not installed: peer skipped")
    else:
        # Improved kernel PLS, algorithm 1 (Dayal & MacGregor 1997), no autoscaling (as ours).
        ik = IkPls(algorithm=1, center_X=True, center_Y=True, scale_X=False, scale_Y=False)
        ik.fit(xf, yf, 10)
        np.testing.assert_allclose(
            ik.predict(xf[:5], n_components=10).ravel(),
            sp.PlsModel.fit(xf, yf, 10, "simpls").predict(xf[:5]),
            rtol=1e-6,
        )
        fits["ikpls"] = lambda: ik.fit(xf, yf, 10)
    t_fit, r_fit = paired(fits, min_time_s=0.2)
    print(
        f"   edgectl NIPALS {t_fit['nipals'] * 1e3:7.2f} ms"
        f"   SIMPLS {t_fit['simpls'] * 1e3:7.2f} ms"
        f"   sklearn NIPALS {t_fit['sklearn'] * 1e3:7.2f} ms"
    )
    print(
        f"   ratio: NIPALS {r_fit('sklearn', 'nipals'):4.2f}×, SIMPLS "
        f"{r_fit('sklearn', 'simpls'):4.2f}× sklearn's speed (target ≥ 1×)"
    )
    if "ikpls" in fits:
        print(
            f"   ikpls alg. 1 {t_fit['ikpls'] * 1e3:7.2f} ms: edgectl NIPALS "
            f"{r_fit('nipals', 'ikpls'):4.2f}×, SIMPLS {r_fit('simpls', 'ikpls'):4.2f}× "
            "ikpls' time (target ≤ 1×)"
        )

    print("4) PLS prediction of 1000 spectra at each width, edgectl vs numpy X @ b + b0")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    for p in (100, 446, 1000, 1047, 3000):
        xw = rng.normal(size=(1000, p))
        mw = sp.PlsModel.fit(rng.normal(size=(60, p)), rng.normal(size=60), 4)
        bw = mw.coef[0]
        bw0 = float(mw.intercept[0] - mw.x_mean @ bw)
        np.testing.assert_allclose(mw.predict(xw), xw @ bw + bw0, rtol=1e-9, atol=1e-12)
        fns: dict[str, Callable[[], object]] = {
            "ours": lambda m=mw, x=xw: m.predict(x),
            "numpy": lambda x=xw, b=bw, c=bw0: x @ b + c,
        }
        contexts: dict[str, Callable[[], AbstractContextManager[object]]] = {}
        if threadpool_limits is not None:
            fns["numpy1"] = fns["numpy"]
            contexts["numpy1"] = partial(threadpool_limits, limits=1, user_api="blas")
        t, r = paired(fns, contexts=contexts)
        line = (
            f"   p = {p:4d}: edgectl {t['ours'] * 1e6:8.1f} µs   numpy {t['numpy'] * 1e6:8.1f} µs"
            f"   ratio {r('ours', 'numpy'):5.2f}× (target ≤ 2×)"
        )
        if "numpy1" in t:
            line += (
                f";  numpy 1 thread {t['numpy1'] * 1e6:8.1f} µs, ratio {r('ours', 'numpy1'):5.2f}×"
            )
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
