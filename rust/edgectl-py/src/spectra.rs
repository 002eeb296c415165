//! Bindings of `edgectl_core::spectra`: preprocessing, PLS, cross-validation, the soft sensor
//! and the bias Kalman filter. Thin wrappers: argument checks with clear messages, one copy of
//! batch inputs, the GIL released for batch work, core errors mapped in `errors.rs`.
//!
//! Arrays must be float64 numpy arrays; a wrong dtype raises `TypeError`, a wrong number of
//! dimensions `SpectrumShapeError`. Non-contiguous arrays are accepted (copied once).

use edgectl_core::spectra::{
    self as core, BiasKalman, BiasKalmanConfig, CorrectedEstimate, CvResult, CvScheme, EdgeMode,
    FitOptions, Pipeline, PlsAlgorithm, PlsModel, PredictWorkspace, ReferenceOutcome, SoftSensor,
    SpectrumStatus, Step, Target,
};
use edgectl_core::CoreError;
use ndarray::{Array1, Array2, ArrayView1};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyAny;
use std::sync::Mutex;

use crate::errors::{check, compute, SpectrumShapeError};

fn describe(obj: &Bound<'_, PyAny>) -> String {
    match (obj.getattr("dtype"), obj.getattr("ndim")) {
        (Ok(d), Ok(n)) => format!("a {n}-D {d} array"),
        _ => obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "an object".into()),
    }
}

fn ndim_of(obj: &Bound<'_, PyAny>) -> Option<usize> {
    obj.getattr("ndim")
        .ok()
        .and_then(|n| n.extract::<usize>().ok())
}

/// A 1-D float64 array as an owned-or-borrowed contiguous vector view.
fn vec1(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    let arr = arr1(obj, what)?;
    let ro = arr.readonly();
    Ok(ro.as_array().to_vec())
}

fn arr1<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyArray1<f64>>> {
    if let Ok(a) = obj.cast::<PyArray1<f64>>() {
        return Ok(a.clone());
    }
    if let Some(n) = ndim_of(obj) {
        if n != 1 && obj.getattr("dtype").is_ok() {
            return Err(SpectrumShapeError::new_err(format!(
                "{what} must be 1-D (one spectrum), got {}",
                describe(obj)
            )));
        }
    }
    obj.cast::<PyArray1<f64>>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a float64 numpy array, got {}",
            describe(obj)
        ))
    })
}

fn mat2(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Array2<f64>> {
    if let Some(n) = ndim_of(obj) {
        if n != 2 && obj.getattr("dtype").is_ok() {
            return Err(SpectrumShapeError::new_err(format!(
                "{what} must be 2-D (one spectrum per row), got {}",
                describe(obj)
            )));
        }
    }
    let arr = obj.cast::<PyArray2<f64>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a float64 numpy array, got {}",
            describe(obj)
        ))
    })?;
    // The one copy: another Python thread could write the array while the GIL is released.
    let ro = arr.readonly();
    let v = ro.as_array();
    let (r, c) = v.dim();
    let data: Vec<f64> = match v.as_slice() {
        Some(s) => s.to_vec(),
        None => v.iter().copied().collect(),
    };
    Array2::from_shape_vec((r, c), data).map_err(|e| PyTypeError::new_err(e.to_string()))
}

/// Core matrix → numpy array (the core and numpy 0.30 share ndarray 0.17: the buffer moves).
fn np2<'py>(py: Python<'py>, a: Array2<f64>) -> Bound<'py, PyArray2<f64>> {
    a.into_pyarray(py)
}

fn unreachable_py<T>() -> PyResult<T> {
    Err(PyTypeError::new_err("x must be a 2-D float64 numpy array"))
}

fn parse_steps(steps_json: &str) -> PyResult<Vec<Step>> {
    serde_json::from_str::<Vec<Step>>(steps_json).map_err(|e| {
        crate::errors::to_py_err(CoreError::InvalidConfig(format!("pipeline steps: {e}")))
    })
}

fn steps_to_json(steps: &[Step]) -> String {
    serde_json::to_string(steps).unwrap_or_else(|_| "[]".into())
}

/// Savitzky–Golay filter of one spectrum (1-D) or of each row (2-D), as
/// `scipy.signal.savgol_filter(x, window, order, deriv, delta, axis=-1, mode=mode)`.
#[pyfunction]
#[pyo3(signature = (x, window, order, deriv=0, delta=1.0, mode="interp"))]
fn savgol_filter<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    window: usize,
    order: usize,
    deriv: usize,
    delta: f64,
    mode: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let sg = check(
        EdgeMode::parse(mode)
            .and_then(|m| core::SavitzkyGolay::new(window, order, deriv, delta, m)),
    )?;
    rowwise(
        py,
        x,
        "x",
        move |row, out| {
            edgectl_core::spectra::ensure_finite(row)?;
            sg.apply_into(row, out)
        },
        None,
    )
}

