//! Spectral soft sensor (issue 3): preprocessing, PLS, diagnostics, model files, online correction.
