"""The reactor configuration: one TOML file says what a controller runs.

::

    [reactor]              name, scan period, operator-facing description
    [plant]                the simulated plant behind ``sim://`` ports (omit on a real rig)
    [historian]            database path, commit interval, sampling period
    [run]                  restart policy (resume | hold) and how often state is persisted
    [devices.<name>]       firmware profile, port URL, polling, reading → tag map, output map
    [gpio]                 board profile and pin factory; [gpio.outputs.<name>] pins
    [outputs.<name>]       actuator outputs: unit, limits, safe value, where they are delivered
    [tags.<name>]          extra tags (units, max age) beyond those devices and loops create
    [loops.<name>]         control loops: type = pid | split_range | do_cascade | feed | foam
    [softsensors.<name>]   spectral soft sensors: model file, spectrometer device, output tag
    [alarms.<name>]        limit / stale / deviation alarms
    [pump_checks.<name>]   pump-stall detection: tag ``<name>.delivery``, alarm ``<name>.stall``
    [interlocks.<name>]    limit / force / trip interlocks on alarms
    [recipe]               phases and transitions
    [operator]             rights, e-signatures, users file, limits of operator changes

Decoded by :func:`load_reactor_config` into frozen structs; every error names the file, the key
path and the rule broken. Cross-references (a loop naming an unknown tag or output, an interlock
naming an unknown alarm) are checked after decoding with the same kind of message.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from edgectl.config import Struct, decode_mapping, merge_tables, read_toml
from edgectl.errors import ConfigError
from edgectl.fleet.config import MqttConfig
from edgectl.lab.config import OpcUaConfig, SilaConfig
from edgectl.operator.config import OperatorConfig
from edgectl.runtime.alarms import AlarmSpec, InterlockSpec
from edgectl.runtime.recipe import Recipe

__all__ = [
    "MAX_EXTENDS",
    "Acceptance",
    "CascadeLoop",
    "CascadeStage",
    "DeviceConfig",
    "FeedLoop",
    "FoamLoop",
    "GpioConfig",
    "GpioLink",
    "HistorianConfig",
    "LoopConfig",
    "OutputConfig",
    "PidLoop",
    "PlantConfig",
    "PumpCheck",
    "ReactorConfig",
    "ReactorInfo",
    "RunConfig",
    "SoftSensorConfig",
    "SoftSensorCorrection",
    "SplitRangeLoop",
    "TagConfig",
    "config_files",
    "config_text",
    "load_reactor_config",
    "read_reactor_toml",
]

Positive = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
# Bounded quantities: a period beyond a day, a window beyond an hour is a typo, not a setting
# (every other number is finite and |x| <= 1e15: edgectl.runtime.config_checks.check_raw).
PeriodS = Annotated[float, msgspec.Meta(gt=0.0, le=86_400.0)]
WindowS = Annotated[float, msgspec.Meta(ge=0.0, le=3_600.0)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=64)]


class ReactorInfo(Struct, frozen=True, kw_only=True):
    name: Name
    description: str = ""
    scan_period_s: Annotated[float, msgspec.Meta(gt=0.0, le=3_600.0)] = 1.0
    volume_l: Annotated[float, msgspec.Meta(gt=0.0, le=10_000.0)] = 2.0


class GpioLink(Struct, frozen=True, kw_only=True):
    """What a board channel is wired to in the simulated plant: ``actuator`` (an output channel
    drives it, ``value × scale``) or a plant signal (an input channel reads it)."""

    actuator: str
    scale: float = 1.0


class PlantConfig(Struct, frozen=True, kw_only=True):
    """The simulated plant (``edgectl.sim``) that answers ``sim://`` ports, and the wiring a
    real rig has in copper: board channel → plant actuator or signal."""

    scenario: str = "ecoli_2l"
    config: str = ""  # optional plant TOML, relative to the reactor file
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**53)] = 0
    # accelerated runs keep controller, plant and emulators on one time base
    # (edgectl.runtime.clock.LockstepClock): simulated time waits for whoever is late, so a
    # busy machine slows the run down instead of changing its verdict; false: free-running
    paced: bool = True
    gpio: dict[str, GpioLink] = {}


class HistorianConfig(Struct, frozen=True, kw_only=True):
    path: str = ""  # default: runs/<reactor name>.db beside the working directory
    commit_interval_s: Annotated[float, msgspec.Meta(gt=0.0, le=3_600.0)] = 2.0
    sample_period_s: PeriodS = 10.0


class RunConfig(Struct, frozen=True, kw_only=True):
    """Restart policy: ``resume`` restores phase, loop states and totals without a bump;
    ``hold`` starts with every output safe and every loop in manual."""

    on_restart: Literal["resume", "hold"] = "resume"
    persist_every_scans: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10
    socket: str = ""  # REPL socket; default runs/<reactor name>.sock


class DeviceConfig(Struct, frozen=True, kw_only=True):
    """One device on one port.

    ``readings`` maps a driver reading (``temp_c``, ``ph``, ``mass_g``, ...) to a tag name;
    ``outputs`` maps an output name (``[outputs.*]``) to the driver quantity it sets.
    """

    profile: str
    port: str
    options: dict[str, Any] = {}
    poll_period_s: PeriodS = 1.0
    max_age_s: Annotated[float, msgspec.Meta(gt=0.0, le=864_000.0)] = 10.0
    readings: dict[str, str] = {}
    outputs: dict[str, str] = {}


class GpioConfig(Struct, frozen=True, kw_only=True):
    board: str = "boards/raspberry-pi-5"
    pin_factory: Literal["auto", "mock", "lgpio", "bridge"] = "auto"
    chip: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    # pin_factory = "bridge": an emulated rig's GPIO bridge (tcp://127.0.0.1:PORT; default
    # $EDGECTL_GPIO_BRIDGE), see edgectl.emulators.gpio_bridge
    bridge: str = ""
    outputs: dict[str, str] = {}  # output name → board output channel
    inputs: dict[str, str] = {}  # tag name → board input channel
    #: how often the input channels are read (s): a foam probe or a level switch changes over
    #: seconds to minutes, and every read is a wake-up of the GPIO worker (a network transaction
    #: on a bridged rig)
    input_period_s: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 1.0


class OutputConfig(Struct, frozen=True, kw_only=True):
    """An actuator output. ``safe`` is where it goes on fault, trip or shutdown."""

    unit: str = ""
    min: float = 0.0
    max: float = 1.0
    safe: float = 0.0
    scale: float = 1.0  # the device receives value × scale (rpm → PWM duty, % → sccm, ...)
    pwm_window_s: WindowS = 0.0  # > 0: time-proportioned on/off output (GPIO heaters, pumps)
    #: a serial output is re-sent only when it moves by more than this (in its own unit), or
    #: reaches min, max or safe, or at the hub's refresh; 0 (default): every change is sent.
    #: Set it to the device's setpoint resolution (a Reglo ICC's 4-digit rate: 0.1 %); not
    #: coarser than the smallest step a loop needs (a 0.1 % band on a 2000 sccm O2 MFC made
    #: a limit cycle of the DO cascade at 20 sccm)
    write_deadband: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0

    @property
    def deadband(self) -> float:
        """The write dead band in the output's unit (see ``write_deadband``)."""
        return self.write_deadband

    def __post_init__(self) -> None:
        for key in ("min", "max", "safe", "scale"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key} must be finite, got {getattr(self, key)}")
        if not self.max > self.min:
            raise ValueError(f"max must be > min, got min={self.min} max={self.max}")
        if not self.min <= self.safe <= self.max:
            raise ValueError(f"safe must be within [min, max], got {self.safe}")


