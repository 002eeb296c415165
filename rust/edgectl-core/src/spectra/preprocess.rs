//! Preprocessing blocks and the [`Pipeline`] that chains them (reference `softsensor.md` §0–§1).
//!
//! A pipeline is built from an input axis (wavenumbers, cm⁻¹, strictly monotone) and a list of
//! [`Step`]s. Steps that learn from the calibration set (MSC reference, mean-centring,
//! autoscaling) are fitted by [`Pipeline::fit`]; their fitted state lives in the step itself, so
//! the step list *is* the serialised pipeline of a model file.
//!
//! Region selection keeps one or more wavenumber windows. The windows become *segments*:
//! despiking, Savitzky–Golay and the baselines run on each segment separately (a filter window
//! never straddles a gap); SNV, MSC and centring run on the whole selected vector.
//!
//! Every input spectrum is checked: right length, finite values, not flat (max = min). A flat
//! spectrum (a detector dropout) is an error, never a row of NaN.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::baseline::{AsLs, AsLsWorkspace};
use super::kernels::{check_finite, check_len, sum, sum_sq_dev};
use super::savgol::{EdgeMode, SavitzkyGolay};
use crate::error::{CoreError, CoreResult};

fn default_delta() -> f64 {
    1.0
}
fn default_ddof() -> u8 {
    1
}
fn default_max_iter() -> usize {
    50
}

/// One preprocessing step, as written in a model file (`"kind"` names the step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Whitaker–Hayes cosmic-ray removal (*Chemom. Intell. Lab. Syst.* 179 (2018) 82): modified
    /// z-score of first differences, `z = 0.6745·(Δx − median Δx)/MAD`; a point whose backward
    /// difference has `|z| > threshold` is replaced by the mean of the non-spike points within
    /// `±half_window`. Spikes wider than one pixel (a cosmic ray over two or three CCD pixels)
    /// show as a jump followed, within `half_window` pixels, by the level coming back to where it
    /// was: every pixel in between is a spike pixel, the one where it is back is not.
    Despike {
        /// z-score threshold (tune per instrument; hyperSpec uses 30, lower clips real bands).
        threshold: f64,
        /// Neighbourhood half width (points) used for the replacement.
        half_window: usize,
    },
    /// Keep the points whose wavenumber lies in any of the closed windows `[lo, hi]` (cm⁻¹).
    Region {
        /// Windows in cm⁻¹, each `[lo, hi]` (either order).
        windows_cm1: Vec<[f64; 2]>,
    },
    /// Savitzky–Golay smoothing or derivative (see [`SavitzkyGolay`]).
    SavitzkyGolay {
        /// Odd window length in points.
        window: usize,
        /// Polynomial order (< window).
        order: usize,
        /// Derivative order (0 = smoothing, ≤ order).
        deriv: usize,
        /// Sample spacing for derivatives (1 = per point, scipy's default).
        #[serde(default = "default_delta")]
        delta: f64,
        /// Edge handling, matching `scipy.signal.savgol_filter(mode=...)`.
        #[serde(default)]
        mode: EdgeMode,
    },
    /// Standard normal variate (Barnes, Dhanoa & Lister, *Appl. Spectrosc.* 43 (1989) 772):
    /// `z = (x − x̄)/s(x)`, `s` with `ddof` 0 or 1.
    Snv {
        /// Delta degrees of freedom of the standard deviation (0 or 1).
        #[serde(default = "default_ddof")]
        ddof: u8,
    },
    /// Multiplicative scatter correction (Geladi, MacDougall & Martens, *Appl. Spectrosc.* 39
    /// (1985) 491): fit `x ≈ a + b·x_ref`, return `(x − a)/b`; `x_ref` = calibration mean.
    Msc {
        /// Fitted reference spectrum (calibration mean at this stage).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<Vec<f64>>,
    },
    /// AsLS baseline subtraction (see [`AsLs`]).
    Asls {
        /// Smoothness λ.
        lam: f64,
        /// Asymmetry p.
        p: f64,
        /// Maximum reweighting iterations.
        #[serde(default = "default_max_iter")]
        max_iter: usize,
    },
    /// Subtract the straight line through the first and last point of each segment.
    Linear,
    /// Subtract the calibration mean of each variable.
    MeanCenter {
        /// Fitted mean.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mean: Option<Vec<f64>>,
    },
    /// Subtract the calibration mean and divide by the calibration standard deviation (ddof 1;
    /// a zero deviation is replaced by 1, as scikit-learn does).
    Autoscale {
        /// Fitted mean.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mean: Option<Vec<f64>>,
        /// Fitted standard deviation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<Vec<f64>>,
    },
}