/// Standard normal variate of one spectrum or each row: (x − mean)/sd, sd with `ddof`.
#[pyfunction]
#[pyo3(signature = (x, ddof=1))]
fn snv<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, ddof: u8) -> PyResult<Bound<'py, PyAny>> {
    let n = x
        .getattr("shape")
        .ok()
        .and_then(|s| s.get_item(-1).ok())
        .and_then(|v| v.extract::<usize>().ok())
        .unwrap_or(0);
    let axis: Vec<f64> = (0..n.max(2)).map(|i| i as f64).collect();
    let pipe = check(Pipeline::new(&axis, &[Step::Snv { ddof }]))?;
    rowwise(
        py,
        x,
        "x",
        move |row, out| {
            let mut ws = core::Workspace::new();
            pipe.transform_into(row, &mut ws, out)
        },
        None,
    )
}

/// AsLS baseline z of one spectrum or of each row (Eilers & Boelens 2005).
#[pyfunction]
#[pyo3(signature = (y, lam=1e6, p=0.01, max_iter=50))]
fn asls_baseline<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
    lam: f64,
    p: f64,
    max_iter: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let asls = check(core::AsLs::new(lam, p, max_iter))?;
    rowwise(
        py,
        y,
        "y",
        move |row, out| {
            edgectl_core::spectra::ensure_finite(row)?;
            let z = asls.baseline(row)?;
            out.copy_from_slice(&z);
            Ok(())
        },
        None,
    )
}

/// Linear interpolation of a spectrum from `wavenumber_cm1` onto `target_cm1`.
#[pyfunction]
fn resample<'py>(
    py: Python<'py>,
    wavenumber_cm1: &Bound<'py, PyAny>,
    spectrum: &Bound<'py, PyAny>,
    target_cm1: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let src = vec1(wavenumber_cm1, "wavenumber_cm1")?;
    let y = vec1(spectrum, "spectrum")?;
    let dst = vec1(target_cm1, "target_cm1")?;
    let out = check(core::resample_linear(&src, &y, &dst))?;
    Ok(out.into_pyarray(py))
}

/// Apply `f` to one spectrum (1-D) or to each row (2-D, GIL released); `out_len` defaults to
/// the input length.
fn rowwise<'py, F>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    what: &str,
    f: F,
    out_len: Option<usize>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Fn(&[f64], &mut [f64]) -> Result<(), CoreError> + Send + Sync,
{
    match ndim_of(x) {
        Some(1) => {
            let arr = arr1(x, what)?;
            let ro = arr.readonly();
            let v = ro.as_array();
            let owned;
            let s: &[f64] = match v.as_slice() {
                Some(s) => s,
                None => {
                    owned = v.to_vec();
                    &owned
                }
            };
            let mut out = vec![0.0; out_len.unwrap_or(s.len())];
            check(f(s, &mut out))?;
            Ok(out.into_pyarray(py).into_any())
        }
        Some(2) => {
            let m = mat2(x, what)?;
            let width = out_len.unwrap_or(m.ncols());
            let res = compute(py, || {
                let mut out = Array2::<f64>::zeros((m.nrows(), width));
                for (i, (row, mut o)) in m.outer_iter().zip(out.outer_iter_mut()).enumerate() {
                    let src = row.as_slice().unwrap_or(&[]);
                    let dst = o.as_slice_mut().unwrap_or(&mut []);
                    f(src, dst).map_err(|e| match e {
                        CoreError::Numerical(msg) => {
                            CoreError::Numerical(format!("row {i}: {msg}"))
                        }
                        CoreError::InvalidInput(msg) => {
                            CoreError::InvalidInput(format!("row {i}: {msg}"))
                        }
                        other => other,
                    })?;
                }
                Ok(out)
            })?;
            Ok(np2(py, res).into_any())
        }
        _ => {
            if x.getattr("dtype").is_ok() {
                Err(SpectrumShapeError::new_err(format!(
                    "{what} must be 1-D (one spectrum) or 2-D (one spectrum per row), got {}",
                    describe(x)
                )))
            } else {
                Err(PyTypeError::new_err(format!(
                    "{what} must be a float64 numpy array, got {}",
                    describe(x)
                )))
            }
        }
    }
}

/// A preprocessing pipeline on a fixed wavenumber axis (steps given as JSON).
#[pyclass(name = "Pipeline", module = "edgectl._core", frozen)]
pub struct PyPipeline {
    inner: Pipeline,
    ws: Mutex<core::Workspace>,
}

