//! Online correction of soft-sensor predictions from at-line reference samples (HPLC, glucose
//! analyser): a two-state Kalman filter on [concentration c, soft-sensor bias b], both random
//! walks (reference `softsensor.md` §6; published analogue: Dong et al., *Chin. J. Chem. Eng.*
//! (2024), PLS-KF-KF).
//!
//! ```text
//! predict:   P ← P + diag(q_c, q_b)·Δt
//! spectrum:  z = ŷ_PLS = c + b + v,  H = [1 1],  R = r_prediction (≈ RMSECV²)
//! reference: z = y_ref  = c + v,     H = [1 0],  R = r_reference
//! update:    S = H P Hᵀ + R;  K = P Hᵀ/S;  x ← x + K(z − Hx);  P ← P − K H P
//! ```
//!
//! References arrive late: a sample drawn at `t_s` is analysed minutes or hours later. The
//! filter keeps a history of its states and of the predictions since `t_now − max_delay_h`; a
//! reference is applied to the state *at its sampling time* (the prediction at that time is what
//! gets compared), then the later predictions are replayed. An innovation gate rejects a
//! reference whose normalised innovation |ν|/√S exceeds `gate_sigma`; after
//! `max_consecutive_rejections` rejections in a row the next reference is accepted anyway (a
//! persistent disagreement means the sensor has drifted, not that every sample is wrong).
//! Time is in hours and supplied by the caller.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

/// Tuning of [`BiasKalman`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasKalmanConfig {
    /// Random-walk intensity of the concentration, (unit)²/h (reference: 4 (g/L)²/h).
    pub q_concentration: f64,
    /// Random-walk intensity of the bias, (unit)²/h (reference: 0.05 (g/L)²/h).
    pub q_bias: f64,
    /// Variance of a soft-sensor prediction, (unit)² (≈ RMSECV²).
    pub r_prediction: f64,
    /// Variance of a reference measurement, (unit)² (reference: 0.25 (g/L)² for HPLC).
    pub r_reference: f64,
    /// Initial bias variance, (unit)² (reference: 4).
    pub p0_bias: f64,
    /// Innovation gate in standard deviations (default 6: a gross-error gate; on the
    /// fermentation run a 4σ gate also rejects genuine references whenever the bias moves
    /// faster than `q_bias` allows).
    pub gate_sigma: f64,
    /// After this many consecutive rejections the next reference is accepted (0 = never).
    pub max_consecutive_rejections: usize,
    /// How long (h) predictions are kept for late references.
    pub max_delay_h: f64,
}

impl Default for BiasKalmanConfig {
    fn default() -> Self {
        Self {
            q_concentration: 4.0,
            q_bias: 0.05,
            r_prediction: 1.69,
            r_reference: 0.25,
            p0_bias: 4.0,
            gate_sigma: 6.0,
            max_consecutive_rejections: 2,
            max_delay_h: 24.0,
        }
    }
}

/// Filtered estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorrectedEstimate {
    /// Time of the estimate, h.
    pub time_h: f64,
    /// Corrected concentration c.
    pub value: f64,
    /// Estimated soft-sensor bias b.
    pub bias: f64,
    /// Standard deviation of c, √P_cc.
    pub std: f64,
}

/// What happened to a reference sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceOutcome {
    /// True when the reference was assimilated.
    pub accepted: bool,
    /// Innovation y_ref − ĉ(t_s).
    pub innovation: f64,
    /// Normalised innovation |ν|/√S.
    pub normalized: f64,
    /// Estimate of c at the sampling time, before this reference.
    pub estimate_before: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct State {
    t: f64,
    x: [f64; 2],
    p: [[f64; 2]; 2],
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Event {
    Prediction(f64),
    Reference(f64),
}

/// Two-state bias-tracking Kalman filter (see the module docs).
#[derive(Debug, Clone)]
pub struct BiasKalman {
    cfg: BiasKalmanConfig,
    state: Option<State>,
    /// Events with the state after each, in time order.
    history: VecDeque<(f64, Event, State)>,
    rejections: usize,
}

fn check_time(t: f64) -> CoreResult<()> {
    if !t.is_finite() {
        return Err(CoreError::NonFinite {
            name: "time_h",
            value: t,
        });
    }
    Ok(())
}

/// What [`BiasKalman::state_json`] writes: the filter's dynamic state (its tuning comes from
/// the configuration it is rebuilt with).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedState {
    format: String,
    version: u32,
    state: Option<State>,
    history: Vec<(f64, Event, State)>,
    rejections: usize,
}

