"""The dashboard over HTTP against a real controller on the simulated plant: password login
through the operator service, expiry, CSRF, server-side role checks, changes audited and in the
historian, the live stream, min/max-downsampled history, CSV export, loopback-only binding."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from _web import PASSWORD, Client, dashboard
from edgectl.errors import ConfigError
from edgectl.historian import Historian
from edgectl.operator.changes import Change
from edgectl.web import DashboardServer, is_loopback, parse_http


def _wait(cond: object, what: str, limit_s: float = 60.0) -> None:
    """Wait for ``cond()`` (a liveness bound, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def test_login_roles_csrf_expiry_and_audited_changes(tmp_path: Path) -> None:
    with dashboard(tmp_path) as d:
        ctl = d.run.controller
        anon = Client(d.url, follow=False)
        r = anon.get("/")
        assert r.status == 303
        assert "/login" in r.headers["location"]
        assert anon.get("/api/tags").status == 401
        assert anon.post("/loops/temp", param="setpoint", value="36", csrf="x").status == 401

        bad = Client(d.url)
        r = bad.login("olga", "not the password")
        assert r.status == 401
        assert "wrong password" in r.body
        assert not bad.jar  # no session cookie
        assert any(a["action"] == "login_failed" for a in ctl.audit_log(50))

        op = Client(d.url)
        r = op.login("olga")
        assert r.status == 200
        assert "olga (operator)" in r.body
        assert op.csrf
        cookie = next(iter(op.jar))
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert ctl.info()["name"] in r.body

        # no CSRF token, a wrong one, another origin: refused, nothing applied
        assert op.post("/loops/temp", param="setpoint", value="36", csrf="").status == 403
        assert op.post("/loops/temp", param="setpoint", value="36", csrf="forged").status == 403
        r = op.request(
            "/loops/temp",
            {"param": "setpoint", "value": "36", "reason": "x", "csrf": op.csrf},
            {"Origin": "http://evil.example"},
        )
        assert r.status == 403
        assert "cross-origin" in r.body
        assert ctl.loop_get("temp")["setpoint"] == 37.0

        # an operator's setpoint change with a reason: audited as olga, then applied and recorded
        r = op.post("/loops/temp", param="setpoint", value="36.5", reason="cooler for induction")
        assert r.status == 200
        assert "loops.temp.setpoint: 37 → 36.5" in r.body
        assert ctl.loop_get("temp")["setpoint"] == 36.5
        [rec] = [
            a
            for a in ctl.audit_log(100)
            if a["target"] == "loops.temp.setpoint" and a["action"] == "set"
        ]
        assert (rec["actor"], rec["old"], rec["new"]) == ("olga", 37.0, 36.5)
        assert rec["reason"] == "cooler for induction"
        audit_page = op.get("/audit").body
        assert "cooler for induction" in audit_page
        assert "audit trail intact" in audit_page

        def recorded() -> bool:
            h = ctl.history("temp.sp", buckets=100)
            return 36.5 in h["value"]

        _wait(recorded, "the new setpoint in the historian")

        # an operator may not change gains (engineer right): the server refuses and audits
        r = op.post("/loops/temp", param="kp", value="9", reason="try")
        assert r.status == 403
        assert "no right to 'tune'" in r.body

        # a viewer reads, and can change nothing, whatever the page shows
        viewer = Client(d.url)
        assert viewer.login("vic").status == 200
        assert viewer.get("/loops").status == 200
        r = viewer.post("/loops/temp", param="setpoint", value="30", reason="viewer")
        assert r.status == 403
        assert "user vic (role viewer) has no right to 'setpoint'" in r.body
        r = viewer.post("/alarms/ack", name="", reason="viewer ack")
        assert r.status == 403
        assert ctl.loop_get("temp")["setpoint"] == 36.5
        refused = [a for a in ctl.audit_log(200) if a["action"] == "refused"]
        assert {a["actor"] for a in refused} >= {"olga", "vic"}

        # the engineer's gain change is e-signed (config: critical tune)
        eng = Client(d.url)
        eng.login("erin")
        r = eng.post("/loops/temp", param="kp", value="9", reason="retune")
        assert r.status == 403
        assert "needs an e-signature" in r.body
        r = eng.post(
            "/loops/temp",
            param="kp",
            value="120",
            reason="retune after probe swap",
            sig_password=PASSWORD,
            sig_meaning="approved",
        )
        assert r.status == 200, r.body
        [kp] = [
            a for a in ctl.audit_log(300) if a["target"] == "loops.temp.kp" and a["action"] == "set"
        ]
        assert "e-signed by erin (Erin), meaning: approved" in kp["reason"]

        # the session expires: idle past the limit (the sessions' clock moves on)
        real = d.server.sessions.clock
        d.server.sessions.clock = lambda: real() + d.server.sessions.idle_s + 1.0
        assert op.post("/loops/temp", param="setpoint", value="36", reason="late").status == 401
        r = Client(d.url, follow=False, jar=op.jar).get("/loops")
        assert r.status == 303
        assert "expired=1" in r.headers["location"]
        assert d.server.sessions.count() == 0  # every session is past its idle time
        d.server.sessions.clock = real
        assert ctl.loop_get("temp")["setpoint"] == 36.5

        # logout ends the session on the server
        again = Client(d.url)
        again.login("olga")
        assert again.post("/logout").status == 200
        assert again.get("/api/tags").status == 401


def test_alarm_ack_stream_history_and_export(tmp_path: Path) -> None:
    with dashboard(tmp_path) as d:
        ctl = d.run.controller
        op = Client(d.url)
        op.login("olga")
        _wait(lambda: any(a["name"] == "do_low" for a in ctl.alarms()), "the DO alarm")
        page = op.get("/alarms").body
        assert 'id="ack-do_low"' in page
        r = op.post("/alarms/ack", name="do_low", reason="seen, DO limit raised on purpose")
        assert r.status == 200
        assert "acknowledged do_low as olga" in r.body
        [st] = [a["state"] for a in ctl.alarms() if a["name"] == "do_low"]
        assert st == "acked"
        assert any(a["transition"] == "ack" and a["actor"] == "olga" for a in ctl.alarm_log(100))
        assert "Active alarms: do_low" in op.get("/").body

        # the live stream: server-sent events with the tags, the clock moving on
        req = urllib.request.Request(d.url + "/api/stream?tags=temp_c,do_pct")
        cookie = "; ".join(f"{c.name}={c.value}" for c in op.jar)
        req.add_header("Cookie", cookie)
        times = []
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            while len(times) < 3:
                line = resp.readline().decode()
                if line.startswith("data: {") and '"tags"' in line:
                    data = json.loads(line[6:])
                    assert set(data["tags"]) == {"temp_c", "do_pct"}
                    times.append(data["time_s"])
        assert times[0] < times[-1]

        # history: min/max per bucket from the historian, at most two points a bucket
        _wait(lambda: ctl.now_s > 1200.0, "20 simulated minutes")
        h = op.json(f"/api/history?tag=temp_c&start_s=0&end_s={ctl.now_s}&buckets=50")
        assert 0 < len(h["time_s"]) <= 100
        assert h["unit"] == ctl.read_tags(["temp_c"])["temp_c"]["unit"]
        raw = ctl.trend("temp_c", ctl.now_s + 1)
        vals = [v for v in raw["value"] if math.isfinite(v)]
        assert min(h["value"]) == pytest.approx(min(vals))
        assert max(h["value"]) == pytest.approx(max(vals))
        assert op.get("/api/history?tag=nope").status == 400

        csv_text = op.get("/export.csv?tag=temp_c&tag=feed_ml_min").body
        lines = csv_text.strip().splitlines()
        assert lines[0] == "elapsed_s,elapsed_h,tag,value,unit"
        assert any(",temp_c," in ln for ln in lines[1:])
        assert any(",feed_ml_min," in ln and ln.endswith(",mL/min") for ln in lines[1:])


def _section(page: str, element_id: str, end: str) -> str:
    """The HTML from the element with ``element_id`` to the next ``end`` ("" when absent)."""
    start = page.find(f'id="{element_id}"')
    return "" if start < 0 else page[start : page.index(end, start)]


def test_shelved_and_disabled_alarms_are_shown_as_such(tmp_path: Path) -> None:
    with dashboard(tmp_path) as d:
        ctl, svc = d.run.controller, d.run.controller.operator
        olga, erin = svc.login("olga", PASSWORD), svc.login("erin", PASSWORD)
        op = Client(d.url)
        op.login("vic")  # a viewer sees the same
        _wait(lambda: any(a["name"] == "do_low" for a in ctl.alarms()), "the DO alarm")
        assert "do_low" in _section(op.get("/").body, "alarm-banner", "</p>")

        # shelved one-shot (its limit is above any DO: it never clears, so it stays shelved)
        svc.change(olga, Change.shelve("do_low", None), reason="probe being recalibrated")
        assert any(a["name"] == "do_low" for a in ctl.alarms())  # still in alarm
        page = op.get("/").body
        assert "do_low" not in _section(page, "alarm-banner", "</p>")
        assert "do_low: shelved until it clears (one-shot)" in _section(
            page, "alarm-suppressed", "</p>"
        )
        page = op.get("/alarms").body
        assert "do_low" not in _section(page, "active-alarms", "</table>")
        held = _section(page, "suppressed-alarms", "</table>")
        assert "<td>do_low</td><td>shelved until it clears (one-shot)</td>" in held

        # unshelved and disabled by an engineer: shown as disabled, still not annunciated
        svc.change(olga, Change.unshelve("do_low"), reason="probe back")
        assert "do_low" in _section(op.get("/").body, "alarm-banner", "</p>")
        svc.change(erin, Change.enable("do_low", False), reason="limit under review")
        page = op.get("/").body
        assert "do_low" not in _section(page, "alarm-banner", "</p>")
        assert "do_low: disabled" in _section(page, "alarm-suppressed", "</p>")
        held = _section(op.get("/alarms").body, "suppressed-alarms", "</table>")
        assert "<td>do_low</td><td>disabled</td>" in held

        # enabled again: annunciated again, and no longer listed as held back
        svc.change(erin, Change.enable("do_low", True), reason="limit confirmed")
        page = op.get("/alarms").body
        assert "do_low" in _section(page, "active-alarms", "</table>")
        assert "do_low" not in _section(page, "suppressed-alarms", "</table>")


def test_minmax_keeps_every_extreme(tmp_path: Path) -> None:
    h = Historian(tmp_path / "h.db")
    try:
        t = np.arange(10_000, dtype=float)
        y = np.sin(t / 300.0)
        y[4321] = 5.0  # a one-sample spike survives downsampling
        for ti, yi in zip(t, y, strict=True):
            h.record("x", float(yi), time_s=float(ti))
        h.flush()
        rows = h.minmax("x", 0.0, 9999.0, 20)
        assert len(rows) == 20
        assert max(r[3] for r in rows) == 5.0
        assert min(r[2] for r in rows) == pytest.approx(y.min())
        assert all(a <= z for a, z, _, _ in rows)
        with pytest.raises(Exception, match="start_s < end_s"):
            h.minmax("x", 5.0, 5.0, 10)
    finally:
        h.close()


def test_binding_rules() -> None:
    assert parse_http("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_http("[::1]:0") == ("::1", 0)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_http("8080")
    with pytest.raises(ConfigError, match="not a number"):
        parse_http("localhost:http")
    assert is_loopback("localhost")
    assert is_loopback("127.0.0.2")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.4")


def test_refuses_beyond_loopback_without_tls(tmp_path: Path) -> None:
    class Users:
        path = tmp_path / "run.users"

        def users(self) -> list[str]:
            return []

    class Service:
        users = Users()

    with pytest.raises(ConfigError, match="without TLS"):
        DashboardServer(Service(), "0.0.0.0", 0)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    with pytest.raises(ConfigError, match="has no users"):
        DashboardServer(Service(), "0.0.0.0", 0, tls_cert=cert, tls_key=key)
    with pytest.raises(ConfigError, match="both --tls-cert and --tls-key"):
        DashboardServer(Service(), "127.0.0.1", 0, tls_cert=cert)


def test_run_refuses_a_dashboard_beyond_loopback_without_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from _web import config
    from edgectl.cli import main

    argv = ["run", str(config(tmp_path)), "--db", str(tmp_path / "r.db"), "--duration", "0.01"]
    assert main([*argv, "--socket", str(tmp_path / "r.sock"), "--http", "0.0.0.0:0"]) == 2
    err = capsys.readouterr().err
    assert "edgectl run: error: dashboard: refusing to listen on 0.0.0.0 without TLS" in err
