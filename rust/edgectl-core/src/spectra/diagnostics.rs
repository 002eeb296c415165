//! Per-spectrum diagnostics of a PLS model: Hotelling T² and the Q residual (squared prediction
//! error), with control limits (reference `softsensor.md` §3).
//!
//! ```text
//! T²  = Σ_a t_a²/s_a²,   s_a² = var(T[:, a], ddof 1)
//! T²_lim (new observation) = A(n − 1)(n + 1)/(n(n − A)) · F(α; A, n − A)
//! Q   = ‖x_c − Pᵀt‖²
//! Jackson–Mudholkar (Technometrics 21 (1979) 341): θ_i = Σ_j λ_j^i over the eigenvalues of the
//!   calibration residual covariance (ddof 1); h0 = 1 − 2θ1θ3/(3θ2²);
//!   Q_lim = θ1·[z_α·√(2θ2h0²)/θ1 + 1 + θ2h0(h0 − 1)/θ1²]^(1/h0), valid only for h0 > 0
//! Box (Ann. Math. Stat. 25 (1954) 290) / Nomikos & MacGregor (Technometrics 37 (1995) 41):
//!   m = mean(Q_cal), v = var(Q_cal); g = v/(2m), h = 2m²/v; Q_lim = g·χ²(α; h)
//! ```
//!
//! Rule: Jackson–Mudholkar only when h0 > 0 (and the bracket is positive), else Box. chemotools
//! 0.5.0 has no such guard and, on the fermentation set, returns a limit below the calibration
//! mean Q, flagging every calibration spectrum (reference §3). θ_i are traces of powers of the
//! n × n Gram matrix of the residuals, which has the same non-zero eigenvalues as the p × p
//! covariance, so no eigen-decomposition is needed.
//!
//! Quantiles come from `statrs` (regularised incomplete beta/gamma with inversion); the Python
//! tests cross-check them against `scipy.stats`.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, FisherSnedecor, Normal};

use super::pls::PlsModel;
use crate::error::{CoreError, CoreResult};

/// Which formula produced a Q limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QLimitMethod {
    /// Jackson–Mudholkar normal approximation (h0 > 0).
    JacksonMudholkar,
    /// Box's scaled chi-square fitted to the calibration Q values.
    Box,
}

impl QLimitMethod {
    /// Name used in model files.
    pub fn name(self) -> &'static str {
        match self {
            Self::JacksonMudholkar => "jackson_mudholkar",
            Self::Box => "box",
        }
    }
}

/// T² and Q limits at one confidence level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Confidence level (e.g. 0.95).
    pub confidence: f64,
    /// Hotelling T² limit for a new observation (F distribution).
    pub t2: f64,
    /// Q limit.
    pub q: f64,
    /// Method of the Q limit.
    pub q_method: QLimitMethod,
    /// Jackson–Mudholkar limit even when not used (NaN, `null` in files, when h0 ≤ 0).
    #[serde(with = "nan_as_null")]
    pub q_jackson_mudholkar: f64,
    /// Box chi-square limit, for reporting.
    pub q_box: f64,
}

/// Calibration statistics behind the limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnostics {
    /// Calibration samples n.
    pub n_samples: usize,
    /// Latent variables A.
    pub n_components: usize,
    /// θ1, θ2, θ3 of the calibration residual covariance.
    pub theta: [f64; 3],
    /// Jackson–Mudholkar h0 (NaN, `null` in files, when undefined).
    #[serde(with = "nan_as_null")]
    pub h0: f64,
    /// Mean of the calibration Q values.
    pub q_calibration_mean: f64,
    /// Variance (ddof 1) of the calibration Q values.
    pub q_calibration_variance: f64,
    /// Limits, one entry per confidence level.
    pub limits: Vec<Limits>,
}

/// JSON has no NaN: write it as `null` and read `null` back as NaN.
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

fn check_prob(alpha: f64) -> CoreResult<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(CoreError::InvalidParameter {
            name: "confidence",
            rule: "in (0, 1)",
            value: alpha,
        });
    }
    Ok(())
}

