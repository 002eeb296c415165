"""Type stubs of the compiled module ``edgectl._core`` (checked by mypy.stubtest)."""

from typing import Any, Self, final

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike, NDArray

_F64 = npt.NDArray[np.float64]

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "BatchPrediction",
    "BiasKalman",
    "CorrectedEstimate",
    "CvResult",
    "DoCascade",
    "ExponentialFeed",
    "FoamPulser",
    "Fopdt",
    "LoopBank",
    "OverTempLadder",
    "Pid",
    "PidComponents",
    "PidTuning",
    "Pipeline",
    "Plant",
    "PlsModel",
    "Prediction",
    "PulseOutput",
    "ReferenceOutcome",
    "RelayAutotune",
    "RelayResult",
    "SoftSensor",
    "SplitRange",
    "StatPulser",
    "VelocityPid",
    "__version__",
    "amigo_pi",
    "asls_baseline",
    "check_dt",
    "chi2_quantile",
    "cross_validate",
    "f_quantile",
    "imc_pid",
    "resample",
    "savgol_filter",
    "simc_integrating",
    "simc_pi",
    "snv",
    "ziegler_nichols",
]
__version__: str

def check_dt(dt_s: float) -> None:
    """Raise InvalidInputError unless ``dt_s`` is finite and > 0."""

# ---- control (edgectl.control re-exports these; documented there and in the Rust docs) ------

@final
class PidComponents:
    """What one update computed: P, I, D, FF, unsaturated v, output u, saturated flag, mode."""

    @property
    def p(self) -> float: ...
    @property
    def i(self) -> float: ...
    @property
    def d(self) -> float: ...
    @property
    def ff(self) -> float: ...
    @property
    def v(self) -> float: ...
    @property
    def u(self) -> float: ...
    @property
    def saturated(self) -> bool: ...
    @property
    def mode(self) -> str: ...

@final
class Pid:
    """Industrial PID controller, ISA form (K, Ti, Td) with setpoint weights b and c."""

    def __new__(
        cls,
        kp: float,
        ti_s: float = ...,
        td_s: float = 0.0,
        *,
        b: float = 1.0,
        c: float = 0.0,
        n: float = 10.0,
        tt_s: float | None = None,
        output_min: float = 0.0,
        output_max: float = 100.0,
        rate_limit_per_s: float = ...,
        deadband: float = 0.0,
        deadband_outputs_off: bool = False,
        output_off: float = 0.0,
        action: str = "heating",
        anti_windup: str = "back_calculation",
        bias: float = 0.0,
        setpoint: float = 0.0,
    ) -> Self: ...
    def update(
        self,
        measurement: float,
        dt_s: float,
        feedforward: float = 0.0,
        achieved: float | None = None,
    ) -> float: ...
    def components(self) -> PidComponents: ...
    def reset(self) -> None: ...
    def track_to(self, output: float) -> None: ...
    def set_limits(self, output_min: float, output_max: float) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    kp: float
    ti_s: float
    td_s: float
    b: float
    c: float
    n: float
    tt_s: float | None
    @property
    def tracking_time_s(self) -> float | None:
        """Tracking time of the last update in s: ``tt_s``, else √(Ti·max(Td, dt_s)); None
        before the first update of a PI without ``tt_s`` (its default depends on ``dt_s``)."""
    output_min: float
    output_max: float
    rate_limit_per_s: float
    deadband: float
    deadband_outputs_off: bool
    output_off: float
    action: str
    anti_windup: str
    bias: float
    setpoint: float
    mode: str
    manual_output: float
    track_output: float
    integral: float
    @property
    def output(self) -> float: ...

@final
class VelocityPid:
    """Velocity (incremental) PID for pulse/PWM actuators."""

    def __new__(
        cls,
        kp: float,
        ti_s: float = ...,
        td_s: float = 0.0,
        *,
        b: float = 1.0,
        c: float = 0.0,
        n: float = 10.0,
        output_min: float = 0.0,
        output_max: float = 100.0,
        rate_limit_per_s: float = ...,
        action: str = "heating",
        initial_output: float = 0.0,
        setpoint: float = 0.0,
    ) -> Self: ...
    def update(self, measurement: float, dt_s: float, feedforward: float = 0.0) -> float: ...
    def components(self) -> PidComponents: ...
    def set_limits(self, output_min: float, output_max: float) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    kp: float
    ti_s: float
    td_s: float
    n: float
    b: float
    rate_limit_per_s: float
    @property
    def output_min(self) -> float: ...
    @property
    def output_max(self) -> float: ...
    @property
    def action(self) -> str: ...
    setpoint: float
    mode: str
    manual_output: float
    @property
    def output(self) -> float: ...

