"""Control blocks of edgectl: industrial PID, split range, DO cascade, pulse outputs, relay
autotuning with tuning rules, interlocks, feed profiles and a loop bank.

Every block is computed by the Rust core (``edgectl._core``) and takes the measured time step
``dt_s`` on each update; none reads a clock, so runs replay exactly. Algorithms, constants and
test scenarios follow ``shared/reference/control.md`` (ISA PID after Åström & Murray as in
JuliaControl/DiscretePIDs.jl; SIMC after Skogestad 2003; AMIGO after Åström & Hägglund 2004).

Live tuning from the REPL is bumpless::

    >>> from edgectl.control import Pid
    >>> pid = Pid(2.0, ti_s=300.0, setpoint=37.0)
    >>> round(pid.update(36.5, dt_s=1.0), 6)
    1.0
    >>> pid.kp = 4.0                     # retune while running: the output does not jump
    >>> round(pid.update(36.5, dt_s=1.0), 6)
    1.003333
    >>> pid.mode = "manual"; pid.manual_output = 30.0
    >>> pid.update(36.5, dt_s=1.0)
    30.0
    >>> pid.mode = "auto"                # bumpless back to auto, even with an error of 0.5 K
    >>> pid.update(36.5, dt_s=1.0)
    30.0

Settings go to and from plain dicts (and so TOML, via :func:`edgectl.config.to_toml_text`)::

    >>> settings = PidSettings.from_pid(pid)
    >>> settings.kp, settings.ti_s
    (4.0, 300.0)
    >>> pid2 = pid_from_dict({"kp": 0.8, "ti_s": 600.0, "action": "cooling"})
    >>> pid2.action
    'cooling'
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec

from edgectl._core import (
    DoCascade,
    ExponentialFeed,
    FoamPulser,
    Fopdt,
    LoopBank,
    OverTempLadder,
    Pid,
    PidComponents,
    PidTuning,
    PulseOutput,
    RelayAutotune,
    RelayResult,
    SplitRange,
    StatPulser,
    VelocityPid,
    amigo_pi,
    imc_pid,
    simc_integrating,
    simc_pi,
    ziegler_nichols,
)
from edgectl.config import Struct, decode_mapping, to_builtins
from edgectl.errors import ConfigError, EdgectlError

__all__ = [
    "PID_PARAMS",
    "Autotuner",
    "DoCascade",
    "ExponentialFeed",
    "FoamPulser",
    "Fopdt",
    "LoopBank",
    "OverTempLadder",
    "Pid",
    "PidComponents",
    "PidSettings",
    "PidTuning",
    "PulseOutput",
    "RelayAutotune",
    "RelayResult",
    "SplitRange",
    "StatPulser",
    "VelocityPid",
    "amigo_pi",
    "imc_pid",
    "parallel_to_isa",
    "pid_from_dict",
    "pid_from_tuning",
    "proportional_band_to_gain",
    "series_to_isa",
    "simc_integrating",
    "simc_pi",
    "tune",
    "ziegler_nichols",
]

#: The tuning parameters of a :class:`Pid` that a config or an operator may set (with the
#: setpoint, mode and output, which are the loop's).
PID_PARAMS = frozenset(
    {
        "kp",
        "ti_s",
        "td_s",
        "b",
        "c",
        "n",
        "tt_s",
        "rate_limit_per_s",
        "deadband",
        "bias",
        "anti_windup",
        "action",
    }
)

Rule = Literal[
    "simc", "simc_smooth", "amigo_pi", "imc_pid", "ziegler_nichols_pi", "ziegler_nichols_pid"
]


class PidSettings(Struct, frozen=True, kw_only=True):
    """Settings of a :class:`Pid` as a frozen, validated config struct.

    The field names are the keyword arguments of :class:`Pid`, so
    ``Pid(**to_builtins(settings))`` and :meth:`build` give the same controller.
    ``ti_s = inf`` (or 0) means no integral action; ``tt_s = None`` picks the tracking time
    √(Ti·max(Td, dt_s)) (Åström & Hägglund 2006: the geometric mean of the bounds of Tt; see
    ``PidSettings::tracking_time_s`` in the core).
    """

    kp: Annotated[float, msgspec.Meta(ge=0.0)]
    ti_s: Annotated[float, msgspec.Meta(ge=0.0)] = math.inf
    td_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    b: float = 1.0
    c: float = 0.0
    n: Annotated[float, msgspec.Meta(gt=0.0)] = 10.0
    tt_s: Annotated[float, msgspec.Meta(gt=0.0)] | None = None
    output_min: float = 0.0
    output_max: float = 100.0
    rate_limit_per_s: Annotated[float, msgspec.Meta(gt=0.0)] = math.inf
    deadband: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    deadband_outputs_off: bool = False
    output_off: float = 0.0
    action: Literal["heating", "cooling"] = "heating"
    anti_windup: Literal["back_calculation", "conditional", "clamp"] = "back_calculation"
    bias: float = 0.0
    setpoint: float = 0.0

    def build(self) -> Pid:
        """A new :class:`Pid` with these settings.

        Raises
        ------
        InvalidInputError
            When the settings are inconsistent (e.g. ``output_max <= output_min``).
        """
        return Pid(**to_builtins(self))

    @classmethod
    def from_pid(cls, pid: Pid) -> PidSettings:
        """The settings of a running controller (its live tuning included)."""
        return cls.from_dict(pid.to_dict(), source=repr(pid))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> PidSettings:
        """Validate plain data; errors name ``source`` and the key (``$.kp``)."""
        return decode_mapping(data, cls, source=source)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``tt_s`` dropped when ``None``, so the dict is TOML-ready)."""
        d: dict[str, Any] = to_builtins(self)
        if d.get("tt_s") is None:
            d.pop("tt_s", None)
        return d


