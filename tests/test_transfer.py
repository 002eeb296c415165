"""Calibration-transfer helpers (edgectl.transfer): difference subspace, EPO and GLSW filters,
leave-one-group-out PLS predictions, local PLS."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl import transfer as tr
from edgectl.errors import InvalidInputError
from edgectl.spectra import PlsModel


def _linear_set(rng: np.random.Generator, n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectra exactly linear in y: x = m + y·s."""
    m, s = rng.normal(size=p), rng.normal(size=p)
    y = rng.uniform(0.0, 40.0, n)
    return m + np.outer(y, s), y


def test_difference_rows_recover_an_in_line_offset():
    rng = np.random.default_rng(1)
    xo, yo = _linear_set(rng, 12, 30)
    offset = rng.normal(size=30)
    yi = np.array([3.0, 17.0, 44.0])  # 44 lies outside the off-line range: the line extrapolates
    m_s = np.linalg.lstsq(np.c_[np.ones(12), yo], xo, rcond=None)[0]
    xi = m_s[0] + np.outer(yi, m_s[1]) + offset
    d = tr.difference_rows(xo, yo, xi, yi)
    np.testing.assert_allclose(d, np.tile(offset, (3, 1)), atol=1e-9)


def test_difference_rows_refuse_bad_input():
    xo = np.ones((4, 5))
    with pytest.raises(InvalidInputError, match="do not vary"):
        tr.difference_rows(xo, np.full(4, 2.0), xo[:1], [1.0])
    with pytest.raises(InvalidInputError, match="in-line spectra: 4 variables, expected 5"):
        tr.difference_rows(xo, np.arange(4.0), np.ones((1, 4)), [1.0])
    with pytest.raises(InvalidInputError, match="3 off-line values for 4 spectra"):
        tr.difference_rows(xo, np.arange(3.0), xo[:1], [1.0])
    with pytest.raises(InvalidInputError, match="non-finite"):
        tr.difference_rows(xo, np.arange(4.0), np.full((1, 5), np.nan), [1.0])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_epo_removes_exactly_the_leading_difference_directions(n, k, seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 20))
    f = tr.epo_filter(d, k)
    assert f.basis.shape == (min(k, n), 20)
    x = rng.normal(size=(5, 20))
    z = f.apply(x)
    np.testing.assert_allclose(z @ f.basis.T, 0.0, atol=1e-10)  # orthogonal to what it removes
    np.testing.assert_allclose(f.apply(z), z, atol=1e-10)  # a projection: applying twice = once
    # A spectrum orthogonal to every difference row passes unchanged.
    q, _ = np.linalg.qr(np.c_[d.T, rng.normal(size=20)])
    free = q[:, n]
    np.testing.assert_allclose(f.apply(free), free, atol=1e-10)
    if k >= n:  # every difference row is removed entirely
        np.testing.assert_allclose(f.apply(d), 0.0, atol=1e-9)


def test_glsw_shrinks_each_direction_by_its_eigenvalue():
    rng = np.random.default_rng(7)
    d = rng.normal(size=(6, 15)) * np.linspace(3.0, 0.1, 15)
    alpha = 0.05
    f = tr.glsw_filter(d, alpha)
    lam, vec = np.linalg.eigh(d.T @ d / 5.0)
    lam, vec = lam[::-1][:6], vec[:, ::-1][:, :6]
    np.testing.assert_allclose(f.keep, 1.0 / np.sqrt(lam / (alpha * lam[0]) + 1.0), rtol=1e-9)
    # Along each eigenvector the filter multiplies by its factor.
    for j in range(6):
        np.testing.assert_allclose(f.apply(vec[:, j]), f.keep[j] * vec[:, j], atol=1e-9)
    assert np.all(np.diff(f.keep) >= 0)  # the largest clutter direction is shrunk most
    weaker = tr.glsw_filter(d, 10 * alpha)
    assert np.all(weaker.keep > f.keep)
    with pytest.raises(InvalidInputError, match="GLSW alpha must be a positive number"):
        tr.glsw_filter(d, 0.0)
    ident = tr.glsw_filter(np.zeros((0, 15)))
    x = rng.normal(size=15)
    np.testing.assert_array_equal(ident.apply(x), x)


