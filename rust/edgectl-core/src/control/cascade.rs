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
//! - Stage health: a stage can be *failed* (its actuator does not deliver: an MFC reading 0
//!   whatever its setpoint) or taken *out of use* by the operator. Hand-overs skip both;
//!   disabling the active stage hands over at once to the next enabled stage (above, else
//!   below). A failed stage is parked like any other, so a repaired actuator is seen to track
//!   its command; an out-of-use stage is parked at its minimum. Stages above a failed one run
//!   their *degraded* gains when they have them (the plant they act on is not the same).

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

    fn validated(mut self) -> CoreResult<Self> {
        if !self.kp.is_finite() || self.kp <= 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "kp",
                rule: "finite and > 0",
                value: self.kp,
            });
        }
        if self.ti_s.is_nan() || self.ti_s < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "ti_s",
                rule: ">= 0 (0 or inf = no integral)",
                value: self.ti_s,
            });
        }
        if self.ti_s == 0.0 {
            self.ti_s = f64::INFINITY; // as the PID reads Ti = 0
        }
        Ok(self)
    }

    fn apply(self, master: &mut Pid) -> CoreResult<()> {
        master.set_k(self.kp)?;
        master.set_ti(self.ti_s)
    }
}

/// How a stage is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageUse {
    /// In use.
    Enabled,
    /// Its actuator failed: skipped by hand-overs, parked like any stage (so a repair shows as
    /// the read-back following the command); the stages above it run their degraded gains.
    Failed,
    /// Taken out of use by the operator: skipped, and parked at its minimum.
    OutOfUse,
}