const STATE_FORMAT: &str = "edgectl-biaskalman-state";

impl BiasKalman {
    /// The filter's state (estimate, covariance, the history kept for late references and
    /// the rejection count) as JSON, to resume a run without losing the correction.
    pub fn state_json(&self) -> String {
        let saved = SavedState {
            format: STATE_FORMAT.into(),
            version: 1,
            state: self.state,
            history: self.history.iter().copied().collect(),
            rejections: self.rejections,
        };
        serde_json::to_string(&saved).unwrap_or_default()
    }

    /// Restore a state written by [`BiasKalman::state_json`] (this filter's tuning is kept).
    pub fn restore_state_json(&mut self, json: &str) -> CoreResult<()> {
        let saved: SavedState = serde_json::from_str(json)
            .map_err(|e| CoreError::InvalidConfig(format!("bias Kalman state: {e}")))?;
        if saved.format != STATE_FORMAT || saved.version != 1 {
            return Err(CoreError::InvalidConfig(format!(
                "bias Kalman state: format {:?} version {}, expected {STATE_FORMAT:?} version 1",
                saved.format, saved.version
            )));
        }
        let finite = |st: &State| {
            st.t.is_finite()
                && st.x.iter().all(|v| v.is_finite())
                && st.p.iter().flatten().all(|v| v.is_finite())
        };
        if !saved
            .state
            .iter()
            .chain(saved.history.iter().map(|h| &h.2))
            .all(finite)
        {
            return Err(CoreError::InvalidConfig(
                "bias Kalman state: non-finite estimate or covariance".into(),
            ));
        }
        self.state = saved.state;
        self.history = saved.history.into_iter().collect();
        self.rejections = saved.rejections;
        Ok(())
    }

