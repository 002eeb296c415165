//! Split range: one controller output to two actuators (reference §4: pH base pump / CO2 valve
//! or acid pump on DCU3 §6.8, manual p.45; heater / cooling on §6.5, p.41).
//!
//! ```text
//! u ∈ [input_min, input_max], split point s, dead band ±db around s
//! high = high_max·(u − s − db)/(input_max − s − db)   if u > s + db, else 0
//! low  = low_max·(s − db − u)/(s − db − input_min)    if u < s − db, else 0
//! ```
//!
//! Both outputs are computed from the present `u` on every call, so the first sample after a
//! change of side is already correct (the IndPenSim port documents stale-value bugs in exactly
//! this logic, reference §3). The two outputs are never both non-zero. An optional change-over
//! time keeps both off for a while before the other side may start (heat/cool fighting).

use crate::error::{check_dt, CoreError, CoreResult};

/// Settings of a [`SplitRange`].
#[derive(Debug, Clone, PartialEq)]
pub struct SplitRangeSettings {
    /// Lowest controller output (e.g. −100 %).
    pub input_min: f64,
    /// Highest controller output (e.g. +100 %).
    pub input_max: f64,
    /// Split point between the two sides (normally 0).
    pub split: f64,
    /// Dead band ±db around the split point where both outputs are off.
    pub deadband: f64,
    /// Full scale of the low-side actuator (reached at `input_min`).
    pub low_max: f64,
    /// Full scale of the high-side actuator (reached at `input_max`).
    pub high_max: f64,
    /// Minimum time in s with both sides off before the other side may start (0 = none).
    pub changeover_s: f64,
}

impl Default for SplitRangeSettings {
    fn default() -> Self {
        Self {
            input_min: -100.0,
            input_max: 100.0,
            split: 0.0,
            deadband: 0.0,
            low_max: 100.0,
            high_max: 100.0,
            changeover_s: 0.0,
        }
    }
}

fn bad(name: &'static str, rule: &'static str, value: f64) -> CoreError {
    CoreError::InvalidParameter { name, rule, value }
}

impl SplitRangeSettings {
    /// Check every field.
    pub fn validated(self) -> CoreResult<Self> {
        for (name, v) in [
            ("input_min", self.input_min),
            ("input_max", self.input_max),
            ("split", self.split),
            ("deadband", self.deadband),
            ("low_max", self.low_max),
            ("high_max", self.high_max),
            ("changeover_s", self.changeover_s),
        ] {
            if !v.is_finite() {
                return Err(CoreError::NonFinite { name, value: v });
            }
        }
        if self.deadband < 0.0 {
            return Err(bad("deadband", ">= 0", self.deadband));
        }
        if self.changeover_s < 0.0 {
            return Err(bad("changeover_s", ">= 0", self.changeover_s));
        }
        if self.input_max <= self.split + self.deadband {
            return Err(bad("input_max", "> split + deadband", self.input_max));
        }
        if self.input_min >= self.split - self.deadband {
            return Err(bad("input_min", "< split - deadband", self.input_min));
        }
        if self.low_max <= 0.0 {
            return Err(bad("low_max", "> 0", self.low_max));
        }
        if self.high_max <= 0.0 {
            return Err(bad("high_max", "> 0", self.high_max));
        }
        Ok(self)
    }
}

/// Which side acted last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Neither output on.
    None,
    /// The low-side actuator (acid, CO2, cooling).
    Low,
    /// The high-side actuator (base, heater).
    High,
}

/// Split-range block (stateless except for the optional change-over timer).
#[derive(Debug, Clone)]
pub struct SplitRange {
    s: SplitRangeSettings,
    last_side: Side,
    off_time_s: f64,
    out: (f64, f64),
}

impl SplitRange {
    /// A new block, both outputs off.
    pub fn new(settings: SplitRangeSettings) -> CoreResult<Self> {
        let s = settings.validated()?;
        Ok(Self {
            off_time_s: f64::INFINITY,
            s,
            last_side: Side::None,
            out: (0.0, 0.0),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &SplitRangeSettings {
        &self.s
    }

    /// Map controller output `u` to `(low, high)` actuator values; `dt_s` advances the
    /// change-over timer. Errors (non-finite `u`, bad `dt_s`) leave the state unchanged.
    pub fn update(&mut self, u: f64, dt_s: f64) -> CoreResult<(f64, f64)> {
        check_dt(dt_s)?;
        if !u.is_finite() {
            return Err(CoreError::NonFinite {
                name: "controller_output",
                value: u,
            });
        }
        let (low, high) = self.map(u);
        let want = if high > 0.0 {
            Side::High
        } else if low > 0.0 {
            Side::Low
        } else {
            Side::None
        };
        let prev_on = self.out.0 > 0.0 || self.out.1 > 0.0;
        // Time with both off, counting this tick if the previous tick had both off.
        let off_time = if prev_on { 0.0 } else { self.off_time_s + dt_s };
        let blocked = want != Side::None
            && self.last_side != Side::None
            && want != self.last_side
            && (prev_on || off_time < self.s.changeover_s);
        let out = if blocked && self.s.changeover_s > 0.0 {
            (0.0, 0.0)
        } else {
            (low, high)
        };
        self.off_time_s = if out.0 > 0.0 || out.1 > 0.0 {
            0.0
        } else {
            off_time
        };
        if want != Side::None && out != (0.0, 0.0) {
            self.last_side = want;
        }
        self.out = out;
        Ok(out)
    }

    /// The pure mapping without timer (what `update` returns when no change-over is pending).
    pub fn map(&self, u: f64) -> (f64, f64) {
        let s = &self.s;
        let u = u.clamp(s.input_min, s.input_max);
        let hi_edge = s.split + s.deadband;
        let lo_edge = s.split - s.deadband;
        if u > hi_edge {
            let f = ((u - hi_edge) / (s.input_max - hi_edge)).min(1.0);
            (0.0, s.high_max * f)
        } else if u < lo_edge {
            let f = ((lo_edge - u) / (lo_edge - s.input_min)).min(1.0);
            (s.low_max * f, 0.0)
        } else {
            (0.0, 0.0)
        }
    }

    /// The outputs of the last update as `(low, high)`.
    pub fn outputs(&self) -> (f64, f64) {
        self.out
    }
}
