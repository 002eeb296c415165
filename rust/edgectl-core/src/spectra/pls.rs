//! Partial least squares regression: NIPALS (PLS1 and PLS2) and SIMPLS.
//!
//! NIPALS follows Wold, Sjöström & Eriksson, *Chemom. Intell. Lab. Syst.* 58 (2001) 109, in the
//! exact form of scikit-learn's `PLSRegression(scale=False)` (power iteration on XᵀY with the same
//! start vector, tolerance 1e-6 on the squared weight change, at most 500 iterations, the same
//! sign convention and deflation), so predictions agree with scikit-learn to rounding error for
//! PLS1 and PLS2. For PLS1 the power iteration converges in one step (reference §2):
//!
//! ```text
//! X0 = X − 1·x̄ᵀ,  y0 = y − ȳ
//! for a = 1..A:  w_a = X_{a−1}ᵀy_{a−1}/‖·‖;  t_a = X_{a−1}w_a;  p_a = X_{a−1}ᵀt_a/(t_aᵀt_a)
//!                q_a = y_{a−1}ᵀt_a/(t_aᵀt_a);  X_a = X_{a−1} − t_a p_aᵀ;  y_a = y_{a−1} − q_a t_a
//! R = W(PᵀW)⁻¹,   B = R Qᵀ,   ŷ = (x − x̄)ᵀB + ȳ
//! ```
//!
//! SIMPLS (de Jong, *Chemom. Intell. Lab. Syst.* 18 (1993) 251) deflates the cross-covariance
//! S = X0ᵀY0 instead of X; for one response it gives the same predictions as NIPALS. Its scores
//! are normalised to unit length.
//!
//! The components of an A-component model are nested: the first `a` columns of W, P, Q and R
//! are the `a`-component model, which cross-validation uses to get every LV count from one fit.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::kernels::{
    axpy, centered_rows_par, check_finite, dot, dot_centered, gram_pass, solve_dense,
};
use crate::error::{CoreError, CoreResult};

/// PLS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlsAlgorithm {
    /// NIPALS with X deflation, scikit-learn compatible (PLS1 and PLS2).
    #[default]
    Nipals,
    /// SIMPLS (de Jong 1993), deflating the cross-covariance.
    Simpls,
}

impl PlsAlgorithm {
    /// Name used in model files (`"nipals"`, `"simpls"`).
    pub fn name(self) -> &'static str {
        match self {
            PlsAlgorithm::Nipals => "nipals",
            PlsAlgorithm::Simpls => "simpls",
        }
    }
    /// Parse `"nipals"` or `"simpls"`.
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s {
            "nipals" => Ok(Self::Nipals),
            "simpls" => Ok(Self::Simpls),
            o => Err(CoreError::InvalidConfig(format!(
                "pls algorithm must be nipals or simpls, got {o:?}"
            ))),
        }
    }
}

/// A fitted PLS model. Matrices are stored component-major (one row of `n_features` values per
/// latent variable) so that scores and predictions are contiguous dot products.
#[derive(Debug, Clone, PartialEq)]
pub struct PlsModel {
    pub(crate) algorithm: PlsAlgorithm,
    pub(crate) n_components: usize,
    pub(crate) n_features: usize,
    pub(crate) n_targets: usize,
    pub(crate) n_samples: usize,
    pub(crate) x_mean: Vec<f64>,
    pub(crate) y_mean: Vec<f64>,
    /// A × p: x weights (NIPALS w; SIMPLS r before normalisation of t).
    pub(crate) x_weights: Vec<f64>,
    /// A × p: x loadings p_a.
    pub(crate) x_loadings: Vec<f64>,
    /// A × p: rotations R (scores t = (x − x̄)·R).
    pub(crate) x_rotations: Vec<f64>,
    /// m × A: y loadings q.
    pub(crate) y_loadings: Vec<f64>,
    /// m × p: regression coefficients B of the full model (ŷ = (x − x̄)·B + ȳ).
    pub(crate) coef: Vec<f64>,
    /// A: variance (ddof 1) of the calibration scores.
    pub(crate) score_var: Vec<f64>,
    /// A × A: P Pᵀ (Gram matrix of the x loadings), for the fast Q.
    pub(crate) loading_gram: Vec<f64>,
}

const MAX_ITER: usize = 500;
const TOL: f64 = 1e-6;

fn to_row_major(x: ArrayView2<'_, f64>) -> Vec<f64> {
    match x.as_slice() {
        Some(s) => s.to_vec(),
        None => x.iter().copied().collect(),
    }
}

/// out = Xᵀv for row-major X (n × p).
fn xt_v(x: &[f64], n: usize, p: usize, v: &[f64], out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    for i in 0..n {
        if v[i] != 0.0 {
            axpy(v[i], &x[i * p..(i + 1) * p], out);
        }
    }
}

