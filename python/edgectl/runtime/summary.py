"""The run summary, from the historian: how well each loop held its setpoint, the phase
timeline, the alarms, doses and the final volume.

For each loop with an ``acceptance`` block, the GOOD samples of its PV after ``settle_s`` are
compared with the loop's setpoint tag (``<loop>.sp``) sampled at the same scans: the largest
deviation, the fraction of samples inside the band, and a verdict. The same figures are what
the tests and the HIL suite assert. Samples that were not GOOD are not judged; their share is
given (``good_fraction``), and the summary names a loop whose PV was GOOD in less than
:data:`MIN_GOOD_FRACTION` of them (a soft sensor out of model for days: its loop fed blind).

The phase timeline comes from the recipe's ``phase`` events, the alarm intervals from the
``raise``/``clear`` alarm transitions, both on the culture's clock axis (seconds since it
started; a resumed run continues the same axis).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgectl.runtime.reactor_config import Acceptance, ReactorConfig

__all__ = [
    "AlarmSpan",
    "LoopFigures",
    "PhaseSpan",
    "Volume",
    "alarm_spans",
    "culture_end_s",
    "culture_run_uids",
    "format_summary",
    "limitation_summary",
    "loop_figures",
    "phase_timeline",
    "sampled_volume_ml",
]

#: at most this many intervals are listed per alarm (then "… N more")
MAX_ALARM_INTERVALS = 4
#: below this share of GOOD PV samples after settling the summary says how much went unjudged
#: (a soft sensor at 99 % T²/Q limits rejects ~1–2 % of normal spectra)
MIN_GOOD_FRACTION = 0.95


@dataclass(frozen=True)
class LoopFigures:
    """Deviation figures of one loop after its settling time."""

    loop: str
    pv: str
    band: float
    side: str
    n_samples: int
    max_abs_dev: float  #: max |pv − sp| (both) or max (sp − pv) (below)
    min_dev: float  #: min (pv − sp)
    max_dev: float  #: max (pv − sp)
    mean_abs_dev: float
    fraction_within: float
    ok: bool
    #: False when the run ended before ``settle_s``: nothing to judge (``ok`` is then True and
    #: the summary says "n/a"); a PV that was never GOOD after settling is judged and fails
    judged: bool = True
    #: GOOD PV samples after settling / all PV samples after settling (1.0 when there were none)
    good_fraction: float = 1.0


def culture_end_s(reader: Any, cfg: ReactorConfig, run_start_s: float) -> float | None:
    """Historian time the recipe's ``end`` phase was first entered (None: not reached, or the
    recipe has no end phase): the culture is over there, and the loops are judged before it."""
    end = cfg.recipe.end if cfg.recipe is not None else ""
    if not end:
        return None
    for ev in reader.events(run_start_s, kind="phase"):
        head = ev.message.partition(": ")[0]
        if head.partition(" → ")[2] == end:
            return float(ev.time_s)
    return None


def _deviation(
    reader: Any, pv: str, sp_tag: str, start_s: float, end_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    y = reader.samples(pv, start_s, end_s).good()
    r = reader.samples(sp_tag, start_s, end_s).good()
    if len(y) == 0 or len(r) == 0:
        return np.empty(0), np.empty(0)
    # setpoint in force at each PV sample time (last setpoint sample at or before it)
    idx = np.searchsorted(r.times_s, y.times_s, side="right") - 1
    keep = idx >= 0
    return y.times_s[keep], y.values[keep] - r.values[idx[keep]]


def loop_figures(reader: Any, cfg: ReactorConfig, run_start_s: float) -> dict[str, LoopFigures]:
    """Figures of every loop with an ``acceptance`` block; times are historian seconds. The
    samples judged are those after ``settle_s`` and before the culture's end phase, if any."""
    out: dict[str, LoopFigures] = {}
    end_s = culture_end_s(reader, cfg, run_start_s)
    for name, loop in cfg.loops.items():
        acc: Acceptance | None = getattr(loop, "acceptance", None)
        pv: str = getattr(loop, "pv", "")
        if acc is None or not pv:
            continue
        start_s = run_start_s + acc.settle_s
        if end_s is not None and end_s <= start_s:
            # the culture ended before the loop settled: nothing to judge
            nan = math.nan
            out[name] = LoopFigures(
                name, pv, acc.band, acc.side, 0, nan, nan, nan, nan, nan, True, False
            )
            continue
        _, dev = _deviation(reader, pv, f"{name}.sp", start_s, end_s)
        n = int(dev.size)
        n_all = len(reader.samples(pv, start_s, end_s))
        good_fraction = n / n_all if n_all else 1.0
        if n == 0:
            nan = math.nan
            recorded = reader.samples(f"{name}.sp", start_s, end_s)
            judged = len(recorded) > 0  # the run went past settle_s, yet no GOOD PV
            out[name] = LoopFigures(
                name, pv, acc.band, acc.side, 0, nan, nan, nan, nan, nan, not judged, judged, 0.0
            )
            continue
        if acc.side == "both":
            worst = float(np.max(np.abs(dev)))
            inside = np.abs(dev) <= acc.band * (1.0 + 1e-9)
        else:
            worst = float(max(0.0, -np.min(dev)))
            inside = dev >= -acc.band * (1.0 + 1e-9)
        out[name] = LoopFigures(
            loop=name,
            pv=pv,
            band=acc.band,
            side=acc.side,
            n_samples=n,
            max_abs_dev=worst,
            min_dev=float(np.min(dev)),
            max_dev=float(np.max(dev)),
            mean_abs_dev=float(np.mean(np.abs(dev))),
            fraction_within=float(np.count_nonzero(inside) / n),
            # readings are quantised decimals (EZO: 0.01 °C): 37.00 - 36.90 must count as 0.1
            ok=worst <= acc.band * (1.0 + 1e-9),
            good_fraction=good_fraction,
        )
    return out


