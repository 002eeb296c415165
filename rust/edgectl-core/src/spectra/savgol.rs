//! Savitzky–Golay smoothing and derivatives with precomputed taps and edge matrices.
//!
//! Savitzky & Golay, *Anal. Chem.* 36 (1964) 1627: a least-squares polynomial of order `p` over a
//! window of `w = 2m + 1` points, evaluated (or differentiated `d` times) at the window centre, is
//! a fixed FIR filter in the interior: `y_i = Σ_k c_k·x_{i+k} / Δx^d`, `c = row d of d!·(VᵀV)⁻¹Vᵀ`,
//! `V_jk = t_j^k`, `t_j = −m..m` (reference `softsensor.md` §1.3). The taps and the two `m × w` edge
//! matrices are computed once, from a QR factorisation of the scaled Vandermonde matrix.
//!
//! Edge modes (the first and last `m` points), each matching `scipy.signal.savgol_filter`:
//! - [`EdgeMode::Interp`]: fit the polynomial to the first (last) `w` points and evaluate it, or
//!   its derivative, at each edge point (scipy's default; Gorry, *Anal. Chem.* 62 (1990) 570).
//! - [`EdgeMode::Nearest`]: pad by repeating the edge value (chemotools' default).
//! - [`EdgeMode::Mirror`]: pad by reflection about the edge sample (`d c b | a b c d | c b a`).
//! - [`EdgeMode::Wrap`]: periodic padding.
//!
//! The axis is treated as uniform (as by every SG implementation; the fermentation axis steps
//! 1–2 cm⁻¹): `delta` is the sample spacing, so derivatives are per unit of `delta`
//! (`delta = 1` gives derivatives per point, scipy's default).

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

/// How the first and last `m = window / 2` points are computed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EdgeMode {
    /// Polynomial fit to the edge window, evaluated at the edge points (scipy default).
    #[default]
    Interp,
    /// Pad with the edge value.
    Nearest,
    /// Pad by reflection about the edge sample.
    Mirror,
    /// Periodic padding.
    Wrap,
}

impl EdgeMode {
    /// The scipy name of the mode (`"interp"`, `"nearest"`, `"mirror"`, `"wrap"`).
    pub fn name(self) -> &'static str {
        match self {
            EdgeMode::Interp => "interp",
            EdgeMode::Nearest => "nearest",
            EdgeMode::Mirror => "mirror",
            EdgeMode::Wrap => "wrap",
        }
    }

    /// Parse a scipy mode name.
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "interp" => Ok(EdgeMode::Interp),
            "nearest" => Ok(EdgeMode::Nearest),
            "mirror" => Ok(EdgeMode::Mirror),
            "wrap" => Ok(EdgeMode::Wrap),
            other => Err(CoreError::InvalidConfig(format!(
                "savitzky_golay mode must be one of interp, nearest, mirror, wrap; got {other:?}"
            ))),
        }
    }
}

/// A Savitzky–Golay filter with precomputed taps and edge matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct SavitzkyGolay {
    window: usize,
    order: usize,
    deriv: usize,
    delta: f64,
    mode: EdgeMode,
    /// Interior taps in correlation form, `w` values (`y_i = Σ_k taps[k]·x[i − m + k]`).
    taps: Vec<f64>,
    /// `m × w` row-major: edge point `i` of the left edge from `x[0..w]`.
    left: Vec<f64>,
    /// `m × w` row-major: edge point `n − m + i` from `x[n − w..n]`.
    right: Vec<f64>,
    /// +1 when the taps are symmetric (even `deriv`), −1 when antisymmetric.
    parity: f64,
}