/// out = X·w for row-major X (n × p).
fn x_w(x: &[f64], n: usize, p: usize, w: &[f64], out: &mut [f64]) {
    for i in 0..n {
        out[i] = dot(&x[i * p..(i + 1) * p], w);
    }
}

impl PlsModel {
    /// Fit `n_components` latent variables on `x` (n × p spectra) and `y` (n × m responses).
    /// Requires n ≥ 2, 1 ≤ A ≤ min(n − 1, p), finite data.
    pub fn fit(
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        n_components: usize,
        algorithm: PlsAlgorithm,
    ) -> CoreResult<Self> {
        let (n, p) = x.dim();
        let m = y.ncols();
        if y.nrows() != n {
            return Err(CoreError::ShapeMismatch {
                what: "responses (rows)",
                expected: n,
                got: y.nrows(),
            });
        }
        if n < 2 || p == 0 || m == 0 {
            return Err(CoreError::InvalidInput(format!(
                "PLS needs at least 2 samples, 1 variable and 1 response, got {n} × {p} and {m} responses"
            )));
        }
        let max_a = (n - 1).min(p);
        if n_components == 0 || n_components > max_a {
            return Err(CoreError::InvalidParameter {
                name: "n_components",
                rule: "between 1 and min(n_samples − 1, n_features)",
                value: n_components as f64,
            });
        }
        let mut xs = to_row_major(x);
        let mut ys = to_row_major(y);
        let mut x_mean = vec![0.0; p];
        for i in 0..n {
            axpy(1.0, &xs[i * p..(i + 1) * p], &mut x_mean);
        }
        // A NaN or infinity anywhere in a column makes its sum non-finite, so the spectra are
        // scanned for the offending value only then (one pass over X saved).
        if x_mean.iter().any(|v| !v.is_finite()) {
            check_finite("calibration spectra", &xs)?;
            return Err(CoreError::Numerical(
                "calibration spectra overflow: a column sum is not finite".into(),
            ));
        }
        check_finite("calibration responses", &ys)?;
        x_mean.iter_mut().for_each(|v| *v /= n as f64);
        let mut y_mean = vec![0.0; m];
        for i in 0..n {
            for t in 0..m {
                y_mean[t] += ys[i * m + t];
            }
        }
        y_mean.iter_mut().for_each(|v| *v /= n as f64);
        for i in 0..n {
            for (v, mu) in xs[i * p..(i + 1) * p].iter_mut().zip(&x_mean) {
                *v -= mu;
            }
            for t in 0..m {
                ys[i * m + t] -= y_mean[t];
            }
        }
        let mut model = Self {
            algorithm,
            n_components,
            n_features: p,
            n_targets: m,
            n_samples: n,
            x_mean,
            y_mean,
            x_weights: Vec::with_capacity(n_components * p),
            x_loadings: Vec::with_capacity(n_components * p),
            x_rotations: Vec::new(),
            y_loadings: vec![0.0; m * n_components],
            coef: vec![0.0; m * p],
            score_var: Vec::with_capacity(n_components),
            loading_gram: Vec::new(),
        };
        match algorithm {
            PlsAlgorithm::Nipals => model.fit_nipals(&mut xs, &mut ys, n, p, m)?,
            PlsAlgorithm::Simpls => model.fit_simpls(&xs, &ys, n, p, m)?,
        }
        model.finish()?;
        Ok(model)
    }