@dataclass(frozen=True)
class PhaseSpan:
    """One recipe phase of the culture: entered at ``start_s`` (clock seconds) for
    ``duration_s``, because of ``reason`` ("" for the phase the culture started in)."""

    phase: str
    start_s: float
    duration_s: float
    reason: str = ""
    running: bool = False  #: the phase the run ended in


@dataclass(frozen=True)
class AlarmSpan:
    """One raise of an alarm and its clear (``cleared_s`` None: still active at the end)."""

    name: str
    severity: str
    raised_s: float
    cleared_s: float | None


@dataclass(frozen=True)
class Volume:
    """The culture volume at the end from the doses: ``initial_l`` + ``dosed_ml`` −
    ``sampled_ml`` (evaporation is not counted); ``plant_l`` is the simulated plant's own
    volume when there is one."""

    initial_l: float
    dosed_ml: float
    sampled_ml: float
    plant_l: float | None = None

    @property
    def final_l(self) -> float:
        return self.initial_l + (self.dosed_ml - self.sampled_ml) / 1000.0


def phase_timeline(
    events: Iterable[Any], time_base_s: float, end_s: float, current_phase: str
) -> list[PhaseSpan]:
    """Phases from the recipe's ``phase`` events (``"<from> → <to>: <reason>"``).

    ``events`` are historian events (any kind; only ``phase`` ones are used) of the culture,
    ``time_base_s`` the historian time of clock 0, ``end_s`` the clock time the run ended at.
    The culture starts at clock 0 in the first event's from-phase (``current_phase`` when
    there was no change).
    """
    changes: list[tuple[float, str, str, str]] = []
    for ev in events:
        if ev.kind != "phase":
            continue
        head, _, reason = ev.message.partition(": ")
        src, arrow, dst = head.partition(" → ")
        if not arrow:
            continue
        changes.append((float(ev.time_s) - time_base_s, src, dst, reason))
    if not current_phase and not changes:
        return []
    first = changes[0][1] if changes else current_phase
    starts: list[tuple[float, str, str]] = [(0.0, first, "")]
    starts += [(t, dst, reason) for t, _, dst, reason in changes]
    spans = []
    for i, (t, name, reason) in enumerate(starts):
        last = i + 1 == len(starts)
        t_end = end_s if last else starts[i + 1][0]
        spans.append(PhaseSpan(name, t, max(0.0, t_end - t), reason, running=last))
    return spans


