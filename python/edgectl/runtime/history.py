"""Read-only history queries of a running controller, for the faces (the dashboard):
downsampled trends, events, alarm transitions, the audit trail and its verification, and the
recipe's state with its phase timeline and the at-line references entered.

:class:`edgectl.runtime.controller.Controller` inherits these; a face reaches them only through
:meth:`edgectl.operator.OperatorService.query` (the ``read`` right, ``QUERIES``). Times in and
out are clock seconds of the run (the controller's ``now_s`` axis), like :meth:`trend`.
"""

from __future__ import annotations

import math
from typing import Any

from edgectl.errors import ConfigError
from edgectl.runtime.summary import phase_timeline

__all__ = ["ControllerHistory"]

#: the most buckets (points per pixel column) one trend request may ask for
MAX_BUCKETS = 4000
#: the most rows one log request returns
MAX_LOG_ROWS = 5000


class ControllerHistory:
    """History queries of the controller (a mixin; see the module docstring)."""

    # set by the controller
    historian: Any
    time_base_s: float
    now_s: float
    tags: Any
    lock: Any
    recipe: Any
    softsensors: Any

    def history(
        self,
        tag: str,
        start_s: float | None = None,
        end_s: float | None = None,
        buckets: int = 800,
    ) -> dict[str, Any]:
        """``tag`` between ``start_s`` and ``end_s`` (clock seconds; default: the run so far),
        reduced on the server to at most two points (min and max) per bucket of
        ``(end_s - start_s) / buckets`` seconds, so a 14-day trend opens as fast as a 1-hour one.
        Returns ``time_s``, ``value`` (equal-length lists), ``unit``, ``bucket_s``."""
        if tag not in self.tags:
            raise KeyError(f"unknown tag {tag!r}")
        n = int(buckets)
        if not 1 <= n <= MAX_BUCKETS:
            raise ConfigError(f"history of {tag!r}: buckets must be 1 to {MAX_BUCKETS}, got {n}")
        end = self.now_s if end_s is None else float(end_s)
        start = 0.0 if start_s is None else float(start_s)
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ConfigError(f"history of {tag!r}: start_s and end_s must be finite")
        unit = self.tags.tag(tag).unit
        if end <= start:
            return {"time_s": [], "value": [], "unit": unit, "bucket_s": 0.0}
        self.historian.flush()  # what this run has not committed yet is part of the trend
        base = self.time_base_s
        if tag not in {t.name for t in self.historian.tags()}:
            return {"time_s": [], "value": [], "unit": unit, "bucket_s": (end - start) / n}
        rows = self.historian.minmax(tag, base + start, base + end, n)
        times: list[float] = []
        values: list[float] = []
        for first, last, lo, hi in rows:
            if lo == hi or first == last:
                times.append(first - base)
                values.append(hi)
            else:  # the envelope of the bucket: its min, then its max
                times += [first - base, last - base]
                values += [lo, hi]
        return {"time_s": times, "value": values, "unit": unit, "bucket_s": (end - start) / n}

    def events_log(self, last: int = 500) -> list[dict[str, Any]]:
        """The last ``last`` events of the database (clock seconds), oldest first."""
        base = self.time_base_s
        n = _rows(last)
        self.historian.flush()  # with what this run has not committed yet
        rows = self.historian.events()[-n:]
        return [
            {
                "time_s": e.time_s - base,
                "kind": e.kind,
                "source": e.source,
                "message": e.message,
                "details": e.details,
            }
            for e in rows
        ]

    def alarm_log(self, last: int = 500) -> list[dict[str, Any]]:
        """The last ``last`` alarm transitions (raise, clear, ack with its actor), oldest first."""
        base = self.time_base_s
        n = _rows(last)
        self.historian.flush()
        rows = self.historian.alarms()[-n:]
        return [
            {
                "time_s": a.time_s - base,
                "name": a.name,
                "transition": a.transition,
                "severity": a.severity,
                "message": a.message,
                "value": a.value,
                "actor": a.actor,
            }
            for a in rows
        ]

    def audit_log(self, last: int = 500) -> list[dict[str, Any]]:
        """The last ``last`` audit records (who, what, old → new, reason with any
        e-signature manifest), oldest first."""
        base = self.time_base_s
        return [
            {
                "seq": r.seq,
                "time_s": r.time_s - base,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "old": r.old_value,
                "new": r.new_value,
                "reason": r.reason,
            }
            for r in self.historian.audit.records(last=_rows(last))
        ]

    def recipe_status(self, references: int = 50) -> dict[str, Any]:
        """The recipe as the operator sees it: every phase with its setpoints, feed, sampling
        and transitions (each trigger in words), the phase now and since when, the transitions
        an operator may request from it, the phase timeline of the run (from the historian's
        ``phase`` events, clock seconds), and per soft sensor the last ``references`` at-line
        references (value, sampling and known time, analyser, who entered it, error).
        ``phases`` is empty when the reactor has no recipe."""
        n = _rows(references)
        with self.lock:
            runner = self.recipe
            now_s = self.now_s
            current = runner.phase_name if runner is not None else ""
            entered_s = runner.entered_s if runner is not None else 0.0
            phases = [] if runner is None else list(runner.recipe.phases)
            refs = {}
            if self.softsensors is not None:
                refs = {
                    name: {"tag": b.cfg.tag, "references": [dict(r) for r in b.references[-n:]]}
                    for name, b in self.softsensors.blocks.items()
                }
        described = [
            {
                "name": p.name,
                "setpoints": dict(p.setpoints),
                "modes": dict(p.modes),
                "feed": None if p.feed is None else p.feed.kind,
                "sampling": [
                    {"label": s.label, "every_s": s.every_s, "volume_ml": s.volume_ml}
                    for s in p.sampling
                ],
                "transitions": [
                    {"to": t.to, "operator": t.operator, "triggers": t.triggers()}
                    for t in p.transitions
                ],
            }
            for p in phases
        ]
        operator_to = sorted(
            {
                t["to"]
                for p in described
                if p["name"] == current
                for t in p["transitions"]
                if t["operator"]
            }
        )
        self.historian.flush()
        events = self.historian.events(kind="phase")
        timeline = [
            {
                "phase": span.phase,
                "start_s": span.start_s,
                "duration_s": span.duration_s,
                "reason": span.reason,
                "running": span.running,
            }
            for span in phase_timeline(events, self.time_base_s, now_s, current)
        ]
        return {
            "phase": current,
            "entered_s": entered_s,
            "in_phase_s": now_s - entered_s if current else 0.0,
            "time_s": now_s,
            "phases": described,
            "operator_transitions": operator_to,
            "timeline": timeline,
            "softsensors": refs,
        }

    def audit_verify(self) -> dict[str, Any]:
        """``edgectl audit verify``'s verdict on the whole trail."""
        v = self.historian.audit.verify()
        return {"intact": v.is_intact, "records": v.n_records, "verdict": v.describe()}


def _rows(last: int) -> int:
    n = int(last)
    if not 1 <= n <= MAX_LOG_ROWS:
        raise ConfigError(f"last must be 1 to {MAX_LOG_ROWS}, got {n}")
    return n
