"""``edgectl report RUN.db -o report.html``: the batch record of a run, one self-contained
HTML file (plots embedded as PNG) that a QA reviewer reads and prints; ``-o report.pdf``
prints it to an A4 PDF with a headless Chromium (:mod:`edgectl.report.pdf`).

It holds: run metadata and the config hash (and whether the config file still matches it), the
phase timeline, one plot per loop with its setpoint and acceptance band, feeds and doses,
alarms, each soft sensor against its at-line references, the audit trail with its e-signatures
and ``audit verify``'s verdict, and the loop verdict table of the run summary. Everything is
read from the historian file (read-only); the reactor configuration gives the loops' bands.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgectl.errors import ConfigError
from edgectl.historian import HistoryReader
from edgectl.historian.audit import format_time

__all__ = ["build_report", "write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60em;margin:1.5em auto;color:#1b1f23}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #d0d7de;
padding:.2em .5em;font-size:.85em;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#eaeef2}img{max-width:100%}.ok{color:#1a7f37;font-weight:600}
.bad{color:#cf222e;font-weight:600}h2{border-bottom:1px solid #d0d7de;margin-top:1.6em}
@page{size:A4;margin:14mm 12mm 16mm}
@media print{body{max-width:none;margin:0;font-size:10pt}
h2{break-before:page;margin-top:0}h2:first-of-type{break-before:avoid}
h2,h3{break-after:avoid}h3{margin:.8em 0 .3em}
img{display:block;width:100%;max-height:125mm;object-fit:contain;break-inside:avoid}
table{width:100%}thead{display:table-header-group}tr{break-inside:avoid}
th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def _h(t_s: float) -> str:
    return f"{t_s / 3600.0:.2f} h"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.4g}"
    return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)


def _series(reader: HistoryReader, tag: str, base: float) -> tuple[np.ndarray, np.ndarray]:
    known = {t.name for t in reader.tags()}
    if tag not in known:
        return np.empty(0), np.empty(0)
    s = reader.samples(tag, base).good()
    return s.times_s - base, s.values


def _delivered_ml(t_s: np.ndarray, rate_ml_min: np.ndarray) -> float:
    """Volume delivered (mL): trapezoidal integral of the rate (mL/min) over time (s)."""
    r = np.nan_to_num(rate_ml_min)
    return float(np.sum(np.diff(t_s) * (r[1:] + r[:-1]) / 2.0) / 60.0)


def build_report(db: str | Path, config: str | Path | None = None) -> str:
    """The report of the run in ``db`` as HTML text; ``config`` is the reactor configuration
    (default: the one the run recorded, when it still exists)."""
    from edgectl.report import plots
    from edgectl.runtime.reactor_config import load_reactor_config
    from edgectl.runtime.summary import (
        alarm_spans,
        culture_run_uids,
        loop_figures,
        phase_timeline,
    )

    db = Path(db)
    if not db.is_file():
        raise ConfigError(f"{db}: no such historian file")
    reader = HistoryReader(db)
    try:
        runs = reader.runs()
        if not runs:
            raise ConfigError(f"{db}: the historian holds no run")
        uids = culture_run_uids(runs)
        culture = [r for r in runs if r.run_uid in uids] or runs
        base = culture[0].started_s
        cfg_path = Path(config) if config else Path(culture[-1].config_path or "")
        if not cfg_path.is_file():
            raise ConfigError(
                f"{db}: the run's configuration {cfg_path} is not there: give it with --config"
            )
        cfg = load_reactor_config(cfg_path)
        text = cfg_path.read_text(encoding="utf-8")
        file_hash = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        recorded = culture[-1].config_hash
        events = [e for e in reader.events() if e.run_uid in uids or not uids]
        alarms = [a for a in reader.alarms() if a.run_uid in uids or not uids]
        end_s = max((r.stopped_s or r.started_s) for r in culture) - base
        last_phase = next(
            (
                e.message.partition(" → ")[2].partition(": ")[0]
                for e in reversed(events)
                if e.kind == "phase"
            ),
            "",
        )
        phases = phase_timeline(events, base, end_s, last_phase or "-")
        spans = alarm_spans(alarms, base)
        figures = loop_figures(reader, cfg, base)
        audit = reader.audit.records()
        verdict = reader.audit.verify()
        out: list[str] = []
        out.append(
            f"<h1>Batch record: {_e(cfg.reactor.name)}</h1>"
            f"<p>Generated {_e(format_time(time.time()))} by <code>edgectl report</code> from "
            f"<code>{_e(db.name)}</code>.</p>"
        )
        hash_ok = recorded == file_hash
        out.append(
            "<h2>Run</h2>"
            + _table(
                ["Field", "Value"],
                [
                    ["reactor", cfg.reactor.name],
                    ["configuration", str(cfg_path)],
                    ["config hash (recorded)", recorded or "-"],
                    ["config file now", "matches" if hash_ok else f"DIFFERS: {file_hash}"],
                    ["culture time", _h(end_s)],
                    ["segments (start/resume)", len(culture)],
                    ["edgectl", culture[-1].edgectl_version],
                    ["host", culture[-1].hostname],
                ],
            )
            + _table(
                ["Run", "Started", "Stopped", "Reason", "Resumed from"],
                [
                    [
                        r.run_uid[:12],
                        _h(r.started_s - base),
                        "-" if r.stopped_s is None else _h(r.stopped_s - base),
                        r.stop_reason or "-",
                        r.resumed_from or "-",
                    ]
                    for r in culture
                ],
            )
        )
        out.append("<h2>Phase timeline</h2>")
        if phases:
            out.append(f'<img alt="phases" src="{plots.phase_plot(phases)}">')
        out.append(
            _table(
                ["Phase", "Entered", "Duration", "Why"],
                [[p.phase, _h(p.start_s), _h(p.duration_s), p.reason or "-"] for p in phases],
            )
        )
        out.append("<h2>Loops</h2>")
        alarm_h = [s.raised_s / 3600.0 for s in spans]
        for name, loop in cfg.loops.items():
            pv = getattr(loop, "pv", "") or getattr(loop, "probe", "")
            if not pv:
                continue
            acc = getattr(loop, "acceptance", None)
            unit = next((t.unit for t in reader.tags() if t.name == pv), "")
            img = plots.loop_plot(
                name,
                _series(reader, pv, base),
                _series(reader, f"{name}.sp", base),
                unit=unit,
                band=None if acc is None else acc.band,
                side="both" if acc is None else acc.side,
                phases=phases,
                alarms_h=alarm_h,
            )
            out.append(f'<h3>{_e(name)} ({_e(pv)})</h3><img alt="{_e(name)}" src="{img}">')
        out.append(
            "<h3>Verdicts</h3>"
            + _table(
                ["Loop", "PV", "Band", "Samples", "Max |dev|", "Mean |dev|", "Within", "Verdict"],
                [
                    [
                        f.loop,
                        f.pv,
                        f"{'±' if f.side == 'both' else '−'}{f.band:g}",
                        f.n_samples,
                        _num(f.max_abs_dev),
                        _num(f.mean_abs_dev),
                        "-"
                        if math.isnan(f.fraction_within)
                        else f"{100 * f.fraction_within:.1f} %",
                        ("PASS" if f.ok else "FAIL") if f.judged else "n/a",
                    ]
                    for f in figures.values()
                ],
            )
        )
        feeds = {n: _series(reader, n, base) for n, o in cfg.outputs.items() if o.unit == "mL/min"}
        feeds = {n: s for n, s in feeds.items() if s[0].size}
        out.append("<h2>Feeds and doses</h2>")
        if feeds:
            out.append(f'<img alt="feeds" src="{plots.feed_plot(feeds, phases)}">')
            out.append(
                _table(
                    ["Output", "Delivered (mL, integral of the rate)"],
                    [
                        [
                            n,
                            f"{_delivered_ml(t, r):.1f}",
                        ]
                        for n, (t, r) in feeds.items()
                    ],
                )
            )
        else:
            out.append("<p>No feed output (mL/min) recorded.</p>")
        out.append(
            "<h2>Alarms</h2>"
            + _table(
                ["Alarm", "Severity", "Raised", "Cleared"],
                [
                    [
                        s.name,
                        s.severity,
                        _h(s.raised_s),
                        "active at end" if s.cleared_s is None else _h(s.cleared_s),
                    ]
                    for s in spans
                ],
            )
            + _table(
                ["Time", "Alarm", "Acknowledged by"],
                [
                    [_h(a.time_s - base), a.name, a.actor or "-"]
                    for a in alarms
                    if a.transition == "ack"
                ],
            )
        )
        if cfg.softsensors:
            out.append("<h2>Soft sensors</h2>")
            for name, sc in cfg.softsensors.items():
                refs = [
                    (float(e.details.get("sampled_s", e.time_s - base)), float(e.details["value"]))
                    for e in events
                    if e.kind == "reference"
                    and e.source == f"softsensors.{name}"
                    and isinstance(e.details, dict)
                    and "value" in e.details
                ]
                est = _series(reader, sc.tag, base)
                unit = next((t.unit for t in reader.tags() if t.name == sc.tag), "")
                out.append(f"<h3>{_e(name)} ({_e(sc.tag)})</h3>")
                if est[0].size:
                    out.append(
                        f'<img alt="{_e(name)}" src="'
                        f'{plots.softsensor_plot(name, est, refs, unit)}">'
                    )
                out.append(f"<p>{len(refs)} at-line reference(s).</p>")
        cls = "ok" if verdict.is_intact else "bad"
        out.append(f'<h2>Audit trail</h2><p class="{cls}">{_e(verdict.describe())}</p>')
        out.append(
            _table(
                ["#", "Time", "User", "Action", "Target", "Old", "New", "Reason / e-signature"],
                [
                    [
                        r.seq,
                        _h(r.time_s - base),
                        r.actor,
                        r.action,
                        r.target,
                        _num(r.old_value),
                        _num(r.new_value),
                        r.reason,
                    ]
                    for r in audit
                ],
            )
        )
        signed = [r for r in audit if "e-signed by" in r.reason]
        out.append(f"<p>{len(audit)} record(s), {len(signed)} e-signed.</p>")
    finally:
        reader.close()
    title = f"Batch record {cfg.reactor.name}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}'
        f"</title><style>{_CSS}</style></head><body>{''.join(out)}</body></html>"
    )


def write_report(
    db: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    *,
    chromium: str | Path | None = None,
) -> Path:
    """Write the report of ``db`` to ``out`` (see :func:`build_report`): HTML, or a PDF when
    ``out`` ends in ``.pdf`` (printed by a headless Chromium, :mod:`edgectl.report.pdf`)."""
    path = Path(out)
    if path.suffix.lower() == ".pdf":
        from edgectl.report.pdf import find_chromium, html_to_pdf

        browser = Path(chromium) if chromium is not None else find_chromium()  # before the work
        return html_to_pdf(build_report(db, config), path, chromium=browser)
    path.write_text(build_report(db, config), encoding="utf-8")
    return path