impl SavitzkyGolay {
    /// Build the filter: odd `window ≥ 3`, `order < window`, `deriv ≤ order`, `delta > 0`.
    pub fn new(
        window: usize,
        order: usize,
        deriv: usize,
        delta: f64,
        mode: EdgeMode,
    ) -> CoreResult<Self> {
        if window < 3 || window % 2 == 0 {
            return Err(CoreError::InvalidParameter {
                name: "window",
                rule: "odd and >= 3",
                value: window as f64,
            });
        }
        if order >= window {
            return Err(CoreError::InvalidParameter {
                name: "order",
                rule: "< window",
                value: order as f64,
            });
        }
        if deriv > order {
            return Err(CoreError::InvalidParameter {
                name: "deriv",
                rule: "<= order",
                value: deriv as f64,
            });
        }
        if !(delta.is_finite() && delta > 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "delta",
                rule: "finite and > 0",
                value: delta,
            });
        }
        let m = window / 2;
        let pinv = scaled_pinv(window, order)?;
        // Weights that evaluate the d-th derivative (per unit of delta) of the fitted polynomial
        // at scaled position u = t/m: Σ_k k!/(k−d)!·u^(k−d)·pinv[k][j] · m^(−d) / delta^d.
        let scale = 1.0 / ((m as f64).powi(deriv as i32) * delta.powi(deriv as i32));
        let eval_at = |u: f64| -> Vec<f64> {
            let mut row = vec![0.0; window];
            for k in deriv..=order {
                let mut fall = 1.0;
                for f in 0..deriv {
                    fall *= (k - f) as f64;
                }
                let c = fall * u.powi((k - deriv) as i32) * scale;
                for (j, r) in row.iter_mut().enumerate() {
                    *r += c * pinv[k * window + j];
                }
            }
            row
        };
        let taps = eval_at(0.0);
        let mut left = Vec::with_capacity(m * window);
        let mut right = Vec::with_capacity(m * window);
        for i in 0..m {
            left.extend(eval_at((i as f64 - m as f64) / m as f64));
            right.extend(eval_at((i + 1) as f64 / m as f64));
        }
        let parity = if deriv % 2 == 0 { 1.0 } else { -1.0 };
        Ok(Self {
            window,
            order,
            deriv,
            delta,
            mode,
            taps,
            left,
            right,
            parity,
        })
    }

    /// Window length in points.
    pub fn window(&self) -> usize {
        self.window
    }
    /// Polynomial order.
    pub fn order(&self) -> usize {
        self.order
    }
    /// Derivative order (0 = smoothing).
    pub fn deriv(&self) -> usize {
        self.deriv
    }
    /// Sample spacing used for derivatives.
    pub fn delta(&self) -> f64 {
        self.delta
    }
    /// Edge mode.
    pub fn mode(&self) -> EdgeMode {
        self.mode
    }
    /// Interior taps in correlation form (`w` values).
    pub fn taps(&self) -> &[f64] {
        &self.taps
    }

    /// Filter `x` into `out` (same length, at least `window` points).
    pub fn apply_into(&self, x: &[f64], out: &mut [f64]) -> CoreResult<()> {
        let n = x.len();
        let w = self.window;
        let m = w / 2;
        if n < w {
            return Err(CoreError::ShapeMismatch {
                what: "savitzky_golay input (window longer than the spectrum segment)",
                expected: w,
                got: n,
            });
        }
        if out.len() != n {
            return Err(CoreError::ShapeMismatch {
                what: "savitzky_golay output",
                expected: n,
                got: out.len(),
            });
        }
        // Interior: y_i = c_0·x_i + Σ_k c_k·(x_{i+k} ± x_{i−k}) (symmetric taps for even
        // derivatives, antisymmetric for odd), eight outputs at a time so the accumulators stay
        // in vector registers.
        let inner = n - 2 * m;
        let c0 = self.taps[m];
        let sym = self.parity > 0.0;
        let mut i = m;
        while i + 8 <= m + inner {
            let mut acc = [0.0f64; 8];
            let xc = &x[i..i + 8];
            for l in 0..8 {
                acc[l] = c0 * xc[l];
            }
            for k in 1..=m {
                let ck = self.taps[m + k];
                let p = &x[i + k..i + k + 8];
                let q = &x[i - k..i - k + 8];
                if sym {
                    for l in 0..8 {
                        acc[l] += ck * (p[l] + q[l]);
                    }
                } else {
                    for l in 0..8 {
                        acc[l] += ck * (p[l] - q[l]);
                    }
                }
            }
            out[i..i + 8].copy_from_slice(&acc);
            i += 8;
        }
        while i < m + inner {
            let mut acc = c0 * x[i];
            for k in 1..=m {
                let ck = self.taps[m + k];
                acc += if sym {
                    ck * (x[i + k] + x[i - k])
                } else {
                    ck * (x[i + k] - x[i - k])
                };
            }
            out[i] = acc;
            i += 1;
        }
        match self.mode {
            EdgeMode::Interp => {
                for i in 0..m {
                    out[i] = super::kernels::dot(&self.left[i * w..(i + 1) * w], &x[..w]);
                    out[n - m + i] =
                        super::kernels::dot(&self.right[i * w..(i + 1) * w], &x[n - w..]);
                }
            }
            mode => {
                for i in (0..m).chain(n - m..n) {
                    let mut s = 0.0;
                    for (k, c) in self.taps.iter().enumerate() {
                        let j = i as isize + k as isize - m as isize;
                        s += c * x[pad_index(j, n, mode)];
                    }
                    out[i] = s;
                }
            }
        }
        Ok(())
    }

    /// Filter `x` and return a new vector.
    pub fn apply(&self, x: &[f64]) -> CoreResult<Vec<f64>> {
        let mut out = vec![0.0; x.len()];
        self.apply_into(x, &mut out)?;
        Ok(out)
    }
}

