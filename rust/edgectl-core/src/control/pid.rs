//! Industrial PID in ISA (standard, dependent) form, positional algorithm.
//!
//! The discrete algorithm follows `shared/reference/control.md` §2 (Åström & Murray
//! discretisation, as in JuliaControl/DiscretePIDs.jl `src/DiscretePIDs.jl`):
//!
//! ```text
//! e    = σ·(r − y)
//! ẽ    = 0 if |e| ≤ db, else e − db·sign(e)              (dead band, continuous at the edge)
//! P    = K·σ·(b·r − y)   (db = 0)       P = K·ẽ   (db > 0)
//! ad   = Td/(Td + N·h),  bd = K·N·ad
//! D    = ad·D + bd·σ·[(c·r − y) − (c·r_old − y_old)]
//! v    = P + I + D + u_ff
//! u    = clamp(clamp(v, umin, umax), u_prev − R·h, u_prev + R·h)
//! u_a  = actuator-reported value if given, else u
//! I    = I + K·h/Ti·ẽ + h/Tt·(u_a − v)                   (back-calculation, Tt ≥ h)
//! ```
//!
//! Modes and bumpless transfer follow §2.1 of the reference.

use crate::error::{check_dt, CoreError, CoreResult};

/// Direction of action. Gains stay positive; the sign lives here (reference §1 "Action").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// σ = +1: the output rises when the measurement is below the setpoint (a heater, a base pump).
    Heating,
    /// σ = −1: the output rises when the measurement is above the setpoint (cooling, acid).
    Cooling,
}

impl Action {
    /// σ = +1 for [`Action::Heating`], −1 for [`Action::Cooling`].
    #[inline]
    pub fn sigma(self) -> f64 {
        match self {
            Action::Heating => 1.0,
            Action::Cooling => -1.0,
        }
    }

    /// Parse `"heating"` / `"cooling"`.
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s {
            "heating" => Ok(Action::Heating),
            "cooling" => Ok(Action::Cooling),
            other => Err(CoreError::InvalidConfig(format!(
                "action must be 'heating' or 'cooling', got {other:?}"
            ))),
        }
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Heating => "heating",
            Action::Cooling => "cooling",
        }
    }
}

/// How the integral is kept from winding up while the output is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AntiWindup {
    /// Back-calculation with tracking time Tt on the achieved output (reference §2; Brewblox
    /// `lib/src/Pid.cpp` uses the achieved value). The correction never drives I across zero
    /// (Brewblox scenario §7.8).
    BackCalculation,
    /// Conditional integration: skip the integral increment while the output is held off `v`
    /// in the direction the error pushes (QuickPID#34, ros-controls/control_toolbox PR #298).
    Conditional,
    /// Clamp I to the output limits, as simple-pid, Arduino PID_v1 and pid-rs do. Offered only
    /// for comparison and migration: not an accepted anti-windup method for edgectl (reference §2).
    Clamp,
}

impl AntiWindup {
    /// Parse `"back_calculation"`, `"conditional"` or `"clamp"`.
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s {
            "back_calculation" => Ok(AntiWindup::BackCalculation),
            "conditional" => Ok(AntiWindup::Conditional),
            "clamp" => Ok(AntiWindup::Clamp),
            other => Err(CoreError::InvalidConfig(format!(
                "anti_windup must be 'back_calculation', 'conditional' or 'clamp', got {other:?}"
            ))),
        }
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            AntiWindup::BackCalculation => "back_calculation",
            AntiWindup::Conditional => "conditional",
            AntiWindup::Clamp => "clamp",
        }
    }
}

/// Operating mode (reference §2.1; DCU3 modes, manual p.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Closed loop.
    Auto,
    /// Output set by the operator (`manual_output`); the integral tracks it every tick.
    Manual,
    /// Output forced to an external `track_output` (cascade secondary not accepting); the
    /// integral tracks it so the master never winds up.
    Track,
}

