"""At-line references as first-class data: recipe samples of the CHO example analysed and fed
to the soft sensor's correction automatically, and ``edgectl sample add`` through the operator
service, each stored with sampling time, known time, analyser and who entered it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgectl.cli import main
from edgectl.errors import ConfigError
from edgectl.historian import HistoryReader
from edgectl.runtime.atline import AtLineAnalyser
from edgectl.runtime.build import open_run
from edgectl.runtime.recipe import Sampling

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cho-fedbatch-2L.toml"
SPEED = 3600.0


def _config(tmp_path: Path, *, correction: bool = True) -> Path:
    """The CHO example with absolute paths, a sample 10 min into the batch phase analysed 15 min
    later, and (optionally) the bias correction on the soft sensor."""
    text = EXAMPLE.read_text()
    ex = EXAMPLE.parent
    text = text.replace(
        'model = "models/cho-glucose.json"', f'model = "{ex}/models/cho-glucose.json"'
    )
    text = text.replace(
        'config = "cho-fedbatch-2L.plant.toml"', f'config = "{ex}/cho-fedbatch-2L.plant.toml"'
    )
    batch = 'name = "batch"\n'
    assert batch in text
    text = text.replace(
        batch,
        batch + "sampling = [{ every_s = 7200.0, first_s = 600.0, volume_ml = 2.0, "
        'analyse = { glucose = "glucose_g_l" }, result_delay_s = 900.0, analyser = "YSI" }]\n',
        1,
    )
    if correction:
        text = text.replace(
            'tag = "glucose_g_l"\nperiod_s = 300.0\n',
            'tag = "glucose_g_l"\nperiod_s = 300.0\ncorrection = { kind = "bias_kalman" }\n',
            1,
        )
        assert "bias_kalman" in text
    p = tmp_path / "cho.toml"
    p.write_text(text)
    return p


@pytest.mark.timeout(120)
def test_recipe_samples_feed_the_correction_automatically(tmp_path: Path) -> None:
    run = open_run(_config(tmp_path), speed=SPEED, db=tmp_path / "cho.db", serve_rpc=False)
    try:
        sampled_before = run.plant.balances()
        run.run(2400.0)
        block = run.controller.softsensors["glucose"]
        [ref] = block.references
        truth_taken = run.plant.balances()
    finally:
        run.close()
    assert ref["sampled_s"] == pytest.approx(600.0, abs=run.controller.cfg.reactor.scan_period_s)
    assert ref["known_s"] >= ref["sampled_s"] + 900.0
    assert ref["known_s"] < ref["sampled_s"] + 900.0 + 60.0
    assert ref["analyser"] == "YSI"
    assert ref["entered_by"] == "recipe"
    assert ref["accepted"] is True  # assimilated by the bias Kalman filter
    assert ref["estimate"] is not None
    assert 0.0 < ref["value"] < 10.0  # the plant's true glucose, g/L
    assert "error" in ref
    removed = {k: truth_taken[k] - sampled_before[k] for k in sampled_before}
    assert any(abs(v - 2.0) < 1e-9 for v in removed.values())  # the 2 mL left the vessel
    with HistoryReader(tmp_path / "cho.db") as reader:
        kinds = [(e.kind, e.source) for e in reader.events()]
        assert ("sample", "recipe") in kinds
        assert ("reference", "softsensors.glucose") in kinds
        recs = [a for a in reader.audit.records() if a.action == "recipe_reference"]
        assert len(recs) == 1
        assert recs[0].actor == "edgectl"
        assert recs[0].new_value["analyser"] == "YSI"
        assert reader.audit.verify().is_intact


def test_an_analysed_key_the_plant_does_not_measure_is_named() -> None:
    a = AtLineAnalyser(lambda ml: {"glucose_g_l": 3.0})
    step = Sampling(every_s=60.0, analyse={"glucose": "glucose_mm"}, label="daily")
    with pytest.raises(ConfigError, match=r"analyse\.glucose = 'glucose_mm'.*glucose_g_l"):
        a.sample(step, 0.0)
    ok = Sampling(every_s=60.0, analyse={"glucose": "glucose_g_l"}, result_delay_s=30.0)
    a.sample(ok, 10.0)
    assert a.due(39.0) == []
    [r] = a.due(40.0)
    assert (r.sensor, r.value, r.sampled_s, r.known_s) == ("glucose", 3.0, 10.0, 40.0)
    assert a.pending == []


def test_an_analysed_sensor_must_exist(tmp_path: Path) -> None:
    p = _config(tmp_path, correction=False)
    p.write_text(
        p.read_text().replace(
            'analyse = { glucose = "glucose_g_l" }, result_delay_s = 900.0',
            'analyse = { lactate = "lactate_mm" }, result_delay_s = 900.0',
            1,
        )
    )
    from edgectl.runtime.reactor_config import load_reactor_config

    with pytest.raises(ConfigError, match=r"sampling\[0\]\.analyse\.lactate: no soft sensor"):
        load_reactor_config(p)


@pytest.mark.timeout(60)
def test_sample_add_goes_through_the_operator_service(tmp_path: Path, capsys) -> None:
    sock = tmp_path / "cho.sock"
    cfg = _config(tmp_path, correction=False)
    run = open_run(cfg, speed=SPEED, db=tmp_path / "cho.db", socket_path=sock)
    try:
        run.run(1800.0)
        argv = ["sample", "add", str(sock), "--tag", "glucose_g_l", "--value", "3.1"]
        assert (
            main([*argv, "--taken-at", "1500", "--analyser", "YSI 2950", "--reason", "daily"]) == 0
        )
        out = json.loads(capsys.readouterr().out)
        assert out["sensor"] == "glucose"
        assert out["value"] == 3.1
        assert out["analyser"] == "YSI 2950"
        assert main([*argv[:4], "lactate_g_l", *argv[5:]]) == 2
        assert "no soft sensor with that name or tag" in capsys.readouterr().err
        ref = run.controller.softsensors["glucose"].references[-1]
    finally:
        run.close()
    assert ref["sampled_s"] == 1500.0
    assert ref["analyser"] == "YSI 2950"
    assert ref["entered_by"]  # the authenticated user, not a claimed name
    assert ref["known_s"] >= 1800.0
    with HistoryReader(tmp_path / "cho.db") as reader:
        [rec] = [a for a in reader.audit.records() if a.action == "add_reference"]
        assert rec.actor == ref["entered_by"]
        assert rec.new_value["analyser"] == "YSI 2950"
        assert rec.reason == "daily"


@pytest.mark.timeout(90)
def test_a_model_switch_is_signed_audited_and_restorable(tmp_path: Path, capsys) -> None:
    from edgectl.operator import RefusedError, UserStore
    from edgectl.remote import connect
    from edgectl.spectra import SoftSensor

    model = EXAMPLE.parent / "models" / "cho-glucose.json"
    doc = json.loads(model.read_text())
    doc["description"] = "recalibrated (test copy)"
    new = tmp_path / "cho-glucose-v1.json"
    new.write_text(json.dumps(doc))
    SoftSensor.load(new)  # a valid model file
    sock = tmp_path / "cho.sock"
    run = open_run(
        _config(tmp_path, correction=False), speed=SPEED, db=tmp_path / "cho.db", socket_path=sock
    )
    try:
        users = UserStore(tmp_path / "cho.users")
        users.add("eve", "engineer", "eve's password")
        users.add("otto", "operator", "otto's password")
        run.run(900.0)
        with (
            connect(sock, user="otto", password="otto's password") as r,
            pytest.raises(RefusedError, match="no right to 'model_switch'"),
        ):
            r.switch_model(
                "glucose", str(new), reason="x", meaning="approved", password="otto's password"
            )
        with connect(sock, user="eve", password="eve's password") as r:
            with pytest.raises(RefusedError, match="e-signature"):
                r.switch_model("glucose", str(new), reason="better in-line figures")
            with pytest.raises(RefusedError, match="wrong password"):
                r.switch_model("glucose", str(new), reason="x", meaning="approved", password="no")
            out = r.switch_model(
                "glucose",
                str(new),
                reason="better in-line figures",
                meaning="approved",
                password="eve's password",
            )
            assert out["version"] == 1
            run.run(1800.0)
            st = r.softsensors()["glucose"]
            assert st["model_version"] == 1
            assert st["last"]["model_version"] == 1
            back = r.switch_model(
                "glucose",
                0,
                reason="restore previous",
                meaning="approved",
                password="eve's password",
            )
            assert back["version"] == 0
            run.run(2700.0)
            assert r.softsensors()["glucose"]["model_version"] == 0
    finally:
        run.close()
    with HistoryReader(tmp_path / "cho.db") as reader:
        recs = [a for a in reader.audit.records() if a.action == "model_switch"]
        assert [(a.actor, a.new_value["version"], a.old_value["version"]) for a in recs] == [
            ("eve", 1, 0),
            ("eve", 0, 1),
        ]
        assert "e-signed by eve" in recs[0].reason
        assert recs[0].new_value["sha256"] != recs[0].old_value["sha256"]
        refused = [a for a in reader.audit.records() if a.action == "refused"]
        assert len(refused) == 3
        versions = reader.samples("glucose_g_l.model").values.tolist()
        assert versions[0] == 0
        assert 1 in versions
        assert versions[-1] == 0
        assert reader.audit.verify().is_intact
    assert main(["softsensor", "report", str(tmp_path / "cho.db"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["glucose"]
    assert rep["source"] == "run"
    assert [(w["from"], w["to"]) for w in rep["switches"]] == [(0, 1), (1, 0)]
    v1 = next(v for v in rep["versions"] if v["version"] == 1)
    assert v1["released_by"] == "eve"
    assert v1["estimates"] >= 1
    assert sum(v["estimates"] for v in rep["versions"]) == rep["n_estimates"]


def _drift_run(tmp_path: Path, name: str, fault: bool) -> list[tuple[float, str]]:
    """Six hours of the CHO example; with ``fault`` an interferent band appears at 2 h.
    Returns (time from start h, transition) of the ``glucose.drift`` alarm transitions."""
    db = tmp_path / f"{name}.db"
    run = open_run(_config(tmp_path, correction=False), speed=SPEED, db=db, serve_rpc=False)
    try:
        t0 = run.plant.time_s
        if fault:
            run.plant.inject_fault("spectral_interferent", start_s=t0 + 7200.0)
        run.run(6 * 3600.0)
    finally:
        run.close()
    with HistoryReader(db) as reader:
        start = reader.runs()[0].started_s
        return [
            ((a.time_s - start) / 3600.0, a.transition)
            for a in reader.alarms()
            if a.name == "glucose.drift"
        ]


@pytest.mark.timeout(180)
def test_drift_alarm_on_an_interferent_fault_not_on_a_clean_run(tmp_path: Path) -> None:
    assert _drift_run(tmp_path, "clean", fault=False) == []
    raised = _drift_run(tmp_path, "fault", fault=True)
    assert raised, "no drift alarm with the interferent"
    assert raised[0][1] == "raise"
    assert 2.0 <= raised[0][0] < 4.0
