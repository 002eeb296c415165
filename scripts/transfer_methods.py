"""Prequential RMSEP of calibration-transfer methods on the chemotools in-line run.

Usage: ``.venv/bin/python scripts/transfer_methods.py [METHOD ...]`` (default: all). Needs the
``chemotools`` package (its fermentation data set). Prints, per method, the RMSEP over samples
2…34 (g/L) and how many candidates were released.

The feed is the one of ``tests/test_managed_softsensor.py`` and of
:class:`edgectl.managed.ManagedEstimator`: spectrum i at i·1.25 min, reference k scored against
the last valid estimate at round(t/1.25 min) *before* it is assimilated; a reference is paired
with the valid spectrum nearest its sampling time when ≥ 4 valid spectra lie in the 10 min
before it; each pair proposes a candidate fitted on what is known at that time; the candidate
is released when its leave-one-pair-out error is ≥ 10 % below the released model's
prequential error on the same pairs. Every method's parameter is fixed by the rule written
next to it (a literature default or a CV choice on the pairs known at the time), not by the
figure printed here. ``recal`` reproduces the ManagedEstimator (``managed`` runs the
estimator itself).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from edgectl import spectra as sp
from edgectl import transfer as tr
from edgectl.managed import ManagedEstimator, Reference

STEPS: list[sp.Step] = [
    sp.Region(windows_cm1=((950.0, 1550.0),)),
    sp.SavitzkyGolay(window=15, order=2, deriv=1),
    sp.Snv(ddof=1),
]
PERIOD_H = 1.25 / 60.0
MAX_A = 8
TOL = 0.02
MARGIN = 0.10

Model = Callable[[np.ndarray], float]
# builder(pair spectra, pair values) -> (model, in-line CV figure or None)
Builder = Callable[[np.ndarray, np.ndarray], tuple[Model, float | None]]


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = Path(str(files("chemotools.datasets") / "data"))
    axis, xc = sp.read_spectra_csv(data / "train_spectra.csv")
    _, yc = sp.read_references_csv(data / "train_hplc.csv")
    _, xi = sp.read_spectra_csv(data / "fermentation_spectra.csv")
    _, hplc = sp.read_references_csv(data / "fermentation_hplc.csv", ["time", "glucose"])
    return axis, xc, yc[:, 0], xi, hplc, xi.std(axis=1) > 0


AXIS, XC_RAW, YC, XI_RAW, HPLC, VALID = load()
PIPE = sp.Pipeline(AXIS, STEPS)
XC = PIPE.transform(XC_RAW)
XI = np.full((XI_RAW.shape[0], XC.shape[1]), np.nan)
XI[VALID] = PIPE.transform(XI_RAW[VALID])
NO = YC.size


def rmse(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(e))))


def feed(builder: Builder, median_of: int = 1, mean_pairs: bool = False) -> tuple[float, int]:
    last = XI.shape[0] - 1
    events = [(min(round(t / PERIOD_H), last) * PERIOD_H, 1, k) for k, t in enumerate(HPLC[:, 0])]
    events += [(i * PERIOD_H, 0, i) for i in range(XI.shape[0])]
    events.sort(key=lambda e: (e[0], e[1]))
    model, _ = builder(XC[:0], YC[:0])
    model_at: dict[int, Model] = {}
    cache: dict[int, float] = {}

    def pred(i: int) -> float:  # lazily: only the spectra that are scored or paired
        if i not in cache:
            cache[i] = model_at[i](XI[i])
        return cache[i]

    seen: list[int] = []
    pairs: list[tuple[int, float, float]] = []
    windows: list[list[int]] = []
    errors: list[float] = []
    released = 0
    for t, kind, k in events:
        if kind == 0:
            model_at[k] = model
            if VALID[k]:
                seen.append(k)
            continue
        last_valid = [i for i in seen if i * PERIOD_H <= t + 1e-12][-median_of:]
        errors.append(float(np.median([pred(i) for i in last_valid])) - HPLC[k, 1])
        tk = HPLC[k, 0]
        window = [i for i in seen if tk - 10.0 / 60.0 <= i * PERIOD_H <= tk]
        if len(window) < 4:
            continue
        s = min(
            (i for i in seen if i * PERIOD_H >= tk - 10.0 / 60.0),
            key=lambda i: abs(i * PERIOD_H - tk),
        )
        pairs.append((s, HPLC[k, 1], pred(s) - HPLC[k, 1]))
        if mean_pairs:
            windows.append(window)
            rows = np.stack([XI[w].mean(axis=0) for w in windows])
        else:
            rows = XI[[p[0] for p in pairs]]
        cand, figure = builder(rows, np.array([p[1] for p in pairs]))
        current = rmse(np.array([p[2] for p in pairs]))
        if figure is not None and figure < (1.0 - MARGIN) * current:
            model = cand
            released += 1
    return rmse(np.array(errors[1:])), released


def _linear(x: np.ndarray, y: np.ndarray, f: tr.OrthogonalFilter | None, a: int) -> Model:
    m = sp.PlsModel.fit(np.ascontiguousarray(x if f is None else f.apply(x)), y, a)
    if f is None:
        return lambda s: float(m.predict(np.ascontiguousarray(s[None, :]), a)[0])
    return lambda s: float(m.predict(np.ascontiguousarray(f.apply(s[None, :])), a)[0])


def recal(weight_rule: Callable[[int], int] | None = None, inline_lv: bool = False) -> Builder:
    """Off-line set + every pair, LV by leave-one-group-out CV (the ManagedEstimator's rule).
    ``weight_rule(n_pairs)`` repeats each pair (kept in one CV group); ``inline_lv`` chooses
    the LV count on the pairs' CV error alone (the domain the model serves) instead of all
    rows'."""

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        n = yp.size
        w = 1 if weight_rule is None or n == 0 else weight_rule(n)
        x = np.vstack([XC, np.repeat(xp, w, axis=0)])
        y = np.concatenate([YC, np.repeat(yp, w)])
        groups = np.concatenate([np.arange(NO), NO + np.repeat(np.arange(n), w)])
        max_a = max(1, min(MAX_A, NO + n - 2))
        p = tr.loo_predictions(x, y, max_a, groups=groups)
        rows = slice(NO, None, w) if inline_lv and n else slice(None)
        a = tr.choose_components(np.sqrt(np.mean((p[rows] - y[rows, None]) ** 2, axis=0)), TOL)
        fig = rmse(p[NO::w, a - 1] - y[NO::w]) if n else None
        return _linear(x, y, None, a), fig

    return build


def filtered(make: Callable[[np.ndarray], tr.OrthogonalFilter], inline_lv: bool = False) -> Builder:
    """Off-line set + pairs, both filtered by ``make(difference rows)``; the filter is rebuilt
    from the training rows of each CV fold. ``inline_lv`` as in :func:`recal`."""

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        n = yp.size
        x = np.vstack([XC, xp])
        y = np.concatenate([YC, yp])

        def fit_filter(train: np.ndarray) -> tr.OrthogonalFilter:
            to, tp = train[:NO], train[NO:]
            return make(tr.difference_rows(XC[to], YC[to], xp[tp], yp[tp]))

        max_a = max(1, min(MAX_A, NO + n - 2))
        p = tr.loo_predictions(x, y, max_a, transform=fit_filter)
        rows = slice(NO, None) if inline_lv and n else slice(None)
        a = tr.choose_components(np.sqrt(np.mean((p[rows] - y[rows, None]) ** 2, axis=0)), TOL)
        fig = rmse(p[NO:, a - 1] - yp) if n else None
        return _linear(x, y, fit_filter(np.ones(NO + n, dtype=bool)), a), fig

    return build


def epo_cv(max_k: int = 3) -> Builder:
    """EPO with k ∈ 0…max_k chosen by the leave-one-pair-out error on the known pairs
    (smallest k within 2 % of the minimum)."""

    def epo(k: int) -> Callable[[np.ndarray], tr.OrthogonalFilter]:
        return lambda d: tr.epo_filter(d, k)

    candidates = [filtered(epo(k)) for k in range(max_k + 1)]

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        outs = [c(xp, yp) for c in candidates[: max(1, min(max_k, yp.size - 1) + 1)]]
        if yp.size == 0:
            return outs[0]
        figs = np.array([o[1] for o in outs], dtype=np.float64)
        return outs[tr.choose_components(figs, TOL) - 1]

    return build


def jit(k_rule: Callable[[int], int]) -> Builder:
    """Local PLS on the k nearest rows of the off-line set + pairs."""

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        x = np.vstack([XC, xp])
        y = np.concatenate([YC, yp])
        k = k_rule(yp.size)
        fig = None
        if yp.size:
            e = []
            for i in range(yp.size):
                keep = np.arange(y.size) != NO + i
                e.append(tr.local_pls_predict(x[keep], y[keep], xp[i], k) - yp[i])
            fig = rmse(np.array(e))
        return (lambda s: tr.local_pls_predict(x, y, s, k)), fig

    return build


METHODS: dict[str, tuple[str, Builder, dict[str, Any]]] = {
    "recal_all": ("recalibrated, LV count by all rows' CV error (earlier default)", recal(), {}),
    "recal": (
        "recalibrated, LV count by the pairs' CV error (ManagedEstimator default)",
        recal(inline_lv=True),
        {},
    ),
    "weight": (
        "pairs weighted so they count as much as the off-line set: w = max(1, round(21/n))",
        recal(lambda n: max(1, round(NO / n))),
        {},
    ),
    "glsw": (
        f"GLSW, alpha = {tr.GLSW_DEFAULT_ALPHA} x the largest eigenvalue (specProc default)",
        filtered(tr.glsw_filter),
        {},
    ),
    "glsw_inline_lv": (
        "GLSW as above, LV count by the pairs' CV error",
        filtered(tr.glsw_filter, inline_lv=True),
        {},
    ),
    "epo": ("EPO, k in 0..3 by leave-one-pair-out CV", epo_cv(3), {}),
    "jit": ("local PLS, k = 21 nearest (the off-line set's size)", jit(lambda n: NO), {}),
    "mean_pairs": (
        "recal, each pair's row the mean of the window's spectra",
        recal(inline_lv=True),
        {"mean_pairs": True},
    ),
    "median5": (
        "recal, scored estimate the median of the last 5 valid predictions (output filter)",
        recal(inline_lv=True),
        {"median_of": 5},
    ),
}


def managed_figure() -> float:
    m = ManagedEstimator(AXIS, XC_RAW, YC, STEPS)
    last = XI_RAW.shape[0] - 1
    events = [(min(round(t / PERIOD_H), last) * PERIOD_H, 1, k) for k, t in enumerate(HPLC[:, 0])]
    events += [(i * PERIOD_H, 0, i) for i in range(XI_RAW.shape[0])]
    events.sort(key=lambda e: (e[0], e[1]))
    errors = []
    for t, kind, k in events:
        if kind == 0:
            m.add_spectrum(t, XI_RAW[k])
            continue
        est = m.estimate_at(t)
        assert est is not None
        errors.append(est.value - HPLC[k, 1])
        m.add_reference(Reference(HPLC[k, 0], HPLC[k, 1]), now_h=max(t, HPLC[k, 0]))
    return rmse(np.array(errors[1:]))


def main(argv: list[str]) -> int:
    names = argv or list(METHODS)
    for name in names:
        if name == "managed":
            print(f"managed: ManagedEstimator itself: {managed_figure():.3f} g/L", flush=True)
            continue
        if name not in METHODS:
            print(f"unknown method {name!r} (have managed, {', '.join(METHODS)})", file=sys.stderr)
            return 2
        text, builder, options = METHODS[name]
        figure, released = feed(builder, **options)
        print(f"{name}: {text}: RMSEP 2..34 {figure:.3f} g/L, {released} released", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
