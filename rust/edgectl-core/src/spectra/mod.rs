//! Spectral soft sensor (issue 3): preprocessing, PLS, diagnostics, model files, online correction.
//!
//! The chain follows `shared/reference/softsensor.md` §0: despike → region selection → baseline
//! → Savitzky–Golay smoothing/derivative → scatter correction → centring → PLS → T²/Q check →
//! online correction. Every block is a pure function of its inputs and its fitted state; nothing
//! here reads a clock or a file (the caller passes times and file contents).
//!
//! - [`savgol`]: Savitzky–Golay taps and edge matrices (scipy `savgol_filter` compatible edges).
//! - [`baseline`]: AsLS (Whittaker smoother with asymmetric weights), banded solver.
//! - [`preprocess`]: despiking, region selection, resampling, SNV, MSC, centring, the [`Pipeline`].
//! - [`pls`]: PLS regression by NIPALS (PLS1/PLS2, scikit-learn compatible) and SIMPLS.
//! - [`cv`]: cross-validation (k-fold, blocks, leave-one-out, groups) and the RMSECV curve.
//! - [`diagnostics`]: Hotelling T², Q residuals and their control limits.
//! - [`model`]: [`SoftSensor`] = axis + pipeline + PLS + limits, and its JSON model file.
//! - [`correction`]: bias-tracking Kalman filter fed by at-line reference samples.

// `!(x > 0.0)` is deliberate throughout: it is also true for NaN, which must be rejected.
// Index loops over several parallel arrays read more plainly than zipped iterators here.
#![allow(clippy::neg_cmp_op_on_partial_ord, clippy::needless_range_loop)]

pub mod baseline;
pub mod correction;
pub mod cv;
pub mod diagnostics;
pub(crate) mod kernels;
pub mod model;
pub mod pls;
pub mod preprocess;
pub mod savgol;

pub use baseline::AsLs;

pub use correction::{BiasKalman, BiasKalmanConfig, CorrectedEstimate, ReferenceOutcome};
pub use cv::{choose_components, cross_validate, CvResult, CvScheme};
pub use diagnostics::{
    chi2_quantile, f_quantile, normal_quantile, Diagnostics, Limits, QLimitMethod,
};
pub use model::{
    FitOptions, PredictWorkspace, Prediction, SoftSensor, SpectrumStatus, Target, MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
};
pub use pls::{PlsAlgorithm, PlsModel};
pub use preprocess::{resample_linear, Pipeline, Step, Workspace};
pub use savgol::{EdgeMode, SavitzkyGolay};

/// Error unless every value is finite (used by the bindings' standalone filters).
pub fn ensure_finite(x: &[f64]) -> crate::error::CoreResult<()> {
    if let Some((j, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(crate::error::CoreError::InvalidInput(format!(
            "value {j} is not finite ({v})"
        )));
    }
    Ok(())
}
