//! [`SoftSensor`]: a preprocessing pipeline, a PLS model, the model axis, units and T²/Q limits,
//! with a versioned, human-readable JSON model file (reference `softsensor.md` §10).
//!
//! Prediction = preprocess into a reused buffer + one dot per response; diagnostics = A dots and
//! one residual norm. Every prediction carries T², Q and an in-model flag; a spectrum that cannot
//! be preprocessed (flat dropout) is returned as [`SpectrumStatus::Invalid`] with NaN values and
//! a reason, never as a number that looks usable.
//!
//! File format (`format = "edgectl-softsensor"`, `format_version = 1`): one JSON object with
//! `created_at`, `description`, `targets` (name, unit), `axis` (unit, `wavenumber_cm1`),
//! `pipeline` (the steps with their parameters and fitted state), `output_axis_cm1`, `pls`
//! (algorithm, counts, means, matrices as lists of rows), `diagnostics` (θ, h0, Q statistics,
//! limits per confidence with the Q method) and `calibration` (RMSEC, R², optional CV curve).
//! Loading checks the format name and version first, then every shape, and that the stored
//! coefficients equal R·Qᵀ (integrity).

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::cv::CvResult;
use super::diagnostics::{Diagnostics, Limits};
use super::pls::{PlsAlgorithm, PlsModel};
use super::preprocess::{Pipeline, Step, Workspace};
use crate::error::{CoreError, CoreResult};

/// Value of the `format` field of a model file.
pub const MODEL_FORMAT: &str = "edgectl-softsensor";
/// Version of the model file layout this build reads and writes.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Confidence levels whose limits every model stores.
pub const CONFIDENCES: [f64; 2] = [0.95, 0.99];

/// Verdict on one spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpectrumStatus {
    /// Preprocessed and within the T² and Q limits: usable for control.
    InModel,
    /// Preprocessed, but T² or Q beyond its limit: extrapolation, do not control on it.
    OutOfModel,
    /// Could not be preprocessed (flat dropout spectrum, degenerate scatter correction).
    Invalid,
}

impl SpectrumStatus {
    /// `"in_model"`, `"out_of_model"` or `"invalid"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::InModel => "in_model",
            Self::OutOfModel => "out_of_model",
            Self::Invalid => "invalid",
        }
    }
}

/// Prediction for one spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// One value per response (NaN when invalid).
    pub values: Vec<f64>,
    /// Hotelling T² (NaN when invalid).
    pub t2: f64,
    /// Q residual (NaN when invalid).
    pub q: f64,
    /// Verdict.
    pub status: SpectrumStatus,
    /// Why the spectrum is invalid (empty otherwise).
    pub reason: String,
}

/// A response of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name, e.g. `glucose`.
    pub name: String,
    /// Unit, e.g. `g/L`.
    pub unit: String,
}

/// Cross-validation summary stored with a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvSummary {
    /// Scheme (`loo`, `blocks:10`, ...).
    pub scheme: String,
    /// RMSECV per LV count (rows) and response (columns).
    pub rmsecv: Vec<Vec<f64>>,
    /// Rule used to choose the LV count.
    pub rule: String,
}

/// Calibration figures of merit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Calibration samples.
    pub n_samples: usize,
    /// RMSEC per response.
    pub rmsec: Vec<f64>,
    /// R² of the calibration fit per response.
    pub r2: Vec<f64>,
    /// Cross-validation, if run.
    #[serde(default)]
    pub cv: Option<CvSummary>,
}

/// Buffers for allocation-free single-spectrum prediction.
#[derive(Debug, Default, Clone)]
pub struct PredictWorkspace {
    pre: Workspace,
    x: Vec<f64>,
    scores: Vec<f64>,
    resid: Vec<f64>,
}

/// A calibrated soft sensor (see the module docs).
#[derive(Debug, Clone)]
pub struct SoftSensor {
    pipeline: Pipeline,
    pls: PlsModel,
    diagnostics: Diagnostics,
    targets: Vec<Target>,
    confidence: f64,
    calibration: Calibration,
    created_at: String,
    description: String,
    t2_limit: f64,
    q_limit: f64,
    inv_score_var: Vec<f64>,
}