def test_filter_refuses_a_spectrum_of_the_wrong_length():
    f = tr.epo_filter(np.eye(3, 8), 1)
    with pytest.raises(InvalidInputError, match="7 variables, the basis 8"):
        f.apply(np.zeros(7))


def test_loo_prediction_of_a_group_ignores_its_own_rows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(14, 10))
    y = x @ rng.normal(size=10) + rng.normal(0.0, 0.1, 14)
    groups = np.repeat(np.arange(7), 2)
    base = tr.loo_predictions(x, y, 3, groups=groups)
    y2 = y.copy()
    y2[4:6] += 100.0  # group 2's references change
    moved = tr.loo_predictions(x, y2, 3, groups=groups)
    np.testing.assert_allclose(moved[4:6], base[4:6], rtol=1e-12)  # its own predictions do not
    assert np.all(np.abs(moved[:4] - base[:4]) > 1e-6)  # every other group's do
    # The predictions of group 0 are those of a model fitted without it.
    m = PlsModel.fit(np.ascontiguousarray(x[2:]), np.ascontiguousarray(y[2:]), 3)
    np.testing.assert_allclose(base[:2, 2], m.predict(np.ascontiguousarray(x[:2]), 3), rtol=1e-10)
    with pytest.raises(InvalidInputError, match="max_components must be 1…12"):
        tr.loo_predictions(x, y, 13)


def test_loo_builds_the_filter_from_the_training_rows_only():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 6))
    y = rng.normal(size=8)
    seen: list[np.ndarray] = []

    def make(train: np.ndarray) -> tr.OrthogonalFilter:
        seen.append(train.copy())
        return tr.epo_filter(x[train][:1], 1)

    tr.loo_predictions(x, y, 2, transform=make)
    assert len(seen) == 8
    for i, train in enumerate(seen):
        assert not train[i]
        assert train.sum() == 7


def test_choose_components_is_the_parsimony_rule():
    assert tr.choose_components(np.array([5.0, 2.0, 1.01, 1.0, 1.2])) == 3
    assert tr.choose_components(np.array([5.0, 2.0, 1.03, 1.0]), 0.02) == 4
    with pytest.raises(InvalidInputError, match="finite error"):
        tr.choose_components(np.array([1.0, np.nan]))


def test_local_pls_follows_the_query_s_own_cluster():
    # Two clusters of spectra with opposite responses to the same variable: one global model
    # cannot serve both, a local model on the query's neighbours can.
    rng = np.random.default_rng(5)
    n, p = 20, 12
    base_a, base_b = np.zeros(p), np.zeros(p)
    base_b[0] = 50.0
    ya, yb = rng.uniform(0, 10, n), rng.uniform(0, 10, n)
    xa = base_a + np.outer(ya, np.eye(p)[1]) + rng.normal(0, 0.01, (n, p))
    xb = base_b + np.outer(10.0 - yb, np.eye(p)[1]) + rng.normal(0, 0.01, (n, p))
    x, y = np.vstack([xa, xb]), np.concatenate([ya, yb])
    assert set(tr.nearest_rows(x, xb[0] + 0.001, n)) == set(range(n, 2 * n))
    qa = base_a + 7.0 * np.eye(p)[1]
    qb = base_b + (10.0 - 7.0) * np.eye(p)[1]
    local = [tr.local_pls_predict(x, y, q, n, max_components=3) for q in (qa, qb)]
    np.testing.assert_allclose(local, [7.0, 7.0], atol=0.05)
    glob = PlsModel.fit(np.ascontiguousarray(x), np.ascontiguousarray(y), 1)
    g = glob.predict(np.ascontiguousarray(np.stack([qa, qb])), 1)
    assert np.max(np.abs(g - 7.0)) > 1.0
    with pytest.raises(InvalidInputError, match="k must be 1…40"):
        tr.nearest_rows(x, qa, 41)