impl Mode {
    /// Parse `"auto"`, `"manual"` or `"track"`.
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s {
            "auto" => Ok(Mode::Auto),
            "manual" => Ok(Mode::Manual),
            "track" => Ok(Mode::Track),
            other => Err(CoreError::InvalidConfig(format!(
                "mode must be 'auto', 'manual' or 'track', got {other:?}"
            ))),
        }
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
            Mode::Track => "track",
        }
    }
}

/// Settings of a [`Pid`] (and of a [`crate::control::VelocityPid`], which ignores `tt_s`,
/// `anti_windup`, `bias` and the dead band fields).
#[derive(Debug, Clone, PartialEq)]
pub struct PidSettings {
    /// Controller gain K (output units per measurement unit), ≥ 0.
    pub k: f64,
    /// Integral time Ti in s; `f64::INFINITY` (or 0, normalised to ∞) = no integral action.
    pub ti_s: f64,
    /// Derivative time Td in s, ≥ 0 (0 = no derivative action).
    pub td_s: f64,
    /// Derivative filter divisor N: the filter time constant is Td/N. `∞` = unfiltered.
    pub n: f64,
    /// Setpoint weight of the proportional term (P acts on b·r − y).
    pub b: f64,
    /// Setpoint weight of the derivative term (0 = D on measurement, no kick on setpoint steps).
    pub c: f64,
    /// Anti-windup tracking time Tt in s; `None` = √(Ti·max(Td, h)) with h the update's step
    /// (see [`PidSettings::tracking_time_s`]).
    pub tt_s: Option<f64>,
    /// Lower output limit.
    pub output_min: f64,
    /// Upper output limit (> `output_min`).
    pub output_max: f64,
    /// Output rate limit R in output units per s (`∞` = off): |Δu| ≤ R·dt.
    pub rate_limit_per_s: f64,
    /// Symmetric error dead band ±db in measurement units (0 = off).
    pub deadband: f64,
    /// Inside the dead band force the output to `output_off` (split-range dosing, DCU3 DEADB);
    /// the forced value applies at once, outside the rate limit.
    pub deadband_outputs_off: bool,
    /// Output value used inside the dead band when `deadband_outputs_off` is set.
    pub output_off: f64,
    /// Direction of action.
    pub action: Action,
    /// Anti-windup method.
    pub anti_windup: AntiWindup,
    /// Initial (and reset) value of the integral state, in output units. With Ti = ∞ this is
    /// the manual-reset bias of a P(D) controller.
    pub bias: f64,
}

impl Default for PidSettings {
    fn default() -> Self {
        Self {
            k: 1.0,
            ti_s: f64::INFINITY,
            td_s: 0.0,
            n: 10.0,
            b: 1.0,
            c: 0.0,
            tt_s: None,
            output_min: 0.0,
            output_max: 100.0,
            rate_limit_per_s: f64::INFINITY,
            deadband: 0.0,
            deadband_outputs_off: false,
            output_off: 0.0,
            action: Action::Heating,
            anti_windup: AntiWindup::BackCalculation,
            bias: 0.0,
        }
    }
}

fn finite(name: &'static str, v: f64) -> CoreResult<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(CoreError::NonFinite { name, value: v })
    }
}

fn rule(ok: bool, name: &'static str, rule: &'static str, value: f64) -> CoreResult<()> {
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter { name, rule, value })
    }
}

pub(crate) fn check_k(k: f64) -> CoreResult<()> {
    finite("kp", k)?;
    rule(k >= 0.0, "kp", ">= 0 (the sign lives in `action`)", k)
}

/// Normalise and check an integral time: 0 and ∞ both mean "no integral".
pub(crate) fn norm_ti(ti_s: f64) -> CoreResult<f64> {
    rule(
        !ti_s.is_nan() && ti_s >= 0.0,
        "ti_s",
        ">= 0 (0 or inf = no integral)",
        ti_s,
    )?;
    Ok(if ti_s == 0.0 { f64::INFINITY } else { ti_s })
}

