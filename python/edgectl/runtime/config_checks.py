"""Checks of a reactor configuration beyond its types: a config that loads cannot hurt.

:func:`check_raw` runs on the TOML data before it is decoded: nesting depth, and every number
finite and of sane magnitude (``inf`` only where it means "none": ``ti_s`` no integral action,
``rate_limit_per_s`` no rate limit, ``tags.*.max_age_s`` never stale). :func:`check_values`
runs on the decoded :class:`~edgectl.runtime.reactor_config.ReactorConfig`: one output driven
by at most one loop and delivered by one device, interlock and recipe values inside their
output's range, one producer per tag, PID settings that build, and every device's profile,
driver, readings, outputs and options, the board's channels and the soft-sensor models, so a
problem is refused at load time with the file and key path instead of surfacing while the run
is being built.

Every problem is a ``$.key.path: rule broken`` string; the loader joins them after the file
name into one :class:`~edgectl.errors.ConfigError`.
"""

from __future__ import annotations

import inspect
import math
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from edgectl.errors import ConfigError, EdgectlError

if TYPE_CHECKING:
    from edgectl.devices import SerialDevice
    from edgectl.runtime.reactor_config import ReactorConfig

__all__ = ["MAX_DEPTH", "MAX_MAGNITUDE", "check_raw", "check_values"]

#: Deepest nesting of tables and arrays a reactor config may have (the shipped ones reach 6).
MAX_DEPTH = 12
#: Largest magnitude of any number in a reactor config (counts, seconds, rates, limits).
MAX_MAGNITUDE = 1e15
#: Keys whose value may be +inf, meaning "none" (no integral action, no rate limit).
_INF_KEYS = frozenset({"ti_s", "rate_limit_per_s"})


def _inf_allowed(path: tuple[str | int, ...]) -> bool:
    if path and path[-1] in _INF_KEYS:
        return True
    return len(path) == 3 and path[0] == "tags" and path[2] == "max_age_s"


