"""Operator changes as values, and the limits they are validated against.

A :class:`Change` says what is asked (a loop setting, an acknowledgement, a stop, ...); the
service turns it into the value that will be applied, or refuses it. Validation is pure: it
reads a snapshot of the loop (:meth:`edgectl.runtime.loops.LoopView.settings`) and the
configured limits, never the live objects the scan mutates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from edgectl.control import PID_PARAMS
from edgectl.operator.config import LoopLimits
from edgectl.operator.errors import RefusedError

__all__ = ["Change", "command_of", "validate_loop_change"]

# what an operator may change on a loop: the PID parameters, and these
_SETTABLE: Final = PID_PARAMS | {"setpoint", "mode", "output", "output_min", "output_max"}
_MODES: Final = ("auto", "manual", "off")
_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "action": ("heating", "cooling"),
    "anti_windup": ("back_calculation", "conditional", "clamp"),
}


@dataclass(frozen=True, slots=True)
class Change:
    """One operator change. Build with the class methods; ``command`` is the right it needs."""

    command: str
    target: str
    value: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def loop(cls, loop: str, param: str, value: Any) -> Change:
        """A loop setting: ``setpoint``, ``mode``, ``output``, gains, ``stages.<out>.<what>``."""
        return cls(
            command_of(param), f"loops.{loop}.{param}", value, {"loop": loop, "param": param}
        )

    @classmethod
    def setpoint(cls, loop: str, value: float) -> Change:
        return cls.loop(loop, "setpoint", value)

    @classmethod
    def manual(cls, loop: str, output: float | None) -> Change:
        """Manual mode, holding the output or at ``output`` (one change, one record)."""
        value: Any = "manual" if output is None else {"mode": "manual", "output": output}
        return cls("mode", f"loops.{loop}.mode", value, {"loop": loop, "param": "mode"})

    @classmethod
    def autotune(cls, loop: str, options: Mapping[str, Any]) -> Change:
        return cls("autotune", f"loops.{loop}", dict(options), {"loop": loop})

    @classmethod
    def ack(cls, name: str | None) -> Change:
        return cls("ack", f"alarms.{name}" if name else "alarms", None, {"name": name})

    @classmethod
    def shelve(cls, name: str, duration_s: float | None) -> Change:
        """Shelve alarm ``name`` for ``duration_s`` clock seconds (at most ``[operator]
        max_shelve_s``), or until it clears (None: one-shot). A shelved alarm is still
        evaluated, recorded and interlocked; only its annunciation is held back."""
        kind = "oneshot" if duration_s is None else "timed"
        return cls(
            "shelve", f"alarms.{name}", {"kind": kind, "duration_s": duration_s}, {"name": name}
        )

    @classmethod
    def unshelve(cls, name: str) -> Change:
        return cls("shelve", f"alarms.{name}", {"kind": "unshelve"}, {"name": name})

    @classmethod
    def enable(cls, name: str, enabled: bool) -> Change:
        """Enable or disable alarm ``name`` (disabled: not annunciated; still evaluated,
        recorded and interlocked)."""
        return cls("enable", f"alarms.{name}", enabled, {"name": name})

    @classmethod
    def comment(cls, name: str, text: str) -> Change:
        """A comment on alarm ``name`` (recorded; changes nothing)."""
        return cls("comment", f"alarms.{name}", text, {"name": name})

    @classmethod
    def confirm(cls, name: str) -> Change:
        """Confirm alarm ``name`` (after its acknowledgement: its cause is dealt with)."""
        return cls("confirm", f"alarms.{name}", True, {"name": name})

    @classmethod
    def reset_trip(cls) -> Change:
        return cls("reset_trip", "interlocks")

    @classmethod
    def phase(cls, to: str) -> Change:
        return cls("phase_request", "recipe.phase", to)

    @classmethod
    def reference(
        cls, sensor: str, value: float, sampled_s: float | None, analyser: str = ""
    ) -> Change:
        return cls(
            "add_reference",
            f"softsensors.{sensor}",
            value,
            {"sensor": sensor, "sampled_s": sampled_s, "analyser": analyser},
        )

    @classmethod
    def model_switch(cls, sensor: str, model: str | int) -> Change:
        """Release a soft-sensor model: a model file (a new version) or a version number (a
        version used before, e.g. to restore the previous one)."""
        return cls("model_switch", f"softsensors.{sensor}.model", model, {"sensor": sensor})

    @classmethod
    def stop(cls) -> Change:
        return cls("stop", "run")


def command_of(param: str) -> str:
    """The right a loop setting needs."""
    if param in ("setpoint", "mode", "output"):
        return param
    if param.startswith("stages."):
        return "stage" if param.endswith(".enabled") else "tune"
    return "tune"


def _number(loop: str, param: str, value: Any, user: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RefusedError(
            f"loops.{loop}.{param}: a number is needed, got {_shown(value)} (user {user})",
            rule="limits",
            user=user,
            value=value,
        )
    return float(value)


def _refuse(loop: str, param: str, value: Any, rule: str, user: str) -> RefusedError:
    return RefusedError(
        f"loops.{loop}.{param} = {_shown(value)} refused for user {user}: {rule}",
        rule="limits",
        user=user,
        value=value,
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _span(
    loop: str,
    param: str,
    v: float,
    span: tuple[float, float] | None,
    configured: float | None,
    gain_span: float,
    user: str,
) -> None:
    if span is None and configured is not None and math.isfinite(configured) and configured > 0:
        span = (configured / gain_span, configured * gain_span)
        how = f"within {gain_span:g}x of its configured {configured:g}"
    else:
        how = "the configured range"
    if span is not None and not span[0] <= v <= span[1]:
        raise _refuse(loop, param, v, f"outside [{span[0]:g}, {span[1]:g}] ({how})", user)


def validate_loop_change(
    loop: str,
    param: str,
    value: Any,
    *,
    settings: Mapping[str, Any],
    configured: Mapping[str, Any],
    limits: LoopLimits | None,
    gain_span: float,
    output_range: tuple[float, float] | None,
    user: str,
) -> Any:
    """The value a loop change will apply, or :class:`RefusedError` naming the rule.

    ``settings`` is the loop's live snapshot, ``configured`` its settings at start (the base
    of default gain ranges), ``output_range`` the limits its output limits may span.
    """
    lim = limits or LoopLimits()
    has_pid = "setpoint" in settings
    if param not in _SETTABLE and not param.startswith("stages."):
        raise RefusedError(
            f"loop {loop!r} has no setting {param!r} (settable: {', '.join(sorted(_SETTABLE))}"
            f"{', stages.<output>.enabled|kp|ti_s' if 'stages' in settings else ''}; user {user})",
            rule="limits",
            user=user,
            value=value,
        )
    if param == "mode":
        output = None
        mode = value
        if isinstance(value, Mapping):
            mode, output = value.get("mode"), value.get("output")
        if mode not in _MODES:
            raise _refuse(loop, param, mode, f"the mode is one of {', '.join(_MODES)}", user)
        if output is None:
            return mode
        if not has_pid:
            raise _refuse(loop, "output", output, "this loop has no manual output", user)
        return {"mode": "manual", "output": _manual_output(loop, output, settings, user)}
    if param.startswith("stages."):
        return _stage(loop, param, value, settings, configured, lim, gain_span, user)
    if not has_pid:
        raise _refuse(loop, param, value, f"a {settings.get('type')} loop has no PID", user)
    if param == "setpoint":
        v = _number(loop, param, value, user)
        if not math.isfinite(v):
            raise _refuse(loop, param, v, "a setpoint must be finite", user)
        if lim.setpoint is not None and not lim.setpoint[0] <= v <= lim.setpoint[1]:
            lo, hi = lim.setpoint
            raise _refuse(loop, param, v, f"outside the setpoint range [{lo:g}, {hi:g}]", user)
        return v
    if param == "output":
        if settings.get("mode") != "manual":
            raise _refuse(
                loop,
                param,
                value,
                f"the loop is in {settings.get('mode')}: use manual(output) to switch and set it",
                user,
            )
        return _manual_output(loop, value, settings, user)
    if param in _CHOICES:
        if value not in _CHOICES[param]:
            raise _refuse(loop, param, value, f"one of {', '.join(_CHOICES[param])}", user)
        return value
    v = _number(loop, param, value, user)
    if param == "kp":
        if not (math.isfinite(v) and v > 0):
            raise _refuse(loop, param, v, "kp must be finite and > 0", user)
        _span(loop, param, v, lim.kp, configured.get("kp"), gain_span, user)
    elif param == "ti_s":
        if math.isnan(v) or v < 0:
            raise _refuse(loop, param, v, "ti_s must be >= 0 (0 or inf: no integral)", user)
        if math.isfinite(v) and v > 0:
            _span(loop, param, v, lim.ti_s, configured.get("ti_s"), gain_span, user)
        elif lim.ti_s is not None:
            raise _refuse(loop, param, v, "the configured ti_s range has no 'no integral'", user)
    elif param == "td_s":
        if not (math.isfinite(v) and v >= 0):
            raise _refuse(loop, param, v, "td_s must be finite and >= 0", user)
        base = configured.get("td_s") or None
        if v > 0 and (lim.td_s is not None or base):
            _span(loop, param, v, lim.td_s, base, gain_span, user)
    elif param in ("b", "c"):
        if not 0.0 <= v <= 1.0:
            raise _refuse(loop, param, v, "setpoint weights are within [0, 1]", user)
    elif param == "n":
        if not (math.isfinite(v) and 1.0 <= v <= 1000.0):
            raise _refuse(loop, param, v, "the derivative filter divisor is within [1, 1000]", user)
    elif param in ("tt_s", "rate_limit_per_s"):
        if not v > 0 or math.isnan(v) or (param == "tt_s" and not math.isfinite(v)):
            raise _refuse(loop, param, v, f"{param} must be > 0", user)
    elif param in ("deadband", "bias"):
        if not math.isfinite(v) or (param == "deadband" and v < 0):
            raise _refuse(loop, param, v, f"{param} must be finite (deadband >= 0)", user)
    elif param in ("output_min", "output_max"):
        lo_ok, hi_ok = output_range or (-math.inf, math.inf)
        other = settings["output_max"] if param == "output_min" else settings["output_min"]
        if not (math.isfinite(v) and lo_ok <= v <= hi_ok):
            raise _refuse(loop, param, v, f"within the output range [{lo_ok:g}, {hi_ok:g}]", user)
        if (param == "output_min" and v >= other) or (param == "output_max" and v <= other):
            raise _refuse(loop, param, v, "output_min must stay below output_max", user)
    return v


def _manual_output(loop: str, value: Any, settings: Mapping[str, Any], user: str) -> float:
    v = _number(loop, "output", value, user)
    lo, hi = float(settings["output_min"]), float(settings["output_max"])
    if not (math.isfinite(v) and lo <= v <= hi):
        raise _refuse(
            loop, "output", v, f"outside the loop's output range [{lo:g}, {hi:g}] (its units)", user
        )
    return v


def _stage(
    loop: str,
    param: str,
    value: Any,
    settings: Mapping[str, Any],
    configured: Mapping[str, Any],
    lim: LoopLimits,
    gain_span: float,
    user: str,
) -> Any:
    stages = settings.get("stages")
    parts = param.split(".")
    if not isinstance(stages, Mapping) or len(parts) != 3 or parts[1] not in stages:
        known = list(stages) if isinstance(stages, Mapping) else []
        raise _refuse(
            loop,
            param,
            value,
            f"stage settings are stages.<output>.enabled|kp|ti_s ({known})",
            user,
        )
    what = parts[2]
    if what == "enabled":
        if not isinstance(value, bool):
            raise _refuse(loop, param, value, "enabled is true or false", user)
        return value
    if what not in ("kp", "ti_s"):
        raise _refuse(loop, param, value, "a stage sets only enabled, kp and ti_s", user)
    v = _number(loop, param, value, user)
    if what == "kp":
        if not (math.isfinite(v) and v > 0):
            raise _refuse(loop, param, v, "kp must be finite and > 0", user)
        _span(loop, param, v, lim.kp, configured.get("kp"), gain_span * gain_span, user)
    elif math.isnan(v) or v < 0:
        raise _refuse(loop, param, v, "ti_s must be >= 0 (0 or inf: no integral)", user)
    return v