impl PyPipeline {
    fn wrap(inner: Pipeline) -> Self {
        Self {
            inner,
            ws: Mutex::new(core::Workspace::new()),
        }
    }
}

#[pymethods]
impl PyPipeline {
    #[new]
    fn new(wavenumber_cm1: &Bound<'_, PyAny>, steps_json: &str) -> PyResult<Self> {
        let axis = vec1(wavenumber_cm1, "wavenumber_cm1")?;
        let steps = parse_steps(steps_json)?;
        Ok(Self::wrap(check(Pipeline::new(&axis, &steps))?))
    }

    /// Fit MSC/centring/autoscaling on calibration spectra; returns (fitted pipeline, X).
    fn fit<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(PyPipeline, Bound<'py, PyArray2<f64>>)> {
        let m = mat2(x, "spectra")?;
        let (p, xt) = compute(py, || self.inner.fit(m.view()))?;
        Ok((Self::wrap(p), np2(py, xt)))
    }

    /// Preprocess one spectrum (1-D) or a batch (2-D).
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n_out = self.inner.n_output();
        let inner = &self.inner;
        if ndim_of(x) == Some(1) {
            let arr = arr1(x, "spectrum")?;
            let ro = arr.readonly();
            let v = ro.as_array();
            let owned;
            let s: &[f64] = match v.as_slice() {
                Some(s) => s,
                None => {
                    owned = v.to_vec();
                    &owned
                }
            };
            let mut out = vec![0.0; n_out];
            let r = match self.ws.try_lock() {
                Ok(mut ws) => inner.transform_into(s, &mut ws, &mut out),
                Err(_) => inner.transform_into(s, &mut core::Workspace::new(), &mut out),
            };
            check(r)?;
            return Ok(out.into_pyarray(py).into_any());
        }
        if ndim_of(x) == Some(2) {
            let m = mat2(x, "spectra")?;
            let out = compute(py, || inner.transform_batch(m.view()))?;
            return Ok(np2(py, out).into_any());
        }
        rowwise(py, x, "spectra", |_, _| Ok(()), None)
    }

    /// The steps with fitted state, as JSON.
    #[getter]
    fn steps_json(&self) -> String {
        steps_to_json(self.inner.steps())
    }
    /// Input axis, cm⁻¹.
    #[getter]
    fn wavenumber_cm1<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.axis().to_vec().into_pyarray(py)
    }
    /// Output axis, cm⁻¹.
    #[getter]
    fn output_wavenumber_cm1<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.output_axis().to_vec().into_pyarray(py)
    }
    /// True when every data-dependent step is fitted.
    #[getter]
    fn is_fitted(&self) -> bool {
        self.inner.is_fitted()
    }
    fn __repr__(&self) -> String {
        let kinds: Vec<&str> = self.inner.steps().iter().map(|s| s.kind()).collect();
        format!(
            "Pipeline({} → {} points: {})",
            self.inner.n_input(),
            self.inner.n_output(),
            kinds.join(" → ")
        )
    }
}

fn y_matrix(y: &Bound<'_, PyAny>) -> PyResult<(Array2<f64>, bool)> {
    match ndim_of(y) {
        Some(1) => {
            let v = vec1(y, "y")?;
            let n = v.len();
            Ok((
                Array1::from(v)
                    .into_shape_with_order((n, 1))
                    .map_err(|e| PyTypeError::new_err(e.to_string()))?,
                true,
            ))
        }
        _ => Ok((mat2(y, "y")?, false)),
    }
}

/// A fitted PLS regression model (NIPALS or SIMPLS).
#[pyclass(name = "PlsModel", module = "edgectl._core", frozen)]
pub struct PyPlsModel {
    inner: PlsModel,
    one_d: bool,
}