/// Quantile of the F distribution with `(d1, d2)` degrees of freedom at probability `alpha`.
pub fn f_quantile(alpha: f64, d1: f64, d2: f64) -> CoreResult<f64> {
    check_prob(alpha)?;
    let dist = FisherSnedecor::new(d1, d2)
        .map_err(|e| CoreError::InvalidConfig(format!("F({d1}, {d2}): {e}")))?;
    Ok(dist.inverse_cdf(alpha))
}

/// Quantile of the chi-square distribution with `dof` (real, > 0) degrees of freedom.
pub fn chi2_quantile(alpha: f64, dof: f64) -> CoreResult<f64> {
    check_prob(alpha)?;
    let dist =
        ChiSquared::new(dof).map_err(|e| CoreError::InvalidConfig(format!("chi2({dof}): {e}")))?;
    Ok(dist.inverse_cdf(alpha))
}

/// Standard normal quantile.
pub fn normal_quantile(alpha: f64) -> CoreResult<f64> {
    check_prob(alpha)?;
    let dist = Normal::new(0.0, 1.0).map_err(|e| CoreError::Numerical(e.to_string()))?;
    Ok(dist.inverse_cdf(alpha))
}

/// Hotelling T² limit for a new observation, A(n − 1)(n + 1)/(n(n − A))·F(α; A, n − A).
pub fn t2_limit(alpha: f64, n: usize, a: usize) -> CoreResult<f64> {
    if a == 0 || n <= a {
        return Err(CoreError::InvalidConfig(format!(
            "T² limit needs more calibration samples ({n}) than latent variables ({a})"
        )));
    }
    let (nf, af) = (n as f64, a as f64);
    Ok(af * (nf - 1.0) * (nf + 1.0) / (nf * (nf - af)) * f_quantile(alpha, af, nf - af)?)
}

/// Jackson–Mudholkar Q limit; `None` when h0 ≤ 0 or the bracket is not positive.
pub fn q_limit_jackson_mudholkar(alpha: f64, theta: [f64; 3]) -> CoreResult<Option<f64>> {
    let [t1, t2, t3] = theta;
    if !(t1 > 0.0 && t2 > 0.0) {
        return Ok(None);
    }
    let h0 = 1.0 - 2.0 * t1 * t3 / (3.0 * t2 * t2);
    if !(h0 > 0.0) {
        return Ok(None);
    }
    let z = normal_quantile(alpha)?;
    let base = z * (2.0 * t2 * h0 * h0).sqrt() / t1 + 1.0 + t2 * h0 * (h0 - 1.0) / (t1 * t1);
    if !(base > 0.0) {
        return Ok(None);
    }
    let q = t1 * base.powf(1.0 / h0);
    Ok(q.is_finite().then_some(q))
}

/// Box / Nomikos–MacGregor Q limit g·χ²(α; h) from the calibration Q mean and variance.
pub fn q_limit_box(alpha: f64, mean: f64, var: f64) -> CoreResult<f64> {
    if !(mean > 0.0 && var > 0.0) {
        return Ok(mean.max(0.0));
    }
    let g = var / (2.0 * mean);
    let h = 2.0 * mean * mean / var;
    Ok(g * chi2_quantile(alpha, h)?)
}