class TagConfig(Struct, frozen=True, kw_only=True):
    unit: str = ""
    max_age_s: Positive = math.inf
    description: str = ""


class Acceptance(Struct, frozen=True, kw_only=True):
    """How well a loop must hold its setpoint after ``settle_s`` (the run summary checks it):
    within ±``band`` (``side = "both"``), or no lower than setpoint − ``band`` (``"below"``)."""

    band: Positive
    side: Literal["both", "below"] = "both"
    settle_s: NonNegative = 1800.0


class _LoopBase(Struct, frozen=True, kw_only=True):
    pv: str
    setpoint: float
    pid: dict[str, Any] = {}
    mode: Literal["auto", "manual", "off"] = "auto"
    description: str = ""
    acceptance: Acceptance | None = None
    # A PV that is not GOOD: hold the output this long, then drive the outputs safe.
    hold_bad_pv_s: Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)] = 60.0


class PidLoop(_LoopBase, frozen=True, kw_only=True, tag="pid", tag_field="type"):
    """One PID from ``pv`` to one output."""

    output: str


class SplitRangeLoop(_LoopBase, frozen=True, kw_only=True, tag="split_range", tag_field="type"):
    """One PID whose output (−100..+100 %) drives ``raise_output`` above ``deadband_pct`` and
    ``lower_output`` below −``deadband_pct`` (base pump / CO2, heater / cooling), never both.
    ``changeover_s``: both sides off at least this long before the other side may start (noise
    around the change-over then cannot switch CO2 and base back and forth)."""

    raise_output: str
    lower_output: str
    deadband_pct: NonNegative = 0.0
    changeover_s: Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)] = 0.0


