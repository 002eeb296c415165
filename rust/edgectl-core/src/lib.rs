//! edgectl-core: the pure-Rust heart of the edgectl bench bioreactor controller.
//!
//! - [`control`]: PID family, split range, DO cascade, pulse outputs, relay autotune, loop bank.
//! - [`spectra`]: spectral soft sensor (preprocessing, PLS, diagnostics, model files, correction).
//! - [`sim`]: fed-batch bioreactor plant simulator with sensors, actuators and faults.
//! - [`engine`]: the scan cycle (process image in, outputs out).
//!
//! Nothing here opens a port, reads a clock or sleeps: every step takes the measured `dt`
//! from its caller, so runs are replayable bit for bit.

pub mod control;
pub mod engine;
pub mod error;
pub mod sim;
pub mod spectra;

pub use error::CoreError;
