"""Historian: round trips, batching, WAL, bad inputs, state store, queries, export, concurrency."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.config import decode_mapping
from edgectl.errors import ConfigError, EdgectlError, InvalidInputError
from edgectl.historian import (
    Historian,
    HistorianError,
    HistorianSettings,
    HistoryReader,
    Quality,
    config_hash,
    export_csv,
)

# A commit interval long enough that the writer never commits on its own during a test:
# only flush()/close() commit, so what is visible when is deterministic.
NEVER_S = 3600.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "reactor.db"


@pytest.fixture
def hist(db: Path) -> Iterator[Historian]:
    h = Historian(db, commit_interval_s=NEVER_S)
    yield h
    h.close()


def wait_until(predicate, timeout_s: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# -- round trips ----------------------------------------------------------------------------------


def test_samples_round_trip_through_a_reopened_file(db: Path) -> None:
    times = 1_700_000_000.0 + np.arange(50) * 0.1
    with Historian(db, commit_interval_s=NEVER_S) as h:
        h.register_tag("temp_c", unit="°C", description="vessel temperature")
        for i, t in enumerate(times):
            h.record_scan(float(t), {"temp_c": 37.0 + i * 1e-3, "ph": (7.0, Quality.UNCERTAIN)})
    with HistoryReader(db) as r:
        temp = r.samples("temp_c")
        np.testing.assert_array_equal(temp.times_s, times)
        np.testing.assert_array_equal(temp.values, 37.0 + np.arange(50) * 1e-3)
        assert temp.quality.tolist() == [0] * 50
        ph = r.samples("ph")
        assert ph.quality.tolist() == [int(Quality.UNCERTAIN)] * 50
        assert [(t.name, t.unit, t.description) for t in r.tags()] == [
            ("ph", "", ""),
            ("temp_c", "°C", "vessel temperature"),
        ]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(list(Quality)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_finite_sample_reads_back_bit_exact(rows: list[tuple[float, float, Quality]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with Historian(Path(tmp) / "h.db", commit_interval_s=NEVER_S) as h:
            for t, v, q in rows:
                h.record("x", v, t, q)
            h.flush()
            s = h.samples("x")
        expected = sorted(enumerate(rows), key=lambda e: (e[1][0], e[0]))
        assert s.times_s.tolist() == [r[0] for _, r in expected]
        assert s.values.tolist() == [r[1] for _, r in expected]
        assert s.quality.tolist() == [int(r[2]) for _, r in expected]


@pytest.mark.parametrize(
    ("value", "quality", "stored_quality"),
    [
        (math.nan, Quality.GOOD, Quality.BAD),
        (math.inf, Quality.GOOD, Quality.BAD),
        (-math.inf, Quality.UNCERTAIN, Quality.BAD),
        (math.nan, Quality.STALE, Quality.STALE),
        (math.nan, Quality.BAD, Quality.BAD),
    ],
)
def test_non_finite_values_are_recorded_as_missing_with_bad_quality(
    hist: Historian, value: float, quality: Quality, stored_quality: Quality
) -> None:
    hist.record("do_pct", 41.0, 1.0)
    hist.record("do_pct", value, 2.0, quality)
    hist.flush()
    s = hist.samples("do_pct")
    assert s.values[0] == 41.0
    assert math.isnan(s.values[1])
    assert s.quality.tolist() == [0, int(stored_quality)]
    assert hist.latest()["do_pct"].quality is stored_quality
    stats = hist.stats("do_pct")
    assert (stats.n_samples, stats.n_good, stats.mean) == (2, 1, 41.0)


def test_quality_accepts_enum_code_and_name(hist: Historian) -> None:
    hist.record("t", 1.0, 1.0, Quality.STALE)
    hist.record("t", 1.0, 2.0, 1)
    hist.record("t", 1.0, 3.0, "bad")
    hist.record("t", 1.0, 4.0, np.int64(0).item())
    hist.flush()
    assert hist.samples("t").quality.tolist() == [3, 1, 2, 0]


def test_numpy_scalars_are_accepted(hist: Historian) -> None:
    hist.record("t", np.float32(1.5), np.float64(10.0))
    hist.record("t", np.int64(2), 11)
    hist.record("t", True, 12.0)
    hist.flush()
    assert hist.samples("t").values.tolist() == [1.5, 2.0, 1.0]


# -- batching, WAL, durability settings -----------------------------------------------------------


def test_database_is_in_wal_mode_and_tagged_as_historian(hist: Historian, db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x45444748
        assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        con.close()


def test_appends_are_invisible_until_commit_then_all_visible(hist: Historian, db: Path) -> None:
    reader = HistoryReader(db)
    try:
        for i in range(500):
            hist.record("temp_c", 37.0, float(i))
        assert reader.count("sample") == 0
        assert hist.writer_stats().n_pending == 500
        hist.flush()
        assert reader.count("sample") == 500
        stats = hist.writer_stats()
        assert (stats.n_pending, stats.n_committed, stats.n_commits) == (0, 500, 1)
    finally:
        reader.close()


def test_writer_commits_on_its_own_every_interval(db: Path) -> None:
    with Historian(db, commit_interval_s=0.05) as h, HistoryReader(db) as r:
        for i in range(100):
            h.record("temp_c", 37.0, float(i))
        assert wait_until(lambda: r.count("sample") == 100)
        h.record("temp_c", 37.0, 100.0)
        assert wait_until(lambda: r.count("sample") == 101)
        assert h.writer_stats().n_commits >= 2


def test_appends_do_not_wait_for_a_locked_database(hist: Historian, db: Path) -> None:
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer cannot commit
    try:
        for i in range(2000):
            hist.record("temp_c", 37.0, float(i))
        hist.record_event("phase", "batch", time_s=1.0)
        hist.save_state("ctl", {"i": 1})
        assert hist.writer_stats().n_appended == 2002
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    hist.flush()
    assert hist.count("sample") == 2000


def test_overflow_drops_new_items_counts_them_and_records_an_event(db: Path) -> None:
    with Historian(db, commit_interval_s=NEVER_S, max_pending=10, spill_max_bytes=0) as h:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit: the queue fills
        try:
            for i in range(15):
                h.record("temp_c", float(i), float(i))
            assert h.writer_stats().n_dropped == 5
            # a loss is a failure at once, on the caller's thread (the controller's alarm)
            assert h.health().state == "failed"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        h.flush()
        assert h.samples("temp_c").values.tolist() == [float(i) for i in range(10)]
        overflow = h.events(kind="historian.overflow")
        assert len(overflow) == 1
        assert "5 items dropped" in overflow[0].message


def test_a_loss_stays_failed_for_the_hold_time_then_clears(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgectl.historian._writer as writer

    monkeypatch.setattr(writer, "LOSS_HOLD_S", 0.2)
    states: list[str] = []
    with Historian(
        db,
        commit_interval_s=0.05,
        max_pending=10,
        spill_max_bytes=0,
        on_health_change=lambda health: states.append(health.state),
    ) as h:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            for i in range(12):
                h.record("temp_c", 37.0, float(i))
            lost = h.health()
            assert lost.state == "failed"
            assert lost.n_dropped >= 2  # 12 into 10 places (the writer's own events take some)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert wait_until(lambda: h.health().state == "ok")
        assert "failed" in states
        assert states[-1] == "ok"
        assert h.health().n_dropped == lost.n_dropped  # the state clears, the count stays


def test_a_burst_wakes_the_writer_before_its_interval(db: Path) -> None:
    with Historian(db, commit_interval_s=NEVER_S, max_pending=100) as h, HistoryReader(db) as r:
        for i in range(25):  # a quarter of max_pending
            h.record("temp_c", 37.0, float(i))
        assert wait_until(lambda: r.count("sample") == 25)  # no flush, no interval elapsed


def test_a_burst_beyond_the_disk_is_counted_and_failed_never_silent(db: Path) -> None:
    """A healthy disk that cannot keep up with a burst (the fleet's replay found 200 000 of
    300 000 samples dropped with the health still "ok"): every sample is stored or counted,
    and any drop shows as a failed health, a health-change call and an overflow event."""
    states: list[str] = []
    n = 50_000
    with Historian(
        db,
        commit_interval_s=NEVER_S,
        max_pending=1000,
        on_health_change=lambda health: states.append(health.state),
    ) as h:
        for i in range(n):
            h.record("temp_c", 37.0, float(i))
    final = h.close()
    with HistoryReader(db) as r:
        stored = r.count("sample")
        overflow = r.events(kind="historian.overflow")
    assert stored + final.n_dropped == n
    if final.n_dropped:
        assert "failed" in states  # the writer's first look after a loss is always "failed"
        assert sum(int(e.message.split()[0]) for e in overflow) == final.n_dropped


def test_close_commits_everything_and_is_idempotent(db: Path) -> None:
    h = Historian(db, commit_interval_s=NEVER_S)
    h.start_run(config_hash="sha256:abc", config_path="ecoli.toml", time_s=100.0)
    for i in range(300):
        h.record("ph", 7.0, 100.0 + i)
    h.close()
    h.close()
    with HistoryReader(db) as r:
        assert r.count("sample") == 300
        (run,) = r.runs()
        assert (run.config_hash, run.config_path, run.started_s) == (
            "sha256:abc",
            "ecoli.toml",
            100.0,
        )
        assert run.stop_reason == "normal"
        assert run.stopped_s is not None
        assert [e.kind for e in r.events()] == ["run.start", "run.stop"]
    with pytest.raises(HistorianError, match="closed"):
        h.samples("ph")


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_both_durability_levels_write(db: Path, synchronous: str) -> None:
    with Historian(db, synchronous=synchronous) as h:
        h.record("x", 1.0, 1.0)
    with HistoryReader(db) as r:
        assert r.count("sample") == 1


# -- bad inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.record("temp_c", 37.0, math.nan), "time_s is not finite (got nan)"),
        (lambda h: h.record("temp_c", 37.0, math.inf), "time_s is not finite (got inf)"),
        (lambda h: h.record("temp_c", 37.0, "now"), "time_s must be a number of seconds"),
        (lambda h: h.record("temp_c", "37.0", 1.0), "value must be a number, got '37.0'"),
        (lambda h: h.record("temp_c", None, 1.0), "value must be a number, got None"),
        (lambda h: h.record("temp_c", 37.0, 1.0, 7), "unknown quality code 7"),
        (lambda h: h.record("temp_c", 37.0, 1.0, "excellent"), "unknown quality code 'excellent'"),
        (lambda h: h.record("temp_c", 37.0, 1.0, 1.5), "unknown quality code 1.5"),
        (lambda h: h.record("temp c", 37.0, 1.0), "tag name 'temp c' is not valid"),
        (lambda h: h.record("", 37.0, 1.0), "tag name '' is not valid"),
        (lambda h: h.record_scan(1.0, {"ok": 1.0, "bad": "x"}), "sample of 'bad'"),
        (lambda h: h.record_scan(math.nan, {"ok": 1.0}), "record_scan: time_s is not finite"),
        (lambda h: h.record_event("", "msg", time_s=1.0), "kind must not be empty"),
        (
            lambda h: h.record_event("note", "m", time_s=1.0, details={"x": object()}),
            "details are not JSON-serialisable",
        ),
        (
            lambda h: h.record_alarm("temp_high", "fire", severity="high", time_s=1.0),
            "transition must be one of raise, clear, ack, got 'fire'",
        ),
        (
            lambda h: h.record_alarm("temp_high", "raise", severity="urgent", time_s=1.0),
            "severity must be one of info, low, medium, high, critical, got 'urgent'",
        ),
        (lambda h: h.save_state("ctl", object()), "neither bytes nor JSON-serialisable"),
        (lambda h: h.save_state("ctl", 1, time_s=math.inf), "time_s is not finite"),
    ],
)
def test_bad_input_raises_a_clear_error_and_loses_nothing(hist: Historian, call, message) -> None:  # type: ignore[no-untyped-def]
    hist.record("temp_c", 36.5, 0.5)
    hist.flush()
    hist.record("temp_c", 36.6, 0.75)  # queued, not yet committed
    before = hist.writer_stats().n_appended
    with pytest.raises(InvalidInputError) as info:
        call(hist)
    assert message in str(info.value)
    assert isinstance(info.value, EdgectlError)
    assert hist.writer_stats().n_appended == before  # nothing of the bad call was queued
    hist.flush()
    assert hist.samples("temp_c").values.tolist() == [36.5, 36.6]
    assert hist.count("sample") == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"commit_interval_s": 0.0}, "commit_interval_s must be > 0"),
        ({"commit_interval_s": math.nan}, "not finite"),
        ({"max_pending": 0}, "max_pending must be an int >= 1"),
        ({"synchronous": "OFF"}, "synchronous must be 'NORMAL' or 'FULL', got 'OFF'"),
    ],
)
def test_bad_historian_settings_are_refused(db: Path, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Historian(db, **kwargs)


def test_foreign_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE foo (x)")
    con.commit()
    con.close()
    with pytest.raises(HistorianError, match=r"other\.db: a SQLite database, but not an edgectl"):
        Historian(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(HistorianError, match=r"notes\.txt: not a SQLite database"):
        Historian(text)
    with pytest.raises(HistorianError, match=r"missing\.db: historian database not found"):
        HistoryReader(tmp_path / "missing.db")


def test_newer_schema_version_is_refused(db: Path) -> None:
    Historian(db).close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(HistorianError, match="schema version 99 is newer"):
        HistoryReader(db)


def test_unknown_tag_query_names_the_known_tags(hist: Historian) -> None:
    hist.record("temp_c", 37.0, 1.0)
    hist.flush()
    with pytest.raises(InvalidInputError, match=r"unknown tag 'temp' \(known: temp_c\)"):
        hist.samples("temp")


# -- queries --------------------------------------------------------------------------------------


def test_latest_range_trend_and_stats(hist: Historian) -> None:
    for i in range(100):
        hist.record_scan(float(i), {"temp_c": 36.0 + (i % 10) * 0.2, "ph": 7.0 + i * 0.001})
    hist.flush()
    latest = hist.latest()
    assert latest["temp_c"].value == pytest.approx(36.0 + 9 * 0.2)
    assert latest["ph"].time_s == 99.0
    assert set(hist.latest(["ph"])) == {"ph"}
    window = hist.samples("ph", 10.0, 19.0)
    assert window.times_s.tolist() == [float(i) for i in range(10, 20)]
    trend = hist.trend("ph", 5.0)
    assert trend.times_s.tolist() == [94.0, 95.0, 96.0, 97.0, 98.0, 99.0]
    assert hist.trend("ph", 5.0, now_s=50.0).times_s.tolist() == [
        45.0,
        46.0,
        47.0,
        48.0,
        49.0,
        50.0,
    ]
    stats = hist.stats("temp_c", 20.0, 39.0)
    assert (stats.n_samples, stats.n_good) == (20, 20)
    assert stats.min == pytest.approx(36.0)
    assert stats.max == pytest.approx(37.8)
    assert stats.mean == pytest.approx(36.9)
    assert stats.std == pytest.approx(np.std(36.0 + np.arange(10) * 0.2))
    assert (stats.first_time_s, stats.last_time_s) == (20.0, 39.0)
    assert hist.fraction_within("temp_c", 36.0, 36.5) == pytest.approx(0.3)
    empty = hist.stats("temp_c", 1000.0, 2000.0)
    assert empty.n_samples == 0
    assert math.isnan(empty.mean)
    with pytest.raises(InvalidInputError, match="trend last_s must be > 0"):
        hist.trend("ph", 0.0)


def test_events_and_alarms_in_a_range(hist: Historian) -> None:
    uid = hist.start_run(config_hash="h", time_s=0.0)
    hist.record_event(
        "phase",
        "batch → fed-batch",
        source="recipe",
        time_s=10.0,
        details={"from": "batch", "to": "fed-batch"},
    )
    hist.record_event("device.fault", "pump-a: no reply", source="pump-a", time_s=20.0)
    hist.record_alarm(
        "temp_high",
        "raise",
        severity="high",
        message="T > 38 °C",
        tag="temp_c",
        value=38.3,
        time_s=30.0,
    )
    hist.record_alarm("temp_high", "ack", severity="high", actor="alice", time_s=31.0)
    hist.record_alarm("do_low", "raise", severity="medium", value=math.nan, time_s=32.0)
    hist.record_alarm("temp_high", "clear", severity="high", value=37.9, time_s=40.0)
    hist.flush()
    phases = hist.events(5.0, 15.0)
    assert [(e.kind, e.source, e.details, e.run_uid) for e in phases] == [
        ("phase", "recipe", {"from": "batch", "to": "fed-batch"}, uid)
    ]
    assert [e.message for e in hist.events(source="pump-a")] == ["pump-a: no reply"]
    temp = hist.alarms(name="temp_high")
    assert [(a.transition, a.time_s, a.value, a.actor) for a in temp] == [
        ("raise", 30.0, 38.3, None),
        ("ack", 31.0, None, "alice"),
        ("clear", 40.0, 37.9, None),
    ]
    assert [a.name for a in hist.alarms(30.5, 35.0)] == ["temp_high", "do_low"]
    assert list(hist.active_alarms()) == ["do_low"]
    assert hist.active_alarms()["do_low"].value is None


# -- state store ----------------------------------------------------------------------------------


def test_state_store_keeps_the_latest_snapshot_per_name(db: Path) -> None:
    with Historian(db, commit_interval_s=NEVER_S) as h:
        assert h.load_state("controller") is None
        assert h.load_state("controller", default={}) == {}
        for scan in range(5):
            h.save_state("controller", {"phase": "fed-batch", "scan": scan, "i": [0.1, 0.2]})
        h.save_state("pid.ph", b"\x00\x01binary\xff")
        # Read-your-writes before the commit.
        assert h.load_state("controller")["scan"] == 4
        h.flush()
    with HistoryReader(db) as r:
        assert r.load_state("controller") == {"phase": "fed-batch", "scan": 4, "i": [0.1, 0.2]}
        assert r.load_state("pid.ph") == b"\x00\x01binary\xff"
        assert r.state_names() == ["controller", "pid.ph"]
        assert r.count("state") == 2
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM state WHERE name='controller'").fetchone()[0] == 1
    con.close()
    with Historian(db, commit_interval_s=NEVER_S) as h:
        h.save_state("controller", {"scan": 5})
        h.flush()
        assert h.load_state("controller") == {"scan": 5}
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM state WHERE name='controller'").fetchone()[0] == 2
    con.close()


def test_state_snapshot_commits_together_with_the_samples_before_it(
    hist: Historian, db: Path
) -> None:
    for i in range(10):
        hist.record("temp_c", 37.0, float(i))
    hist.save_state("controller", {"last_scan_s": 9.0})
    with HistoryReader(db) as r:
        assert r.load_state("controller") is None
        assert r.count("sample") == 0
        hist.flush()
        assert r.load_state("controller") == {"last_scan_s": 9.0}
        assert r.count("sample") == 10


# -- export ---------------------------------------------------------------------------------------


@pytest.fixture
def filled(hist: Historian) -> Historian:
    for i in range(5):
        hist.record_scan(100.0 + i, {"temp_c": 37.0 + i / 10, "ph": 7.0})
    hist.record("do_pct", math.nan, 102.0)
    hist.record("do_pct", 40.5, 103.5)
    hist.flush()
    return hist


def test_export_long_is_lossless(filled: Historian) -> None:
    out = io.StringIO()
    n = export_csv(filled, out, layout="long")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert n == len(rows) == 12
    assert rows[0] == {
        "time_s": "100.0",
        "time_utc": "1970-01-01T00:01:40.000Z",
        "tag": "ph",
        "value": "7.0",
        "quality": "good",
    }
    do = [r for r in rows if r["tag"] == "do_pct"]
    assert [(r["time_s"], r["value"], r["quality"]) for r in do] == [
        ("102.0", "", "bad"),
        ("103.5", "40.5", "good"),
    ]
    temps = [float(r["value"]) for r in rows if r["tag"] == "temp_c"]
    assert temps == filled.samples("temp_c").values.tolist()


def test_export_wide_has_one_row_per_time(filled: Historian, tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    n = export_csv(
        filled, path, tags=["temp_c", "do_pct"], start_s=101.0, end_s=104.0, layout="wide"
    )
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["time_s", "time_utc", "temp_c", "do_pct"]
    assert [r[0:1] + r[2:] for r in rows[1:]] == [
        ["101.0", "37.1", ""],
        ["102.0", "37.2", ""],
        ["103.0", "37.3", ""],
        ["103.5", "", "40.5"],
        ["104.0", "37.4", ""],
    ]
    assert n == 5


def test_export_refuses_unknown_tags_and_layouts(filled: Historian) -> None:
    with pytest.raises(InvalidInputError, match="unknown tag 'nope'"):
        export_csv(filled, io.StringIO(), tags=["nope"])
    with pytest.raises(InvalidInputError, match="layout must be one of long, wide"):
        export_csv(filled, io.StringIO(), layout="parquet")


# -- concurrency ----------------------------------------------------------------------------------


def test_readers_query_while_the_writer_appends(db: Path) -> None:
    n_scans = 400
    errors: list[BaseException] = []
    counts: list[list[int]] = [[], []]
    stop = threading.Event()

    with Historian(db, commit_interval_s=0.01) as h:
        h.record("temp_c", 37.0, -1.0)
        h.flush()

        def read(seen: list[int]) -> None:
            try:
                with HistoryReader(db) as r:
                    while not stop.is_set():
                        s = r.samples("temp_c")
                        seen.append(len(s))
                        # Committed data only, in time order.
                        assert np.all(np.diff(s.times_s) > 0)
                        assert r.latest()["temp_c"].time_s >= s.times_s[-1]
                        h.trend("temp_c", 10.0)  # the Historian's own per-thread reader
            except BaseException as exc:  # reported to the main thread
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(seen,)) for seen in counts]
        for t in threads:
            t.start()
        for i in range(n_scans):
            h.record_scan(float(i), {"temp_c": 37.0, "ph": 7.0})
            if i % 50 == 0:
                time.sleep(0.005)
        h.flush()
        assert wait_until(lambda: all(seen and seen[-1] == n_scans + 1 for seen in counts))
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    for seen in counts:
        assert seen == sorted(seen)  # each reader sees a growing history
        assert seen[-1] == n_scans + 1


# -- settings, config hash, exit --------------------------------------------------------------


def test_settings_decode_with_defaults_and_precise_errors(db: Path) -> None:
    settings = decode_mapping({"commit_interval_s": 0.5}, HistorianSettings, source="r.toml")
    assert (settings.path, settings.synchronous, settings.state_every_n_scans) == (
        "reactor.db",
        "NORMAL",
        10,
    )
    with Historian.from_settings(settings, path=db) as h:
        assert h.commit_interval_s == 0.5
        assert h.path == db
    with pytest.raises(ConfigError, match=r"r\.toml: .*\$\.commit_interval_s"):
        decode_mapping({"commit_interval_s": 0.0}, HistorianSettings, source="r.toml")
    with pytest.raises(ConfigError, match=r"r\.toml: .*synchronous"):
        decode_mapping({"synchronous": "OFF"}, HistorianSettings, source="r.toml")
    with pytest.raises(ConfigError, match=r"r\.toml: .*commit_every"):
        decode_mapping({"commit_every": 1}, HistorianSettings, source="r.toml")


def test_config_hash_is_sha256_of_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "reactor.toml"
    cfg.write_bytes(b"[historian]\npath = 'x.db'\n")
    assert config_hash(cfg) == "sha256:" + hashlib.sha256(cfg.read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read"):
        config_hash(tmp_path / "missing.toml")


def test_historian_left_open_commits_at_interpreter_exit(db: Path) -> None:
    code = (
        "import sys\n"
        "from edgectl.historian import Historian\n"
        "h = Historian(sys.argv[1], commit_interval_s=3600.0)\n"
        "h.start_run(time_s=0.0)\n"
        "for i in range(1000):\n"
        "    h.record('x', float(i), float(i))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=60)
    with HistoryReader(db) as r:
        assert r.count("sample") == 1000
        assert r.runs()[0].stop_reason == "interpreter exit"


def test_failed_commit_keeps_the_items_and_retries(hist: Historian, db: Path) -> None:
    hist.record("temp_c", 37.0, 1.0)
    hist.flush()
    con = sqlite3.connect(db, isolation_level=None)
    ddl = [
        r[0]
        for r in con.execute(
            "SELECT sql FROM sqlite_schema WHERE tbl_name = 'sample' ORDER BY type"
        )
    ]
    rows = con.execute("SELECT * FROM sample").fetchall()
    con.execute("DROP TABLE sample")  # the writer's next commit fails
    for i in range(2, 6):
        hist.record("temp_c", 37.0, float(i))
    # the 4 samples and the writer's own "historian.health" event (ok -> degraded)
    with pytest.raises(HistorianError, match=r"commit failed, 5 items kept \(5 in memory.*sample"):
        hist.flush()
    assert hist.writer_stats().n_pending == 5
    assert hist.health().state == "degraded"
    assert "no such table: sample" in str(hist.writer_stats().last_error)
    for sql in reversed(ddl):  # table first, then its index
        con.execute(sql)
    con.executemany("INSERT INTO sample VALUES (?, ?, ?, ?, ?)", rows)
    con.close()
    hist.flush()
    assert hist.samples("temp_c").times_s.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert hist.writer_stats().last_error is None


def test_close_reports_items_it_could_not_write(db: Path) -> None:
    h = Historian(db, commit_interval_s=NEVER_S)
    h.record("temp_c", 37.0, 1.0)
    h.flush()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("DROP TABLE sample")
    con.close()
    h.record("temp_c", 37.0, 2.0)
    health = h.close()  # no exception: the item waits in the spill file, counted
    assert health.state == "degraded"
    assert (health.n_pending, health.n_dropped) == (0, 0)
    assert health.n_spilled == 2  # the sample and the writer's own "historian.health" event
    assert "no such table: sample" in str(health.last_error)