#[pymethods]
impl PyPlsModel {
    /// Fit on preprocessed spectra `x` (n × p) and responses `y` (n or n × m).
    #[staticmethod]
    #[pyo3(signature = (x, y, n_components, algorithm="nipals"))]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        n_components: usize,
        algorithm: &str,
    ) -> PyResult<Self> {
        let alg = check(PlsAlgorithm::parse(algorithm))?;
        let xm = mat2(x, "x")?;
        let (ym, one_d) = y_matrix(y)?;
        let inner = compute(py, || {
            PlsModel::fit(xm.view(), ym.view(), n_components, alg)
        })?;
        Ok(Self { inner, one_d })
    }

    /// Predict responses of preprocessed spectra (2-D) with `n_components` LVs (default all).
    ///
    /// Runs on the borrowed array with the GIL held: one streaming pass of dot products costs
    /// less than the copy that releasing the GIL would need.
    #[pyo3(signature = (x, n_components=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        n_components: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let arr = match x.cast::<PyArray2<f64>>() {
            Ok(a) => a.clone(),
            Err(_) => {
                mat2(x, "x")?;
                unreachable_py()?
            }
        };
        let ro = arr.readonly();
        let v = ro.as_array();
        let (n, p) = v.dim();
        let a = n_components.unwrap_or(self.inner.n_components());
        let m = self.inner.n_targets();
        let mut out = vec![0.0; n * m];
        let owned;
        let data: &[f64] = match v.as_slice() {
            Some(s) => s,
            None => {
                owned = v.iter().copied().collect::<Vec<f64>>();
                &owned
            }
        };
        check(self.inner.predict_rows_into(data, n, p, a, &mut out))?;
        if self.one_d {
            Ok(out.into_pyarray(py).into_any())
        } else {
            let arr = numpy::ndarray::Array2::from_shape_vec((n, m), out)
                .map_err(|e| PyTypeError::new_err(e.to_string()))?;
            Ok(arr.into_pyarray(py).into_any())
        }
    }

    /// Scores t = (x − x̄)·R of preprocessed spectra (2-D), n × A.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xm = mat2(x, "x")?;
        let r = self.inner.x_rotations();
        if xm.ncols() != self.inner.n_features() {
            return Err(crate::errors::to_py_err(CoreError::ShapeMismatch {
                what: "preprocessed spectra (columns)",
                expected: self.inner.n_features(),
                got: xm.ncols(),
            }));
        }
        let mean = ArrayView1::from(self.inner.x_mean());
        let centred = &xm - &mean;
        Ok(np2(py, centred.dot(&r.t())))
    }

    #[getter]
    fn n_components(&self) -> usize {
        self.inner.n_components()
    }
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm().name()
    }
    /// Coefficients, n_targets × n_features (scikit-learn `coef_`).
    #[getter]
    fn coef<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(py, self.inner.coef())
    }
    /// ȳ (scikit-learn `intercept_`): ŷ = (x − x̄)·coefᵀ + intercept.
    #[getter]
    fn intercept<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.y_mean().to_vec().into_pyarray(py)
    }
    #[getter]
    fn x_mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.x_mean().to_vec().into_pyarray(py)
    }
    /// x weights, n_features × A (scikit-learn layout).
    #[getter]
    fn x_weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(
            py,
            self.inner
                .x_weights()
                .reversed_axes()
                .as_standard_layout()
                .into_owned(),
        )
    }
    /// x loadings, n_features × A.
    #[getter]
    fn x_loadings<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(
            py,
            self.inner
                .x_loadings()
                .reversed_axes()
                .as_standard_layout()
                .into_owned(),
        )
    }
    /// x rotations, n_features × A.
    #[getter]
    fn x_rotations<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(
            py,
            self.inner
                .x_rotations()
                .reversed_axes()
                .as_standard_layout()
                .into_owned(),
        )
    }
    /// y loadings, n_targets × A.
    #[getter]
    fn y_loadings<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(py, self.inner.y_loadings())
    }
    /// Calibration score variances (ddof 1), one per LV.
    #[getter]
    fn score_variance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.score_variance().to_vec().into_pyarray(py)
    }
    fn __repr__(&self) -> String {
        format!(
            "PlsModel({}, {} LV, {} features, {} targets)",
            self.inner.algorithm().name(),
            self.inner.n_components(),
            self.inner.n_features(),
            self.inner.n_targets()
        )
    }
}

/// Result of `cross_validate`.
#[pyclass(name = "CvResult", module = "edgectl._core", frozen)]
pub struct PyCvResult {
    inner: CvResult,
}

#[pymethods]
impl PyCvResult {
    /// RMSECV, max_components × n_targets (row a − 1 = a LVs).
    #[getter]
    fn rmsecv<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(py, self.inner.rmsecv.clone())
    }
    /// RMSECV combined over targets, one value per LV count.
    #[getter]
    fn rmsecv_combined<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.rmsecv_combined().into_pyarray(py)
    }
    #[getter]
    fn scheme(&self) -> String {
        self.inner.scheme.name()
    }
    #[getter]
    fn max_components(&self) -> usize {
        self.inner.max_components
    }
    /// Cross-validated predictions with `n_components` LVs, n × n_targets.
    fn predictions<'py>(
        &self,
        py: Python<'py>,
        n_components: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        Ok(np2(py, check(self.inner.predictions_for(n_components))?))
    }
    /// Smallest LV count within (1 + tolerance) of the minimum RMSECV.
    #[pyo3(signature = (tolerance=0.02))]
    fn choose_components(&self, tolerance: f64) -> usize {
        self.inner.choose_components(tolerance)
    }
}