pub(crate) fn check_td(td: f64) -> CoreResult<()> {
    finite("td_s", td)?;
    rule(td >= 0.0, "td_s", ">= 0", td)
}

pub(crate) fn check_n(n: f64) -> CoreResult<()> {
    rule(!n.is_nan() && n > 0.0, "n", "> 0 (inf = unfiltered)", n)
}

pub(crate) fn check_rate(r: f64) -> CoreResult<()> {
    rule(
        !r.is_nan() && r > 0.0,
        "rate_limit_per_s",
        "> 0 (inf = off)",
        r,
    )
}

pub(crate) fn check_limits(lo: f64, hi: f64) -> CoreResult<()> {
    finite("output_min", lo)?;
    finite("output_max", hi)?;
    rule(hi > lo, "output_max", "> output_min", hi)
}

impl PidSettings {
    /// Check and set the output limits (shared by [`Pid`] and the velocity PID).
    pub(crate) fn set_limits(&mut self, output_min: f64, output_max: f64) -> CoreResult<()> {
        check_limits(output_min, output_max)?;
        self.output_min = output_min;
        self.output_max = output_max;
        Ok(())
    }

    /// Check and set the output rate limit (∞ = off).
    pub(crate) fn set_rate_limit(&mut self, r: f64) -> CoreResult<()> {
        check_rate(r)?;
        self.rate_limit_per_s = r;
        Ok(())
    }

    /// Check every field and normalise `ti_s = 0` to `∞`.
    pub fn validated(mut self) -> CoreResult<Self> {
        check_k(self.k)?;
        self.ti_s = norm_ti(self.ti_s)?;
        check_td(self.td_s)?;
        check_n(self.n)?;
        finite("b", self.b)?;
        finite("c", self.c)?;
        if let Some(tt) = self.tt_s {
            finite("tt_s", tt)?;
            rule(tt > 0.0, "tt_s", "> 0", tt)?;
        }
        check_limits(self.output_min, self.output_max)?;
        check_rate(self.rate_limit_per_s)?;
        finite("deadband", self.deadband)?;
        rule(self.deadband >= 0.0, "deadband", ">= 0", self.deadband)?;
        finite("output_off", self.output_off)?;
        finite("bias", self.bias)?;
        Ok(self)
    }

    /// True when the integral acts (finite Ti).
    #[inline]
    pub fn has_integral(&self) -> bool {
        self.ti_s.is_finite()
    }

    /// Tracking time used with a step of `h_s` seconds: `tt_s`, else √(Ti·max(Td, h)).
    ///
    /// Åström & Hägglund (*Advanced PID Control*, ISA 2006, §3.5 "Integrator windup"): Tt should
    /// lie between Td and Ti, and their rule of thumb is the geometric mean Tt = √(Ti·Td). For a
    /// PI (Td = 0) the lower bound becomes the smallest tracking time the discrete algorithm
    /// accepts, the step h (Tt ≥ h, reference §2), and the same geometric mean of the bounds
    /// gives Tt = √(Ti·h) **[derived]**. While the output sits at a limit the tracked integral
    /// settles where v − u_lim = K·e·Tt/Ti: the earlier PI default Tt = Ti left I at the limit,
    /// as clamping does, and overshot like simple-pid (8.0 K against 7.9 K in the saturation
    /// scenario); √(Ti·h) leaves a fraction √(h/Ti) of P (Ti = 60 s, h = 1 s: 13 %).
    pub fn tracking_time_s(&self, h_s: f64) -> f64 {
        match self.tt_s {
            Some(tt) => tt,
            None => (self.ti_s * self.td_s.max(h_s)).sqrt(),
        }
    }

