"""The per-minute rollup behind long trends (schema 3): a min/max trend read from it is exactly
what the samples give under the documented bucketing, it is written in the samples' own
commit, a version-2 file is upgraded with its rollup built, and a version-2 file opened
read-only is answered from the samples."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgectl.historian import Historian, HistoryReader
from edgectl.historian._db import ROLLUP_S


def expected(
    samples: list[tuple[float, float]], start: float, end: float, n: int, *, rollup: bool = True
) -> list[tuple[float, float, float, float]]:
    """The documented result computed from the samples alone: a finite sample in [start, end]
    counts in the bucket of its time, or, when buckets are >= 4 rollup blocks wide and its
    minute lies whole inside the window, in the bucket its minute starts in. ``rollup=False``:
    by sample time alone (a file without the rollup)."""
    width = (end - start) / n
    b_lo, b_hi = math.ceil(start / ROLLUP_S), math.floor(end / ROLLUP_S)
    use_rollup = rollup and width >= 4 * ROLLUP_S and b_hi > b_lo
    out: dict[int, tuple[float, float, float, float]] = {}
    for t, v in samples:
        if not (start <= t <= end and math.isfinite(v)):
            continue
        b = math.floor(t / ROLLUP_S)
        at = b * ROLLUP_S if use_rollup and b_lo <= b < b_hi else t
        k = min(int((at - start) / width), n - 1)
        p = out.get(k)
        out[k] = (
            (t, t, v, v) if p is None else (min(p[0], t), max(p[1], t), min(p[2], v), max(p[3], v))
        )
    return [out[k] for k in sorted(out)]


def fill(h: Historian, samples: list[tuple[float, float]], commits: int = 3) -> None:
    step = max(1, len(samples) // commits)
    for i, (t, v) in enumerate(samples):
        h.record("x", v, time_s=t)
        if i % step == step - 1:
            h.flush()  # several commits: blocks are folded into across commits
    h.flush()


times = st.floats(-2e4, 2e5, allow_nan=False).map(lambda t: round(t, 3))
values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(math.nan), st.just(math.inf))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    samples=st.lists(st.tuples(times, values), min_size=1, max_size=400),
    window=st.tuples(times, times),
    n=st.integers(1, 900),
)
def test_rollup_trend_is_exactly_the_samples_documented_bucketing(
    tmp_path_factory: pytest.TempPathFactory,
    samples: list[tuple[float, float]],
    window: tuple[float, float],
    n: int,
) -> None:
    start, end = sorted(window)
    if end - start < 1.0:
        end = start + 1.0
    h = Historian(tmp_path_factory.mktemp("rollup") / "h.db")
    try:
        fill(h, samples)
        got = h.minmax("x", start, end, n)
    finally:
        h.close()
    assert got == expected(samples, start, end, n)


def test_fourteen_days_every_extreme_and_the_rollup_rows(tmp_path: Path) -> None:
    h = Historian(tmp_path / "h.db")
    t0 = 1.7e9
    samples = [(t0 + k * 10.0, math.sin(k / 500.0)) for k in range(14 * 8640)]
    samples[54_321] = (samples[54_321][0], 5.0)  # a one-sample spike
    samples[99_999] = (samples[99_999][0], -7.0)
    try:
        fill(h, samples, commits=7)
        rows = h.minmax("x", t0, t0 + 14 * 86400.0, 800)
        con = sqlite3.connect(tmp_path / "h.db")
        try:
            n_blocks, n_samples = con.execute(
                "SELECT count(*), sum(n) FROM sample_rollup"
            ).fetchone()
        finally:
            con.close()
    finally:
        h.close()
    # one row per minute the tag has samples in (t0 is not on a minute: 14 days touch 20 161)
    assert n_blocks == len({math.floor(t / ROLLUP_S) for t, _ in samples}) == 20_161
    assert n_samples == len(samples)
    assert rows == expected(samples, t0, t0 + 14 * 86400.0, 800)
    assert len(rows) == 800
    assert max(r[3] for r in rows) == 5.0
    assert min(r[2] for r in rows) == -7.0
    assert rows[0][0] == t0
    assert rows[-1][1] == samples[-1][0]


def _downgrade_to_2(db: Path) -> None:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("DROP TABLE sample_rollup")
        con.execute("PRAGMA user_version = 2")
    finally:
        con.close()


def test_a_version_2_file_is_upgraded_with_its_rollup_and_read_only_falls_back(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    samples = [(float(k * 5), float((k * 7919) % 101)) for k in range(20_000)]
    h = Historian(db)
    fill(h, samples)
    h.close()
    _downgrade_to_2(db)
    want = expected(samples, 0.0, 100_000.0, 100)

    with HistoryReader(db) as reader:  # read-only: no upgrade, the samples answer
        assert reader.minmax("x", 0.0, 100_000.0, 100) == expected(
            samples, 0.0, 100_000.0, 100, rollup=False
        )
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()

    h = Historian(db)  # a writer upgrades: the rollup is built from the samples there
    try:
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA user_version").fetchone()[0] == 3
            assert con.execute("SELECT sum(n) FROM sample_rollup").fetchone()[0] == len(samples)
        finally:
            con.close()
        assert h.minmax("x", 0.0, 100_000.0, 100) == want
        h.record("x", 1000.0, time_s=100_000.0)  # later samples fold in
        h.flush()
        got = h.minmax("x", 0.0, 100_000.0, 100)
    finally:
        h.close()
    assert got == expected([*samples, (100_000.0, 1000.0)], 0.0, 100_000.0, 100)
