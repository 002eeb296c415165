"""The engine: every configured loop, stepped once per scan.

PID, split-range and DO-cascade loops live in one :class:`edgectl.control.LoopBank`, so a scan
crosses from Python to Rust once for all of them (DESIGN "Engine"); feed and foam loops are
small blocks stepped beside it. Each loop has a view (:class:`LoopView`) for the operator API:
settings read and written live, modes, autotune, state for resume.

Safe action on bad input: when a loop's PV is not GOOD (stale, bad, never read), its PID goes
to *track* at the outputs' safe values, so it neither winds up nor bumps when the PV returns;
the loop reports ``pv_bad`` until then (control.md §1, "Invalid input": hold, then safe output,
bumpless re-init on recovery).

Setpoint changes do not kick the output: a setpoint step of a loop in auto with integral
action moves the integral by the proportional term's jump (``I += P(r_old, y) − P(r_new, y)``
at the last measurement), so the output is continuous and the step reaches it through the
integral. For a step this is the response of setpoint weight b = 0 (``P = K·(b·r − y)``,
Åström & Hägglund, control.md §1) without b = 0's cost at start-up, where the integral would
first have to build up K·r. A loop with ``[operator.loops.<name>] sp_ramp_per_min`` instead
ramps its working setpoint to the new target at that rate (the P term then follows the ramp).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgectl.control import (
    PID_PARAMS,
    DoCascade,
    FoamPulser,
    LoopBank,
    Pid,
    PidSettings,
    RelayAutotune,
    SplitRange,
    tune,
)
from edgectl.errors import ConfigError, EdgectlError, NumericalError
from edgectl.quality import Quality
from edgectl.runtime.controller import ScanContext
from edgectl.runtime.reactor_config import (
    CascadeLoop,
    FeedLoop,
    FoamLoop,
    LoopConfig,
    OutputConfig,
    PidLoop,
    ReactorConfig,
    SplitRangeLoop,
)
from edgectl.runtime.stagecheck import StageMonitor
from edgectl.runtime.tags import Sample

__all__ = ["Engine", "LoopView"]


def _stage_gains(given: Mapping[str, float], base: Pid) -> tuple[float, float] | None:
    """A cascade stage's (kp, ti_s) from its config, missing values from the loop's PID."""
    if not given:
        return None
    return float(given.get("kp", base.kp)), float(given.get("ti_s", base.ti_s))


def _pid(name: str, settings: Mapping[str, Any], **defaults: Any) -> Pid:
    data = {**defaults, **settings}
    return PidSettings.from_dict(data, source=f"$.loops.{name}.pid").build()


class LoopView:
    """One loop as the operator sees it."""

    def __init__(self, name: str, cfg: LoopConfig, outputs: tuple[str, ...]) -> None:
        self.name = name
        self.cfg = cfg
        self.outputs = outputs
        self.mode: str = cfg.mode
        self.pid: Pid | None = None
        self.pv_bad = False
        self.autotuner: RelayAutotune | None = None
        # set by restore(): the mode to return to once the PV is good again
        self.resume_mode: str | None = None
        self.bad_since_s: float | None = None  # when the PV stopped being GOOD
        self.autotune_rule = "simc"
        self.autotune_gain: float | None = None
        self.last_autotune: dict[str, Any] = {"state": "idle"}
        # DO cascades: the block, its stage monitors, stages the operator took out of use
        self.cascade: DoCascade | None = None
        # the last good PVs, one per scan: the measurement noise the autotune relay must ride
        self.pv_history: deque[float] = deque(maxlen=120)
        self.pv_time_s = -math.inf  # time of the last reading put in the history
        self.stage_monitors: list[StageMonitor] = []
        self.operator_disabled: set[int] = set()
        # setpoint ramp: the rate (PV units per minute) and the target the working setpoint
        # (the PID's) moves to; None when it stands at the target
        self.sp_ramp_per_min: float | None = None
        self.sp_target: float | None = None
        self.y_last = math.nan  # the measurement of the last PID update

    # settings ---------------------------------------------------------------------------------
    @property
    def setpoint(self) -> float:
        """The loop's working setpoint (NaN for loops without one): cheap, read every scan."""
        return self.pid.setpoint if self.pid is not None else math.nan

    @property
    def target_setpoint(self) -> float:
        """The setpoint as set (a ramp moves the working setpoint towards it)."""
        if self.sp_target is not None:
            return self.sp_target
        return self.setpoint

    def ramp(self, dt_s: float) -> None:
        """Move the working setpoint towards the target by at most the ramp rate × ``dt_s``."""
        if self.sp_target is None or self.pid is None or self.sp_ramp_per_min is None:
            return
        step = self.sp_ramp_per_min * dt_s / 60.0
        sp = self.pid.setpoint
        target = self.sp_target
        if abs(target - sp) <= step:
            self.pid.setpoint = target
            self.sp_target = None
        else:
            self.pid.setpoint = sp + math.copysign(step, target - sp)

    def settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": type(self.cfg).__name__, "mode": self.mode}
        s["pv"] = getattr(self.cfg, "pv", "") or getattr(self.cfg, "probe", "")
        s["outputs"] = list(self.outputs)
        s["pv_bad"] = self.pv_bad
        if self.pid is not None:
            d = self.pid.to_dict()
            s.update({k: d[k] for k in sorted(PID_PARAMS) if k in d})
            s["setpoint"] = self.target_setpoint
            s["working_setpoint"] = self.pid.setpoint
            s["sp_ramp_per_min"] = self.sp_ramp_per_min
            s["output"] = self.pid.output
            s["output_min"], s["output_max"] = self.pid.output_min, self.pid.output_max
            c = self.pid.components()
            s["components"] = {"p": c.p, "i": c.i, "d": c.d, "ff": c.ff, "saturated": c.saturated}
        if self.autotuner is not None:
            s["autotune"] = self.autotuner.state
        if self.cascade is not None:
            cas = self.cascade
            cas.store_live_gains()

            def pair(g: tuple[float, float] | None) -> dict[str, float] | None:
                return None if g is None else {"kp": g[0], "ti_s": g[1]}

            s["active_stage"] = self.outputs[cas.active]
            s["stages"] = {
                out: {
                    "use": cas.stage_use[k],
                    "enabled": cas.stage_enabled[k],
                    "degraded": cas.stage_degraded[k],
                    "gains": pair(cas.stage_gains[k]),
                    "degraded_gains": pair(cas.stage_degraded_gains[k]),
                    "operator_disabled": k in self.operator_disabled,
                }
                for k, out in enumerate(self.outputs)
            }
        return s

    def _stage_index(self, param: str) -> tuple[int, str]:
        """``stages.<output>.<what>`` → (stage index, what)."""
        parts = param.split(".")
        if (
            len(parts) != 3
            or parts[1] not in self.outputs
            or parts[2] not in ("enabled", "kp", "ti_s")
        ):
            raise ConfigError(
                f"loop {self.name!r}: stage settings are stages.<output>.enabled|kp|ti_s with "
                f"<output> one of {list(self.outputs)}, got {param!r}"
            )
        return self.outputs.index(parts[1]), parts[2]

    def _set_stage(self, param: str, value: Any) -> Any:
        """``stages.<output>.enabled``: the operator takes a stage out of use (parked at its
        minimum, it stays out whatever its read-back) or back (which also clears a failure);
        ``stages.<output>.kp|ti_s``: the stage's gains — its degraded set while it runs
        degraded, its own set otherwise."""
        assert self.cascade is not None
        assert self.pid is not None
        cas = self.cascade
        k, what = self._stage_index(param)
        if what == "enabled":
            was = cas.stage_enabled[k]
            on = bool(value)
            if on:
                self.operator_disabled.discard(k)
            else:
                self.operator_disabled.add(k)
            for mon in self.stage_monitors:
                if mon.index == k:
                    mon.reset(failed=False)  # judged afresh from here
            cas.set_stage_use(k, "enabled" if on else "out_of_use")
            return was
        cas.store_live_gains()
        degraded = cas.stage_degraded[k] and cas.stage_degraded_gains[k] is not None
        current = cas.stage_degraded_gains[k] if degraded else cas.stage_gains[k]
        if current is None:
            current = cas.base_gains or (self.pid.kp, self.pid.ti_s)
        kp, ti_s = current
        previous = kp if what == "kp" else ti_s
        if what == "kp":
            kp = float(value)
        else:
            ti_s = float(value)
        if degraded:
            cas.set_stage_degraded_gains(k, (kp, ti_s))
        else:
            cas.set_stage_gains(k, (kp, ti_s))
        return previous

    def set(self, param: str, value: Any) -> Any:
        old: Any
        if param == "mode":
            if value not in ("auto", "manual", "off"):
                raise ConfigError(
                    f"loops.{self.name}.mode must be auto, manual or off, got {value!r}"
                )
            old, self.mode = self.mode, value
            self._apply_mode()
            return old
        if self.cascade is not None and param.startswith("stages."):
            return self._set_stage(param, value)
        if self.pid is None:
            raise ConfigError(f"loop {self.name!r} has no setting {param!r}")
        if param == "setpoint":
            old = self.target_setpoint
            target = float(value)
            if self.sp_ramp_per_min is None or not math.isfinite(self.pid.setpoint):
                self._bumpless_setpoint(target)
                self.sp_target = None
            else:
                self.sp_target = None if target == self.pid.setpoint else target
            return old
        if param == "output":
            if self.mode != "manual":
                raise EdgectlError(f"loop {self.name!r} is in {self.mode}: switch to manual first")
            old = self.pid.manual_output
            self.pid.manual_output = float(value)
            return old
        if param in ("output_min", "output_max"):
            old = getattr(self.pid, param)
            lo = float(value) if param == "output_min" else self.pid.output_min
            hi = float(value) if param == "output_max" else self.pid.output_max
            self.pid.set_limits(lo, hi)
            return old
        if param not in PID_PARAMS:
            raise ConfigError(
                f"loop {self.name!r} has no setting {param!r} (settable: "
                f"{', '.join(sorted(PID_PARAMS | {'setpoint', 'mode', 'output'}))})"
            )
        old = getattr(self.pid, param)
        setattr(self.pid, param, value)  # the core makes gain changes bumpless
        return old

    def _p_term(self, r: float, y: float) -> float:
        """The proportional term the core computes at setpoint ``r``, measurement ``y``."""
        pid = self.pid
        assert pid is not None
        sg = 1.0 if pid.action == "heating" else -1.0
        db = pid.deadband
        if db > 0:
            e = sg * (r - y)
            return 0.0 if abs(e) <= db else pid.kp * (e - math.copysign(db, e))
        return float(pid.kp * sg * (pid.b * r - y))

    def _bumpless_setpoint(self, r_new: float) -> None:
        """Set the setpoint; in auto with integral action, without a jump of the output."""
        pid = self.pid
        assert pid is not None
        r_old, y = pid.setpoint, self.y_last
        pid.setpoint = r_new
        ti = pid.ti_s
        if pid.mode == "auto" and math.isfinite(y) and math.isfinite(r_old) and 0 < ti < math.inf:
            pid.integral = pid.integral + self._p_term(r_old, y) - self._p_term(r_new, y)

    def _apply_mode(self) -> None:
        if self.pid is None:
            return
        if self.mode == "manual":
            self.pid.manual_output = self.pid.output
            self.pid.mode = "manual"
        elif self.mode == "auto" and not self.pv_bad:
            self.pid.mode = "auto"

    # state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        st: dict[str, Any] = {"mode": self.mode}
        if self.pid is not None:
            st["pid"] = self.pid.to_dict()
            st["integral"] = self.pid.integral
            st["output"] = self.pid.output
            st["manual_output"] = self.pid.manual_output
            st["sp_target"] = self.sp_target
        if self.cascade is not None:
            cas = self.cascade
            cas.store_live_gains()
            st["cascade"] = {
                "active": cas.active,
                "use": cas.stage_use,
                "gains": cas.stage_gains,
                "degraded_gains": cas.stage_degraded_gains,
                "base_gains": cas.base_gains,
                "operator_disabled": sorted(self.operator_disabled),
                "failed": [m.index for m in self.stage_monitors if m.failed],
            }
        return st

    def restore(self, state: Mapping[str, Any]) -> None:
        self.mode = str(state.get("mode", self.mode))
        cas = state.get("cascade")
        if self.cascade is not None and isinstance(cas, Mapping):
            # the stage in use, its gains and the stages out of use, as they were: without
            # them a resumed cascade would restart on stage 0 and move every actuator
            cas_ = self.cascade
            n = len(self.outputs)

            def pair(g: Any) -> tuple[float, float] | None:
                return None if g is None else (float(g[0]), float(g[1]))

            if cas.get("base_gains") is not None:
                cas_.set_base_gains(pair(cas["base_gains"]))  # type: ignore[arg-type]
            for j, g in enumerate(cas.get("gains", [])[:n]):
                cas_.set_stage_gains(j, pair(g))
            for j, g in enumerate(cas.get("degraded_gains", [])[:n]):
                cas_.set_stage_degraded_gains(j, pair(g))
            active = int(cas.get("active", 0))
            if 0 <= active < n:
                cas_.active = active  # first: restoring the stages' use then hands over nothing
            for j, use in enumerate(cas.get("use", [])[:n]):
                if use != "enabled":
                    cas_.set_stage_use(j, str(use))
            self.operator_disabled = {int(j) for j in cas.get("operator_disabled", [])}
            failed = {int(j) for j in cas.get("failed", [])}
            for mon in self.stage_monitors:
                mon.reset(failed=mon.index in failed)
        if self.pid is not None and "pid" in state:
            saved = dict(state["pid"])
            for k in PID_PARAMS | {"setpoint"}:
                if k in saved and saved[k] is not None:
                    setattr(self.pid, k, saved[k])
            target = state.get("sp_target")
            self.sp_target = float(target) if isinstance(target, int | float) else None
            # Resume without a bump: hold the saved output until the PV is good again, then
            # manual → auto in the core re-initialises the integral so nothing jumps.
            self.pid.mode = "manual"  # entering manual holds u_prev: set the output after
            self.pid.manual_output = float(state.get("output", self.pid.output))
            self.resume_mode = self.mode

    # autotune ---------------------------------------------------------------------------------
    def pv_noise(self) -> float:
        """Standard deviation of the PV's reading-to-reading noise (σ of first differences / √2,
        which ignores slow trends) over the last 120 readings; 0 with fewer than 10."""
        if len(self.pv_history) < 10:
            return 0.0
        d = np.diff(np.fromiter(self.pv_history, float))
        return float(np.std(d) / math.sqrt(2.0))

    def autotune_plan(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The relay settings an autotune with ``options`` runs (validated, nothing started):
        rule, gain, bias, amplitude, hysteresis, cycles, max_time_s."""
        if self.pid is None or not isinstance(self.cfg, PidLoop):
            raise EdgectlError(f"loop {self.name!r}: autotune works on single-output PID loops")
        if self.autotuner is not None and self.autotuner.is_running:
            raise EdgectlError(f"loop {self.name!r}: an autotune is already running")
        opts = dict(options)
        rule = str(opts.pop("rule", "simc"))
        gain = opts.pop("gain", None)
        lo, hi = self.pid.output_min, self.pid.output_max
        bias = float(opts.pop("bias", self.pid.output))
        amp = float(opts.pop("amplitude", 0.25 * (hi - lo)))
        amp = min(amp, bias - lo, hi - bias)  # keep the relay inside the actuator limits
        # Noise band: a relay without one switches on measurement noise, which shortens the
        # cycle and scatters Ku and Pu from run to run; Åström & Hägglund (1984; reference
        # control.md §5) set ε above the noise level. Default 3σ of the scan-to-scan noise.
        given = opts.pop("hysteresis", None)
        hysteresis = 3.0 * self.pv_noise() if given is None else float(given)
        cycles = int(opts.pop("cycles", 3))
        max_time_s = float(opts.pop("max_time_s", 4 * 3600.0))
        if opts:
            raise ConfigError(f"autotune: unknown options {sorted(opts)}")
        if not (math.isfinite(amp) and amp > 0):
            raise EdgectlError(
                f"loop {self.name!r}: output {bias:g} sits at a limit; no room for a relay"
            )
        if not (math.isfinite(hysteresis) and hysteresis >= 0 and cycles >= 1 and max_time_s > 0):
            raise ConfigError(
                f"autotune: hysteresis >= 0, cycles >= 1 and max_time_s > 0, got "
                f"{hysteresis}, {cycles}, {max_time_s}"
            )
        return {
            "rule": rule,
            "gain": None if gain is None else float(gain),
            "bias": bias,
            "amplitude": amp,
            "hysteresis": hysteresis,
            "cycles": cycles,
            "max_time_s": max_time_s,
        }

    def autotune_begin(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        """Start the relay experiment of :meth:`autotune_plan`."""
        assert self.pid is not None
        lo, hi = self.pid.output_min, self.pid.output_max
        self.autotuner = RelayAutotune(
            setpoint=self.pid.setpoint,
            bias=float(plan["bias"]),
            amplitude=float(plan["amplitude"]),
            output_min=lo,
            output_max=hi,
            action=self.pid.action,
            hysteresis=float(plan["hysteresis"]),
            cycles=int(plan["cycles"]),
            max_time_s=float(plan["max_time_s"]),
        )
        self.autotune_rule = str(plan["rule"])
        gain = plan.get("gain")
        self.autotune_gain = None if gain is None else float(gain)
        self.last_autotune = {
            "state": "running",
            "bias": float(plan["bias"]),
            "amplitude": float(plan["amplitude"]),
            "hysteresis": float(plan["hysteresis"]),
            "rule": self.autotune_rule,
        }
        return dict(self.last_autotune)

    def autotune_start(self, options: Mapping[str, float]) -> dict[str, Any]:
        """Validate ``options`` and start the relay experiment at once."""
        return self.autotune_begin(self.autotune_plan(options))

    def autotune_status(self) -> dict[str, Any]:
        return dict(self.last_autotune)


class Engine:
    """All loops of a reactor; :meth:`step` runs them for one scan."""

    def __init__(self, cfg: ReactorConfig) -> None:
        self.cfg = cfg
        self.bank = LoopBank()
        self.views: dict[str, LoopView] = {}
        self._bank_pv: list[str] = []
        self._bank_loops: list[str] = []
        self._bank_targets: list[str] = []  # output name of each bank output, in bank order
        self._feeds: dict[str, tuple[FeedLoop, Pid | None]] = {}
        self._foams: dict[str, tuple[FoamLoop, FoamPulser]] = {}
        for name, loop in cfg.loops.items():
            self._add(name, loop)
        for name, limits in cfg.operator.loops.items():
            if name in self.views and limits.sp_ramp_per_min is not None:
                self.views[name].sp_ramp_per_min = limits.sp_ramp_per_min
        self._last_pv = np.full(len(self._bank_pv), math.nan)
        self._y = np.zeros(len(self._bank_pv))
        self.autotune_events: list[tuple[str, str, dict[str, Any]]] = []
        # (loop, "stage_failed" | "stage_recovered", details) for the controller to record
        self.stage_events: list[tuple[str, str, dict[str, Any]]] = []
        # <loop>.<output>.health of every watched cascade stage (1 healthy, 0 failed)
        self.health: dict[str, float] = {
            m.health_tag: 1.0 for v in self.views.values() for m in v.stage_monitors
        }
        self._applied: dict[str, float] = {}  # outputs applied on the previous scan

    def _out(self, name: str) -> OutputConfig:
        return self.cfg.outputs[name]

    def _add(self, name: str, loop: LoopConfig) -> None:
        if isinstance(loop, PidLoop):
            o = self._out(loop.output)
            pid = _pid(name, loop.pid, output_min=o.min, output_max=o.max, setpoint=loop.setpoint)
            self.bank.add_pid(name, pid)
            view = LoopView(name, loop, (loop.output,))
            self._bank_targets.append(loop.output)
        elif isinstance(loop, SplitRangeLoop):
            hi, lo = self._out(loop.raise_output), self._out(loop.lower_output)
            pid = _pid(name, loop.pid, output_min=-100.0, output_max=100.0, setpoint=loop.setpoint)
            split = SplitRange(
                input_min=-100.0,
                input_max=100.0,
                split=0.0,
                deadband=loop.deadband_pct,
                low_max=lo.max,
                high_max=hi.max,
                changeover_s=loop.changeover_s,
            )
            self.bank.add_split_range(name, pid, split)  # outputs (low, high)
            view = LoopView(name, loop, (loop.lower_output, loop.raise_output))
            self._bank_targets += [loop.lower_output, loop.raise_output]
        elif isinstance(loop, CascadeLoop):
            pid = _pid(name, loop.pid, output_min=0.0, output_max=100.0, setpoint=loop.setpoint)
            gains = [_stage_gains(s.pid, pid) for s in loop.stages]
            degraded = [
                _stage_gains({**s.pid, **s.pid_degraded}, pid) if s.pid_degraded else None
                for s in loop.stages
            ]
            cascade = DoCascade(
                pid,
                [(s.min, s.max) for s in loop.stages],
                loop.hysteresis_s,
                gains=gains,
                degraded_gains=degraded,
            )
            self.bank.add_cascade(name, cascade, [s.output for s in loop.stages])
            pid = cascade.master
            view = LoopView(name, loop, tuple(s.output for s in loop.stages))
            view.cascade = cascade
            view.stage_monitors = [
                StageMonitor(
                    name,
                    k,
                    s.output,
                    s.feedback,
                    s.max - s.min,
                    tolerance=loop.stage_tolerance,
                    fault_s=loop.stage_fault_s,
                    recover_s=loop.stage_recover_s,
                )
                for k, s in enumerate(loop.stages)
                if s.feedback
            ]
            self._bank_targets += [s.output for s in loop.stages]
        elif isinstance(loop, FeedLoop):
            feed_pid = (
                _pid(
                    name,
                    loop.pid,
                    output_min=-self._out(loop.output).max,
                    output_max=self._out(loop.output).max,
                    setpoint=loop.setpoint,
                )
                if loop.pv
                else None
            )
            self._feeds[name] = (loop, feed_pid)
            view = LoopView(name, loop, (loop.output,))
            view.pid = feed_pid
            self.views[name] = view
            return
        else:
            pulser = FoamPulser(pulse_s=loop.pulse_s, pause_s=loop.pause_s, ml_per_min=loop.rate)
            self._foams[name] = (loop, pulser)
            self.views[name] = LoopView(name, loop, (loop.output,))
            return
        view.pid = pid
        if loop.mode != "auto":
            view._apply_mode()
        self.views[name] = view
        self._bank_loops.append(name)
        self._bank_pv.append(loop.pv)

    # -- one scan -------------------------------------------------------------------------------

    def _check_stages(self, samples: Mapping[str, Sample], now_s: float) -> None:
        for view in self.views.values():
            if view.cascade is None:
                continue
            for mon in view.stage_monitors:
                command = self._applied.get(mon.output)
                fb = samples.get(mon.feedback)
                change = mon.update(now_s, command, fb)
                # from the monitor itself each scan: also right after a resume restored it
                self.health[mon.health_tag] = 0.0 if mon.failed else 1.0
                if change is None:
                    continue
                if mon.index not in view.operator_disabled:
                    # the core parks it, skips it and runs the stages above on degraded gains
                    view.cascade.set_stage_use(mon.index, "enabled" if change else "failed")
                details = {
                    "stage": mon.output,
                    "feedback": mon.feedback,
                    "command": command,
                    "read_back": None if fb is None else fb.value,
                    "active_stage": view.outputs[view.cascade.active],
                }
                what = "stage_recovered" if change else "stage_failed"
                self.stage_events.append((view.name, what, details))

    def step(self, samples: Mapping[str, Sample], ctx: ScanContext) -> dict[str, float]:
        out: dict[str, float] = {}
        safe = {n: o.safe for n, o in self.cfg.outputs.items()}
        if self.health:
            self._check_stages(samples, ctx.now_s)
        for view in self.views.values():
            if view.sp_target is not None:
                view.ramp(ctx.dt_s)
        for k, (name, pv) in enumerate(zip(self._bank_loops, self._bank_pv, strict=True)):
            view = self.views[name]
            s = samples.get(pv)
            good = s is not None and s.quality is Quality.GOOD and math.isfinite(s.value)
            pid = view.pid
            assert pid is not None
            if good:
                assert s is not None
                self._y[k] = s.value
                self._last_pv[k] = s.value
                if s.time_s != view.pv_time_s:  # a new reading (a device may poll slower)
                    view.pv_history.append(s.value)
                    view.pv_time_s = s.time_s
                view.bad_since_s = None
                if view.pv_bad:
                    view.pv_bad = False
                    if view.mode == "auto":
                        pid.mode = "auto"  # track → auto: bumpless
            else:
                if view.bad_since_s is None:
                    view.bad_since_s = ctx.now_s
                last = self._last_pv[k]
                self._y[k] = last if math.isfinite(last) else pid.setpoint
                # Hold the output through a short loss of the PV (a late reply, a retry), then
                # go safe (control.md §1 "Invalid input": hold, then safe after max age).
                hold_s = getattr(view.cfg, "hold_bad_pv_s", 0.0)
                view.pv_bad = ctx.now_s - view.bad_since_s >= hold_s
                if not view.pv_bad and view.mode == "auto":
                    pid.mode = "track"
                    pid.track_output = pid.output  # hold where it is
            if view.mode == "off" or view.pv_bad or ctx.tripped:
                pid.mode = "track"  # entering track holds u_prev: set the value after
                pid.track_output = self._safe_controller_output(view, safe)
            elif view.mode == "auto" and pid.mode == "track" and view.bad_since_s is None:
                pid.mode = "auto"
        for k, name in enumerate(self._bank_loops):
            self.views[name].y_last = float(self._y[k])
        values = self.bank.step(self._y, ctx.dt_s) if self._bank_loops else np.empty(0)
        for target, value in zip(self._bank_targets, values, strict=True):
            out[target] = float(value)
        for name in self._bank_loops:
            view = self.views[name]
            if view.resume_mode is not None and not view.pv_bad:
                # Resumed loops ran one scan in manual at their saved output; manual → auto
                # now re-initialises the integral from that output: no bump.
                view.mode, view.resume_mode = view.resume_mode, None
                if view.mode == "auto" and view.pid is not None:
                    view.pid.mode = "auto"
        for name in self._bank_loops:
            view = self.views[name]
            if view.autotuner is not None and view.autotuner.is_running:
                k = self._bank_loops.index(name)
                out[view.outputs[0]] = view.autotuner.update(self._y[k], ctx.dt_s)
                view.pid.mode = "track"  # type: ignore[union-attr]
                view.pid.track_output = out[view.outputs[0]]  # type: ignore[union-attr]
            elif view.autotuner is not None and view.last_autotune.get("state") == "running":
                self._finish_autotune(view)
        for name, (feed_cfg, feed_pid) in self._feeds.items():
            out[feed_cfg.output] = self._feed(name, feed_cfg, feed_pid, samples, ctx, safe)
        for name, (foam_cfg, pulser) in self._foams.items():
            view = self.views[name]
            probe = samples.get(foam_cfg.probe)
            foam = probe is not None and probe.quality is Quality.GOOD and probe.value >= 0.5
            on = pulser.update(foam, ctx.dt_s) if view.mode == "auto" else False
            out[foam_cfg.output] = foam_cfg.rate if on else safe[foam_cfg.output]
        return out

    def _safe_controller_output(self, view: LoopView, safe: Mapping[str, float]) -> float:
        cfg = view.cfg
        if isinstance(cfg, SplitRangeLoop):
            return 0.0  # both sides off
        if isinstance(cfg, CascadeLoop):
            return 0.0  # every stage parked at its minimum
        return safe[view.outputs[0]]

    def _feed(
        self,
        name: str,
        cfg: FeedLoop,
        pid: Pid | None,
        samples: Mapping[str, Sample],
        ctx: ScanContext,
        safe: Mapping[str, float],
    ) -> float:
        view = self.views[name]
        o = self._out(cfg.output)
        if view.mode == "off" or ctx.tripped:
            return safe[cfg.output]
        if view.mode == "manual" and pid is not None:
            return pid.manual_output
        base = ctx.feed_rate_ml_min or 0.0
        if pid is None or not cfg.pv:
            return min(max(base, o.min), o.max)
        s = samples.get(cfg.pv)
        if s is None or s.quality is not Quality.GOOD:
            view.pv_bad = True
            pid.mode = "track"
            pid.track_output = 0.0
            return min(max(base, o.min), o.max)  # the safe profile: the recipe's feed alone
        view.pv_bad = False
        if pid.mode == "track":
            pid.mode = "auto"
        view.y_last = s.value
        trim = pid.update(s.value, ctx.dt_s)
        return min(max(base + trim, o.min), o.max)

    def _finish_autotune(self, view: LoopView) -> None:
        tuner = view.autotuner
        assert tuner is not None
        assert view.pid is not None
        if tuner.state != "done":
            view.last_autotune = {"state": "aborted", "reason": tuner.abort_reason}
        else:
            result = tuner.result()
            fallback = None
            try:
                t = tune(result, view.autotune_rule, gain=view.autotune_gain)  # type: ignore[arg-type]
            except NumericalError as exc:
                # A relay centred on the equilibrium output cannot identify the process gain
                # (control.md §5); Ziegler–Nichols needs only Ku and Pu.
                fallback = str(exc)
                t = tune(result, "ziegler_nichols_pi")
            view.pid.mode = "track"
            view.pid.track_output = tuner.output
            old = {"kp": view.pid.kp, "ti_s": view.pid.ti_s, "td_s": view.pid.td_s}
            view.pid.kp, view.pid.ti_s, view.pid.td_s = t.kp, t.ti_s, t.td_s
            view.last_autotune = {
                "state": "done",
                "ku": result.ku,
                "pu_s": result.pu_s,
                "hysteresis": result.hysteresis,
                "amplitude_pv": result.amplitude_pv,
                "rule": t.rule,
                "kp": t.kp,
                "ti_s": t.ti_s,
                "td_s": t.td_s,
                "old": old,
                "fallback": fallback,
            }
            self.autotune_events.append((view.name, "autotune_applied", view.last_autotune))
        if view.mode == "auto":
            view.pid.mode = "auto"
        view.autotuner = None

    def track(self, applied: Mapping[str, float]) -> None:
        """After interlocks: single-output PIDs whose output was overridden track the value
        actually applied, so they do not wind up and resume without a bump. The applied values
        are also what the stage monitors compare the read-backs with on the next scan."""
        if self.health:
            self._applied = dict(applied)
        for name in self._bank_loops:
            view = self.views[name]
            pid = view.pid
            if pid is None or not isinstance(view.cfg, PidLoop):
                continue
            value = applied.get(view.cfg.output)
            if value is not None and abs(value - pid.output) > 1e-12 and pid.mode == "auto":
                pid.track_to(value)
