"""The operator service against the whole controller on the simulated plant: every change is
authenticated, authorised, validated, audited before it acts (or refused with nothing applied),
and the scan never waits for the audit trail."""

from __future__ import annotations

import os
import pwd
import sqlite3
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

import edgectl
from edgectl.config import to_toml_text
from edgectl.operator import RefusedError, RunStoppedError, UserStore
from edgectl.runtime.build import Run, open_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
ME = pwd.getpwuid(os.getuid()).pw_name
PASSWORD = "correct horse battery"


def example(tmp_path: Path, operator: dict[str, Any] | None = None) -> Path:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    if operator is not None:
        data["operator"] = operator
    path = tmp_path / "reactor.toml"
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


def open_example(tmp_path: Path, operator: dict[str, Any] | None = None, **kw: Any) -> Run:
    return open_run(
        example(tmp_path, operator),
        speed=kw.pop("speed", 1200.0),
        db=tmp_path / "run.db",
        socket_path=tmp_path / "run.sock",
        **kw,
    )


def users(tmp_path: Path, role: str = "admin", name: str = ME) -> UserStore:
    store = UserStore(tmp_path / "run.users")  # beside run.db: the run's default users file
    store.add(name, role, PASSWORD, full_name="Test Operator")
    return store


def audit(run: Run) -> list[Any]:
    return run.historian.audit.records()


def test_change_is_refused_without_record_when_the_audit_db_is_locked_and_scan_runs_on(
    tmp_path: Path,
) -> None:
    run = open_example(tmp_path)
    worker = threading.Thread(target=run.run, name="scan")
    try:
        run.run(60.0)
        r = edgectl.connect(run.controller)
        n_audit = len(audit(run))
        locker = sqlite3.connect(tmp_path / "run.db", isolation_level=None, timeout=0.0)
        locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        worker.start()
        outcome: dict[str, Any] = {}

        def change() -> None:
            try:
                r.loops["ph"].kp = 7.77
            except Exception as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=change)
        scans_before = run.controller.scheduler.stats.scans
        caller.start()
        advanced_while_waiting = False
        while caller.is_alive():
            if run.controller.scheduler.stats.scans > scans_before + 100:
                advanced_while_waiting = caller.is_alive()
                if advanced_while_waiting:
                    break
            time.sleep(0.01)
        caller.join()
        locker.execute("ROLLBACK")
        locker.close()
        assert advanced_while_waiting, "the scan froze while the change waited for the audit"
        err = outcome.get("error")
        assert isinstance(err, RefusedError), err
        assert err.rule == "audit"
        assert "nothing was applied" in str(err)
        assert "7.77" in str(err)
        assert run.controller.loops["ph"].settings()["kp"] == 5.0  # nothing applied
        assert not [a for a in audit(run)[n_audit:] if a.new_value == 7.77]
        r.loops["ph"].kp = 6.0  # the lock is gone: audited, then applied
        assert run.controller.loops["ph"].settings()["kp"] == 6.0
        [rec] = [a for a in audit(run) if a.target == "loops.ph.kp"]
        assert (rec.actor, rec.old_value, rec.new_value) == (ME, 5.0, 6.0)
    finally:
        run.stop()
        if worker.is_alive():
            worker.join()
        run.close()


def test_limits_refuse_and_audit_records_the_value_applied(tmp_path: Path) -> None:
    run = open_example(tmp_path, {"loops": {"ph": {"setpoint": [6.5, 7.5]}}})
    try:
        run.run(300.0)
        r = edgectl.connect(run.controller)
        ph = r.loops["ph"]
        with pytest.raises(RefusedError, match=r"loops\.ph\.setpoint = 15.*\[6\.5, 7\.5\]") as e:
            ph.setpoint = 15
        assert (e.value.rule, e.value.user, e.value.value) == ("limits", ME, 15)
        with pytest.raises(RefusedError, match=r"output range \[0, 0\.5\]"):
            ph.manual(99)  # base pump: mL/min, at most 0.5
        assert ph.mode == "auto"  # a refused manual(99) changes nothing, not even the mode
        with pytest.raises(RefusedError, match=r"within 10x of its configured 5"):
            ph.kp = 1e6
        with pytest.raises(RefusedError, match="finite"):
            r.loops["temp"].setpoint = float("nan")
        ph.manual(0.2)
        run.run(10.0)
        assert (ph.mode, ph.output) == ("manual", 0.2)
        assert run.controller.outputs["base_ml_min"] == 0.2
        records = audit(run)
        [manual] = [a for a in records if a.target == "loops.ph.mode" and a.action == "set"]
        assert manual.new_value == {"mode": "manual", "output": 0.2}
        refused = [a for a in records if a.action == "refused"]
        assert [a.new_value["value"] for a in refused] == [
            15.0,
            "{'mode': 'manual', 'output': 99}",
            1e6,
            "nan",
        ]
        assert all(a.actor == ME and a.new_value["rule"] == "limits" for a in refused)
    finally:
        run.close()


