"""Type stubs of the compiled module ``edgectl._core`` (checked by mypy.stubtest)."""

from typing import final

import numpy as np
import numpy.typing as npt

_F64 = npt.NDArray[np.float64]

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "BatchPrediction",
    "BiasKalman",
    "CorrectedEstimate",
    "CvResult",
    "Pipeline",
    "PlsModel",
    "Prediction",
    "ReferenceOutcome",
    "SoftSensor",
    "__version__",
    "asls_baseline",
    "check_dt",
    "chi2_quantile",
    "cross_validate",
    "f_quantile",
    "resample",
    "savgol_filter",
    "snv",
]
__version__: str

def check_dt(dt_s: float) -> None:
    """Raise InvalidInputError unless ``dt_s`` is finite and > 0."""

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
