//! Small dense kernels shared by the spectra module: dot products with several accumulators
//! (so the compiler can vectorise the reduction without reassociating a single sum), axpy,
//! and input checks.

use crate::error::{CoreError, CoreResult};

/// Σ a_i·b_i with four independent accumulators (`a` and `b` of equal length).
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Σ (a_i − c_i)·b_i, the centred dot product used for predictions (x − x̄)·b.
#[inline]
pub(crate) fn dot_centered(a: &[f64], c: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [0.0f64; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let cc = c.chunks_exact(8);
    let (ra, rb, rc) = (ca.remainder(), cb.remainder(), cc.remainder());
    for ((x, y), m) in ca.zip(cb).zip(cc) {
        for k in 0..8 {
            acc[k] += (x[k] - m[k]) * y[k];
        }
    }
    let mut tail = 0.0;
    for ((x, y), m) in ra.iter().zip(rb).zip(rc) {
        tail += (x - m) * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// y ← y + alpha·x.
#[inline]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Σ x_i with four accumulators.
#[inline]
pub(crate) fn sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let c = x.chunks_exact(4);
    let r = c.remainder();
    for v in c {
        for k in 0..4 {
            acc[k] += v[k];
        }
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + r.iter().sum::<f64>()
}

/// Σ (x_i − m)² with four accumulators.
#[inline]
pub(crate) fn sum_sq_dev(x: &[f64], m: f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let c = x.chunks_exact(4);
    let r = c.remainder();
    for v in c {
        for k in 0..4 {
            let d = v[k] - m;
            acc[k] += d * d;
        }
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + r.iter().map(|v| (v - m) * (v - m)).sum::<f64>()
}

/// Error unless every value is finite; names `what` and the first bad index.
pub(crate) fn check_finite(what: &'static str, x: &[f64]) -> CoreResult<()> {
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            name: what,
            value: *v,
        });
    }
    Ok(())
}

/// Error unless `x` has `expected` points.
pub(crate) fn check_len(what: &'static str, x: &[f64], expected: usize) -> CoreResult<()> {
    if x.len() != expected {
        return Err(CoreError::ShapeMismatch {
            what,
            expected,
            got: x.len(),
        });
    }
    Ok(())
}

/// Solve the small dense system A·X = B (A n×n row-major, B n×m row-major) by Gaussian
/// elimination with partial pivoting; returns X row-major. Used for A ≤ ~30.
pub(crate) fn solve_dense(a: &[f64], b: &[f64], n: usize, m: usize) -> CoreResult<Vec<f64>> {
    let mut a = a.to_vec();
    let mut x = b.to_vec();
    let scale = a.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    for col in 0..n {
        let (piv, pmax) = (col..n)
            .map(|r| (r, a[r * n + col].abs()))
            .fold((col, -1.0), |acc, v| if v.1 > acc.1 { v } else { acc });
        if !(pmax > scale * 1e-14) {
            return Err(CoreError::Numerical(format!(
                "singular {n}×{n} system (pivot {pmax:e} in column {col})"
            )));
        }
        if piv != col {
            for k in 0..n {
                a.swap(col * n + k, piv * n + k);
            }
            for k in 0..m {
                x.swap(col * m + k, piv * m + k);
            }
        }
        let d = a[col * n + col];
        for r in (col + 1)..n {
            let f = a[r * n + col] / d;
            if f != 0.0 {
                for k in col..n {
                    a[r * n + k] -= f * a[col * n + k];
                }
                for k in 0..m {
                    x[r * m + k] -= f * x[col * m + k];
                }
            }
        }
    }
    for col in (0..n).rev() {
        let d = a[col * n + col];
        for k in 0..m {
            let mut s = x[col * m + k];
            for j in (col + 1)..n {
                s -= a[col * n + j] * x[j * m + k];
            }
            x[col * m + k] = s / d;
        }
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f64> = (0..37).map(|i| i as f64 * 0.5 - 3.0).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64).sin()).collect();
        let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-12);
        let c = vec![1.0; 37];
        let naive_c: f64 = a.iter().zip(&b).map(|(x, y)| (x - 1.0) * y).sum();
        assert!((dot_centered(&a, &c, &b) - naive_c).abs() < 1e-12);
    }

    #[test]
    fn solve_small_system() {
        let a = [4.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let b = [1.0, 2.0, 3.0];
        let x = solve_dense(&a, &b, 3, 1).unwrap();
        for r in 0..3 {
            let s: f64 = (0..3).map(|k| a[r * 3 + k] * x[k]).sum();
            assert!((s - b[r]).abs() < 1e-12);
        }
        assert!(solve_dense(&[1.0, 2.0, 2.0, 4.0], &[1.0, 1.0], 2, 1).is_err());
    }
}