/// Options of [`SoftSensor::fit`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Latent variables.
    pub n_components: usize,
    /// PLS algorithm.
    pub algorithm: PlsAlgorithm,
    /// Responses (names and units), one per column of y.
    pub targets: Vec<Target>,
    /// Confidence level of the in-model flag (0.95 or 0.99).
    pub confidence: f64,
    /// Creation time stamp (ISO 8601), supplied by the caller (the core reads no clock).
    pub created_at: String,
    /// Free text.
    pub description: String,
}

impl SoftSensor {
    /// Fit the pipeline and the PLS model on raw spectra `x` (n × axis points) and references `y`
    /// (n × responses), compute the limits and calibration figures, and attach `cv` if given.
    pub fn fit(
        axis_cm1: &[f64],
        steps: &[Step],
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        opts: FitOptions,
        cv: Option<&CvResult>,
    ) -> CoreResult<Self> {
        if opts.targets.len() != y.ncols() {
            return Err(CoreError::ShapeMismatch {
                what: "target names",
                expected: y.ncols(),
                got: opts.targets.len(),
            });
        }
        if !CONFIDENCES.contains(&opts.confidence) {
            return Err(CoreError::InvalidParameter {
                name: "confidence",
                rule: "0.95 or 0.99",
                value: opts.confidence,
            });
        }
        let pipeline = Pipeline::new(
            axis_cm1,
            &steps.iter().map(Step::unfitted).collect::<Vec<_>>(),
        )?;
        let (pipeline, xp) = pipeline.fit(x)?;
        let pls = PlsModel::fit(xp.view(), y, opts.n_components, opts.algorithm)?;
        let diagnostics = Diagnostics::from_calibration(&pls, xp.view(), &CONFIDENCES)?;
        let pred = pls.predict(xp.view())?;
        let n = y.nrows() as f64;
        let mut rmsec = Vec::new();
        let mut r2 = Vec::new();
        for t in 0..y.ncols() {
            let col = y.column(t);
            let mean = col.sum() / n;
            let ss_res: f64 = col
                .iter()
                .zip(pred.column(t))
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            let ss_tot: f64 = col.iter().map(|a| (a - mean).powi(2)).sum();
            rmsec.push((ss_res / n).sqrt());
            r2.push(if ss_tot > 0.0 {
                1.0 - ss_res / ss_tot
            } else {
                0.0
            });
        }
        let cv = cv.map(|c| CvSummary {
            scheme: c.scheme.name(),
            rmsecv: c.rmsecv.outer_iter().map(|r| r.to_vec()).collect(),
            rule: "smallest LV count with RMSECV <= 1.02 x minimum".into(),
        });
        let calibration = Calibration {
            n_samples: y.nrows(),
            rmsec,
            r2,
            cv,
        };
        Self::assemble(
            pipeline,
            pls,
            diagnostics,
            opts.targets,
            opts.confidence,
            calibration,
            opts.created_at,
            opts.description,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        pipeline: Pipeline,
        pls: PlsModel,
        diagnostics: Diagnostics,
        targets: Vec<Target>,
        confidence: f64,
        calibration: Calibration,
        created_at: String,
        description: String,
    ) -> CoreResult<Self> {
        let lim = *diagnostics.limits_at(confidence).ok_or_else(|| {
            CoreError::ModelFormat(format!("no limits stored for confidence {confidence}"))
        })?;
        let inv_score_var = pls.score_variance().iter().map(|v| 1.0 / v).collect();
        Ok(Self {
            pipeline,
            pls,
            diagnostics,
            targets,
            confidence,
            calibration,
            created_at,
            description,
            t2_limit: lim.t2,
            q_limit: lim.q,
            inv_score_var,
        })
    }

    /// The model axis (input spectra), cm⁻¹.
    pub fn axis(&self) -> &[f64] {
        self.pipeline.axis()
    }
    /// The preprocessing pipeline (fitted).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
    /// The PLS model.
    pub fn pls(&self) -> &PlsModel {
        &self.pls
    }
    /// Diagnostics and limits.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
    }
    /// Responses.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
    /// Calibration figures.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
    /// Confidence level of the in-model flag.
    pub fn confidence(&self) -> f64 {
        self.confidence
    }
    /// Limits used for the in-model flag.
    pub fn limits(&self) -> Limits {
        self.diagnostics
            .limits_at(self.confidence)
            .copied()
            .unwrap_or(Limits {
                confidence: self.confidence,
                t2: self.t2_limit,
                q: self.q_limit,
                q_method: super::diagnostics::QLimitMethod::Box,
                q_jackson_mudholkar: f64::NAN,
                q_box: self.q_limit,
            })
    }
    /// Creation time stamp.
    pub fn created_at(&self) -> &str {
        &self.created_at
    }
    /// Description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Predict one raw spectrum on the model axis, reusing `ws`. Errors for a wrong length or
    /// non-finite values; a flat spectrum gives an [`SpectrumStatus::Invalid`] prediction.
    pub fn predict_with(&self, x: &[f64], ws: &mut PredictWorkspace) -> CoreResult<Prediction> {
        let m = self.pls.n_targets();
        let mut values = vec![f64::NAN; m];
        let (t2, q) = match self.predict_values(x, ws, &mut values) {
            Ok(v) => v,
            Err(CoreError::Numerical(reason)) => {
                return Ok(Prediction {
                    values,
                    t2: f64::NAN,
                    q: f64::NAN,
                    status: SpectrumStatus::Invalid,
                    reason,
                })
            }
            Err(e) => return Err(e),
        };
        Ok(Prediction {
            values,
            t2,
            q,
            status: self.status_of(t2, q),
            reason: String::new(),
        })
    }