def _key_path(path: tuple[str | int, ...]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_raw(data: Mapping[str, Any], source: str) -> None:
    """Refuse deep nesting and non-finite or huge numbers anywhere in the TOML data.

    Iterative, so no input can exhaust the interpreter's stack.
    """
    problems: list[str] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack and len(problems) < 20:
        path, value = stack.pop()
        if len(path) > MAX_DEPTH:
            problems.append(f"{_key_path(path[:MAX_DEPTH])}: nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(value, Mapping):
            stack.extend(((*path, str(k)), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, float):
            if math.isnan(value) or (math.isinf(value) and not (value > 0 and _inf_allowed(path))):
                problems.append(f"{_key_path(path)}: must be a finite number, got {value}")
            elif math.isfinite(value) and abs(value) > MAX_MAGNITUDE:
                problems.append(f"{_key_path(path)}: {value:g} is out of range (|x| <= 1e15)")
        elif isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
            problems.append(f"{_key_path(path)}: {value} is out of range (|x| <= 1e15)")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(sorted(problems)))


# -- the decoded configuration -----------------------------------------------------------------


def _loop_outputs(name: str, loop: Any) -> list[tuple[str, str]]:
    """(key path, output) of every output a loop drives."""
    from edgectl.runtime.reactor_config import CascadeLoop, SplitRangeLoop

    key = f"$.loops.{name}"
    if isinstance(loop, SplitRangeLoop):
        return [
            (f"{key}.raise_output", loop.raise_output),
            (f"{key}.lower_output", loop.lower_output),
        ]
    if isinstance(loop, CascadeLoop):
        return [(f"{key}.stages[{i}].output", s.output) for i, s in enumerate(loop.stages)]
    return [(f"{key}.output", loop.output)]


def _one_loop_per_output(cfg: ReactorConfig, problems: list[str]) -> None:
    drivers: dict[str, str] = {}
    for name, loop in cfg.loops.items():
        for key, out in _loop_outputs(name, loop):
            if out in drivers:
                problems.append(
                    f"{key}: output {out!r} is already driven by {drivers[out]}"
                    " (one output, one loop)"
                )
            else:
                drivers[out] = key
    delivered: dict[str, str] = {}
    for dname, dev in cfg.devices.items():
        for out in dev.outputs:
            key = f"$.devices.{dname}.outputs.{out}"
            if out in delivered:
                problems.append(f"{key}: output {out!r} is already delivered by {delivered[out]}")
            else:
                delivered[out] = key
    if cfg.gpio is not None:
        for out in cfg.gpio.outputs:
            key = f"$.gpio.outputs.{out}"
            if out in delivered:
                problems.append(f"{key}: output {out!r} is already delivered by {delivered[out]}")
            else:
                delivered[out] = key


def _inside_outputs(cfg: ReactorConfig, problems: list[str]) -> None:
    """Values written to outputs (interlocks, recipe phases, cascade stages) in their range."""

    def inside(key: str, out: str, value: float) -> None:
        o = cfg.outputs.get(out)
        if o is not None and not o.min <= value <= o.max:
            problems.append(
                f"{key}: {value:g} is outside output {out!r}'s range [{o.min:g}, {o.max:g}]"
            )

    for name, o in cfg.outputs.items():
        if o.scale == 0.0:
            problems.append(f"$.outputs.{name}.scale: must not be 0 (the device would get 0)")
    for iname, il in cfg.interlocks.items():
        if il.action != "trip" and not il.outputs:
            problems.append(f"$.interlocks.{iname}.outputs: a {il.action} interlock needs outputs")
        for out, value in il.outputs.items():
            inside(f"$.interlocks.{iname}.outputs.{out}", out, value)
    if cfg.recipe is not None:
        for i, phase in enumerate(cfg.recipe.phases):
            for out, value in phase.outputs.items():
                inside(f"$.recipe.phases[{i}].outputs.{out}", out, value)
    from edgectl.runtime.reactor_config import CascadeLoop

    for lname, loop in cfg.loops.items():
        if isinstance(loop, CascadeLoop):
            for i, s in enumerate(loop.stages):
                inside(f"$.loops.{lname}.stages[{i}].min", s.output, s.min)
                inside(f"$.loops.{lname}.stages[{i}].max", s.output, s.max)


def _one_producer_per_tag(cfg: ReactorConfig, problems: list[str]) -> None:
    from edgectl.runtime.reactor_config import CascadeLoop

    producers: dict[str, str] = {}

    def produce(tag: str, key: str) -> None:
        if tag in producers:
            problems.append(f"{key}: tag {tag!r} is already published by {producers[tag]}")
        else:
            producers[tag] = key

    for dname, dev in cfg.devices.items():
        for reading, tag in dev.readings.items():
            produce(tag, f"$.devices.{dname}.readings.{reading}")
    for sname, ss in cfg.softsensors.items():
        produce(ss.tag, f"$.softsensors.{sname}.tag")
        for suffix in ("raw", "t2", "q", "status"):
            produce(f"{ss.tag}.{suffix}", f"$.softsensors.{sname}.tag (.{suffix})")
    if cfg.gpio is not None:
        for tag in cfg.gpio.inputs:
            produce(tag, f"$.gpio.inputs.{tag}")
    for out in cfg.outputs:
        produce(out, f"$.outputs.{out}")
    for lname, loop in cfg.loops.items():
        produce(f"{lname}.sp", f"$.loops.{lname} (its setpoint tag)")
        if isinstance(loop, CascadeLoop):
            for i, s in enumerate(loop.stages):
                if s.feedback:
                    produce(f"{lname}.{s.output}.health", f"$.loops.{lname}.stages[{i}] (health)")
    for cname in cfg.pump_checks:
        produce(f"{cname}.delivery", f"$.pump_checks.{cname} (its delivery tag)")
    for tname in cfg.tags:
        produce(tname, f"$.tags.{tname}")


def _pid_settings(cfg: ReactorConfig, problems: list[str], source: str) -> None:
    """Each loop's PID builds from its settings and the defaults the engine gives it."""
    from edgectl.control import PidSettings
    from edgectl.runtime.reactor_config import CascadeLoop, FeedLoop, FoamLoop, PidLoop

    for name, loop in cfg.loops.items():
        if isinstance(loop, FoamLoop) or (isinstance(loop, FeedLoop) and not loop.pv):
            continue
        key = f"$.loops.{name}.pid"
        if isinstance(loop, PidLoop | FeedLoop):
            o = cfg.outputs.get(loop.output)
            if o is None:
                continue  # reported by the reference check
            lo, hi = (o.min, o.max) if isinstance(loop, PidLoop) else (-o.max, o.max)
        elif isinstance(loop, CascadeLoop):
            lo, hi = 0.0, 100.0
        else:
            lo, hi = -100.0, 100.0
        data = {"output_min": lo, "output_max": hi, "setpoint": loop.setpoint, **loop.pid}
        try:
            PidSettings.from_dict(data, source=source).build()
        except ConfigError as exc:
            # "<source>: $.kp: ..." → "$.loops.<name>.pid.kp: ..."
            text = str(exc).removeprefix(f"{source}: ")
            problems.append(key + text[1:] if text.startswith("$") else f"{key}: {text}")
        except EdgectlError as exc:
            problems.append(f"{key}: {exc}")


def _option_problems(cls: type, options: Mapping[str, Any], key: str) -> list[str]:
    """Driver options: names the driver's constructor takes, values of its declared types."""
    fixed = {"self", "port", "profile", "name"}
    init: Any = cls.__init__  # type: ignore[misc]
    params = {
        n: p
        for n, p in inspect.signature(init).parameters.items()
        if n not in fixed and p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an unresolvable annotation: check names only
        hints = {}
    problems = []
    for opt, value in options.items():
        if opt not in params:
            problems.append(
                f"{key}.{opt}: {cls.__name__} takes no option {opt!r}"
                f" (options: {', '.join(sorted(params)) or 'none'})"
            )
            continue
        hint = hints.get(opt)
        if hint is None:
            continue
        try:
            msgspec.convert(value, hint, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(f"{key}.{opt}: {exc}")
    return problems


def _devices(cfg: ReactorConfig, problems: list[str], base_dir: Path) -> None:
    """Profiles load, a driver exists, readings/outputs/options fit the driver."""
    from edgectl.devices import DRIVERS
    from edgectl.io.profile import find_profile, load_board, load_profile

    classes: dict[str, type[SerialDevice]] = {}
    for dname, dev in cfg.devices.items():
        key = f"$.devices.{dname}"
        try:
            load_profile(dev.profile)
            path = find_profile(dev.profile)
        except ConfigError as exc:
            problems.append(f"{key}.profile: {exc}")
            continue
        cls = DRIVERS.get(f"{path.parent.name}/{path.stem}")
        if cls is None:
            problems.append(
                f"{key}.profile: no driver for {dev.profile!r} (known: {', '.join(DRIVERS)})"
            )
            continue
        classes[dname] = cls
        for reading in dev.readings:
            if not callable(getattr(cls, f"read_{reading}", None)):
                have = sorted(n[5:] for n in dir(cls) if n.startswith("read_"))
                problems.append(
                    f"{key}.readings.{reading}: {cls.__name__} has no read_{reading}()"
                    f" (readings: {', '.join(have)})"
                )
        for out, quantity in dev.outputs.items():
            if not callable(getattr(cls, f"set_{quantity}", None)):
                have = sorted(n[4:] for n in dir(cls) if n.startswith("set_"))
                problems.append(
                    f"{key}.outputs.{out}: {cls.__name__} has no set_{quantity}()"
                    f" (settable: {', '.join(have) or 'none'})"
                )
        option_problems = _option_problems(cls, dev.options, f"{key}.options")
        problems.extend(option_problems)
        if not option_problems:
            try:
                cls.check_options(**dev.options)
            except EdgectlError as exc:
                problems.append(f"{key}.options: {exc}")
    for sname, ss in cfg.softsensors.items():
        cls_ = classes.get(ss.spectrometer)
        if cls_ is not None and not callable(getattr(cls_, "acquire", None)):
            problems.append(
                f"$.softsensors.{sname}.spectrometer: device {ss.spectrometer!r} is not a"
                " spectrometer"
            )
        model = Path(ss.model)
        if not model.is_absolute():
            model = base_dir / model
        if not model.is_file():
            problems.append(f"$.softsensors.{sname}.model: no model file {str(model)!r}")
    if cfg.gpio is None:
        return
    try:
        board = load_board(cfg.gpio.board)
    except ConfigError as exc:
        problems.append(f"$.gpio.board: {exc}")
        return
    for out, channel in cfg.gpio.outputs.items():
        if channel not in board.outputs:
            problems.append(
                f"$.gpio.outputs.{out}: board {cfg.gpio.board!r} has no output {channel!r}"
                f" (outputs: {', '.join(sorted(board.outputs))})"
            )
    for tag, channel in cfg.gpio.inputs.items():
        if channel not in board.inputs:
            problems.append(
                f"$.gpio.inputs.{tag}: board {cfg.gpio.board!r} has no input {channel!r}"
                f" (inputs: {', '.join(sorted(board.inputs)) or 'none'})"
            )
    if cfg.plant is not None:
        for channel in cfg.plant.gpio:
            if channel not in board.outputs and channel not in board.inputs:
                problems.append(
                    f"$.plant.gpio.{channel}: board {cfg.gpio.board!r} has no channel {channel!r}"
                )


#: Longest Unix socket path the kernel takes (sun_path is 108 bytes with its NUL; margin kept).
MAX_SOCKET_PATH = 100


def _analysed_sensors(cfg: ReactorConfig, problems: list[str]) -> None:
    """A recipe sample's ``analyse`` names configured soft sensors."""
    if cfg.recipe is None:
        return
    for i, phase in enumerate(cfg.recipe.phases):
        for j, step in enumerate(phase.sampling):
            for sensor in step.analyse:
                if sensor not in cfg.softsensors:
                    problems.append(
                        f"$.recipe.phases[{i}].sampling[{j}].analyse.{sensor}: no soft sensor "
                        f"{sensor!r} (soft sensors: {', '.join(sorted(cfg.softsensors)) or 'none'})"
                    )


def check_values(cfg: ReactorConfig, source: str, base_dir: Path) -> None:
    """Every rule of the module docstring; one ConfigError naming ``source`` lists them all."""
    problems: list[str] = []
    if len(os.fsencode(cfg.run.socket)) > MAX_SOCKET_PATH:
        problems.append(
            f"$.run.socket: a Unix socket path has at most {MAX_SOCKET_PATH} bytes,"
            f" got {len(os.fsencode(cfg.run.socket))}"
        )
    _one_loop_per_output(cfg, problems)
    _inside_outputs(cfg, problems)
    _one_producer_per_tag(cfg, problems)
    _pid_settings(cfg, problems, source)
    _devices(cfg, problems, base_dir)
    _analysed_sensors(cfg, problems)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
