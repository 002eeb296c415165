//! Bindings of `edgectl_core::sim`: the simulated plant as `edgectl._core.Plant`.
//!
//! The configuration crosses as JSON text (written by `edgectl.sim.PlantConfig`), snapshots as
//! bytes, spectra as float64 arrays. `advance` releases the GIL. The class is not thread-safe
//! by itself: `edgectl.sim.Plant` wraps it with a lock.

use crate::errors::{check, compute};
use edgectl_core::sim::{config::PlantConfig, FaultKind, Plant, Signal, ACTUATORS};
use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The simulated fed-batch bioreactor (see `edgectl.sim.Plant` for the public wrapper).
#[pyclass(name = "Plant", module = "edgectl._core")]
pub struct PyPlant {
    inner: Plant,
}

type FaultRow = (u64, &'static str, String, f64, f64, f64);

#[pymethods]
impl PyPlant {
    /// Build a plant from configuration JSON text (`edgectl.sim.PlantConfig`).
    #[new]
    fn new(config_json: &str) -> PyResult<Self> {
        let cfg = check(PlantConfig::from_json(config_json))?;
        Ok(PyPlant {
            inner: check(Plant::new(cfg))?,
        })
    }

    /// Rebuild a plant from `snapshot()` bytes.
    #[staticmethod]
    fn from_snapshot(data: &[u8]) -> PyResult<Self> {
        Ok(PyPlant {
            inner: check(Plant::restore(data))?,
        })
    }

    /// JSON of a built-in scenario: "ecoli_2l" or "cho_2l".
    #[staticmethod]
    fn scenario_json(name: &str) -> PyResult<String> {
        match name {
            "ecoli_2l" => Ok(PlantConfig::ecoli_2l().to_json()),
            "cho_2l" => Ok(PlantConfig::cho_2l().to_json()),
            _ => Err(PyValueError::new_err(format!(
                "unknown scenario {name:?}; expected 'ecoli_2l' or 'cho_2l'"
            ))),
        }
    }

    /// Sensor signal names.
    #[classattr]
    #[allow(non_snake_case)]
    fn SIGNALS() -> Vec<&'static str> {
        Signal::ALL.iter().map(|s| s.name()).collect()
    }

    /// Actuator names.
    #[classattr]
    #[allow(non_snake_case)]
    fn ACTUATORS() -> Vec<&'static str> {
        ACTUATORS.to_vec()
    }

    /// Fault kind names.
    #[classattr]
    #[allow(non_snake_case)]
    fn FAULT_KINDS() -> Vec<&'static str> {
        FaultKind::ALL.iter().map(|(n, _)| *n).collect()
    }

    /// The configuration as JSON text.
    fn config_json(&self) -> String {
        self.inner.config().to_json()
    }

    /// Simulated time, s.
    #[getter]
    fn time_s(&self) -> f64 {
        self.inner.time_s()
    }

    /// Advance `seconds` of simulated time in steps of `dt_s` (GIL released).
    #[pyo3(signature = (seconds, dt_s = 1.0))]
    fn advance(&mut self, py: Python<'_>, seconds: f64, dt_s: f64) -> PyResult<()> {
        let inner = &mut self.inner;
        compute(py, || inner.advance(seconds, dt_s))
    }

    /// One outer step of `dt_s` seconds.
    fn step(&mut self, dt_s: f64) -> PyResult<()> {
        check(self.inner.step(dt_s))
    }

    /// Latest sensor reading, or an actuator's commanded value; KeyError if unknown.
    fn read(&self, signal: &str) -> PyResult<f64> {
        self.inner
            .read_name(signal)
            .ok_or_else(|| PyKeyError::new_err(format!("plant has no signal {signal:?}")))
    }

    /// Set an actuator; KeyError if unknown.
    fn write(&mut self, actuator: &str, value: f64) -> PyResult<()> {
        if !ACTUATORS.contains(&actuator) {
            return Err(PyKeyError::new_err(format!(
                "plant has no actuator {actuator:?}"
            )));
        }
        check(self.inner.write(actuator, value))
    }

    /// Latest spectrum as (wavenumber_cm1 axis, intensities).
    fn spectrum<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>) {
        (
            self.inner.spectrum_axis().to_vec().into_pyarray(py),
            self.inner.spectrum().to_vec().into_pyarray(py),
        )
    }

    /// Simulated time of the latest spectrum, s.
    #[getter]
    fn spectrum_time_s(&self) -> f64 {
        self.inner.spectrum_time_s()
    }

    /// True states as (name, value) pairs.
    fn state(&self) -> Vec<(&'static str, f64)> {
        self.inner.state()
    }

    /// Latest readings as (name, value) pairs.
    fn readings(&self) -> Vec<(&'static str, f64)> {
        self.inner.readings()
    }

    /// Cumulative boundary flows and carbon as (name, value) pairs.
    fn balances(&self) -> Vec<(&'static str, f64)> {
        self.inner.balances()
    }

    /// Remove `volume_ml` of broth; returns the true states at sampling.
    fn take_sample(&mut self, volume_ml: f64) -> PyResult<Vec<(&'static str, f64)>> {
        check(self.inner.take_sample(volume_ml))
    }

    /// Inject a fault; returns its id.
    #[pyo3(signature = (kind, target = "", value = None, start_s = None, duration_s = None))]
    fn inject_fault(
        &mut self,
        kind: &str,
        target: &str,
        value: Option<f64>,
        start_s: Option<f64>,
        duration_s: Option<f64>,
    ) -> PyResult<u64> {
        check(
            self.inner
                .inject_fault(kind, target, value, start_s, duration_s),
        )
    }

    /// End fault `fault_id` now; False if unknown.
    fn clear_fault(&mut self, fault_id: u64) -> bool {
        self.inner.clear_fault(fault_id)
    }

    /// End every fault now.
    fn clear_faults(&mut self) {
        self.inner.clear_faults()
    }

    /// Faults as (id, kind, target, value, start_s, end_s) rows.
    fn faults(&self) -> Vec<FaultRow> {
        self.inner
            .faults()
            .iter()
            .map(|f| {
                (
                    f.id,
                    f.kind.name(),
                    f.target.clone(),
                    f.value,
                    f.start_s,
                    f.end_s,
                )
            })
            .collect()
    }

    /// The whole state as bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.snapshot())
    }

    /// Replace the whole state by `snapshot()` bytes.
    fn restore(&mut self, data: &[u8]) -> PyResult<()> {
        self.inner = check(Plant::restore(data))?;
        Ok(())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPlant>()?;
    Ok(())
}
