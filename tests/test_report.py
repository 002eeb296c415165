"""``edgectl report``: the batch record of a real (simulated) run, self-contained HTML."""

from __future__ import annotations

import re
from pathlib import Path

from _web import PASSWORD, config
from edgectl.cli import main
from edgectl.operator import UserStore
from edgectl.runtime.build import open_run


def test_report_of_a_run_holds_plots_verdicts_and_signed_audit(tmp_path: Path) -> None:
    UserStore(tmp_path / "run.users").add("erin", "engineer", PASSWORD, full_name="Erin E")
    run = open_run(config(tmp_path), virtual_clock=True, db=tmp_path / "run.db", serve_rpc=False)
    try:
        run.run(1800.0)
        service = run.controller.operator
        session = service.session(service.login("erin", PASSWORD))
        session.loop_set("temp", "setpoint", 36.5, reason="report test")
        signature = {"password": PASSWORD, "meaning": "approved"}
        session.loop_set("temp", "kp", 120.0, reason="retune", signature=signature)
        run.run(1800.0)
    finally:
        run.close()
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "run.db"), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<h1>Batch record: " in text
    assert "config file now</td><td>matches" in text
    # one embedded plot per loop with a PV, the phases and the feeds; nothing fetched
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', text)
    assert {"phases", "temp", "ph", "do", "feeds"} <= set(imgs)
    assert "http://" not in text
    assert "https://" not in text
    assert "audit trail intact" in text
    assert "e-signed by erin (Erin E), meaning: approved" in text
    assert "report test" in text
    assert re.search(r"<td>temp</td><td>temp_c</td>.*?<td>(PASS|FAIL|n/a)</td>", text)
    assert "<h2>Alarms</h2>" in text
    assert "<h2>Feeds and doses</h2>" in text
