//! Small dense kernels shared by the spectra module: dot products with several accumulators
//! (so the compiler can vectorise the reduction without reassociating a single sum), axpy,
//! and input checks.
//!
//! The eight accumulators of a dot product pass through [`std::hint::black_box`] before they
//! are summed. Without it LLVM's SLP vectoriser builds its vectors from the final reduction
//! tree, `(a0 + a4) + (a1 + a5) + …`, and pairs lanes across the accumulators (or, in the
//! four-row prediction kernel, across rows) with a shuffle per multiply; with the array kept
//! whole, the vectors follow its contiguous lanes (two 4-wide registers under AVX2, four 2-wide
//! under SSE2 or NEON). The arithmetic is the same either way (LLVM does not reassociate
//! floating-point sums), so the hint changes speed, never a bit of the result.

use crate::error::{CoreError, CoreResult};
use std::hint::black_box;

/// Define `fn $name` that runs the `#[inline(always)]` kernel `$imp`, compiled twice on
/// x86_64: for the baseline target (SSE2) and with AVX2 enabled, chosen at run time. The wheel
/// is built for generic x86_64 (no `-C target-cpu`), so this is how the wide registers are used
/// where the CPU has them. FMA is deliberately not enabled: without it both versions perform the
/// same multiplications and additions in the same order, lane for lane, so results are
/// bit-identical on every CPU (a fit or a prediction does not depend on the machine).
macro_rules! avx2_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $ret:ty)? => $imp:ident) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn wide($($a: $t),*) $(-> $ret)? {
                    $imp($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (detected just above).
                    return unsafe { wide($($a),*) };
                }
            }
            $imp($($a),*)
        }
    };
}

/// Σ a_i·b_i with eight independent accumulators (`a` and `b` of equal length).
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    dot_k(a, b)
}

/// Σ (a_i − c_i)·b_i, the centred dot product used for predictions (x − x̄)·b.
#[inline]
pub(crate) fn dot_centered(a: &[f64], c: &[f64], b: &[f64]) -> f64 {
    dot_centered_k(a, c, b)
}

/// y ← y + alpha·x.
#[inline]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Σ a_i·b_i (eight accumulators, then the tail), inlined into [`dot`] and the dispatched
/// kernels below so they round alike.
#[inline(always)]
fn dot_k(a: &[f64], b: &[f64]) -> f64 {
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
    let acc = black_box(acc);
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    reduce8(&acc, tail)
}

/// The fixed summation order of eight accumulators and a tail (every dot product uses it).
#[inline(always)]
fn reduce8(a: &[f64; 8], tail: f64) -> f64 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + tail
}

/// g ← g + s0·x0 + s1·x1 (in that order: the same roundings as two [`axpy`] calls).
#[inline(always)]
fn axpy2_k(s0: f64, x0: &[f64], s1: f64, x1: &[f64], g: &mut [f64]) {
    let n = g.len().min(x0.len()).min(x1.len());
    let (x0, x1, g) = (&x0[..n], &x1[..n], &mut g[..n]);
    for j in 0..n {
        g[j] = (g[j] + s0 * x0[j]) + s1 * x1[j];
    }
}

#[inline(always)]
fn gram_pass_k(x: &[f64], n: usize, p: usize, r: &[f64], t: &mut [f64], g: &mut [f64]) {
    g.iter_mut().for_each(|v| *v = 0.0);
    let mut i = 0;
    while i + 2 <= n {
        let x0 = &x[i * p..(i + 1) * p];
        let x1 = &x[(i + 1) * p..(i + 2) * p];
        let (t0, t1) = (dot_k(x0, r), dot_k(x1, r));
        t[i] = t0;
        t[i + 1] = t1;
        axpy2_k(t0, x0, t1, x1, g);
        i += 2;
    }
    if i < n {
        let xi = &x[i * p..(i + 1) * p];
        let ti = dot_k(xi, r);
        t[i] = ti;
        for (gj, xj) in g.iter_mut().zip(xi) {
            *gj += ti * xj;
        }
    }
}

