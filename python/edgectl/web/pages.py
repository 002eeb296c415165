"""HTML of the dashboard's pages, rendered on the server from what the operator service
returned (every value escaped). The pages need no script to read; ``app.js`` adds the live
values (server-sent events) and ``trends.js`` the charts (dygraphs, vendored)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = [
    "alarms_page",
    "audit_page",
    "events_page",
    "export_page",
    "login_page",
    "loops_page",
    "overview_page",
    "page",
    "recipe_page",
    "trends_page",
]

_NAV = (
    ("/", "Overview"),
    ("/trends", "Trends"),
    ("/loops", "Loops"),
    ("/recipe", "Recipe"),
    ("/alarms", "Alarms"),
    ("/audit", "Audit"),
    ("/events", "Events"),
    ("/export", "Export"),
)


def _e(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def _slug(text: str) -> str:
    return "-".join(text.lower().replace("/", " ").split())


def fmt(v: Any, digits: int = 4) -> str:
    """A value as shown in a table: numbers to ``digits`` significant figures."""
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v).lower()
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.{digits}g}"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def hms(seconds: float) -> str:
    """``12:03:07`` (hours may exceed 24) for clock seconds."""
    if not math.isfinite(seconds):
        return "-"
    s = int(max(seconds, 0.0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def page(
    title: str,
    body: str,
    *,
    user: Any = None,
    csrf: str = "",
    flash: str = "",
    flash_ok: bool = True,
    scripts: Sequence[str] = (),
) -> str:
    """The layout: navigation, who is logged in, a message of the last change, ``body``."""
    nav = ""
    if user is not None:
        links = "".join(f'<a href="{h}">{_e(t)}</a>' for h, t in _NAV)
        nav = (
            f'<nav>{links}<span class="who" id="who">{_e(user.name)} ({_e(user.role)})</span>'
            f'<form method="post" action="/logout" class="inline">{_csrf(csrf)}'
            '<button id="logout">Log out</button></form></nav>'
        )
    msg = ""
    if flash:
        msg = f'<p class="flash {"ok" if flash_ok else "err"}" id="flash">{_e(flash)}</p>'
    tags = "".join(f'<script src="/static/{_e(s)}"></script>' for s in scripts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)} — edgectl</title>"
        '<link rel="stylesheet" href="/static/style.css">'
        '<link rel="stylesheet" href="/static/vendor/dygraph.min.css">'
        f'</head><body data-csrf="{_e(csrf)}">{nav}<main><h1>{_e(title)}</h1>{msg}{body}</main>'
        f"{tags}</body></html>"
    )


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(token)}">'


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]], table_id: str = "") -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    tid = f' id="{_e(table_id)}"' if table_id else ""
    return f"<table{tid}><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def login_page(error: str = "", next_url: str = "/") -> str:
    err = f'<p class="flash err" id="flash">{_e(error)}</p>' if error else ""
    body = (
        f'{err}<form method="post" action="/login" id="login-form">'
        f'<input type="hidden" name="next" value="{_e(next_url)}">'
        '<label>User <input name="user" id="user" autocomplete="username" required></label>'
        '<label>Password <input name="password" id="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button id="login">Log in</button></form>'
    )
    return page("Log in", body)


def suppression(condition: Mapping[str, Any] | None) -> str:
    """Why an alarm is not annunciated: ``"disabled"``, ``"shelved until it clears (one-shot)"``,
    ``"shelved until <elapsed>"``, or ``""`` (annunciated); ``condition`` is an
    ``alarm_conditions`` row."""
    if condition is None:
        return ""
    if not condition.get("enabled", True):
        return "disabled"
    shelved = condition.get("shelved") or ""
    if shelved == "oneshot":
        return "shelved until it clears (one-shot)"
    if shelved:
        until = condition.get("unshelve_s")
        return f"shelved until {hms(float(until))}" if until is not None else "shelved"
    return ""


def overview_page(
    info: Mapping[str, Any],
    tags: Mapping[str, Mapping[str, Any]],
    loops: Mapping[str, Mapping[str, Any]],
    alarms: Sequence[Mapping[str, Any]],
    phase_since_s: float | None,
    conditions: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Reactor, phase and its elapsed time, run state, key PVs with quality, alarms: the banner
    annunciates the alarms not shelved or disabled (``conditions``: ``alarm_conditions`` rows);
    shelved and disabled ones are named in a note of their own."""
    by_name = {c["name"]: c for c in conditions}
    shown = [a for a in alarms if not suppression(by_name.get(a["name"]))]
    held = [(c["name"], suppression(c)) for c in conditions if suppression(c)]
    banner = ""
    if shown:
        names = ", ".join(f"{a['name']} ({a['state']})" for a in shown)
        banner = f'<p class="banner" id="alarm-banner">Active alarms: {_e(names)}</p>'
    if held:
        names = ", ".join(f"{n}: {why}" for n, why in held)
        banner += f'<p class="note" id="alarm-suppressed">Not annunciated — {_e(names)}</p>'
    state = (
        "tripped" if info.get("tripped") else ("stopping" if info.get("stopping") else "running")
    )
    phase = info.get("phase") or "-"
    elapsed = "-" if phase_since_s is None else hms(float(info["time_s"]) - phase_since_s)
    facts = [
        ("Reactor", info.get("name")),
        ("Run state", state),
        ("Phase", phase),
        ("In phase for", elapsed),
        ("Run time", hms(float(info.get("time_s", 0.0)))),
        ("Clock speed (requested)", f"{float(info.get('clock_speed', 1.0)):g}x"),
        ("Scans / overruns", f"{info.get('scans')} / {info.get('overruns')}"),
    ]
    dl = "".join(f'<dt>{_e(k)}</dt><dd id="f-{_e(_slug(k))}">{_e(v)}</dd>' for k, v in facts)
    dl += '<dt>Speed achieved</dt><dd id="speed">measuring…</dd>'
    pvs = {str(s["pv"]) for s in loops.values() if s.get("pv")}
    key = sorted(pvs | {f"{n}.sp" for n in loops})
    rows = []
    for name in key:
        t = tags.get(str(name))
        if t is None:
            continue
        rows.append(
            [
                _e(name),
                f'<span data-tag="{_e(name)}">{_e(fmt(t["value"]))}</span>',
                _e(t.get("unit", "")),
                f'<span data-quality="{_e(name)}">{_e(t["quality"])}</span>',
            ]
        )
    return f'{banner}<dl class="facts">{dl}</dl><h2>Key values</h2>' + _table(
        ("Tag", "Value", "Unit", "Quality"), rows, "pv-table"
    )


