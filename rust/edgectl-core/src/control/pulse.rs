//! Pulse outputs: time-proportioning window for heaters and pumps, foam → antifoam pulses
//! (reference §2.3; DCU3 §6.15 foam CYCLE/PULSE, manual p.58; ACID/BASE dose counters).
//!
//! Time proportioning: at the start of each window of length W the on-time is
//! `t_on = duty·W + carry`, quantised to `quantum_s` (the output tick, or 10 ms mains
//! half-cycles for zero-cross SSRs), with minimum on and off times for mechanical relays; the
//! part lost to quantisation and minimum times is carried into the next window, so the mean
//! duty is exact over many windows.

use crate::error::{check_dt, CoreError, CoreResult};

/// How a pump's delivered volume is computed from its on-time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PumpCalibration {
    /// No dose counting (heaters).
    None,
    /// Flow at full rate in mL/min: dose += rate/60 · on-time.
    MlPerMin(f64),
    /// Volume per pulse (stroke) in mL: dose += volume per switch-on.
    MlPerPulse(f64),
}

fn pos_finite(name: &'static str, v: f64, allow_zero: bool) -> CoreResult<()> {
    if !v.is_finite() {
        return Err(CoreError::NonFinite { name, value: v });
    }
    if v < 0.0 || (!allow_zero && v == 0.0) {
        return Err(CoreError::InvalidParameter {
            name,
            rule: if allow_zero { ">= 0" } else { "> 0" },
            value: v,
        });
    }
    Ok(())
}

fn check_cal(cal: PumpCalibration) -> CoreResult<()> {
    match cal {
        PumpCalibration::None => Ok(()),
        PumpCalibration::MlPerMin(v) => pos_finite("ml_per_min", v, false),
        PumpCalibration::MlPerPulse(v) => pos_finite("ml_per_pulse", v, false),
    }
}

/// Settings of a [`PulseOutput`].
#[derive(Debug, Clone, PartialEq)]
pub struct PulseSettings {
    /// Window length W in s.
    pub window_s: f64,
    /// On-time quantum in s (0 = continuous; the output still changes only on ticks).
    pub quantum_s: f64,
    /// Minimum on-time in s (shorter pulses are dropped and carried over).
    pub min_on_s: f64,
    /// Minimum off-time in s (shorter gaps become fully on, the excess is carried over).
    pub min_off_s: f64,
    /// Pump calibration for the dose counter.
    pub calibration: PumpCalibration,
}

impl Default for PulseSettings {
    fn default() -> Self {
        Self {
            window_s: 10.0,
            quantum_s: 0.0,
            min_on_s: 0.0,
            min_off_s: 0.0,
            calibration: PumpCalibration::None,
        }
    }
}

impl PulseSettings {
    /// Check every field.
    pub fn validated(self) -> CoreResult<Self> {
        pos_finite("window_s", self.window_s, false)?;
        pos_finite("quantum_s", self.quantum_s, true)?;
        pos_finite("min_on_s", self.min_on_s, true)?;
        pos_finite("min_off_s", self.min_off_s, true)?;
        if self.quantum_s > self.window_s {
            return Err(CoreError::InvalidParameter {
                name: "quantum_s",
                rule: "<= window_s",
                value: self.quantum_s,
            });
        }
        if self.min_on_s + self.min_off_s > self.window_s {
            return Err(CoreError::InvalidParameter {
                name: "min_on_s + min_off_s",
                rule: "<= window_s",
                value: self.min_on_s + self.min_off_s,
            });
        }
        check_cal(self.calibration)?;
        Ok(self)
    }
}

/// Time-proportioning pulse output with dose counter.
#[derive(Debug, Clone)]
pub struct PulseOutput {
    s: PulseSettings,
    t_in_window: f64,
    on_time: f64,
    carry: f64,
    started: bool,
    on: bool,
    realised_s: f64,
    dose_ml: f64,
    pulses: u64,
}

