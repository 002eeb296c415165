"""Spectral soft sensor: preprocessing, PLS regression, diagnostics, model files, correction.

The math runs in the Rust core (``edgectl._core``); this module adds the pieces that belong in
Python: pipeline steps as typed values, reading CSV files, saving and loading model files, and
the calibration workflow used by ``edgectl calibrate``.

A pipeline is a list of steps applied in order to each spectrum (reference
``shared/reference/softsensor.md`` §0)::

    steps = [Region(windows_cm1=((950.0, 1550.0),)),
             SavitzkyGolay(window=15, order=2, deriv=1),
             Snv()]
    sensor = SoftSensor.fit(axis_cm1, spectra, glucose_g_l, steps, n_components=4,
                            target_names=("glucose",), units=("g/L",))
    p = sensor.predict(spectrum)        # p.value, p.t2, p.q, p.is_in_model, p.status
    sensor.save("glucose.json")

Arrays are float64 numpy arrays: one spectrum is 1-D, a batch is 2-D with one spectrum per row.
A wrong dtype raises ``TypeError``; a wrong shape or axis raises
:class:`~edgectl.errors.SpectrumShapeError`; non-finite values raise
:class:`~edgectl.errors.InvalidInputError`. A flat spectrum (a detector dropout) is not an
error for the soft sensor: its prediction is ``status == "invalid"`` with a NaN value, so it can
never be used for control by accident.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from edgectl._core import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    BatchPrediction,
    BiasKalman,
    CorrectedEstimate,
    CvResult,
    PlsModel,
    Prediction,
    ReferenceOutcome,
    asls_baseline,
    chi2_quantile,
    f_quantile,
    resample,
    savgol_filter,
    snv,
)
from edgectl._core import Pipeline as _CorePipeline
from edgectl._core import SoftSensor as _CoreSoftSensor
from edgectl._core import cross_validate as _cross_validate
from edgectl.errors import InvalidInputError, ModelFileError, SpectrumShapeError

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "AsLs",
    "Autoscale",
    "BatchPrediction",
    "BiasKalman",
    "Calibration",
    "CorrectedEstimate",
    "CvResult",
    "Despike",
    "LinearBaseline",
    "MeanCenter",
    "Msc",
    "Pipeline",
    "PlsModel",
    "Prediction",
    "ReferenceOutcome",
    "Region",
    "SavitzkyGolay",
    "Snv",
    "SoftSensor",
    "Step",
    "asls_baseline",
    "calibrate",
    "chi2_quantile",
    "cross_validate",
    "f_quantile",
    "read_references_csv",
    "read_spectra_csv",
    "resample",
    "savgol_filter",
    "snv",
]

FloatArray = npt.NDArray[np.float64]


class _Step(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    """Base of the pipeline steps (serialised with a ``kind`` tag, as in model files)."""


class Despike(_Step, tag="despike", frozen=True, kw_only=True):
    """Whitaker–Hayes cosmic-ray removal (modified z-score of first differences).

    Parameters
    ----------
    threshold : float
        z-score above which a point is a spike (tune per instrument; too low clips real bands).
    half_window : int
        Half width (points) of the neighbourhood whose non-spike mean replaces a spike.
    """

    threshold: float = 8.0
    half_window: int = 3


class Region(_Step, tag="region", frozen=True, kw_only=True):
    """Keep the points inside one or more wavenumber windows ``(lo_cm1, hi_cm1)``."""

    windows_cm1: tuple[tuple[float, float], ...]


class SavitzkyGolay(_Step, tag="savitzky_golay", frozen=True, kw_only=True):
    """Savitzky–Golay smoothing (``deriv=0``) or derivative, as ``scipy.signal.savgol_filter``.

    ``mode`` is scipy's edge handling: ``interp`` (polynomial fit to the edge window, scipy's
    default), ``nearest``, ``mirror`` or ``wrap``. ``delta`` is the sample spacing used for
    derivatives (1 = per point).
    """

    window: int
    order: int
    deriv: int = 0
    delta: float = 1.0
    mode: Literal["interp", "nearest", "mirror", "wrap"] = "interp"


class Snv(_Step, tag="snv", frozen=True, kw_only=True):
    """Standard normal variate: ``(x − mean) / sd`` with ``ddof`` 0 or 1."""

    ddof: int = 1


class Msc(_Step, tag="msc", frozen=True, kw_only=True):
    """Multiplicative scatter correction against the calibration mean spectrum."""


class AsLs(_Step, tag="asls", frozen=True, kw_only=True):
    """Asymmetric least squares baseline subtraction (Eilers & Boelens 2005)."""

    lam: float = 1e6
    p: float = 0.01
    max_iter: int = 50


class LinearBaseline(_Step, tag="linear", frozen=True, kw_only=True):
    """Subtract the straight line through the first and last point of each region window."""


class MeanCenter(_Step, tag="mean_center", frozen=True, kw_only=True):
    """Subtract the calibration mean of each variable."""


class Autoscale(_Step, tag="autoscale", frozen=True, kw_only=True):
    """Centre and divide each variable by its calibration standard deviation (ddof 1)."""


Step = Despike | Region | SavitzkyGolay | Snv | Msc | AsLs | LinearBaseline | MeanCenter | Autoscale

_ENCODER = msgspec.json.Encoder()


def _steps_json(steps: Sequence[Step]) -> str:
    for i, s in enumerate(steps):
        if not isinstance(s, _Step):
            raise InvalidInputError(f"pipeline step {i} is {s!r}, not a step (Region, Snv, ...)")
    return _ENCODER.encode(list(steps)).decode()


def _axis(wavenumber_cm1: Any) -> FloatArray:
    return np.ascontiguousarray(wavenumber_cm1, dtype=np.float64)


class Pipeline:
    """Preprocessing steps on a fixed wavenumber axis.

    Parameters
    ----------
    wavenumber_cm1 : array of float
        Input axis, strictly monotone, cm⁻¹.
    steps : sequence of Step
        Applied in order.
    """

    __slots__ = ("_core",)

    def __init__(self, wavenumber_cm1: Any, steps: Sequence[Step]) -> None:
        self._core = _CorePipeline(_axis(wavenumber_cm1), _steps_json(steps))

    @classmethod
    def _wrap(cls, core: _CorePipeline) -> Pipeline:
        obj = cls.__new__(cls)
        obj._core = core
        return obj

    def fit(self, spectra: FloatArray) -> tuple[Pipeline, FloatArray]:
        """Fit MSC/centring/autoscaling on calibration spectra; return the fitted pipeline and
        the preprocessed calibration matrix."""
        core, x = self._core.fit(spectra)
        return Pipeline._wrap(core), x

    def transform(self, spectra: FloatArray) -> FloatArray:
        """Preprocess one spectrum (1-D) or a batch (2-D)."""
        return self._core.transform(spectra)

    @property
    def wavenumber_cm1(self) -> FloatArray:
        """Input axis, cm⁻¹."""
        return self._core.wavenumber_cm1

    @property
    def output_wavenumber_cm1(self) -> FloatArray:
        """Axis of the output variables, cm⁻¹."""
        return self._core.output_wavenumber_cm1

    @property
    def is_fitted(self) -> bool:
        """True when every data-dependent step has its state."""
        return self._core.is_fitted

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The steps with their fitted state, as plain dicts (the model-file form)."""
        return list(json.loads(self._core.steps_json))

    def __repr__(self) -> str:
        return repr(self._core)