    /// Derivative coefficients (ad, bd) for a step of `h` s (reference §2).
    #[inline]
    pub(crate) fn derivative_coeffs(&self, h: f64) -> (f64, f64) {
        if self.td_s == 0.0 {
            (0.0, 0.0)
        } else if self.n.is_infinite() {
            (0.0, self.k * self.td_s / h)
        } else {
            let ad = self.td_s / (self.td_s + self.n * h);
            (ad, self.k * self.n * ad)
        }
    }
}

/// What one update computed (reference §1 "Diagnostics"): `v = p + i + d + ff` before limits,
/// `u` after limits and rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    /// Proportional term.
    pub p: f64,
    /// Integral term used in this update (output units).
    pub i: f64,
    /// Derivative term.
    pub d: f64,
    /// Feed-forward.
    pub ff: f64,
    /// Unsaturated output P + I + D + FF.
    pub v: f64,
    /// Output after limits and rate limit.
    pub u: f64,
    /// True when `u != v` (limits, rate limit, or a forced output).
    pub saturated: bool,
    /// Mode in which the update ran.
    pub mode: Mode,
}

impl Default for Components {
    fn default() -> Self {
        Self {
            p: 0.0,
            i: 0.0,
            d: 0.0,
            ff: 0.0,
            v: 0.0,
            u: 0.0,
            saturated: false,
            mode: Mode::Auto,
        }
    }
}

/// Industrial PID controller, ISA form, positional (reference §2).
///
/// The setpoint is held by the controller (`set_setpoint`); each [`Pid::update`] takes the
/// measurement and the measured time step `dt_s` since the previous update. Bad input
/// (`dt_s` not finite or ≤ 0, measurement or feed-forward not finite) returns an error and
/// leaves every state untouched: the previous output stays valid.
#[derive(Debug, Clone)]
pub struct Pid {
    s: PidSettings,
    setpoint: f64,
    mode: Mode,
    manual_output: f64,
    track_output: f64,
    i: f64,
    d: f64,
    y_old: f64,
    r_old: f64,
    u_prev: f64,
    e_last: f64,
    h_last: Option<f64>,
    seeded: bool,
    pending_bumpless: bool,
    last: Components,
}