impl Step {
    /// The step's `kind` name as written in model files.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Despike { .. } => "despike",
            Step::Region { .. } => "region",
            Step::SavitzkyGolay { .. } => "savitzky_golay",
            Step::Snv { .. } => "snv",
            Step::Msc { .. } => "msc",
            Step::Asls { .. } => "asls",
            Step::Linear => "linear",
            Step::MeanCenter { .. } => "mean_center",
            Step::Autoscale { .. } => "autoscale",
        }
    }

    /// The same step with its fitted state removed (what a user configures).
    pub fn unfitted(&self) -> Step {
        match self {
            Step::Msc { .. } => Step::Msc { reference: None },
            Step::MeanCenter { .. } => Step::MeanCenter { mean: None },
            Step::Autoscale { .. } => Step::Autoscale {
                mean: None,
                scale: None,
            },
            s => s.clone(),
        }
    }
}

/// Runtime form of a step (precomputed taps, indices, inverse scales).
#[derive(Debug, Clone)]
enum Op {
    Despike {
        threshold: f64,
        half_window: usize,
    },
    Gather {
        idx: Vec<usize>,
    },
    SavGol(SavitzkyGolay),
    Snv {
        ddof: u8,
    },
    Msc {
        reference: Option<(Vec<f64>, f64, f64)>,
    },
    Asls(AsLs),
    Linear,
    Center {
        mean: Option<Vec<f64>>,
    },
    Scale {
        mean: Option<Vec<f64>>,
        inv: Option<Vec<f64>>,
    },
}

/// Length and segments (start, len) of the vector entering a step.
#[derive(Debug, Clone, PartialEq)]
struct Stage {
    len: usize,
    segments: Vec<(usize, usize)>,
}

/// Reusable buffers for [`Pipeline::transform_into`]: no allocation once warmed up.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    a: Vec<f64>,
    b: Vec<f64>,
    scratch: Vec<f64>,
    flags: Vec<bool>,
    asls: AsLsWorkspace,
}

impl Workspace {
    /// Empty workspace; buffers grow on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A chain of preprocessing steps on a fixed input axis.
#[derive(Debug, Clone)]
pub struct Pipeline {
    axis: Vec<f64>,
    steps: Vec<Step>,
    ops: Vec<Op>,
    stages: Vec<Stage>,
    out_axis: Vec<f64>,
}

/// Error unless `axis` is finite and strictly monotone (either direction), with ≥ 2 points.
pub fn check_axis(what: &str, axis: &[f64]) -> CoreResult<()> {
    if axis.len() < 2 {
        return Err(CoreError::AxisMismatch(format!(
            "{what} needs at least 2 points, got {}",
            axis.len()
        )));
    }
    if let Some(i) = axis.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::AxisMismatch(format!(
            "{what} value {i} is not finite ({})",
            axis[i]
        )));
    }
    let increasing = axis[1] > axis[0];
    for i in 1..axis.len() {
        let ok = if increasing {
            axis[i] > axis[i - 1]
        } else {
            axis[i] < axis[i - 1]
        };
        if !ok {
            return Err(CoreError::AxisMismatch(format!(
                "{what} is not strictly monotone at index {i} ({} then {})",
                axis[i - 1],
                axis[i]
            )));
        }
    }
    Ok(())
}

/// Linear interpolation of `y` (on `src_axis`) onto `dst_axis`. Both axes strictly monotone
/// (either direction); `dst_axis` must lie within the range of `src_axis` (no extrapolation).
pub fn resample_linear(src_axis: &[f64], y: &[f64], dst_axis: &[f64]) -> CoreResult<Vec<f64>> {
    check_axis("source axis", src_axis)?;
    check_axis("target axis", dst_axis)?;
    check_len("spectrum on the source axis", y, src_axis.len())?;
    check_finite("spectrum", y)?;
    let n = src_axis.len();
    let (lo, hi) = if src_axis[0] < src_axis[n - 1] {
        (src_axis[0], src_axis[n - 1])
    } else {
        (src_axis[n - 1], src_axis[0])
    };
    let tol = 1e-9 * (hi - lo);
    let (dlo, dhi) = dst_axis
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if dlo < lo - tol || dhi > hi + tol {
        return Err(CoreError::AxisMismatch(format!(
            "target axis {dlo}–{dhi} cm⁻¹ is not covered by the spectrum axis {lo}–{hi} cm⁻¹"
        )));
    }
    // Work on an increasing copy of the source.
    let (xs, ys): (Vec<f64>, Vec<f64>) = if src_axis[0] < src_axis[n - 1] {
        (src_axis.to_vec(), y.to_vec())
    } else {
        (
            src_axis.iter().rev().copied().collect(),
            y.iter().rev().copied().collect(),
        )
    };
    let mut out = Vec::with_capacity(dst_axis.len());
    for &v in dst_axis {
        let v = v.clamp(lo, hi);
        let j = match xs.partition_point(|&a| a <= v) {
            0 => 1,
            k if k >= n => n - 1,
            k => k,
        };
        let (x0, x1) = (xs[j - 1], xs[j]);
        let f = (v - x0) / (x1 - x0);
        out.push(ys[j - 1] + f * (ys[j] - ys[j - 1]));
    }
    Ok(out)
}

fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    let (_, m, _) = v.select_nth_unstable_by(mid, cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lower = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + m)
    }
}

fn flat_error() -> CoreError {
    CoreError::Numerical(
        "flat spectrum (all values equal): a detector dropout, not a measurement".into(),
    )
}

impl Pipeline {
    /// Build a pipeline for spectra on `axis_cm1` (strictly monotone). Steps that need fitting
    /// (MSC, centring, autoscaling without state) must be fitted with [`Pipeline::fit`] before use.
    pub fn new(axis_cm1: &[f64], steps: &[Step]) -> CoreResult<Self> {
        check_axis("model axis", axis_cm1)?;
        let mut ops = Vec::with_capacity(steps.len());
        let mut stages = Vec::with_capacity(steps.len() + 1);
        let mut cur_axis = axis_cm1.to_vec();
        let mut stage = Stage {
            len: axis_cm1.len(),
            segments: vec![(0, axis_cm1.len())],
        };
        let mut seen_region = false;
        for step in steps {
            stages.push(stage.clone());
            let len = stage.len;
            let fitted_len = |what: &'static str, v: &Option<Vec<f64>>| -> CoreResult<()> {
                if let Some(v) = v {
                    check_len(what, v, len)?;
                    check_finite(what, v)?;
                }
                Ok(())
            };
            let op = match step {
                Step::Despike {
                    threshold,
                    half_window,
                } => {
                    if !(threshold.is_finite() && *threshold > 0.0) {
                        return Err(CoreError::InvalidParameter {
                            name: "despike.threshold",
                            rule: "finite and > 0",
                            value: *threshold,
                        });
                    }
                    if *half_window == 0 {
                        return Err(CoreError::InvalidParameter {
                            name: "despike.half_window",
                            rule: ">= 1",
                            value: 0.0,
                        });
                    }
                    Op::Despike {
                        threshold: *threshold,
                        half_window: *half_window,
                    }
                }
                Step::Region { windows_cm1 } => {
                    if seen_region {
                        return Err(CoreError::InvalidConfig(
                            "pipeline has more than one region step".into(),
                        ));
                    }
                    seen_region = true;
                    if windows_cm1.is_empty() {
                        return Err(CoreError::InvalidConfig(
                            "region step needs at least one window".into(),
                        ));
                    }
                    for w in windows_cm1 {
                        if !(w[0].is_finite() && w[1].is_finite()) {
                            return Err(CoreError::InvalidConfig(format!(
                                "region window {w:?} is not finite"
                            )));
                        }
                    }
                    // Gather indices refer to the current vector; region must see the raw axis
                    // positions, so it is only allowed before any length-changing step (it is
                    // the only one).
                    let idx: Vec<usize> = (0..stage.len)
                        .filter(|&i| {
                            let v = cur_axis[i];
                            windows_cm1
                                .iter()
                                .any(|w| v >= w[0].min(w[1]) && v <= w[0].max(w[1]))
                        })
                        .collect();
                    if idx.len() < 2 {
                        return Err(CoreError::InvalidConfig(format!(
                            "region windows {windows_cm1:?} select {} points of the axis {}–{} cm⁻¹",
                            idx.len(),
                            cur_axis[0],
                            cur_axis[cur_axis.len() - 1]
                        )));
                    }
                    let mut segments = Vec::new();
                    let mut start = 0;
                    for k in 1..=idx.len() {
                        if k == idx.len() || idx[k] != idx[k - 1] + 1 {
                            segments.push((start, k - start));
                            start = k;
                        }
                    }
                    cur_axis = idx.iter().map(|&i| cur_axis[i]).collect();
                    stage = Stage {
                        len: idx.len(),
                        segments,
                    };
                    Op::Gather { idx }
                }
                Step::SavitzkyGolay {
                    window,
                    order,
                    deriv,
                    delta,
                    mode,
                } => {
                    let sg = SavitzkyGolay::new(*window, *order, *deriv, *delta, *mode)?;
                    if let Some(&(_, l)) = stage.segments.iter().find(|s| s.1 < *window) {
                        return Err(CoreError::InvalidConfig(format!(
                            "savitzky_golay window {window} is longer than a {l}-point segment"
                        )));
                    }
                    Op::SavGol(sg)
                }
                Step::Snv { ddof } => {
                    if *ddof > 1 {
                        return Err(CoreError::InvalidParameter {
                            name: "snv.ddof",
                            rule: "0 or 1",
                            value: *ddof as f64,
                        });
                    }
                    Op::Snv { ddof: *ddof }
                }
                Step::Msc { reference } => {
                    fitted_len("msc.reference", reference)?;
                    Op::Msc {
                        reference: reference.as_ref().map(|r| msc_reference(r)).transpose()?,
                    }
                }
                Step::Asls { lam, p, max_iter } => {
                    if let Some(&(_, l)) = stage.segments.iter().find(|s| s.1 < 3) {
                        return Err(CoreError::InvalidConfig(format!(
                            "asls needs segments of at least 3 points, got {l}"
                        )));
                    }
                    Op::Asls(AsLs::new(*lam, *p, *max_iter)?)
                }
                Step::Linear => Op::Linear,
                Step::MeanCenter { mean } => {
                    fitted_len("mean_center.mean", mean)?;
                    Op::Center { mean: mean.clone() }
                }
                Step::Autoscale { mean, scale } => {
                    fitted_len("autoscale.mean", mean)?;
                    fitted_len("autoscale.scale", scale)?;
                    if mean.is_some() != scale.is_some() {
                        return Err(CoreError::InvalidConfig(
                            "autoscale needs both mean and scale, or neither".into(),
                        ));
                    }
                    if let Some(s) = scale {
                        if let Some(v) = s.iter().find(|v| **v <= 0.0) {
                            return Err(CoreError::InvalidParameter {
                                name: "autoscale.scale",
                                rule: "> 0",
                                value: *v,
                            });
                        }
                    }
                    Op::Scale {
                        mean: mean.clone(),
                        inv: scale.as_ref().map(|s| s.iter().map(|v| 1.0 / v).collect()),
                    }
                }
            };
            ops.push(op);
        }
        stages.push(stage);
        Ok(Self {
            axis: axis_cm1.to_vec(),
            steps: steps.to_vec(),
            ops,
            stages,
            out_axis: cur_axis,
        })
    }

    /// The input (model) axis, cm⁻¹.
    pub fn axis(&self) -> &[f64] {
        &self.axis
    }
    /// The axis of the output variables, cm⁻¹ (after region selection).
    pub fn output_axis(&self) -> &[f64] {
        &self.out_axis
    }
    /// Number of input points.
    pub fn n_input(&self) -> usize {
        self.axis.len()
    }
    /// Number of output variables.
    pub fn n_output(&self) -> usize {
        self.out_axis.len()
    }
    /// The steps, with their fitted state.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// True when every step that learns from data has its state.
    pub fn is_fitted(&self) -> bool {
        self.ops.iter().all(|op| match op {
            Op::Msc { reference } => reference.is_some(),
            Op::Center { mean } => mean.is_some(),
            Op::Scale { mean, .. } => mean.is_some(),
            _ => true,
        })
    }

    /// Fit the data-dependent steps on the calibration spectra `x` (rows on the input axis) and
    /// return the fitted pipeline together with the preprocessed calibration matrix.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> CoreResult<(Pipeline, Array2<f64>)> {
        if x.nrows() < 2 {
            return Err(CoreError::InvalidInput(format!(
                "fitting a pipeline needs at least 2 spectra, got {}",
                x.nrows()
            )));
        }
        check_len_cols(x, self.n_input())?;
        let mut fitted = self.clone();
        let mut cur = x.to_owned();
        let mut ws = Workspace::new();
        for k in 0..fitted.ops.len() {
            // Fit the step on the data entering it.
            match &fitted.steps[k] {
                Step::Msc { .. } => {
                    let mean: Vec<f64> = cur
                        .mean_axis(Axis(0))
                        .map(|m| m.to_vec())
                        .unwrap_or_default();
                    fitted.steps[k] = Step::Msc {
                        reference: Some(mean.clone()),
                    };
                    fitted.ops[k] = Op::Msc {
                        reference: Some(msc_reference(&mean)?),
                    };
                }
                Step::MeanCenter { .. } => {
                    let mean: Vec<f64> = cur
                        .mean_axis(Axis(0))
                        .map(|m| m.to_vec())
                        .unwrap_or_default();
                    fitted.steps[k] = Step::MeanCenter {
                        mean: Some(mean.clone()),
                    };
                    fitted.ops[k] = Op::Center { mean: Some(mean) };
                }
                Step::Autoscale { .. } => {
                    let mean: Vec<f64> = cur
                        .mean_axis(Axis(0))
                        .map(|m| m.to_vec())
                        .unwrap_or_default();
                    let scale: Vec<f64> = cur
                        .std_axis(Axis(0), 1.0)
                        .iter()
                        .map(|&s| if s > 0.0 && s.is_finite() { s } else { 1.0 })
                        .collect();
                    fitted.ops[k] = Op::Scale {
                        mean: Some(mean.clone()),
                        inv: Some(scale.iter().map(|v| 1.0 / v).collect()),
                    };
                    fitted.steps[k] = Step::Autoscale {
                        mean: Some(mean),
                        scale: Some(scale),
                    };
                }
                _ => {}
            }
            let out_len = fitted.stages[k + 1].len;
            let mut next = Array2::<f64>::zeros((cur.nrows(), out_len));
            for (i, (row, mut dst)) in cur.outer_iter().zip(next.outer_iter_mut()).enumerate() {
                let src = row
                    .as_slice()
                    .ok_or_else(|| CoreError::Numerical("non-contiguous row".into()))?;
                let dst = dst
                    .as_slice_mut()
                    .ok_or_else(|| CoreError::Numerical("non-contiguous row".into()))?;
                if k == 0 {
                    check_row(src, i)?;
                }
                fitted
                    .apply_op(k, src, dst, &mut ws)
                    .map_err(|e| row_error(e, i))?;
            }
            cur = next;
        }
        if fitted.ops.is_empty() {
            for (i, row) in cur.outer_iter().enumerate() {
                check_row(row.as_slice().unwrap_or(&[]), i)?;
            }
        }
        Ok((fitted, cur))
    }

    /// Apply op `k` from `src` (stage k) into `dst` (stage k + 1).
    fn apply_op(
        &self,
        k: usize,
        src: &[f64],
        dst: &mut [f64],
        ws: &mut Workspace,
    ) -> CoreResult<()> {
        let stage = &self.stages[k];
        match &self.ops[k] {
            Op::Gather { idx } => {
                for (d, &i) in dst.iter_mut().zip(idx) {
                    *d = src[i];
                }
            }
            Op::Despike {
                threshold,
                half_window,
            } => {
                for &(s, l) in &stage.segments {
                    despike(
                        &src[s..s + l],
                        &mut dst[s..s + l],
                        *threshold,
                        *half_window,
                        &mut ws.scratch,
                        &mut ws.flags,
                    );
                }
            }
            Op::SavGol(sg) => {
                for &(s, l) in &stage.segments {
                    sg.apply_into(&src[s..s + l], &mut dst[s..s + l])?;
                }
            }
            Op::Snv { ddof } => {
                let n = src.len() as f64;
                let mean = sum(src) / n;
                let ss = sum_sq_dev(src, mean);
                let sd = (ss / (n - *ddof as f64)).sqrt();
                if !(sd > f64::MIN_POSITIVE) || !sd.is_finite() {
                    return Err(flat_error());
                }
                let inv = 1.0 / sd;
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = (v - mean) * inv;
                }
            }
            Op::Msc { reference } => {
                let (r, rmean, rss) = reference.as_ref().ok_or_else(not_fitted)?;
                let n = src.len() as f64;
                let mean = sum(src) / n;
                let cov: f64 = src
                    .iter()
                    .zip(r)
                    .map(|(x, rv)| (x - mean) * (rv - rmean))
                    .sum();
                let b = cov / rss;
                if !(b.abs() > f64::MIN_POSITIVE) || !b.is_finite() {
                    return Err(CoreError::Numerical(
                        "msc slope is zero: spectrum is unrelated to the reference".into(),
                    ));
                }
                let a = mean - b * rmean;
                let inv = 1.0 / b;
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = (v - a) * inv;
                }
            }
            Op::Asls(asls) => {
                for &(s, l) in &stage.segments {
                    asls.correct_into(&src[s..s + l], &mut ws.asls, &mut dst[s..s + l])?;
                }
            }
            Op::Linear => {
                for &(s, l) in &stage.segments {
                    let seg = &src[s..s + l];
                    let (y0, y1) = (seg[0], seg[l - 1]);
                    let slope = if l > 1 {
                        (y1 - y0) / (l - 1) as f64
                    } else {
                        0.0
                    };
                    for (j, (d, v)) in dst[s..s + l].iter_mut().zip(seg).enumerate() {
                        *d = v - (y0 + slope * j as f64);
                    }
                }
            }
            Op::Center { mean } => {
                let m = mean.as_ref().ok_or_else(not_fitted)?;
                for ((d, v), mv) in dst.iter_mut().zip(src).zip(m) {
                    *d = v - mv;
                }
            }
            Op::Scale { mean, inv } => {
                let (m, s) = mean.as_ref().zip(inv.as_ref()).ok_or_else(not_fitted)?;
                for (((d, v), mv), sv) in dst.iter_mut().zip(src).zip(m).zip(s) {
                    *d = (v - mv) * sv;
                }
            }
        }
        Ok(())
    }

    /// Preprocess one spectrum (on the input axis) into `out` (`n_output` values), reusing the
    /// buffers of `ws`. Errors: wrong length, non-finite values, flat spectrum, unfitted step.
    pub fn transform_into(&self, x: &[f64], ws: &mut Workspace, out: &mut [f64]) -> CoreResult<()> {
        check_len("spectrum", x, self.n_input())?;
        check_len("output buffer", out, self.n_output())?;
        check_row(x, usize::MAX)?;
        if self.ops.is_empty() {
            out.copy_from_slice(x);
            return Ok(());
        }
        let mut a = std::mem::take(&mut ws.a);
        let mut b = std::mem::take(&mut ws.b);
        let res = (|| {
            let last = self.ops.len() - 1;
            for k in 0..self.ops.len() {
                let out_len = self.stages[k + 1].len;
                if k == last {
                    let src: &[f64] = if k == 0 { x } else { &a[..self.stages[k].len] };
                    self.apply_op(k, src, out, ws)?;
                } else {
                    b.resize(out_len.max(b.len()), 0.0);
                    {
                        let src: &[f64] = if k == 0 { x } else { &a[..self.stages[k].len] };
                        self.apply_op(k, src, &mut b[..out_len], ws)?;
                    }
                    std::mem::swap(&mut a, &mut b);
                }
            }
            Ok(())
        })();
        ws.a = a;
        ws.b = b;
        res
    }

    /// Preprocess one spectrum, allocating the output.
    pub fn transform(&self, x: &[f64]) -> CoreResult<Vec<f64>> {
        let mut out = vec![0.0; self.n_output()];
        self.transform_into(x, &mut Workspace::new(), &mut out)?;
        Ok(out)
    }

    /// Preprocess every row of `x`; errors name the first bad row.
    pub fn transform_batch(&self, x: ArrayView2<'_, f64>) -> CoreResult<Array2<f64>> {
        check_len_cols(x, self.n_input())?;
        let mut out = Array2::<f64>::zeros((x.nrows(), self.n_output()));
        let mut ws = Workspace::new();
        let mut row_buf = Vec::new();
        for (i, (row, mut dst)) in x.outer_iter().zip(out.outer_iter_mut()).enumerate() {
            let src: &[f64] = match row.as_slice() {
                Some(s) => s,
                None => {
                    row_buf.clear();
                    row_buf.extend(row.iter().copied());
                    &row_buf
                }
            };
            let dst = dst
                .as_slice_mut()
                .ok_or_else(|| CoreError::Numerical("non-contiguous output".into()))?;
            self.transform_into(src, &mut ws, dst)
                .map_err(|e| row_error(e, i))?;
        }
        Ok(out)
    }
}