def cross_validate(
    wavenumber_cm1: Any,
    spectra: FloatArray,
    references: FloatArray,
    steps: Sequence[Step],
    max_components: int,
    *,
    cv: str = "loo",
    algorithm: Literal["nipals", "simpls"] = "nipals",
    groups: Sequence[int] | None = None,
) -> CvResult:
    """Cross-validate pipeline + PLS for 1…``max_components`` latent variables.

    The pipeline and the model are refitted inside each fold. ``cv`` is ``"loo"``,
    ``"blocks:K"`` (contiguous, equal to scikit-learn ``KFold(K)``), ``"kfold:K"`` (alias) or
    ``"venetian:K"`` (interleaved); ``groups`` (one label per spectrum) gives
    leave-one-group-out instead.
    """
    return _cross_validate(
        _axis(wavenumber_cm1),
        _steps_json(steps),
        spectra,
        references,
        max_components,
        cv,
        algorithm,
        None if groups is None else [int(g) for g in groups],
    )


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


class SoftSensor:
    """A calibrated soft sensor: model axis, fitted pipeline, PLS model, T²/Q limits, units.

    Create one with :meth:`fit` or :meth:`load`. :meth:`predict` returns a
    :class:`Prediction` with ``value``, ``t2``, ``q``, ``is_in_model`` and ``status``.
    """

    __slots__ = ("_core", "path")

    def __init__(self, core: _CoreSoftSensor, path: Path | None = None) -> None:
        self._core = core
        self.path = path

    @classmethod
    def fit(
        cls,
        wavenumber_cm1: Any,
        spectra: FloatArray,
        references: FloatArray,
        steps: Sequence[Step],
        n_components: int,
        *,
        algorithm: Literal["nipals", "simpls"] = "nipals",
        target_names: Sequence[str] = ("value",),
        units: Sequence[str] = ("",),
        confidence: float = 0.95,
        description: str = "",
        cv: CvResult | None = None,
    ) -> SoftSensor:
        """Fit pipeline and PLS model on raw spectra (rows on ``wavenumber_cm1``).

        ``references`` is 1-D (one response) or 2-D (one column per response, named by
        ``target_names`` with ``units``). ``confidence`` (0.95 or 0.99) sets the limits of the
        in-model flag; ``cv`` attaches a cross-validation curve to the model file.
        """
        core = _CoreSoftSensor.fit(
            _axis(wavenumber_cm1),
            _steps_json(steps),
            spectra,
            references,
            n_components,
            algorithm=algorithm,
            target_names=list(target_names),
            units=list(units),
            confidence=confidence,
            created_at=_now_iso(),
            description=description,
            cv=cv,
        )
        return cls(core)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> SoftSensor:
        """Decode a model document (see the README section "Spectral soft sensor")."""
        return cls(_CoreSoftSensor.from_json(text, source))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, wavenumber_cm1: Any = None) -> SoftSensor:
        """Load a model file.

        Parameters
        ----------
        path : path-like
            The JSON model file.
        wavenumber_cm1 : array of float, optional
            The instrument axis; when given, loading refuses a model whose axis differs.

        Raises
        ------
        ModelFileError
            Unreadable file, wrong format or version, inconsistent arrays (names the file).
        SpectrumShapeError
            The model axis differs from ``wavenumber_cm1`` (names the file).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ModelFileError(f"{p}: model file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{p}: cannot read model file: {exc}") from exc
        sensor = cls(_CoreSoftSensor.from_json(text, str(p)), p)
        if wavenumber_cm1 is not None:
            sensor.check_axis(wavenumber_cm1, source=str(p))
        return sensor

    def check_axis(self, wavenumber_cm1: Any, *, source: str | None = None) -> None:
        """Raise :class:`SpectrumShapeError` unless ``wavenumber_cm1`` equals the model axis."""
        axis = _axis(wavenumber_cm1)
        model = self._core.wavenumber_cm1
        where = f"{source or self.path or 'model'}: "
        if axis.shape != model.shape:
            raise SpectrumShapeError(
                f"{where}axis has {axis.size} points, the model axis has {model.size} "
                f"({model[0]:g}–{model[-1]:g} cm⁻¹)"
            )
        if not np.allclose(axis, model, rtol=0.0, atol=1e-6):
            i = int(np.argmax(np.abs(axis - model)))
            raise SpectrumShapeError(
                f"{where}axis differs from the model axis at index {i} "
                f"({axis[i]:g} vs {model[i]:g} cm⁻¹)"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model file atomically (temporary file, then rename); returns the path."""
        p = Path(path)
        text = self._core.to_json()
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=p.name, suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.write("\n")
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.path = p
        return p

    def to_json(self) -> str:
        """The model document."""
        return self._core.to_json()

    def document(self) -> dict[str, Any]:
        """The model document as plain data (what a person reads in the file)."""
        return dict(json.loads(self._core.to_json()))

    def predict(self, spectrum: FloatArray, wavenumber_cm1: Any = None) -> Prediction:
        """Predict one raw spectrum (1-D float64).

        With ``wavenumber_cm1`` (the spectrum's own axis) the spectrum is first resampled onto
        the model axis by linear interpolation (the axis must cover the model axis).
        """
        if wavenumber_cm1 is not None:
            spectrum = resample(_axis(wavenumber_cm1), spectrum, self._core.wavenumber_cm1)
        return self._core.predict(spectrum)

    def predict_batch(self, spectra: FloatArray) -> BatchPrediction:
        """Predict each row of a 2-D batch (GIL released)."""
        return self._core.predict_batch(spectra)

    @property
    def predict_value(self) -> Any:
        """Fastest path: ``predict_value(spectrum) -> (value, is_in_model)``."""
        return self._core.predict_value

    @property
    def wavenumber_cm1(self) -> FloatArray:
        """Model axis, cm⁻¹."""
        return self._core.wavenumber_cm1

    @property
    def pipeline(self) -> Pipeline:
        """The fitted preprocessing pipeline."""
        return Pipeline._wrap(self._core.pipeline)

    @property
    def pls(self) -> PlsModel:
        """The PLS model."""
        return self._core.pls

    @property
    def n_components(self) -> int:
        """Latent variables."""
        return self._core.n_components

    @property
    def target_names(self) -> list[str]:
        """Response names."""
        return self._core.target_names

    @property
    def units(self) -> list[str]:
        """Response units."""
        return self._core.units

    @property
    def t2_limit(self) -> float:
        """Hotelling T² limit of the in-model flag."""
        return self._core.t2_limit

    @property
    def q_limit(self) -> float:
        """Q limit of the in-model flag."""
        return self._core.q_limit

    @property
    def q_limit_method(self) -> str:
        """``jackson_mudholkar`` or ``box`` (Box when JM's h0 ≤ 0)."""
        return self._core.q_limit_method

    @property
    def rmsec(self) -> list[float]:
        """Root mean square error of calibration per response."""
        return self._core.rmsec

    def limits_at(self, confidence: float) -> tuple[float, float, str]:
        """Stored (T² limit, Q limit, Q method) at 0.95 or 0.99."""
        return self._core.limits_at(confidence)

    def __repr__(self) -> str:
        return repr(self._core)


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`: the fitted sensor, its CV result and the chosen LV count."""

    sensor: SoftSensor
    cv: CvResult
    n_components: int
    rmsecv: float


def calibrate(
    wavenumber_cm1: Any,
    spectra: FloatArray,
    references: FloatArray,
    steps: Sequence[Step],
    *,
    max_components: int = 10,
    cv: str = "loo",
    algorithm: Literal["nipals", "simpls"] = "nipals",
    tolerance: float = 0.02,
    n_components: int | None = None,
    target_names: Sequence[str] = ("value",),
    units: Sequence[str] = ("",),
    confidence: float = 0.95,
    description: str = "",
) -> Calibration:
    """Cross-validate 1…``max_components`` LVs, choose the smallest LV count whose RMSECV is
    within ``(1 + tolerance)`` of the minimum (unless ``n_components`` is given), and fit the
    final soft sensor on all spectra with the CV curve attached."""
    n = spectra.shape[0] if hasattr(spectra, "shape") else 0
    max_a = int(max_components)
    if cv == "loo" and n:
        max_a = min(max_a, n - 2)
    result = cross_validate(
        wavenumber_cm1, spectra, references, steps, max_a, cv=cv, algorithm=algorithm
    )
    chosen = result.choose_components(tolerance) if n_components is None else int(n_components)
    if not 1 <= chosen <= max_a:
        raise InvalidInputError(f"n_components must be between 1 and {max_a}, got {chosen}")
    sensor = SoftSensor.fit(
        wavenumber_cm1,
        spectra,
        references,
        steps,
        chosen,
        algorithm=algorithm,
        target_names=target_names,
        units=units,
        confidence=confidence,
        description=description,
        cv=result,
    )
    return Calibration(sensor, result, chosen, float(result.rmsecv_combined[chosen - 1]))


def read_spectra_csv(path: str | os.PathLike[str]) -> tuple[FloatArray, FloatArray]:
    """Read spectra from CSV: a header of wavenumbers (cm⁻¹), then one spectrum per row.

    Returns ``(wavenumber_cm1, spectra)``. Errors name the file, line and column.
    """
    p = Path(path)
    rows = _read_csv(p)
    if len(rows) < 2:
        raise InvalidInputError(f"{p}: needs a header of wavenumbers and at least one spectrum")
    axis = np.array([_number(p, 1, j, v) for j, v in enumerate(rows[0])], dtype=np.float64)
    data = np.empty((len(rows) - 1, axis.size), dtype=np.float64)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != axis.size:
            raise SpectrumShapeError(
                f"{p}: line {i} has {len(row)} values, the header has {axis.size} wavenumbers"
            )
        data[i - 2] = [_number(p, i, j, v) for j, v in enumerate(row)]
    return axis, data


def read_references_csv(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> tuple[list[str], FloatArray]:
    """Read reference values from CSV: a header of names, one row per spectrum.

    ``columns`` selects and orders the columns (default: every column except ``time``/``sample``
    labels). Returns ``(names, values)`` with values n × len(names). Errors name file and line.
    """
    p = Path(path)
    rows = _read_csv(p)
    if len(rows) < 2:
        raise InvalidInputError(f"{p}: needs a header and at least one row")
    header = [h.strip() for h in rows[0]]
    if columns is None:
        names = [h for h in header if h.lower() not in {"time", "time_h", "sample", "id"}]
    else:
        names = list(columns)
    for name in names:
        if name not in header:
            raise InvalidInputError(f"{p}: no column {name!r} (columns: {', '.join(header)})")
    idx = [header.index(n) for n in names]
    values = np.empty((len(rows) - 1, len(idx)), dtype=np.float64)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InvalidInputError(f"{p}: line {i} has {len(row)} values, expected {len(header)}")
        values[i - 2] = [_number(p, i, j, row[j]) for j in idx]
    return names, values


def _read_csv(p: Path) -> list[list[str]]:
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            return [row for row in csv.reader(fh) if row]
    except FileNotFoundError as exc:
        raise InvalidInputError(f"{p}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{p}: cannot read: {exc}") from exc


def _number(p: Path, line: int, col: int, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InvalidInputError(
            f"{p}: line {line}, column {col + 1}: {text!r} is not a number"
        ) from None
    if not math.isfinite(v):
        raise InvalidInputError(f"{p}: line {line}, column {col + 1}: {text!r} is not finite")
    return v
