//! PyO3 bindings of `edgectl-core`, built as the private module `edgectl._core`.
//!
//! Thin wrappers only: argument conversion, error mapping (`errors.rs`) and GIL release for
//! spectra-sized work. Each area registers its classes from its own file.

use pyo3::prelude::*;

mod control;
mod errors;
mod sim;
mod spectra;

/// The compiled core of edgectl. Users import `edgectl`, not this module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    control::register(m)?;
    spectra::register(m)?;
    sim::register(m)?;
    Ok(())
}