/// Cross-validate pipeline + PLS for 1…max_components LVs.
#[pyfunction]
#[pyo3(signature = (wavenumber_cm1, steps_json, x, y, max_components, scheme="loo", algorithm="nipals", groups=None))]
#[allow(clippy::too_many_arguments)]
fn cross_validate(
    py: Python<'_>,
    wavenumber_cm1: &Bound<'_, PyAny>,
    steps_json: &str,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    max_components: usize,
    scheme: &str,
    algorithm: &str,
    groups: Option<Vec<i64>>,
) -> PyResult<PyCvResult> {
    let axis = vec1(wavenumber_cm1, "wavenumber_cm1")?;
    let steps = parse_steps(steps_json)?;
    let xm = mat2(x, "spectra")?;
    let (ym, _) = y_matrix(y)?;
    let alg = check(PlsAlgorithm::parse(algorithm))?;
    let sch = match groups {
        Some(g) => CvScheme::Groups(g),
        None => check(CvScheme::parse(scheme))?,
    };
    let inner = compute(py, || {
        core::cross_validate(
            &axis,
            &steps,
            xm.view(),
            ym.view(),
            max_components,
            alg,
            &sch,
        )
    })?;
    Ok(PyCvResult { inner })
}

/// One soft-sensor prediction.
#[pyclass(name = "Prediction", module = "edgectl._core", frozen)]
pub struct PyPrediction {
    #[pyo3(get)]
    value: f64,
    values: Vec<f64>,
    #[pyo3(get)]
    t2: f64,
    #[pyo3(get)]
    q: f64,
    #[pyo3(get)]
    t2_limit: f64,
    #[pyo3(get)]
    q_limit: f64,
    status: SpectrumStatus,
    #[pyo3(get)]
    reason: String,
}

#[pymethods]
impl PyPrediction {
    /// One value per response.
    #[getter]
    fn values(&self) -> Vec<f64> {
        self.values.clone()
    }
    /// `"in_model"`, `"out_of_model"` or `"invalid"`.
    #[getter]
    fn status(&self) -> &'static str {
        self.status.name()
    }
    /// True when T² and Q are within their limits (usable for control).
    #[getter]
    fn is_in_model(&self) -> bool {
        self.status == SpectrumStatus::InModel
    }
    /// False when the spectrum could not be preprocessed (value is NaN).
    #[getter]
    fn is_valid(&self) -> bool {
        self.status != SpectrumStatus::Invalid
    }
    fn __repr__(&self) -> String {
        format!(
            "Prediction(value={:.6}, t2={:.4}, q={:.4}, status='{}')",
            self.value,
            self.t2,
            self.q,
            self.status.name()
        )
    }
}

/// Batch predictions.
#[pyclass(name = "BatchPrediction", module = "edgectl._core", frozen)]
pub struct PyBatchPrediction {
    values: Array2<f64>,
    t2: Vec<f64>,
    q: Vec<f64>,
    status: Vec<SpectrumStatus>,
}

#[pymethods]
impl PyBatchPrediction {
    /// Values, n × n_targets (NaN for invalid rows).
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        np2(py, self.values.clone())
    }
    /// First response, n values.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.values.column(0).to_vec().into_pyarray(py)
    }
    #[getter]
    fn t2<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.t2.clone().into_pyarray(py)
    }
    #[getter]
    fn q<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.q.clone().into_pyarray(py)
    }
    /// In-model flags.
    #[getter]
    fn is_in_model<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.status
            .iter()
            .map(|s| *s == SpectrumStatus::InModel)
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }
    /// Validity flags (False = could not be preprocessed).
    #[getter]
    fn is_valid<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.status
            .iter()
            .map(|s| *s != SpectrumStatus::Invalid)
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }
    /// Status names per row.
    #[getter]
    fn status(&self) -> Vec<&'static str> {
        self.status.iter().map(|s| s.name()).collect()
    }
    fn __len__(&self) -> usize {
        self.status.len()
    }
}

/// A calibrated soft sensor: axis + pipeline + PLS + limits (see the model file format).
#[pyclass(name = "SoftSensor", module = "edgectl._core", frozen)]
pub struct PySoftSensor {
    inner: SoftSensor,
    ws: Mutex<PredictWorkspace>,
    t2_limit: f64,
    q_limit: f64,
}

impl PySoftSensor {
    fn wrap(inner: SoftSensor) -> Self {
        let l = inner.limits();
        Self {
            inner,
            ws: Mutex::new(PredictWorkspace::default()),
            t2_limit: l.t2,
            q_limit: l.q,
        }
    }
}