    fn fit_nipals(
        &mut self,
        xk: &mut [f64],
        yk: &mut [f64],
        n: usize,
        p: usize,
        m: usize,
    ) -> CoreResult<()> {
        let eps = f64::EPSILON;
        let a_tot = self.n_components;
        let mut w = vec![0.0; p];
        let mut w_old = vec![0.0; p];
        let mut t = vec![0.0; n];
        let mut y_score = vec![0.0; n];
        let mut c = vec![0.0; m];
        let mut pl = vec![0.0; p];
        for a in 0..a_tot {
            // Columns of the residual Y that are all ~0 are set to exactly 0 (scikit-learn).
            for col in 0..m {
                if (0..n).all(|i| yk[i * m + col].abs() < 10.0 * eps) {
                    (0..n).for_each(|i| yk[i * m + col] = 0.0);
                }
            }
            let start = (0..m).find(|&col| (0..n).any(|i| yk[i * m + col].abs() > eps));
            let Some(start) = start else {
                return Err(CoreError::Numerical(format!(
                    "response residual is constant after {a} latent variables; use fewer components"
                )));
            };
            (0..n).for_each(|i| y_score[i] = yk[i * m + start]);
            let mut first = true;
            for _ in 0..MAX_ITER {
                let yy = dot(&y_score, &y_score);
                xt_v(xk, n, p, &y_score, &mut w);
                w.iter_mut().for_each(|v| *v /= yy);
                let norm = dot(&w, &w).sqrt() + eps;
                w.iter_mut().for_each(|v| *v /= norm);
                x_w(xk, n, p, &w, &mut t);
                let tt = dot(&t, &t);
                for (col, cv) in c.iter_mut().enumerate() {
                    *cv = (0..n).map(|i| yk[i * m + col] * t[i]).sum::<f64>() / tt;
                }
                let cc = dot(&c, &c) + eps;
                for i in 0..n {
                    y_score[i] = dot(&yk[i * m..(i + 1) * m], &c) / cc;
                }
                let diff: f64 = if first {
                    f64::INFINITY
                } else {
                    w.iter().zip(&w_old).map(|(a, b)| (a - b) * (a - b)).sum()
                };
                if diff < TOL || m == 1 {
                    break;
                }
                first = false;
                w_old.copy_from_slice(&w);
            }
            // Sign: the largest |w| entry positive (first occurrence, as numpy argmax).
            let mut imax = 0;
            for (j, v) in w.iter().enumerate() {
                if v.abs() > w[imax].abs() {
                    imax = j;
                }
            }
            if w[imax] < 0.0 {
                w.iter_mut().for_each(|v| *v = -*v);
                c.iter_mut().for_each(|v| *v = -*v);
            }
            x_w(xk, n, p, &w, &mut t);
            let tt = dot(&t, &t);
            if !(tt > 0.0) {
                return Err(CoreError::Numerical(format!(
                    "x scores are null at latent variable {}: the spectra have rank {a}",
                    a + 1
                )));
            }
            xt_v(xk, n, p, &t, &mut pl);
            pl.iter_mut().for_each(|v| *v /= tt);
            for i in 0..n {
                axpy(-t[i], &pl, &mut xk[i * p..(i + 1) * p]);
            }
            for col in 0..m {
                let q = (0..n).map(|i| t[i] * yk[i * m + col]).sum::<f64>() / tt;
                self.y_loadings[col * a_tot + a] = q;
                for i in 0..n {
                    yk[i * m + col] -= t[i] * q;
                }
            }
            let mean_t = t.iter().sum::<f64>() / n as f64;
            self.score_var
                .push(t.iter().map(|v| (v - mean_t).powi(2)).sum::<f64>() / (n - 1) as f64);
            self.x_weights.extend_from_slice(&w);
            self.x_loadings.extend_from_slice(&pl);
        }
        // R = W (PᵀW)⁻¹.
        let a = a_tot;
        let mut ptw = vec![0.0; a * a];
        for i in 0..a {
            for j in 0..a {
                ptw[i * a + j] = dot(
                    &self.x_loadings[i * p..(i + 1) * p],
                    &self.x_weights[j * p..(j + 1) * p],
                );
            }
        }
        let mut eye = vec![0.0; a * a];
        (0..a).for_each(|i| eye[i * a + i] = 1.0);
        let inv = solve_dense(&ptw, &eye, a, a)?;
        let mut r = vec![0.0; a * p];
        for j in 0..a {
            for i in 0..a {
                let f = inv[i * a + j];
                if f != 0.0 {
                    axpy(
                        f,
                        &self.x_weights[i * p..(i + 1) * p],
                        &mut r[j * p..(j + 1) * p],
                    );
                }
            }
        }
        self.x_rotations = r;
        Ok(())
    }

