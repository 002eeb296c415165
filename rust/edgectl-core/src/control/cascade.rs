//! Sequential DO cascade: one master PID drives stirrer → air flow → O2 fraction (reference §4,
//! DCU3 §6.9–6.13, manual p.44, p.46, p.51, p.53).
//!
//! - The active stage receives the master output scaled to its [min, max]; lower stages are
//!   parked at their max, higher stages at their min.
//! - Hand-over up: the master output sits at its upper limit with a positive error (more oxygen
//!   needed) continuously for `hysteresis_s`; down: at its lower limit with a negative error.
//! - On hand-over the master integral is re-initialised by tracking
//!   (I = position of the new stage − P − D − u_ff, expressed in master output units), so no
//!   actuator moves at the switch and the next update continues smoothly.

use super::pid::{Mode, Pid};
use crate::error::{check_dt, CoreError, CoreResult};

/// One actuator of the cascade with its working range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeStage {
    /// Position when parked below (and at 0 % master output).
    pub min: f64,
    /// Position when parked above (and at 100 % master output).
    pub max: f64,
}

/// The hand-over logic of a sequential cascade. It does not own the master [`Pid`]: each
/// [`DoCascade::update`] borrows it, so the master stays tunable on its own.
#[derive(Debug, Clone)]
pub struct DoCascade {
    stages: Vec<CascadeStage>,
    hysteresis_s: f64,
    active: usize,
    timer_s: f64,
    direction: i8,
    handovers: u64,
    outputs: Vec<f64>,
}

impl DoCascade {
    /// A cascade over `stages` (at least one; each `max > min`), starting with stage 0 active.
    pub fn new(stages: Vec<CascadeStage>, hysteresis_s: f64) -> CoreResult<Self> {
        if stages.is_empty() {
            return Err(CoreError::InvalidConfig(
                "a DO cascade needs at least one stage".into(),
            ));
        }
        for (k, st) in stages.iter().enumerate() {
            if !st.min.is_finite() || !st.max.is_finite() || st.max <= st.min {
                return Err(CoreError::InvalidConfig(format!(
                    "cascade stage {k}: need finite min < max, got min={} max={}",
                    st.min, st.max
                )));
            }
        }
        if !hysteresis_s.is_finite() || hysteresis_s < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "hysteresis_s",
                rule: "finite and >= 0",
                value: hysteresis_s,
            });
        }
        let outputs = stages.iter().map(|s| s.min).collect();
        Ok(Self {
            stages,
            hysteresis_s,
            active: 0,
            timer_s: 0.0,
            direction: 0,
            handovers: 0,
            outputs,
        })
    }

    /// Stage definitions.
    pub fn stages(&self) -> &[CascadeStage] {
        &self.stages
    }

    /// Index of the active stage.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Number of hand-overs so far (both directions).
    pub fn handovers(&self) -> u64 {
        self.handovers
    }

    /// Hysteresis delay in s.
    pub fn hysteresis_s(&self) -> f64 {
        self.hysteresis_s
    }

    /// Change the hysteresis delay.
    pub fn set_hysteresis_s(&mut self, h: f64) -> CoreResult<()> {
        if !h.is_finite() || h < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "hysteresis_s",
                rule: "finite and >= 0",
                value: h,
            });
        }
        self.hysteresis_s = h;
        Ok(())
    }

    /// Select the active stage by hand (start-up, operator); the master is re-initialised by
    /// tracking to that stage's present position.
    pub fn set_active(&mut self, master: &mut Pid, k: usize) -> CoreResult<()> {
        if k >= self.stages.len() {
            return Err(CoreError::InvalidConfig(format!(
                "cascade has {} stages, no stage {k}",
                self.stages.len()
            )));
        }
        let pos = self.outputs[k];
        self.active = k;
        self.timer_s = 0.0;
        self.direction = 0;
        let st = self.stages[k];
        let (lo, hi) = (master.settings().output_min, master.settings().output_max);
        let frac = (pos - st.min) / (st.max - st.min);
        let u = lo + frac * (hi - lo);
        master.track_to(u)?;
        self.place(u, lo, hi);
        Ok(())
    }

    fn place(&mut self, u: f64, lo: f64, hi: f64) {
        let frac = ((u - lo) / (hi - lo)).clamp(0.0, 1.0);
        for (j, (st, out)) in self.stages.iter().zip(self.outputs.iter_mut()).enumerate() {
            *out = if j < self.active {
                st.max
            } else if j > self.active {
                st.min
            } else {
                st.min + frac * (st.max - st.min)
            };
        }
    }

    /// Run the master on measurement `y` (DO, % sat.) after `dt_s` s and place every stage;
    /// returns the stage positions. Errors leave master and cascade untouched.
    pub fn update(&mut self, master: &mut Pid, y: f64, dt_s: f64) -> CoreResult<&[f64]> {
        check_dt(dt_s)?;
        let u = master.update(y, dt_s)?;
        let (lo, hi) = {
            let s = master.settings();
            (s.output_min, s.output_max)
        };
        self.place(u, lo, hi);
        let tol = 1e-9 * (hi - lo);
        let e = master.last_error();
        let auto = master.mode() == Mode::Auto;
        let n = self.stages.len();
        let want = if auto && u >= hi - tol && e > 0.0 && self.active + 1 < n {
            1
        } else if auto && u <= lo + tol && e < 0.0 && self.active > 0 {
            -1
        } else {
            0
        };
        if want == 0 {
            self.direction = 0;
            self.timer_s = 0.0;
        } else if want == self.direction {
            self.timer_s += dt_s;
        } else {
            self.direction = want;
            self.timer_s = dt_s;
        }
        if self.direction != 0 && self.timer_s >= self.hysteresis_s {
            // Hand over. Positions do not change at this instant: the old stage is now parked
            // at the limit it already sits on, the new one starts from where it is parked.
            if self.direction > 0 {
                self.active += 1;
                master.track_to(lo)?;
            } else {
                self.active -= 1;
                master.track_to(hi)?;
            }
            self.handovers += 1;
            self.direction = 0;
            self.timer_s = 0.0;
        }
        Ok(&self.outputs)
    }

    /// Stage positions of the last update.
    pub fn outputs(&self) -> &[f64] {
        &self.outputs
    }
}