#[pymethods]
impl PySoftSensor {
    /// Fit pipeline + PLS on raw spectra and references; `cv` attaches its RMSECV curve.
    #[staticmethod]
    #[pyo3(signature = (wavenumber_cm1, steps_json, x, y, n_components, *, algorithm="nipals", target_names, units, confidence=0.95, created_at="", description="", cv=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        wavenumber_cm1: &Bound<'_, PyAny>,
        steps_json: &str,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        n_components: usize,
        algorithm: &str,
        target_names: Vec<String>,
        units: Vec<String>,
        confidence: f64,
        created_at: &str,
        description: &str,
        cv: Option<PyRef<'_, PyCvResult>>,
    ) -> PyResult<Self> {
        let axis = vec1(wavenumber_cm1, "wavenumber_cm1")?;
        let steps = parse_steps(steps_json)?;
        let xm = mat2(x, "spectra")?;
        let (ym, _) = y_matrix(y)?;
        if target_names.len() != units.len() {
            return Err(crate::errors::to_py_err(CoreError::InvalidConfig(format!(
                "{} target names but {} units",
                target_names.len(),
                units.len()
            ))));
        }
        let opts = FitOptions {
            n_components,
            algorithm: check(PlsAlgorithm::parse(algorithm))?,
            targets: target_names
                .into_iter()
                .zip(units)
                .map(|(name, unit)| Target { name, unit })
                .collect(),
            confidence,
            created_at: created_at.to_string(),
            description: description.to_string(),
        };
        let cv_ref = cv.as_ref().map(|c| c.inner.clone());
        let inner = compute(py, || {
            SoftSensor::fit(&axis, &steps, xm.view(), ym.view(), opts, cv_ref.as_ref())
        })?;
        Ok(Self::wrap(inner))
    }

    /// Decode a JSON model document; `source` (the file name) prefixes errors.
    #[staticmethod]
    #[pyo3(signature = (text, source="<string>"))]
    fn from_json(py: Python<'_>, text: &str, source: &str) -> PyResult<Self> {
        let t = text.to_string();
        let s = source.to_string();
        Ok(Self::wrap(compute(py, || SoftSensor::from_json(&t, &s))?))
    }

    /// The JSON model document.
    fn to_json(&self) -> PyResult<String> {
        check(self.inner.to_json())
    }

    /// Predict one raw spectrum on the model axis (1-D float64).
    fn predict(&self, spectrum: &Bound<'_, PyAny>) -> PyResult<PyPrediction> {
        let arr = arr1(spectrum, "spectrum")?;
        let ro = arr.readonly();
        let v = ro.as_array();
        let owned;
        let s: &[f64] = match v.as_slice() {
            Some(s) => s,
            None => {
                owned = v.to_vec();
                &owned
            }
        };
        let p = match self.ws.try_lock() {
            Ok(mut ws) => self.inner.predict_with(s, &mut ws),
            Err(_) => self.inner.predict_with(s, &mut PredictWorkspace::default()),
        };
        let p = check(p)?;
        Ok(PyPrediction {
            value: p.values[0],
            values: p.values,
            t2: p.t2,
            q: p.q,
            t2_limit: self.t2_limit,
            q_limit: self.q_limit,
            status: p.status,
            reason: p.reason,
        })
    }

    /// First response of one spectrum, without diagnostics objects: (value, is_in_model).
    fn predict_value(&self, spectrum: &Bound<'_, PyAny>) -> PyResult<(f64, bool)> {
        let arr = arr1(spectrum, "spectrum")?;
        let ro = arr.readonly();
        let v = ro.as_array();
        let owned;
        let s: &[f64] = match v.as_slice() {
            Some(s) => s,
            None => {
                owned = v.to_vec();
                &owned
            }
        };
        let mut out = [0.0f64; 8];
        let m = self.inner.pls().n_targets().min(8);
        let r = match self.ws.try_lock() {
            Ok(mut ws) => self.inner.predict_values(s, &mut ws, &mut out[..m]),
            Err(_) => self
                .inner
                .predict_values(s, &mut PredictWorkspace::default(), &mut out[..m]),
        };
        match r {
            Ok((t2, q)) => Ok((out[0], t2 <= self.t2_limit && q <= self.q_limit)),
            Err(CoreError::Numerical(_)) => Ok((f64::NAN, false)),
            Err(e) => Err(crate::errors::to_py_err(e)),
        }
    }

    /// Predict every row of a 2-D batch (GIL released).
    fn predict_batch(
        &self,
        py: Python<'_>,
        spectra: &Bound<'_, PyAny>,
    ) -> PyResult<PyBatchPrediction> {
        let m = mat2(spectra, "spectra")?;
        let (values, t2, q, status) = compute(py, || self.inner.predict_batch(m.view()))?;
        Ok(PyBatchPrediction {
            values,
            t2,
            q,
            status,
        })
    }

    /// Model axis, cm⁻¹.
    #[getter]
    fn wavenumber_cm1<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.axis().to_vec().into_pyarray(py)
    }
    /// The fitted pipeline.
    #[getter]
    fn pipeline(&self) -> PyPipeline {
        PyPipeline::wrap(self.inner.pipeline().clone())
    }
    /// The PLS model.
    #[getter]
    fn pls(&self) -> PyPlsModel {
        PyPlsModel {
            inner: self.inner.pls().clone(),
            one_d: self.inner.pls().n_targets() == 1,
        }
    }
    #[getter]
    fn n_components(&self) -> usize {
        self.inner.pls().n_components()
    }
    #[getter]
    fn target_names(&self) -> Vec<String> {
        self.inner
            .targets()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }
    #[getter]
    fn units(&self) -> Vec<String> {
        self.inner
            .targets()
            .iter()
            .map(|t| t.unit.clone())
            .collect()
    }
    /// T² limit of the in-model flag.
    #[getter]
    fn t2_limit(&self) -> f64 {
        self.t2_limit
    }
    /// Q limit of the in-model flag.
    #[getter]
    fn q_limit(&self) -> f64 {
        self.q_limit
    }
    /// Method of the Q limit (`jackson_mudholkar` or `box`).
    #[getter]
    fn q_limit_method(&self) -> &'static str {
        self.inner.limits().q_method.name()
    }
    #[getter]
    fn confidence(&self) -> f64 {
        self.inner.confidence()
    }
    #[getter]
    fn rmsec(&self) -> Vec<f64> {
        self.inner.calibration().rmsec.clone()
    }
    #[getter]
    fn r2(&self) -> Vec<f64> {
        self.inner.calibration().r2.clone()
    }
    #[getter]
    fn created_at(&self) -> String {
        self.inner.created_at().to_string()
    }
    #[getter]
    fn description(&self) -> String {
        self.inner.description().to_string()
    }
    /// Steps with fitted state, as JSON.
    #[getter]
    fn steps_json(&self) -> String {
        steps_to_json(self.inner.pipeline().steps())
    }
    /// Limits at another confidence level stored in the model: (T², Q, Q method).
    fn limits_at(&self, confidence: f64) -> PyResult<(f64, f64, &'static str)> {
        let l = self
            .inner
            .diagnostics()
            .limits_at(confidence)
            .ok_or_else(|| {
                crate::errors::to_py_err(CoreError::InvalidParameter {
                    name: "confidence",
                    rule: "one of the stored levels (0.95, 0.99)",
                    value: confidence,
                })
            })?;
        Ok((l.t2, l.q, l.q_method.name()))
    }
    fn __repr__(&self) -> String {
        format!(
            "SoftSensor({} {} LV, {} points, targets {:?})",
            self.inner.pls().algorithm().name(),
            self.inner.pls().n_components(),
            self.inner.axis().len(),
            self.target_names()
        )
    }
}