/// Which gain set is in the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Base,
    Own(usize),
    Degraded(usize),
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
    usage: Vec<StageUse>,
    gains: Vec<Option<StageGains>>,
    degraded_gains: Vec<Option<StageGains>>,
    /// Master gains of stages without their own (captured from the master).
    base_gains: Option<StageGains>,
    /// The gain set now in the master (`None` before the first update).
    applied: Option<Slot>,
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
            usage: vec![StageUse::Enabled; n],
            gains: vec![None; n],
            degraded_gains: vec![None; n],
            base_gains: None,
            applied: None,
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

    /// How each stage is used.
    pub fn stage_use(&self) -> &[StageUse] {
        &self.usage
    }

    /// Whether each stage may be used.
    pub fn stage_enabled(&self) -> Vec<bool> {
        self.usage.iter().map(|u| *u == StageUse::Enabled).collect()
    }

    /// Whether stage `k` runs degraded (a stage below it has failed).
    pub fn stage_degraded(&self, k: usize) -> bool {
        self.usage[..k.min(self.usage.len())].contains(&StageUse::Failed)
    }

    /// Own master gains of each stage (`None`: the loop's base gains).
    pub fn stage_gains(&self) -> &[Option<StageGains>] {
        &self.gains
    }

    /// Master gains of each stage while a stage below it has failed (`None`: its own gains).
    pub fn stage_degraded_gains(&self) -> &[Option<StageGains>] {
        &self.degraded_gains
    }

    /// Master gains of stages without their own (`None` until the first update captures them
    /// from the master). The set in use lives in the master: call
    /// [`DoCascade::store_live_gains`] first to read it back here.
    pub fn base_gains(&self) -> Option<StageGains> {
        self.base_gains
    }

    /// Copy the master's present gains (live tuning) into the gain set in use, so that
    /// [`DoCascade::stage_gains`], [`DoCascade::stage_degraded_gains`] and
    /// [`DoCascade::base_gains`] show them (for saving the state).
    pub fn store_live_gains(&mut self, master: &Pid) {
        self.save(master);
    }

    fn validated(k: usize, gains: Option<StageGains>) -> CoreResult<Option<StageGains>> {
        gains
            .map(StageGains::validated)
            .transpose()
            .map_err(|e| CoreError::InvalidConfig(format!("cascade stage {k} gains: {e}")))
    }

    /// Give stage `k` its own master gains (`None`: use the base gains). Applied at once
    /// (bumplessly) when they are the active stage's gains in use.
    pub fn set_stage_gains(
        &mut self,
        master: &mut Pid,
        k: usize,
        gains: Option<StageGains>,
    ) -> CoreResult<()> {
        self.check_stage(k)?;
        let gains = Self::validated(k, gains)?;
        self.save(master);
        self.gains[k] = gains;
        self.reapply(master)
    }

    /// Give stage `k` the master gains it runs while a stage below it has failed (`None`: its
    /// own gains then too).
    pub fn set_stage_degraded_gains(
        &mut self,
        master: &mut Pid,
        k: usize,
        gains: Option<StageGains>,
    ) -> CoreResult<()> {
        self.check_stage(k)?;
        let gains = Self::validated(k, gains)?;
        self.save(master);
        self.degraded_gains[k] = gains;
        self.reapply(master)
    }

    /// Set the base gains (stages without their own), e.g. restored after a restart.
    pub fn set_base_gains(&mut self, master: &mut Pid, gains: StageGains) -> CoreResult<()> {
        let gains = gains.validated()?;
        self.save(master);
        self.base_gains = Some(gains);
        self.reapply(master)
    }

    /// Enable or disable stage `k` (actuator failed or back). Disabling the active stage hands
    /// over at once to the next enabled stage above it, else below it (the master tracks that
    /// stage's present position: nothing jumps); with no enabled stage left it stays active.
    /// Same as [`DoCascade::set_stage_use`] with `Enabled` / `Failed`.
    pub fn set_stage_enabled(
        &mut self,
        master: &mut Pid,
        k: usize,
        enabled: bool,
    ) -> CoreResult<()> {
        let usage = if enabled {
            StageUse::Enabled
        } else {
            StageUse::Failed
        };
        self.set_stage_use(master, k, usage)
    }

    /// Set how stage `k` is used; the master's gains follow (degraded or not), bumplessly.
    pub fn set_stage_use(&mut self, master: &mut Pid, k: usize, usage: StageUse) -> CoreResult<()> {
        self.check_stage(k)?;
        self.save(master);
        self.usage[k] = usage;
        if usage != StageUse::Enabled && k == self.active {
            let next = self.next_enabled(k, 1).or_else(|| self.next_enabled(k, -1));
            if let Some(j) = next {
                self.switch_to(master, j, None)?;
                self.handovers += 1;
                return Ok(());
            }
        }
        self.reapply(master)?;
        if self.applied.is_some() {
            // an out-of-use stage goes to its minimum at once, the others stay where they are
            let (lo, hi) = (master.settings().output_min, master.settings().output_max);
            self.place(master.output(), lo, hi);
        }
        Ok(())
    }

    /// The nearest enabled stage from `k` in direction `dir` (+1 up, −1 down), `k` excluded.
    fn next_enabled(&self, k: usize, dir: i8) -> Option<usize> {
        let ok = |j: &usize| self.usage[*j] == StageUse::Enabled;
        if dir > 0 {
            (k + 1..self.stages.len()).find(ok)
        } else {
            (0..k).rev().find(ok)
        }
    }

    fn slot_for(&self, k: usize) -> Slot {
        if self.degraded_gains[k].is_some() && self.stage_degraded(k) {
            Slot::Degraded(k)
        } else if self.gains[k].is_some() {
            Slot::Own(k)
        } else {
            Slot::Base
        }
    }

    /// Store the master's present gains into the set in use (live tuning tunes that set).
    fn save(&mut self, master: &Pid) {
        let mine = StageGains::of(master);
        match self.applied {
            None => {}
            Some(Slot::Base) => self.base_gains = Some(mine),
            Some(Slot::Own(k)) => self.gains[k] = Some(mine),
            Some(Slot::Degraded(k)) => self.degraded_gains[k] = Some(mine),
        }
    }

    /// Put the active stage's gain set into the master (bumpless in the core PID).
    fn reapply(&mut self, master: &mut Pid) -> CoreResult<()> {
        if self.applied.is_none() {
            return Ok(()); // applied at the first update
        }
        self.apply_gains(master)
    }

    fn apply_gains(&mut self, master: &mut Pid) -> CoreResult<()> {
        if self.base_gains.is_none() {
            self.base_gains = Some(StageGains::of(master));
        }
        let slot = self.slot_for(self.active);
        let g = match slot {
            Slot::Base => self.base_gains,
            Slot::Own(k) => self.gains[k],
            Slot::Degraded(k) => self.degraded_gains[k],
        };
        if let Some(g) = g {
            g.apply(master)?;
        }
        self.applied = Some(slot);
        Ok(())
    }

    /// Make `k` active: store the master's gains into the set in use, track the master to `u`
    /// (default: the new stage's present position in master units), apply `k`'s gains. In
    /// manual the master's manual output moves to `u` too, so no stage jumps.
    fn switch_to(&mut self, master: &mut Pid, k: usize, u: Option<f64>) -> CoreResult<()> {
        let (lo, hi) = (master.settings().output_min, master.settings().output_max);
        let u = u.unwrap_or_else(|| {
            let st = self.stages[k];
            let frac = ((self.outputs[k] - st.min) / (st.max - st.min)).clamp(0.0, 1.0);
            lo + frac * (hi - lo)
        });
        self.save(master);
        self.active = k;
        self.timer_s = 0.0;
        self.direction = 0;
        master.track_to(u)?;
        if master.mode() == Mode::Manual {
            master.set_manual_output(u)?;
        }
        self.apply_gains(master)?;
        self.place(u, lo, hi);
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
            *out = if self.usage[j] == StageUse::OutOfUse {
                st.min
            } else if j < self.active {
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
        if self.applied.is_none() {
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
