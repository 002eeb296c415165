//! Heater over-temperature ladder: reduce → disable → trip (reference §4.4, checklist 12;
//! thresholds after Pioreactor `core/pioreactor/models.py`: ×0.9 at 63 °C, PWM 0 at 65 °C,
//! shut-down at 66 °C on the 20 mL v1.0 heater PCB).
//!
//! Levels rise as soon as the temperature reaches a threshold and fall only when it is
//! `hysteresis_c` below it. A trip latches until [`OverTempLadder::reset`] is called with the
//! temperature back below the reduce level minus the hysteresis. A non-finite temperature (a
//! broken sensor) is treated as "disable": the safe action without a latch.

use crate::error::{CoreError, CoreResult};

/// Ladder level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LadderLevel {
    /// Duty passes unchanged.
    Normal,
    /// Duty multiplied by `reduce_factor`.
    Reduced,
    /// Duty forced to 0 (releases with hysteresis).
    Disabled,
    /// Duty forced to 0 and latched until reset.
    Tripped,
}

impl LadderLevel {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            LadderLevel::Normal => "normal",
            LadderLevel::Reduced => "reduced",
            LadderLevel::Disabled => "disabled",
            LadderLevel::Tripped => "tripped",
        }
    }
}

/// Settings of an [`OverTempLadder`].
#[derive(Debug, Clone, PartialEq)]
pub struct LadderSettings {
    /// Temperature at which the duty is reduced, °C.
    pub reduce_c: f64,
    /// Temperature at which the heater is disabled, °C.
    pub disable_c: f64,
    /// Temperature at which the heater trips (latched), °C.
    pub trip_c: f64,
    /// Hysteresis for falling back a level, K.
    pub hysteresis_c: f64,
    /// Duty factor in the reduced level (0..1).
    pub reduce_factor: f64,
}

impl Default for LadderSettings {
    fn default() -> Self {
        Self {
            reduce_c: 63.0,
            disable_c: 65.0,
            trip_c: 66.0,
            hysteresis_c: 1.0,
            reduce_factor: 0.9,
        }
    }
}

/// Over-temperature interlock for a heater duty.
#[derive(Debug, Clone)]
pub struct OverTempLadder {
    s: LadderSettings,
    level: LadderLevel,
    sensor_bad: bool,
}

impl OverTempLadder {
    /// A ladder at level normal.
    pub fn new(s: LadderSettings) -> CoreResult<Self> {
        for (name, v) in [
            ("reduce_c", s.reduce_c),
            ("disable_c", s.disable_c),
            ("trip_c", s.trip_c),
            ("hysteresis_c", s.hysteresis_c),
            ("reduce_factor", s.reduce_factor),
        ] {
            if !v.is_finite() {
                return Err(CoreError::NonFinite { name, value: v });
            }
        }
        if !(s.reduce_c < s.disable_c && s.disable_c < s.trip_c) {
            return Err(CoreError::InvalidConfig(format!(
                "over-temperature ladder needs reduce_c < disable_c < trip_c, got {} / {} / {}",
                s.reduce_c, s.disable_c, s.trip_c
            )));
        }
        if s.hysteresis_c < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "hysteresis_c",
                rule: ">= 0",
                value: s.hysteresis_c,
            });
        }
        if !(0.0..=1.0).contains(&s.reduce_factor) {
            return Err(CoreError::InvalidParameter {
                name: "reduce_factor",
                rule: "in [0, 1]",
                value: s.reduce_factor,
            });
        }
        Ok(Self {
            s,
            level: LadderLevel::Normal,
            sensor_bad: false,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &LadderSettings {
        &self.s
    }

    /// Present level.
    pub fn level(&self) -> LadderLevel {
        if self.sensor_bad && self.level < LadderLevel::Disabled {
            LadderLevel::Disabled
        } else {
            self.level
        }
    }

    /// Classify `temp_c`, then return the permitted duty for the requested `duty`.
    pub fn update(&mut self, temp_c: f64, duty: f64) -> CoreResult<f64> {
        if !duty.is_finite() {
            return Err(CoreError::NonFinite {
                name: "duty",
                value: duty,
            });
        }
        if !temp_c.is_finite() {
            self.sensor_bad = true;
            return Ok(0.0);
        }
        self.sensor_bad = false;
        let s = &self.s;
        let hy = s.hysteresis_c;
        let up = if temp_c >= s.trip_c {
            LadderLevel::Tripped
        } else if temp_c >= s.disable_c {
            LadderLevel::Disabled
        } else if temp_c >= s.reduce_c {
            LadderLevel::Reduced
        } else {
            LadderLevel::Normal
        };
        let down = if temp_c >= s.disable_c - hy {
            LadderLevel::Disabled
        } else if temp_c >= s.reduce_c - hy {
            LadderLevel::Reduced
        } else {
            LadderLevel::Normal
        };
        self.level = if self.level == LadderLevel::Tripped || up > self.level {
            up.max(self.level)
        } else {
            // Falling: go no lower than what the hysteresis allows.
            self.level.min(down.max(up))
        };
        Ok(match self.level {
            LadderLevel::Normal => duty,
            LadderLevel::Reduced => duty * s.reduce_factor,
            LadderLevel::Disabled | LadderLevel::Tripped => 0.0,
        })
    }

    /// Clear a trip. Refused while the temperature is above `reduce_c − hysteresis_c`.
    pub fn reset(&mut self, temp_c: f64) -> CoreResult<()> {
        if !temp_c.is_finite() || temp_c >= self.s.reduce_c - self.s.hysteresis_c {
            return Err(CoreError::InvalidParameter {
                name: "temp_c",
                rule: "below reduce_c - hysteresis_c to reset a trip",
                value: temp_c,
            });
        }
        self.level = LadderLevel::Normal;
        Ok(())
    }
}
