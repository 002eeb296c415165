"""Calibration-transfer helpers for the managed soft sensor: off-line → in-line process shift.

All functions work on *preprocessed* spectra (one row each, the output of the model's
pipeline); the PLS fits run in the Rust core (:class:`edgectl.spectra.PlsModel`), the small
linear algebra here (a thin SVD of at most a few dozen difference rows) is numpy glue.

The difference subspace: the off-line calibration set and the in-line run measure the same
analyte under different conditions (medium, cells, temperature, ATR set-up). For an in-line
pair (spectrum xᵢ, reference yᵢ) the off-line set predicts the spectrum it would have given at
the same concentration by a classical least-squares line through the off-line spectra,
x̂(y) = x̄ + (y − ȳ)·s (s the per-variable slope on y); the rows dᵢ = xᵢ − x̂(yᵢ) span what the
in-line condition adds. Only pairs whose reference is already known may enter (the caller's
prequential rule).

- **EPO** (external parameter orthogonalisation; Roger, Chauchard & Bellon-Maurel, *Chemom.
  Intell. Lab. Syst.* 66 (2003) 191): project every spectrum onto the orthogonal complement
  of the first ``k`` right singular vectors of D, x ← x − V_kᵀ V_k x.
- **GLSW** (generalised least-squares weighting; Martens, Høy, Wise, Bro & Brockhoff, *J.
  Chemom.* 17 (2003) 153): shrink each direction of D by f = 1/√(λ/(α·λ_max) + 1) (λ the
  eigenvalues of DᵀD/(n − 1)), x ← x − Vᵀ diag(1 − f) V x. α is relative to the largest
  eigenvalue, so the rule does not depend on the scale of the spectra; 0.01 is the documented
  default of the ``glsw`` of the R package specProc (Goueguel), used here as a fixed default.
- **Local / just-in-time PLS** (Cheng & Chiu, *Chem. Eng. Sci.* 59 (2004) 2801): a model
  fitted, for each query spectrum, on its ``k`` nearest calibration rows (Euclidean distance
  of the preprocessed spectra).

The figures of these methods on the chemotools in-line run are measured by
``scripts/transfer_methods.py`` (README, "Managed soft sensor").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgectl.errors import InvalidInputError
from edgectl.spectra import PlsModel

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "GLSW_DEFAULT_ALPHA",
    "OrthogonalFilter",
    "choose_components",
    "difference_rows",
    "epo_filter",
    "glsw_filter",
    "local_pls_predict",
    "loo_predictions",
    "nearest_rows",
]

GLSW_DEFAULT_ALPHA = 0.01


def _matrix(name: str, x: FloatArray, n_vars: int | None = None) -> FloatArray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise InvalidInputError(f"{name}: expected 2-D (a spectrum a row), got {a.ndim}-D")
    if n_vars is not None and a.shape[1] != n_vars:
        raise InvalidInputError(f"{name}: {a.shape[1]} variables, expected {n_vars}")
    if not np.all(np.isfinite(a)):
        raise InvalidInputError(f"{name}: non-finite values")
    return a


@dataclass(frozen=True)
class OrthogonalFilter:
    """x ← x − Σᵢ (1 − keepᵢ)(vᵢ·x) vᵢ for orthonormal rows vᵢ of ``basis``.

    ``keep`` = 0 removes a direction (EPO), 0 < keep < 1 shrinks it (GLSW); an empty basis is
    the identity.
    """

    basis: FloatArray
    keep: FloatArray

    def apply(self, x: FloatArray) -> FloatArray:
        """Filter one spectrum (1-D) or a batch (2-D, one spectrum a row)."""
        a = np.asarray(x, dtype=np.float64)
        if a.shape[-1] != self.basis.shape[1]:
            raise InvalidInputError(
                f"filter: spectrum has {a.shape[-1]} variables, the basis {self.basis.shape[1]}"
            )
        if self.basis.shape[0] == 0:
            return a.copy()
        return a - ((a @ self.basis.T) * (1.0 - self.keep)) @ self.basis


def difference_rows(
    x_offline: FloatArray, y_offline: FloatArray, x_inline: FloatArray, y_inline: FloatArray
) -> FloatArray:
    """Rows dᵢ = xᵢ − x̂(yᵢ): each in-line spectrum minus the off-line spectrum expected at its
    reference value (classical least-squares line through the off-line spectra)."""
    xo = _matrix("off-line spectra", x_offline)
    xi = _matrix("in-line spectra", x_inline, xo.shape[1])
    yo = np.asarray(y_offline, dtype=np.float64).ravel()
    yi = np.asarray(y_inline, dtype=np.float64).ravel()
    if yo.size != xo.shape[0] or yi.size != xi.shape[0]:
        raise InvalidInputError(
            f"difference rows: {yo.size} off-line values for {xo.shape[0]} spectra, "
            f"{yi.size} in-line values for {xi.shape[0]} spectra"
        )
    dy = yo - yo.mean()
    ss = float(dy @ dy)
    if not ss > 0.0:
        raise InvalidInputError("difference rows: the off-line values do not vary")
    mean = xo.mean(axis=0)
    slope = (dy @ (xo - mean)) / ss
    return xi - (mean + np.outer(yi - yo.mean(), slope))


def _svd(d: FloatArray) -> tuple[FloatArray, FloatArray]:
    a = _matrix("difference rows", d)
    if a.shape[0] == 0:
        return np.zeros(0), np.zeros((0, a.shape[1]))
    _u, s, vt = np.linalg.svd(a, full_matrices=False)
    rank = int(np.sum(s > s[0] * 1e-10)) if s.size and s[0] > 0 else 0
    return s[:rank], vt[:rank]


def epo_filter(d: FloatArray, n_components: int) -> OrthogonalFilter:
    """EPO: remove the first ``n_components`` directions of the difference rows ``d``."""
    if n_components < 0:
        raise InvalidInputError(f"EPO components must be ≥ 0, got {n_components}")
    _s, vt = _svd(d)
    vt = vt[:n_components]
    return OrthogonalFilter(vt, np.zeros(vt.shape[0]))


def glsw_filter(d: FloatArray, alpha: float = GLSW_DEFAULT_ALPHA) -> OrthogonalFilter:
    """GLSW: shrink each direction of the difference rows by 1/√(λ/(α·λ_max) + 1)."""
    if not (np.isfinite(alpha) and alpha > 0.0):
        raise InvalidInputError(f"GLSW alpha must be a positive number, got {alpha}")
    s, vt = _svd(d)
    if s.size == 0:
        return OrthogonalFilter(vt, np.zeros(0))
    lam = s**2 / max(np.asarray(d).shape[0] - 1, 1)
    return OrthogonalFilter(vt, 1.0 / np.sqrt(lam / (alpha * lam[0]) + 1.0))


def choose_components(rmse: FloatArray, tolerance: float = 0.02) -> int:
    """The smallest LV count whose error is within ``(1 + tolerance)`` of the minimum."""
    r = np.asarray(rmse, dtype=np.float64)
    if r.size == 0 or not np.all(np.isfinite(r)):
        raise InvalidInputError("choose_components: needs a finite error per LV count")
    return int(np.nonzero(r <= (1.0 + tolerance) * r.min())[0][0]) + 1


def loo_predictions(
    x: FloatArray,
    y: FloatArray,
    max_components: int,
    *,
    groups: npt.ArrayLike | None = None,
    transform: Callable[[npt.NDArray[np.bool_]], OrthogonalFilter] | None = None,
) -> FloatArray:
    """Leave-one-group-out predictions (n × ``max_components``) of PLS fitted in the Rust core.

    ``groups`` (one label a row; default: one group a row). ``transform(train_mask)`` returns a
    filter built from the training rows only, applied to training and left-out rows alike (so
    a left-out pair never shapes the filter that predicts it).
    """
    a = _matrix("spectra", x)
    v = np.ascontiguousarray(y, dtype=np.float64).ravel()
    n = v.size
    if n != a.shape[0]:
        raise InvalidInputError(f"loo: {n} values for {a.shape[0]} spectra")
    g = np.arange(n) if groups is None else np.asarray(groups).ravel()
    if g.size != n:
        raise InvalidInputError(f"loo: {g.size} group labels for {n} spectra")
    if not 1 <= max_components <= n - 2:
        raise InvalidInputError(f"loo: max_components must be 1…{n - 2}, got {max_components}")
    out = np.empty((n, max_components))
    for label in np.unique(g):
        test = g == label
        train = ~test
        xt, xv = a[train], a[test]
        if transform is not None:
            f = transform(train)
            xt, xv = f.apply(xt), f.apply(xv)
        m = PlsModel.fit(np.ascontiguousarray(xt), np.ascontiguousarray(v[train]), max_components)
        xv = np.ascontiguousarray(xv)
        for k in range(max_components):
            out[test, k] = m.predict(xv, k + 1)
    return out


def nearest_rows(x_cal: FloatArray, query: FloatArray, k: int) -> npt.NDArray[np.intp]:
    """Indices of the ``k`` rows of ``x_cal`` nearest ``query`` (Euclidean; ties by index)."""
    a = _matrix("calibration spectra", x_cal)
    q = np.asarray(query, dtype=np.float64).ravel()
    if q.size != a.shape[1]:
        raise InvalidInputError(f"query has {q.size} variables, calibration {a.shape[1]}")
    if not 1 <= k <= a.shape[0]:
        raise InvalidInputError(f"k must be 1…{a.shape[0]}, got {k}")
    d = np.sum((a - q) ** 2, axis=1)
    return np.argsort(d, kind="stable")[:k]


def local_pls_predict(
    x_cal: FloatArray,
    y_cal: FloatArray,
    query: FloatArray,
    k: int,
    *,
    max_components: int = 8,
    tolerance: float = 0.02,
) -> float:
    """Just-in-time PLS: fit on the ``k`` nearest rows (LV count by leave-one-out on them,
    parsimony rule), predict ``query``."""
    idx = nearest_rows(x_cal, query, k)
    xl = np.ascontiguousarray(np.asarray(x_cal, dtype=np.float64)[idx])
    yl = np.ascontiguousarray(np.asarray(y_cal, dtype=np.float64).ravel()[idx])
    max_a = max(1, min(max_components, k - 2))
    pred = loo_predictions(xl, yl, max_a)
    a = choose_components(np.sqrt(np.mean((pred - yl[:, None]) ** 2, axis=0)), tolerance)
    m = PlsModel.fit(xl, yl, a)
    q = np.ascontiguousarray(np.asarray(query, dtype=np.float64).reshape(1, -1))
    return float(m.predict(q, a)[0])