    /// New filter; every variance must be finite and > 0, the gate > 0.
    pub fn new(cfg: BiasKalmanConfig) -> CoreResult<Self> {
        for (name, v) in [
            ("q_concentration", cfg.q_concentration),
            ("q_bias", cfg.q_bias),
            ("r_prediction", cfg.r_prediction),
            ("r_reference", cfg.r_reference),
            ("p0_bias", cfg.p0_bias),
            ("gate_sigma", cfg.gate_sigma),
            ("max_delay_h", cfg.max_delay_h),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(CoreError::InvalidParameter {
                    name,
                    rule: "finite and > 0",
                    value: v,
                });
            }
        }
        Ok(Self {
            cfg,
            state: None,
            history: VecDeque::new(),
            rejections: 0,
        })
    }

    /// Configuration.
    pub fn config(&self) -> BiasKalmanConfig {
        self.cfg
    }

    /// Current estimate (None before the first prediction).
    pub fn estimate(&self) -> Option<CorrectedEstimate> {
        self.state.map(|s| to_estimate(&s))
    }

    /// Estimate propagated to `time_h` without measurement (None before the first prediction).
    pub fn estimate_at(&self, time_h: f64) -> Option<CorrectedEstimate> {
        let s = self.state?;
        Some(to_estimate(&self.propagate(s, time_h.max(s.t))))
    }

    fn propagate(&self, mut s: State, t: f64) -> State {
        let dt = (t - s.t).max(0.0);
        s.p[0][0] += self.cfg.q_concentration * dt;
        s.p[1][1] += self.cfg.q_bias * dt;
        s.t = t;
        s
    }

    fn apply(&self, s: State, ev: Event) -> State {
        let (h, z, r) = match ev {
            Event::Prediction(z) => ([1.0, 1.0], z, self.cfg.r_prediction),
            Event::Reference(z) => ([1.0, 0.0], z, self.cfg.r_reference),
        };
        kalman_update(s, h, z, r)
    }

    /// Assimilate a soft-sensor prediction `value` made at `time_h` (must not be earlier than
    /// the last prediction). Returns the corrected estimate at `time_h`.
    pub fn update_prediction(&mut self, time_h: f64, value: f64) -> CoreResult<CorrectedEstimate> {
        check_time(time_h)?;
        if !value.is_finite() {
            return Err(CoreError::NonFinite {
                name: "prediction",
                value,
            });
        }
        let s = match self.state {
            None => State {
                t: time_h,
                x: [value, 0.0],
                p: [[self.cfg.r_prediction, 0.0], [0.0, self.cfg.p0_bias]],
            },
            Some(s) => {
                if time_h < s.t {
                    return Err(CoreError::InvalidInput(format!(
                        "prediction at {time_h} h is earlier than the last one at {} h",
                        s.t
                    )));
                }
                self.apply(self.propagate(s, time_h), Event::Prediction(value))
            }
        };
        self.state = Some(s);
        self.history
            .push_back((time_h, Event::Prediction(value), s));
        self.prune(time_h);
        Ok(to_estimate(&s))
    }

    /// Assimilate a reference `value` of a sample drawn at `sampled_h` (possibly before the
    /// latest prediction). The innovation is taken against the estimate at `sampled_h`.
    pub fn update_reference(&mut self, sampled_h: f64, value: f64) -> CoreResult<ReferenceOutcome> {
        check_time(sampled_h)?;
        if !value.is_finite() {
            return Err(CoreError::NonFinite {
                name: "reference",
                value,
            });
        }
        let Some(cur) = self.state else {
            return Err(CoreError::InvalidInput(
                "a reference needs at least one soft-sensor prediction first".into(),
            ));
        };
        let oldest = self.history.front().map_or(cur.t, |h| h.0);
        if sampled_h < oldest && sampled_h < cur.t {
            return Err(CoreError::InvalidInput(format!(
                "reference sampled at {sampled_h} h is older than the kept history (from {oldest} h; raise max_delay_h)"
            )));
        }
        // State at the sampling time: the last history entry at or before it (references at the
        // same time as a prediction are applied after it, as the reference happened then).
        let split = self.history.partition_point(|h| h.0 <= sampled_h);
        let base = if split == 0 {
            self.history.front().map_or(cur, |h| h.2)
        } else {
            self.history[split - 1].2
        };
        let prior = self.propagate(base, sampled_h.max(base.t));
        let s_var = prior.p[0][0] + self.cfg.r_reference;
        let nu = value - prior.x[0];
        let normalized = nu.abs() / s_var.sqrt();
        let outcome = |accepted| ReferenceOutcome {
            accepted,
            innovation: nu,
            normalized,
            estimate_before: prior.x[0],
        };
        if normalized > self.cfg.gate_sigma
            && (self.cfg.max_consecutive_rejections == 0
                || self.rejections < self.cfg.max_consecutive_rejections)
        {
            self.rejections += 1;
            return Ok(outcome(false));
        }
        self.rejections = 0;
        let mut s = self.apply(prior, Event::Reference(value));
        let later: Vec<(f64, Event)> = self
            .history
            .iter()
            .skip(split)
            .map(|h| (h.0, h.1))
            .collect();
        self.history.truncate(split);
        let t_ref = s.t;
        self.history.push_back((t_ref, Event::Reference(value), s));
        for (t, ev) in later {
            s = self.apply(self.propagate(s, t), ev);
            self.history.push_back((t, ev, s));
        }
        self.state = Some(s);
        Ok(outcome(true))
    }

    fn prune(&mut self, now: f64) {
        while self.history.len() > 1 && self.history[1].0 < now - self.cfg.max_delay_h {
            self.history.pop_front();
        }
    }
}

fn to_estimate(s: &State) -> CorrectedEstimate {
    CorrectedEstimate {
        time_h: s.t,
        value: s.x[0],
        bias: s.x[1],
        std: s.p[0][0].max(0.0).sqrt(),
    }
}