class CascadeStage(Struct, frozen=True, kw_only=True):
    """One actuator of a DO cascade: its output and working range; optionally the tag reading
    back what it achieves (``feedback``, e.g. the MFC's measured flow: stage health), its own
    master gains (``pid = { kp = ..., ti_s = ... }``: gain schedule) and the gains it runs while
    a stage below it has failed (``pid_degraded``)."""

    output: str
    min: float
    max: float
    feedback: str = ""
    pid: dict[str, float] = {}
    # gains while a stage below this one has failed (the plant it acts on is not the same: pure
    # O2 without the air flow moves DO two orders of magnitude more per sccm)
    pid_degraded: dict[str, float] = {}

    def __post_init__(self) -> None:
        if self.max <= self.min:
            raise ValueError(f"max must be > min, got min={self.min} max={self.max}")
        for key, gains in (("pid", self.pid), ("pid_degraded", self.pid_degraded)):
            unknown = set(gains) - {"kp", "ti_s"}
            if unknown:
                raise ValueError(f"{key}: a stage sets only kp and ti_s, got {sorted(unknown)}")
            kp, ti_s = gains.get("kp", 1.0), gains.get("ti_s", 1.0)
            if not (math.isfinite(kp) and kp > 0):
                raise ValueError(f"{key}.kp must be finite and > 0, got {kp}")
            if math.isnan(ti_s) or ti_s < 0:
                raise ValueError(f"{key}.ti_s must be >= 0 (0 or inf: no integral), got {ti_s}")


class CascadeLoop(_LoopBase, frozen=True, kw_only=True, tag="do_cascade", tag_field="type"):
    """Sequential DO cascade: one master PID over stages (stirrer → air → O2).

    Stages with a ``feedback`` tag are watched: a read-back off its command by more than
    ``stage_tolerance`` × (max − min) for ``stage_fault_s`` fails the stage (skipped, alarm
    ``<loop>.<output>.failed``); tracking again for ``stage_recover_s`` restores it."""

    stages: list[CascadeStage]
    hysteresis_s: WindowS = 60.0
    stage_tolerance: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.2
    stage_fault_s: WindowS = 60.0
    stage_recover_s: WindowS = 120.0

    def stage_alarms(self, loop: str) -> list[str]:
        """Names of the automatic stage-failure alarms of this loop."""
        return [f"{loop}.{s.output}.failed" for s in self.stages if s.feedback]


class FeedLoop(Struct, frozen=True, kw_only=True, tag="feed", tag_field="type"):
    """Feed pump driven by the recipe's feed profile; with ``pv`` (a soft-sensor tag) a glucose
    PID trims the profile, falling back to the profile alone when the tag is not GOOD."""

    output: str
    pv: str = ""
    setpoint: float = math.nan
    pid: dict[str, Any] = {}
    mode: Literal["auto", "manual", "off"] = "auto"
    description: str = ""
    acceptance: Acceptance | None = None


class FoamLoop(Struct, frozen=True, kw_only=True, tag="foam", tag_field="type"):
    """Foam probe → antifoam pump pulses (DCU3 §6.15: pulse and pause times)."""

    probe: str
    output: str
    rate: Positive = 1.0
    pulse_s: Annotated[float, msgspec.Meta(gt=0.0, le=3_600.0)] = 2.0
    pause_s: PeriodS = 30.0
    mode: Literal["auto", "manual", "off"] = "auto"
    description: str = ""