def alarm_spans(transitions: Iterable[Any], time_base_s: float) -> list[AlarmSpan]:
    """Raise–clear intervals of every alarm, in order of raising (acknowledgements are not
    intervals; a clear without a raise in ``transitions`` is ignored)."""
    open_: dict[str, tuple[float, str]] = {}
    done: list[AlarmSpan] = []
    for a in transitions:
        t = float(a.time_s) - time_base_s
        if a.transition == "raise" and a.name not in open_:
            open_[a.name] = (t, a.severity)
        elif a.transition == "clear" and a.name in open_:
            raised, severity = open_.pop(a.name)
            done.append(AlarmSpan(a.name, severity, raised, t))
    done += [AlarmSpan(n, sev, t, None) for n, (t, sev) in open_.items()]
    return sorted(done, key=lambda s: s.raised_s)


def culture_run_uids(runs: Sequence[Any]) -> set[str]:
    """The runs of the culture the last run belongs to: it and, while a run was resumed, the
    one before it (``runs`` oldest first, as :meth:`HistoryReader.runs` gives them)."""
    uids: set[str] = set()
    for run in reversed(runs):
        uids.add(run.run_uid)
        if run.resumed_from is None:
            break
    return uids


def limitation_summary(events: Iterable[Any], time_base_s: float, end_s: float) -> str:
    """Feed limitations from the recipe's ``limit`` events (``"<kind> limitation: ..."`` and
    ``"<kind> limitation cleared; ..."``): per kind the count, the time limited in all and the
    first intervals in hours; ``"none"`` without any."""
    open_: dict[str, float] = {}
    spans: dict[str, list[tuple[float, float | None]]] = {}
    for ev in events:
        if ev.kind != "limit":
            continue
        kind, _, rest = ev.message.partition(" limitation")
        t = float(ev.time_s) - time_base_s
        if rest.startswith(" cleared"):
            if kind in open_:
                spans.setdefault(kind, []).append((open_.pop(kind), t))
        elif kind not in open_:
            open_[kind] = t
    for kind, t in open_.items():
        spans.setdefault(kind, []).append((t, None))
    if not spans:
        return "none"
    parts = []
    for kind, ss in spans.items():
        total_h = sum((end_s if b is None else b) - a for a, b in ss) / 3600.0
        shown = ", ".join(
            f"{_h(a)}–{'active at end' if b is None else _h(b)}"
            for a, b in ss[:MAX_ALARM_INTERVALS]
        )
        more = f", … {len(ss) - MAX_ALARM_INTERVALS} more" if len(ss) > MAX_ALARM_INTERVALS else ""
        parts.append(f"{kind} {len(ss)}× {total_h:.2f} h ({shown}{more})")
    return "; ".join(parts)


def sampled_volume_ml(events: Iterable[Any]) -> float:
    """Broth drawn by the recipe's ``sample`` events (``"<label>: <volume> mL"``)."""
    total = 0.0
    for ev in events:
        if ev.kind != "sample" or not ev.message.endswith(" mL"):
            continue
        try:
            total += float(ev.message[:-3].rpartition(": ")[2])
        except ValueError:
            continue
    return total


def _h(t_s: float) -> str:
    return f"{t_s / 3600.0:.3f}"


def _phase_lines(phases: Sequence[PhaseSpan]) -> list[str]:
    lines = []
    for p in phases:
        why = p.reason or "start"
        end = ", at end" if p.running else ""
        lines.append(
            f"  phase     {p.phase:<12} from {_h(p.start_s)} h for {_h(p.duration_s)} h{end}"
            f"  ({why})"
        )
    return lines


def _alarm_lines(alarms: Sequence[AlarmSpan]) -> list[str]:
    if not alarms:
        return ["  alarms                 none"]
    by_name: dict[str, list[AlarmSpan]] = {}
    for a in alarms:
        by_name.setdefault(a.name, []).append(a)
    lines = [f"  alarms                 {len(alarms)} raised, {len(by_name)} distinct (times in h)"]
    for name, spans in by_name.items():
        shown = []
        for a in spans[:MAX_ALARM_INTERVALS]:
            end = _h(a.cleared_s) if a.cleared_s is not None else "active at end"
            shown.append(f"{_h(a.raised_s)}–{end}")
        more = len(spans) - MAX_ALARM_INTERVALS
        if more > 0:
            shown.append(f"… {more} more")
        lines.append(
            f"  alarm     {name:<24} {spans[0].severity:<8} {len(spans)}×  {', '.join(shown)}"
        )
    return lines