@final
class SplitRange:
    """One controller output to two actuators (low side, high side), never both on."""

    def __new__(
        cls,
        *,
        input_min: float = ...,
        input_max: float = 100.0,
        split: float = 0.0,
        deadband: float = 0.0,
        low_max: float = 100.0,
        high_max: float = 100.0,
        changeover_s: float = 0.0,
    ) -> Self: ...
    def update(self, controller_output: float, dt_s: float) -> tuple[float, float]: ...
    def map(self, controller_output: float) -> tuple[float, float]: ...
    @property
    def outputs(self) -> tuple[float, float]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class DoCascade:
    """Sequential DO cascade (stirrer → air → O2 ...) driven by one master PID."""

    def __new__(
        cls,
        master: Pid,
        stages: list[tuple[float, float]],
        hysteresis_s: float = 60.0,
        gains: list[tuple[float, float] | None] | None = None,
        degraded_gains: list[tuple[float, float] | None] | None = None,
    ) -> Self: ...
    def update(self, measurement: float, dt_s: float) -> NDArray[np.float64]: ...
    def set_stage_enabled(self, k: int, enabled: bool) -> None:
        """Enable or disable stage ``k`` (its actuator failed or is back)."""
    @property
    def stage_enabled(self) -> list[bool]: ...
    def set_stage_gains(self, k: int, gains: tuple[float, float] | None) -> None:
        """Stage ``k``'s own master gains ``(kp, ti_s)``, or None for the base gains."""
    @property
    def stage_gains(self) -> list[tuple[float, float] | None]: ...
    def set_stage_use(self, k: int, usage: str) -> None:
        """``"enabled"``, ``"failed"`` (parked like any stage) or ``"out_of_use"`` (at min)."""
    @property
    def stage_use(self) -> list[str]: ...
    @property
    def stage_degraded(self) -> list[bool]: ...
    def set_stage_degraded_gains(self, k: int, gains: tuple[float, float] | None) -> None:
        """Stage ``k``'s gains while a stage below it has failed (None: its own gains)."""
    @property
    def stage_degraded_gains(self) -> list[tuple[float, float] | None]: ...
    @property
    def base_gains(self) -> tuple[float, float] | None: ...
    def set_base_gains(self, gains: tuple[float, float]) -> None:
        """Set the gains of stages without their own (e.g. restored after a restart)."""
    def store_live_gains(self) -> None:
        """Copy the master's live gains into the gain set in use (before reading them)."""
    @property
    def master(self) -> Pid: ...
    active: int
    @property
    def handovers(self) -> int: ...
    hysteresis_s: float
    @property
    def stages(self) -> list[tuple[float, float]]: ...
    @property
    def outputs(self) -> NDArray[np.float64]: ...

@final
class PulseOutput:
    """Time-proportioning pulse output (heater SSR, dosing pump) with dose counter."""

    def __new__(
        cls,
        window_s: float,
        *,
        quantum_s: float = 0.0,
        min_on_s: float = 0.0,
        min_off_s: float = 0.0,
        ml_per_min: float | None = None,
        ml_per_pulse: float | None = None,
    ) -> Self: ...
    def update(self, duty: float, dt_s: float) -> bool: ...
    @property
    def is_on(self) -> bool: ...
    @property
    def on_time_s(self) -> float: ...
    @property
    def dose_ml(self) -> float: ...
    @property
    def pulses(self) -> int: ...
    def reset_dose(self) -> None: ...
    def prime(self) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class FoamPulser:
    """Foam probe → antifoam pump pulses with anti-splash delay and dose counter."""

    def __new__(
        cls,
        *,
        pulse_s: float = 2.0,
        pause_s: float = 30.0,
        delay_s: float = 5.0,
        ml_per_min: float = 1.0,
    ) -> Self: ...
    def update(self, foam: bool, dt_s: float) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...
    @property
    def state(self) -> str: ...
    @property
    def dose_ml(self) -> float: ...
    @property
    def pulses(self) -> int: ...
    def reset_dose(self) -> None: ...

@final
class OverTempLadder:
    """Heater over-temperature interlock: reduce → disable → trip (latched)."""

    def __new__(
        cls,
        *,
        reduce_c: float = 63.0,
        disable_c: float = 65.0,
        trip_c: float = 66.0,
        hysteresis_c: float = 1.0,
        reduce_factor: float = 0.9,
    ) -> Self: ...
    def update(self, temp_c: float, duty: float) -> float: ...
    def reset(self, temp_c: float) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    @property
    def level(self) -> str: ...