def pid_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> Pid:
    """Build a :class:`Pid` from plain settings (a TOML table, a ``Pid.to_dict()``).

    Parameters
    ----------
    data
        Keys as the keyword arguments of :class:`Pid`.
    source
        Where the data came from, for error messages.

    Raises
    ------
    ConfigError
        Unknown key or a value of the wrong type or range, naming ``source`` and the key.
    """
    return PidSettings.from_dict(data, source=source).build()


def pid_from_tuning(tuning: PidTuning, **settings: Any) -> Pid:
    """A :class:`Pid` with the gains and action of ``tuning`` plus any other ``settings``.

    Examples
    --------
    >>> t = simc_pi(Fopdt(gain=0.4, tau_s=600.0, dead_time_s=60.0))
    >>> pid = pid_from_tuning(t, setpoint=37.0, output_max=100.0)
    >>> round(pid.kp, 3), pid.ti_s
    (12.5, 480.0)
    """
    return Pid(tuning.kp, tuning.ti_s, tuning.td_s, action=tuning.action, **settings)


def tune(
    source: Fopdt | RelayResult,
    rule: Rule = "simc",
    *,
    gain: float | None = None,
    tau_c_s: float | None = None,
    lambda_s: float | None = None,
) -> PidTuning:
    """Tuning from a process model or a relay experiment.

    Parameters
    ----------
    source
        A FOPDT model, or a relay result (turned into a FOPDT with
        :meth:`RelayResult.fopdt` for the model-based rules).
    rule
        ``"simc"`` (τc = θ, tight), ``"simc_smooth"`` (τc = 3θ), ``"amigo_pi"``,
        ``"imc_pid"`` (λ = ``lambda_s``, default max(θ, τ/4)), ``"ziegler_nichols_pi"`` or
        ``"ziegler_nichols_pid"`` (relay results only: uses Ku and Pu).
    gain
        Known process gain for the relay → FOPDT step (needed when the relay cycle was
        symmetric).
    tau_c_s
        SIMC closed-loop time constant (overrides the rule's default).
    lambda_s
        IMC filter time constant.

    Raises
    ------
    ConfigError
        Unknown rule, or a Ziegler–Nichols rule asked of a model.
    NumericalError
        The relay cycle does not identify a FOPDT.
    """
    if rule.startswith("ziegler_nichols"):
        if not isinstance(source, RelayResult):
            raise ConfigError(f"rule {rule!r} needs a relay result (Ku, Pu), not a model")
        return ziegler_nichols(source.ku, source.pu_s, rule == "ziegler_nichols_pid", source.action)
    model = source.fopdt(gain) if isinstance(source, RelayResult) else source
    if rule == "simc":
        return simc_pi(model, tau_c_s)
    if rule == "simc_smooth":
        return simc_pi(model, tau_c_s if tau_c_s is not None else 3.0 * model.dead_time_s)
    if rule == "amigo_pi":
        return amigo_pi(model)
    if rule == "imc_pid":
        lam = lambda_s if lambda_s is not None else max(model.dead_time_s, model.tau_s / 4.0)
        return imc_pid(model, lam)
    raise ConfigError(f"unknown tuning rule {rule!r}")


