"""Spectral soft sensors in the scan: spectrometer → :class:`edgectl.spectra.SoftSensor` → tags.

For each ``[softsensors.<name>]`` the spectrometer's I/O worker acquires a spectrum every
``period_s`` and runs the prediction there (a few µs; the scan never waits on the serial line
or the model). The scan collects finished predictions and writes the tags:

===================  ===========================================================================
``<tag>``            the estimate: GOOD only when the spectrum was valid and inside the model's
                     T² and Q limits; BAD otherwise (an out-of-model value is kept for the
                     trend but marked BAD; an invalid spectrum keeps the last value, BAD), so a
                     feed loop on it falls back to its profile (softsensor.md §6, "the feed
                     controller gates on them"). STALE after ``max_age_s`` without a new one.
``<tag>.raw``        the PLS prediction before the online correction (same quality rules)
``<tag>.t2``         Hotelling T² of the spectrum (NaN/BAD when invalid)
``<tag>.q``          Q residual of the spectrum
``<tag>.status``     0 in model, 1 out of model, 2 invalid spectrum (flat, non-finite),
                     3 saturated detector, 4 acquisition failed
``<tag>.model``      the model version that produced the estimate (0: the configured file)
``<tag>.drift``      the largest drift CUSUM (:class:`edgectl.managed.DriftMonitor`: log Q/Q_lim of
                     each valid spectrum, reset at a model switch; the references' innovations);
                     the alarm ``<name>.drift`` is raised above 5 (Page's h for k = 0.5)
===================  ===========================================================================

Model versions: a released model is switched with the operator service's ``model_switch``
change (e-signed by default): a model file becomes the next version, or an earlier version is
released again. Each version is kept with its file and SHA-256; the saved state holds them, so
a resumed run predicts with the version in force.

Guards before the model (softsensor.md §10 item 3): a spectrum whose length or axis differs
from the model is resampled onto the model axis when the instrument axis covers it (refused at
start-up otherwise); saturation, non-finite values and flat spectra are "invalid", never NaN
used downstream.

Online correction (``correction = { kind = "bias_kalman", ... }``): the two-state [c, bias]
Kalman filter of softsensor.md §6 (:class:`edgectl.spectra.BiasKalman`) assimilates every
in-model prediction and every at-line reference (:meth:`SoftSensorBlock.add_reference`, exposed
as ``Controller.add_reference``, audited); ``<tag>`` is then the corrected estimate.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgectl.errors import ConfigError, EdgectlError, SpectrumShapeError
from edgectl.managed import Cusum, DriftMonitor, Estimate
from edgectl.quality import Quality
from edgectl.runtime.alarms import AlarmSpec
from edgectl.runtime.reactor_config import ReactorConfig, SoftSensorConfig
from edgectl.runtime.tags import Tag, TagStore
from edgectl.spectra import BiasKalman, SoftSensor

__all__ = ["STATUS_CODES", "SoftSensorBlock", "SoftSensorSet", "soft_sensor_tags"]


def _file_sha256(path: Path | str | None) -> str:
    """SHA-256 of a model file ("" when the model has no file)."""
    if path is None:
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


#: ``<tag>.status`` values.
STATUS_CODES = {
    "in_model": 0,
    "out_of_model": 1,
    "invalid": 2,
    "saturated": 3,
    "acquisition_failed": 4,
}


def soft_sensor_tags(ss: SoftSensorConfig) -> list[str]:
    """Every tag one soft sensor writes."""
    return [
        ss.tag,
        f"{ss.tag}.raw",
        f"{ss.tag}.t2",
        f"{ss.tag}.q",
        f"{ss.tag}.status",
        f"{ss.tag}.model",
        f"{ss.tag}.drift",
    ]


def drift_alarms(cfg: ReactorConfig) -> dict[str, AlarmSpec]:
    """The ``<name>.drift`` alarm of each soft sensor (on ``<tag>.drift``)."""
    return {
        f"{name}.drift": AlarmSpec(
            tag=f"{ss.tag}.drift",
            kind="high",
            limit=Cusum().h,
            severity="medium",
            message=f"soft sensor {name}: drift (Q residuals or reference innovations trend "
            "away from the calibration): check the probe, recalibrate or switch the model",
        )
        for name, ss in cfg.softsensors.items()
    }


@dataclass(frozen=True)
class _Result:
    time_s: float
    seq: int
    status: str
    value: float
    t2: float
    q: float
    reason: str = ""
    model_version: int = 0


class SoftSensorBlock:
    """One soft sensor: model, spectrometer driver and its I/O worker, correction filter.

    Parameters
    ----------
    name
        The ``[softsensors.<name>]`` key.
    cfg
        Its configuration.
    sensor
        The loaded model.
    driver
        A spectrometer driver with ``acquire()`` (:class:`edgectl.devices.Spectrometer`).
    worker
        The I/O worker of the spectrometer's port (acquisitions run there).
    clock
        Callable returning the controller's clock time (acquisition time stamps).
    """

    def __init__(
        self,
        name: str,
        cfg: SoftSensorConfig,
        sensor: SoftSensor,
        driver: Any,
        worker: Any,
        clock: Any,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.sensor = sensor
        self.driver = driver
        self.worker = worker
        self.clock = clock
        self.axis = np.asarray(sensor.wavenumber_cm1)
        self._resample_from: np.ndarray | None = None
        self._pending: Future[_Result | None] | None = None
        self._next_s = -math.inf
        self._last_seq: int | None = None
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(STATUS_CODES, 0)
        self.last: _Result | None = None
        self.last_error = ""
        self.kalman: BiasKalman | None = None
        c = cfg.correction
        if c is not None:
            rmse = sensor.rmsec[0] if sensor.rmsec else 1.0
            self.kalman = BiasKalman(
                q_concentration=c.q_concentration,
                q_bias=c.q_bias,
                r_prediction=c.r_prediction if c.r_prediction is not None else max(rmse, 1e-6) ** 2,
                r_reference=c.r_reference,
                gate_sigma=c.gate_sigma,
            )
        self.references: list[dict[str, Any]] = []
        # model versions: number -> (model, source file, SHA-256 of the file)
        self.model_version = 0
        self.models: dict[int, tuple[SoftSensor, str, str]] = {
            0: (sensor, str(sensor.path or cfg.model), _file_sha256(sensor.path))
        }
        self._staged: dict[str, SoftSensor] = {}
        r_ref = c.r_reference if c is not None else 0.25
        rmsec = sensor.rmsec[0] if sensor.rmsec else 1.0
        self.drift = DriftMonitor(reference_sd=math.sqrt(rmsec**2 + r_ref))

    # -- model versions -------------------------------------------------------------------------

    def describe_model(self, version: int) -> dict[str, Any]:
        """Version, source file, SHA-256, LVs and RMSEC of a registered version."""
        sensor, source, sha = self.models[version]
        return {
            "version": version,
            "model": source,
            "sha256": sha,
            "n_components": sensor.n_components,
            "rmsec": sensor.rmsec[0] if sensor.rmsec else None,
        }

    def stage_model(self, model: Any) -> dict[str, Any]:
        """Check a release request: an int is a registered version; a str is a model file,
        loaded and checked against this soft sensor (same axis and response). Returns what
        :meth:`switch_to` will release."""
        where = f"softsensors.{self.name}"
        if isinstance(model, int) and not isinstance(model, bool):
            if model not in self.models:
                raise ConfigError(
                    f"{where}: no model version {model} (versions: {sorted(self.models)})"
                )
            return self.describe_model(model)
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}: a model file path or a version number is needed")
        path = Path(model)
        sensor = SoftSensor.load(path)
        base = self.models[0][0]
        if sensor.target_names != base.target_names or sensor.units != base.units:
            raise ConfigError(
                f"{where}: {path} predicts {sensor.target_names} {sensor.units}, this soft "
                f"sensor {base.target_names} {base.units}"
            )
        ax = np.asarray(sensor.wavenumber_cm1)
        if ax.shape != self.axis.shape or not np.allclose(ax, self.axis, rtol=0.0, atol=1e-6):
            raise ConfigError(f"{where}: {path} has another wavenumber axis than {self.cfg.model}")
        sha = _file_sha256(path)
        for v, (_s, _src, known) in self.models.items():
            if known == sha:
                return self.describe_model(v)
        self._staged[sha] = sensor
        return {
            "version": max(self.models) + 1,
            "model": str(path),
            "sha256": sha,
            "n_components": sensor.n_components,
            "rmsec": sensor.rmsec[0] if sensor.rmsec else None,
        }

    def switch_to(self, release: Mapping[str, Any]) -> int:
        """Release the version :meth:`stage_model` described (registering a new file);
        returns the version released before."""
        version = int(release["version"])
        if version not in self.models:
            sha = str(release["sha256"])
            sensor = self._staged.pop(sha, None) or SoftSensor.load(str(release["model"]))
            self.models[version] = (sensor, str(release["model"]), sha)
        old = self.model_version
        self.sensor = self.models[version][0]
        self.model_version = version
        return old

    def check_instrument(self) -> None:
        """Compare the instrument axis with the model axis once: equal, or resampled."""
        axis = np.asarray(self.driver.read_axis(), dtype=np.float64)
        if axis.shape == self.axis.shape and np.allclose(axis, self.axis, rtol=0.0, atol=1e-6):
            self._resample_from = None
            return
        if axis[0] > self.axis[0] + 1e-9 or axis[-1] < self.axis[-1] - 1e-9:
            raise SpectrumShapeError(
                f"$.softsensors.{self.name}: the spectrometer axis ({axis[0]:g}–{axis[-1]:g} "
                f"cm⁻¹, {axis.size} points) does not cover the model axis "
                f"({self.axis[0]:g}–{self.axis[-1]:g} cm⁻¹) of {self.cfg.model}"
            )
        self._resample_from = axis

    # -- worker side ----------------------------------------------------------------------------

    def _acquire(self) -> _Result | None:
        """Acquire and predict (runs in the spectrometer's I/O worker)."""
        spec = self.driver.acquire()
        t = float(self.clock())
        if self._last_seq is not None and spec.seq == self._last_seq:
            return None  # no new spectrum since the last acquisition
        self._last_seq = spec.seq
        nan = math.nan
        if spec.is_saturated:
            return _Result(t, spec.seq, "saturated", nan, nan, nan, "detector saturated")
        y = np.ascontiguousarray(spec.intensities, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            return _Result(t, spec.seq, "invalid", nan, nan, nan, "non-finite intensities")
        sensor, version = self.sensor, self.model_version
        try:
            p = sensor.predict(y, wavenumber_cm1=self._resample_from)
        except EdgectlError as exc:
            return _Result(t, spec.seq, "invalid", nan, nan, nan, str(exc), version)
        return _Result(t, spec.seq, p.status, p.value, p.t2, p.q, p.reason, version)

    # -- scan side ------------------------------------------------------------------------------

    def update(self, tags: TagStore, now_s: float) -> None:
        """Collect a finished acquisition (write the tags); start the next one when due."""
        fut = self._pending
        if fut is not None and fut.done():
            self._pending = None
            if fut.cancelled():
                pass
            elif fut.exception() is not None:
                self.counts["acquisition_failed"] += 1
                self.last_error = f"{type(fut.exception()).__name__}: {fut.exception()}"
                for name in (self.cfg.tag, f"{self.cfg.tag}.raw"):
                    tags.mark_bad(name, now_s)
                tags.write(f"{self.cfg.tag}.status", STATUS_CODES["acquisition_failed"], now_s)
            else:
                result = fut.result()
                if result is not None:
                    self._write(tags, result)
                else:
                    # no new spectrum yet (the read came just before the instrument's next one):
                    # ask again soon instead of a whole period later, so a read that ties with
                    # the instrument's own period does not skip every other spectrum
                    retry_s = min(self.cfg.period_s / 10.0, 30.0)
                    self._next_s = min(self._next_s, now_s + retry_s)
        if self._pending is None and now_s >= self._next_s:
            period = self.cfg.period_s
            self._next_s = now_s + period if not math.isfinite(self._next_s) else self._next_s
            while self._next_s <= now_s:
                self._next_s += period
            self._pending = self.worker.submit(self._acquire)

    def _write(self, tags: TagStore, r: _Result) -> None:
        tag = self.cfg.tag
        self.counts[r.status] = self.counts.get(r.status, 0) + 1
        self.last = r
        good = r.status == "in_model"
        q = Quality.GOOD if good else Quality.BAD
        tags.write(f"{tag}.status", STATUS_CODES[r.status], r.time_s)
        tags.write(f"{tag}.model", r.model_version, r.time_s)
        model = self.models.get(r.model_version, (self.sensor,))[0]
        if math.isfinite(r.q) and math.isfinite(r.t2):
            self.drift.on_estimate(
                Estimate(
                    r.time_s / 3600.0,
                    r.value,
                    True,
                    good,
                    r.t2 / model.t2_limit,
                    r.q / model.q_limit,
                    r.model_version,
                )
            )
        tags.write(f"{tag}.drift", self.drift_level(), r.time_s)
        tags.write(f"{tag}.t2", r.t2, r.time_s)
        tags.write(f"{tag}.q", r.q, r.time_s)
        if not math.isfinite(r.value):
            tags.mark_bad(tag, r.time_s)
            tags.mark_bad(f"{tag}.raw", r.time_s)
            return
        tags.write(f"{tag}.raw", r.value, r.time_s, q)
        value = r.value
        if good and self.kalman is not None:
            with self._lock:
                try:
                    value = self.kalman.update_prediction(r.time_s / 3600.0, r.value).value
                except EdgectlError as exc:  # e.g. time going backwards after a restart
                    self.last_error = f"correction: {exc}"
        tags.write(tag, value, r.time_s, q)

    # -- references -----------------------------------------------------------------------------

    def add_reference(
        self,
        value: float,
        sampled_s: float,
        *,
        analyser: str = "",
        entered_by: str = "",
        known_s: float | None = None,
    ) -> dict[str, Any]:
        """Assimilate an at-line reference of the sample drawn at clock time ``sampled_s``,
        known at ``known_s``, measured by ``analyser`` and entered by ``entered_by``.

        Without a correction filter the reference is only recorded (with the soft sensor's
        error at that time, for the RMSEP).
        """
        entry: dict[str, Any] = {"value": float(value), "sampled_s": float(sampled_s)}
        if known_s is not None:
            entry["known_s"] = float(known_s)
        if analyser:
            entry["analyser"] = analyser
        if entered_by:
            entry["entered_by"] = entered_by
        last = self.last
        if last is not None and math.isfinite(last.value):
            entry["prediction"] = last.value
            entry["error"] = last.value - float(value)
        if self.kalman is not None:
            with self._lock:
                try:
                    out = self.kalman.update_reference(sampled_s / 3600.0, float(value))
                except EdgectlError as exc:
                    entry.update(accepted=False, reason=str(exc))
                else:
                    est = self.kalman.estimate
                    entry.update(
                        accepted=out.accepted,
                        innovation=out.innovation,
                        normalized=out.normalized,
                        estimate=None if est is None else est.value,
                        bias=None if est is None else est.bias,
                    )
        if "error" in entry:
            self.drift.on_innovation(float(sampled_s) / 3600.0, entry["error"])
        self.references.append(entry)
        return entry

    def drift_level(self) -> float:
        """The largest of the drift monitor's CUSUMs (alarm above 5)."""
        d = self.drift
        return max(d.q_cusum.s, d.up.s, d.down.s)

    def state(self) -> dict[str, Any]:
        """What a resumed run needs: the correction filter (bias learnt from the references so
        far) and the references themselves."""
        with self._lock:
            kalman = None if self.kalman is None else self.kalman.state_json()
        models = {str(v): [src, sha] for v, (_s, src, sha) in self.models.items() if v > 0}
        return {
            "kalman": kalman,
            "references": list(self.references),
            "model_version": self.model_version,
            "models": models,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state`; a filter state that does not load is reported (the
        correction restarts from its prior) rather than stopping the run."""
        self.references = [dict(r) for r in state.get("references", [])]
        models = state.get("models", {})
        if isinstance(models, Mapping):
            for v, entry in models.items():
                try:
                    src, sha = str(entry[0]), str(entry[1])
                    self.models[int(v)] = (SoftSensor.load(src), src, sha)
                except (EdgectlError, OSError, ValueError, TypeError, IndexError) as exc:
                    self.last_error = f"model version {v} not restored: {exc}"
        version = state.get("model_version", 0)
        if isinstance(version, int) and version in self.models:
            self.sensor = self.models[version][0]
            self.model_version = version
        saved = state.get("kalman")
        if self.kalman is not None and isinstance(saved, str):
            try:
                with self._lock:
                    self.kalman.restore_state_json(saved)
            except EdgectlError as exc:
                self.last_error = f"correction state not restored: {exc}"

    def status(self) -> dict[str, Any]:
        last = self.last
        return {
            "tag": self.cfg.tag,
            "model": self.cfg.model,
            "counts": dict(self.counts),
            "last": None if last is None else last.__dict__.copy(),
            "last_error": self.last_error,
            "references": len(self.references),
            "correction": self.cfg.correction is not None,
            "model_version": self.model_version,
            "models": {v: self.describe_model(v) for v in sorted(self.models)},
        }


class SoftSensorSet:
    """Every soft sensor of a reactor (built by :meth:`from_config`)."""

    def __init__(self, blocks: dict[str, SoftSensorBlock]) -> None:
        self.blocks = blocks

    @classmethod
    def from_config(cls, cfg: ReactorConfig, base_dir: Path, hub: Any) -> SoftSensorSet:
        """Load each model (paths relative to the reactor file), bind it to its spectrometer's
        driver and I/O worker in ``hub``, and check the instrument axis."""
        blocks: dict[str, SoftSensorBlock] = {}
        for name, ss in cfg.softsensors.items():
            where = f"$.softsensors.{name}"
            path = Path(ss.model)
            if not path.is_absolute():
                path = base_dir / path
            sensor = SoftSensor.load(path)
            driver = hub.drivers.get(ss.spectrometer)
            if driver is None or not callable(getattr(driver, "acquire", None)):
                raise ConfigError(
                    f"{where}.spectrometer: device {ss.spectrometer!r} is not a spectrometer"
                    f" (its driver has no acquire())"
                )
            worker = hub.workers[cfg.devices[ss.spectrometer].port]
            block = SoftSensorBlock(name, ss, sensor, driver, worker, lambda: hub.clock.now())
            block.check_instrument()
            blocks[name] = block
        return cls(blocks)

    def define_tags(self, tags: TagStore) -> None:
        for block in self.blocks.values():
            ss = block.cfg
            age = ss.max_age_s if ss.max_age_s is not None else 3.0 * ss.period_s
            unit = block.sensor.units[0] if block.sensor.units else ""
            for name in soft_sensor_tags(ss):
                if name in tags:
                    continue
                u = unit if name in (ss.tag, f"{ss.tag}.raw") else ""
                tags.define(Tag(name, u, age, f"soft sensor {block.name}"))

    def update(self, tags: TagStore, now_s: float) -> None:
        for block in self.blocks.values():
            block.update(tags, now_s)

    def __getitem__(self, name: str) -> SoftSensorBlock:
        try:
            return self.blocks[name]
        except KeyError:
            raise ConfigError(
                f"no soft sensor {name!r} (soft sensors: {sorted(self.blocks)})"
            ) from None

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def state(self) -> dict[str, Any]:
        """Each soft sensor's :meth:`SoftSensorBlock.state`, by name (for the controller's
        saved state)."""
        return {name: block.state() for name, block in self.blocks.items()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume each soft sensor named in ``state`` (others start afresh)."""
        for name, st in state.items():
            if name in self.blocks and isinstance(st, Mapping):
                self.blocks[name].restore(st)