@final
class ExponentialFeed:
    """Exponential feed F(t) = (μ/Yxs + m)·X0·V0/Sf·e^(μt), in mL/min."""

    def __new__(
        cls,
        *,
        mu_per_h: float,
        yield_xs: float,
        x0_g_l: float,
        v0_l: float,
        feed_conc_g_l: float,
        maintenance_per_h: float = 0.0,
        max_rate_ml_min: float = ...,
    ) -> Self: ...
    def update(self, dt_s: float) -> float: ...
    def rate_at(self, t_h: float) -> float: ...
    @property
    def elapsed_h(self) -> float: ...
    def reset(self) -> None: ...

@final
class StatPulser:
    """DO-stat / pH-stat feed pulser: a pulse when the signal rises above a threshold."""

    def __new__(
        cls, *, threshold: float, rearm: float, pulse_s: float, ml_per_min: float
    ) -> Self: ...
    def update(self, signal: float, dt_s: float) -> bool: ...
    @property
    def dose_ml(self) -> float: ...
    @property
    def pulses(self) -> int: ...
    @property
    def is_armed(self) -> bool: ...
    def reset_dose(self) -> None: ...

@final
class Fopdt:
    """First-order-plus-dead-time model gain·e^(−θs)/(τs + 1)."""

    def __new__(cls, gain: float, tau_s: float, dead_time_s: float) -> Self: ...
    @property
    def gain(self) -> float: ...
    @property
    def tau_s(self) -> float: ...
    @property
    def dead_time_s(self) -> float: ...

@final
class PidTuning:
    """ISA settings produced by a tuning rule."""

    @property
    def kp(self) -> float: ...
    @property
    def ti_s(self) -> float: ...
    @property
    def td_s(self) -> float: ...
    @property
    def action(self) -> str: ...
    @property
    def rule(self) -> str: ...

@final
class RelayResult:
    """What a relay experiment measured (means over the measured cycles)."""

    @property
    def ku(self) -> float: ...
    @property
    def pu_s(self) -> float: ...
    @property
    def amplitude_pv(self) -> float: ...
    @property
    def amplitude_out(self) -> float: ...
    @property
    def hysteresis(self) -> float: ...
    @property
    def t_on_s(self) -> float: ...
    @property
    def t_off_s(self) -> float: ...
    @property
    def y_max(self) -> float: ...
    @property
    def y_min(self) -> float: ...
    @property
    def u_high(self) -> float: ...
    @property
    def u_low(self) -> float: ...
    @property
    def setpoint(self) -> float: ...
    @property
    def action(self) -> str: ...
    @property
    def cycles(self) -> int: ...
    def fopdt(self, gain: float | None = None) -> Fopdt: ...

@final
class RelayAutotune:
    """Relay-feedback autotune experiment, stepped like a controller."""

    def __new__(
        cls,
        *,
        setpoint: float,
        bias: float,
        amplitude: float,
        hysteresis: float = 0.0,
        output_min: float = 0.0,
        output_max: float = 100.0,
        action: str = "heating",
        cycles: int = 3,
        pv_min: float = ...,
        pv_max: float = ...,
        max_time_s: float = 7200.0,
    ) -> Self: ...
    def update(self, measurement: float, dt_s: float) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def abort_reason(self) -> str | None: ...
    @property
    def is_running(self) -> bool: ...
    @property
    def amplitude(self) -> float: ...
    @property
    def elapsed_s(self) -> float: ...
    @property
    def output(self) -> float: ...
    def result(self) -> RelayResult: ...