    fn status_of(&self, t2: f64, q: f64) -> SpectrumStatus {
        if t2 <= self.t2_limit && q <= self.q_limit {
            SpectrumStatus::InModel
        } else {
            SpectrumStatus::OutOfModel
        }
    }

    /// Core of the fast path: values into `out`, returns (T², Q).
    #[inline]
    pub fn predict_values(
        &self,
        x: &[f64],
        ws: &mut PredictWorkspace,
        out: &mut [f64],
    ) -> CoreResult<(f64, f64)> {
        let p = self.pls.n_features();
        ws.x.resize(p, 0.0);
        ws.scores.resize(self.pls.n_components(), 0.0);
        self.pipeline.transform_into(x, &mut ws.pre, &mut ws.x)?;
        if out.len() < self.pls.n_targets() {
            return Err(CoreError::ShapeMismatch {
                what: "prediction output",
                expected: self.pls.n_targets(),
                got: out.len(),
            });
        }
        let q = self
            .pls
            .predict_scores_q(&ws.x, out, &mut ws.scores, &mut ws.resid);
        let t2 = ws
            .scores
            .iter()
            .zip(&self.inv_score_var)
            .map(|(t, iv)| t * t * iv)
            .sum();
        Ok((t2, q))
    }

    /// Predict every row of `x`: returns (values n × m, T², Q, status per row). Rows that
    /// cannot be preprocessed are Invalid with NaN; wrong width or non-finite values are errors.
    #[allow(clippy::type_complexity)]
    pub fn predict_batch(
        &self,
        x: ArrayView2<'_, f64>,
    ) -> CoreResult<(Array2<f64>, Vec<f64>, Vec<f64>, Vec<SpectrumStatus>)> {
        if x.ncols() != self.pipeline.n_input() {
            return Err(CoreError::ShapeMismatch {
                what: "spectra (columns)",
                expected: self.pipeline.n_input(),
                got: x.ncols(),
            });
        }
        let n = x.nrows();
        let m = self.pls.n_targets();
        let mut vals = Array2::<f64>::from_elem((n, m), f64::NAN);
        let mut t2s = vec![f64::NAN; n];
        let mut qs = vec![f64::NAN; n];
        let mut st = vec![SpectrumStatus::Invalid; n];
        let mut ws = PredictWorkspace::default();
        let mut row_buf = Vec::new();
        let mut out = vec![0.0; m];
        for (i, row) in x.outer_iter().enumerate() {
            let r: &[f64] = match row.as_slice() {
                Some(s) => s,
                None => {
                    row_buf.clear();
                    row_buf.extend(row.iter().copied());
                    &row_buf
                }
            };
            match self.predict_values(r, &mut ws, &mut out) {
                Ok((t2, q)) => {
                    for t in 0..m {
                        vals[[i, t]] = out[t];
                    }
                    t2s[i] = t2;
                    qs[i] = q;
                    st[i] = self.status_of(t2, q);
                }
                Err(CoreError::Numerical(_)) => {}
                Err(CoreError::InvalidInput(msg)) => {
                    return Err(CoreError::InvalidInput(format!("spectrum row {i}: {msg}")))
                }
                Err(e) => return Err(e),
            }
        }
        Ok((vals, t2s, qs, st))
    }