impl Diagnostics {
    /// Compute T²/Q statistics and limits at each confidence level from the preprocessed
    /// calibration spectra `x` the model was fitted on.
    pub fn from_calibration(
        model: &PlsModel,
        x: ArrayView2<'_, f64>,
        confidences: &[f64],
    ) -> CoreResult<Self> {
        let n = x.nrows();
        let a = model.n_components();
        let p = model.n_features();
        if x.ncols() != p {
            return Err(CoreError::ShapeMismatch {
                what: "calibration spectra (columns)",
                expected: p,
                got: x.ncols(),
            });
        }
        // Residual rows and their Q.
        let mut resid_rows = vec![0.0; n * p];
        let mut q_cal = vec![0.0; n];
        let mut scores = vec![0.0; a];
        let mut buf = Vec::with_capacity(p);
        let mut row_buf = vec![0.0; p];
        for (i, row) in x.outer_iter().enumerate() {
            row_buf
                .iter_mut()
                .zip(row.iter())
                .for_each(|(b, v)| *b = *v);
            q_cal[i] = model.scores_and_q(&row_buf, &mut scores, &mut buf);
            resid_rows[i * p..(i + 1) * p].copy_from_slice(&buf);
        }
        // Gram G = E Eᵀ/(n − 1); θ1 = tr G, θ2 = tr G², θ3 = tr G³.
        let denom = (n.max(2) - 1) as f64;
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = super::kernels::dot(
                    &resid_rows[i * p..(i + 1) * p],
                    &resid_rows[j * p..(j + 1) * p],
                ) / denom;
                g[i * n + j] = v;
                g[j * n + i] = v;
            }
        }
        let theta1: f64 = (0..n).map(|i| g[i * n + i]).sum();
        let theta2: f64 = g.iter().map(|v| v * v).sum();
        let mut g2 = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                let gik = g[i * n + k];
                if gik != 0.0 {
                    for j in 0..n {
                        g2[i * n + j] += gik * g[k * n + j];
                    }
                }
            }
        }
        let theta3: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| g2[i * n + j] * g[j * n + i])
            .sum();
        let theta = [theta1, theta2, theta3];
        let h0 = if theta2 > 0.0 {
            1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2 * theta2)
        } else {
            f64::NAN
        };
        let q_mean = q_cal.iter().sum::<f64>() / n as f64;
        let q_var = q_cal.iter().map(|q| (q - q_mean).powi(2)).sum::<f64>() / denom;
        let mut limits = Vec::with_capacity(confidences.len());
        for &c in confidences {
            let t2 = t2_limit(c, n, a)?;
            let jm = q_limit_jackson_mudholkar(c, theta)?;
            let bx = q_limit_box(c, q_mean, q_var)?;
            let (q, method) = match jm {
                Some(v) => (v, QLimitMethod::JacksonMudholkar),
                None => (bx, QLimitMethod::Box),
            };
            limits.push(Limits {
                confidence: c,
                t2,
                q,
                q_method: method,
                q_jackson_mudholkar: jm.unwrap_or(f64::NAN),
                q_box: bx,
            });
        }
        Ok(Self {
            n_samples: n,
            n_components: a,
            theta,
            h0,
            q_calibration_mean: q_mean,
            q_calibration_variance: q_var,
            limits,
        })
    }

    /// The limits at `confidence` (exact match), if computed.
    pub fn limits_at(&self, confidence: f64) -> Option<&Limits> {
        self.limits
            .iter()
            .find(|l| (l.confidence - confidence).abs() < 1e-12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        // scipy.stats: f.ppf(0.95, 4, 17) = 2.9647...; chi2.ppf(0.95, 3) = 7.8147...; norm 1.6449.
        assert!((f_quantile(0.95, 4.0, 17.0).unwrap() - 2.964_708_51).abs() < 1e-6);
        assert!((chi2_quantile(0.95, 3.0).unwrap() - 7.814_727_90).abs() < 1e-6);
        assert!((normal_quantile(0.95).unwrap() - 1.644_853_63).abs() < 1e-7);
        assert!(f_quantile(1.5, 1.0, 1.0).is_err());
    }

    #[test]
    fn jm_needs_positive_h0() {
        // One dominant eigenvalue: h0 = 1 − 2θ1θ3/(3θ2²) with θ = (1, 1, 1) → 1/3 > 0.
        assert!(q_limit_jackson_mudholkar(0.95, [1.0, 1.0, 1.0])
            .unwrap()
            .is_some());
        // θ1θ3 large against θ2²: h0 < 0 → no JM limit.
        assert!(q_limit_jackson_mudholkar(0.95, [10.0, 1.0, 1.0])
            .unwrap()
            .is_none());
        let b = q_limit_box(0.95, 1.0, 0.5).unwrap();
        assert!(b > 1.0);
        assert!(t2_limit(0.95, 4, 4).is_err());
    }
}
