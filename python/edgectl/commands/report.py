"""``edgectl report RUN.db -o report.html``: the batch record of a run (self-contained HTML:
metadata and config hash, phase timeline, one plot per loop with setpoint and band, feeds,
alarms, soft sensors against the at-line references, the audit trail with e-signatures and its
verdict, the loop verdict table). ``-o report.pdf`` prints it to an A4 PDF with a headless
Chromium instead; ``--pdf`` writes the PDF next to the HTML as well."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgectl.commands._args import existing_file, new_file, plain_text


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="write the batch report of a run (HTML or PDF)",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("db", type=existing_file, help="the run's historian file")
    p.add_argument(
        "-o", "--output", type=new_file, required=True, help="report file (.html, or .pdf)"
    )
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also print the report to a PDF beside the HTML (same name, .pdf)",
    )
    p.add_argument(
        "--config",
        type=existing_file,
        default=None,
        help="reactor configuration (default: the one the run recorded)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from edgectl.report import build_report
    from edgectl.report.pdf import find_chromium, html_to_pdf

    out: Path = args.output
    to_pdf = out.suffix.lower() == ".pdf"
    pdf = out if to_pdf else out.with_suffix(".pdf") if args.pdf else None
    browser = None if pdf is None else find_chromium()  # said before the report is built
    text = build_report(args.db, args.config)
    written = []
    if not to_pdf:
        out.write_text(text, encoding="utf-8")
        written.append(out)
    if pdf is not None:
        written.append(html_to_pdf(text, pdf, chromium=browser))
    for path in written:
        print(f"edgectl report: {path} ({path.stat().st_size // 1024} KiB)")
    return 0
