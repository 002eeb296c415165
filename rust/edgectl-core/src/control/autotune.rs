//! Relay-feedback autotuning (Åström & Hägglund 1984, *Automatica* 20(5):645; reference §5).
//!
//! The relay switches between `bias + d` and `bias − d` around the setpoint with a noise band
//! ±ε: with e = σ(r − y), high when e > ε, low when e < −ε, otherwise hold. The first full
//! cycle is discarded (initialisation, modelica-buildings review notes); the next `cycles`
//! cycles, each measured from one low→high switch to the next, give the limit cycle.
//!
//! - Ultimate gain from the describing function with hysteresis: Ku = 4d/(π·√(a² − ε²)).
//! - FOPDT from the cycle ([`fopdt_from_relay`]): exact relations for k·e^(−θs)/(τs + 1)
//!   [derived]. Over one cycle the plant input is u_hi for `t_on` then u_lo for `t_off`,
//!   delayed by θ, so between its extremes the output relaxes with the steady states
//!   a = y_ss(u_hi), b = y_ss(u_lo):
//!   `y_max = a − (a − y_min)·e^(−t_on/τ)`, `y_min = b + (y_max − b)·e^(−t_off/τ)`, and the
//!   delay sets how far y overshoots the switching levels r ± ε:
//!   `e^(−θ/τ) = (a − y_max)/(a − r − ε) = (y_min − b)/(r − ε − b)`.
//!   With the gain known, a − b = |k|·(u_hi − u_lo) closes the system; without it, the
//!   asymmetry of the cycle (t_on ≠ t_off, bias away from the equilibrium input) does.

use super::pid::Action;
use super::tuning::Fopdt;
use crate::error::{check_dt, CoreError, CoreResult};

/// Settings of a [`RelayAutotune`] experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaySettings {
    /// Setpoint r around which the relay oscillates.
    pub setpoint: f64,
    /// Relay bias (centre output).
    pub bias: f64,
    /// Relay amplitude d (half the output swing).
    pub amplitude: f64,
    /// Noise band ε in PV units (relay hysteresis).
    pub hysteresis: f64,
    /// Actuator lower limit: the relay step is kept inside (Arduino-PID-AutoTune#5).
    pub output_min: f64,
    /// Actuator upper limit.
    pub output_max: f64,
    /// Heating-type or cooling-type plant (relay flipped for reverse-acting plants, #14).
    pub action: Action,
    /// Number of cycles measured after the discarded first one (≥ 1).
    pub cycles: u32,
    /// Abort when the PV falls below this.
    pub pv_min: f64,
    /// Abort when the PV rises above this.
    pub pv_max: f64,
    /// Abort after this many seconds.
    pub max_time_s: f64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            setpoint: 0.0,
            bias: 50.0,
            amplitude: 20.0,
            hysteresis: 0.0,
            output_min: 0.0,
            output_max: 100.0,
            action: Action::Heating,
            cycles: 3,
            pv_min: f64::NEG_INFINITY,
            pv_max: f64::INFINITY,
            max_time_s: 7200.0,
        }
    }
}

/// State of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayState {
    /// Still oscillating.
    Running,
    /// Enough cycles measured: a result is available.
    Done,
    /// Stopped by an abort limit (the reason names it); the output returns to the bias.
    Aborted(String),
}

/// What the relay experiment measured (means over the measured cycles).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelayResult {
    /// Ultimate gain magnitude Ku = 4d/(π√(a² − ε²)).
    pub ku: f64,
    /// Ultimate period Pu in s.
    pub pu_s: f64,
    /// PV oscillation amplitude a = (y_max − y_min)/2.
    pub amplitude_pv: f64,
    /// Relay amplitude d actually used (after keeping inside the limits).
    pub amplitude_out: f64,
    /// Noise band ε.
    pub hysteresis: f64,
    /// Time per cycle at the high output, s.
    pub t_on_s: f64,
    /// Time per cycle at the low output, s.
    pub t_off_s: f64,
    /// Mean cycle maximum of the PV.
    pub y_max: f64,
    /// Mean cycle minimum of the PV.
    pub y_min: f64,
    /// High relay output.
    pub u_high: f64,
    /// Low relay output.
    pub u_low: f64,
    /// Setpoint.
    pub setpoint: f64,
    /// Plant direction.
    pub action: Action,
    /// Number of cycles averaged.
    pub cycles: u32,
}