@final
class LoopBank:
    """Named control blocks stepped in one call per scan."""

    def __new__(cls) -> Self: ...
    def add_pid(self, name: str, pid: Pid) -> Self: ...
    def add_split_range(self, name: str, pid: Pid, split: SplitRange) -> None: ...
    def add_cascade(
        self, name: str, cascade: DoCascade, stage_names: list[str] | None = None
    ) -> None: ...
    def step(self, measurements: ArrayLike, dt_s: float) -> NDArray[np.float64]: ...
    def step_into(self, measurements: ArrayLike, dt_s: float, out: NDArray[np.float64]) -> None: ...
    def __getitem__(self, key: str | int, /) -> Pid: ...
    def block(self, key: str | int) -> Pid | SplitRange | DoCascade: ...
    def __contains__(self, name: str, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def output_names(self) -> list[str]: ...
    @property
    def n_outputs(self) -> int: ...

def simc_pi(model: Fopdt, tau_c_s: float | None = None, delay_improved: bool = False) -> PidTuning:
    """SIMC PI: Kc = τ/(|k|(τc + θ)), Ti = min(τ, 4(τc + θ)) (Skogestad 2003)."""

def simc_integrating(
    slope_gain_per_s: float, dead_time_s: float, tau_c_s: float | None = None
) -> PidTuning:
    """SIMC PI for an integrating plant: Kc = 1/(|k′|(τc + θ)), Ti = 4(τc + θ)."""

def amigo_pi(model: Fopdt) -> PidTuning:
    """AMIGO PI (Åström & Hägglund 2004)."""

def imc_pid(model: Fopdt, lambda_s: float) -> PidTuning:
    """IMC-PID (Rivera, Morari & Skogestad 1986)."""

def ziegler_nichols(
    ku: float, pu_s: float, with_derivative: bool = False, action: str = "heating"
) -> PidTuning:
    """Ziegler–Nichols from the ultimate gain and period."""

# --- spectra (issue 3): spectral soft sensor -------------------------------------------------

MODEL_FORMAT: str
MODEL_FORMAT_VERSION: int

def savgol_filter(
    x: _F64, window: int, order: int, deriv: int = 0, delta: float = 1.0, mode: str = "interp"
) -> _F64:
    """Savitzky–Golay filter of one spectrum or each row (scipy ``savgol_filter`` semantics)."""

def snv(x: _F64, ddof: int = 1) -> _F64:
    """Standard normal variate of one spectrum or each row."""

def asls_baseline(y: _F64, lam: float = 1e6, p: float = 0.01, max_iter: int = 50) -> _F64:
    """AsLS baseline of one spectrum or each row."""

def resample(wavenumber_cm1: _F64, spectrum: _F64, target_cm1: _F64) -> _F64:
    """Linear interpolation of a spectrum onto ``target_cm1``."""

def cross_validate(
    wavenumber_cm1: _F64,
    steps_json: str,
    x: _F64,
    y: _F64,
    max_components: int,
    scheme: str = "loo",
    algorithm: str = "nipals",
    groups: list[int] | None = None,
) -> CvResult:
    """Cross-validate pipeline + PLS for 1…max_components latent variables."""

def f_quantile(alpha: float, d1: float, d2: float) -> float:
    """Quantile of the F distribution."""

def chi2_quantile(alpha: float, dof: float) -> float:
    """Quantile of the chi-square distribution (real dof)."""

@final
class Pipeline:
    def __new__(cls, wavenumber_cm1: _F64, steps_json: str) -> Pipeline: ...
    def fit(self, x: _F64) -> tuple[Pipeline, _F64]: ...
    def transform(self, x: _F64) -> _F64: ...
    @property
    def steps_json(self) -> str: ...
    @property
    def wavenumber_cm1(self) -> _F64: ...
    @property
    def output_wavenumber_cm1(self) -> _F64: ...
    @property
    def is_fitted(self) -> bool: ...

@final
class PlsModel:
    @staticmethod
    def fit(x: _F64, y: _F64, n_components: int, algorithm: str = "nipals") -> PlsModel: ...
    def predict(self, x: _F64, n_components: int | None = None) -> _F64: ...
    def transform(self, x: _F64) -> _F64: ...
    @property
    def n_components(self) -> int: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def coef(self) -> _F64: ...
    @property
    def intercept(self) -> _F64: ...
    @property
    def x_mean(self) -> _F64: ...
    @property
    def x_weights(self) -> _F64: ...
    @property
    def x_loadings(self) -> _F64: ...
    @property
    def x_rotations(self) -> _F64: ...
    @property
    def y_loadings(self) -> _F64: ...
    @property
    def score_variance(self) -> _F64: ...

@final
class CvResult:
    @property
    def rmsecv(self) -> _F64: ...
    @property
    def rmsecv_combined(self) -> _F64: ...
    @property
    def scheme(self) -> str: ...
    @property
    def max_components(self) -> int: ...
    def predictions(self, n_components: int) -> _F64: ...
    def choose_components(self, tolerance: float = 0.02) -> int: ...

@final
class Prediction:
    @property
    def value(self) -> float: ...
    @property
    def values(self) -> list[float]: ...
    @property
    def t2(self) -> float: ...
    @property
    def q(self) -> float: ...
    @property
    def t2_limit(self) -> float: ...
    @property
    def q_limit(self) -> float: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def is_in_model(self) -> bool: ...
    @property
    def is_valid(self) -> bool: ...

@final
class BatchPrediction:
    @property
    def values(self) -> _F64: ...
    @property
    def value(self) -> _F64: ...
    @property
    def t2(self) -> _F64: ...
    @property
    def q(self) -> _F64: ...
    @property
    def is_in_model(self) -> npt.NDArray[np.bool_]: ...
    @property
    def is_valid(self) -> npt.NDArray[np.bool_]: ...
    @property
    def status(self) -> list[str]: ...
    def __len__(self) -> int: ...

@final
class SoftSensor:
    @staticmethod
    def fit(
        wavenumber_cm1: _F64,
        steps_json: str,
        x: _F64,
        y: _F64,
        n_components: int,
        *,
        algorithm: str = "nipals",
        target_names: list[str],
        units: list[str],
        confidence: float = 0.95,
        created_at: str = "",
        description: str = "",
        cv: CvResult | None = None,
    ) -> SoftSensor: ...
    @staticmethod
    def from_json(text: str, source: str = "<string>") -> SoftSensor: ...
    def to_json(self) -> str: ...
    def predict(self, spectrum: _F64) -> Prediction: ...
    def predict_value(self, spectrum: _F64) -> tuple[float, bool]: ...
    def predict_batch(self, spectra: _F64) -> BatchPrediction: ...
    def limits_at(self, confidence: float) -> tuple[float, float, str]: ...
    @property
    def wavenumber_cm1(self) -> _F64: ...
    @property
    def pipeline(self) -> Pipeline: ...
    @property
    def pls(self) -> PlsModel: ...
    @property
    def n_components(self) -> int: ...
    @property
    def target_names(self) -> list[str]: ...
    @property
    def units(self) -> list[str]: ...
    @property
    def t2_limit(self) -> float: ...
    @property
    def q_limit(self) -> float: ...
    @property
    def q_limit_method(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def rmsec(self) -> list[float]: ...
    @property
    def r2(self) -> list[float]: ...
    @property
    def created_at(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def steps_json(self) -> str: ...

@final
class CorrectedEstimate:
    @property
    def time_h(self) -> float: ...
    @property
    def value(self) -> float: ...
    @property
    def bias(self) -> float: ...
    @property
    def std(self) -> float: ...

@final
class ReferenceOutcome:
    @property
    def accepted(self) -> bool: ...
    @property
    def innovation(self) -> float: ...
    @property
    def normalized(self) -> float: ...
    @property
    def estimate_before(self) -> float: ...

@final
class BiasKalman:
    def __new__(
        cls,
        *,
        q_concentration: float = 4.0,
        q_bias: float = 0.05,
        r_prediction: float = 1.69,
        r_reference: float = 0.25,
        p0_bias: float = 4.0,
        gate_sigma: float = 6.0,
        max_consecutive_rejections: int = 2,
        max_delay_h: float = 24.0,
    ) -> BiasKalman: ...
    def update_prediction(self, time_h: float, value: float) -> CorrectedEstimate: ...
    def update_reference(self, sampled_h: float, value: float) -> ReferenceOutcome: ...
    @property
    def estimate(self) -> CorrectedEstimate | None: ...
    def estimate_at(self, time_h: float) -> CorrectedEstimate | None: ...
    def state_json(self) -> str:
        """The filter's state as JSON (estimate, covariance, history for late references)."""
    def restore_state_json(self, json: str) -> None:
        """Restore a state written by :meth:`state_json` (this filter's tuning is kept)."""

# --- sim (issue 4): the simulated plant -------------------------------------------------------

@final
class Plant:
    """The simulated fed-batch bioreactor (wrapped by ``edgectl.sim.Plant``)."""

    SIGNALS: list[str]
    ACTUATORS: list[str]
    FAULT_KINDS: list[str]
    def __new__(cls, config_json: str) -> Plant: ...
    @staticmethod
    def from_snapshot(data: bytes) -> Plant: ...
    @staticmethod
    def scenario_json(name: str) -> str: ...
    def config_json(self) -> str: ...
    @property
    def time_s(self) -> float: ...
    def advance(self, seconds: float, dt_s: float = 1.0) -> None: ...
    def step(self, dt_s: float) -> None: ...
    def read(self, signal: str) -> float: ...
    def write(self, actuator: str, value: float) -> None: ...
    def spectrum(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
    @property
    def spectrum_time_s(self) -> float: ...
    def state(self) -> list[tuple[str, float]]: ...
    def readings(self) -> list[tuple[str, float]]: ...
    def balances(self) -> list[tuple[str, float]]: ...
    def take_sample(self, volume_ml: float) -> list[tuple[str, float]]: ...
    def inject_fault(
        self,
        kind: str,
        target: str = "",
        value: float | None = None,
        start_s: float | None = None,
        duration_s: float | None = None,
    ) -> int: ...
    def clear_fault(self, fault_id: int) -> bool: ...
    def clear_faults(self) -> None: ...
    def faults(self) -> list[tuple[int, str, str, float, float, float]]: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...
