//! Feed profiles (reference §4.1).
//!
//! - Exponential feed at a set specific growth rate, with the maintenance term of Korz et al.
//!   1995 (*J. Biotechnol.* 39:59): F(t) = (μ_set/Y_xs + m)·X0·V0/S_f·e^(μ_set·t).
//! - DO-stat / pH-stat: a feed pulse when the signal rises above a threshold (substrate
//!   depletion), re-armed once it has fallen below a re-arm level (Vojta et al., *Chem. Biochem.
//!   Eng. Q.* 16(2) 2002: e.g. re-arm below 88 % sat. for a 90 % control level).

use crate::error::{check_dt, CoreError, CoreResult};

fn pos(name: &'static str, v: f64, allow_zero: bool) -> CoreResult<()> {
    if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) {
        return Err(CoreError::InvalidParameter {
            name,
            rule: if allow_zero {
                "finite and >= 0"
            } else {
                "finite and > 0"
            },
            value: v,
        });
    }
    Ok(())
}

/// Exponential feed profile; `update(dt_s)` advances its clock and returns the rate in mL/min.
#[derive(Debug, Clone)]
pub struct ExponentialFeed {
    mu_per_h: f64,
    yield_xs: f64,
    maintenance_per_h: f64,
    x0_g_l: f64,
    v0_l: f64,
    feed_conc_g_l: f64,
    max_rate_ml_min: f64,
    t_h: f64,
}

impl ExponentialFeed {
    /// μ_set in 1/h, Y_xs in g/g, m in g/(g·h), biomass X0 in g/L, volume V0 in L, feed
    /// substrate S_f in g/L, rate cap in mL/min (∞ = none).
    pub fn new(
        mu_per_h: f64,
        yield_xs: f64,
        maintenance_per_h: f64,
        x0_g_l: f64,
        v0_l: f64,
        feed_conc_g_l: f64,
        max_rate_ml_min: f64,
    ) -> CoreResult<Self> {
        pos("mu_per_h", mu_per_h, true)?;
        pos("yield_xs", yield_xs, false)?;
        pos("maintenance_per_h", maintenance_per_h, true)?;
        pos("x0_g_l", x0_g_l, false)?;
        pos("v0_l", v0_l, false)?;
        pos("feed_conc_g_l", feed_conc_g_l, false)?;
        if max_rate_ml_min.is_nan() || max_rate_ml_min <= 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "max_rate_ml_min",
                rule: "> 0 (inf = no cap)",
                value: max_rate_ml_min,
            });
        }
        Ok(Self {
            mu_per_h,
            yield_xs,
            maintenance_per_h,
            x0_g_l,
            v0_l,
            feed_conc_g_l,
            max_rate_ml_min,
            t_h: 0.0,
        })
    }

    /// Rate at feed time `t_h` hours, mL/min.
    pub fn rate_at(&self, t_h: f64) -> f64 {
        let l_per_h =
            (self.mu_per_h / self.yield_xs + self.maintenance_per_h) * self.x0_g_l * self.v0_l
                / self.feed_conc_g_l
                * (self.mu_per_h * t_h).exp();
        (l_per_h * 1000.0 / 60.0).min(self.max_rate_ml_min)
    }

    /// Rate now (mL/min), then advance the profile clock by `dt_s`.
    pub fn update(&mut self, dt_s: f64) -> CoreResult<f64> {
        check_dt(dt_s)?;
        let r = self.rate_at(self.t_h);
        self.t_h += dt_s / 3600.0;
        Ok(r)
    }

    /// Hours since the start of the feed.
    pub fn elapsed_h(&self) -> f64 {
        self.t_h
    }

    /// Restart the profile clock (after priming, or at a new phase).
    pub fn reset(&mut self) {
        self.t_h = 0.0;
    }
}

/// DO-stat or pH-stat feed pulser: a pulse of `pulse_s` when the signal rises above
/// `threshold`, re-armed when it falls below `rearm`.
#[derive(Debug, Clone)]
pub struct StatPulser {
    threshold: f64,
    rearm: f64,
    pulse_s: f64,
    ml_per_min: f64,
    armed: bool,
    t_left: f64,
    dose_ml: f64,
    pulses: u64,
}

impl StatPulser {
    /// `rearm` must be below `threshold`; pump flow in mL/min for the dose counter.
    pub fn new(threshold: f64, rearm: f64, pulse_s: f64, ml_per_min: f64) -> CoreResult<Self> {
        if !threshold.is_finite() || !rearm.is_finite() || rearm >= threshold {
            return Err(CoreError::InvalidConfig(format!(
                "stat pulser needs finite rearm < threshold, got {rearm} / {threshold}"
            )));
        }
        pos("pulse_s", pulse_s, false)?;
        pos("ml_per_min", ml_per_min, false)?;
        Ok(Self {
            threshold,
            rearm,
            pulse_s,
            ml_per_min,
            armed: true,
            t_left: 0.0,
            dose_ml: 0.0,
            pulses: 0,
        })
    }

    /// Advance with the signal after `dt_s`; returns whether the feed pump is on this tick.
    pub fn update(&mut self, signal: f64, dt_s: f64) -> CoreResult<bool> {
        check_dt(dt_s)?;
        if !signal.is_finite() {
            return Err(CoreError::NonFinite {
                name: "signal",
                value: signal,
            });
        }
        if self.armed && signal > self.threshold {
            self.armed = false;
            self.t_left = self.pulse_s;
            self.pulses += 1;
        } else if !self.armed && signal < self.rearm {
            self.armed = true;
        }
        let on = self.t_left > 1e-9;
        if on {
            let dt_on = dt_s.min(self.t_left);
            self.dose_ml += self.ml_per_min / 60.0 * dt_on;
            self.t_left -= dt_on;
        }
        Ok(on)
    }

    /// Feed dosed since the last reset, mL.
    pub fn dose_ml(&self) -> f64 {
        self.dose_ml
    }

    /// Pulses since the last reset.
    pub fn pulses(&self) -> u64 {
        self.pulses
    }

    /// Whether a new pulse may start.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Reset the dose counter.
    pub fn reset_dose(&mut self) {
        self.dose_ml = 0.0;
        self.pulses = 0;
    }
}
