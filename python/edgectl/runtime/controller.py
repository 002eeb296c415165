"""The controller: one scan = read the process image, run recipe, loops, alarms and interlocks,
write outputs, record history.

Data flow of one scan (DESIGN.md)::

    devices ─collect─► tags ─► recipe ► loops ► alarms/interlocks ─write─► devices
                                                   └─► historian (samples, events, alarms)

The scan never touches the disk: history goes to the historian's queue, audit records of
automatic changes (autotune results) to :attr:`Controller.deferred_audit`, which the operator
service writes outside the scan lock. Operator changes come only through the operator service
(:mod:`edgectl.operator`): it authenticates, authorises, validates and audits a change, then
hands it to :meth:`Controller.apply_change`, which applies it between two scans (under the scan
lock, with no storage call). Every applied change carries the sequence number of its audit
record; the saved state says up to which record it is complete, so a resume after a crash
re-applies the audited changes the state had not caught up with (:meth:`Controller.restore`).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from edgectl.errors import ConfigError, EdgectlError
from edgectl.operator.apply import ControllerChanges
from edgectl.quality import Quality
from edgectl.runtime.alarms import AlarmEvent, AlarmManager, AlarmSpec
from edgectl.runtime.atline import AtLineAnalyser
from edgectl.runtime.feedlimit import FeedLimits, LimitEvent, VesselState
from edgectl.runtime.history import ControllerHistory
from edgectl.runtime.pumpcheck import PumpMonitor
from edgectl.runtime.reactor_config import CascadeLoop, FeedLoop, ReactorConfig
from edgectl.runtime.recipe import PhaseChange, RecipeRunner
from edgectl.runtime.scheduler import ScanScheduler
from edgectl.runtime.softsensor import drift_alarms
from edgectl.runtime.tags import Sample, Tag, TagStore

__all__ = ["Controller", "DeviceHub", "EngineLike", "LoopRuntime", "ScanContext"]

#: the tag that carries the historian's health (2 ok, 1 degraded, 0 failed) and its alarms
HISTORIAN_HEALTH_TAG = "historian.health"
_HEALTH_LEVEL = {"ok": 2.0, "degraded": 1.0, "failed": 0.0}


@dataclass
class ScanContext:
    """What loops may read besides tags during one scan."""

    now_s: float
    dt_s: float
    phase: str
    feed_rate_ml_min: float | None
    tripped: bool


class LoopRuntime(Protocol):
    """One configured loop as the operator API sees it (:class:`edgectl.runtime.loops.LoopView`)."""

    name: str
    outputs: tuple[str, ...]

    def settings(self) -> dict[str, Any]: ...

    def set(self, param: str, value: Any) -> Any: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


class EngineLike(Protocol):
    """Every loop of a reactor, stepped together (:class:`edgectl.runtime.loops.Engine`)."""

    @property
    def views(self) -> Mapping[str, Any]: ...

    autotune_events: list[tuple[str, str, dict[str, Any]]]
    stage_events: list[tuple[str, str, dict[str, Any]]]
    health: dict[str, float]

    def step(self, samples: Mapping[str, Sample], ctx: ScanContext) -> dict[str, float]: ...

    def track(self, applied: Mapping[str, float]) -> None: ...


class DeviceHub(Protocol):
    """The devices of a reactor behind their I/O workers (see :mod:`edgectl.runtime.hub`)."""

    def collect(self, tags: TagStore, now_s: float) -> None:
        """Copy every worker's latest readings (value, time, quality) into the tag store."""
        ...

    def write(self, outputs: Mapping[str, float]) -> None:
        """Queue output values to their devices (never blocks the scan)."""
        ...

    def make_safe(self, safe: Mapping[str, float], timeout_s: float = 5.0) -> list[str]:
        """Drive outputs to their safe values, wait (bounded); return the unconfirmed ones."""
        ...

    def close(self) -> None: ...


class HistorianLike(Protocol):
    def record_scan(self, time_s: float, values: Mapping[str, Any]) -> None: ...


@dataclass
class _Totals:
    """Integrated doses of every output with a flow unit (mL), persisted for resume."""

    ml: dict[str, float] = field(default_factory=dict)


