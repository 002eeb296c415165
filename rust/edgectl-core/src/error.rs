//! The one error type of the core. Bad input returns a `CoreError`; the core never panics on it.

/// Errors returned by the core for bad input or impossible requests.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// An array or spectrum has the wrong length.
    #[error("{what} has {got} points, expected {expected}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A parameter is outside its valid range.
    #[error("{name} must be {rule}, got {value}")]
    InvalidParameter {
        name: &'static str,
        rule: &'static str,
        value: f64,
    },
    /// A measurement or input is not a finite number.
    #[error("{name} is not finite (got {value})")]
    NonFinite { name: &'static str, value: f64 },
    /// A configuration that is internally inconsistent (names the field and the reason).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A model or state file could not be decoded.
    #[error("bad model file: {0}")]
    ModelFormat(String),
    /// A numerical failure (singular matrix, no convergence).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// A spectrum's wavenumber axis does not match the model axis (names both).
    #[error("axis mismatch: {0}")]
    AxisMismatch(String),
    /// Unusable input data with its location (row, column, key).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// Result alias of the core.
pub type CoreResult<T> = Result<T, CoreError>;

/// Check that `dt_s` is a usable time step: finite and strictly positive.
pub fn check_dt(dt_s: f64) -> CoreResult<()> {
    if !dt_s.is_finite() {
        return Err(CoreError::NonFinite {
            name: "dt_s",
            value: dt_s,
        });
    }
    if dt_s <= 0.0 {
        return Err(CoreError::InvalidParameter {
            name: "dt_s",
            rule: "> 0",
            value: dt_s,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dt_checks() {
        assert!(check_dt(0.1).is_ok());
        assert!(matches!(
            check_dt(0.0),
            Err(CoreError::InvalidParameter { .. })
        ));
        assert!(matches!(
            check_dt(-1.0),
            Err(CoreError::InvalidParameter { .. })
        ));
        assert!(matches!(
            check_dt(f64::NAN),
            Err(CoreError::NonFinite { .. })
        ));
        assert!(matches!(
            check_dt(f64::INFINITY),
            Err(CoreError::NonFinite { .. })
        ));
        let msg = check_dt(-1.0).unwrap_err().to_string();
        assert_eq!(msg, "dt_s must be > 0, got -1");
    }
}