    /// Serialise to the JSON model document (pretty-printed).
    pub fn to_json(&self) -> CoreResult<String> {
        let pls = &self.pls;
        let rows =
            |m: Array2<f64>| -> Vec<Vec<f64>> { m.outer_iter().map(|r| r.to_vec()).collect() };
        let doc = ModelDoc {
            format: MODEL_FORMAT.into(),
            format_version: MODEL_FORMAT_VERSION,
            created_at: self.created_at.clone(),
            description: self.description.clone(),
            targets: self.targets.clone(),
            axis: AxisDoc {
                unit: "cm-1".into(),
                wavenumber_cm1: self.pipeline.axis().to_vec(),
            },
            pipeline: self.pipeline.steps().to_vec(),
            output_axis_cm1: self.pipeline.output_axis().to_vec(),
            in_model_confidence: self.confidence,
            pls: PlsDoc {
                algorithm: pls.algorithm(),
                n_components: pls.n_components(),
                n_features: pls.n_features(),
                n_targets: pls.n_targets(),
                n_samples: pls.n_samples(),
                x_mean: pls.x_mean().to_vec(),
                y_mean: pls.y_mean().to_vec(),
                score_variance: pls.score_variance().to_vec(),
                coef: rows(pls.coef()),
                x_weights: rows(pls.x_weights()),
                x_loadings: rows(pls.x_loadings()),
                x_rotations: rows(pls.x_rotations()),
                y_loadings: rows(pls.y_loadings()),
            },
            diagnostics: self.diagnostics.clone(),
            calibration: self.calibration.clone(),
        };
        serde_json::to_string_pretty(&doc)
            .map_err(|e| CoreError::ModelFormat(format!("cannot serialise model: {e}")))
    }