fn not_fitted() -> CoreError {
    CoreError::InvalidConfig("pipeline has steps that are not fitted (call fit first)".into())
}

fn msc_reference(r: &[f64]) -> CoreResult<(Vec<f64>, f64, f64)> {
    let n = r.len() as f64;
    let mean = sum(r) / n;
    let ss = sum_sq_dev(r, mean);
    if !(ss > 0.0) {
        return Err(CoreError::Numerical(
            "msc reference spectrum is flat".into(),
        ));
    }
    Ok((r.to_vec(), mean, ss))
}

fn check_len_cols(x: ArrayView2<'_, f64>, expected: usize) -> CoreResult<()> {
    if x.ncols() != expected {
        return Err(CoreError::ShapeMismatch {
            what: "spectra (columns)",
            expected,
            got: x.ncols(),
        });
    }
    Ok(())
}

/// Finite and not flat; `row` is usize::MAX for a single spectrum.
fn check_row(x: &[f64], row: usize) -> CoreResult<()> {
    // Σ x·0 is NaN iff some value is NaN or ±inf; eight accumulators let it vectorise.
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] * 0.0;
        }
    }
    let tail: f64 = rest.iter().map(|v| v * 0.0).sum();
    if !(acc.iter().sum::<f64>() + tail).is_finite() {
        let (j, v) = x
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
            .map(|(j, v)| (j, *v))
            .unwrap_or((0, f64::NAN));
        return Err(if row == usize::MAX {
            CoreError::InvalidInput(format!("spectrum value {j} is not finite ({v})"))
        } else {
            CoreError::InvalidInput(format!("spectrum row {row}, value {j} is not finite ({v})"))
        });
    }
    if x.len() > 1 && x.iter().all(|v| *v == x[0]) {
        return Err(flat_error());
    }
    Ok(())
}