impl Pid {
    /// A controller in auto mode with the integral at `bias`, output at the clamped bias.
    pub fn new(settings: PidSettings) -> CoreResult<Self> {
        let s = settings.validated()?;
        let u0 = s.bias.clamp(s.output_min, s.output_max);
        Ok(Self {
            setpoint: 0.0,
            mode: Mode::Auto,
            manual_output: u0,
            track_output: u0,
            i: s.bias,
            d: 0.0,
            y_old: 0.0,
            r_old: 0.0,
            u_prev: u0,
            e_last: 0.0,
            h_last: None,
            seeded: false,
            pending_bumpless: false,
            last: Components {
                i: s.bias,
                u: u0,
                v: s.bias,
                ..Components::default()
            },
            s,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &PidSettings {
        &self.s
    }

    /// Replace all settings at once, bumplessly (the next update starts from the present output).
    pub fn set_settings(&mut self, settings: PidSettings) -> CoreResult<()> {
        self.s = settings.validated()?;
        self.pending_bumpless = self.seeded;
        Ok(())
    }

    /// Update with measurement `y` after `dt_s` seconds; returns the output `u`.
    #[inline]
    pub fn update(&mut self, y: f64, dt_s: f64) -> CoreResult<f64> {
        self.update_full(y, dt_s, 0.0, None)
    }

    /// Update with feed-forward `ff` (added before the limits) and, optionally, the value the
    /// actuator actually reached (`achieved`), on which the back-calculation acts (Brewblox
    /// scenario §7.2: rate or mutex constraints downstream count as saturation).
    pub fn update_full(
        &mut self,
        y: f64,
        dt_s: f64,
        ff: f64,
        achieved: Option<f64>,
    ) -> CoreResult<f64> {
        check_dt(dt_s)?;
        finite("measurement", y)?;
        finite("feedforward", ff)?;
        if let Some(a) = achieved {
            finite("achieved", a)?;
        }
        // Everything is computed into locals and committed at the end, so an update that
        // would leave a non-finite state (an absurd dt_s overflowing the integral) is refused
        // with the controller untouched.
        let s = &self.s;
        let h = dt_s;
        let r = self.setpoint;
        let sg = s.action.sigma();
        // First sample (or after reset): seed the derivative, no kick.
        let (y_old, r_old) = if self.seeded {
            (self.y_old, self.r_old)
        } else {
            (y, r)
        };
        let e = sg * (r - y);
        let db = s.deadband;
        let e_t = if db > 0.0 {
            if e.abs() <= db {
                0.0
            } else {
                e - db * e.signum()
            }
        } else {
            e
        };
        let p = if db > 0.0 {
            s.k * e_t
        } else {
            s.k * sg * (s.b * r - y)
        };
        let (ad, bd) = s.derivative_coeffs(h);
        let d = if s.td_s == 0.0 {
            0.0
        } else {
            ad * self.d + bd * sg * ((s.c * r - y) - (s.c * r_old - y_old))
        };
        let lo = s.output_min;
        let hi = s.output_max;
        let forced = match self.mode {
            Mode::Manual => Some(self.manual_output.clamp(lo, hi)),
            Mode::Track => Some(self.track_output.clamp(lo, hi)),
            Mode::Auto if db > 0.0 && s.deadband_outputs_off && e.abs() <= db => Some(s.output_off),
            Mode::Auto => None,
        };
        let (i_used, i_next, v, u);
        match forced {
            Some(uf) => {
                // The integral tracks so that v = u: ready for a bumpless return to auto.
                i_used = uf - p - d - ff;
                i_next = i_used;
                v = uf;
                u = uf;
            }
            None => {
                // manual/track → auto, retune of structure: u continues from u_prev.
                i_used = if self.pending_bumpless {
                    self.u_prev - p - d - ff
                } else {
                    self.i
                };
                v = p + i_used + d + ff;
                let mut uu = v.clamp(lo, hi);
                if s.rate_limit_per_s.is_finite() {
                    let step = s.rate_limit_per_s * h;
                    uu = uu
                        .clamp(self.u_prev - step, self.u_prev + step)
                        .clamp(lo, hi);
                }
                u = uu;
                let ua = achieved.unwrap_or(u);
                i_next = if s.has_integral() {
                    let inc = s.k * h / s.ti_s * e_t;
                    match s.anti_windup {
                        AntiWindup::BackCalculation => {
                            let ar = (h / s.tracking_time_s(h)).min(1.0);
                            let integrated = i_used + inc;
                            let next = integrated + ar * (ua - v);
                            // Anti-windup never drives the integral across zero (Brewblox §7.8).
                            if (integrated > 0.0 && next < 0.0) || (integrated < 0.0 && next > 0.0)
                            {
                                0.0
                            } else {
                                next
                            }
                        }
                        AntiWindup::Conditional => {
                            let held = (ua < v && e_t > 0.0) || (ua > v && e_t < 0.0);
                            if held {
                                i_used
                            } else {
                                i_used + inc
                            }
                        }
                        AntiWindup::Clamp => (i_used + inc).clamp(lo, hi),
                    }
                } else {
                    i_used
                };
            }
        }
        if !(i_next.is_finite() && d.is_finite() && v.is_finite() && u.is_finite()) {
            return Err(CoreError::Numerical(format!(
                "PID update with dt_s = {dt_s} and measurement = {y} overflows; refused"
            )));
        }
        self.i = i_next;
        self.d = d;
        self.y_old = y;
        self.r_old = r;
        self.u_prev = u;
        self.e_last = e;
        self.h_last = Some(h);
        self.seeded = true;
        self.pending_bumpless = false;
        self.last = Components {
            p,
            i: i_used,
            d,
            ff,
            v,
            u,
            saturated: u != v,
            mode: self.mode,
        };
        Ok(u)
    }

    /// Components of the last update.
    pub fn components(&self) -> Components {
        self.last
    }

    /// Tracking time of the last update; before the first one `tt_s`, or √(Ti·Td) with Td > 0,
    /// or `None` (a PI's default depends on the step).
    pub fn tracking_time_s(&self) -> Option<f64> {
        match (self.s.tt_s, self.h_last) {
            (Some(tt), _) => Some(tt),
            (None, Some(h)) => Some(self.s.tracking_time_s(h)),
            (None, None) if self.s.td_s > 0.0 => Some(self.s.tracking_time_s(0.0)),
            (None, None) => None,
        }
    }

    /// Output of the last update (or the initial output).
    pub fn output(&self) -> f64 {
        self.u_prev
    }

    /// Control error σ·(r − y) of the last update.
    pub fn last_error(&self) -> f64 {
        self.e_last
    }

    /// Integral state (output units) that the next update will use.
    pub fn integral(&self) -> f64 {
        self.i
    }

    /// Preset the integral state (Brewblox `setIntegral`).
    pub fn set_integral(&mut self, i: f64) -> CoreResult<()> {
        finite("integral", i)?;
        self.i = i;
        self.pending_bumpless = false;
        Ok(())
    }

    /// Re-initialise by tracking: make the last output equal `u_target` by moving the integral
    /// (I = u_target − P − D − u_ff, reference §4 cascade hand-over). The next update continues
    /// from there without a jump.
    pub fn track_to(&mut self, u_target: f64) -> CoreResult<()> {
        finite("u_target", u_target)?;
        let c = self.last;
        self.i = u_target - c.p - c.d - c.ff;
        self.u_prev = u_target;
        self.last.i = self.i;
        self.last.v = u_target;
        self.last.u = u_target;
        self.last.saturated = false;
        self.pending_bumpless = false;
        Ok(())
    }

    /// Zero the derivative state, set the integral to the bias and re-seed the derivative on the
    /// next update (no kick). The output holds until then. Used after priming a feed line
    /// (BioPAT Trace manual p.103).
    pub fn reset(&mut self) {
        self.i = self.s.bias;
        self.d = 0.0;
        self.seeded = false;
        self.pending_bumpless = false;
    }

    /// Setpoint r.
    pub fn setpoint(&self) -> f64 {
        self.setpoint
    }

    /// Change the setpoint (no special action: c = 0 removes the derivative kick, b < 1 softens
    /// the proportional kick).
    pub fn set_setpoint(&mut self, r: f64) -> CoreResult<()> {
        finite("setpoint", r)?;
        self.setpoint = r;
        Ok(())
    }

    /// Current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Change mode, bumplessly both ways: entering manual or track starts from the present
    /// output; returning to auto re-initialises the integral on the next update so that the
    /// output continues from where it was, even with e ≠ 0 (reference §2.1).
    pub fn set_mode(&mut self, mode: Mode) {
        if mode == self.mode {
            return;
        }
        match mode {
            Mode::Manual => self.manual_output = self.u_prev,
            Mode::Track => self.track_output = self.u_prev,
            Mode::Auto => self.pending_bumpless = true,
        }
        self.mode = mode;
    }

    /// Output held in manual mode.
    pub fn manual_output(&self) -> f64 {
        self.manual_output
    }

    /// Set the manual output (applied, clamped to the limits, from the next update on).
    pub fn set_manual_output(&mut self, u: f64) -> CoreResult<()> {
        finite("manual_output", u)?;
        self.manual_output = u;
        Ok(())
    }

    /// Output forced in track mode.
    pub fn track_output(&self) -> f64 {
        self.track_output
    }

    /// Set the value to track (cascade secondary's achieved setpoint, external `u_track`).
    pub fn set_track_output(&mut self, u: f64) -> CoreResult<()> {
        finite("track_output", u)?;
        self.track_output = u;
        Ok(())
    }

    fn p_at(&self, k: f64, b: f64, r: f64, y: f64) -> f64 {
        let s = &self.s;
        let sg = s.action.sigma();
        if s.deadband > 0.0 {
            let e = sg * (r - y);
            if e.abs() <= s.deadband {
                0.0
            } else {
                k * (e - s.deadband * e.signum())
            }
        } else {
            k * sg * (b * r - y)
        }
    }

    /// Change K bumplessly: I += P_old − P_new at the last (r, y) (DiscretePIDs `set_K!`).
    pub fn set_k(&mut self, k: f64) -> CoreResult<()> {
        check_k(k)?;
        if self.seeded && self.mode == Mode::Auto && !self.pending_bumpless {
            let old = self.p_at(self.s.k, self.s.b, self.r_old, self.y_old);
            let new = self.p_at(k, self.s.b, self.r_old, self.y_old);
            self.i += old - new;
        }
        self.s.k = k;
        Ok(())
    }

    /// Change b bumplessly: I += P_old − P_new at the last (r, y).
    pub fn set_b(&mut self, b: f64) -> CoreResult<()> {
        finite("b", b)?;
        if self.seeded && self.mode == Mode::Auto && !self.pending_bumpless {
            let old = self.p_at(self.s.k, self.s.b, self.r_old, self.y_old);
            let new = self.p_at(self.s.k, b, self.r_old, self.y_old);
            self.i += old - new;
        }
        self.s.b = b;
        Ok(())
    }

    /// Change c. The D state is kept (it is in output units), so the output does not jump.
    pub fn set_c(&mut self, c: f64) -> CoreResult<()> {
        finite("c", c)?;
        self.s.c = c;
        Ok(())
    }

    /// Change Ti (0 or ∞ = no integral). Nothing else moves: I is stored in output units
    /// (Brewblox scenario §7.4); with Ti = ∞ the present I becomes the held bias.
    pub fn set_ti(&mut self, ti_s: f64) -> CoreResult<()> {
        self.s.ti_s = norm_ti(ti_s)?;
        Ok(())
    }

    /// Change Td. The D state is kept (output unchanged); switching D off moves it into I.
    pub fn set_td(&mut self, td_s: f64) -> CoreResult<()> {
        check_td(td_s)?;
        if td_s == 0.0 {
            self.i += self.d;
            self.d = 0.0;
        }
        self.s.td_s = td_s;
        Ok(())
    }

    /// Change the derivative filter N (D state kept, output unchanged).
    pub fn set_n(&mut self, n: f64) -> CoreResult<()> {
        check_n(n)?;
        self.s.n = n;
        Ok(())
    }

    /// Change the tracking time (`None` = default rule).
    pub fn set_tt(&mut self, tt_s: Option<f64>) -> CoreResult<()> {
        if let Some(tt) = tt_s {
            finite("tt_s", tt)?;
            rule(tt > 0.0, "tt_s", "> 0", tt)?;
        }
        self.s.tt_s = tt_s;
        Ok(())
    }

    /// Change the output limits.
    pub fn set_limits(&mut self, output_min: f64, output_max: f64) -> CoreResult<()> {
        self.s.set_limits(output_min, output_max)
    }

    /// Change the rate limit (∞ = off).
    pub fn set_rate_limit(&mut self, r: f64) -> CoreResult<()> {
        self.s.set_rate_limit(r)
    }

    /// Change the dead band; bumpless (P changes definition, so the next update re-initialises).
    pub fn set_deadband(&mut self, db: f64, outputs_off: bool, output_off: f64) -> CoreResult<()> {
        finite("deadband", db)?;
        rule(db >= 0.0, "deadband", ">= 0", db)?;
        finite("output_off", output_off)?;
        self.s.deadband = db;
        self.s.deadband_outputs_off = outputs_off;
        self.s.output_off = output_off;
        self.pending_bumpless = self.seeded;
        Ok(())
    }

    /// Change the action; bumpless (the next update starts from the present output).
    pub fn set_action(&mut self, action: Action) {
        if action != self.s.action {
            self.s.action = action;
            self.pending_bumpless = self.seeded;
        }
    }

    /// Change the anti-windup method.
    pub fn set_anti_windup(&mut self, aw: AntiWindup) {
        self.s.anti_windup = aw;
    }

    /// Change the bias (used by `reset`; the running integral is not touched).
    pub fn set_bias(&mut self, bias: f64) -> CoreResult<()> {
        finite("bias", bias)?;
        self.s.bias = bias;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validation_and_defaults() {
        let s = PidSettings {
            ti_s: 0.0,
            ..PidSettings::default()
        }
        .validated()
        .unwrap();
        assert!(s.ti_s.is_infinite() && !s.has_integral());
        for bad in [
            PidSettings {
                k: -1.0,
                ..PidSettings::default()
            },
            PidSettings {
                output_min: 5.0,
                output_max: 5.0,
                ..PidSettings::default()
            },
            PidSettings {
                n: 0.0,
                ..PidSettings::default()
            },
            PidSettings {
                tt_s: Some(0.0),
                ..PidSettings::default()
            },
            PidSettings {
                rate_limit_per_s: f64::NAN,
                ..PidSettings::default()
            },
            PidSettings {
                ti_s: f64::NAN,
                ..PidSettings::default()
            },
        ] {
            assert!(Pid::new(bad).is_err());
        }
    }

    #[test]
    fn tracking_time_rules() {
        let pi = PidSettings {
            ti_s: 100.0,
            ..PidSettings::default()
        };
        // PI: √(Ti·h), the geometric mean of the bounds h ≤ Tt ≤ Ti.
        assert_eq!(pi.tracking_time_s(1.0), 10.0);
        assert_eq!(pi.tracking_time_s(4.0), 20.0);
        let pid = PidSettings {
            ti_s: 100.0,
            td_s: 25.0,
            ..PidSettings::default()
        };
        assert_eq!(pid.tracking_time_s(1.0), 50.0);
        // Td below the step: the step is the lower bound.
        assert_eq!(pid.tracking_time_s(100.0), 100.0);
        let set = PidSettings {
            tt_s: Some(7.0),
            ..pid.clone()
        };
        assert_eq!(set.tracking_time_s(1.0), 7.0);
        let mut p = Pid::new(pi).unwrap();
        assert_eq!(p.tracking_time_s(), None, "a PI's Tt depends on the step");
        p.update(0.0, 4.0).unwrap();
        assert_eq!(p.tracking_time_s(), Some(20.0));
        assert_eq!(Pid::new(pid).unwrap().tracking_time_s(), Some(50.0));
    }

    #[test]
    fn derivative_coefficients() {
        let s = PidSettings {
            k: 2.0,
            td_s: 10.0,
            n: 10.0,
            ..PidSettings::default()
        };
        let (ad, bd) = s.derivative_coeffs(1.0);
        assert_eq!(ad, 0.5);
        assert_eq!(bd, 10.0);
        let raw = PidSettings {
            n: f64::INFINITY,
            ..s
        };
        assert_eq!(raw.derivative_coeffs(0.5), (0.0, 40.0));
    }

    #[test]
    fn names_round_trip() {
        for a in [Action::Heating, Action::Cooling] {
            assert_eq!(Action::parse(a.name()).unwrap(), a);
        }
        for m in [Mode::Auto, Mode::Manual, Mode::Track] {
            assert_eq!(Mode::parse(m.name()).unwrap(), m);
        }
        for w in [
            AntiWindup::BackCalculation,
            AntiWindup::Conditional,
            AntiWindup::Clamp,
        ] {
            assert_eq!(AntiWindup::parse(w.name()).unwrap(), w);
        }
        assert!(Mode::parse("cascade").is_err());
    }
}