    /// Decode a JSON model document; `source` (a file name) prefixes every error.
    pub fn from_json(text: &str, source: &str) -> CoreResult<Self> {
        let err = |msg: String| CoreError::ModelFormat(format!("{source}: {msg}"));
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(format!("not a JSON document ({e})")))?;
        let format = value.get("format").and_then(|v| v.as_str());
        if format != Some(MODEL_FORMAT) {
            return Err(err(format!(
                "not an edgectl soft-sensor model (format is {:?}, expected {MODEL_FORMAT:?})",
                format.unwrap_or("missing")
            )));
        }
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(MODEL_FORMAT_VERSION as u64) {
            return Err(err(format!(
                "format_version {} is not supported (this edgectl reads version {MODEL_FORMAT_VERSION})",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let doc: ModelDoc = serde_json::from_value(value).map_err(|e| err(format!("{e}")))?;
        let wrap = |e: CoreError| match e {
            CoreError::AxisMismatch(m) => CoreError::AxisMismatch(format!("{source}: {m}")),
            other => err(other.to_string()),
        };
        let pipeline = Pipeline::new(&doc.axis.wavenumber_cm1, &doc.pipeline).map_err(wrap)?;
        if !pipeline.is_fitted() {
            return Err(err("pipeline has steps without fitted state".into()));
        }
        if pipeline.output_axis() != doc.output_axis_cm1.as_slice() {
            return Err(err(
                "output_axis_cm1 does not match the axis and the region steps".into(),
            ));
        }
        let p = &doc.pls;
        let flat = |what: &str, rows: &[Vec<f64>], r: usize, c: usize| -> CoreResult<Vec<f64>> {
            if rows.len() != r || rows.iter().any(|row| row.len() != c) {
                return Err(err(format!("pls.{what} must be {r} rows of {c} values")));
            }
            Ok(rows.concat())
        };
        if p.n_features != pipeline.n_output() {
            return Err(err(format!(
                "pls.n_features is {} but the pipeline outputs {} variables",
                p.n_features,
                pipeline.n_output()
            )));
        }
        let (a, nf, m) = (p.n_components, p.n_features, p.n_targets);
        if p.score_variance.len() != a || p.x_mean.len() != nf || p.y_mean.len() != m {
            return Err(err(
                "pls means or score variances do not match the stated counts".into(),
            ));
        }
        let pls = PlsModel::from_parts(
            p.algorithm,
            p.n_samples,
            p.x_mean.clone(),
            p.y_mean.clone(),
            flat("x_weights", &p.x_weights, a, nf)?,
            flat("x_loadings", &p.x_loadings, a, nf)?,
            flat("x_rotations", &p.x_rotations, a, nf)?,
            flat("y_loadings", &p.y_loadings, m, a)?,
            p.score_variance.clone(),
        )
        .map_err(|e| err(e.to_string()))?;
        let stored = flat("coef", &p.coef, m, nf)?;
        let scale = stored
            .iter()
            .fold(0.0f64, |s, v| s.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        if stored
            .iter()
            .zip(pls.coef_slice())
            .any(|(a, b)| (a - b).abs() > 1e-9 * scale)
        {
            return Err(err(
                "pls.coef differs from x_rotations · y_loadingsᵀ: the file is corrupt".into(),
            ));
        }
        if doc.targets.len() != m {
            return Err(err(format!(
                "{} targets for {m} responses",
                doc.targets.len()
            )));
        }
        if doc.diagnostics.n_components != a {
            return Err(err(
                "diagnostics.n_components differs from pls.n_components".into(),
            ));
        }
        for l in &doc.diagnostics.limits {
            if !(l.t2 > 0.0 && l.q >= 0.0) {
                return Err(err(format!(
                    "limits at confidence {} are not positive",
                    l.confidence
                )));
            }
        }
        Self::assemble(
            pipeline,
            pls,
            doc.diagnostics,
            doc.targets,
            doc.in_model_confidence,
            doc.calibration,
            doc.created_at,
            doc.description,
        )
        .map_err(|e| err(e.to_string()))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AxisDoc {
    unit: String,
    wavenumber_cm1: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlsDoc {
    algorithm: PlsAlgorithm,
    n_components: usize,
    n_features: usize,
    n_targets: usize,
    n_samples: usize,
    x_mean: Vec<f64>,
    y_mean: Vec<f64>,
    score_variance: Vec<f64>,
    coef: Vec<Vec<f64>>,
    x_weights: Vec<Vec<f64>>,
    x_loadings: Vec<Vec<f64>>,
    x_rotations: Vec<Vec<f64>>,
    y_loadings: Vec<Vec<f64>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelDoc {
    format: String,
    format_version: u32,
    created_at: String,
    description: String,
    targets: Vec<Target>,
    axis: AxisDoc,
    pipeline: Vec<Step>,
    output_axis_cm1: Vec<f64>,
    in_model_confidence: f64,
    pls: PlsDoc,
    diagnostics: Diagnostics,
    calibration: Calibration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectra::savgol::EdgeMode;

    fn synthetic(n: usize, p: usize) -> (Vec<f64>, Array2<f64>, Array2<f64>) {
        let axis: Vec<f64> = (0..p).map(|i| 800.0 + 2.0 * i as f64).collect();
        let mut s = 1u64;
        let mut rnd = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let band = |c: f64, w: f64| -> Vec<f64> {
            axis.iter()
                .map(|v| (-((v - c) / w).powi(2)).exp())
                .collect()
        };
        let (b1, b2, b3) = (band(900.0, 15.0), band(1100.0, 25.0), band(1200.0, 30.0));
        let mut x = Array2::zeros((n, p));
        let mut y = Array2::zeros((n, 1));
        for i in 0..n {
            let c1 = 10.0 * (rnd() + 0.5);
            let c2 = 5.0 * (rnd() + 0.5);
            let off = 0.2 * rnd();
            for j in 0..p {
                x[[i, j]] =
                    1.0 + off + 0.1 * c1 * b1[j] + 0.1 * c2 * b2[j] + 8.0 * b3[j] + 0.001 * rnd();
            }
            y[[i, 0]] = c1;
        }
        (axis, x, y)
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::Region {
                windows_cm1: vec![[820.0, 1250.0]],
            },
            Step::SavitzkyGolay {
                window: 11,
                order: 2,
                deriv: 1,
                delta: 1.0,
                mode: EdgeMode::Interp,
            },
            Step::Snv { ddof: 1 },
        ]
    }

    fn opts(a: usize) -> FitOptions {
        FitOptions {
            n_components: a,
            algorithm: PlsAlgorithm::Nipals,
            targets: vec![Target {
                name: "glucose".into(),
                unit: "g/L".into(),
            }],
            confidence: 0.95,
            created_at: "2026-01-01T00:00:00Z".into(),
            description: "test".into(),
        }
    }

    #[test]
    fn fit_predict_roundtrip_and_guards() {
        let (axis, x, y) = synthetic(40, 300);
        let sensor = SoftSensor::fit(&axis, &steps(), x.view(), y.view(), opts(3), None).unwrap();
        let rmsec = sensor.calibration().rmsec[0];
        assert!(rmsec < 0.5, "rmsec {rmsec}");
        let mut ws = PredictWorkspace::default();
        let p = sensor
            .predict_with(x.row(0).as_slice().unwrap(), &mut ws)
            .unwrap();
        assert_eq!(p.status, SpectrumStatus::InModel);
        assert!((p.values[0] - y[[0, 0]]).abs() < 1.0);
        // Flat spectrum: invalid, NaN, reason given.
        let flat = sensor.predict_with(&vec![1.0; 300], &mut ws).unwrap();
        assert_eq!(flat.status, SpectrumStatus::Invalid);
        assert!(flat.values[0].is_nan() && flat.reason.contains("flat"));
        // A spectrum with a foreign band: out of model.
        let mut odd = x.row(1).to_vec();
        for (j, v) in odd.iter_mut().enumerate() {
            *v += 3.0 * (-((axis[j] - 1000.0) / 10.0f64).powi(2)).exp();
        }
        assert_eq!(
            sensor.predict_with(&odd, &mut ws).unwrap().status,
            SpectrumStatus::OutOfModel
        );
        assert!(matches!(
            sensor.predict_with(&[1.0; 10], &mut ws),
            Err(CoreError::ShapeMismatch { .. })
        ));
        // JSON round trip gives identical predictions.
        let text = sensor.to_json().unwrap();
        let back = SoftSensor::from_json(&text, "m.json").unwrap();
        let p2 = back
            .predict_with(x.row(0).as_slice().unwrap(), &mut ws)
            .unwrap();
        assert_eq!(p.values, p2.values);
        assert_eq!(p.t2, p2.t2);
        // Version and corruption guards name the source.
        let bumped = text.replace("\"format_version\": 1", "\"format_version\": 99");
        let e = SoftSensor::from_json(&bumped, "m.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.json") && e.contains("format_version 99"),
            "{e}"
        );
        let e = SoftSensor::from_json("{}", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json"), "{e}");
    }
}