LoopConfig = PidLoop | SplitRangeLoop | CascadeLoop | FeedLoop | FoamLoop


class SoftSensorCorrection(Struct, frozen=True, kw_only=True):
    """Online bias correction from at-line references: the two-state [c, bias] Kalman filter of
    softsensor.md §6 (random walks per hour; R of a prediction defaults to RMSEC²)."""

    kind: Literal["bias_kalman"] = "bias_kalman"
    q_concentration: Positive = 4.0
    q_bias: Positive = 0.05
    r_prediction: Positive | None = None
    r_reference: Positive = 0.25
    gate_sigma: Positive = 6.0


class SoftSensorConfig(Struct, frozen=True, kw_only=True):
    """A spectral soft sensor (:mod:`edgectl.runtime.softsensor`): the spectrometer device is
    read every ``period_s``; ``tag`` (and ``<tag>.raw``, ``.t2``, ``.q``, ``.status``) carry the
    prediction, GOOD only when the spectrum is inside the model."""

    model: str  # model file, relative to the reactor file
    spectrometer: str  # device name
    tag: str
    period_s: PeriodS = 60.0
    max_age_s: Annotated[float, msgspec.Meta(gt=0.0, le=864_000.0)] | None = None  # 3 × period_s
    correction: SoftSensorCorrection | None = None


class PumpCheck(Struct, frozen=True, kw_only=True):
    """Pump-stall detection from a balance: over each ``window_s``, the mass the balance lost
    (÷ ``density_g_ml``) against the volume the pump was told to deliver. The ratio is the tag
    ``<name>.delivery``; below ``min_ratio`` the alarm ``<name>.stall`` is raised (a stalled
    pump, a blocked line or an empty bottle). Windows with less than ``min_volume_ml``
    commanded are not judged."""

    output: str
    balance: str
    density_g_ml: Positive = 1.0
    window_s: PeriodS = 600.0
    min_ratio: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.5
    min_volume_ml: Positive = 1.0
    # the ratio slides through the limit as a stalled window fills: clear only above
    # min_ratio + hysteresis, raise only after delay_s below it (no chatter)
    hysteresis: NonNegative = 0.1
    delay_s: Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)] = 60.0
    severity: Literal["info", "low", "medium", "high", "critical"] = "high"


class ReactorConfig(Struct, frozen=True, kw_only=True):
    reactor: ReactorInfo
    plant: PlantConfig | None = None
    historian: HistorianConfig = HistorianConfig()
    run: RunConfig = RunConfig()
    devices: dict[str, DeviceConfig] = {}
    gpio: GpioConfig | None = None
    outputs: dict[str, OutputConfig] = {}
    tags: dict[str, TagConfig] = {}
    loops: dict[str, LoopConfig] = {}
    softsensors: dict[str, SoftSensorConfig] = {}
    alarms: dict[str, AlarmSpec] = {}
    interlocks: dict[str, InterlockSpec] = {}
    pump_checks: dict[str, PumpCheck] = {}
    recipe: Recipe | None = None
    operator: OperatorConfig = OperatorConfig()
    mqtt: MqttConfig | None = None  # the fleet publisher (edgectl.fleet)
    opcua: OpcUaConfig = OpcUaConfig()  # the OPC UA LADS face (edgectl.lab), off by default
    sila: SilaConfig = SilaConfig()  # the SiLA 2 face (edgectl.lab), off by default

    def tag_names(self) -> set[str]:
        """Every tag the configuration creates: device readings, extra tags, soft sensors,
        GPIO inputs, outputs and loop setpoints (``<loop>.sp``)."""
        names = set(self.tags) | set(self.outputs)
        for dev in self.devices.values():
            names |= set(dev.readings.values())
        for ss in self.softsensors.values():
            names |= {ss.tag, *(f"{ss.tag}.{k}" for k in ("raw", "t2", "q", "status"))}
        if self.gpio:
            names |= set(self.gpio.inputs)
        names |= {f"{loop}.sp" for loop in self.loops}
        names |= {f"{check}.delivery" for check in self.pump_checks}
        for lname, loop in self.loops.items():
            if isinstance(loop, CascadeLoop):
                names |= {f"{lname}.{s.output}.health" for s in loop.stages if s.feedback}
        return names


