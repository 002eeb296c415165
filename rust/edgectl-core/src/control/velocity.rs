//! Velocity (incremental) PID for pulse/PWM actuators (reference §2.2; IndPenSim `PIDSimple3.m`
//! as ported in cjpulmano/indpensim-py `indpensim/control/pid.py`, with the filtered D of §2).
//!
//! ```text
//! Δu = σ·K·[(b·r − y) − (b·r_old − y_old)] + σ·(K·h/Ti)·e + (D − D_old) + (u_ff − u_ff,old)
//! u  = clamp(clamp(u_prev + Δu, u_prev − R·h, u_prev + R·h), umin, umax)
//! ```
//!
//! Clipping is the anti-windup and holding `u_prev` makes manual → auto bumpless by
//! construction; retuning K or b is bumpless because both differences use the present gains.

use super::pid::{check_k, check_n, check_td, norm_ti, Components, Mode, PidSettings};
use crate::error::{check_dt, CoreError, CoreResult};

/// Incremental PID. Uses the fields `k, ti_s, td_s, n, b, c, output_min, output_max,
/// rate_limit_per_s, action` of [`PidSettings`]; the others are ignored.
#[derive(Debug, Clone)]
pub struct VelocityPid {
    s: PidSettings,
    setpoint: f64,
    mode: Mode,
    manual_output: f64,
    d: f64,
    y_old: f64,
    r_old: f64,
    ff_old: f64,
    u_prev: f64,
    seeded: bool,
    last: Components,
}

impl VelocityPid {
    /// A controller in auto mode starting from output `u0` (clamped to the limits).
    pub fn new(settings: PidSettings, u0: f64) -> CoreResult<Self> {
        let s = settings.validated()?;
        if !u0.is_finite() {
            return Err(CoreError::NonFinite {
                name: "initial_output",
                value: u0,
            });
        }
        let u0 = u0.clamp(s.output_min, s.output_max);
        Ok(Self {
            s,
            setpoint: 0.0,
            mode: Mode::Auto,
            manual_output: u0,
            d: 0.0,
            y_old: 0.0,
            r_old: 0.0,
            ff_old: 0.0,
            u_prev: u0,
            seeded: false,
            last: Components {
                u: u0,
                v: u0,
                ..Components::default()
            },
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &PidSettings {
        &self.s
    }

    /// Update with measurement `y` after `dt_s` s and feed-forward `ff`; returns `u`.
    /// The components report the increments ΔP, ΔI, ΔD, ΔFF of this step.
    pub fn update(&mut self, y: f64, dt_s: f64, ff: f64) -> CoreResult<f64> {
        check_dt(dt_s)?;
        if !y.is_finite() {
            return Err(CoreError::NonFinite {
                name: "measurement",
                value: y,
            });
        }
        if !ff.is_finite() {
            return Err(CoreError::NonFinite {
                name: "feedforward",
                value: ff,
            });
        }
        let s = &self.s;
        let h = dt_s;
        let r = self.setpoint;
        let sg = s.action.sigma();
        let (y_old, r_old, ff_old) = if self.seeded {
            (self.y_old, self.r_old, self.ff_old)
        } else {
            (y, r, ff)
        };
        let dp = sg * s.k * ((s.b * r - y) - (s.b * r_old - y_old));
        let di = if s.has_integral() {
            sg * s.k * h / s.ti_s * (r - y)
        } else {
            0.0
        };
        let (ad, bd) = s.derivative_coeffs(h);
        let d = if s.td_s == 0.0 {
            0.0
        } else {
            ad * self.d + bd * sg * ((s.c * r - y) - (s.c * r_old - y_old))
        };
        let dd = d - self.d;
        let dff = ff - ff_old;
        let lo = s.output_min;
        let hi = s.output_max;
        let (v, u) = match self.mode {
            Mode::Manual | Mode::Track => {
                let uf = self.manual_output.clamp(lo, hi);
                (uf, uf)
            }
            Mode::Auto => {
                let v = self.u_prev + dp + di + dd + dff;
                let mut u = v;
                if s.rate_limit_per_s.is_finite() {
                    let step = s.rate_limit_per_s * h;
                    u = u.clamp(self.u_prev - step, self.u_prev + step);
                }
                (v, u.clamp(lo, hi))
            }
        };
        if !(d.is_finite() && v.is_finite()) {
            return Err(CoreError::Numerical(format!(
                "velocity PID update with dt_s = {dt_s} and measurement = {y} overflows; refused"
            )));
        }
        self.d = d;
        self.y_old = y;
        self.r_old = r;
        self.ff_old = ff;
        self.u_prev = u;
        self.seeded = true;
        self.last = Components {
            p: dp,
            i: di,
            d: dd,
            ff: dff,
            v,
            u,
            saturated: u != v,
            mode: self.mode,
        };
        Ok(u)
    }

    /// Components (increments) of the last update.
    pub fn components(&self) -> Components {
        self.last
    }

    /// Output of the last update.
    pub fn output(&self) -> f64 {
        self.u_prev
    }

    /// Setpoint r.
    pub fn setpoint(&self) -> f64 {
        self.setpoint
    }

    /// Change the setpoint.
    pub fn set_setpoint(&mut self, r: f64) -> CoreResult<()> {
        if !r.is_finite() {
            return Err(CoreError::NonFinite {
                name: "setpoint",
                value: r,
            });
        }
        self.setpoint = r;
        Ok(())
    }

    /// Current mode (`Track` behaves as `Manual`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Change mode; bumpless by construction (entering manual holds the present output).
    pub fn set_mode(&mut self, mode: Mode) {
        if mode != self.mode && mode != Mode::Auto {
            self.manual_output = self.u_prev;
        }
        self.mode = mode;
    }

    /// Manual output.
    pub fn manual_output(&self) -> f64 {
        self.manual_output
    }

    /// Set the manual output.
    pub fn set_manual_output(&mut self, u: f64) -> CoreResult<()> {
        if !u.is_finite() {
            return Err(CoreError::NonFinite {
                name: "manual_output",
                value: u,
            });
        }
        self.manual_output = u;
        Ok(())
    }

    /// Change K (bumpless: increments use the present gain).
    pub fn set_k(&mut self, k: f64) -> CoreResult<()> {
        check_k(k)?;
        self.s.k = k;
        Ok(())
    }

    /// Change Ti (0 or ∞ = no integral).
    pub fn set_ti(&mut self, ti_s: f64) -> CoreResult<()> {
        self.s.ti_s = norm_ti(ti_s)?;
        Ok(())
    }

    /// Change Td.
    pub fn set_td(&mut self, td_s: f64) -> CoreResult<()> {
        check_td(td_s)?;
        self.s.td_s = td_s;
        if td_s == 0.0 {
            self.d = 0.0;
        }
        Ok(())
    }

    /// Change N.
    pub fn set_n(&mut self, n: f64) -> CoreResult<()> {
        check_n(n)?;
        self.s.n = n;
        Ok(())
    }

    /// Change b (bumpless: both sides of the difference use the new weight).
    pub fn set_b(&mut self, b: f64) -> CoreResult<()> {
        if !b.is_finite() {
            return Err(CoreError::NonFinite {
                name: "b",
                value: b,
            });
        }
        self.s.b = b;
        Ok(())
    }

    /// Change the output limits.
    pub fn set_limits(&mut self, lo: f64, hi: f64) -> CoreResult<()> {
        self.s.set_limits(lo, hi)
    }

    /// Change the rate limit (∞ = off).
    pub fn set_rate_limit(&mut self, r: f64) -> CoreResult<()> {
        self.s.set_rate_limit(r)
    }
}