avx2_dispatch! {
    /// t = X·r and g = Xᵀt for row-major X (n × p), in one pass over X: each pair of rows is
    /// used for its two dot products and then, still in L1 cache, for the update of g. A PLS
    /// component needs both products (scores, then loadings), and X is the only large operand,
    /// so one pass instead of two halves the memory traffic of a fit.
    pub(crate) fn gram_pass(x: &[f64], n: usize, p: usize, r: &[f64], t: &mut [f64], g: &mut [f64])
        => gram_pass_k
}

#[inline(always)]
fn centered_rows_k(x: &[f64], n: usize, p: usize, c: &[f64], b: &[f64], y0: f64, out: &mut [f64]) {
    let (c, b) = (&c[..p], &b[..p]);
    let mut i = 0;
    while i + 4 <= n {
        let rows = [
            &x[i * p..(i + 1) * p],
            &x[(i + 1) * p..(i + 2) * p],
            &x[(i + 2) * p..(i + 3) * p],
            &x[(i + 3) * p..(i + 4) * p],
        ];
        let mut acc = [[0.0f64; 8]; 4];
        let full = p - p % 8;
        let mut j = 0;
        while j < full {
            let (cj, bj) = (&c[j..j + 8], &b[j..j + 8]);
            for (acc_r, row) in acc.iter_mut().zip(&rows) {
                let xr = &row[j..j + 8];
                for k in 0..8 {
                    acc_r[k] += (xr[k] - cj[k]) * bj[k];
                }
            }
            j += 8;
        }
        let acc = black_box(acc);
        for (r, (acc_r, row)) in acc.iter().zip(&rows).enumerate() {
            let mut tail = 0.0;
            for jj in full..p {
                tail += (row[jj] - c[jj]) * b[jj];
            }
            out[i + r] = reduce8(acc_r, tail) + y0;
        }
        i += 4;
    }
    while i < n {
        out[i] = dot_centered_k(&x[i * p..(i + 1) * p], c, b) + y0;
        i += 1;
    }
}

#[inline(always)]
fn dot_centered_k(a: &[f64], c: &[f64], b: &[f64]) -> f64 {
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
    let acc = black_box(acc);
    let mut tail = 0.0;
    for ((x, y), m) in ra.iter().zip(rb).zip(rc) {
        tail += (x - m) * y;
    }
    reduce8(&acc, tail)
}

avx2_dispatch! {
    /// out_i = (x_i − c)·b + y0 for the n rows of row-major X (n × p): the prediction
    /// mat-vec. Four rows at a time share the loads of c and b; each row's sum is formed
    /// exactly as [`dot_centered`] does, so a batch prediction equals the one-spectrum one
    /// bit for bit.
    pub(crate) fn centered_rows(
        x: &[f64], n: usize, p: usize, c: &[f64], b: &[f64], y0: f64, out: &mut [f64],
    ) => centered_rows_k
}

/// Elements (n·p) of a prediction batch below which it stays on the calling thread: about
/// 2 MiB of spectra, some 50 µs of work. Above it the product is bound by memory bandwidth
/// (the rows no longer fit in one core's L2), which a second core adds to.
pub(crate) const PAR_MIN_ELEMS: usize = 1 << 18;

/// [`centered_rows`] over a whole batch: below [`PAR_MIN_ELEMS`] values (or with a one-thread
/// pool) on the calling thread; above, split into halves for rayon's pool, down to parts of
/// about [`PAR_MIN_ELEMS`] / 2 values. `rayon::join` runs the second half on an idle worker if
/// there is one and on the calling thread otherwise, so on a machine whose other cores are
/// busy the batch costs the one-thread time plus a few splits, not a wait for a core. Each
/// row's sum is formed exactly as in the one-thread kernel: the result does not depend on the
/// split or on the number of threads.
pub(crate) fn centered_rows_par(
    x: &[f64],
    n: usize,
    p: usize,
    c: &[f64],
    b: &[f64],
    y0: f64,
    out: &mut [f64],
) {
    if rayon::current_num_threads() < 2 {
        centered_rows(x, n, p, c, b, y0, out);
    } else {
        // the split's own base case keeps a batch below PAR_MIN_ELEMS on this thread
        centered_rows_split(x, n, p, c, b, y0, out, PAR_MIN_ELEMS / 2);
    }
}

