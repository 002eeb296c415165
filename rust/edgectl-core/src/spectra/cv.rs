//! Cross-validation of a preprocessing pipeline + PLS model, giving the RMSECV curve for
//! 1…A latent variables and the parsimonious choice of A (reference `softsensor.md` §2).
//!
//! The pipeline (including MSC references and centring) and the PLS model are refitted inside
//! every fold, so nothing of a left-out sample leaks into its prediction. One fit per fold gives
//! the predictions of every LV count, because PLS components are nested.
//!
//! Schemes: contiguous [`CvScheme::Blocks`] (scikit-learn `KFold(k)` without shuffling; the
//! right default for time series, where neighbours are autocorrelated), interleaved
//! [`CvScheme::Venetian`], [`CvScheme::LeaveOneOut`], and [`CvScheme::Groups`]
//! (leave-one-batch-out, the design the reference recommends for runs).

use ndarray::{Array2, ArrayView2, Axis};

use super::pls::{PlsAlgorithm, PlsModel};
use super::preprocess::{Pipeline, Step};
use crate::error::{CoreError, CoreResult};

/// How samples are split into folds.
#[derive(Debug, Clone, PartialEq)]
pub enum CvScheme {
    /// `k` contiguous blocks; the first `n mod k` blocks have one extra sample (as scikit-learn).
    Blocks { k: usize },
    /// `k` interleaved folds: sample `i` goes to fold `i mod k` ("venetian blinds").
    Venetian { k: usize },
    /// One fold per sample.
    LeaveOneOut,
    /// One fold per distinct label (e.g. batch or run id).
    Groups(Vec<i64>),
}

impl CvScheme {
    /// Parse `loo`, `blocks:K`, `kfold:K` (alias of blocks), `venetian:K`.
    pub fn parse(s: &str) -> CoreResult<Self> {
        let bad = || {
            CoreError::InvalidConfig(format!(
                "cv scheme must be loo, blocks:K, kfold:K or venetian:K (K ≥ 2), got {s:?}"
            ))
        };
        if s == "loo" {
            return Ok(Self::LeaveOneOut);
        }
        let (name, k) = s.split_once(':').ok_or_else(bad)?;
        let k: usize = k.parse().map_err(|_| bad())?;
        if k < 2 {
            return Err(bad());
        }
        match name {
            "blocks" | "kfold" => Ok(Self::Blocks { k }),
            "venetian" => Ok(Self::Venetian { k }),
            _ => Err(bad()),
        }
    }

    /// Readable name (`loo`, `blocks:10`, `venetian:5`, `groups:N`).
    pub fn name(&self) -> String {
        match self {
            Self::Blocks { k } => format!("blocks:{k}"),
            Self::Venetian { k } => format!("venetian:{k}"),
            Self::LeaveOneOut => "loo".into(),
            Self::Groups(g) => {
                let mut u = g.clone();
                u.sort_unstable();
                u.dedup();
                format!("groups:{}", u.len())
            }
        }
    }

    /// Fold index of each of `n` samples.
    pub fn assign(&self, n: usize) -> CoreResult<Vec<usize>> {
        match self {
            Self::Blocks { k } | Self::Venetian { k } if *k < 2 || *k > n => {
                Err(CoreError::InvalidParameter {
                    name: "cv folds",
                    rule: "between 2 and the number of samples",
                    value: *k as f64,
                })
            }
            Self::Blocks { k } => {
                let (base, extra) = (n / k, n % k);
                let mut out = Vec::with_capacity(n);
                for f in 0..*k {
                    let size = base + usize::from(f < extra);
                    out.extend(std::iter::repeat_n(f, size));
                }
                Ok(out)
            }
            Self::Venetian { k } => Ok((0..n).map(|i| i % k).collect()),
            Self::LeaveOneOut => Ok((0..n).collect()),
            Self::Groups(g) => {
                if g.len() != n {
                    return Err(CoreError::ShapeMismatch {
                        what: "cv group labels",
                        expected: n,
                        got: g.len(),
                    });
                }
                let mut u = g.clone();
                u.sort_unstable();
                u.dedup();
                if u.len() < 2 {
                    return Err(CoreError::InvalidConfig(
                        "cv groups need at least 2 distinct labels".into(),
                    ));
                }
                Ok(g.iter().map(|v| u.binary_search(v).unwrap_or(0)).collect())
            }
        }
    }
}

/// Result of [`cross_validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct CvResult {
    /// Scheme used.
    pub scheme: CvScheme,
    /// Largest LV count evaluated.
    pub max_components: usize,
    /// RMSECV, `max_components × n_targets` (row a − 1 = a latent variables).
    pub rmsecv: Array2<f64>,
    /// Cross-validated predictions, `max_components × n × n_targets` flattened row-major.
    pub predictions: Vec<f64>,
    /// Number of samples.
    pub n_samples: usize,
    /// Number of responses.
    pub n_targets: usize,
}

impl CvResult {
    /// RMSECV combined over targets, √(mean over targets of RMSECV²), one value per LV count.
    pub fn rmsecv_combined(&self) -> Vec<f64> {
        self.rmsecv
            .outer_iter()
            .map(|r| (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64).sqrt())
            .collect()
    }