#[derive(Debug, Clone, Copy)]
struct Cycle {
    period: f64,
    t_on: f64,
    y_max: f64,
    y_min: f64,
}

/// Relay autotune experiment. Step it like a controller: `update(y, dt_s)` returns the output.
#[derive(Debug, Clone)]
pub struct RelayAutotune {
    s: RelaySettings,
    d: f64,
    state: RelayState,
    t: f64,
    high: bool,
    started: bool,
    last_rise: Option<f64>,
    t_on_acc: f64,
    y_max: f64,
    y_min: f64,
    cycles: Vec<Cycle>,
    u: f64,
}

impl RelayAutotune {
    /// Prepare an experiment. The amplitude is reduced so that bias ± d stays inside the
    /// actuator limits; an experiment with no room left is refused.
    pub fn new(s: RelaySettings) -> CoreResult<Self> {
        for (name, v) in [
            ("setpoint", s.setpoint),
            ("bias", s.bias),
            ("amplitude", s.amplitude),
            ("hysteresis", s.hysteresis),
            ("output_min", s.output_min),
            ("output_max", s.output_max),
            ("max_time_s", s.max_time_s),
        ] {
            if !v.is_finite() {
                return Err(CoreError::NonFinite { name, value: v });
            }
        }
        if s.pv_min.is_nan() || s.pv_max.is_nan() || s.pv_min >= s.pv_max {
            return Err(CoreError::InvalidConfig(format!(
                "relay autotune needs pv_min < pv_max, got {} / {}",
                s.pv_min, s.pv_max
            )));
        }
        if s.output_max <= s.output_min {
            return Err(CoreError::InvalidParameter {
                name: "output_max",
                rule: "> output_min",
                value: s.output_max,
            });
        }
        if s.hysteresis < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "hysteresis",
                rule: ">= 0",
                value: s.hysteresis,
            });
        }
        if s.cycles < 1 {
            return Err(CoreError::InvalidParameter {
                name: "cycles",
                rule: ">= 1",
                value: s.cycles as f64,
            });
        }
        if s.max_time_s <= 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "max_time_s",
                rule: "> 0",
                value: s.max_time_s,
            });
        }
        let d = s
            .amplitude
            .min(s.output_max - s.bias)
            .min(s.bias - s.output_min);
        if d.is_nan() || d <= 0.0 {
            return Err(CoreError::InvalidConfig(format!(
                "relay bias {} with amplitude {} leaves no room inside the output limits [{}, {}]",
                s.bias, s.amplitude, s.output_min, s.output_max
            )));
        }
        Ok(Self {
            u: s.bias,
            d,
            state: RelayState::Running,
            t: 0.0,
            high: false,
            started: false,
            last_rise: None,
            t_on_acc: 0.0,
            y_max: f64::NEG_INFINITY,
            y_min: f64::INFINITY,
            cycles: Vec::new(),
            s,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &RelaySettings {
        &self.s
    }

    /// Relay amplitude actually used.
    pub fn amplitude(&self) -> f64 {
        self.d
    }

    /// Experiment state.
    pub fn state(&self) -> &RelayState {
        &self.state
    }

    /// Elapsed experiment time in s.
    pub fn elapsed_s(&self) -> f64 {
        self.t
    }

    /// Complete cycles measured so far (including the discarded first one).
    pub fn cycles_seen(&self) -> usize {
        self.cycles.len()
    }

    /// Output of the last update.
    pub fn output(&self) -> f64 {
        self.u
    }

    /// Advance with measurement `y` after `dt_s` s; returns the relay output (the bias once
    /// done or aborted).
    pub fn update(&mut self, y: f64, dt_s: f64) -> CoreResult<f64> {
        check_dt(dt_s)?;
        if !y.is_finite() {
            return Err(CoreError::NonFinite {
                name: "measurement",
                value: y,
            });
        }
        if self.state != RelayState::Running {
            self.u = self.s.bias;
            return Ok(self.u);
        }
        self.t += dt_s;
        if y < self.s.pv_min || y > self.s.pv_max {
            self.state = RelayState::Aborted(format!(
                "measurement {y} left [{}, {}] after {:.1} s",
                self.s.pv_min, self.s.pv_max, self.t
            ));
            self.u = self.s.bias;
            return Ok(self.u);
        }
        if self.t > self.s.max_time_s {
            self.state = RelayState::Aborted(format!(
                "no result within max_time_s = {} s ({} cycles seen)",
                self.s.max_time_s,
                self.cycles.len()
            ));
            self.u = self.s.bias;
            return Ok(self.u);
        }
        let e = self.s.action.sigma() * (self.s.setpoint - y);
        let eps = self.s.hysteresis;
        let was_high = self.high;
        if !self.started {
            self.high = e > 0.0;
            self.started = true;
        } else if e > eps {
            self.high = true;
        } else if e < -eps {
            self.high = false;
        }
        if self.high && !was_high {
            // A low→high switch closes a cycle.
            if let Some(t0) = self.last_rise {
                self.cycles.push(Cycle {
                    period: self.t - t0,
                    t_on: self.t_on_acc,
                    y_max: self.y_max,
                    y_min: self.y_min,
                });
            }
            self.last_rise = Some(self.t);
            self.t_on_acc = 0.0;
            self.y_max = f64::NEG_INFINITY;
            self.y_min = f64::INFINITY;
        }
        if self.last_rise.is_some() {
            self.y_max = self.y_max.max(y);
            self.y_min = self.y_min.min(y);
            if self.high {
                self.t_on_acc += dt_s;
            }
        }
        if self.cycles.len() > self.s.cycles as usize {
            self.state = RelayState::Done;
            self.u = self.s.bias;
            return Ok(self.u);
        }
        self.u = if self.high {
            self.s.bias + self.d
        } else {
            self.s.bias - self.d
        };
        Ok(self.u)
    }

    /// The result once the experiment is done.
    pub fn result(&self) -> CoreResult<RelayResult> {
        match &self.state {
            RelayState::Running => {
                return Err(CoreError::InvalidConfig(format!(
                    "relay autotune still running ({} of {} cycles)",
                    self.cycles.len().saturating_sub(1),
                    self.s.cycles
                )))
            }
            RelayState::Aborted(why) => {
                return Err(CoreError::InvalidConfig(format!(
                    "relay autotune aborted: {why}"
                )))
            }
            RelayState::Done => {}
        }
        let used = &self.cycles[1..];
        let n = used.len() as f64;
        let mean = |f: &dyn Fn(&Cycle) -> f64| used.iter().map(f).sum::<f64>() / n;
        let pu = mean(&|c| c.period);
        let t_on = mean(&|c| c.t_on);
        let y_max = mean(&|c| c.y_max);
        let y_min = mean(&|c| c.y_min);
        let a = 0.5 * (y_max - y_min);
        let eps = self.s.hysteresis;
        if a <= eps {
            return Err(CoreError::Numerical(format!(
                "relay oscillation amplitude {a} is not above the noise band {eps}"
            )));
        }
        let ku = 4.0 * self.d / (std::f64::consts::PI * (a * a - eps * eps).sqrt());
        Ok(RelayResult {
            ku,
            pu_s: pu,
            amplitude_pv: a,
            amplitude_out: self.d,
            hysteresis: eps,
            t_on_s: t_on,
            t_off_s: pu - t_on,
            y_max,
            y_min,
            u_high: self.s.bias + self.d,
            u_low: self.s.bias - self.d,
            setpoint: self.s.setpoint,
            action: self.s.action,
            cycles: used.len() as u32,
        })
    }
}

/// Bisection on a sign change of `f` over [lo, hi] in log space.
fn log_bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> Option<f64> {
    let mut flo = f(lo);
    let fhi = f(hi);
    if !(flo.is_finite() && fhi.is_finite()) || flo.signum() == fhi.signum() {
        return None;
    }
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        let fm = f(mid);
        if !fm.is_finite() {
            return None;
        }
        if fm.signum() == flo.signum() {
            lo = mid;
            flo = fm;
        } else {
            hi = mid;
        }
        if hi / lo < 1.0 + 1e-12 {
            break;
        }
    }
    Some((lo * hi).sqrt())
}