class Controller(ControllerChanges, ControllerHistory):
    """Runs one reactor. Build with :func:`edgectl.runtime.build.build_controller`."""

    def __init__(
        self,
        cfg: ReactorConfig,
        *,
        engine: EngineLike,
        hub: DeviceHub,
        historian: Any,
        scheduler: ScanScheduler,
        config_text: str = "",
        before_scan: Callable[[float], None] | None = None,
        time_base_s: float | None = None,
        softsensors: Any = None,
    ) -> None:
        self.cfg = cfg
        # spectral soft sensors (edgectl.runtime.softsensor.SoftSensorSet), updated each scan
        self.softsensors = softsensors
        self.name = cfg.reactor.name
        self.engine = engine
        self.loops: dict[str, LoopRuntime] = dict(engine.views)
        self.hub = hub
        self.historian = historian
        self.scheduler = scheduler
        self.before_scan = before_scan
        self.config_hash = "sha256:" + hashlib.sha256(config_text.encode()).hexdigest()
        # Historian times are Unix-like seconds: the run's time base plus clock seconds.
        self.time_base_s = time.time() if time_base_s is None else time_base_s
        self.lock = threading.RLock()
        self.tags = TagStore()
        self._define_tags()
        self.pump_monitors = {n: PumpMonitor(n, c) for n, c in cfg.pump_checks.items()}
        stall_alarms = {
            f"{n}.stall": AlarmSpec(
                tag=f"{n}.delivery",
                kind="low",
                limit=c.min_ratio,
                hysteresis=c.hysteresis,
                delay_s=c.delay_s,
                severity=c.severity,
                message=f"{c.output}: balance {c.balance} shows under {c.min_ratio:.0%} of the "
                "commanded delivery (pump stalled, line blocked or bottle empty)",
            )
            for n, c in cfg.pump_checks.items()
        }
        stage_alarms = {
            f"{lname}.{st.output}.failed": AlarmSpec(
                tag=f"{lname}.{st.output}.health",
                kind="low",
                limit=0.5,
                severity="high",
                message=f"{lname}: {st.output} does not deliver its command (read-back "
                f"{st.feedback} off by more than {loop.stage_tolerance:.0%} of its range for "
                f"{loop.stage_fault_s:g} s); the cascade skips the stage until its read-back "
                "tracks again, or the operator re-enables it",
            )
            for lname, loop in cfg.loops.items()
            if isinstance(loop, CascadeLoop)
            for st in loop.stages
            if st.feedback
        }
        # the historian's own state is a process alarm: an operator must know when history
        # is only kept in memory or a spill file, and at once when samples are being lost
        historian_alarms = {
            "historian.degraded": AlarmSpec(
                tag=HISTORIAN_HEALTH_TAG,
                kind="low",
                limit=1.5,
                severity="medium",
                message="historian: writes to the database fail; samples and events are kept "
                "in memory and the spill file and replayed when writes succeed",
            ),
            "historian.failed": AlarmSpec(
                tag=HISTORIAN_HEALTH_TAG,
                kind="low",
                limit=0.5,
                severity="high",
                message="historian: samples are being lost (writes fail and memory and the "
                "spill file are full, or a burst outran the disk); counted exactly in the "
                "historian's health",
            ),
        }
        self.alarm_mgr = AlarmManager(
            {
                **cfg.alarms,
                **stall_alarms,
                **stage_alarms,
                **historian_alarms,
                **(drift_alarms(cfg) if cfg.softsensors else {}),
            },
            cfg.interlocks,
        )
        self.recipe = RecipeRunner(cfg.recipe) if cfg.recipe else None
        # analyses recipe samples on a simulated plant (set by build.open_run); None: logged only
        self.atline: AtLineAnalyser | None = None
        self.safe = {name: o.safe for name, o in cfg.outputs.items()}
        self.outputs: dict[str, float] = dict(self.safe)
        self.totals = _Totals()
        self._sampled_ml = 0.0  # broth drawn by the recipe's sampling events
        # the recipe's feed pump output (the first feed loop's): its total is "feed delivered"
        self.feed_output = next(
            (lp.output for lp in cfg.loops.values() if isinstance(lp, FeedLoop)), ""
        )
        self._next_sample_s = -math.inf
        self._scans_since_persist = 0
        self.now_s = 0.0
        self.stopped = threading.Event()
        self.stop_reason = ""  # why the run stops ("operator stop by alice: ...", "signal ...")
        #: stop the run when the recipe enters its end phase (``edgectl run --until-end``)
        self.stop_at_end = False
        # audit records of automatic changes, written by the operator service outside the lock
        self.deferred_audit: deque[dict[str, Any]] = deque()
        # the audit record up to which every operator change is applied (see restore())
        head = historian.audit.head() if historian is not None else None
        self.operator_seq = head.seq if head is not None else 0
        self._persist_now = False
        # the operator service (edgectl.operator.OperatorService), set when a run opens one
        self.operator: Any = None
        # more state to persist with the controller's (the simulated plant's snapshot)
        self.extra_state: Callable[[], dict[str, Any]] | None = None
        self.started_at_s: float | None = None
        if self.recipe is not None:
            self._apply_phase(self.recipe.phase_name)

    # -- set-up ---------------------------------------------------------------------------------

    def _define_tags(self) -> None:
        cfg = self.cfg
        for dev in cfg.devices.values():
            for tag in dev.readings.values():
                if tag not in self.tags:
                    self.tags.define(Tag(tag, max_age_s=dev.max_age_s))
        for name, t in cfg.tags.items():
            if name not in self.tags:
                self.tags.define(Tag(name, t.unit, t.max_age_s, t.description))
        if self.softsensors is not None:  # first: the estimate's unit is the model's
            self.softsensors.define_tags(self.tags)
        for ss in cfg.softsensors.values():
            if ss.tag not in self.tags:
                age = ss.max_age_s if ss.max_age_s is not None else 3 * ss.period_s
                self.tags.define(Tag(ss.tag, max_age_s=age))
        if cfg.gpio:
            for tag in cfg.gpio.inputs:
                if tag not in self.tags:
                    self.tags.define(Tag(tag, max_age_s=10.0))
        for name, out in cfg.outputs.items():
            if name not in self.tags:
                self.tags.define(Tag(name, out.unit))
        for loop in cfg.loops:
            self.tags.define(Tag(f"{loop}.sp"))
        for check in cfg.pump_checks:
            self.tags.define(Tag(f"{check}.delivery", "ratio"))
        for health in self.engine.health:
            self.tags.define(Tag(health, description="cascade stage delivers its command (1/0)"))
        self.tags.define(
            Tag(
                HISTORIAN_HEALTH_TAG,
                description="historian writing: 2 ok, 1 degraded (kept, not committed), "
                "0 failed (samples lost)",
            )
        )

    def _ts(self, now_s: float) -> float:
        return self.time_base_s + now_s

    # -- the scan -------------------------------------------------------------------------------

    def scan(self, now_s: float, dt_s: float) -> None:
        """One scan cycle at clock time ``now_s``, ``dt_s`` after the previous one."""
        with self.lock:
            self.now_s = now_s
            if self.before_scan is not None:
                self.before_scan(now_s)
            self.hub.collect(self.tags, now_s)
            health = getattr(self.historian, "health", None)
            if health is not None:
                self.tags.write(HISTORIAN_HEALTH_TAG, _HEALTH_LEVEL[health().state], now_s)
            for name, mon in self.pump_monitors.items():
                commanded = self.totals.ml.get(mon.spec.output, 0.0)
                d = mon.update(now_s, commanded, self.tags.read(mon.spec.balance, now_s))
                self.tags.write(f"{name}.delivery", d.value, now_s, d.quality)
            if self.softsensors is not None:
                self.softsensors.update(self.tags, now_s)
            samples = self.tags.snapshot(now_s)
            feed = None
            if self.recipe is not None:
                limits = self.recipe.limiter.limits if self.recipe.limiter else FeedLimits()
                vessel = self._vessel(limits, samples)
                change = self.recipe.update(samples, now_s, vessel)
                if change is not None:
                    self._on_phase_change(change)
                for s in self.recipe.due_samples(now_s):
                    self._sampled_ml += s.volume_ml
                    self._event(now_s, "sample", "recipe", f"{s.label}: {s.volume_ml:g} mL")
                    if s.analyse and self.atline is not None:
                        self.atline.sample(s, now_s)
                if self.recipe.limiter is not None:
                    # again, not reused: the samples drawn above changed the volume, and a
                    # phase change may have brought other limits
                    vessel = self._vessel(self.recipe.limiter.limits, samples)
                    for ev in self.recipe.watch_vessel(vessel, now_s):
                        self._limit_event(ev)
                feed = self.recipe.feed_rate_ml_min(now_s)
            if self.atline is not None:
                for result in self.atline.due(now_s):
                    self._recipe_reference(result, now_s)
            ctx = ScanContext(
                now_s,
                dt_s,
                self.recipe.phase_name if self.recipe else "",
                feed,
                self.alarm_mgr.tripped,
            )
            outputs = dict(self.outputs)
            outputs.update(self.engine.step(samples, ctx))
            while self.engine.autotune_events:
                loop_name, action, details = self.engine.autotune_events.pop(0)
                self._event(now_s, "autotune", f"loops.{loop_name}", f"{action}", **details)
                # no SQLite call in the scan: the operator service writes it, and the state
                # with the new gains is persisted at the end of this scan
                self.deferred_audit.append(
                    {
                        "actor": "edgectl",
                        "action": action,
                        "target": f"loops.{loop_name}",
                        "old": _jsonable(details.get("old")),
                        "new": _jsonable(details),
                        "reason": "autotune",
                        "time_s": self._ts(now_s),
                    }
                )
                self._persist_now = True
            while self.engine.stage_events:
                loop_name, action, details = self.engine.stage_events.pop(0)
                self._event(now_s, "stage", f"loops.{loop_name}", action, **details)
            for tag, health in self.engine.health.items():
                self.tags.write(tag, health, now_s)
            alarm_events = self.alarm_mgr.evaluate(samples, now_s)
            for ev in alarm_events:
                self._alarm(ev)
            for name, why in self.alarm_mgr.expire_shelving(alarm_events, now_s):
                self._event(now_s, "alarm_shelve", f"alarms.{name}", why)
                self._persist_now = True
            self.alarm_mgr.apply(outputs, self.safe)
            for name, value in outputs.items():
                o = self.cfg.outputs[name]
                outputs[name] = min(max(value, o.min), o.max) if math.isfinite(value) else o.safe
            self.engine.track(outputs)
            self.hub.write(outputs)
            self._integrate(outputs, dt_s)
            self.outputs = outputs
            for name, value in outputs.items():
                self.tags.write(name, value, now_s)
            for name, loop in self.loops.items():
                sp = getattr(loop, "setpoint", math.nan)  # not settings(): a dict per loop
                self.tags.write(f"{name}.sp", sp, now_s)
            if now_s >= self._next_sample_s:
                self._record(now_s)
                self._next_sample_s = now_s + self.cfg.historian.sample_period_s
            self._scans_since_persist += 1
            if self._persist_now or self._scans_since_persist >= self.cfg.run.persist_every_scans:
                self.persist()
                self._scans_since_persist = 0
                self._persist_now = False

    def _record(self, now_s: float) -> None:
        snap = self.tags.snapshot(now_s)
        values = {
            name: (s.value, int(s.quality))
            for name, s in snap.items()
            if s.time_s > -math.inf  # never written: nothing to record
        }
        self.historian.record_scan(self._ts(now_s), values)

    def _integrate(self, outputs: Mapping[str, float], dt_s: float) -> None:
        for name, value in outputs.items():
            unit = self.cfg.outputs[name].unit
            if unit == "mL/min":
                self.totals.ml[name] = self.totals.ml.get(name, 0.0) + value * dt_s / 60.0

    def _vessel(self, lim: FeedLimits, samples: Mapping[str, Sample]) -> VesselState:
        """What the feed limiter watches: DO and its cascade's stage, the base pump, the volume."""
        do_pct, top, top_frac = math.nan, False, math.nan
        if lim.do_loop is not None and lim.do_loop in self.cfg.loops:
            loop_cfg = self.cfg.loops[lim.do_loop]
            s = samples.get(getattr(loop_cfg, "pv", ""))
            if s is not None and s.quality is Quality.GOOD:
                do_pct = s.value
            cas = getattr(self.loops.get(lim.do_loop), "cascade", None)
            top = cas is not None and cas.active == len(cas.stages) - 1
            stages = getattr(loop_cfg, "stages", ())
            if stages and stages[-1].max > stages[-1].min:
                st = stages[-1]
                out = self.outputs.get(st.output, st.min)
                top_frac = (out - st.min) / (st.max - st.min)
        base, base_frac = False, math.nan
        if lim.base_output is not None and lim.base_output in self.cfg.outputs:
            hi = self.cfg.outputs[lim.base_output].max
            out = self.outputs.get(lim.base_output, 0.0)
            base = out >= hi - 1e-9 * max(1.0, abs(hi))
            base_frac = out / hi if hi > 0.0 else math.nan
        dosed_ml = sum(self.totals.ml.values())
        volume_l = self.cfg.reactor.volume_l + (dosed_ml - self._sampled_ml) / 1000.0
        fed_ml = self.totals.ml.get(self.feed_output, 0.0) if self.feed_output else math.nan
        return VesselState(do_pct, top, base, volume_l, fed_ml, top_frac, base_frac)

    def _limit_event(self, ev: LimitEvent) -> None:
        """A feed limitation started or ended: a ``limit`` event (the summary's "feed
        limitation" line); not an alarm, since limiting the feed is the plan working."""
        self._event(ev.time_s, "limit", "recipe", ev.message, factor=ev.factor, limitation=ev.kind)

    def _event(self, now_s: float, kind: str, source: str, message: str, **details: Any) -> None:
        self.historian.record_event(
            kind, message, source=source, details=details or None, time_s=self._ts(now_s)
        )

    def _alarm(self, ev: AlarmEvent) -> None:
        self.historian.record_alarm(
            ev.name,
            ev.transition,
            severity=ev.severity,
            message=ev.message,
            value=None if math.isnan(ev.value) else ev.value,
            actor=ev.who or None,
            time_s=self._ts(ev.time_s),
        )

    def _on_phase_change(self, change: PhaseChange) -> None:
        self._event(
            change.time_s,
            "phase",
            "recipe",
            f"{change.from_phase} → {change.to_phase}: {change.reason}",
        )
        self._apply_phase(change.to_phase)
        assert self.recipe is not None
        if change.to_phase == self.recipe.recipe.end:
            self._event(change.time_s, "culture", "recipe", f"culture ended: {change.reason}")
            if self.stop_at_end:
                self.request_stop(f"culture ended ({change.to_phase}: {change.reason})")

    def _apply_phase(self, phase_name: str) -> None:
        assert self.recipe is not None
        phase = self.recipe.recipe.phase(phase_name)
        for loop, sp in phase.setpoints.items():
            if loop in self.loops:
                self.loops[loop].set("setpoint", sp)
        for loop, mode in phase.modes.items():
            if loop in self.loops:
                self.loops[loop].set("mode", mode)
        for target, value in phase.outputs.items():
            if target in self.loops:
                self.loops[target].set("output", value)
            else:
                self.outputs[target] = value

    # -- persistence ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything a restart needs to resume without a bump."""
        return {
            "version": 1,
            "operator_seq": self.operator_seq,
            "config_hash": self.config_hash,
            "time_base_s": self.time_base_s,
            "now_s": self.now_s,
            "wall_time_s": time.time(),
            "recipe": self.recipe.state() if self.recipe else None,
            "loops": {name: loop.state() for name, loop in self.loops.items()},
            "outputs": dict(self.outputs),
            "totals_ml": dict(self.totals.ml),
            "sampled_ml": self._sampled_ml,
            "softsensors": self.softsensors.state() if self.softsensors is not None else {},
            "alarms": {n: a.annotations() for n, a in self.alarm_mgr.alarms.items()},
            **(self.extra_state() if self.extra_state is not None else {}),
        }

    def persist(self) -> None:
        self.historian.save_state("controller", self.state(), time_s=self._ts(self.now_s))

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state`: phase, loop states, outputs and totals."""
        if state.get("version") != 1:
            raise ConfigError(f"saved controller state has unknown version {state.get('version')}")
        self.time_base_s = float(state["time_base_s"])
        if self.recipe is not None and state.get("recipe"):
            self.recipe.restore(state["recipe"])
        for name, s in state.get("loops", {}).items():
            if name in self.loops:
                self.loops[name].restore(s)
        self.outputs.update(
            {k: float(v) for k, v in state.get("outputs", {}).items() if k in self.outputs}
        )
        self.totals.ml = {k: float(v) for k, v in state.get("totals_ml", {}).items()}
        self._sampled_ml = float(state.get("sampled_ml", 0.0))
        for name, saved in state.get("alarms", {}).items():
            if name in self.alarm_mgr.alarms:
                self.alarm_mgr.alarms[name].restore_annotations(saved)
        if self.softsensors is not None:
            self.softsensors.restore(state.get("softsensors", {}))
        saved_seq = state.get("operator_seq")
        if isinstance(saved_seq, int) and self.historian is not None:
            self.operator_seq = saved_seq
            later = [r for r in self.historian.audit.records() if r.seq > saved_seq]
            self.replay(later)

    def skip_samples_until(self, t_s: float) -> None:
        """Record no tag samples at or before clock time ``t_s`` (already in the historian)."""
        self._next_sample_s = max(self._next_sample_s, t_s + 1e-6)

    def hold_safe(self) -> None:
        """Restart policy ``hold``: every loop in manual at its outputs' safe values."""
        for name, loop in self.loops.items():
            loop.set("mode", "off")
            self._event(self.now_s, "restart", f"loops.{name}", "held safe (restart policy)")

    # -- queries (the operator service checks the "read" right) -------------------------------

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {
                "name": self.name,
                "phase": self.recipe.phase_name if self.recipe else "",
                "time_s": self.now_s,
                "time_base_s": self.time_base_s,
                "clock_speed": float(getattr(self.scheduler.clock, "speed", 1.0)),
                "scans": self.scheduler.stats.scans,
                "overruns": self.scheduler.stats.overruns,
                "lateness_ms": self.scheduler.lateness.summary_ms(),
                "tripped": self.alarm_mgr.tripped,
                "stopping": self.stopped.is_set(),
                "outputs": dict(self.outputs),
                "totals_ml": dict(self.totals.ml),
            }

    def read_tags(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        with self.lock:
            snap = self.tags.snapshot(self.now_s)
            now_s = self.now_s
        wanted = names if names is not None else list(snap)
        out = {}
        for n in wanted:
            if n not in snap:
                raise KeyError(f"unknown tag {n!r}")
            s = snap[n]
            out[n] = {
                "value": s.value,
                "time_s": s.time_s,
                "quality": s.quality.name.lower(),
                "unit": self.tags.tag(n).unit if n in self.tags else "",
                "age_s": now_s - s.time_s,
            }
        return out

    def trend(self, tag: str, seconds: float) -> dict[str, list[float]]:
        if tag not in self.tags:
            raise KeyError(f"unknown tag {tag!r}")
        self.historian.flush()  # a trend includes what this run has not committed yet
        if tag not in {t.name for t in self.historian.tags()}:
            return {"time_s": [], "value": []}  # defined, not recorded yet
        series = self.historian.trend(tag, seconds, now_s=self._ts(self.now_s))
        return {
            "time_s": (series.times_s - self.time_base_s).tolist(),
            "value": series.values.tolist(),
        }

    def loop_names(self) -> list[str]:
        return list(self.loops)

    def _loop(self, loop: str) -> LoopRuntime:
        try:
            return self.loops[loop]
        except KeyError:
            raise ConfigError(f"no loop {loop!r} (loops: {sorted(self.loops)})") from None

    def loop_get(self, loop: str) -> dict[str, Any]:
        """Every setting and live value of a loop, with its PV's value."""
        with self.lock:
            s = self._loop(loop).settings()
            pv = s.get("pv") or ""
            if pv in self.tags:
                sample = self.tags.read(pv, self.now_s)
                s["pv_value"] = sample.value
                s["pv_quality"] = sample.quality.name.lower()
            return s

    def autotune_status(self, loop: str) -> dict[str, Any]:
        with self.lock:
            status = getattr(self._loop(loop), "autotune_status", None)
            if status is None:
                raise EdgectlError(f"loop {loop!r} cannot autotune")
            result: dict[str, Any] = status()
            return result

    def alarms(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "name": a.name,
                    "state": a.state.value,
                    "severity": a.spec.severity,
                    "tag": a.spec.tag,
                    "raised_s": a.raised_s,
                }
                for a in self.alarm_mgr.active()
            ]

    def softsensor_status(self) -> dict[str, Any]:
        with self.lock:
            if self.softsensors is None:
                return {}
            return {name: b.status() for name, b in self.softsensors.blocks.items()}


def _jsonable(v: Any) -> Any:
    return msgspec.to_builtins(v)