fn row_error(e: CoreError, row: usize) -> CoreError {
    match e {
        CoreError::Numerical(m) => CoreError::Numerical(format!("spectrum row {row}: {m}")),
        CoreError::InvalidInput(m) if !m.contains("row") => {
            CoreError::InvalidInput(format!("spectrum row {row}: {m}"))
        }
        other => other,
    }
}

/// Whitaker–Hayes despiking of one segment (see [`Step::Despike`]).
fn despike(
    x: &[f64],
    out: &mut [f64],
    threshold: f64,
    half_window: usize,
    scratch: &mut Vec<f64>,
    flags: &mut Vec<bool>,
) {
    let n = x.len();
    out.copy_from_slice(x);
    if n < 3 {
        return;
    }
    scratch.clear();
    scratch.extend(x.windows(2).map(|w| w[1] - w[0]));
    let med = median_in_place(scratch);
    for v in scratch.iter_mut() {
        *v = (*v - med).abs();
    }
    let mad = median_in_place(scratch);
    if !(mad > 0.0) {
        return;
    }
    flags.clear();
    flags.resize(n, false);
    let z = |i: usize| 0.6745 * ((x[i] - x[i - 1]) - med) / mad;
    let mut any = false;
    // A spike on pixel 0 has no backward difference: it shows as a jump at 1 after which the
    // level goes on.
    if z(1).abs() > threshold && z(2).abs() <= threshold {
        flags[0] = true;
        any = true;
    }
    // (pixel 1's jump is pixel 0's spike: start after it)
    let (mut last_clean, mut i) = if flags[0] { (1, 2) } else { (0, 1) };
    while i < n {
        if flags[i] || z(i).abs() <= threshold {
            if !flags[i] {
                last_clean = i;
            }
            i += 1;
            continue;
        }
        any = true;
        // A jump at i: the spike ends at the first pixel within the window whose level is back
        // where it was at the last clean pixel (same modified z-score test on the difference,
        // less the median slope over the pixels between); the pixels from i up to it are the
        // spike. A spike running off the end of the segment ends with it.
        let base = x[last_clean];
        let end = (i + half_window.max(1)).min(n - 1);
        let back = (i + 1..=end).find(|&j| {
            let r = 0.6745 * ((x[j] - base) - (j - last_clean) as f64 * med) / mad;
            r.abs() <= threshold
        });
        match back {
            Some(j) => {
                flags[i..j].iter_mut().for_each(|f| *f = true);
                last_clean = j;
                i = j + 1;
            }
            None if i + half_window.max(1) > n - 1 => {
                flags[i..].iter_mut().for_each(|f| *f = true);
                i = n;
            }
            None => {
                flags[i] = true;
                i += 1;
            }
        }
    }
    if !any {
        return;
    }
    for i in 0..n {
        if !flags[i] {
            continue;
        }
        let lo = i.saturating_sub(half_window);
        let hi = (i + half_window).min(n - 1);
        let (mut s, mut c) = (0.0, 0usize);
        for j in lo..=hi {
            if !flags[j] {
                s += x[j];
                c += 1;
            }
        }
        if c > 0 {
            out[i] = s / c as f64;
        }
    }
}

