"""The end-of-run summary: phase timeline and alarms by name from the historian, doses and final
volume, the timing lines; and the progress line of ``edgectl run`` (on a terminal only)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edgectl.config import to_toml_text
from edgectl.errors import ConfigError
from edgectl.historian import Historian, HistoryReader, Quality
from edgectl.runtime.build import open_run
from edgectl.runtime.reactor_config import FeedLoop, load_reactor_config
from edgectl.runtime.recipe import Phase, Recipe
from edgectl.runtime.summary import (
    AlarmSpan,
    PhaseSpan,
    Volume,
    alarm_spans,
    culture_end_s,
    culture_run_uids,
    format_summary,
    loop_figures,
    phase_timeline,
    sampled_volume_ml,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
BASE_S = 1_000_000.0  # historian time of clock 0
INFO = {
    "name": "r",
    "scans": 100,
    "overruns": 3,
    "lateness_ms": {"p50_ms": 0.1, "p99_ms": 0.5, "max_ms": 1.667, "mean_ms": 0.2},
}


def synthetic(path: Path) -> Historian:
    """A historian of one culture: batch → fed-batch at 1.5 h, harvest at 3 h; do_low twice
    (the second still active), temp_high once, acknowledged; two 5 mL samples."""
    h = Historian(path)
    h.start_run(config_hash="sha256:x", time_s=BASE_S)
    ev = h.record_event
    ev("start", "r: started (fresh)", source="run", time_s=BASE_S)
    ev("phase", "batch → fed-batch: condition do_pct > 60", source="recipe", time_s=BASE_S + 5400)
    ev("sample", "at-line OD and HPLC: 5 mL", source="recipe", time_s=BASE_S + 5400)
    ev("sample", "at-line OD and HPLC: 5 mL", source="recipe", time_s=BASE_S + 9000)
    ev("phase", "fed-batch → harvest: operator request", source="recipe", time_s=BASE_S + 10800)
    al = h.record_alarm
    al("do_low", "raise", severity="low", time_s=BASE_S + 1800)
    al("temp_high", "raise", severity="medium", time_s=BASE_S + 2000)
    al("temp_high", "ack", severity="medium", actor="alice", time_s=BASE_S + 2100)
    al("do_low", "clear", severity="low", time_s=BASE_S + 2160)
    al("temp_high", "clear", severity="medium", time_s=BASE_S + 2400)
    al("do_low", "raise", severity="low", time_s=BASE_S + 12000)
    h.flush()
    return h


def test_phase_timeline_and_alarms_from_a_historian(tmp_path: Path) -> None:
    with synthetic(tmp_path / "h.db") as h:
        events = h.events(BASE_S)
        phases = phase_timeline(events, BASE_S, 12600.0, "harvest")
        spans = alarm_spans(h.alarms(BASE_S), BASE_S)
        assert culture_run_uids(h.runs()) == {h.run_uid}
    assert [(p.phase, p.start_s, p.duration_s, p.running) for p in phases] == [
        ("batch", 0.0, 5400.0, False),
        ("fed-batch", 5400.0, 5400.0, False),
        ("harvest", 10800.0, 1800.0, True),
    ]
    assert phases[1].reason == "condition do_pct > 60"
    assert spans == [
        AlarmSpan("do_low", "low", 1800.0, 2160.0),
        AlarmSpan("temp_high", "medium", 2000.0, 2400.0),
        AlarmSpan("do_low", "low", 12000.0, None),
    ]
    assert sampled_volume_ml(events) == 10.0

    text = format_summary(
        {},
        INFO,
        {"doses": "feed_ml_min 120.0 mL"},
        phases=phases,
        alarms=spans,
        volume=Volume(2.0, 130.0, 10.0, plant_l=2.115),
    )
    lines = text.splitlines()
    assert "  phase     batch        from 0.000 h for 1.500 h  (start)" in lines
    assert "  phase     fed-batch    from 1.500 h for 1.500 h  (condition do_pct > 60)" in lines
    assert "  phase     harvest      from 3.000 h for 0.500 h, at end  (operator request)" in lines
    assert "  alarms                 3 raised, 2 distinct (times in h)" in lines
    do_low = next(ln for ln in lines if ln.startswith("  alarm     do_low"))
    assert do_low.split()[2:] == ["low", "2×", "0.500–0.600,", "3.333–active", "at", "end"]
    temp = next(ln for ln in lines if ln.startswith("  alarm     temp_high"))
    assert temp.split()[2:] == ["medium", "1×", "0.556–0.667"]
    volume = next(ln for ln in lines if ln.startswith("  final volume"))
    assert volume.split()[2:4] == ["2.120", "L"]  # 2 L + 130 mL − 10 mL
    assert "simulated plant 2.115 L" in volume
    # no timing mapping: the scheduler's lateness from info, as before
    assert "p99 0.500 ms, max 1.667 ms over 100 scans, 3 overruns" in text


def test_many_intervals_of_one_alarm_are_cut_short() -> None:
    spans = [AlarmSpan("foam", "low", 100.0 * i, 100.0 * i + 10) for i in range(10)]
    text = format_summary({}, INFO, {}, alarms=spans)
    [row] = [ln for ln in text.splitlines() if ln.startswith("  alarm     foam")]
    assert "10×" in row
    assert row.endswith("… 6 more")
    assert "  alarms                 none" in format_summary({}, INFO, {}, alarms=[])


def test_timing_mapping_replaces_the_lateness_line() -> None:
    timing = {
        "lateness_ms": {"p50_ms": 0.2, "p99_ms": 3.25, "max_ms": 12.5},
        "scans": 14401,
        "overruns": 2,
        "held_wall_s": 4.25,
        "held_by": {"scan": 3.0, "emulators": 1.25},
        "achieved_speed": 512.3,
        "requested_speed": 600.0,
    }
    lines = format_summary({}, INFO, {}, timing).splitlines()
    assert lines[1:] == [
        "  scan lateness          p50 0.200 ms, p99 3.250 ms, max 12.500 ms over 14401 scans, "
        "2 overruns",
        "  clock held             4.2 s (scan 3.0 s, emulators 1.2 s)",
        "  achieved speed         512.3x (requested 600x)",
    ]
    # each line only with its keys: an unpaced run has no held time
    only_speed = format_summary({}, INFO, {}, {"achieved_speed": 1.0}).splitlines()
    assert only_speed[1:] == ["  achieved speed         1.0x"]


def test_a_short_run_summary_names_phases_and_alarms(tmp_path: Path) -> None:
    """The example with batch → fed-batch after 600 s and a DO alarm that must raise."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["recipe"]["phases"][0]["transitions"] = [{"to": "fed-batch", "after_s": 600.0}]
    data["alarms"]["do_low"].update(limit=200.0, delay_s=60.0)  # DO is always below 200 %
    config = tmp_path / "reactor.toml"
    config.write_text(to_toml_text(data), encoding="utf-8")
    run = open_run(config, speed=1200.0, db=tmp_path / "r.db", socket_path=tmp_path / "r.sock")
    try:
        run.run(1200.0)
        text = run.summary()
    finally:
        run.close()
    lines = text.splitlines()
    batch = next(ln for ln in lines if ln.startswith("  phase     batch"))
    fed = next(ln for ln in lines if ln.startswith("  phase     fed-batch"))
    assert "from 0.000 h" in batch
    assert "(start)" in batch
    m = re.search(r"from (\d+\.\d+) h for (\d+\.\d+) h, at end  \(600 s in phase\)", fed)
    assert m, fed
    assert float(m.group(1)) == pytest.approx(600.0 / 3600.0, abs=0.002)
    assert float(m.group(1)) + float(m.group(2)) == pytest.approx(1200.0 / 3600.0, abs=0.002)
    do_low = next(ln for ln in lines if ln.startswith("  alarm     do_low"))
    raised = float(do_low.split()[4].split("–")[0])
    assert 60.0 / 3600.0 <= raised <= 0.05  # after its 60 s delay
    assert do_low.endswith("active at end")
    volume = next(ln for ln in lines if ln.startswith("  final volume"))
    assert "5.0 mL sampled" in volume  # the fed-batch phase samples on entry
    assert "simulated plant" in volume


