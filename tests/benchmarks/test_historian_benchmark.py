"""pytest-benchmark: the historian's scan-thread append and its one-second commit at 40 tags.

Disabled by default (``--benchmark-disable`` in addopts: each runs once as a test); ``make
bench`` times them. ``historian_bench.py`` beside this file prints appends/s and bytes/sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl.historian import Historian

N_TAGS = 40
VALUES = {f"tag_{i:02d}": 37.0 + i * 0.01 for i in range(N_TAGS)}


@pytest.fixture
def hist(tmp_path: Path) -> Iterator[Historian]:
    h = Historian(tmp_path / "bench.db", commit_interval_s=3600.0, max_pending=10_000_000)
    yield h
    h.close()


def test_record_scan_40_tags(benchmark, hist: Historian) -> None:  # type: ignore[no-untyped-def]
    """What one scan pays to historise 40 tags (queue append only)."""
    clock = itertools.count()

    def scan() -> None:
        hist.record_scan(float(next(clock)) * 0.1, VALUES)

    benchmark(scan)
    hist.flush()
    n_scans = next(clock)
    assert hist.count("sample") == n_scans * N_TAGS
    assert hist.samples("tag_00").times_s[-1] == (n_scans - 1) * 0.1


def test_commit_one_second_at_10_hz(benchmark, hist: Historian) -> None:  # type: ignore[no-untyped-def]
    """The writer's commit of one second of a 40-tag, 10 Hz run (400 samples)."""
    clock = itertools.count()

    def setup() -> None:
        for _ in range(10):
            hist.record_scan(float(next(clock)) * 0.1, VALUES)

    benchmark.pedantic(hist.flush, setup=setup, rounds=50)
    assert hist.count("sample") == next(clock) * N_TAGS
    assert hist.writer_stats().n_pending == 0
