"""The controller's side of operator changes: validate against the live state (``preview_*``),
apply a change whose audit record is committed (:meth:`ControllerChanges.apply_change`), and
re-apply, on resume, the audited changes the saved state had not caught up with
(:meth:`ControllerChanges.replay`).

:class:`edgectl.runtime.controller.Controller` inherits these methods; only the operator
service (:mod:`edgectl.operator.service`) calls them. Each takes the scan lock briefly and
never touches storage (the audit write happened before, outside the lock).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from edgectl.errors import AlarmError, AlarmStateError, ConfigError, EdgectlError

__all__ = ["ALARM_OPS", "ControllerChanges"]

#: the alarm annotations an operator change puts in force (``comment`` only records)
ALARM_OPS = frozenset({"shelve", "enable", "confirm"})


class ControllerChanges:
    """Operator-change methods of the controller (a mixin; see the module docstring)."""

    # set by the controller
    lock: threading.RLock
    loops: dict[str, Any]
    alarm_mgr: Any
    recipe: Any
    softsensors: Any
    scheduler: Any
    now_s: float
    operator_seq: int
    stop_reason: str
    stopped: threading.Event
    deferred_audit: deque[dict[str, Any]]

    def _loop(self, loop: str) -> Any:
        raise NotImplementedError

    def _event(self, now_s: float, kind: str, source: str, message: str, **details: Any) -> None:
        raise NotImplementedError

    def _alarm(self, ev: Any) -> None:
        raise NotImplementedError

    def _ts(self, now_s: float) -> float:
        raise NotImplementedError

    def persist(self) -> None:
        raise NotImplementedError

    # Audit actions that put a change in force, and so are re-applied on resume
    _REPLAYED = frozenset(
        {
            "set",
            "phase_request",
            "add_reference",
            "autotune_applied",
            "model_switch",
            "shelve",
            "enable",
            "confirm",
        }
    )

    def replay(self, records: Iterable[Any]) -> list[int]:
        """Re-apply audited changes the saved state does not hold yet (a crash between the
        audit record and the next state commit): every ``set`` of a loop setting, phase
        request, at-line reference and autotune result after :attr:`operator_seq`, in order,
        except those a later ``not_applied`` record withdrew. Returns their sequence numbers."""
        records = list(records)
        withdrawn = {
            r.new_value.get("seq")
            for r in records
            if r.action == "not_applied" and isinstance(r.new_value, dict)
        }
        done: list[int] = []
        with self.lock:
            for r in records:
                self.operator_seq = max(self.operator_seq, r.seq)
                if r.action not in self._REPLAYED or r.seq in withdrawn:
                    continue
                try:
                    self._replay_one(r)
                except (EdgectlError, ValueError, KeyError, TypeError) as exc:
                    self._event(
                        self.now_s, "restart", r.target, f"audit #{r.seq} not re-applied: {exc}"
                    )
                    continue
                done.append(r.seq)
            if done:
                self._event(
                    self.now_s,
                    "restart",
                    "operator",
                    f"re-applied {len(done)} audited change(s) newer than the saved state",
                    seqs=done,
                )
        return done

    def _replay_one(self, r: Any) -> None:
        parts = r.target.split(".")
        if r.action == "set" and parts[0] == "loops" and len(parts) >= 3:
            loop, param = parts[1], ".".join(parts[2:])
            if loop in self.loops:
                self._apply_loop(loop, param, r.new_value)
        elif r.action == "autotune_applied" and parts[0] == "loops" and len(parts) == 2:
            view = self.loops.get(parts[1])
            if view is not None and isinstance(r.new_value, dict):
                for k in ("kp", "ti_s", "td_s"):
                    if isinstance(r.new_value.get(k), int | float):
                        view.set(k, float(r.new_value[k]))
        elif r.action == "phase_request" and self.recipe is not None:
            if self.recipe.phase_name == r.old_value:
                self.recipe.request(str(r.new_value))
        elif r.action == "model_switch" and self.softsensors is not None:
            self.softsensors[parts[1]].switch_to(dict(r.new_value))
        elif r.action in ALARM_OPS and parts[0] == "alarms" and len(parts) == 2:
            if parts[1] in self.alarm_mgr.alarms:
                self._apply_alarm_op(r.action, parts[1], r.new_value, r.actor)
        elif r.action == "add_reference" and self.softsensors is not None:
            v = r.new_value if isinstance(r.new_value, dict) else {}
            block = self.softsensors[parts[1]]
            block.add_reference(float(v["value"]), float(v["sampled_s"]))

    # -- operator changes (only through edgectl.operator.OperatorService) ----------------------
    #
    # ``preview_*`` validate against the live state and return what the change will do; they
    # take the scan lock briefly and never touch storage. ``apply_change`` applies a change
    # whose audit record is committed, between two scans.

    def preview_autotune(self, loop: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The relay settings an autotune of ``loop`` will run with (validated)."""
        with self.lock:
            plan = getattr(self._loop(loop), "autotune_plan", None)
            if plan is None:
                raise EdgectlError(f"loop {loop!r} cannot autotune")
            result: dict[str, Any] = plan(dict(options))
            return result

    def preview_ack(self, name: str | None) -> list[str]:
        """The alarms an acknowledgement will acknowledge."""
        with self.lock:
            mgr = self.alarm_mgr
            if name is not None:
                if name not in mgr.alarms:
                    raise AlarmError(f"unknown alarm {name!r} (alarms: {sorted(mgr.alarms)})")
                state = mgr.alarms[name].state.value
                if state not in ("active", "rtn_unack"):
                    raise AlarmError(f"alarm {name!r} is {state}: nothing to acknowledge")
                return [name]
            return [a.name for a in mgr.alarms.values() if a.state.value in ("active", "rtn_unack")]

    def preview_alarm_op(self, command: str, name: str, value: Any) -> tuple[Any, Any]:
        """(old, new) of an alarm annotation (``shelve``, ``enable``, ``confirm``,
        ``comment``; :class:`edgectl.operator.changes.Change`), or :class:`AlarmStateError`
        when the alarm's state does not allow it. ``shelve`` takes ``{"kind": "timed" |
        "oneshot" | "unshelve", "duration_s"}``; a timed shelve's end is fixed here, in clock
        seconds (its bound is the service's)."""
        with self.lock:
            mgr = self.alarm_mgr
            if name not in mgr.alarms:
                raise AlarmError(f"unknown alarm {name!r} (alarms: {sorted(mgr.alarms)})")
            a = mgr.alarms[name]
            old = a.annotations()
            if command == "enable":
                if not isinstance(value, bool):
                    raise AlarmError(f"alarm {name!r}: enable takes true or false")
                if a.enabled == value:
                    how = "enabled" if value else "disabled"
                    raise AlarmStateError(f"alarm {name!r} is already {how}", f"already_{how}")
                return old, {"enabled": value}
            if not a.enabled:
                raise AlarmStateError(f"alarm {name!r} is disabled: enable it first", "disabled")
            if command == "comment":
                return None, str(value)
            if command == "confirm":
                if not a.acked_in_episode:
                    raise AlarmStateError(
                        f"alarm {name!r} is not acknowledged since it last raised: nothing to "
                        "confirm",
                        "not_acked",
                    )
                if a.confirmed:
                    raise AlarmStateError(
                        f"alarm {name!r} is already confirmed", "already_confirmed"
                    )
                return old, {"confirmed": True}
            kind = value.get("kind") if isinstance(value, Mapping) else None
            if command != "shelve" or kind not in ("timed", "oneshot", "unshelve"):
                raise AlarmError(f"alarm {name!r}: unknown operation {command} {value!r}")
            if kind == "unshelve":
                if not a.shelved:
                    raise AlarmStateError(f"alarm {name!r} is not shelved", "not_shelved")
                return old, {"shelved": "", "unshelve_s": None}
            if kind == "oneshot":
                if a.shelved == "oneshot":
                    raise AlarmStateError(
                        f"alarm {name!r} is already shelved until it clears", "already_shelved"
                    )
                return old, {"shelved": "oneshot", "unshelve_s": None}
            if a.shelved == "timed":
                raise AlarmStateError(
                    f"alarm {name!r} is already shelved for a time: unshelve it first",
                    "already_shelved",
                )
            duration = value.get("duration_s")
            if isinstance(duration, bool) or not isinstance(duration, int | float):
                raise AlarmError(f"alarm {name!r}: a timed shelve needs duration_s (seconds)")
            if not (math.isfinite(float(duration)) and duration > 0):
                raise AlarmError(f"alarm {name!r}: duration_s must be finite and > 0")
            return old, {"shelved": "timed", "unshelve_s": self.now_s + float(duration)}

    def alarm_conditions(self) -> list[dict[str, Any]]:
        """Every alarm with its state and operator annotations (the OPC UA conditions)."""
        with self.lock:
            return [
                {"name": a.name, "state": a.state.value, "now_s": self.now_s, **a.annotations()}
                for a in self.alarm_mgr.alarms.values()
            ]

    def preview_reset_trip(self) -> dict[str, Any]:
        """What a trip reset will do: interlocks released, interlocks still engaged."""
        with self.lock:
            mgr = self.alarm_mgr
            released, still = [], []
            for il in mgr.interlocks.values():
                if not il.engaged:
                    continue
                if any(mgr.alarms[a].in_alarm for a in il.spec.alarms):
                    still.append(il.name)
                else:
                    released.append(il.name)
            tripped = any(
                il.engaged and il.spec.action == "trip" and il.name in still
                for il in mgr.interlocks.values()
            )
            return {"tripped": tripped, "released": released, "still_engaged": still}

    def preview_phase(self, to: str) -> str:
        """The current phase, after checking that an operator transition leads to ``to``."""
        with self.lock:
            if self.recipe is None:
                raise EdgectlError("this reactor has no recipe")
            allowed = [t.to for t in self.recipe.phase.transitions if t.operator]
            if to not in allowed:
                raise EdgectlError(
                    f"phase {self.recipe.phase_name!r} has no operator transition to {to!r}"
                    f" (allowed: {allowed})"
                )
            return self.recipe.phase_name

    def preview_reference(
        self, sensor: str, value: float, sampled_s: float | None, analyser: str = ""
    ) -> dict[str, Any]:
        """The reference as it will be recorded: value, sample time (clock seconds) and the
        analyser that measured it."""
        with self.lock:
            if self.softsensors is None:
                raise ConfigError("this reactor has no soft sensors")
            self.softsensors[sensor]  # KeyError/ConfigError for an unknown sensor
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"softsensors.{sensor}: a reference must be a number")
            t = self.now_s if sampled_s is None else float(sampled_s)
            if not (math.isfinite(float(value)) and math.isfinite(t)):
                raise ConfigError(f"softsensors.{sensor}: reference and time must be finite")
            if t > self.now_s:
                raise ConfigError(
                    f"softsensors.{sensor}: sampled_s {t:g} is after now ({self.now_s:g})"
                )
            out: dict[str, Any] = {"value": float(value), "sampled_s": t}
            if analyser:
                out["analyser"] = str(analyser)[:80]
            return out

    def preview_model_switch(self, sensor: str, model: Any) -> tuple[Any, Any]:
        """(the released model now, the model that will be released): version, source file,
        SHA-256 of the file, LVs, RMSEC. A file is loaded and checked against the soft sensor
        (axis, response) here, before the change is audited."""
        with self.lock:
            if self.softsensors is None:
                raise ConfigError("this reactor has no soft sensors")
            block = self.softsensors[sensor]
        return block.describe_model(block.model_version), block.stage_model(model)

    def apply_change(
        self,
        command: str,
        target: str,
        params: Mapping[str, Any],
        value: Any,
        *,
        seq: int,
        who: str,
    ) -> Any:
        """Apply one validated change whose audit record ``seq`` is committed; returns what the
        caller gets back. Runs between two scans (scan lock), with no storage call; the state
        holding the change is queued for the historian at once."""
        with self.lock:
            result = self._apply(command, target, params, value, who)
            self.operator_seq = max(self.operator_seq, seq)
            self.persist()
            return result

    def _apply(
        self, command: str, target: str, params: Mapping[str, Any], value: Any, who: str
    ) -> Any:
        if command in ("setpoint", "mode", "output", "tune", "stage"):
            return self._apply_loop(str(params["loop"]), str(params["param"]), value)
        if command == "autotune":
            view = self._loop(str(params["loop"]))
            begin = getattr(view, "autotune_begin", None)
            if begin is None:
                raise EdgectlError(f"loop {params['loop']!r} cannot autotune")
            result: dict[str, Any] = begin(value)
            return result
        if command == "ack":
            events = []
            for name in value:
                a = self.alarm_mgr.alarms[name]
                if a.state.value in ("active", "rtn_unack"):
                    events.append(a.acknowledge(self.now_s, who))
            for ev in events:
                self._alarm(ev)
            return [{"name": e.name, "state": e.state.value} for e in events]
        if command in ALARM_OPS:
            return self._apply_alarm_op(command, str(params["name"]), value, who)
        if command == "comment":
            self._event(
                self.now_s, "alarm_comment", target, f"{who}: {value}", user=who, comment=value
            )
            return None
        if command == "reset_trip":
            return self.alarm_mgr.reset_trip()
        if command == "phase_request":
            assert self.recipe is not None
            self.recipe.request(str(value))
            return None
        if command == "add_reference":
            assert self.softsensors is not None
            sensor = str(params["sensor"])
            block = self.softsensors[sensor]
            out: dict[str, Any] = block.add_reference(
                value["value"],
                value["sampled_s"],
                analyser=str(value.get("analyser", "")),
                entered_by=who,
                known_s=self.now_s,
            )
            self._event(
                self.now_s, "reference", f"softsensors.{sensor}", f"{value['value']:g}", **out
            )
            return out
        if command == "model_switch":
            assert self.softsensors is not None
            sensor = str(params["sensor"])
            old = self.softsensors[sensor].switch_to(value)
            self._event(
                self.now_s,
                "model_switch",
                f"softsensors.{sensor}",
                f"model version {old} -> {value['version']} by {who}",
                **value,
            )
            return value
        if command == "stop":
            self.request_stop(str(value))
            return None
        raise EdgectlError(f"unknown operator command {command!r}")

    def _apply_alarm_op(self, command: str, name: str, value: Any, who: str) -> Any:
        """Put an annotation (:meth:`preview_alarm_op`'s ``new``) on alarm ``name``; an event
        records it beside the alarm log (whose raise/clear/ack records go on unchanged)."""
        a = self.alarm_mgr.alarms[name]
        if not isinstance(value, Mapping):
            raise AlarmError(f"alarm {name!r}: {command} needs its annotation, got {value!r}")
        if command == "enable":
            a.enabled = bool(value["enabled"])
            what = "enabled" if a.enabled else "disabled (still evaluated, recorded, interlocked)"
        elif command == "confirm":
            a.confirmed = True
            what = "confirmed"
        else:
            shelved = value.get("shelved", "")
            a.shelved = shelved if shelved in ("timed", "oneshot") else ""
            until = value.get("unshelve_s")
            a.unshelve_s = float(until) if a.shelved == "timed" and until is not None else None
            what = "unshelved"
            if a.shelved == "timed" and a.unshelve_s is not None:
                what = f"shelved until clock {a.unshelve_s:g} s"
            elif a.shelved:
                what = "shelved until it clears"
        self._event(self.now_s, f"alarm_{command}", f"alarms.{name}", f"{what} by {who}")
        return a.annotations()

    def _recipe_reference(self, result: Any, now_s: float) -> None:
        """A recipe sample's analysed value (:class:`edgectl.runtime.atline.PendingResult`)
        goes to its soft sensor, known now, sampled at ``result.sampled_s``; recorded as an
        event and an automatic audit record (``recipe_reference``; not re-applied on resume:
        the soft sensor's saved state holds it)."""
        if self.softsensors is None:
            return
        target = f"softsensors.{result.sensor}"
        out = self.softsensors[result.sensor].add_reference(
            result.value,
            result.sampled_s,
            analyser=result.analyser,
            entered_by="recipe",
            known_s=now_s,
        )
        self._event(now_s, "reference", target, f"{result.value:g} (recipe sample)", **out)
        self.deferred_audit.append(
            {
                "actor": "edgectl",
                "action": "recipe_reference",
                "target": target,
                "old": None,
                "new": {k: v for k, v in out.items() if isinstance(v, int | float | str | bool)},
                "reason": f"recipe sample, {result.analyser}",
                "time_s": self._ts(now_s),
            }
        )

    def _apply_loop(self, loop: str, param: str, value: Any) -> Any:
        view = self._loop(loop)
        if param == "mode" and isinstance(value, Mapping):
            old = view.set("mode", value["mode"])
            view.set("output", value["output"])
            return old
        return view.set(param, value)

    def request_stop(self, reason: str = "") -> None:
        """Stop scanning (the run then makes every output safe and closes); ``reason`` is
        what the run records as its stop reason (``run.controller.stop_reason``)."""
        if not self.stop_reason:
            self.stop_reason = reason
        self.stopped.set()
        self.scheduler.stop()

    def _event_now(self, kind: str, source: str, message: str, **details: Any) -> None:
        with self.lock:
            self._event(self.now_s, kind, source, message, **details)

    def audit_time_s(self) -> float:
        """The run's time axis now (time base + clock seconds): audit records' time."""
        return self._ts(self.now_s)