    /// The smallest LV count whose combined RMSECV is within `(1 + tolerance)` of the minimum
    /// (reference §2/§8 use tolerance = 0.02).
    pub fn choose_components(&self, tolerance: f64) -> usize {
        choose_components(&self.rmsecv_combined(), tolerance)
    }

    /// Cross-validated predictions of the model with `a` latent variables, n × m.
    pub fn predictions_for(&self, a: usize) -> CoreResult<Array2<f64>> {
        if a == 0 || a > self.max_components {
            return Err(CoreError::InvalidParameter {
                name: "n_components",
                rule: "between 1 and max_components",
                value: a as f64,
            });
        }
        let size = self.n_samples * self.n_targets;
        let v = self.predictions[(a - 1) * size..a * size].to_vec();
        Array2::from_shape_vec((self.n_samples, self.n_targets), v)
            .map_err(|e| CoreError::Numerical(e.to_string()))
    }
}

/// Smallest index + 1 whose value is ≤ (1 + tolerance)·min(values).
pub fn choose_components(rmsecv: &[f64], tolerance: f64) -> usize {
    let min = rmsecv.iter().copied().fold(f64::INFINITY, f64::min);
    rmsecv
        .iter()
        .position(|v| *v <= (1.0 + tolerance) * min)
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Cross-validate `steps` + PLS on raw spectra `x` (n × points on `axis_cm1`) and responses `y`
/// (n × m) for 1…`max_components` latent variables.
pub fn cross_validate(
    axis_cm1: &[f64],
    steps: &[Step],
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    max_components: usize,
    algorithm: PlsAlgorithm,
    scheme: &CvScheme,
) -> CoreResult<CvResult> {
    let n = x.nrows();
    let m = y.ncols();
    if y.nrows() != n {
        return Err(CoreError::ShapeMismatch {
            what: "references (rows)",
            expected: n,
            got: y.nrows(),
        });
    }
    if max_components == 0 {
        return Err(CoreError::InvalidParameter {
            name: "max_components",
            rule: ">= 1",
            value: 0.0,
        });
    }
    let pipeline = Pipeline::new(
        axis_cm1,
        &steps.iter().map(Step::unfitted).collect::<Vec<_>>(),
    )?;
    let folds = scheme.assign(n)?;
    let n_folds = folds.iter().copied().max().map_or(0, |v| v + 1);
    let size = n * m;
    let mut preds = vec![f64::NAN; max_components * size];
    for f in 0..n_folds {
        let train: Vec<usize> = (0..n).filter(|&i| folds[i] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&i| folds[i] == f).collect();
        if test.is_empty() {
            continue;
        }
        let xt = x.select(Axis(0), &train);
        let yt = y.select(Axis(0), &train);
        let (fitted, xt_pre) = pipeline.fit(xt.view())?;
        let pls = PlsModel::fit(xt_pre.view(), yt.view(), max_components, algorithm).map_err(|e| match e {
            CoreError::InvalidParameter { .. } => CoreError::InvalidConfig(format!(
                "cv fold {f} has {} training samples: too few for {max_components} latent variables",
                train.len()
            )),
            other => other,
        })?;
        let xv = fitted.transform_batch(x.select(Axis(0), &test).view())?;
        for a in 1..=max_components {
            let p = pls.predict_with(xv.view(), a)?;
            for (r, &i) in test.iter().enumerate() {
                for t in 0..m {
                    preds[(a - 1) * size + i * m + t] = p[[r, t]];
                }
            }
        }
    }
    let mut rmsecv = Array2::<f64>::zeros((max_components, m));
    for a in 0..max_components {
        for t in 0..m {
            let press: f64 = (0..n)
                .map(|i| (preds[a * size + i * m + t] - y[[i, t]]).powi(2))
                .sum();
            rmsecv[[a, t]] = (press / n as f64).sqrt();
        }
    }
    Ok(CvResult {
        scheme: scheme.clone(),
        max_components,
        rmsecv,
        predictions: preds,
        n_samples: n,
        n_targets: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_assignment_matches_sklearn_kfold() {
        // KFold(3) on 8 samples: sizes 3, 3, 2.
        assert_eq!(
            CvScheme::Blocks { k: 3 }.assign(8).unwrap(),
            vec![0, 0, 0, 1, 1, 1, 2, 2]
        );
        assert_eq!(
            CvScheme::Venetian { k: 3 }.assign(5).unwrap(),
            vec![0, 1, 2, 0, 1]
        );
        assert_eq!(
            CvScheme::Groups(vec![7, 7, 3, 9]).assign(4).unwrap(),
            vec![1, 1, 0, 2]
        );
        assert!(CvScheme::Blocks { k: 9 }.assign(8).is_err());
        assert_eq!(
            CvScheme::parse("kfold:10").unwrap(),
            CvScheme::Blocks { k: 10 }
        );
        assert_eq!(CvScheme::parse("loo").unwrap(), CvScheme::LeaveOneOut);
        assert!(CvScheme::parse("blocks:1").is_err());
        assert!(CvScheme::parse("bogus").is_err());
    }

    #[test]
    fn parsimony_rule() {
        assert_eq!(
            choose_components(&[5.0, 2.0, 1.3, 1.29, 1.31, 1.28], 0.02),
            3
        );
        assert_eq!(choose_components(&[5.0, 2.0, 1.5, 1.0], 0.02), 4);
    }
}