def _loop_refs(name: str, loop: LoopConfig) -> list[tuple[str, str, str]]:
    """(key, kind, referenced name) of one loop."""
    key = f"$.loops.{name}"
    if isinstance(loop, PidLoop):
        return [(f"{key}.pv", "tag", loop.pv), (f"{key}.output", "output", loop.output)]
    if isinstance(loop, SplitRangeLoop):
        return [
            (f"{key}.pv", "tag", loop.pv),
            (f"{key}.raise_output", "output", loop.raise_output),
            (f"{key}.lower_output", "output", loop.lower_output),
        ]
    if isinstance(loop, CascadeLoop):
        refs = [(f"{key}.pv", "tag", loop.pv)]
        refs += [
            (f"{key}.stages[{i}].output", "output", s.output) for i, s in enumerate(loop.stages)
        ]
        refs += [
            (f"{key}.stages[{i}].feedback", "tag", s.feedback)
            for i, s in enumerate(loop.stages)
            if s.feedback
        ]
        return refs
    if isinstance(loop, FeedLoop):
        refs = [(f"{key}.output", "output", loop.output)]
        if loop.pv:
            refs.append((f"{key}.pv", "tag", loop.pv))
        return refs
    return [(f"{key}.probe", "tag", loop.probe), (f"{key}.output", "output", loop.output)]


def check_references(cfg: ReactorConfig, source: str) -> None:
    """Every name a section refers to must exist; errors name the key path."""
    tags = cfg.tag_names()
    outputs = set(cfg.outputs)
    problems: list[str] = []

    def need(key: str, kind: str, ref: str) -> None:
        pool = tags if kind == "tag" else outputs
        if ref not in pool:
            problems.append(f"{key}: unknown {kind} {ref!r} (known: {sorted(pool)})")

    for name, loop in cfg.loops.items():
        for key, kind, ref in _loop_refs(name, loop):
            need(key, kind, ref)
    for dname, dev in cfg.devices.items():
        for out in dev.outputs:
            need(f"$.devices.{dname}.outputs", "output", out)
    for sname, ss in cfg.softsensors.items():
        if ss.spectrometer not in cfg.devices:
            problems.append(
                f"$.softsensors.{sname}.spectrometer: unknown device {ss.spectrometer!r}"
            )
    for aname, alarm in cfg.alarms.items():
        need(f"$.alarms.{aname}.tag", "tag", alarm.tag)
        if alarm.reference:
            need(f"$.alarms.{aname}.reference", "tag", alarm.reference)
    for cname, check in cfg.pump_checks.items():
        need(f"$.pump_checks.{cname}.output", "output", check.output)
        need(f"$.pump_checks.{cname}.balance", "tag", check.balance)
    auto_alarms = {f"{c}.stall" for c in cfg.pump_checks}
    for lname, loop in cfg.loops.items():
        if isinstance(loop, CascadeLoop):
            auto_alarms |= set(loop.stage_alarms(lname))
    for aname in sorted(auto_alarms & set(cfg.alarms)):
        problems.append(
            f"$.alarms.{aname}: the name of an automatic alarm (pump check or cascade stage);"
            " choose another name"
        )
    for iname, il in cfg.interlocks.items():
        for a in il.alarms:
            if a not in cfg.alarms and a not in auto_alarms:
                problems.append(f"$.interlocks.{iname}.alarms: unknown alarm {a!r}")
        for out in il.outputs:
            need(f"$.interlocks.{iname}.outputs", "output", out)
    if cfg.recipe:
        loops = set(cfg.loops)
        for i, phase in enumerate(cfg.recipe.phases):
            for target in [*phase.setpoints, *phase.modes, *phase.outputs]:
                if target not in loops and target not in outputs:
                    problems.append(
                        f"$.recipe.phases[{i}]: unknown loop or output {target!r}"
                        f" (loops: {sorted(loops)})"
                    )
            lim = phase.feed.limits if phase.feed is not None else None
            if lim is not None and lim.do_loop is not None and lim.do_loop not in loops:
                problems.append(
                    f"$.recipe.phases[{i}].feed.limits.do_loop: unknown loop {lim.do_loop!r}"
                    f" (loops: {sorted(loops)})"
                )
            if lim is not None and lim.base_output is not None and lim.base_output not in outputs:
                problems.append(
                    f"$.recipe.phases[{i}].feed.limits.base_output: unknown output"
                    f" {lim.base_output!r} (outputs: {sorted(outputs)})"
                )
            for j, t in enumerate(phase.transitions):
                if t.when is not None:
                    need(f"$.recipe.phases[{i}].transitions[{j}].when.tag", "tag", t.when.tag)
                if t.spike is not None:
                    need(f"$.recipe.phases[{i}].transitions[{j}].spike.tag", "tag", t.spike.tag)
    delivered = {o for d in cfg.devices.values() for o in d.outputs}
    if cfg.gpio:
        delivered |= set(cfg.gpio.outputs)
    for out in outputs - delivered:
        problems.append(f"$.outputs.{out}: no device or GPIO channel delivers this output")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