def parallel_to_isa(kp: float, ki: float, kd: float) -> tuple[float, float, float]:
    """Parallel gains (Kp, Ki in 1/s, Kd in s) to ISA (K, Ti_s, Td_s).

    K = Kp, Ti = Kp/Ki (∞ when Ki = 0), Td = Kd/Kp (Åström & Hägglund 2006, reference §1).
    """
    if kp <= 0.0:
        raise ConfigError(f"parallel Kp must be > 0 to convert to ISA form, got {kp}")
    ti = math.inf if ki == 0.0 else kp / ki
    return kp, ti, kd / kp


def series_to_isa(k: float, ti_s: float, td_s: float) -> tuple[float, float, float]:
    """Series (interacting) K′, Ti′, Td′ to ISA: K = K′(1 + Td′/Ti′), Ti = Ti′ + Td′,
    Td = Ti′Td′/(Ti′ + Td′) (reference §1)."""
    if ti_s <= 0.0 or math.isinf(ti_s):
        return k, math.inf, td_s
    return k * (1.0 + td_s / ti_s), ti_s + td_s, ti_s * td_s / (ti_s + td_s)


def proportional_band_to_gain(xp_pct: float) -> float:
    """DCU-style proportional band XP (%) to gain K = 100/XP (PV and output in % of span)."""
    if xp_pct <= 0.0:
        raise ConfigError(f"proportional band must be > 0 %, got {xp_pct}")
    return 100.0 / xp_pct


class Autotuner:
    """Relay autotune of a loop in operation, applied to its :class:`Pid` when done.

    While running, the relay drives the actuator through the controller's manual mode (so the
    controller's integral tracks and nothing jumps), the relay inherits the controller's
    limits, setpoint and action. When the experiment is done the tuning rule's gains are set on
    the controller and its previous mode is restored bumplessly from the relay bias. If the
    experiment aborts or the cycle does not identify a model, the gains stay as they were and
    :attr:`error` says why.

    Parameters
    ----------
    pid
        The controller of the loop (its setpoint is the relay's).
    amplitude
        Relay amplitude in output units (reduced to fit the limits).
    bias
        Relay bias; defaults to the controller's present output.
    hysteresis
        Noise band in measurement units.
    cycles
        Cycles measured after the discarded first one.
    rule
        Tuning rule, see :func:`tune`.
    gain
        Known process gain (needed when the relay runs at the equilibrium output).
    pv_min, pv_max, max_time_s
        Abort limits.

    Examples
    --------
    >>> pid = Pid(1.0, ti_s=100.0, setpoint=37.0)
    >>> at = Autotuner(pid, amplitude=20.0, bias=50.0)
    >>> at.update(36.0, dt_s=1.0)
    70.0
    >>> pid.mode, at.state
    ('manual', 'running')
    """

    def __init__(
        self,
        pid: Pid,
        *,
        amplitude: float,
        bias: float | None = None,
        hysteresis: float = 0.0,
        cycles: int = 3,
        rule: Rule = "simc",
        gain: float | None = None,
        pv_min: float = -math.inf,
        pv_max: float = math.inf,
        max_time_s: float = 7200.0,
    ) -> None:
        self.pid = pid
        self.rule: Rule = rule
        self.gain = gain
        self.relay = RelayAutotune(
            setpoint=pid.setpoint,
            bias=pid.output if bias is None else bias,
            amplitude=amplitude,
            hysteresis=hysteresis,
            output_min=pid.output_min,
            output_max=pid.output_max,
            action=pid.action,
            cycles=cycles,
            pv_min=pv_min,
            pv_max=pv_max,
            max_time_s=max_time_s,
        )
        self.tuning: PidTuning | None = None
        self.error: str | None = None
        self._previous_mode = pid.mode
        self._finished = False
        pid.mode = "manual"

    @property
    def state(self) -> str:
        """``"running"``, ``"applied"`` or ``"failed"``."""
        if not self._finished:
            return "running"
        return "applied" if self.tuning is not None else "failed"

    def update(self, measurement: float, dt_s: float) -> float:
        """Step the experiment (and the controller, in manual); returns the actuator output."""
        if self._finished:
            return self.pid.update(measurement, dt_s)
        u = self.relay.update(measurement, dt_s)
        self.pid.manual_output = u
        out = self.pid.update(measurement, dt_s)
        if not self.relay.is_running:
            self._finish()
        return out

    def _finish(self) -> None:
        self._finished = True
        try:
            t = tune(self.relay.result(), self.rule, gain=self.gain)
        except EdgectlError as exc:
            self.error = str(exc)
        else:
            if t.action != self.pid.action:
                self.error = f"plant acts {t.action}, controller is set {self.pid.action}"
            else:
                self.pid.kp = t.kp
                self.pid.ti_s = t.ti_s
                self.pid.td_s = t.td_s
                self.tuning = t
        self.pid.mode = self._previous_mode