/// Corrected estimate of the bias Kalman filter.
#[pyclass(name = "CorrectedEstimate", module = "edgectl._core", frozen)]
pub struct PyCorrectedEstimate {
    #[pyo3(get)]
    time_h: f64,
    #[pyo3(get)]
    value: f64,
    #[pyo3(get)]
    bias: f64,
    #[pyo3(get)]
    std: f64,
}

impl From<CorrectedEstimate> for PyCorrectedEstimate {
    fn from(e: CorrectedEstimate) -> Self {
        Self {
            time_h: e.time_h,
            value: e.value,
            bias: e.bias,
            std: e.std,
        }
    }
}

#[pymethods]
impl PyCorrectedEstimate {
    fn __repr__(&self) -> String {
        format!(
            "CorrectedEstimate(time_h={}, value={:.4}, bias={:.4}, std={:.4})",
            self.time_h, self.value, self.bias, self.std
        )
    }
}

/// What happened to a reference sample.
#[pyclass(name = "ReferenceOutcome", module = "edgectl._core", frozen)]
pub struct PyReferenceOutcome {
    #[pyo3(get)]
    accepted: bool,
    #[pyo3(get)]
    innovation: f64,
    #[pyo3(get)]
    normalized: f64,
    #[pyo3(get)]
    estimate_before: f64,
}