    fn fit_simpls(
        &mut self,
        x0: &[f64],
        y0: &[f64],
        n: usize,
        p: usize,
        m: usize,
    ) -> CoreResult<()> {
        let a_tot = self.n_components;
        // S = X0ᵀY0 stored m × p (one row per response).
        let mut s = vec![0.0; m * p];
        let mut col = vec![0.0; n];
        for tgt in 0..m {
            (0..n).for_each(|i| col[i] = y0[i * m + tgt]);
            xt_v(x0, n, p, &col, &mut s[tgt * p..(tgt + 1) * p]);
        }
        let mut v_basis: Vec<f64> = Vec::with_capacity(a_tot * p);
        let mut r = vec![0.0; p];
        let mut t = vec![0.0; n];
        let mut pl = vec![0.0; p];
        let mut v = vec![0.0; p];
        let mut rot = Vec::with_capacity(a_tot * p);
        for a in 0..a_tot {
            // r = S q, q = dominant eigenvector of SᵀS (m × m; with one response q = 1).
            let q = if m == 1 {
                Vec::new()
            } else {
                let mut sts = vec![0.0; m * m];
                for i in 0..m {
                    for j in 0..m {
                        sts[i * m + j] = dot(&s[i * p..(i + 1) * p], &s[j * p..(j + 1) * p]);
                    }
                }
                dominant_eigenvector(&sts, m)
            };
            if m == 1 {
                r.copy_from_slice(&s[..p]);
            } else {
                r.iter_mut().for_each(|v| *v = 0.0);
                for (tgt, qv) in q.iter().enumerate() {
                    axpy(*qv, &s[tgt * p..(tgt + 1) * p], &mut r);
                }
            }
            let mut imax = 0;
            for (j, v) in r.iter().enumerate() {
                if v.abs() > r[imax].abs() {
                    imax = j;
                }
            }
            if r[imax] < 0.0 {
                r.iter_mut().for_each(|v| *v = -*v);
            }
            // t = X0 r and X0ᵀt in one pass; the loadings are X0ᵀt of the normalised t.
            gram_pass(x0, n, p, &r, &mut t, &mut pl);
            let norm_t = dot(&t, &t).sqrt();
            if !(norm_t > 0.0) || !norm_t.is_finite() {
                return Err(CoreError::Numerical(format!(
                    "x scores are null at latent variable {}: the spectra have rank {a}",
                    a + 1
                )));
            }
            t.iter_mut().for_each(|v| *v /= norm_t);
            r.iter_mut().for_each(|v| *v /= norm_t);
            pl.iter_mut().for_each(|v| *v /= norm_t);
            for tgt in 0..m {
                self.y_loadings[tgt * a_tot + a] = (0..n).map(|i| y0[i * m + tgt] * t[i]).sum();
            }
            // v = p orthogonalised against the previous basis (twice, for stability).
            v.copy_from_slice(&pl);
            for _ in 0..2 {
                for k in 0..a {
                    let vk = &v_basis[k * p..(k + 1) * p];
                    let proj = dot(vk, &v);
                    axpy(-proj, vk, &mut v);
                }
            }
            let nv = dot(&v, &v).sqrt();
            if !(nv > 0.0) {
                return Err(CoreError::Numerical(format!(
                    "SIMPLS basis degenerate at latent variable {}",
                    a + 1
                )));
            }
            v.iter_mut().for_each(|e| *e /= nv);
            v_basis.extend_from_slice(&v);
            // S ← (I − VVᵀ)S against the whole basis, not only the newest v: in exact
            // arithmetic the older projections are already zero, in floating point they keep
            // the rounding of earlier components from building up (O(a·p) per component).
            for tgt in 0..m {
                let row = &mut s[tgt * p..(tgt + 1) * p];
                for k in 0..=a {
                    let vk = &v_basis[k * p..(k + 1) * p];
                    let proj = dot(vk, row);
                    axpy(-proj, vk, row);
                }
            }
            let mean_t = t.iter().sum::<f64>() / n as f64;
            self.score_var
                .push(t.iter().map(|e| (e - mean_t).powi(2)).sum::<f64>() / (n - 1) as f64);
            self.x_weights.extend_from_slice(&r);
            rot.extend_from_slice(&r);
            self.x_loadings.extend_from_slice(&pl);
        }
        self.x_rotations = rot;
        Ok(())
    }

    /// B = R Qᵀ for the full model.
    fn finish(&mut self) -> CoreResult<()> {
        self.coef = self.coef_for(self.n_components)?;
        let (a, p) = (self.n_components, self.n_features);
        self.loading_gram = vec![0.0; a * a];
        for i in 0..a {
            for j in 0..a {
                self.loading_gram[i * a + j] = dot(
                    &self.x_loadings[i * p..(i + 1) * p],
                    &self.x_loadings[j * p..(j + 1) * p],
                );
            }
        }
        check_finite("PLS coefficients", &self.coef)?;
        Ok(())
    }

    /// Coefficients (m × p, row-major) of the nested model with `a` latent variables.
    pub fn coef_for(&self, a: usize) -> CoreResult<Vec<f64>> {
        if a == 0 || a > self.n_components {
            return Err(CoreError::InvalidParameter {
                name: "n_components",
                rule: "between 1 and the fitted count",
                value: a as f64,
            });
        }
        let (p, m, at) = (self.n_features, self.n_targets, self.n_components);
        let mut coef = vec![0.0; m * p];
        for tgt in 0..m {
            for k in 0..a {
                let q = self.y_loadings[tgt * at + k];
                axpy(
                    q,
                    &self.x_rotations[k * p..(k + 1) * p],
                    &mut coef[tgt * p..(tgt + 1) * p],
                );
            }
        }
        Ok(coef)
    }

