"""The dashboard's recipe page against a real controller running the CHO example on the
simulated plant: the phase timeline, an operator transition and an at-line sample entered
through the operator service (authorised by role, bounded, audited, in the historian and in the
soft sensor's correction), and the refusals a viewer and bad input get from the server."""

from __future__ import annotations

import time
from pathlib import Path

from _web import Client, cho_config, dashboard
from edgectl.historian import HistoryReader

#: a liveness bound on a loaded machine, never a pass criterion
GUARD_S = 300.0


def _wait(cond: object, what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def test_recipe_page_timeline_transition_and_atline_sample(tmp_path: Path) -> None:
    with dashboard(tmp_path, make_config=cho_config) as d:
        ctl = d.run.controller
        block = ctl.softsensors["glucose"]
        # a sample drawn 10 min into the run, entered once the soft sensor has an estimate
        _wait(lambda: ctl.now_s > 900.0 and block.last is not None, "a glucose estimate")

        op = Client(d.url)
        op.login("olga")
        page = op.get("/recipe")
        assert page.status == 200
        body = page.body
        assert 'id="timeline"' in body
        assert "batch (now)" in body
        assert '<option value="fed-batch">fed-batch</option>' in body  # the operator transition
        assert "when glucose_g_l &lt; 2.7 for 900 s" in body  # triggers in words (the config's)
        unit = ctl.read_tags(["glucose_g_l"])["glucose_g_l"]["unit"]
        assert unit == "g/L"  # the model's unit (the tag once lost it)
        assert 'id="sample-form"' in body
        assert f"glucose (glucose_g_l, {unit})" in body
        assert op.json("/api/recipe")["operator_transitions"] == ["fed-batch"]

        # a viewer sees the page and no form, and the server refuses the changes anyway
        vic = Client(d.url)
        vic.login("vic")
        seen = vic.get("/recipe").body
        assert "batch (now)" in seen
        assert 'id="phase-form"' not in seen
        assert 'id="sample-form"' not in seen
        assert "your role" in seen.lower()
        vic.csrf = vic.csrf or op.csrf
        r = vic.post("/recipe/phase", to="fed-batch", reason="viewer tries")
        assert r.status == 403
        assert "refused" in r.body
        r = vic.post("/recipe/sample", sensor="glucose", value="5.0", sampled="0:10")
        assert r.status == 403
        assert "refused" in r.body
        assert ctl.recipe.phase_name == "batch"
        assert block.references == []

        # bad input: a clear error naming the field, nothing entered (a value the service
        # refuses is a refusal on record, 403; what the form cannot parse never reaches it, 400)
        r = op.post("/recipe/sample", sensor="glucose", value="five", sampled="0:10")
        assert r.status == 400
        assert "value: 'five' is not a finite number" in r.body
        r = op.post("/recipe/sample", sensor="glucose", value="5.0", sampled="ten past")
        assert r.status == 400
        assert "sampled at: 'ten past'" in r.body
        r = op.post("/recipe/sample", sensor="glucose", value="5.0", sampled="999:00")
        assert r.status == 403
        assert "is after now" in r.body
        r = op.post("/recipe/sample", sensor="lactate", value="5.0", sampled="0:10")
        assert r.status == 403
        assert "lactate" in r.body
        assert block.references == []

        # an HPLC glucose of the sample drawn at 0:10, entered by the operator
        r = op.post(
            "/recipe/sample",
            sensor="glucose",
            value="5.25",
            sampled="0:10",
            analyser="HPLC",
            reason="HPLC of the 0:10 sample",
        )
        assert r.status == 200, r.body
        assert "glucose: reference 5.25 entered" in r.body
        [ref] = block.references
        assert ref["value"] == 5.25
        assert ref["sampled_s"] == 600.0
        assert ref["analyser"] == "HPLC"
        assert ref["entered_by"] == "olga"
        assert ref["accepted"] is True  # taken by the bias Kalman correction
        table = r.body.split('id="references-glucose"', 1)[1]
        assert "<td>0:10:00</td>" in table
        assert "<td>5.25</td>" in table
        assert "olga" in table

        # an operator transition: requested, audited, taken by the recipe at its next scan
        r = op.post("/recipe/phase", to="fed-batch", reason="glucose low by HPLC")
        assert r.status == 200, r.body
        assert "transition to fed-batch requested as olga" in r.body
        _wait(lambda: ctl.recipe.phase_name == "fed-batch", "the fed-batch phase")
        status = op.json("/api/recipe")
        assert status["phase"] == "fed-batch"
        assert [p["phase"] for p in status["timeline"]] == ["batch", "fed-batch"]
        assert status["timeline"][1]["reason"] == "operator request"
        assert status["timeline"][0]["duration_s"] > 900.0
        assert status["operator_transitions"] == ["harvest"]
        body = op.get("/recipe").body
        assert "fed-batch (now)" in body
        assert 'id="timeline-bar"' in body
        # a transition the phase has not: refused (and the refusal audited)
        r = op.post("/recipe/phase", to="batch", reason="back again")
        assert r.status == 403
        assert "no operator transition to 'batch'" in r.body

        log = ctl.audit_log(100)
        audit = [(a["actor"], a["action"], a["reason"]) for a in log]
        assert ("olga", "add_reference", "HPLC of the 0:10 sample") in audit
        assert ("olga", "phase_request", "glucose low by HPLC") in audit
        # the viewer's two attempts are refusals on record, never changes
        refused = [a["new"]["command"] for a in log if a["actor"] == "vic"]
        olga_refused = [a for a in log if a["actor"] == "olga" and a["action"] == "refused"]
        # the future sample, the unknown sensor, the transition back: each refusal on record
        assert [a["new"]["command"] for a in olga_refused] == [
            "add_reference",
            "add_reference",
            "phase_request",
        ]
        assert "no operator transition to 'batch'" in olga_refused[-1]["reason"]
        assert refused == ["phase_request", "add_reference"]
        assert all(a["action"] == "refused" for a in log if a["actor"] == "vic")
    with HistoryReader(tmp_path / "run.db") as reader:
        events = [(e.kind, e.source, e.message) for e in reader.events()]
    assert ("reference", "softsensors.glucose", "5.25") in events
    assert ("phase", "recipe", "batch → fed-batch: operator request") in events