def trends_page(tag_names: Sequence[str], loops: Mapping[str, str], selected: str) -> str:
    """The chart page; ``loops`` maps each loop to its PV tag (its setpoint is drawn too)."""
    opts = "".join(
        f'<option value="{_e(t)}"{" selected" if t == selected else ""}>{_e(t)}</option>'
        for t in tag_names
    )
    return (
        '<form id="trend-form" class="inline"><label>Tag <select id="tag" name="tag">'
        f"{opts}</select></label>"
        '<label>Window <select id="window" name="window">'
        '<option value="3600">1 h</option><option value="21600">6 h</option>'
        '<option value="86400">24 h</option><option value="0" selected>whole run</option>'
        "</select></label></form>"
        '<p class="hint">Drag to zoom, double-click to zoom out. History is min/max '
        "downsampled on the server; live points arrive by server-sent events. "
        'Points: <span id="npoints">0</span>, live: <span id="nlive">0</span>, '
        'last: <span id="last-value">-</span></p>'
        f'<div id="chart" data-loops="{_e(json.dumps(dict(loops)))}"></div>'
        '<div id="legend"></div>'
    )


def loops_page(
    loops: Mapping[str, Mapping[str, Any]], csrf: str, critical: Sequence[str], rights: Any
) -> str:
    """One faceplate per loop: SP/PV/OUT, mode, limits, gains, and the change form."""
    parts = []
    for name, s in loops.items():
        facts = [
            ("PV", f"{fmt(s.get('pv_value'))} ({s.get('pv_quality', '-')})"),
            ("SP", fmt(s.get("setpoint"))),
            ("Working SP", fmt(s.get("working_setpoint"))),
            ("OUT", fmt(s.get("output"))),
            ("Mode", s.get("mode")),
            ("Output limits", f"{fmt(s.get('output_min'))} … {fmt(s.get('output_max'))}"),
            (
                "Gains",
                f"kp {fmt(s.get('kp'))}, ti_s {fmt(s.get('ti_s'))}, td_s {fmt(s.get('td_s'))}",
            ),
        ]
        dl = "".join(
            f'<dt>{_e(k)}</dt><dd id="{_e(name)}-{_e(_slug(k))}">{_e(v)}</dd>' for k, v in facts
        )
        params = "".join(
            f'<option value="{p}">{p}</option>'
            for p in ("setpoint", "mode", "output", "kp", "ti_s", "td_s")
        )
        sign = (
            "<fieldset><legend>E-signature (required for: "
            f"{_e(', '.join(critical) or 'none')})</legend>"
            '<label>Password <input type="password" name="sig_password" '
            f'id="{_e(name)}-sig-password"></label>'
            f'<label>Meaning <input name="sig_meaning" id="{_e(name)}-sig-meaning"></label>'
            "</fieldset>"
        )
        form = (
            f'<form method="post" action="/loops/{_e(name)}" id="{_e(name)}-form">{_csrf(csrf)}'
            f'<label>Change <select name="param" id="{_e(name)}-param">{params}</select></label>'
            f'<label>Value <input name="value" id="{_e(name)}-value" required></label>'
            f'<label>Reason <input name="reason" id="{_e(name)}-reason" size="40"></label>'
            f'{sign}<button id="{_e(name)}-apply">Apply</button></form>'
        )
        parts.append(
            f'<section class="faceplate" id="loop-{_e(name)}"><h2>{_e(name)}</h2>'
            f'<dl class="facts">{dl}</dl>{form}</section>'
        )
    note = (
        f'<p class="hint">Your rights: {_e(", ".join(sorted(rights)))}. The controller checks '
        "every change (rights, limits, e-signature) and audits it before it acts.</p>"
    )
    return note + "".join(parts)