    /// Rebuild a model from stored arrays (used by model files); checks every shape.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        algorithm: PlsAlgorithm,
        n_samples: usize,
        x_mean: Vec<f64>,
        y_mean: Vec<f64>,
        x_weights: Vec<f64>,
        x_loadings: Vec<f64>,
        x_rotations: Vec<f64>,
        y_loadings: Vec<f64>,
        score_var: Vec<f64>,
    ) -> CoreResult<Self> {
        let p = x_mean.len();
        let m = y_mean.len();
        let a = score_var.len();
        let bad = |what: &str, got: usize, exp: usize| {
            CoreError::ModelFormat(format!("pls.{what} has {got} values, expected {exp}"))
        };
        if p == 0 || m == 0 || a == 0 {
            return Err(CoreError::ModelFormat("pls arrays are empty".into()));
        }
        for (what, v, exp) in [
            ("x_weights", &x_weights, a * p),
            ("x_loadings", &x_loadings, a * p),
            ("x_rotations", &x_rotations, a * p),
            ("y_loadings", &y_loadings, m * a),
        ] {
            if v.len() != exp {
                return Err(bad(what, v.len(), exp));
            }
        }
        for (what, v) in [
            ("x_mean", &x_mean),
            ("y_mean", &y_mean),
            ("x_weights", &x_weights),
            ("x_loadings", &x_loadings),
            ("x_rotations", &x_rotations),
            ("y_loadings", &y_loadings),
            ("score_variance", &score_var),
        ] {
            if v.iter().any(|e| !e.is_finite()) {
                return Err(CoreError::ModelFormat(format!(
                    "pls.{what} has non-finite values"
                )));
            }
        }
        if score_var.iter().any(|v| *v <= 0.0) {
            return Err(CoreError::ModelFormat(
                "pls.score_variance must be > 0".into(),
            ));
        }
        let mut model = Self {
            algorithm,
            n_components: a,
            n_features: p,
            n_targets: m,
            n_samples,
            x_mean,
            y_mean,
            x_weights,
            x_loadings,
            x_rotations,
            y_loadings,
            coef: Vec::new(),
            score_var,
            loading_gram: Vec::new(),
        };
        model.finish()?;
        Ok(model)
    }

    /// Algorithm used for the fit.
    pub fn algorithm(&self) -> PlsAlgorithm {
        self.algorithm
    }
    /// Number of latent variables.
    pub fn n_components(&self) -> usize {
        self.n_components
    }
    /// Number of spectral variables.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// Number of responses.
    pub fn n_targets(&self) -> usize {
        self.n_targets
    }
    /// Number of calibration samples.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }
    /// Calibration mean of x.
    pub fn x_mean(&self) -> &[f64] {
        &self.x_mean
    }
    /// Calibration mean of y.
    pub fn y_mean(&self) -> &[f64] {
        &self.y_mean
    }
    /// Score variances (ddof 1), one per latent variable.
    pub fn score_variance(&self) -> &[f64] {
        &self.score_var
    }
    /// Matrices as (rows, cols, row-major data): weights/loadings/rotations are A × p,
    /// y loadings m × A, coefficients m × p.
    pub fn x_weights(&self) -> Array2<f64> {
        mat(self.n_components, self.n_features, &self.x_weights)
    }
    /// X loadings, A × p.
    pub fn x_loadings(&self) -> Array2<f64> {
        mat(self.n_components, self.n_features, &self.x_loadings)
    }
    /// Rotations R, A × p.
    pub fn x_rotations(&self) -> Array2<f64> {
        mat(self.n_components, self.n_features, &self.x_rotations)
    }
    /// Y loadings, m × A.
    pub fn y_loadings(&self) -> Array2<f64> {
        mat(self.n_targets, self.n_components, &self.y_loadings)
    }
    /// Coefficients B, m × p (scikit-learn's `coef_`).
    pub fn coef(&self) -> Array2<f64> {
        mat(self.n_targets, self.n_features, &self.coef)
    }
    pub(crate) fn coef_slice(&self) -> &[f64] {
        &self.coef
    }

    /// Predict the responses of one preprocessed spectrum into `out` (m values).
    #[inline]
    pub fn predict_into(&self, x: &[f64], out: &mut [f64]) -> CoreResult<()> {
        if x.len() != self.n_features {
            return Err(CoreError::ShapeMismatch {
                what: "preprocessed spectrum",
                expected: self.n_features,
                got: x.len(),
            });
        }
        let p = self.n_features;
        for (t, o) in out.iter_mut().enumerate().take(self.n_targets) {
            *o = dot_centered(x, &self.x_mean, &self.coef[t * p..(t + 1) * p]) + self.y_mean[t];
        }
        Ok(())
    }

    /// Predict `n` row-major spectra (`x` of n·p values) with `a` latent variables into `out`
    /// (n·m values, row-major).
    pub fn predict_rows_into(
        &self,
        x: &[f64],
        n: usize,
        p: usize,
        a: usize,
        out: &mut [f64],
    ) -> CoreResult<()> {
        if p != self.n_features {
            return Err(CoreError::ShapeMismatch {
                what: "preprocessed spectra (columns)",
                expected: self.n_features,
                got: p,
            });
        }
        let m = self.n_targets;
        if x.len() != n * p || out.len() != n * m {
            return Err(CoreError::ShapeMismatch {
                what: "prediction buffers",
                expected: n * p,
                got: x.len(),
            });
        }
        let owned;
        let coef: &[f64] = if a == self.n_components {
            &self.coef
        } else {
            owned = self.coef_for(a)?;
            &owned
        };
        if m == 1 {
            centered_rows_par(x, n, p, &self.x_mean, &coef[..p], self.y_mean[0], out);
            return Ok(());
        }
        for i in 0..n {
            let row = &x[i * p..(i + 1) * p];
            for t in 0..m {
                out[i * m + t] =
                    dot_centered(row, &self.x_mean, &coef[t * p..(t + 1) * p]) + self.y_mean[t];
            }
        }
        Ok(())
    }

    /// Predict every row of `x` (n × p); returns n × m.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> CoreResult<Array2<f64>> {
        self.predict_with(x, self.n_components)
    }

    /// Predictions of the nested model with `a` latent variables.
    pub fn predict_with(&self, x: ArrayView2<'_, f64>, a: usize) -> CoreResult<Array2<f64>> {
        if x.ncols() != self.n_features {
            return Err(CoreError::ShapeMismatch {
                what: "preprocessed spectra (columns)",
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        let p = self.n_features;
        let m = self.n_targets;
        let mut out = Array2::<f64>::zeros((x.nrows(), m));
        if let (Some(xs), Some(o)) = (x.as_slice(), out.as_slice_mut()) {
            self.predict_rows_into(xs, x.nrows(), p, a, o)?;
            return Ok(out);
        }
        let coef = if a == self.n_components {
            self.coef.clone()
        } else {
            self.coef_for(a)?
        };
        let mut buf = vec![0.0; p];
        for (i, row) in x.outer_iter().enumerate() {
            let r: &[f64] = match row.as_slice() {
                Some(s) => s,
                None => {
                    buf.iter_mut().zip(row.iter()).for_each(|(b, v)| *b = *v);
                    &buf
                }
            };
            for t in 0..m {
                out[[i, t]] =
                    dot_centered(r, &self.x_mean, &coef[t * p..(t + 1) * p]) + self.y_mean[t];
            }
        }
        Ok(out)
    }

    /// Scores t = (x − x̄)·R of one preprocessed spectrum into `scores` (A values) and the Q
    /// residual ‖x − x̄ − Pᵀt‖² (computed with `resid` as a p-value buffer).
    pub fn scores_and_q(&self, x: &[f64], scores: &mut [f64], resid: &mut Vec<f64>) -> f64 {
        let p = self.n_features;
        resid.clear();
        resid.extend(x.iter().zip(&self.x_mean).map(|(a, b)| a - b));
        for (k, s) in scores.iter_mut().enumerate().take(self.n_components) {
            *s = dot(resid, &self.x_rotations[k * p..(k + 1) * p]);
        }
        for k in 0..self.n_components {
            axpy(-scores[k], &self.x_loadings[k * p..(k + 1) * p], resid);
        }
        dot(resid, resid)
    }

    /// Fast path for one preprocessed spectrum: predictions into `out`, scores into `scores`,
    /// returns Q. Uses Q = ‖x_c‖² − 2tᵀu + tᵀ(PPᵀ)t with u = P·x_c, all from dot products over
    /// x_c (no residual vector written); when cancellation could cost accuracy (Q below 1e-8 of
    /// ‖x_c‖²) it falls back to the explicit residual.
    pub fn predict_scores_q(
        &self,
        x: &[f64],
        out: &mut [f64],
        scores: &mut [f64],
        xc: &mut Vec<f64>,
    ) -> f64 {
        let p = self.n_features;
        let a = self.n_components;
        xc.clear();
        xc.extend(x.iter().zip(&self.x_mean).map(|(v, m)| v - m));
        for (t, o) in out.iter_mut().enumerate().take(self.n_targets) {
            *o = dot(xc, &self.coef[t * p..(t + 1) * p]) + self.y_mean[t];
        }
        let mut u = [0.0f64; 32];
        for k in 0..a {
            scores[k] = dot(xc, &self.x_rotations[k * p..(k + 1) * p]);
            if k < 32 {
                u[k] = dot(xc, &self.x_loadings[k * p..(k + 1) * p]);
            }
        }
        if a > 32 || self.loading_gram.len() != a * a {
            return self.scores_and_q(x, scores, xc);
        }
        let xx = dot(xc, xc);
        let mut q = xx;
        for i in 0..a {
            q -= 2.0 * scores[i] * u[i];
            let mut gi = 0.0;
            for j in 0..a {
                gi += self.loading_gram[i * a + j] * scores[j];
            }
            q += scores[i] * gi;
        }
        if q < 1e-8 * xx {
            return self.scores_and_q(x, scores, xc);
        }
        q
    }
}

fn mat(r: usize, c: usize, v: &[f64]) -> Array2<f64> {
    Array2::from_shape_vec((r, c), v.to_vec()).unwrap_or_else(|_| Array2::zeros((r, c)))
}

/// Dominant eigenvector of a small symmetric matrix (cyclic Jacobi rotations).
fn dominant_eigenvector(a: &[f64], m: usize) -> Vec<f64> {
    let mut a = a.to_vec();
    let mut v = vec![0.0; m * m];
    (0..m).for_each(|i| v[i * m + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * m + j] * a[i * m + j])
            .sum();
        let diag: f64 = (0..m).map(|i| a[i * m + i] * a[i * m + i]).sum();
        if off <= 1e-30 * diag.max(f64::MIN_POSITIVE) {
            break;
        }
        for pi in 0..m {
            for qi in (pi + 1)..m {
                let apq = a[pi * m + qi];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[qi * m + qi] - a[pi * m + pi]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let akp = a[k * m + pi];
                    let akq = a[k * m + qi];
                    a[k * m + pi] = c * akp - s * akq;
                    a[k * m + qi] = s * akp + c * akq;
                }
                for k in 0..m {
                    let apk = a[pi * m + k];
                    let aqk = a[qi * m + k];
                    a[pi * m + k] = c * apk - s * aqk;
                    a[qi * m + k] = s * apk + c * aqk;
                }
                for k in 0..m {
                    let vkp = v[k * m + pi];
                    let vkq = v[k * m + qi];
                    v[k * m + pi] = c * vkp - s * vkq;
                    v[k * m + qi] = s * vkp + c * vkq;
                }
            }
        }
    }
    let best = (0..m)
        .max_by(|&i, &j| a[i * m + i].total_cmp(&a[j * m + j]))
        .unwrap_or(0);
    (0..m).map(|k| v[k * m + best]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Deterministic pseudo-random numbers (splitmix64) for test data.
    pub(crate) fn rng(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    fn data(n: usize, p: usize, m: usize) -> (Array2<f64>, Array2<f64>) {
        let mut r = rng(7);
        let x = Array2::from_shape_fn((n, p), |_| r());
        let mut y = Array2::zeros((n, m));
        for i in 0..n {
            for t in 0..m {
                y[[i, t]] = (0..p)
                    .map(|j| x[[i, j]] * ((j + t) as f64).cos())
                    .sum::<f64>()
                    + 0.01 * r();
            }
        }
        (x, y)
    }

    #[test]
    fn full_rank_pls_reproduces_least_squares_fit() {
        let (x, y) = data(30, 5, 1);
        let m = PlsModel::fit(x.view(), y.view(), 5, PlsAlgorithm::Nipals).unwrap();
        let pred = m.predict(x.view()).unwrap();
        // With A = p the PLS fit equals OLS: residuals orthogonal to the centred columns.
        let res: Vec<f64> = (0..30).map(|i| y[[i, 0]] - pred[[i, 0]]).collect();
        for j in 0..5 {
            let mean: f64 = (0..30).map(|i| x[[i, j]]).sum::<f64>() / 30.0;
            let s: f64 = (0..30).map(|i| (x[[i, j]] - mean) * res[i]).sum();
            assert!(s.abs() < 1e-10, "{s}");
        }
    }

    #[test]
    fn simpls_equals_nipals_for_one_response() {
        let (x, y) = data(25, 40, 1);
        for a in 1..=6 {
            let n = PlsModel::fit(x.view(), y.view(), a, PlsAlgorithm::Nipals).unwrap();
            let s = PlsModel::fit(x.view(), y.view(), a, PlsAlgorithm::Simpls).unwrap();
            let (pn, ps) = (n.predict(x.view()).unwrap(), s.predict(x.view()).unwrap());
            for (u, v) in pn.iter().zip(ps.iter()) {
                assert!((u - v).abs() < 1e-9 * (1.0 + u.abs()), "{a}: {u} vs {v}");
            }
        }
    }

    #[test]
    fn nested_models_match_separate_fits() {
        let (x, y) = data(20, 30, 2);
        let big = PlsModel::fit(x.view(), y.view(), 6, PlsAlgorithm::Nipals).unwrap();
        for a in 1..6 {
            let small = PlsModel::fit(x.view(), y.view(), a, PlsAlgorithm::Nipals).unwrap();
            let p1 = big.predict_with(x.view(), a).unwrap();
            let p2 = small.predict(x.view()).unwrap();
            for (u, v) in p1.iter().zip(p2.iter()) {
                assert!((u - v).abs() < 1e-9 * (1.0 + u.abs()));
            }
        }
    }

    #[test]
    fn rejects_bad_requests() {
        let (x, y) = data(5, 10, 1);
        assert!(PlsModel::fit(x.view(), y.view(), 5, PlsAlgorithm::Nipals).is_err());
        assert!(PlsModel::fit(x.view(), y.view(), 0, PlsAlgorithm::Nipals).is_err());
        let mut xb = x.clone();
        xb[[0, 0]] = f64::NAN;
        assert!(PlsModel::fit(xb.view(), y.view(), 2, PlsAlgorithm::Nipals).is_err());
        let m = PlsModel::fit(x.view(), y.view(), 2, PlsAlgorithm::Nipals).unwrap();
        assert!(m.predict_into(&[0.0; 9], &mut [0.0]).is_err());
    }

    #[test]
    fn scores_and_q_of_calibration_rows() {
        let (x, y) = data(15, 12, 1);
        let m = PlsModel::fit(x.view(), y.view(), 3, PlsAlgorithm::Nipals).unwrap();
        let mut s = vec![0.0; 3];
        let mut buf = Vec::new();
        let mut t_var = [0.0; 3];
        for row in x.outer_iter() {
            let q = m.scores_and_q(row.as_slice().unwrap(), &mut s, &mut buf);
            assert!(q >= 0.0);
            for k in 0..3 {
                t_var[k] += s[k] * s[k] / 14.0;
            }
        }
        for k in 0..3 {
            assert!((t_var[k] - m.score_variance()[k]).abs() < 1e-9 * t_var[k]);
        }
    }
}

#[cfg(test)]
mod fast_q_tests {
    use super::tests::rng;
    use super::*;

    #[test]
    fn fast_q_equals_explicit_residual() {
        let mut r = rng(11);
        let x = Array2::from_shape_fn((20, 50), |_| r());
        let y = Array2::from_shape_fn((20, 1), |(i, _)| x[[i, 0]] * 3.0 + x[[i, 7]]);
        let m = PlsModel::fit(x.view(), y.view(), 4, PlsAlgorithm::Nipals).unwrap();
        let new: Vec<f64> = (0..50).map(|_| r() * 2.0).collect();
        let (mut s1, mut s2) = (vec![0.0; 4], vec![0.0; 4]);
        let (mut b1, mut b2) = (Vec::new(), Vec::new());
        let q1 = m.scores_and_q(&new, &mut s1, &mut b1);
        let mut out = [0.0];
        let q2 = m.predict_scores_q(&new, &mut out, &mut s2, &mut b2);
        assert!((q1 - q2).abs() < 1e-10 * q1, "{q1} {q2}");
        assert_eq!(s1, s2);
        let mut o2 = [0.0];
        m.predict_into(&new, &mut o2).unwrap();
        assert!((out[0] - o2[0]).abs() < 1e-12 * (1.0 + o2[0].abs()));
    }
}

#[cfg(test)]
mod fused_pass_props {
    use super::tests::rng;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The one-pass SIMPLS (scores and loadings from one sweep over X) gives the NIPALS
        /// predictions for one response, for any shape (odd row counts and widths that are not
        /// multiples of the 8-lane blocks included), with a large column offset in X; and the
        /// batch prediction (four rows at a time) equals the one-spectrum one bit for bit.
        #[test]
        fn simpls_matches_nipals_and_batch_matches_single(
            n in 3usize..40, p in 1usize..70, a_req in 1usize..8, seed in 0u64..1000,
            offset in prop_oneof![Just(0.0), Just(50.0)],
        ) {
            let a = a_req.min(n - 1).min(p).min(4);
            let mut r = rng(seed);
            let x = Array2::from_shape_fn((n, p), |(_, j)| r() + offset * (1.0 + j as f64 / 7.0));
            let y = Array2::from_shape_fn((n, 1), |(i, _)| {
                (0..p).map(|j| x[[i, j]] * ((j as f64) * 0.37).sin()).sum::<f64>() + 0.1 * r()
            });
            let nip = PlsModel::fit(x.view(), y.view(), a, PlsAlgorithm::Nipals).unwrap();
            let sim = PlsModel::fit(x.view(), y.view(), a, PlsAlgorithm::Simpls).unwrap();
            let (pn, ps) = (nip.predict(x.view()).unwrap(), sim.predict(x.view()).unwrap());
            let scale = y.iter().fold(0.0f64, |s, v| s.max(v.abs()));
            for (u, v) in pn.iter().zip(ps.iter()) {
                prop_assert!((u - v).abs() <= 1e-8 * (scale + 1.0), "{} vs {}", u, v);
            }
            for (i, row) in x.outer_iter().enumerate() {
                let mut one = [0.0];
                sim.predict_into(row.as_slice().unwrap(), &mut one).unwrap();
                prop_assert_eq!(one[0], ps[[i, 0]]);
            }
        }
    }
}