impl PulseOutput {
    /// A new output, off, dose 0.
    pub fn new(settings: PulseSettings) -> CoreResult<Self> {
        Ok(Self {
            s: settings.validated()?,
            t_in_window: 0.0,
            on_time: 0.0,
            carry: 0.0,
            started: false,
            on: false,
            realised_s: 0.0,
            dose_ml: 0.0,
            pulses: 0,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &PulseSettings {
        &self.s
    }

    fn plan(&mut self, duty: f64) {
        let w = self.s.window_s;
        let want = duty * w + self.carry;
        let mut on = want.clamp(0.0, w);
        if self.s.quantum_s > 0.0 {
            on = (on / self.s.quantum_s).round() * self.s.quantum_s;
        }
        if on > 0.0 && on < self.s.min_on_s {
            on = if on >= 0.5 * self.s.min_on_s {
                self.s.min_on_s
            } else {
                0.0
            };
        }
        if on < w && w - on < self.s.min_off_s {
            on = if w - on >= 0.5 * self.s.min_off_s {
                w - self.s.min_off_s
            } else {
                w
            };
        }
        let on = on.clamp(0.0, w);
        // Keep the carry bounded by one window so a long saturation cannot store up dose.
        self.carry = (want - on).clamp(-w, w);
        self.on_time = on;
    }

    /// Advance by `dt_s` with the requested `duty` (fraction 0..1, clamped); returns whether the
    /// output is on during this tick. The dose counts the on-time of this tick.
    pub fn update(&mut self, duty: f64, dt_s: f64) -> CoreResult<bool> {
        check_dt(dt_s)?;
        if !duty.is_finite() {
            return Err(CoreError::NonFinite {
                name: "duty",
                value: duty,
            });
        }
        let duty = duty.clamp(0.0, 1.0);
        if !self.started || self.t_in_window >= self.s.window_s - 1e-9 {
            if self.started {
                self.t_in_window -= self.s.window_s;
                self.t_in_window = self.t_in_window.max(0.0);
                // Ticks do not fall on the planned edge: carry what the ticks added or lost.
                self.carry += self.on_time - self.realised_s;
            }
            self.realised_s = 0.0;
            self.started = true;
            self.plan(duty);
        }
        let on = self.t_in_window < self.on_time - 1e-9;
        if on && !self.on {
            self.pulses += 1;
            if let PumpCalibration::MlPerPulse(v) = self.s.calibration {
                self.dose_ml += v;
            }
        }
        if on {
            self.realised_s += dt_s;
            if let PumpCalibration::MlPerMin(rate) = self.s.calibration {
                self.dose_ml += rate / 60.0 * dt_s;
            }
        }
        self.on = on;
        self.t_in_window += dt_s;
        Ok(on)
    }

    /// Whether the output is on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// On-time planned for the present window in s.
    pub fn on_time_s(&self) -> f64 {
        self.on_time
    }

    /// Dose delivered since the last reset, in mL.
    pub fn dose_ml(&self) -> f64 {
        self.dose_ml
    }

    /// Number of switch-ons since the last reset.
    pub fn pulses(&self) -> u64 {
        self.pulses
    }

    /// Reset the dose counter (and pulse count).
    pub fn reset_dose(&mut self) {
        self.dose_ml = 0.0;
        self.pulses = 0;
    }

    /// Priming the line: the volume pumped to fill the tubing is not a dose. Resets the dose
    /// counter, the carried duty and starts a new window with the output off (BioPAT Trace
    /// manual p.103).
    pub fn prime(&mut self) {
        self.reset_dose();
        self.carry = 0.0;
        self.started = false;
        self.t_in_window = 0.0;
        self.realised_s = 0.0;
        self.on = false;
    }
}

/// States of a [`FoamPulser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoamState {
    /// No foam, pump off.
    Idle,
    /// Foam seen, waiting the anti-splash delay.
    Confirming,
    /// Pump pulse running.
    Pulse,
    /// Pause after a pulse (antifoam acting), pump off.
    Pause,
}

impl FoamState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            FoamState::Idle => "idle",
            FoamState::Confirming => "confirming",
            FoamState::Pulse => "pulse",
            FoamState::Pause => "pause",
        }
    }
}