def _volume_line(v: Volume) -> str:
    plant = f"; simulated plant {v.plant_l:.3f} L" if v.plant_l is not None else ""
    return (
        f"  final volume           {v.final_l:.3f} L = {v.initial_l:.3f} L + {v.dosed_ml:.1f} mL "
        f"dosed − {v.sampled_ml:.1f} mL sampled{plant}"
    )


def _lateness_line(lat: Mapping[str, Any], scans: Any, overruns: Any) -> str:
    return (
        "  scan lateness          "
        f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, max {lat['max_ms']:.3f} ms"
        f" over {scans} scans, {overruns} overruns"
    )


def _timing_lines(timing: Mapping[str, Any], info: Mapping[str, Any]) -> list[str]:
    lines = []
    lat = timing.get("lateness_ms")
    if lat:
        lines.append(
            _lateness_line(
                lat, timing.get("scans", info.get("scans", 0)), timing.get("overruns", 0)
            )
        )
    slow = timing.get("wall_overruns")
    if slow:
        lines.append(f"  slow scans             {int(slow)} took longer than a period of wall time")
    held = timing.get("held_wall_s")
    if held is not None:
        by = sorted((timing.get("held_by") or {}).items(), key=lambda kv: -float(kv[1]))
        # the participants that held it longest (the scan, a device's I/O worker, the rig)
        parts = ", ".join(f"{k} {float(v):.1f} s" for k, v in by[:4])
        if len(by) > 4:
            parts += f", {len(by) - 4} others {sum(float(v) for _, v in by[4:]):.1f} s"
        lines.append(
            f"  clock held             {float(held):.1f} s{f' ({parts})' if parts else ''}"
        )
    achieved = timing.get("achieved_speed")
    if achieved is not None:
        requested = timing.get("requested_speed", timing.get("speed"))
        of = f" (requested {float(requested):g}x)" if requested is not None else ""
        lines.append(f"  achieved speed         {float(achieved):.1f}x{of}")
    return lines


def format_summary(
    figures: Mapping[str, LoopFigures],
    info: Mapping[str, Any],
    extra: Mapping[str, Any],
    timing: Mapping[str, Any] | None = None,
    *,
    phases: Sequence[PhaseSpan] | None = None,
    alarms: Sequence[AlarmSpan] | None = None,
    volume: Volume | None = None,
) -> str:
    """A readable end-of-run summary.

    ``extra`` lines come first (``name value``), then the final volume, the timing lines,
    the phase timeline, the alarms and the loop table. ``timing`` (None: the scan lateness of
    ``info``) may hold ``lateness_ms`` (``p50_ms``, ``p99_ms``, ``max_ms``) with ``scans`` and
    ``overruns``; ``held_wall_s`` with ``held_by`` (name → wall seconds the paced clock held
    for it); ``achieved_speed`` with ``requested_speed``. Each line is printed when its keys
    are present. ``phases``, ``alarms`` and ``volume`` are left out when None.
    """
    lines = [f"run summary: {info.get('name', '')}"]
    for k, v in extra.items():
        lines.append(f"  {k:<22} {v}")
    if volume is not None:
        lines.append(_volume_line(volume))
    if timing is None:
        lat = info.get("lateness_ms", {})
        if lat:
            lines.append(_lateness_line(lat, info.get("scans", 0), info.get("overruns", 0)))
    else:
        lines += _timing_lines(timing, info)
    if phases:
        lines += _phase_lines(phases)
    if alarms is not None:
        lines += _alarm_lines(alarms)
    if figures:
        lines.append("  loop      pv           band        worst dev   within   verdict")
    for f in figures.values():
        band = f"±{f.band:g}" if f.side == "both" else f"≥ sp−{f.band:g}"
        if not f.judged:
            lines.append(f"  {f.loop:<9} {f.pv:<12} {band:<11} n/a (run shorter than settle_s)")
            continue
        lines.append(
            f"  {f.loop:<9} {f.pv:<12} {band:<11} {f.max_abs_dev:<11.4g} "
            f"{f.fraction_within * 100:5.1f} %  {'PASS' if f.ok else 'FAIL'}"
        )
        if f.good_fraction < MIN_GOOD_FRACTION:
            lines.append(
                f"  {'':<9} {f.pv} not GOOD in {(1.0 - f.good_fraction) * 100:.1f} % of the "
                "samples after settling: not judged"
            )
    return "\n".join(lines)
