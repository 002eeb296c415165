//! Asymmetric least squares (AsLS) baseline, Eilers & Boelens (2005); Whittaker smoother
//! (Eilers, *Anal. Chem.* 75 (2003) 3631): minimise Σ w_i(y_i − z_i)² + λ·Σ(Δ²z_i)², i.e. solve
//! (W + λ·DᵀD) z = W y with D the second-difference matrix. The system is symmetric positive
//! definite and pentadiagonal, solved by a banded LDLᵀ factorisation in O(n) per iteration.
//! Weights: w_i = p where y_i > z_i (peaks), 1 − p elsewhere; iterate until the weights stop
//! changing or `max_iter` (reference `softsensor.md` §1.5). The corrected spectrum is y − z.

use crate::error::{CoreError, CoreResult};

/// AsLS baseline parameters: `lam` (λ, smoothness, typically 1e2–1e9), `p` (asymmetry,
/// typically 0.001–0.1), `max_iter` (reweighting iterations).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsLs {
    lam: f64,
    p: f64,
    max_iter: usize,
}

/// Reusable buffers of the banded solver (avoids allocation per spectrum).
#[derive(Debug, Default, Clone)]
pub struct AsLsWorkspace {
    w: Vec<f64>,
    z: Vec<f64>,
    d: Vec<f64>,
    l1: Vec<f64>,
    l2: Vec<f64>,
}

