"""``edgectl report``: the batch record of a real (simulated) run, self-contained HTML, and the
same report printed to PDF by the system's headless chromium."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from _web import PASSWORD, ROOT, config
from edgectl.cli import main
from edgectl.errors import ConfigError
from edgectl.operator import UserStore
from edgectl.report.pdf import find_chromium
from edgectl.runtime.build import open_run

A4_PT = (595.28, 841.89)  # 210 × 297 mm in PostScript points


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hour of the E. coli example on the virtual clock, with a setpoint change and an
    e-signed gain change by an engineer half-way."""
    tmp = tmp_path_factory.mktemp("report")
    UserStore(tmp / "run.users").add("erin", "engineer", PASSWORD, full_name="Erin E")
    run = open_run(config(tmp), virtual_clock=True, db=tmp / "run.db", serve_rpc=False)
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
    return tmp / "run.db"


def test_report_of_a_run_holds_plots_verdicts_and_signed_audit(
    run_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(run_db), "-o", str(out)]) == 0
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
    assert "@page{size:A4" in text  # the print layout travels with the file


def _chromium() -> Path:
    """The system chromium, installed by the project's script when missing (as CI does for
    the browser tests); the PDF test is skipped only when there is none to be had."""
    try:
        return find_chromium()
    except ConfigError:
        pass
    try:
        subprocess.run(
            [str(ROOT / "scripts" / "ensure-chromium")],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        return find_chromium()
    except (subprocess.CalledProcessError, OSError, ConfigError) as exc:
        pytest.skip(f"no chromium to print the PDF with, and scripts/ensure-chromium failed: {exc}")


def test_pdf_report_is_a4_with_a_page_per_section_and_the_verdicts(
    run_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGECTL_CHROMIUM", str(_chromium()))
    html = tmp_path / "report.html"
    assert main(["report", str(run_db), "-o", str(html), "--pdf"]) == 0
    pdf = tmp_path / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    page = html.read_text(encoding="utf-8")
    sections = re.findall(r"<h2>([^<]+)</h2>", page)
    n_plots = len(re.findall(r"<img ", page))
    assert len(sections) >= 6

    reader = PdfReader(pdf)
    pages = [p.extract_text() or "" for p in reader.pages]
    for p in reader.pages:  # A4 portrait
        assert abs(float(p.mediabox.width) - A4_PT[0]) < 1.0
        assert abs(float(p.mediabox.height) - A4_PT[1]) < 1.0
    # every section starts a page (the first shares page 1 with the title), and a page holds
    # at least two plots (each at most 125 mm of A4's 267 mm between the margins)
    assert len(sections) <= len(pages) <= len(sections) + math.ceil(n_plots / 2)
    assert pages[0].startswith("Batch record: ecoli-2L")
    starts = [t.lstrip().splitlines()[0] for t in pages[1:] if t.strip()]
    for title in sections[1:]:
        assert title in starts, f"section {title!r} does not begin a page: {starts}"

    text = "\n".join(pages)
    assert "ecoli-2L" in text
    assert "Loop PV Band Samples Max |dev| Mean |dev| Within Verdict" in text
    for loop, pv in (("temp", "temp_c"), ("ph", "ph"), ("do", "do_pct")):
        assert re.search(rf"^{loop} {pv} \S+ \d+ .* (PASS|FAIL|n/a)$", text, re.M), loop
    assert "audit trail intact" in text
    assert "e-signed by erin (Erin E)" in " ".join(text.split())

    # -o report.pdf alone writes the PDF and no HTML
    only = tmp_path / "only" / "batch.pdf"
    only.parent.mkdir()
    assert main(["report", str(run_db), "-o", str(only)]) == 0
    assert only.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in only.parent.iterdir()] == ["batch.pdf"]


def test_pdf_without_a_usable_browser_is_a_clear_error(
    run_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no-chromium"
    monkeypatch.setenv("EDGECTL_CHROMIUM", str(missing))
    out = tmp_path / "report.pdf"
    assert main(["report", str(run_db), "-o", str(out)]) != 0
    assert f"EDGECTL_CHROMIUM={missing}: not an executable file" in capsys.readouterr().err
    assert not out.exists()
    # a browser that fails to print: its exit status, and no PDF
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setenv("EDGECTL_CHROMIUM", false)
    assert main(["report", str(run_db), "-o", str(out)]) != 0
    assert "printing the report to PDF failed (exit 1)" in capsys.readouterr().err
    assert not out.exists()
