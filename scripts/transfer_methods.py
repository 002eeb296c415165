"""Prequential RMSEP of calibration-transfer methods on the chemotools in-line run.

Usage: ``.venv/bin/python scripts/transfer_methods.py [METHOD ...]`` (default: every method of
``METHODS``; also ``managed``, ``hindsight`` and ``combination``). Needs the
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

import math
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


# the estimator's own pairing rule (ManagedEstimator.steady_window_h / steady_min_spectra)
STEADY_WINDOW_H = ManagedEstimator.steady_window_h
STEADY_MIN_SPECTRA = ManagedEstimator.steady_min_spectra


def steady_pair(seen: list[int], taken_at_h: float) -> tuple[int, list[int]] | None:
    """The valid spectrum nearest a reference's sampling time and the steady window before it,
    or None when the probe was not steady (fewer valid spectra in the window than the rule)."""
    lo = taken_at_h - STEADY_WINDOW_H
    window = [i for i in seen if lo <= i * PERIOD_H <= taken_at_h]
    if len(window) < STEADY_MIN_SPECTRA:
        return None
    nearest = min(
        (i for i in seen if i * PERIOD_H >= lo), key=lambda i: abs(i * PERIOD_H - taken_at_h)
    )
    return nearest, window


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


def feed(
    builder: Builder, median_of: int = 1, mean_pairs: bool = False, with_target: bool = False
) -> tuple[float, int]:
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
        paired = steady_pair(seen, HPLC[k, 0])
        if paired is None:
            continue
        s, window = paired
        pairs.append((s, HPLC[k, 1], pred(s) - HPLC[k, 1]))
        if mean_pairs:
            windows.append(window)
            rows = np.stack([XI[w].mean(axis=0) for w in windows])
        else:
            rows = XI[[p[0] for p in pairs]]
        if with_target:
            cand, figure = builder(rows, np.array([p[1] for p in pairs]), XI[seen])  # type: ignore[call-arg]
        else:
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


def recal_one_se(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
    """As ``recal(inline_lv=True)`` with the one-standard-error rule for the LV count (Hastie,
    Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed., §7.10): the smallest
    count whose pair MSE is within one standard error of the minimum."""
    n = yp.size
    x = np.vstack([XC, xp])
    y = np.concatenate([YC, yp])
    p = tr.loo_predictions(x, y, max(1, min(MAX_A, NO + n - 2)))
    if n == 0:
        a = tr.choose_components(np.sqrt(np.mean((p - y[:, None]) ** 2, axis=0)), TOL)
        return _linear(x, y, None, a), None
    e2 = (p[NO:] - yp[:, None]) ** 2
    mse = e2.mean(axis=0)
    best = int(np.argmin(mse))
    se = float(e2[:, best].std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    a = int(np.flatnonzero(mse <= mse[best] + se)[0]) + 1
    return _linear(x, y, None, a), math.sqrt(float(mse[a - 1]))


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


def pairs_only(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
    """PLS on the in-line pairs alone (from 5 pairs; LV by leave-one-pair-out)."""
    n = yp.size
    if n < 5:
        return (lambda s: math.nan), None
    p = tr.loo_predictions(xp, yp, min(MAX_A, n - 2))
    curve = np.sqrt(np.mean((p - yp[:, None]) ** 2, axis=0))
    a = tr.choose_components(curve, TOL)
    return _linear(xp, yp, None, a), float(curve[a - 1])


def select(builders: list[Builder]) -> Builder:
    """The candidate of the builder with the lowest leave-one-pair-out error at this time."""

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        outs = [b(xp, yp) for b in builders]
        if yp.size == 0:
            return outs[0]
        return min(outs, key=lambda o: math.inf if o[1] is None else o[1])

    return build


_, OTHER = sp.read_references_csv(
    Path(str(files("chemotools.datasets") / "data")) / "fermentation_hplc.csv",
    ["xylose", "acetic_acid", "ethanol", "furfural"],
)


def interferents_epo() -> Builder:
    """EPO of the in-line interferent spectra: the difference rows regressed (classical least
    squares) on the other analytes of the same HPLC samples (xylose, acetic acid, ethanol,
    furfural; known when the glucose value is), and those 4 directions projected out. Needs
    ≥ 6 pairs in the training fold, else no filter. Pairs are references 2, 3, ... in order."""

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        n = yp.size
        other = OTHER[1 : 1 + n]

        def make(train: np.ndarray) -> tr.OrthogonalFilter:
            to, tp = train[:NO], train[NO:]
            o = other[tp]
            if o.shape[0] < o.shape[1] + 2:
                return tr.OrthogonalFilter(np.zeros((0, XC.shape[1])), np.zeros(0))
            d = tr.difference_rows(XC[to], YC[to], xp[tp], yp[tp])
            spectra = np.linalg.lstsq(np.c_[np.ones(o.shape[0]), o - o.mean(0)], d, rcond=None)[0]
            q, _ = np.linalg.qr(spectra[1:].T)
            return tr.OrthogonalFilter(q.T, np.zeros(q.shape[1]))

        x = np.vstack([XC, xp])
        y = np.concatenate([YC, yp])
        max_a = max(1, min(MAX_A, NO + n - 2))
        p = tr.loo_predictions(x, y, max_a, transform=make)
        rows = slice(NO, None) if n else slice(None)
        a = tr.choose_components(np.sqrt(np.mean((p[rows] - y[rows, None]) ** 2, axis=0)), TOL)
        fig = rmse(p[NO:, a - 1] - yp) if n else None
        return _linear(x, y, make(np.ones(NO + n, dtype=bool)), a), fig

    return build


CUT = sp.Pipeline(AXIS, STEPS[:1])
CUT_AXIS = CUT.output_wavenumber_cm1
RC = CUT.transform(XC_RAW)
RI = np.full((XI_RAW.shape[0], RC.shape[1]), np.nan)
RI[VALID] = CUT.transform(XI_RAW[VALID])
AFTER_EMSC = sp.Pipeline(CUT_AXIS, STEPS[1:])
NU = np.linspace(-1.0, 1.0, RC.shape[1])


def emsc(r: np.ndarray, ref: np.ndarray, k: np.ndarray) -> np.ndarray:
    """EMSC (Martens & Stark 1991; Martens, Nielsen & Engelsen 2003): r = a + d1·ν + d2·ν² +
    b·ref + Σ h_j k_j + e, corrected (r − a − d1ν − d2ν² − Σ h_j k_j)/b."""
    m = np.column_stack([np.ones_like(NU), NU, NU**2, ref, *k])
    coef = np.linalg.lstsq(m, r.T, rcond=None)[0]
    bad = np.delete(np.arange(m.shape[1]), 3)
    return (r - (m[:, bad] @ coef[bad]).T) / coef[3][:, None]


def emsc_builder(n_interferents: int) -> Builder:
    """Region → EMSC (reference = off-line mean; interferents = the first right singular
    vectors of the raw in-line difference rows, rebuilt per CV fold) → SG d1 → SNV; off-line
    set + pairs, LV count by the pairs' CV error."""
    ref = RC.mean(axis=0)
    plain = np.zeros((0, RC.shape[1]))

    def interferents(train_o: np.ndarray, rp: np.ndarray, yp: np.ndarray) -> np.ndarray:
        if n_interferents == 0 or yp.size == 0:
            return plain
        eo = emsc(RC[train_o], ref, plain)
        d = tr.difference_rows(eo, YC[train_o], emsc(rp, ref, plain), yp)
        return tr.epo_filter(d, n_interferents).basis

    def build(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
        # the raw (cut) rows of the pairs: the preprocessed rows are XI's, so look them up
        ip = [int(np.flatnonzero(np.all(row == XI, axis=1))[0]) for row in xp]
        rp = RI[ip]
        n = yp.size
        r = np.vstack([RC, rp])
        y = np.concatenate([YC, yp])
        max_a = max(1, min(MAX_A, NO + n - 2))
        p = np.empty((y.size, max_a))
        for g in range(y.size):
            train = np.arange(y.size) != g
            k = interferents(train[:NO], rp[train[NO:]], yp[train[NO:]])
            z = AFTER_EMSC.transform(emsc(r, ref, k))
            m = sp.PlsModel.fit(np.ascontiguousarray(z[train]), y[train], max_a)
            for a in range(max_a):
                p[g, a] = m.predict(np.ascontiguousarray(z[g : g + 1]), a + 1)[0]
        rows = slice(NO, None) if n else slice(None)
        a = tr.choose_components(np.sqrt(np.mean((p[rows] - y[rows, None]) ** 2, axis=0)), TOL)
        k = interferents(np.ones(NO, dtype=bool), rp, yp)
        m = sp.PlsModel.fit(np.ascontiguousarray(AFTER_EMSC.transform(emsc(r, ref, k))), y, a)

        def model(row: np.ndarray) -> float:
            i = int(np.flatnonzero(np.all(row == XI, axis=1))[0])
            z = AFTER_EMSC.transform(emsc(RI[i : i + 1], ref, k))
            return float(m.predict(np.ascontiguousarray(z), a)[0])

        return model, (rmse(p[NO:, a - 1] - yp) if n else None)

    return build


def hindsight() -> None:
    """Leave-one-pair-out errors with all 33 pairs known (uses the future: NOT prequential; a
    bound on what refitting on these pairs can give)."""
    idx = [
        max(i for i in range(min(round(t / PERIOD_H), 1625) + 1) if VALID[i]) for t in HPLC[1:, 0]
    ]
    xp, yp = XI[idx], HPLC[1:, 1]
    for name, b in (
        ("off-line + pairs", recal(inline_lv=True)),
        ("GLSW", filtered(tr.glsw_filter)),
    ):
        print(f"hindsight {name}: {b(xp, yp)[1]:.3f} g/L", flush=True)
    p = tr.loo_predictions(xp, yp, MAX_A)
    curve = np.sqrt(np.mean((p - yp[:, None]) ** 2, axis=0))
    print("hindsight pairs only, 1..8 LV:", " ".join(f"{v:.2f}" for v in curve), flush=True)


# Issue 18, third round. Both rules below were written and committed before their figures were
# run (commit "transfer_methods: pre-register ...").
OFFLINE_WEIGHTS = (1.0, 0.5, 0.25, 0.125, 0.0)


def _pair_folds(x: np.ndarray, y: np.ndarray, g: np.ndarray, n: int, max_a: int) -> np.ndarray:
    """Leave-one-pair-out predictions (n × max_a) of the pairs; ``g`` labels pair rows 0…n−1
    and the off-line rows −1 (always in the training set)."""
    out = np.empty((n, max_a))
    for i in range(n):
        train = g != i
        m = sp.PlsModel.fit(np.ascontiguousarray(x[train]), y[train], max_a)
        xv = np.ascontiguousarray(x[g == i][:1])
        for a in range(max_a):
            out[i, a] = m.predict(xv, a + 1)[0]
    return out


def weight_cv(xp: np.ndarray, yp: np.ndarray) -> tuple[Model, float | None]:
    """Model updating with weighted new samples (Capron, Walczak, de Noord & Massart, *Chemom.
    Intell. Lab. Syst.* 76 (2005) 205; Stork & Kowalski, *Chemom. Intell. Lab. Syst.* 48 (1999)
    151): the off-line rows weighted w ∈ {1, 1/2, 1/4, 1/8, 0} against 1 for each pair (done as
    1/w repeats of each pair; w = 0 is PLS on the pairs alone, from 5 pairs), w and the LV count
    chosen jointly by leave-one-pair-out CV on the known pairs: the smallest LV count within 2 %
    of the grid's minimum error, ties to the larger off-line weight."""
    n = yp.size
    if n == 0:
        return recal(inline_lv=True)(xp, yp)
    curves = np.full((len(OFFLINE_WEIGHTS), MAX_A), np.inf)
    for j, wo in enumerate(OFFLINE_WEIGHTS):
        if wo == 0.0:
            if n < 5:
                continue
            max_a = min(MAX_A, n - 2)
            p = _pair_folds(xp, yp, np.arange(n), n, max_a)
        else:
            r = round(1.0 / wo)
            x = np.vstack([XC, np.repeat(xp, r, axis=0)])
            y = np.concatenate([YC, np.repeat(yp, r)])
            g = np.concatenate([np.full(NO, -1), np.repeat(np.arange(n), r)])
            max_a = max(1, min(MAX_A, NO + n - 2))
            p = _pair_folds(x, y, g, n, max_a)
        curves[j, :max_a] = np.sqrt(np.mean((p - yp[:, None]) ** 2, axis=0))
    ok = curves <= (1.0 + TOL) * curves.min()
    a = int(np.flatnonzero(ok.any(axis=0))[0])
    j = int(np.flatnonzero(ok[:, a])[0])
    wo = OFFLINE_WEIGHTS[j]
    if wo == 0.0:
        return _linear(xp, yp, None, a + 1), float(curves[j, a])
    r = round(1.0 / wo)
    x = np.vstack([XC, np.repeat(xp, r, axis=0)])
    y = np.concatenate([YC, np.repeat(yp, r)])
    return _linear(x, y, None, a + 1), float(curves[j, a])


DISCOUNT = 0.9  # Stock & Watson, J. Forecasting 23 (2004) 405: discounted-MSE weights, δ = 0.9
MIN_SCORED = 3


def combination(members: list[Builder]) -> tuple[float, list[int]]:
    """Prequential forecast combination (Bates & Granger, *Oper. Res. Q.* 20 (1969) 451):
    each member runs its own chain (candidate per pair, released by the feed's rule; a member
    without a model releases its first candidate); the output is Σ wⱼ ŷⱼ with wⱼ ∝ 1/MSEⱼ, MSEⱼ
    the member's discounted (δ = 0.9 a pair) mean squared prequential error on the pairs known
    so far (its in-force prediction at the pair's spectrum); a member enters with ≥ 3 scored
    pairs; until one does, member 0 alone. Returns the RMSEP 2…34 and releases per member."""
    last = XI.shape[0] - 1
    events = [(min(round(t / PERIOD_H), last) * PERIOD_H, 1, k) for k, t in enumerate(HPLC[:, 0])]
    events += [(i * PERIOD_H, 0, i) for i in range(XI.shape[0])]
    events.sort(key=lambda e: (e[0], e[1]))
    m = len(members)
    models: list[Model] = [b(XC[:0], YC[:0])[0] for b in members]
    model_at: list[dict[int, Model]] = [{} for _ in range(m)]
    cache: list[dict[int, float]] = [{} for _ in range(m)]

    def pred(j: int, i: int) -> float:
        if i not in cache[j]:
            cache[j][i] = model_at[j][i](XI[i])
        return cache[j][i]

    seen: list[int] = []
    pair_rows: list[int] = []
    pair_y: list[float] = []
    perr: list[list[float]] = [[] for _ in range(m)]  # prequential errors per member (nan: none)
    errors: list[float] = []
    released = [0] * m
    for t, kind, k in events:
        if kind == 0:
            for j in range(m):
                model_at[j][k] = models[j]
            if VALID[k]:
                seen.append(k)
            continue
        i_est = [i for i in seen if i * PERIOD_H <= t + 1e-12][-1]
        preds = np.array([pred(j, i_est) for j in range(m)])
        w = np.zeros(m)
        for j in range(m):
            e = np.array(perr[j])
            fin = np.isfinite(e)
            if fin.sum() >= MIN_SCORED and math.isfinite(preds[j]):
                d = DISCOUNT ** np.arange(e.size - 1, -1, -1)[fin]
                w[j] = 1.0 / (float(np.sum(d * e[fin] ** 2) / np.sum(d)))
        if w.sum() == 0.0:
            w[0] = 1.0
        errors.append(float(np.sum(w * np.nan_to_num(preds)) / w.sum()) - HPLC[k, 1])
        paired = steady_pair(seen, HPLC[k, 0])
        if paired is None:
            continue
        s, _ = paired
        pair_rows.append(s)
        pair_y.append(HPLC[k, 1])
        for j in range(m):
            perr[j].append(pred(j, s) - HPLC[k, 1])
        xp, yp = XI[pair_rows], np.array(pair_y)
        for j, b in enumerate(members):
            cand, figure = b(xp, yp)
            e = np.array(perr[j])
            fin = np.isfinite(e)
            current = rmse(e[fin]) if fin.any() else math.inf
            if figure is not None and figure < (1.0 - MARGIN) * current:
                models[j] = cand
                released[j] += 1
    return rmse(np.array(errors[1:])), released


def combination_main() -> None:
    figure, rel = combination([recal(inline_lv=True), pairs_only, jit(lambda n: NO)])
    print(
        "combination: recal + pairs only + local PLS, inverse discounted-MSE weights "
        f"(delta {DISCOUNT}): RMSEP 2..34 {figure:.3f} g/L, released {rel}",
        flush=True,
    )


DIPLS_LAMBDAS = (0.0, 0.1, 0.3, 0.9)


def dipls_fit(
    xs: np.ndarray, ys: np.ndarray, ct: np.ndarray, lam: float, n_a: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Domain-invariant PLS (Nikzad-Langerodi et al., *Anal. Chem.* 90 (2018) 6693), numpy
    (not in the Rust core): weight w ∝ (I + c·D)⁻¹ Xsᵀy with D = Cov(Xs) − Cov(Xt) of the
    deflated labelled (source) and unlabelled (target) spectra, each centred on its own mean
    (``ct`` the target's covariance),
    c = lam / ‖D‖_F (scale-free; lam < 1 keeps I + cD positive definite). Returns the
    coefficient vectors for 1…n_a LV (n_a × p), as (b, source mean, ȳ)."""
    mu = xs.mean(axis=0)
    ybar = float(ys.mean())
    x = xs - mu
    y = ys - ybar
    cs = x.T @ x / (x.shape[0] - 1)
    eye = np.eye(x.shape[1])
    ws, ps, qs = [], [], []
    for _ in range(n_a):
        w = x.T @ y
        if lam > 0.0:
            d = cs - ct
            w = np.linalg.solve(eye + (lam / np.linalg.norm(d)) * d, w)
        w /= np.linalg.norm(w)
        t = x @ w
        tt = float(t @ t)
        pl = x.T @ t / tt
        q = float(y @ t) / tt
        x = x - np.outer(t, pl)
        y = y - q * t
        cs = x.T @ x / (x.shape[0] - 1)
        u = ct @ w
        ct = ct - np.outer(u, u) / float(w @ u)
        ws.append(w)
        ps.append(pl)
        qs.append(q)
    wm, pm, qv = np.array(ws).T, np.array(ps).T, np.array(qs)
    b = np.array(
        [wm[:, :a] @ np.linalg.solve(pm[:, :a].T @ wm[:, :a], qv[:a]) for a in range(1, n_a + 1)]
    )
    return b, mu, ybar


def dipls_cv(
    xp: np.ndarray, yp: np.ndarray, xt: np.ndarray | None = None
) -> tuple[Model, float | None]:
    """di-PLS on the off-line set + pairs (labelled) against the in-line spectra known so far
    (unlabelled target); lam ∈ {0, 0.1, 0.3, 0.9} (0 = plain PLS) and the LV count chosen
    jointly by leave-one-pair-out CV on the known pairs: the smallest LV count within 2 % of the
    grid minimum, ties to the smaller lam. Predictions (x − x̄ₛ)·b + ȳₛ."""
    n = yp.size
    x = np.vstack([XC, xp])
    y = np.concatenate([YC, yp])
    max_a = max(1, min(MAX_A, NO + n - 2))
    if n == 0 or xt is None:
        return recal(inline_lv=True)(xp, yp)
    tc = xt - xt.mean(axis=0)
    ct = tc.T @ tc / (tc.shape[0] - 1)
    curves = np.empty((len(DIPLS_LAMBDAS), max_a))
    for j, lam in enumerate(DIPLS_LAMBDAS):
        p = np.empty((n, max_a))
        for i in range(n):
            keep = np.arange(y.size) != NO + i
            b, mu, ybar = dipls_fit(x[keep], y[keep], ct, lam, max_a)
            p[i] = b @ (xp[i] - mu) + ybar
        curves[j] = np.sqrt(np.mean((p - yp[:, None]) ** 2, axis=0))
    ok = curves <= (1.0 + TOL) * curves.min()
    a = int(np.flatnonzero(ok.any(axis=0))[0])
    j = int(np.flatnonzero(ok[:, a])[0])
    b, mu, ybar = dipls_fit(x, y, ct, DIPLS_LAMBDAS[j], a + 1)
    coef = b[a]
    return (lambda s: float(coef @ (s - mu)) + ybar), float(curves[j, a])


METHODS: dict[str, tuple[str, Builder, dict[str, Any]]] = {
    "recal_all": ("recalibrated, LV count by all rows' CV error (earlier default)", recal(), {}),
    "recal": (
        "recalibrated, LV count by the pairs' CV error (ManagedEstimator default)",
        recal(inline_lv=True),
        {},
    ),
    "recal_1se": ("recalibrated, LV count by the one-SE rule on the pairs' CV", recal_one_se, {}),
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
    "select": (
        "per reference, recal or local PLS (k = 21), whichever has the lower pair CV error",
        select([recal(inline_lv=True), jit(lambda n: NO)]),
        {},
    ),
    "interferents": (
        "EPO of the CLS spectra of the other HPLC analytes, in-line LV rule",
        interferents_epo(),
        {},
    ),
    "select_pairs_only": (
        "per reference, recal or PLS on the pairs alone, whichever has the lower pair CV error",
        select([recal(inline_lv=True), pairs_only]),
        {},
    ),
    "emsc": ("EMSC (no interferent) -> SG -> SNV", emsc_builder(0), {}),
    "emsc_k2": ("EMSC with 2 in-line interferent spectra -> SG -> SNV", emsc_builder(2), {}),
    "mean_pairs": (
        "recal, each pair's row the mean of the window's spectra",
        recal(inline_lv=True),
        {"mean_pairs": True},
    ),
    "weight_cv": (
        "off-line weight in {1, 1/2, 1/4, 1/8, 0} and LV chosen jointly by pair CV",
        weight_cv,
        {},
    ),
    "dipls": (
        "di-PLS, lam in {0, 0.1, 0.3, 0.9} x 1/||D||_F and LV jointly by pair CV",
        dipls_cv,  # type: ignore[dict-item]
        {"with_target": True},
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
        if name == "hindsight":
            hindsight()
            continue
        if name == "combination":
            combination_main()
            continue
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