impl From<ReferenceOutcome> for PyReferenceOutcome {
    fn from(o: ReferenceOutcome) -> Self {
        Self {
            accepted: o.accepted,
            innovation: o.innovation,
            normalized: o.normalized,
            estimate_before: o.estimate_before,
        }
    }
}

#[pymethods]
impl PyReferenceOutcome {
    fn __repr__(&self) -> String {
        format!(
            "ReferenceOutcome(accepted={}, innovation={:.4}, normalized={:.3})",
            self.accepted, self.innovation, self.normalized
        )
    }
}

/// Two-state [concentration, bias] Kalman filter fed by soft-sensor predictions and at-line
/// references (times in hours).
#[pyclass(name = "BiasKalman", module = "edgectl._core")]
pub struct PyBiasKalman {
    inner: BiasKalman,
}

#[pymethods]
impl PyBiasKalman {
    #[new]
    #[pyo3(signature = (*, q_concentration=4.0, q_bias=0.05, r_prediction=1.69, r_reference=0.25, p0_bias=4.0, gate_sigma=6.0, max_consecutive_rejections=2, max_delay_h=24.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        q_concentration: f64,
        q_bias: f64,
        r_prediction: f64,
        r_reference: f64,
        p0_bias: f64,
        gate_sigma: f64,
        max_consecutive_rejections: usize,
        max_delay_h: f64,
    ) -> PyResult<Self> {
        let cfg = BiasKalmanConfig {
            q_concentration,
            q_bias,
            r_prediction,
            r_reference,
            p0_bias,
            gate_sigma,
            max_consecutive_rejections,
            max_delay_h,
        };
        Ok(Self {
            inner: check(BiasKalman::new(cfg))?,
        })
    }

    /// Assimilate a soft-sensor prediction made at `time_h`.
    fn update_prediction(&mut self, time_h: f64, value: f64) -> PyResult<PyCorrectedEstimate> {
        Ok(check(self.inner.update_prediction(time_h, value))?.into())
    }

    /// Assimilate a reference value of a sample drawn at `sampled_h` (may be in the past).
    fn update_reference(&mut self, sampled_h: f64, value: f64) -> PyResult<PyReferenceOutcome> {
        Ok(check(self.inner.update_reference(sampled_h, value))?.into())
    }

    /// Current estimate, or None before the first prediction.
    #[getter]
    fn estimate(&self) -> Option<PyCorrectedEstimate> {
        self.inner.estimate().map(Into::into)
    }

    /// Estimate propagated to `time_h` (variance grows, value held).
    fn estimate_at(&self, time_h: f64) -> Option<PyCorrectedEstimate> {
        self.inner.estimate_at(time_h).map(Into::into)
    }

    /// The filter's state as JSON (estimate, covariance, history for late references).
    fn state_json(&self) -> String {
        self.inner.state_json()
    }

    /// Restore a state written by `state_json` (this filter's tuning is kept).
    fn restore_state_json(&mut self, json: &str) -> PyResult<()> {
        check(self.inner.restore_state_json(json))
    }
}

/// Quantile of the F distribution F(alpha; d1, d2).
#[pyfunction]
fn f_quantile(alpha: f64, d1: f64, d2: f64) -> PyResult<f64> {
    check(core::f_quantile(alpha, d1, d2))
}

/// Quantile of the chi-square distribution χ²(alpha; dof), real dof > 0.
#[pyfunction]
fn chi2_quantile(alpha: f64, dof: f64) -> PyResult<f64> {
    check(core::chi2_quantile(alpha, dof))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPipeline>()?;
    m.add_class::<PyPlsModel>()?;
    m.add_class::<PyCvResult>()?;
    m.add_class::<PyPrediction>()?;
    m.add_class::<PyBatchPrediction>()?;
    m.add_class::<PySoftSensor>()?;
    m.add_class::<PyCorrectedEstimate>()?;
    m.add_class::<PyReferenceOutcome>()?;
    m.add_class::<PyBiasKalman>()?;
    m.add_function(wrap_pyfunction!(savgol_filter, m)?)?;
    m.add_function(wrap_pyfunction!(snv, m)?)?;
    m.add_function(wrap_pyfunction!(asls_baseline, m)?)?;
    m.add_function(wrap_pyfunction!(resample, m)?)?;
    m.add_function(wrap_pyfunction!(cross_validate, m)?)?;
    m.add_function(wrap_pyfunction!(f_quantile, m)?)?;
    m.add_function(wrap_pyfunction!(chi2_quantile, m)?)?;
    m.add("MODEL_FORMAT", core::MODEL_FORMAT)?;
    m.add("MODEL_FORMAT_VERSION", core::MODEL_FORMAT_VERSION)?;
    Ok(())
}
