//! edgectl-core: the pure-Rust heart of the edgectl bench bioreactor controller.
//!
//! - [`control`]: PID family, split range, DO cascade, pulse outputs, relay autotune, loop bank.
//! - [`spectra`]: spectral soft sensor (preprocessing, PLS, diagnostics, model files, correction).
//! - [`sim`]: fed-batch bioreactor plant simulator with sensors, actuators and faults.
//!
//! The scan cycle's Rust part is [`control::LoopBank`]: every PID, split-range and cascade block
//! of a reactor stepped in one call per scan (array in, array out); the runtime
//! (`edgectl.runtime`, Python) reads the process image, runs alarms, interlocks and the recipe
//! around it and writes the outputs.
//!
//! Nothing here opens a port, reads a clock or sleeps: every step takes the measured `dt`
//! from its caller, so runs are replayable bit for bit.

pub mod control;
pub mod error;
pub mod sim;
pub mod spectra;

pub use error::CoreError;
