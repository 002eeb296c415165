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
//! - Gain schedule: a stage may carry its own master gains (Kp, Ti), applied bumplessly when it
//!   becomes active — kLa, and with it the plant gain, differs by an order of magnitude between
//!   the stirrer, the air flow and O2 enrichment (reference §4 "DO (tuning)": schedule the
//!   gains; Åkesson & Hagander, Lund). Tuning the master live tunes the active stage.
//! - Stage health: a stage can be disabled (its actuator does not deliver: an MFC reading 0
//!   whatever its setpoint). Hand-overs skip disabled stages; disabling the active stage hands
//!   over at once to the next enabled stage (above, else below). Disabled stages are parked like
//!   any other, so a recovered actuator is seen to track its command.

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

/// Master gains used while a stage is active.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageGains {
    /// Proportional gain, master output % per DO %.
    pub kp: f64,
    /// Integral time, s (∞ = no integral).
    pub ti_s: f64,
}

impl StageGains {
    fn of(master: &Pid) -> Self {
        let s = master.settings();
        Self {
            kp: s.k,
            ti_s: s.ti_s,
        }
    }

    fn validated(self) -> CoreResult<Self> {
        if !self.kp.is_finite() || self.kp <= 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "kp",
                rule: "finite and > 0",
                value: self.kp,
            });
        }
        if self.ti_s.is_nan() || self.ti_s <= 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "ti_s",
                rule: "> 0 (inf = no integral)",
                value: self.ti_s,
            });
        }
        Ok(self)
    }

    fn apply(self, master: &mut Pid) -> CoreResult<()> {
        master.set_k(self.kp)?;
        master.set_ti(self.ti_s)
    }
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
    enabled: Vec<bool>,
    gains: Vec<Option<StageGains>>,
    /// Master gains of stages without their own (captured from the master).
    base_gains: Option<StageGains>,
    /// Whether the active stage's gains are in the master.
    gains_applied: bool,
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
        let n = stages.len();
        Ok(Self {
            stages,
            hysteresis_s,
            active: 0,
            timer_s: 0.0,
            direction: 0,
            handovers: 0,
            outputs,
            enabled: vec![true; n],
            gains: vec![None; n],
            base_gains: None,
            gains_applied: false,
        })
    }

    fn check_stage(&self, k: usize) -> CoreResult<()> {
        if k >= self.stages.len() {
            return Err(CoreError::InvalidConfig(format!(
                "cascade has {} stages, no stage {k}",
                self.stages.len()
            )));
        }
        Ok(())
    }

    /// Whether each stage may be used.
    pub fn stage_enabled(&self) -> &[bool] {
        &self.enabled
    }

    /// Own master gains of each stage (`None`: the loop's base gains).
    pub fn stage_gains(&self) -> &[Option<StageGains>] {
        &self.gains
    }

    /// Give stage `k` its own master gains (`None`: use the base gains). Applied at once
    /// (bumplessly) when `k` is the active stage.
    pub fn set_stage_gains(
        &mut self,
        master: &mut Pid,
        k: usize,
        gains: Option<StageGains>,
    ) -> CoreResult<()> {
        self.check_stage(k)?;
        let gains = gains.map(StageGains::validated).transpose()?;
        if k == self.active && self.gains_applied {
            if self.gains[k].is_none() {
                self.base_gains = Some(StageGains::of(master));
            }
            gains
                .or(self.base_gains)
                .map_or(Ok(()), |g| g.apply(master))?;
        }
        self.gains[k] = gains;
        Ok(())
    }

    /// Enable or disable stage `k` (actuator failed or back). Disabling the active stage hands
    /// over at once to the next enabled stage above it, else below it (the master tracks that
    /// stage's present position: nothing jumps); with no enabled stage left it stays active.
    pub fn set_stage_enabled(
        &mut self,
        master: &mut Pid,
        k: usize,
        enabled: bool,
    ) -> CoreResult<()> {
        self.check_stage(k)?;
        self.enabled[k] = enabled;
        if !enabled && k == self.active {
            let next = self.next_enabled(k, 1).or_else(|| self.next_enabled(k, -1));
            if let Some(j) = next {
                self.switch_to(master, j, None)?;
                self.handovers += 1;
            }
        }
        Ok(())
    }

    /// The nearest enabled stage from `k` in direction `dir` (+1 up, −1 down), `k` excluded.
    fn next_enabled(&self, k: usize, dir: i8) -> Option<usize> {
        if dir > 0 {
            (k + 1..self.stages.len()).find(|&j| self.enabled[j])
        } else {
            (0..k).rev().find(|&j| self.enabled[j])
        }
    }

    /// Make `k` active: store the master's gains as the leaving stage's, track the master to
    /// `u` (default: the new stage's present position in master units), apply `k`'s gains.
    fn switch_to(&mut self, master: &mut Pid, k: usize, u: Option<f64>) -> CoreResult<()> {
        let (lo, hi) = (master.settings().output_min, master.settings().output_max);
        let u = u.unwrap_or_else(|| {
            let st = self.stages[k];
            let frac = ((self.outputs[k] - st.min) / (st.max - st.min)).clamp(0.0, 1.0);
            lo + frac * (hi - lo)
        });
        if self.gains_applied {
            let mine = StageGains::of(master);
            match &mut self.gains[self.active] {
                Some(g) => *g = mine,
                None => self.base_gains = Some(mine),
            }
        }
        self.active = k;
        self.timer_s = 0.0;
        self.direction = 0;
        master.track_to(u)?;
        self.apply_gains(master)?;
        self.place(u, lo, hi);
        Ok(())
    }

    fn apply_gains(&mut self, master: &mut Pid) -> CoreResult<()> {
        if self.base_gains.is_none() {
            self.base_gains = Some(StageGains::of(master));
        }
        if let Some(g) = self.gains[self.active].or(self.base_gains) {
            g.apply(master)?;
        }
        self.gains_applied = true;
        Ok(())
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
        self.check_stage(k)?;
        self.switch_to(master, k, None)
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
        if !self.gains_applied {
            self.apply_gains(master)?;
        }
        let u = master.update(y, dt_s)?;
        let (lo, hi) = {
            let s = master.settings();
            (s.output_min, s.output_max)
        };
        self.place(u, lo, hi);
        let tol = 1e-9 * (hi - lo);
        let e = master.last_error();
        let auto = master.mode() == Mode::Auto;
        let up = self.next_enabled(self.active, 1);
        let down = self.next_enabled(self.active, -1);
        let want = if auto && u >= hi - tol && e > 0.0 && up.is_some() {
            1
        } else if auto && u <= lo + tol && e < 0.0 && down.is_some() {
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
            // at the limit it already sits on, the new one starts from where it is parked
            // (stages skipped in between are parked on the same side as before or at the
            // limit the hand-over direction gives them).
            let (next, u_new) = if self.direction > 0 {
                (up, lo)
            } else {
                (down, hi)
            };
            if let Some(j) = next {
                self.switch_to(master, j, Some(u_new))?;
                self.handovers += 1;
            }
        }
        Ok(&self.outputs)
    }

    /// Stage positions of the last update.
    pub fn outputs(&self) -> &[f64] {
        &self.outputs
    }
}