/// Per-variable mean and standard deviation of a matrix (helper for callers and tests).
pub fn column_mean(x: ArrayView2<'_, f64>) -> Array1<f64> {
    x.mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;

    fn axis(n: usize) -> Vec<f64> {
        (0..n).map(|i| 400.0 + 2.0 * i as f64).collect()
    }

    #[test]
    fn region_selects_windows_and_segments() {
        let ax = axis(100); // 400..598
        let p = Pipeline::new(
            &ax,
            &[Step::Region {
                windows_cm1: vec![[420.0, 440.0], [500.0, 480.0]],
            }],
        )
        .unwrap();
        assert_eq!(p.n_output(), 11 + 11);
        assert_eq!(p.output_axis()[0], 420.0);
        assert_eq!(p.stages[1].segments, vec![(0, 11), (11, 11)]);
        assert!(Pipeline::new(
            &ax,
            &[Step::Region {
                windows_cm1: vec![[0.0, 10.0]]
            }]
        )
        .is_err());
    }

    #[test]
    fn rejects_bad_axes_and_inputs() {
        assert!(Pipeline::new(&[1.0, 1.0, 2.0], &[]).is_err());
        assert!(Pipeline::new(&[1.0, f64::NAN], &[]).is_err());
        let p = Pipeline::new(&axis(20), &[Step::Snv { ddof: 1 }]).unwrap();
        assert!(matches!(
            p.transform(&[0.0; 19]),
            Err(CoreError::ShapeMismatch { .. })
        ));
        let mut x: Vec<f64> = (0..20).map(|i| (i as f64).sin()).collect();
        x[3] = f64::NAN;
        assert!(matches!(p.transform(&x), Err(CoreError::InvalidInput(_))));
        let msg = p.transform(&[1.0; 20]).unwrap_err().to_string();
        assert!(msg.contains("flat spectrum"), "{msg}");
    }

    #[test]
    fn despike_removes_a_cosmic_ray() {
        let n = 200;
        let mut x: Vec<f64> = (0..n).map(|i| (i as f64 / 15.0).sin()).collect();
        let clean = x.clone();
        x[77] += 50.0;
        let p = Pipeline::new(
            &axis(n),
            &[Step::Despike {
                threshold: 6.0,
                half_window: 3,
            }],
        )
        .unwrap();
        let y = p.transform(&x).unwrap();
        assert!((y[77] - clean[77]).abs() < 0.05, "{}", y[77]);
        assert!((y[150] - clean[150]).abs() < 1e-12);
    }

    #[test]
    fn despike_removes_two_and_three_pixel_spikes_and_keeps_the_neighbours() {
        let n = 300;
        let clean: Vec<f64> = (0..n).map(|i| (i as f64 / 15.0).sin()).collect();
        let mut x = clean.clone();
        x[77] += 40.0;
        x[78] += 35.0; // a cosmic ray over two pixels
        x[150] += 30.0;
        x[151] += 45.0;
        x[152] += 20.0; // over three
        x[220] -= 25.0; // a dead-pixel dip
        x[0] += 30.0; // on the first pixel
        x[298] += 30.0;
        x[299] += 32.0; // running off the end
        let p = Pipeline::new(
            &axis(n),
            &[Step::Despike {
                threshold: 6.0,
                half_window: 3,
            }],
        )
        .unwrap();
        let y = p.transform(&x).unwrap();
        // (an edge pixel takes the mean of its one-sided neighbours: off by the local slope)
        assert!((y[0] - clean[0]).abs() < 0.3, "pixel 0: {}", y[0]);
        for i in [1, 77, 78, 150, 151, 152, 220, 298, 299] {
            assert!(
                (y[i] - clean[i]).abs() < 0.1,
                "pixel {i}: {} vs {}",
                y[i],
                clean[i]
            );
        }
        // the pixels right after each spike are untouched (they were never spikes)
        for i in [79, 153, 221, 10, 260] {
            assert!((y[i] - clean[i]).abs() < 1e-12, "pixel {i} changed");
        }
    }

    #[test]
    fn despike_a_spike_wider_than_the_window_is_no_worse_than_pixel_by_pixel() {
        // four pixels [30, 40, 35, 30] over a window of 3: no return within the window, so the
        // jumps are flagged one by one against the last clean pixel, as the plain rule does
        let n = 200;
        let clean: Vec<f64> = (0..n).map(|i| (i as f64 / 15.0).sin()).collect();
        let mut x = clean.clone();
        for (k, h) in [30.0, 40.0, 35.0, 30.0].iter().enumerate() {
            x[100 + k] += h;
        }
        let p = Pipeline::new(
            &axis(n),
            &[Step::Despike {
                threshold: 6.0,
                half_window: 3,
            }],
        )
        .unwrap();
        let y = p.transform(&x).unwrap();
        for i in 100..104 {
            assert!(
                (y[i] - clean[i]).abs() < 0.5,
                "pixel {i}: {} vs {}",
                y[i],
                clean[i]
            );
        }
        assert!((y[104] - clean[104]).abs() < 0.5, "pixel 104: {}", y[104]);
    }

    #[test]
    fn msc_and_centering_fit_on_calibration() {
        let n = 50;
        let base: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 / 7.0).sin()).collect();
        let mut x = Array2::<f64>::zeros((4, n));
        for (r, (a, b)) in [(0.1, 1.0), (-0.2, 1.5), (0.3, 0.8), (0.0, 1.2)]
            .iter()
            .enumerate()
        {
            for j in 0..n {
                x[[r, j]] = a + b * base[j];
            }
        }
        let p = Pipeline::new(
            &axis(n),
            &[
                Step::Msc { reference: None },
                Step::MeanCenter { mean: None },
            ],
        )
        .unwrap();
        assert!(!p.is_fitted());
        assert!(p.transform(&base).is_err());
        let (f, xt) = p.fit(x.view()).unwrap();
        assert!(f.is_fitted());
        // Pure offset/scale copies of one spectrum collapse onto the same corrected spectrum.
        for v in xt.iter() {
            assert!(v.abs() < 1e-10);
        }
        let again = Pipeline::new(&axis(n), f.steps()).unwrap();
        assert!(again.is_fitted());
    }

    proptest! {
        /// SNV rows have mean 0 and standard deviation 1 (ddof as configured).
        #[test]
        fn snv_rows_are_standardised(
            values in proptest::collection::vec(-1e3f64..1e3, 3..200),
            ddof in 0u8..2,
        ) {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assume!(hi - lo > 1e-6);
            let p = Pipeline::new(&axis(values.len()), &[Step::Snv { ddof }]).unwrap();
            let z = p.transform(&values).unwrap();
            let n = z.len() as f64;
            let mean = z.iter().sum::<f64>() / n;
            let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - ddof as f64);
            prop_assert!(mean.abs() < 1e-9);
            prop_assert!((var.sqrt() - 1.0).abs() < 1e-9);
        }
    }
}