/// Halve the rows (at a multiple of four) until a part holds fewer than `2·leaf` values.
#[allow(clippy::too_many_arguments)]
fn centered_rows_split(
    x: &[f64],
    n: usize,
    p: usize,
    c: &[f64],
    b: &[f64],
    y0: f64,
    out: &mut [f64],
    leaf: usize,
) {
    if n < 8 || n.saturating_mul(p) < 2 * leaf {
        centered_rows(x, n, p, c, b, y0, out);
        return;
    }
    let half = (n / 2).div_ceil(4) * 4;
    let (xa, xb) = x[..n * p].split_at(half * p);
    let (oa, ob) = out[..n].split_at_mut(half);
    rayon::join(
        || centered_rows_split(xa, half, p, c, b, y0, oa, leaf),
        || centered_rows_split(xb, n - half, p, c, b, y0, ob, leaf),
    );
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

    fn pseudo(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f64 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn gram_pass_equals_two_products() {
        for (n, p) in [(1, 1), (2, 7), (5, 8), (7, 17), (12, 33)] {
            let x = pseudo(n * p, 3);
            let r = pseudo(p, 5);
            let (mut t, mut g) = (vec![0.0; n], vec![9.0; p]);
            gram_pass(&x, n, p, &r, &mut t, &mut g);
            for i in 0..n {
                assert_eq!(t[i], dot(&x[i * p..(i + 1) * p], &r));
            }
            for j in 0..p {
                let naive: f64 = (0..n).map(|i| t[i] * x[i * p + j]).sum();
                assert!(
                    (g[j] - naive).abs() < 1e-12 * (1.0 + naive.abs()),
                    "{n} {p} {j}"
                );
            }
            // The dispatched (AVX2 where available) and the baseline build agree bit for bit.
            let (mut t2, mut g2) = (vec![0.0; n], vec![0.0; p]);
            gram_pass_k(&x, n, p, &r, &mut t2, &mut g2);
            assert_eq!((t.clone(), g.clone()), (t2, g2));
        }
    }

    #[test]
    fn centered_rows_equal_one_row_dot_bit_for_bit() {
        for (n, p) in [(1, 3), (3, 8), (4, 9), (9, 100), (13, 446)] {
            let x = pseudo(n * p, 1);
            let c = pseudo(p, 2);
            let b = pseudo(p, 4);
            let mut out = vec![0.0; n];
            centered_rows(&x, n, p, &c, &b, 0.25, &mut out);
            let mut base = vec![0.0; n];
            centered_rows_k(&x, n, p, &c, &b, 0.25, &mut base);
            for i in 0..n {
                let one = dot_centered(&x[i * p..(i + 1) * p], &c, &b) + 0.25;
                assert_eq!(out[i], one, "{n} {p} {i}");
                assert_eq!(base[i], one, "{n} {p} {i}");
            }
        }
    }

    #[test]
    fn split_rows_equal_one_thread_bit_for_bit() {
        for (n, p, leaf) in [
            (1, 5, 1),
            (9, 17, 8),
            (13, 8, 1),
            (40, 33, 50),
            (103, 3, 16),
        ] {
            let x = pseudo(n * p, 7);
            let c = pseudo(p, 8);
            let b = pseudo(p, 9);
            let mut one = vec![0.0; n];
            centered_rows(&x, n, p, &c, &b, -1.5, &mut one);
            let mut split = vec![f64::NAN; n];
            centered_rows_split(&x, n, p, &c, &b, -1.5, &mut split, leaf);
            assert_eq!(one, split, "{n} {p} {leaf}");
        }
        // A batch above the threshold goes through the pool and still matches.
        let (n, p) = (600, 500);
        let x = pseudo(n * p, 11);
        let (c, b) = (pseudo(p, 12), pseudo(p, 13));
        let (mut one, mut par) = (vec![0.0; n], vec![f64::NAN; n]);
        centered_rows(&x, n, p, &c, &b, 2.0, &mut one);
        centered_rows_par(&x, n, p, &c, &b, 2.0, &mut par);
        assert_eq!(one, par);
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