def test_a_culture_ends_in_its_end_phase_and_is_judged_before_it(tmp_path: Path) -> None:
    """``--until-end``: batch → fed-batch after 600 s → harvest after 600 s more; the run stops
    there, records the end, and the loops are judged on the samples before the harvest."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert data["recipe"]["end"] == "harvest"
    phases = data["recipe"]["phases"]
    phases[0]["transitions"] = [{"to": "fed-batch", "after_s": 600.0}]
    phases[1]["transitions"] = [{"to": "harvest", "after_s": 600.0}]
    for loop in ("temp", "ph", "do"):
        data["loops"][loop]["acceptance"]["settle_s"] = 300.0
    config = tmp_path / "reactor.toml"
    config.write_text(to_toml_text(data), encoding="utf-8")
    db = tmp_path / "r.db"
    run = open_run(config, speed=2400.0, db=db, socket_path=tmp_path / "r.sock")
    try:
        run.run(7200.0, until_end=True)  # the end phase stops it long before 2 h
        assert run.controller.recipe is not None
        assert run.controller.recipe.phase_name == "harvest"
        assert run.controller.stop_reason.startswith("culture ended (harvest: 600 s in phase)")
        end_clock_s = run.controller.now_s
        figures = run.figures()
    finally:
        run.close()
    assert 1200.0 <= end_clock_s <= 1210.0
    with Historian(db) as h:
        [ended] = h.events(kind="culture")
        assert ended.message == "culture ended: 600 s in phase"
        base = h.runs()[0].started_s
        cfg = load_reactor_config(config)
        assert culture_end_s(h, cfg, base) == pytest.approx(ended.time_s)
        # judged from settle_s (300 s) to the end (1200 s): 10 s sampling, about 90 samples
        n = len(h.samples("temp_c", base + 300.0, ended.time_s).good())
        assert figures["temp"].n_samples == n
        assert 80 <= n <= 95
    # a config without an end phase cannot run --until-end: a config error naming the key
    del data["recipe"]["end"]
    config.write_text(to_toml_text(data), encoding="utf-8")
    run = open_run(config, speed=2400.0, db=tmp_path / "r2.db", socket_path=tmp_path / "r2.sock")
    try:
        with pytest.raises(ConfigError, match=r"\$\.recipe\.end: not set"):
            run.run(600.0, until_end=True)
    finally:
        run.close()


def test_the_end_phase_must_be_a_later_phase() -> None:
    phases = [{"name": "batch"}, {"name": "harvest"}]
    with pytest.raises(ValueError, match="end: unknown phase 'done'"):
        Recipe(phases=[Phase(**p) for p in phases], end="done")
    with pytest.raises(ValueError, match="'batch' is the phase the culture starts in"):
        Recipe(phases=[Phase(**p) for p in phases], end="batch")
    assert Recipe(phases=[Phase(**p) for p in phases], end="harvest").end == "harvest"


def test_a_pv_not_good_after_settling_is_counted_and_named(tmp_path: Path) -> None:
    """Samples that are not GOOD are not judged, but their share is reported: a soft sensor out
    of model for days must not pass as a loop inside its band."""
    cfg = load_reactor_config(ROOT / "examples" / "cho-fedbatch-2L.toml")
    loop = cfg.loops["glucose"]
    assert isinstance(loop, FeedLoop)
    acc = loop.acceptance
    assert acc is not None
    h = Historian(tmp_path / "g.db")
    h.start_run(config_hash="sha256:x", time_s=BASE_S)
    # the other loops: tags without samples (not judged)
    for name, pv in (("temp", "temp_c"), ("ph", "ph"), ("do", "do_pct")):
        h.register_tag(f"{name}.sp")
        h.register_tag(pv)
    t_settled = BASE_S + acc.settle_s
    for i in range(200):  # after settling: 150 GOOD inside the band, then 50 BAD far off
        t = t_settled + 60.0 * i
        h.record("glucose.sp", 2.5, t)
        if i < 150:
            h.record("glucose_g_l", 2.5 + 0.1 * acc.band, t)
        else:
            h.record("glucose_g_l", 9.0, t, Quality.BAD)
    h.record("glucose_g_l", 9.0, BASE_S + 60.0)  # before settling: not counted at all
    h.flush()
    h.close()
    with HistoryReader(tmp_path / "g.db") as reader:
        f = loop_figures(reader, cfg, BASE_S)["glucose"]
    assert f.ok
    assert f.n_samples == 150
    assert f.good_fraction == pytest.approx(0.75)
    lines = format_summary({"glucose": f}, INFO, {}).splitlines()
    row = lines.index(next(ln for ln in lines if ln.startswith("  glucose")))
    assert "PASS" in lines[row]
    assert lines[row + 1].strip() == (
        "glucose_g_l not GOOD in 25.0 % of the samples after settling: not judged"
    )
    # a PV GOOD throughout has no such line
    full = dataclasses.replace(f, good_fraction=1.0)
    assert len(format_summary({"glucose": full}, INFO, {}).splitlines()) == row + 1


def test_phase_span_of_a_run_without_recipe_changes() -> None:
    assert phase_timeline([], BASE_S, 7200.0, "batch") == [
        PhaseSpan("batch", 0.0, 7200.0, "", running=True)
    ]
    assert phase_timeline([], BASE_S, 7200.0, "") == []


# -- the progress line -------------------------------------------------------------------------


def _run_argv(tmp_path: Path, speed: str, hours: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edgectl.cli",
        "run",
        str(EXAMPLE),
        "--speed",
        speed,
        "--duration",
        hours,
        "--db",
        str(tmp_path / "p.db"),
        "--socket",
        str(tmp_path / "p.sock"),
    ]


PROGRESS = re.compile(
    r"\rbatch  (\d+\.\d\d) h  T \d+\.\d\d  pH \d+\.\d\d  DO \d+\.\d  feed 0\.000 mL/min  "
    r"(\d+)x of 1200x"
)


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    """Half an hour at 1200x lasts at least 1.5 wall seconds: at least one full progress line
    (the first, drawn at once, has no readings yet and no speed)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            _run_argv(tmp_path, "1200", "0.5"),
            stdout=slave,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200"},
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, err
    finally:
        os.close(master)
    out = b"".join(chunks).decode()
    found = PROGRESS.findall(out)
    assert found, out
    hours = [float(h) for h, _ in found]
    assert hours == sorted(hours)
    assert 0.0 < hours[-1] <= 0.5
    assert all(0 < int(x) <= 1200 * 1.1 for _, x in found)  # achieved speed, never above asked
    # the line is erased before the summary, which starts on a clean line
    assert re.search(r"\r +\rrun summary: ecoli-2L", out), out[-2000:]


def test_no_progress_off_a_terminal(tmp_path: Path) -> None:
    proc = subprocess.run(
        _run_argv(tmp_path, "3600", "0.1"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout
    assert "x of" not in proc.stdout
    assert proc.stdout.splitlines()[1] == "run summary: ecoli-2L"
    assert proc.stdout.splitlines()[-1].startswith("  wall time")
