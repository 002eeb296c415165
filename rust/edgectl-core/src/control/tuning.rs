//! Tuning rules: process models in, ISA PID settings (K, Ti, Td) out (reference §5).
//!
//! The process gain may be negative (a cooling loop): the rules use |k| and return the action,
//! so gains stay positive (reference §1 "Action").

use super::pid::Action;
use crate::error::{CoreError, CoreResult};

/// First-order-plus-dead-time model k·e^(−θs)/(τs + 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fopdt {
    /// Static gain k (PV units per output unit), non-zero.
    pub gain: f64,
    /// Time constant τ in s, > 0.
    pub tau_s: f64,
    /// Dead time θ in s, ≥ 0.
    pub dead_time_s: f64,
}

impl Fopdt {
    /// Check the model.
    pub fn validated(self) -> CoreResult<Self> {
        if !self.gain.is_finite() || self.gain == 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "gain",
                rule: "finite and non-zero",
                value: self.gain,
            });
        }
        if !self.tau_s.is_finite() || self.tau_s <= 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "tau_s",
                rule: "finite and > 0",
                value: self.tau_s,
            });
        }
        if !self.dead_time_s.is_finite() || self.dead_time_s < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "dead_time_s",
                rule: "finite and >= 0",
                value: self.dead_time_s,
            });
        }
        Ok(self)
    }

    fn action(&self) -> Action {
        if self.gain > 0.0 {
            Action::Heating
        } else {
            Action::Cooling
        }
    }
}

/// ISA settings produced by a rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Controller gain K (≥ 0).
    pub k: f64,
    /// Integral time Ti in s (∞ = none).
    pub ti_s: f64,
    /// Derivative time Td in s.
    pub td_s: f64,
    /// Action matching the sign of the process gain.
    pub action: Action,
}

fn positive(name: &'static str, v: f64) -> CoreResult<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter {
            name,
            rule: "finite and > 0",
            value: v,
        })
    }
}

/// SIMC PI (Skogestad 2003, *J. Process Control* 13:291):
/// Kc = τ/(|k|(τc + θ)), Ti = min(τ, 4(τc + θ)). `tau_c_s = None` gives the "tight" τc = θ.
/// `delay_improved` adds θ/3 to Ti (Grimholt & Skogestad, PID'12).
pub fn simc_pi(m: Fopdt, tau_c_s: Option<f64>, delay_improved: bool) -> CoreResult<Tuning> {
    let m = m.validated()?;
    let th = m.dead_time_s;
    let tc = tau_c_s.unwrap_or(th);
    positive("tau_c_s + dead_time_s", tc + th)?;
    if tc < 0.0 {
        return Err(CoreError::InvalidParameter {
            name: "tau_c_s",
            rule: ">= 0",
            value: tc,
        });
    }
    let k = m.tau_s / (m.gain.abs() * (tc + th));
    let mut ti = m.tau_s.min(4.0 * (tc + th));
    if delay_improved {
        ti += th / 3.0;
    }
    Ok(Tuning {
        k,
        ti_s: ti,
        td_s: 0.0,
        action: m.action(),
    })
}

/// SIMC PI for an integrating plant k′·e^(−θs)/s: Kc = 1/(|k′|(τc + θ)), Ti = 4(τc + θ).
pub fn simc_integrating(
    slope_gain_per_s: f64,
    dead_time_s: f64,
    tau_c_s: Option<f64>,
) -> CoreResult<Tuning> {
    if !slope_gain_per_s.is_finite() || slope_gain_per_s == 0.0 {
        return Err(CoreError::InvalidParameter {
            name: "slope_gain_per_s",
            rule: "finite and non-zero",
            value: slope_gain_per_s,
        });
    }
    let tc = tau_c_s.unwrap_or(dead_time_s);
    positive("tau_c_s + dead_time_s", tc + dead_time_s)?;
    Ok(Tuning {
        k: 1.0 / (slope_gain_per_s.abs() * (tc + dead_time_s)),
        ti_s: 4.0 * (tc + dead_time_s),
        td_s: 0.0,
        action: if slope_gain_per_s > 0.0 {
            Action::Heating
        } else {
            Action::Cooling
        },
    })
}

/// AMIGO PI (Åström & Hägglund 2004; Garpinger, Hägglund & Åström 2014, JPC 24:568):
/// K = 0.15/kp + (0.35 − L·T/(L + T)²)·T/(kp·L), Ti = 0.35·L + 13·L·T²/(T² + 12·L·T + 7·L²).
pub fn amigo_pi(m: Fopdt) -> CoreResult<Tuning> {
    let m = m.validated()?;
    let (kp, l, t) = (m.gain.abs(), m.dead_time_s, m.tau_s);
    positive("dead_time_s", l)?;
    let k = 0.15 / kp + (0.35 - l * t / ((l + t) * (l + t))) * t / (kp * l);
    let ti = 0.35 * l + 13.0 * l * t * t / (t * t + 12.0 * l * t + 7.0 * l * l);
    Ok(Tuning {
        k,
        ti_s: ti,
        td_s: 0.0,
        action: m.action(),
    })
}

/// IMC-PID (Rivera, Morari & Skogestad 1986) for a FOPDT:
/// Kc = (τ + θ/2)/(|k|(λ + θ/2)), Ti = τ + θ/2, Td = τθ/(2τ + θ).
pub fn imc_pid(m: Fopdt, lambda_s: f64) -> CoreResult<Tuning> {
    let m = m.validated()?;
    positive("lambda_s", lambda_s)?;
    let (k, tau, th) = (m.gain.abs(), m.tau_s, m.dead_time_s);
    Ok(Tuning {
        k: (tau + th / 2.0) / (k * (lambda_s + th / 2.0)),
        ti_s: tau + th / 2.0,
        td_s: tau * th / (2.0 * tau + th),
        action: m.action(),
    })
}

/// Ziegler–Nichols from the ultimate gain and period: PI K = 0.45·Ku, Ti = Pu/1.2;
/// PID K = 0.6·Ku, Ti = Pu/2, Td = Pu/8 (reference §5). `ku` is a magnitude; pass the action.
pub fn ziegler_nichols(
    ku: f64,
    pu_s: f64,
    with_derivative: bool,
    action: Action,
) -> CoreResult<Tuning> {
    positive("ku", ku)?;
    positive("pu_s", pu_s)?;
    Ok(if with_derivative {
        Tuning {
            k: 0.6 * ku,
            ti_s: pu_s / 2.0,
            td_s: pu_s / 8.0,
            action,
        }
    } else {
        Tuning {
            k: 0.45 * ku,
            ti_s: pu_s / 1.2,
            td_s: 0.0,
            action,
        }
    })
}