def test_reason_belongs_to_one_change_and_identity_is_not_claimed(tmp_path: Path) -> None:
    run = open_example(tmp_path)
    try:
        run.run(120.0)
        with edgectl.connect(tmp_path / "run.sock") as r:
            assert r.whoami()["name"] == ME
            r.reason = "tighter pH"
            r.loops["ph"].kp = 6.0
            assert r.reason == ""
            r.loops["temp"].setpoint = 36.8
            with pytest.raises(edgectl.errors.EdgectlError, match="'who' is not accepted"):
                r._api.call("loop_set", loop="ph", param="kp", value=7.0, who="QA-approver")
            r.reason = "x" * 200_000
            with pytest.raises(RefusedError, match="the reason has 200000 characters"):
                r.loops["ph"].kp = 7.0
        with pytest.raises(RefusedError, match="not 'QA-approver'"):
            edgectl.connect(tmp_path / "run.sock", who="QA-approver")
        records = {a.target: a for a in audit(run) if a.action == "set"}
        assert records["loops.ph.kp"].reason == "tighter pH"
        assert records["loops.temp.setpoint"].reason == ""
        assert {a.actor for a in audit(run)} == {ME}
    finally:
        run.close()


def test_role_refusals_are_audited_and_a_viewer_cannot_stop_or_reset(tmp_path: Path) -> None:
    users(tmp_path, role="viewer")
    run = open_example(tmp_path)
    try:
        run.run(60.0)
        with edgectl.connect(tmp_path / "run.sock") as r:
            assert r.whoami()["role"] == "viewer"
            assert r.loops["ph"].kp == 5.0  # a viewer reads
            shown = repr(r.loops)
            assert "PV ph=" in shown
            assert "SP 7" in shown
            with pytest.raises(RefusedError, match=r"role viewer\) has no right to 'tune'"):
                r.loops["ph"].kp = 8.0
            for call in (r.stop, r.reset_trip):
                with pytest.raises(RefusedError, match="has no right") as e:
                    call(reason="probe", meaning="approved", password=PASSWORD)
                assert e.value.rule == "rights"
        assert run.controller.loops["ph"].settings()["kp"] == 5.0
        assert not run.controller.stopped.is_set()
        refused = [(a.actor, a.target, a.new_value["rule"]) for a in audit(run)]
        assert refused == [
            (ME, "loops.ph.kp", "rights"),
            (ME, "run", "rights"),
            (ME, "interlocks", "rights"),
        ]
    finally:
        run.close()


def test_stop_and_reset_trip_need_an_e_signature_then_run_stopped(tmp_path: Path) -> None:
    users(tmp_path, role="operator")
    run = open_example(tmp_path)
    try:
        run.run(60.0)
        r = edgectl.connect(run.controller)
        with pytest.raises(RefusedError, match="needs an e-signature") as e:
            r.stop(reason="end")
        assert e.value.rule == "e-signature"
        with pytest.raises(RefusedError, match="wrong password"):
            r.reset_trip(reason="heater replaced", meaning="approved", password="guess guess")
        with pytest.raises(RefusedError, match="needs a reason"):
            r.reset_trip(meaning="approved", password=PASSWORD)
        assert r.reset_trip(reason="heater replaced", meaning="approved", password=PASSWORD) == []
        assert not run.controller.stopped.is_set()
        r.stop(reason="end of test", meaning="approved", password=PASSWORD)
        assert run.controller.stopped.is_set()
        assert run.controller.stop_reason == f"operator stop by {ME}: end of test"
        with pytest.raises(RunStoppedError, match="run stopped"):
            r.loops["ph"].kp = 6.0
        records = audit(run)
        signed = [a for a in records if a.action in ("reset_trip", "stop")]
        assert [a.action for a in signed] == ["reset_trip", "stop"]
        for a in signed:
            assert a.actor == ME
            assert "e-signed by " + ME + " (Test Operator), meaning: approved" in a.reason
        assert [a.new_value["rule"] for a in records if a.action == "refused"] == [
            "e-signature",
            "e-signature",
            "e-signature",
        ]
    finally:
        run.close()


def test_calls_after_the_run_closed_get_run_stopped(tmp_path: Path) -> None:
    run = open_example(tmp_path)
    r = None
    try:
        run.run(30.0)
        r = edgectl.connect(run.controller)
        assert r.info()["name"] == "ecoli-2L"
    finally:
        run.close()
    assert r is not None
    with pytest.raises(RunStoppedError, match="run stopped"):
        r.info()
    with pytest.raises(RunStoppedError, match="run stopped"):
        r.loops["ph"].kp = 6.0


def test_setpoint_step_does_not_kick_the_output_and_ramps_when_configured(tmp_path: Path) -> None:
    run = open_example(tmp_path, {"loops": {"ph": {"sp_ramp_per_min": 0.1}}})
    try:
        run.run(1800.0)
        r = edgectl.connect(run.controller)
        before = run.controller.loops["temp"].settings()["output"]
        r.loops["temp"].setpoint = 36.5
        run.run(2.0)
        after = run.controller.loops["temp"].settings()["output"]
        # b = 1 kicked it by K·Δr = 150 %/K × 0.5 K = 75 % (14.6 → −58.4 %)
        assert abs(after - before) < 5.0, (before, after)
        r.loops["ph"].setpoint = 6.9
        run.run(30.0)
        s = r.loops["ph"].settings
        assert s["setpoint"] == 6.9
        assert s["working_setpoint"] == pytest.approx(7.0 - 0.1 * 30.0 / 60.0, abs=0.01)
        run.run(60.0)
        assert r.loops["ph"].settings["working_setpoint"] == 6.9
    finally:
        run.close()
