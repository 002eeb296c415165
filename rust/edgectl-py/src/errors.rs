//! The one place where core errors become Python exceptions of `edgectl.errors`.

use edgectl_core::CoreError;
use pyo3::marker::Ungil;
use pyo3::prelude::*;

pyo3::import_exception!(edgectl.errors, ConfigError);
pyo3::import_exception!(edgectl.errors, EdgectlError);
pyo3::import_exception!(edgectl.errors, InvalidInputError);
pyo3::import_exception!(edgectl.errors, ModelFileError);
pyo3::import_exception!(edgectl.errors, NumericalError);
pyo3::import_exception!(edgectl.errors, SpectrumShapeError);

/// Map a core error to the matching `edgectl.errors` exception, keeping the core's message.
pub(crate) fn to_py_err(e: CoreError) -> PyErr {
    let msg = e.to_string();
    match e {
        CoreError::ShapeMismatch { .. } | CoreError::AxisMismatch(_) => {
            SpectrumShapeError::new_err(msg)
        }
        CoreError::InvalidInput(_) => InvalidInputError::new_err(msg),
        CoreError::InvalidParameter { .. } | CoreError::NonFinite { .. } => {
            InvalidInputError::new_err(msg)
        }
        CoreError::InvalidConfig(_) => ConfigError::new_err(msg),
        CoreError::ModelFormat(_) => ModelFileError::new_err(msg),
        CoreError::Numerical(_) => NumericalError::new_err(msg),
    }
}

/// Run `f` with the GIL released; map core errors to edgectl exceptions.
/// Use for spectra-sized work; a PID update is cheaper than releasing the GIL.
#[allow(dead_code)]
pub(crate) fn compute<T: Ungil + Send>(
    py: Python<'_>,
    f: impl Ungil + Send + FnOnce() -> Result<T, CoreError>,
) -> PyResult<T> {
    py.detach(f).map_err(to_py_err)
}

/// Map a core result without releasing the GIL.
#[allow(dead_code)]
pub(crate) fn check<T>(r: Result<T, CoreError>) -> PyResult<T> {
    r.map_err(to_py_err)
}

/// Validate a time step through the core (exposed for the Python layer's own checks).
#[pyfunction]
fn check_dt(dt_s: f64) -> PyResult<()> {
    check(edgectl_core::error::check_dt(dt_s))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_dt, m)?)?;
    Ok(())
}