impl AsLs {
    /// Check and store the parameters: `lam > 0`, `0 < p < 1`, `max_iter ≥ 1`.
    pub fn new(lam: f64, p: f64, max_iter: usize) -> CoreResult<Self> {
        if !(lam.is_finite() && lam > 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "lam",
                rule: "finite and > 0",
                value: lam,
            });
        }
        if !(p > 0.0 && p < 1.0) {
            return Err(CoreError::InvalidParameter {
                name: "p",
                rule: "in (0, 1)",
                value: p,
            });
        }
        if max_iter == 0 {
            return Err(CoreError::InvalidParameter {
                name: "max_iter",
                rule: ">= 1",
                value: 0.0,
            });
        }
        Ok(Self { lam, p, max_iter })
    }

    /// λ.
    pub fn lam(&self) -> f64 {
        self.lam
    }
    /// Asymmetry p.
    pub fn p(&self) -> f64 {
        self.p
    }
    /// Maximum number of reweighting iterations.
    pub fn max_iter(&self) -> usize {
        self.max_iter
    }

    /// Estimate the baseline `z` of `y` (at least 3 points) into `ws.z`; returns the iterations used.
    pub fn baseline_into(&self, y: &[f64], ws: &mut AsLsWorkspace) -> CoreResult<usize> {
        let n = y.len();
        if n < 3 {
            return Err(CoreError::ShapeMismatch {
                what: "asls input (needs at least 3 points)",
                expected: 3,
                got: n,
            });
        }
        ws.w.clear();
        ws.w.resize(n, 1.0);
        ws.z.resize(n, 0.0);
        ws.d.resize(n, 0.0);
        ws.l1.resize(n, 0.0);
        ws.l2.resize(n, 0.0);
        let mut iters = 0;
        for it in 0..self.max_iter {
            iters = it + 1;
            self.solve(y, ws)?;
            let mut changed = false;
            for i in 0..n {
                let nw = if y[i] > ws.z[i] { self.p } else { 1.0 - self.p };
                if nw != ws.w[i] {
                    changed = true;
                    ws.w[i] = nw;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(iters)
    }

    /// Baseline-corrected spectrum y − z into `out`.
    pub fn correct_into(
        &self,
        y: &[f64],
        ws: &mut AsLsWorkspace,
        out: &mut [f64],
    ) -> CoreResult<()> {
        self.baseline_into(y, ws)?;
        for ((o, yi), zi) in out.iter_mut().zip(y).zip(&ws.z) {
            *o = yi - zi;
        }
        Ok(())
    }

    /// The baseline z of `y` (allocating convenience).
    pub fn baseline(&self, y: &[f64]) -> CoreResult<Vec<f64>> {
        let mut ws = AsLsWorkspace::default();
        self.baseline_into(y, &mut ws)?;
        Ok(ws.z)
    }

    /// One weighted Whittaker solve (W + λDᵀD) z = W y by banded LDLᵀ.
    fn solve(&self, y: &[f64], ws: &mut AsLsWorkspace) -> CoreResult<()> {
        let n = y.len();
        let lam = self.lam;
        // Bands of DᵀD for the second difference (rows (1, −2, 1)):
        // diagonal 1, 5, 6, …, 6, 5, 1; first off-diagonal −2, −4, …, −4, −2; second 1.
        let diag = |i: usize| -> f64 {
            let mut s = 0.0;
            // rows r with r ≤ i ≤ r + 2, 0 ≤ r ≤ n − 3; coefficient at offset i − r.
            let c = [1.0, -2.0, 1.0];
            for off in 0..3 {
                if i >= off && i - off + 2 < n {
                    s += c[off] * c[off];
                }
            }
            s
        };
        let sub1 = |i: usize| -> f64 {
            // A[i+1][i]: rows r with r ≤ i and i + 1 ≤ r + 2.
            let c = [1.0, -2.0, 1.0];
            let mut s = 0.0;
            for off in 0..2 {
                if i >= off && i - off + 2 < n {
                    s += c[off] * c[off + 1];
                }
            }
            s
        };
        let (d, l1, l2, z, w) = (&mut ws.d, &mut ws.l1, &mut ws.l2, &mut ws.z, &ws.w);
        for i in 0..n {
            let mut di = w[i] + lam * diag(i);
            if i >= 1 {
                di -= l1[i - 1] * l1[i - 1] * d[i - 1];
            }
            if i >= 2 {
                di -= l2[i - 2] * l2[i - 2] * d[i - 2];
            }
            if !(di > 0.0) {
                return Err(CoreError::Numerical(format!(
                    "AsLS system not positive definite at point {i}"
                )));
            }
            d[i] = di;
            if i + 1 < n {
                let mut b = lam * sub1(i);
                if i >= 1 {
                    b -= l2[i - 1] * l1[i - 1] * d[i - 1];
                }
                l1[i] = b / di;
            }
            if i + 2 < n {
                l2[i] = lam / di;
            }
        }
        // Forward: L u = W y.
        for i in 0..n {
            let mut s = w[i] * y[i];
            if i >= 1 {
                s -= l1[i - 1] * z[i - 1];
            }
            if i >= 2 {
                s -= l2[i - 2] * z[i - 2];
            }
            z[i] = s;
        }
        for i in 0..n {
            z[i] /= d[i];
        }
        // Backward: Lᵀ z = u / d.
        for i in (0..n).rev() {
            let mut s = z[i];
            if i + 1 < n {
                s -= l1[i] * z[i + 1];
            }
            if i + 2 < n {
                s -= l2[i] * z[i + 2];
            }
            z[i] = s;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_baseline_is_recovered_under_peaks() {
        let n = 400;
        let base: Vec<f64> = (0..n).map(|i| 2.0 + 0.01 * i as f64).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64;
                base[i]
                    + 5.0 * (-((t - 120.0) / 6.0).powi(2)).exp()
                    + 3.0 * (-((t - 300.0) / 8.0).powi(2)).exp()
            })
            .collect();
        let asls = AsLs::new(1e5, 0.001, 50).unwrap();
        let z = asls.baseline(&y).unwrap();
        // Far from the peaks the baseline follows the line closely.
        for i in (0..60).chain(180..250).chain(360..n) {
            assert!(
                (z[i] - base[i]).abs() < 0.05,
                "i={i} z={} base={}",
                z[i],
                base[i]
            );
        }
        let mut out = vec![0.0; n];
        asls.correct_into(&y, &mut AsLsWorkspace::default(), &mut out)
            .unwrap();
        assert!((out[120] - 5.0).abs() < 0.2);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(AsLs::new(0.0, 0.01, 10).is_err());
        assert!(AsLs::new(1e4, 1.0, 10).is_err());
        assert!(AsLs::new(1e4, 0.01, 0).is_err());
        assert!(AsLs::new(1e4, 0.01, 5)
            .unwrap()
            .baseline(&[1.0, 2.0])
            .is_err());
    }
}