/// Settings of a [`FoamPulser`] (DCU3 §6.15: PULSE and CYCLE times, anti-splash delay p.62).
#[derive(Debug, Clone, PartialEq)]
pub struct FoamSettings {
    /// Pump on-time per pulse in s.
    pub pulse_s: f64,
    /// Pause after each pulse in s before the probe is looked at again.
    pub pause_s: f64,
    /// The probe must read foam continuously this long before the first pulse (splashes).
    pub delay_s: f64,
    /// Antifoam pump flow at full rate in mL/min (dose counter).
    pub ml_per_min: f64,
}

impl Default for FoamSettings {
    fn default() -> Self {
        Self {
            pulse_s: 2.0,
            pause_s: 30.0,
            delay_s: 5.0,
            ml_per_min: 1.0,
        }
    }
}

/// Foam probe → antifoam pump pulses with dose counting.
#[derive(Debug, Clone)]
pub struct FoamPulser {
    s: FoamSettings,
    state: FoamState,
    t_state: f64,
    dose_ml: f64,
    pulses: u64,
}

impl FoamPulser {
    /// A new pulser, idle.
    pub fn new(s: FoamSettings) -> CoreResult<Self> {
        pos_finite("pulse_s", s.pulse_s, false)?;
        pos_finite("pause_s", s.pause_s, true)?;
        pos_finite("delay_s", s.delay_s, true)?;
        pos_finite("ml_per_min", s.ml_per_min, false)?;
        Ok(Self {
            s,
            state: FoamState::Idle,
            t_state: 0.0,
            dose_ml: 0.0,
            pulses: 0,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &FoamSettings {
        &self.s
    }

    fn goto(&mut self, st: FoamState) {
        if st == FoamState::Pulse {
            self.pulses += 1;
        }
        self.state = st;
        self.t_state = 0.0;
    }

    /// Advance by `dt_s` with the probe reading `foam`; returns whether the pump is on during
    /// this tick.
    pub fn update(&mut self, foam: bool, dt_s: f64) -> CoreResult<bool> {
        check_dt(dt_s)?;
        match self.state {
            FoamState::Idle => {
                if foam {
                    self.goto(FoamState::Confirming);
                }
            }
            FoamState::Confirming => {
                if !foam {
                    self.goto(FoamState::Idle);
                } else if self.t_state >= self.s.delay_s - 1e-9 {
                    self.goto(FoamState::Pulse);
                }
            }
            FoamState::Pulse => {
                if self.t_state >= self.s.pulse_s - 1e-9 {
                    self.goto(FoamState::Pause);
                }
            }
            FoamState::Pause => {
                if self.t_state >= self.s.pause_s - 1e-9 {
                    // Foam still there after the pause: dose again at once (already confirmed).
                    if foam {
                        self.goto(FoamState::Pulse);
                    } else {
                        self.goto(FoamState::Idle);
                    }
                }
            }
        }
        if self.state == FoamState::Confirming && self.s.delay_s == 0.0 {
            self.goto(FoamState::Pulse);
        }
        let on = self.state == FoamState::Pulse;
        if on {
            self.dose_ml += self.s.ml_per_min / 60.0 * dt_s;
        }
        self.t_state += dt_s;
        Ok(on)
    }

    /// Present state.
    pub fn state(&self) -> FoamState {
        self.state
    }

    /// Antifoam dosed since the last reset, in mL.
    pub fn dose_ml(&self) -> f64 {
        self.dose_ml
    }

    /// Pulses since the last reset.
    pub fn pulses(&self) -> u64 {
        self.pulses
    }

    /// Reset the dose counter.
    pub fn reset_dose(&mut self) {
        self.dose_ml = 0.0;
        self.pulses = 0;
    }
}