/// Least asymmetry |t_on − t_off| / (t_on + t_off) of a relay cycle from which the process gain
/// is identified without being given [est: below it the identified τ scattered by orders of
/// magnitude between repeated HIL runs].
pub const MIN_ASYMMETRY: f64 = 0.1;

/// FOPDT model from a relay result (exact relations, see the module docs).
///
/// With `gain = Some(k)` the sign of `k` must match the plant direction of the experiment;
/// with `None` the gain is identified from the asymmetry of the cycle, which needs the relay
/// bias away from the equilibrium input at the setpoint (a symmetric cycle carries no gain
/// information and gives a `Numerical` error).
pub fn fopdt_from_relay(res: &RelayResult, gain: Option<f64>) -> CoreResult<Fopdt> {
    let sg = res.action.sigma();
    // Work in σ-normalised coordinates: a heating-type plant with positive gain.
    let (ymax, ymin) = if sg > 0.0 {
        (res.y_max, res.y_min)
    } else {
        (-res.y_min, -res.y_max)
    };
    let r = sg * res.setpoint;
    let eps = res.hysteresis;
    let du = res.u_high - res.u_low;
    let (t_on, t_off) = (res.t_on_s, res.t_off_s);
    if !(t_on > 0.0 && t_off > 0.0 && ymax > ymin) {
        return Err(CoreError::Numerical(
            "relay result has no usable cycle (zero half-period or amplitude)".into(),
        ));
    }
    let a_of = |tau: f64| {
        let q = (-t_on / tau).exp();
        (ymax - q * ymin) / (1.0 - q)
    };
    let b_of = |tau: f64| {
        let q = (-t_off / tau).exp();
        (ymin - q * ymax) / (1.0 - q)
    };
    let e_hi = |tau: f64| {
        let a = a_of(tau);
        (a - ymax) / (a - r - eps)
    };
    let e_lo = |tau: f64| {
        let b = b_of(tau);
        (ymin - b) / (r - eps - b)
    };
    let p = t_on + t_off;
    let (lo, hi) = (1e-4 * p, 1e4 * p);
    let (tau, k_norm) = match gain {
        Some(k) => {
            if !k.is_finite() || k == 0.0 || k.signum() != sg {
                return Err(CoreError::InvalidParameter {
                    name: "gain",
                    rule: "finite, non-zero, sign matching the relay action",
                    value: k,
                });
            }
            let span = k.abs() * du;
            let tau = log_bisect(|tau| a_of(tau) - b_of(tau) - span, lo, hi).ok_or_else(|| {
                CoreError::Numerical(format!(
                    "relay cycle (swing {:.4}) inconsistent with gain {k}",
                    ymax - ymin
                ))
            })?;
            (tau, k.abs())
        }
        None => {
            // The gain comes from the asymmetry of the cycle alone: with half-periods within
            // MIN_ASYMMETRY of each other the root below exists but moves wildly with the
            // measurement noise (HIL: τ from 5 s to none at all between two runs of the same
            // rig, Ku and Pu repeating within 4 %), so refuse it and let the caller fall back
            // to a rule that needs only Ku and Pu.
            let asym = (t_on - t_off).abs() / (t_on + t_off);
            if asym < MIN_ASYMMETRY {
                return Err(CoreError::Numerical(format!(
                    "relay cycle too symmetric to identify the gain (half-periods {t_on:.1} s / \
                     {t_off:.1} s, asymmetry {asym:.3} < {MIN_ASYMMETRY}): pass the process \
                     gain, or run the relay with its bias away from the equilibrium output"
                )));
            }
            let tau = log_bisect(|tau| e_hi(tau) - e_lo(tau), lo, hi).ok_or_else(|| {
                CoreError::Numerical(
                    "relay cycle too symmetric to identify the gain: pass the process gain, or \
                     run the relay with its bias away from the equilibrium output"
                        .into(),
                )
            })?;
            (tau, (a_of(tau) - b_of(tau)) / du)
        }
    };
    let e = 0.5 * (e_hi(tau) + e_lo(tau));
    if !(e > 0.0 && e <= 1.0) {
        return Err(CoreError::Numerical(format!(
            "relay cycle gives no valid dead time (e^(-θ/τ) = {e})"
        )));
    }
    Fopdt {
        gain: sg * k_norm,
        tau_s: tau,
        dead_time_s: -tau * e.ln(),
    }
    .validated()
}