# How many files an ``extends`` chain may have beyond the one run.
MAX_EXTENDS = 4


def config_files(path: str | Path) -> list[Path]:
    """The reactor file and the files it extends (``extends = "base.toml"``), itself first.

    Raises
    ------
    ConfigError
        A file cannot be read, ``extends`` is not a path, the chain is circular or longer than
        :data:`MAX_EXTENDS`; the message names the file and ``$.extends``.
    """
    return [p for p, _data in _chain(Path(path))]


def config_text(path: str | Path) -> str:
    """The text recorded with a run (its hash in the historian): the reactor file followed by
    every file it extends, so a change in any of them changes the hash."""
    return "".join(p.read_text(encoding="utf-8") for p in config_files(path))


def read_reactor_toml(path: str | Path) -> dict[str, Any]:
    """A reactor file's settings as plain data, over those of the file it extends.

    ``extends = "other.toml"`` (relative to the file) takes every setting of that file and puts
    this file's over it: tables merge key by key, anything else (a value, an array such as
    ``[[recipe.phases]]``) replaces the other file's whole. Relative paths inside either file
    (``[plant] config``, models) are resolved from the directory of the file that is run.
    """
    return _merged(_chain(Path(path)))


def _merged(chain: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _p, data in reversed(chain):
        merged = merge_tables(merged, data)
    return merged


def _chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    out: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    p = path
    while True:
        data = read_toml(p)
        out.append((p, data))
        seen.append(p.resolve())
        parent = data.pop("extends", None)
        if parent is None:
            return out
        if not isinstance(parent, str) or not parent.strip():
            raise ConfigError(
                f"{p}: $.extends: expected the path of the reactor file this one extends, "
                f"got {parent!r}"
            )
        nxt = p.parent / parent
        if nxt.resolve() in seen:
            names = " -> ".join(str(q) for q, _ in out)
            raise ConfigError(f"{p}: $.extends: {parent!r} extends in a circle ({names} -> {nxt})")
        if len(out) > MAX_EXTENDS:
            raise ConfigError(
                f"{p}: $.extends: more than {MAX_EXTENDS} files extended in a chain from {path}"
            )
        if not nxt.is_file():
            raise ConfigError(f"{p}: $.extends: {nxt}: file not found")
        p = nxt


def load_reactor_config(path: str | Path) -> ReactorConfig:
    """Read, validate and cross-check a reactor configuration file (and the file it
    ``extends``, see :func:`read_reactor_toml`).

    Raises
    ------
    ConfigError
        For any problem, naming the file and the key path; no input escapes as another error.
    """
    from edgectl.runtime.config_checks import check_raw, check_values

    chain = _chain(Path(path))
    parents = ", ".join(str(p) for p, _ in chain[1:])
    source = f"{path} (extending {parents})" if parents else str(path)
    data = _merged(chain)
    check_raw(data, source)
    cfg = decode_mapping(data, ReactorConfig, source=source)
    check_references(cfg, source)
    check_values(cfg, source, Path(path).parent)
    return cfg