/// Map an out-of-range index onto the signal for the padding modes (scipy.ndimage semantics).
fn pad_index(j: isize, n: usize, mode: EdgeMode) -> usize {
    let n_i = n as isize;
    if (0..n_i).contains(&j) {
        return j as usize;
    }
    match mode {
        EdgeMode::Nearest | EdgeMode::Interp => j.clamp(0, n_i - 1) as usize,
        EdgeMode::Wrap => j.rem_euclid(n_i) as usize,
        EdgeMode::Mirror => {
            if n == 1 {
                return 0;
            }
            let period = 2 * (n_i - 1);
            let r = j.rem_euclid(period);
            (if r < n_i { r } else { period - r }) as usize
        }
    }
}

/// Pseudo-inverse `(p+1) × w` (row-major) of the Vandermonde matrix `V_jk = u_j^k`,
/// `u_j = (j − m)/m ∈ [−1, 1]`, by modified Gram–Schmidt QR (`pinv = R⁻¹Qᵀ`). Scaling the
/// abscissa to [−1, 1] keeps the factorisation well conditioned for the usual orders.
fn scaled_pinv(window: usize, order: usize) -> CoreResult<Vec<f64>> {
    let m = (window / 2) as f64;
    let cols = order + 1;
    // Q stored column by column (cols × window).
    let mut q = vec![0.0; cols * window];
    for k in 0..cols {
        for j in 0..window {
            let u = (j as f64 - m) / m;
            q[k * window + j] = u.powi(k as i32);
        }
    }
    let mut r = vec![0.0; cols * cols];
    for k in 0..cols {
        for i in 0..k {
            let (qi, qk) = q.split_at_mut(k * window);
            let qi = &qi[i * window..(i + 1) * window];
            let qk = &mut qk[..window];
            let proj: f64 = qi.iter().zip(qk.iter()).map(|(a, b)| a * b).sum();
            r[i * cols + k] += proj;
            for (b, a) in qk.iter_mut().zip(qi) {
                *b -= proj * a;
            }
        }
        // Re-orthogonalise once (Gram–Schmidt twice is enough) for full working precision.
        for i in 0..k {
            let (qi, qk) = q.split_at_mut(k * window);
            let qi = &qi[i * window..(i + 1) * window];
            let qk = &mut qk[..window];
            let proj: f64 = qi.iter().zip(qk.iter()).map(|(a, b)| a * b).sum();
            r[i * cols + k] += proj;
            for (b, a) in qk.iter_mut().zip(qi) {
                *b -= proj * a;
            }
        }
        let qk = &mut q[k * window..(k + 1) * window];
        let norm = qk.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm < 1e-12 {
            return Err(CoreError::Numerical(format!(
                "Savitzky–Golay design matrix is rank deficient (window {window}, order {order})"
            )));
        }
        r[k * cols + k] = norm;
        for v in qk.iter_mut() {
            *v /= norm;
        }
    }
    // pinv = R⁻¹ Qᵀ: back-substitute each column j of Qᵀ.
    let mut pinv = vec![0.0; cols * window];
    for j in 0..window {
        for k in (0..cols).rev() {
            let mut s = q[k * window + j];
            for i in (k + 1)..cols {
                s -= r[k * cols + i] * pinv[i * window + j];
            }
            pinv[k * window + j] = s / r[k * cols + k];
        }
    }
    Ok(pinv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn textbook_taps() {
        // m = 2 smoothing: [−3 12 17 12 −3]/35 (reference §1.3).
        let sg = SavitzkyGolay::new(5, 2, 0, 1.0, EdgeMode::Interp).unwrap();
        let expect = [-3.0, 12.0, 17.0, 12.0, -3.0].map(|v| v / 35.0);
        for (a, b) in sg.taps().iter().zip(expect) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
        // w = 15 first derivative: c_k = k / 280.
        let sg = SavitzkyGolay::new(15, 2, 1, 1.0, EdgeMode::Interp).unwrap();
        for (i, c) in sg.taps().iter().enumerate() {
            let k = i as f64 - 7.0;
            assert!((c - k / 280.0).abs() < 1e-15);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(SavitzkyGolay::new(4, 2, 0, 1.0, EdgeMode::Interp).is_err());
        assert!(SavitzkyGolay::new(5, 5, 0, 1.0, EdgeMode::Interp).is_err());
        assert!(SavitzkyGolay::new(5, 2, 3, 1.0, EdgeMode::Interp).is_err());
        assert!(SavitzkyGolay::new(5, 2, 0, 0.0, EdgeMode::Interp).is_err());
        let sg = SavitzkyGolay::new(7, 2, 0, 1.0, EdgeMode::Interp).unwrap();
        assert!(sg.apply(&[1.0; 5]).is_err());
    }

    #[test]
    fn pad_modes_follow_ndimage() {
        assert_eq!(pad_index(-1, 4, EdgeMode::Mirror), 1);
        assert_eq!(pad_index(-2, 4, EdgeMode::Mirror), 2);
        assert_eq!(pad_index(4, 4, EdgeMode::Mirror), 2);
        assert_eq!(pad_index(-1, 4, EdgeMode::Nearest), 0);
        assert_eq!(pad_index(5, 4, EdgeMode::Nearest), 3);
        assert_eq!(pad_index(-1, 4, EdgeMode::Wrap), 3);
        assert_eq!(pad_index(4, 4, EdgeMode::Wrap), 0);
    }

    proptest! {
        /// A polynomial of degree ≤ order is reproduced exactly (value and derivatives) at every
        /// interior point, and in `interp` mode at the edges too.
        #[test]
        fn exact_for_polynomials(
            half in 1usize..10,
            order in 0usize..5,
            deriv in 0usize..3,
            coefs in proptest::collection::vec(-2.0f64..2.0, 6),
            n_extra in 0usize..30,
        ) {
            let window = 2 * half + 1;
            prop_assume!(order < window && deriv <= order);
            let n = window + n_extra;
            let degree = order;
            let poly = |t: f64, d: usize| -> f64 {
                let mut s = 0.0;
                for k in d..=degree {
                    let mut fall = 1.0;
                    for f in 0..d { fall *= (k - f) as f64; }
                    s += coefs[k] * fall * t.powi((k - d) as i32);
                }
                s
            };
            // Sample on t = i·delta, scaled so values stay O(1).
            let delta = 2.0 / n as f64;
            let x: Vec<f64> = (0..n).map(|i| poly(i as f64 * delta - 1.0, 0)).collect();
            let sg = SavitzkyGolay::new(window, order, deriv, delta, EdgeMode::Interp).unwrap();
            let y = sg.apply(&x).unwrap();
            let scale = 1.0 + (0..n).map(|i| poly(i as f64 * delta - 1.0, deriv).abs()).fold(0.0, f64::max);
            for (i, yi) in y.iter().enumerate() {
                let expect = poly(i as f64 * delta - 1.0, deriv);
                prop_assert!((yi - expect).abs() <= 1e-8 * scale * (n as f64).powi(deriv as i32),
                    "i={} got {} expect {}", i, yi, expect);
            }
        }
    }
}