def alarms_page(
    active: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    csrf: str,
    conditions: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Alarms in alarm (annunciated first, then shelved/disabled ones, marked so), every
    shelved or disabled alarm, raise counts and the alarm log."""
    by_name = {c["name"]: c for c in conditions}
    annunciated = [a for a in active if not suppression(by_name.get(a["name"]))]
    held_active = [a for a in active if suppression(by_name.get(a["name"]))]
    rows = []
    for a in annunciated:
        ack = ""
        if a["state"] in ("active", "rtn_unack"):
            ack = (
                f'<form method="post" action="/alarms/ack" class="inline">{_csrf(csrf)}'
                f'<input type="hidden" name="name" value="{_e(a["name"])}">'
                f'<input name="reason" placeholder="reason" id="ack-reason-{_e(a["name"])}">'
                f'<button id="ack-{_e(a["name"])}">Acknowledge</button></form>'
            )
        rows.append(
            [
                _e(a["name"]),
                _e(a["state"]),
                _e(a["severity"]),
                _e(a["tag"]),
                _e(hms(a["raised_s"]) if a.get("raised_s") is not None else "-"),
                ack,
            ]
        )
    held = []
    in_alarm = {a["name"]: a for a in held_active}
    for c in conditions:
        why = suppression(c)
        if not why:
            continue
        hit = in_alarm.get(c["name"])
        held.append(
            [
                _e(c["name"]),
                _e(why),
                _e(c["state"]),
                _e(hit["severity"] if hit else "-"),
                _e(hms(hit["raised_s"]) if hit and hit.get("raised_s") is not None else "-"),
            ]
        )
    counts: dict[str, int] = {}
    for h in history:
        if h["transition"] == "raise":
            counts[h["name"]] = counts.get(h["name"], 0) + 1
    hist = [
        [
            _e(hms(h["time_s"])),
            _e(h["name"]),
            _e(h["transition"]),
            _e(h["severity"]),
            _e(fmt(h["value"])),
            _e(h["actor"] or ""),
            _e(h["message"]),
        ]
        for h in reversed(history)
    ]
    return (
        "<h2>Active</h2>"
        + _table(("Alarm", "State", "Severity", "Tag", "Raised", ""), rows, "active-alarms")
        + "<h2>Shelved and disabled</h2>"
        + _table(("Alarm", "Why", "State", "Severity", "Raised"), held, "suppressed-alarms")
        + "<h2>Counts (raises)</h2>"
        + _table(("Alarm", "Raises"), [[_e(k), _e(v)] for k, v in sorted(counts.items())])
        + "<h2>History</h2>"
        + _table(
            ("Time", "Alarm", "Transition", "Severity", "Value", "By", "Message"),
            hist,
            "alarm-history",
        )
    )


def audit_page(records: Sequence[Mapping[str, Any]], verdict: Mapping[str, Any]) -> str:
    cls = "ok" if verdict.get("intact") else "err"
    rows = [
        [
            _e(r["seq"]),
            _e(hms(r["time_s"])),
            _e(r["actor"]),
            _e(r["action"]),
            _e(r["target"]),
            _e(fmt(r["old"])),
            _e(fmt(r["new"])),
            _e(r["reason"]),
        ]
        for r in reversed(records)
    ]
    return f'<p class="flash {cls}" id="verdict">{_e(verdict.get("verdict"))}</p>' + _table(
        ("#", "Time", "User", "Action", "Target", "Old", "New", "Reason"), rows, "audit-table"
    )


def events_page(events: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [_e(hms(e["time_s"])), _e(e["kind"]), _e(e["source"]), _e(e["message"])]
        for e in reversed(events)
    ]
    return _table(("Time", "Kind", "Source", "Message"), rows, "events-table")


def export_page(tag_names: Sequence[str]) -> str:
    opts = "".join(f'<option value="{_e(t)}">{_e(t)}</option>' for t in tag_names)
    return (
        '<form method="get" action="/export.csv" id="export-form">'
        f'<label>Tags <select name="tag" multiple size="12" id="export-tags">{opts}</select>'
        "</label><button>Download CSV</button></form>"
        '<p class="hint">One row per sample: elapsed time (s, h), tag, value, unit, quality. '
        "The batch report of a finished run: <code>edgectl report RUN.db -o report.html</code>."
        "</p>"
    )


def _timeline_bar(timeline: Sequence[Mapping[str, Any]]) -> str:
    """The phases of the run as one bar, each segment as wide as the phase lasted."""
    total = sum(float(p["duration_s"]) for p in timeline)
    if total <= 0.0:
        return ""
    segs = "".join(
        f'<span class="seg seg{i % 4}{" running" if p["running"] else ""}" '
        f'style="width:{100.0 * float(p["duration_s"]) / total:.3f}%" '
        f'title="{_e(p["phase"])}: {_e(hms(float(p["duration_s"])))}">{_e(p["phase"])}</span>'
        for i, p in enumerate(timeline)
    )
    return f'<div class="timeline" id="timeline-bar">{segs}</div>'


def recipe_page(status: Mapping[str, Any], units: Mapping[str, str], csrf: str, rights: Any) -> str:
    """Phase timeline, the phases with their triggers, an operator transition request, and
    at-line sample entry per soft sensor with the references entered so far. ``units`` maps a
    soft sensor's tag to its unit; ``rights`` are the user's (forms the role lacks are not shown;
    the server refuses them anyway)."""
    if not status.get("phases"):
        return '<p class="hint" id="no-recipe">This reactor runs without a recipe.</p>'
    phase = str(status["phase"])
    facts = [
        ("Phase", phase),
        ("In phase for", hms(float(status["in_phase_s"]))),
        ("Run time", hms(float(status["time_s"]))),
    ]
    dl = "".join(f'<dt>{_e(k)}</dt><dd id="r-{_e(_slug(k))}">{_e(v)}</dd>' for k, v in facts)
    timeline = status.get("timeline", [])
    spans = [
        [
            _e(p["phase"]) + (" (now)" if p["running"] else ""),
            _e(hms(float(p["start_s"]))),
            _e(hms(float(p["duration_s"]))),
            _e(p["reason"] or "start"),
        ]
        for p in timeline
    ]
    out = [
        f'<dl class="facts">{dl}</dl><h2>Timeline</h2>',
        _timeline_bar(timeline),
        _table(("Phase", "Started", "Lasted", "Why"), spans, "timeline"),
    ]
    allowed = list(status.get("operator_transitions", []))
    out.append("<h2>Operator transition</h2>")
    if not allowed:
        out.append(
            f'<p class="hint" id="no-transition">Phase {_e(phase)} has no transition '
            "an operator may request.</p>"
        )
    elif "phase_request" in rights:
        opts = "".join(f'<option value="{_e(t)}">{_e(t)}</option>' for t in allowed)
        out.append(
            f'<form method="post" action="/recipe/phase" id="phase-form">{_csrf(csrf)}'
            f'<label>Go to <select name="to" id="phase-to">{opts}</select></label>'
            '<label>Reason <input name="reason" id="phase-reason" size="40" required></label>'
            '<button id="phase-request">Request</button></form>'
            '<p class="hint">The recipe takes the transition at its next scan; the request is '
            "audited first.</p>"
        )
    else:
        out.append('<p class="hint">Your role may not request transitions.</p>')
    rows = []
    for p in status["phases"]:
        trig = "<br>".join(
            f"→ {_e(t['to'])}: {_e('; '.join(t['triggers']))}" for t in p["transitions"]
        )
        sampling = "; ".join(
            f"{s['label']} every {hms(float(s['every_s']))} ({fmt(s['volume_ml'])} mL)"
            for s in p["sampling"]
        )
        sps = ", ".join(f"{k} {fmt(v)}" for k, v in p["setpoints"].items())
        modes = ", ".join(f"{k} {v}" for k, v in p["modes"].items())
        name = _e(p["name"]) + (" (now)" if p["name"] == phase else "")
        rows.append(
            [name, _e(sps), _e(modes), _e(p["feed"] or "-"), _e(sampling or "-"), trig or "-"]
        )
    out.append("<h2>Phases</h2>")
    out.append(
        _table(("Phase", "Setpoints", "Modes", "Feed", "Sampling", "Leaves"), rows, "phases")
    )
    sensors = status.get("softsensors") or {}
    out.append("<h2>At-line samples</h2>")
    if not sensors:
        out.append('<p class="hint" id="no-softsensor">No soft sensor takes references.</p>')
        return "".join(out)
    if "add_reference" in rights:
        opts = "".join(
            f'<option value="{_e(n)}">{_e(n)} ({_e(s["tag"])}, '
            f"{_e(units.get(s['tag'], ''))})</option>"
            for n, s in sensors.items()
        )
        out.append(
            f'<form method="post" action="/recipe/sample" id="sample-form">{_csrf(csrf)}'
            f'<label>Soft sensor <select name="sensor" id="sample-sensor">{opts}</select></label>'
            '<label>Value <input name="value" id="sample-value" required size="8"></label>'
            '<label>Sampled at <input name="sampled" id="sample-time" size="10" '
            'placeholder="h:mm[:ss]"></label>'
            '<label>Analyser <input name="analyser" id="sample-analyser" size="12"></label>'
            '<label>Reason <input name="reason" id="sample-reason" size="30"></label>'
            '<button id="sample-add">Enter</button></form>'
            '<p class="hint">Value in the soft sensor tag\'s unit; sampled at: run time of the '
            "sample (blank: now). The soft sensor's correction takes it as a reference.</p>"
        )
    for n, s in sensors.items():
        refs = [
            [
                _e(hms(float(r["sampled_s"]))),
                _e(hms(float(r["known_s"])) if r.get("known_s") is not None else "-"),
                _e(fmt(r["value"])),
                _e(fmt(r.get("prediction"))),
                _e(fmt(r.get("error"))),
                _e(fmt(r.get("accepted"))),
                _e(r.get("analyser", "")),
                _e(r.get("entered_by", "")),
            ]
            for r in reversed(s["references"])
        ]
        out.append(f"<h3>{_e(n)} ({_e(s['tag'])}, {_e(units.get(s['tag'], ''))})</h3>")
        out.append(
            _table(
                (
                    "Sampled",
                    "Known",
                    "Value",
                    "Estimate",
                    "Error",
                    "Accepted",
                    "Analyser",
                    "Entered by",
                ),
                refs,
                f"references-{_slug(n)}",
            )
        )
    return "".join(out)