fn kalman_update(mut s: State, h: [f64; 2], z: f64, r: f64) -> State {
    let ph = [
        s.p[0][0] * h[0] + s.p[0][1] * h[1],
        s.p[1][0] * h[0] + s.p[1][1] * h[1],
    ];
    let sv = h[0] * ph[0] + h[1] * ph[1] + r;
    let k = [ph[0] / sv, ph[1] / sv];
    let nu = z - (h[0] * s.x[0] + h[1] * s.x[1]);
    s.x[0] += k[0] * nu;
    s.x[1] += k[1] * nu;
    // Joseph-free symmetric update P ← P − K (HP), then symmetrise.
    let hp = [
        h[0] * s.p[0][0] + h[1] * s.p[1][0],
        h[0] * s.p[0][1] + h[1] * s.p[1][1],
    ];
    for i in 0..2 {
        for j in 0..2 {
            s.p[i][j] -= k[i] * hp[j];
        }
    }
    let off = 0.5 * (s.p[0][1] + s.p[1][0]);
    s.p[0][1] = off;
    s.p[1][0] = off;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_constant_bias_and_rejects_outliers() {
        let mut f = BiasKalman::new(BiasKalmanConfig {
            gate_sigma: 4.0,
            ..Default::default()
        })
        .unwrap();
        // True c = 10, the soft sensor reads 13 (bias +3). References every 2 h.
        let mut t = 0.0;
        for k in 0..200 {
            f.update_prediction(t, 13.0).unwrap();
            if k % 48 == 40 {
                assert!(f.update_reference(t - 0.5, 10.0).unwrap().accepted);
            }
            t += 1.0 / 48.0;
        }
        let e = f.estimate().unwrap();
        assert!((e.value - 10.0).abs() < 0.5, "{e:?}");
        assert!((e.bias - 3.0).abs() < 0.5);
        // A wild reference is rejected and leaves the estimate alone.
        let out = f.update_reference(t - 0.1, 60.0).unwrap();
        assert!(!out.accepted && out.normalized > 4.0);
        assert!((f.estimate().unwrap().value - 10.0).abs() < 0.5);
        // Late reference older than the history is refused clearly.
        assert!(f.update_reference(-100.0, 10.0).is_err());
    }

    #[test]
    fn saved_state_resumes_identically() {
        let cfg = BiasKalmanConfig::default();
        let mut a = BiasKalman::new(cfg).unwrap();
        for k in 0..60 {
            let t = k as f64 * 0.1;
            a.update_prediction(t, 13.0 + 0.1 * (t * 3.0).sin())
                .unwrap();
            if k == 30 {
                a.update_reference(2.5, 10.0).unwrap();
            }
        }
        let json = a.state_json();
        let mut b = BiasKalman::new(cfg).unwrap();
        b.restore_state_json(&json).unwrap();
        assert_eq!(a.estimate(), b.estimate());
        // the same future: a prediction, and a late reference reaching into the saved history
        for f in [&mut a, &mut b] {
            f.update_prediction(6.1, 13.2).unwrap();
            f.update_reference(4.0, 10.1).unwrap();
        }
        assert_eq!(a.estimate(), b.estimate());
        assert!((b.estimate().unwrap().bias - 3.0).abs() < 0.5);
        // bad input is an error that says what is wrong, and leaves the filter alone
        let before = b.estimate();
        let err = b.restore_state_json("{\"format\":\"x\"}").unwrap_err();
        assert!(err.to_string().contains("bias Kalman state"), "{err}");
        let wrong = json.replace("edgectl-biaskalman-state", "other");
        assert!(b
            .restore_state_json(&wrong)
            .unwrap_err()
            .to_string()
            .contains("format"));
        assert_eq!(b.estimate(), before);
        // an empty filter round-trips too
        let mut c = BiasKalman::new(cfg).unwrap();
        c.restore_state_json(&BiasKalman::new(cfg).unwrap().state_json())
            .unwrap();
        assert!(c.estimate().is_none());
    }

    #[test]
    fn late_reference_equals_timely_reference() {
        let cfg = BiasKalmanConfig::default();
        let preds: Vec<(f64, f64)> = (0..100)
            .map(|k| (k as f64 * 0.05, 20.0 + (k as f64 * 0.3).sin()))
            .collect();
        let mut timely = BiasKalman::new(cfg).unwrap();
        let mut late = BiasKalman::new(cfg).unwrap();
        for &(t, v) in &preds {
            timely.update_prediction(t, v).unwrap();
            if (t - 2.0).abs() < 1e-9 {
                timely.update_reference(2.0, 18.0).unwrap();
            }
            late.update_prediction(t, v).unwrap();
        }
        late.update_reference(2.0, 18.0).unwrap();
        let (a, b) = (timely.estimate().unwrap(), late.estimate().unwrap());
        assert!((a.value - b.value).abs() < 1e-9 && (a.bias - b.bias).abs() < 1e-9);
    }
}
