//! Bindings of `edgectl_core::control`: thin wrappers, the core does every computation.
//!
//! A `Pid.update` is a few multiplications, cheaper than releasing the GIL, so nothing here
//! detaches (STYLE §2). The loop bank holds the very `Pid` objects the user created, so
//! `bank["ph"].kp = 0.8` retunes the controller the bank steps.

use edgectl_core::control::{
    self as core, Action, AntiWindup, CascadeStage, Components, Fopdt, LadderSettings, Mode,
    PidSettings, PulseSettings, PumpCalibration, RelaySettings, RelayState, SplitRangeSettings,
    StageGains, StageUse, Tuning,
};
use edgectl_core::CoreError;
use numpy::{AllowTypeChange, IntoPyArray, PyArray1, PyArrayLike1, PyReadwriteArray1};
use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{check, to_py_err, InvalidInputError};

fn action_of(s: &str) -> PyResult<Action> {
    check(Action::parse(s))
}

fn mode_of(s: &str) -> PyResult<Mode> {
    check(Mode::parse(s))
}

// ---- Pid -------------------------------------------------------------------------------------

/// What one update computed: P, I, D, FF, unsaturated v, output u, saturated flag, mode.
#[pyclass(name = "PidComponents", module = "edgectl._core", frozen)]
#[derive(Clone)]
pub struct PyPidComponents {
    inner: Components,
}

#[pymethods]
impl PyPidComponents {
    #[getter]
    fn p(&self) -> f64 {
        self.inner.p
    }
    #[getter]
    fn i(&self) -> f64 {
        self.inner.i
    }
    #[getter]
    fn d(&self) -> f64 {
        self.inner.d
    }
    #[getter]
    fn ff(&self) -> f64 {
        self.inner.ff
    }
    #[getter]
    fn v(&self) -> f64 {
        self.inner.v
    }
    #[getter]
    fn u(&self) -> f64 {
        self.inner.u
    }
    #[getter]
    fn saturated(&self) -> bool {
        self.inner.saturated
    }
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode.name()
    }
    fn __repr__(&self) -> String {
        let c = &self.inner;
        format!(
            "PidComponents(p={:?}, i={:?}, d={:?}, ff={:?}, v={:?}, u={:?}, saturated={}, mode='{}')",
            c.p,
            c.i,
            c.d,
            c.ff,
            c.v,
            c.u,
            if c.saturated { "True" } else { "False" },
            c.mode.name()
        )
    }
}

/// Industrial PID controller, ISA form u = K·[e + (1/Ti)∫e dt + Td·de/dt].
///
/// P acts on b·r − y, D on c·r − y (filtered, time constant Td/N), I on r − y. Back-calculation
/// anti-windup (tracking time Tt) on the achieved output, or conditional integration; asymmetric
/// limits, rate limit, dead band, feed-forward; modes auto / manual / track with bumpless
/// transfer both ways; setting `kp`, `b`, `td_s`, `n` while running is bumpless.
///
/// Parameters
/// ----------
/// kp : float
///     Controller gain K (>= 0; the sign lives in `action`).
/// ti_s : float
///     Integral time in s; inf (or 0) = no integral, the integral then holds `bias`.
/// td_s : float
///     Derivative time in s.
/// b, c : float
///     Setpoint weights of P and D (c = 0: no derivative kick on setpoint steps).
/// n : float
///     Derivative filter divisor (inf = unfiltered).
/// tt_s : float or None
///     Anti-windup tracking time in s; None = sqrt(Ti*max(Td, dt_s)) (Astrom & Hagglund
///     2006: the geometric mean of the bounds of Tt; see `tracking_time_s`).
/// output_min, output_max : float
///     Output limits (asymmetric allowed).
/// rate_limit_per_s : float
///     Largest output change per second (inf = off).
/// deadband : float
///     Error dead band ±deadband in measurement units, continuous at the edge.
/// deadband_outputs_off : bool
///     Force the output to `output_off` inside the dead band.
/// output_off : float
///     Output inside the dead band when `deadband_outputs_off`.
/// action : {"heating", "cooling"}
///     "heating": the output rises when the measurement is below the setpoint.
/// anti_windup : {"back_calculation", "conditional", "clamp"}
///     "clamp" (I limited to the output range, as simple-pid) is for comparison only.
/// bias : float
///     Initial and reset value of the integral (output units).
/// setpoint : float
///     Initial setpoint.
///
/// Raises
/// ------
/// InvalidInputError
///     A setting out of range; `update` with dt_s not finite or <= 0, or a non-finite
///     measurement (the controller state is left unchanged).
/// ConfigError
///     Unknown `action`, `anti_windup` or `mode` name.
///
/// Examples
/// --------
/// >>> pid = Pid(2.0, ti_s=300.0, setpoint=37.0)
/// >>> pid.update(36.0, dt_s=1.0)
/// 2.0
/// >>> pid.components().p
/// 2.0
#[pyclass(name = "Pid", module = "edgectl._core")]
pub struct PyPid {
    pub(crate) inner: core::Pid,
}

#[pymethods]
impl PyPid {
    #[new]
    #[pyo3(signature = (
        kp, ti_s=f64::INFINITY, td_s=0.0, *, b=1.0, c=0.0, n=10.0, tt_s=None,
        output_min=0.0, output_max=100.0, rate_limit_per_s=f64::INFINITY, deadband=0.0,
        deadband_outputs_off=false, output_off=0.0, action="heating",
        anti_windup="back_calculation", bias=0.0, setpoint=0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kp: f64,
        ti_s: f64,
        td_s: f64,
        b: f64,
        c: f64,
        n: f64,
        tt_s: Option<f64>,
        output_min: f64,
        output_max: f64,
        rate_limit_per_s: f64,
        deadband: f64,
        deadband_outputs_off: bool,
        output_off: f64,
        action: &str,
        anti_windup: &str,
        bias: f64,
        setpoint: f64,
    ) -> PyResult<Self> {
        let s = PidSettings {
            k: kp,
            ti_s,
            td_s,
            n,
            b,
            c,
            tt_s,
            output_min,
            output_max,
            rate_limit_per_s,
            deadband,
            deadband_outputs_off,
            output_off,
            action: action_of(action)?,
            anti_windup: check(AntiWindup::parse(anti_windup))?,
            bias,
        };
        let mut inner = check(core::Pid::new(s))?;
        check(inner.set_setpoint(setpoint))?;
        Ok(Self { inner })
    }

    #[pyo3(signature = (measurement, dt_s, feedforward=0.0, achieved=None))]
    fn update(
        &mut self,
        measurement: f64,
        dt_s: f64,
        feedforward: f64,
        achieved: Option<f64>,
    ) -> PyResult<f64> {
        check(
            self.inner
                .update_full(measurement, dt_s, feedforward, achieved),
        )
    }

    fn components(&self) -> PyPidComponents {
        PyPidComponents {
            inner: self.inner.components(),
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn track_to(&mut self, output: f64) -> PyResult<()> {
        check(self.inner.track_to(output))
    }

    fn set_limits(&mut self, output_min: f64, output_max: f64) -> PyResult<()> {
        check(self.inner.set_limits(output_min, output_max))
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("kp", s.k)?;
        d.set_item("ti_s", s.ti_s)?;
        d.set_item("td_s", s.td_s)?;
        d.set_item("b", s.b)?;
        d.set_item("c", s.c)?;
        d.set_item("n", s.n)?;
        d.set_item("tt_s", s.tt_s)?;
        d.set_item("output_min", s.output_min)?;
        d.set_item("output_max", s.output_max)?;
        d.set_item("rate_limit_per_s", s.rate_limit_per_s)?;
        d.set_item("deadband", s.deadband)?;
        d.set_item("deadband_outputs_off", s.deadband_outputs_off)?;
        d.set_item("output_off", s.output_off)?;
        d.set_item("action", s.action.name())?;
        d.set_item("anti_windup", s.anti_windup.name())?;
        d.set_item("bias", s.bias)?;
        d.set_item("setpoint", self.inner.setpoint())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        let mut r = format!(
            "Pid(kp={:?}, ti_s={:?}, td_s={:?}, b={:?}, c={:?}, n={:?}",
            s.k, s.ti_s, s.td_s, s.b, s.c, s.n
        );
        if let Some(tt) = s.tt_s {
            r += &format!(", tt_s={tt:?}");
        }
        r += &format!(
            ", output_min={:?}, output_max={:?}",
            s.output_min, s.output_max
        );
        if s.rate_limit_per_s.is_finite() {
            r += &format!(", rate_limit_per_s={:?}", s.rate_limit_per_s);
        }
        if s.deadband > 0.0 {
            r += &format!(
                ", deadband={:?}, deadband_outputs_off={}, output_off={:?}",
                s.deadband,
                if s.deadband_outputs_off {
                    "True"
                } else {
                    "False"
                },
                s.output_off
            );
        }
        if s.bias != 0.0 {
            r += &format!(", bias={:?}", s.bias);
        }
        format!(
            "{r}, action='{}', anti_windup='{}', setpoint={:?}, mode='{}', output={:?})",
            s.action.name(),
            s.anti_windup.name(),
            self.inner.setpoint(),
            self.inner.mode().name(),
            self.inner.output()
        )
    }

    #[getter]
    fn c(&self) -> f64 {
        self.inner.settings().c
    }
    #[setter]
    fn set_c(&mut self, v: f64) -> PyResult<()> {
        check(self.inner.set_c(v))
    }
    #[getter]
    fn tt_s(&self) -> Option<f64> {
        self.inner.settings().tt_s
    }
    #[setter]
    fn set_tt_s(&mut self, v: Option<f64>) -> PyResult<()> {
        check(self.inner.set_tt(v))
    }
    #[getter]
    fn tracking_time_s(&self) -> Option<f64> {
        self.inner.tracking_time_s()
    }
    #[getter]
    fn output_min(&self) -> f64 {
        self.inner.settings().output_min
    }
    #[setter]
    fn set_output_min(&mut self, v: f64) -> PyResult<()> {
        let hi = self.inner.settings().output_max;
        check(self.inner.set_limits(v, hi))
    }
    #[getter]
    fn output_max(&self) -> f64 {
        self.inner.settings().output_max
    }
    #[setter]
    fn set_output_max(&mut self, v: f64) -> PyResult<()> {
        let lo = self.inner.settings().output_min;
        check(self.inner.set_limits(lo, v))
    }
    #[getter]
    fn deadband(&self) -> f64 {
        self.inner.settings().deadband
    }
    #[setter]
    fn set_deadband(&mut self, v: f64) -> PyResult<()> {
        let s = self.inner.settings();
        let (off, uo) = (s.deadband_outputs_off, s.output_off);
        check(self.inner.set_deadband(v, off, uo))
    }
    #[getter]
    fn deadband_outputs_off(&self) -> bool {
        self.inner.settings().deadband_outputs_off
    }
    #[setter]
    fn set_deadband_outputs_off(&mut self, v: bool) -> PyResult<()> {
        let s = self.inner.settings();
        let (db, uo) = (s.deadband, s.output_off);
        check(self.inner.set_deadband(db, v, uo))
    }
    #[getter]
    fn output_off(&self) -> f64 {
        self.inner.settings().output_off
    }
    #[setter]
    fn set_output_off(&mut self, v: f64) -> PyResult<()> {
        let s = self.inner.settings();
        let (db, off) = (s.deadband, s.deadband_outputs_off);
        check(self.inner.set_deadband(db, off, v))
    }
    #[getter]
    fn action(&self) -> &'static str {
        self.inner.settings().action.name()
    }
    #[setter]
    fn set_action(&mut self, v: &str) -> PyResult<()> {
        self.inner.set_action(action_of(v)?);
        Ok(())
    }
    #[getter]
    fn anti_windup(&self) -> &'static str {
        self.inner.settings().anti_windup.name()
    }
    #[setter]
    fn set_anti_windup(&mut self, v: &str) -> PyResult<()> {
        self.inner.set_anti_windup(check(AntiWindup::parse(v))?);
        Ok(())
    }
    #[getter]
    fn bias(&self) -> f64 {
        self.inner.settings().bias
    }
    #[setter]
    fn set_bias(&mut self, v: f64) -> PyResult<()> {
        check(self.inner.set_bias(v))
    }
    #[getter]
    fn track_output(&self) -> f64 {
        self.inner.track_output()
    }
    #[setter]
    fn set_track_output(&mut self, v: f64) -> PyResult<()> {
        check(self.inner.set_track_output(v))
    }
    #[getter]
    fn integral(&self) -> f64 {
        self.inner.integral()
    }
    #[setter]
    fn set_integral(&mut self, v: f64) -> PyResult<()> {
        check(self.inner.set_integral(v))
    }
}

// ---- VelocityPid ------------------------------------------------------------------------------

/// Velocity (incremental) PID: each update adds Δu = ΔP + ΔI + ΔD + ΔFF to the last output.
///
/// For pulse and PWM actuators (reference §2.2). Clipping is the anti-windup; manual → auto
/// and retuning are bumpless by construction. Parameters as `Pid`, plus `initial_output`.
///
/// Examples
/// --------
/// >>> v = VelocityPid(1.0, ti_s=50.0, initial_output=30.0, setpoint=37.0)
/// >>> round(v.update(36.0, dt_s=1.0), 6)
/// 30.02
#[pyclass(name = "VelocityPid", module = "edgectl._core")]
pub struct PyVelocityPid {
    inner: core::VelocityPid,
}

#[pymethods]
impl PyVelocityPid {
    #[new]
    #[pyo3(signature = (
        kp, ti_s=f64::INFINITY, td_s=0.0, *, b=1.0, c=0.0, n=10.0, output_min=0.0,
        output_max=100.0, rate_limit_per_s=f64::INFINITY, action="heating", initial_output=0.0,
        setpoint=0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kp: f64,
        ti_s: f64,
        td_s: f64,
        b: f64,
        c: f64,
        n: f64,
        output_min: f64,
        output_max: f64,
        rate_limit_per_s: f64,
        action: &str,
        initial_output: f64,
        setpoint: f64,
    ) -> PyResult<Self> {
        let s = PidSettings {
            k: kp,
            ti_s,
            td_s,
            n,
            b,
            c,
            output_min,
            output_max,
            rate_limit_per_s,
            action: action_of(action)?,
            ..PidSettings::default()
        };
        let mut inner = check(core::VelocityPid::new(s, initial_output))?;
        check(inner.set_setpoint(setpoint))?;
        Ok(Self { inner })
    }

    #[pyo3(signature = (measurement, dt_s, feedforward=0.0))]
    fn update(&mut self, measurement: f64, dt_s: f64, feedforward: f64) -> PyResult<f64> {
        check(self.inner.update(measurement, dt_s, feedforward))
    }

    fn components(&self) -> PyPidComponents {
        PyPidComponents {
            inner: self.inner.components(),
        }
    }

    fn set_limits(&mut self, output_min: f64, output_max: f64) -> PyResult<()> {
        check(self.inner.set_limits(output_min, output_max))
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("kp", s.k)?;
        d.set_item("ti_s", s.ti_s)?;
        d.set_item("td_s", s.td_s)?;
        d.set_item("b", s.b)?;
        d.set_item("c", s.c)?;
        d.set_item("n", s.n)?;
        d.set_item("output_min", s.output_min)?;
        d.set_item("output_max", s.output_max)?;
        d.set_item("rate_limit_per_s", s.rate_limit_per_s)?;
        d.set_item("action", s.action.name())?;
        d.set_item("setpoint", self.inner.setpoint())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        format!(
            "VelocityPid(kp={:?}, ti_s={:?}, td_s={:?}, b={:?}, c={:?}, n={:?}, output_min={:?}, output_max={:?}, \
             rate_limit_per_s={:?}, action='{}', setpoint={:?}, mode='{}', output={:?})",
            s.k,
            s.ti_s,
            s.td_s,
            s.b,
            s.c,
            s.n,
            s.output_min,
            s.output_max,
            s.rate_limit_per_s,
            s.action.name(),
            self.inner.setpoint(),
            self.inner.mode().name(),
            self.inner.output()
        )
    }

    #[getter]
    fn output_min(&self) -> f64 {
        self.inner.settings().output_min
    }
    #[getter]
    fn output_max(&self) -> f64 {
        self.inner.settings().output_max
    }
    #[getter]
    fn action(&self) -> &'static str {
        self.inner.settings().action.name()
    }
}

/// Properties `Pid` and `VelocityPid` share (same core method names on both), in their own
/// `#[pymethods]` block (pyo3 `multiple-pymethods`).
macro_rules! pid_common_properties {
    ($ty:ty) => {
        #[pymethods]
        impl $ty {
            #[getter]
            fn kp(&self) -> f64 {
                self.inner.settings().k
            }
            #[setter]
            fn set_kp(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_k(v))
            }
            #[getter]
            fn ti_s(&self) -> f64 {
                self.inner.settings().ti_s
            }
            #[setter]
            fn set_ti_s(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_ti(v))
            }
            #[getter]
            fn td_s(&self) -> f64 {
                self.inner.settings().td_s
            }
            #[setter]
            fn set_td_s(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_td(v))
            }
            #[getter]
            fn n(&self) -> f64 {
                self.inner.settings().n
            }
            #[setter]
            fn set_n(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_n(v))
            }
            #[getter]
            fn b(&self) -> f64 {
                self.inner.settings().b
            }
            #[setter]
            fn set_b(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_b(v))
            }
            #[getter]
            fn rate_limit_per_s(&self) -> f64 {
                self.inner.settings().rate_limit_per_s
            }
            #[setter]
            fn set_rate_limit_per_s(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_rate_limit(v))
            }
            #[getter]
            fn setpoint(&self) -> f64 {
                self.inner.setpoint()
            }
            #[setter]
            fn set_setpoint(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_setpoint(v))
            }
            #[getter]
            fn mode(&self) -> &'static str {
                self.inner.mode().name()
            }
            #[setter]
            fn set_mode(&mut self, v: &str) -> PyResult<()> {
                self.inner.set_mode(mode_of(v)?);
                Ok(())
            }
            #[getter]
            fn manual_output(&self) -> f64 {
                self.inner.manual_output()
            }
            #[setter]
            fn set_manual_output(&mut self, v: f64) -> PyResult<()> {
                check(self.inner.set_manual_output(v))
            }
            #[getter]
            fn output(&self) -> f64 {
                self.inner.output()
            }
        }
    };
}

pid_common_properties!(PyPid);
pid_common_properties!(PyVelocityPid);

// ---- SplitRange -------------------------------------------------------------------------------

/// Split range: one controller output (e.g. −100..+100 %) to a low-side and a high-side
/// actuator (acid/CO2 and base, cooling and heater), with a dead band around the split point.
///
/// Both outputs are recomputed from the present input on every update, so the first sample after
/// a change of side is correct, and they are never both non-zero. `changeover_s` keeps both off
/// for that long before the other side may start.
///
/// Examples
/// --------
/// >>> s = SplitRange(deadband=5.0)
/// >>> s.update(52.5, dt_s=1.0)
/// (0.0, 50.0)
/// >>> s.update(-52.5, dt_s=1.0)
/// (50.0, 0.0)
#[pyclass(name = "SplitRange", module = "edgectl._core")]
pub struct PySplitRange {
    inner: core::SplitRange,
}

#[pymethods]
impl PySplitRange {
    #[new]
    #[pyo3(signature = (
        *, input_min=-100.0, input_max=100.0, split=0.0, deadband=0.0, low_max=100.0,
        high_max=100.0, changeover_s=0.0
    ))]
    fn new(
        input_min: f64,
        input_max: f64,
        split: f64,
        deadband: f64,
        low_max: f64,
        high_max: f64,
        changeover_s: f64,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: check(core::SplitRange::new(SplitRangeSettings {
                input_min,
                input_max,
                split,
                deadband,
                low_max,
                high_max,
                changeover_s,
            }))?,
        })
    }

    fn update(&mut self, controller_output: f64, dt_s: f64) -> PyResult<(f64, f64)> {
        check(self.inner.update(controller_output, dt_s))
    }

    fn map(&self, controller_output: f64) -> PyResult<(f64, f64)> {
        if !controller_output.is_finite() {
            return Err(InvalidInputError::new_err(format!(
                "controller_output is not finite (got {controller_output})"
            )));
        }
        Ok(self.inner.map(controller_output))
    }

    #[getter]
    fn outputs(&self) -> (f64, f64) {
        self.inner.outputs()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("input_min", s.input_min)?;
        d.set_item("input_max", s.input_max)?;
        d.set_item("split", s.split)?;
        d.set_item("deadband", s.deadband)?;
        d.set_item("low_max", s.low_max)?;
        d.set_item("high_max", s.high_max)?;
        d.set_item("changeover_s", s.changeover_s)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        format!(
            "SplitRange(input_min={:?}, input_max={:?}, split={:?}, deadband={:?}, low_max={:?}, \
             high_max={:?}, changeover_s={:?})",
            s.input_min, s.input_max, s.split, s.deadband, s.low_max, s.high_max, s.changeover_s
        )
    }
}

// ---- DoCascade --------------------------------------------------------------------------------

/// Sequential DO cascade: one master `Pid` drives stages (stirrer rpm → air flow → O2 %).
///
/// The active stage gets the master output scaled to its (min, max); lower stages sit at max,
/// higher ones at min. The master hands over to the next stage after sitting at its limit for
/// `hysteresis_s` with a consistent error sign, and back at the other limit; its integral is
/// re-initialised by tracking so no actuator jumps (DCU3 §6.9–6.13).
///
/// Parameters
/// ----------
/// master : Pid
///     The DO controller (stays tunable: `cascade.master.kp = ...`).
/// stages : list of (min, max)
///     Working range of each stage, in order of use.
/// hysteresis_s : float
///     Time at a limit before handing over, s.
/// gains : list of (kp, ti_s) or None, optional
///     Master gains per stage (gain schedule; None = the master's own gains), applied
///     bumplessly when the stage becomes active.
/// degraded_gains : list of (kp, ti_s) or None, optional
///     Master gains per stage while a stage below it has failed (None = its own gains).
///
/// A stage whose actuator fails is disabled with `set_stage_enabled(k, False)` (use
/// "failed"; the operator's `set_stage_use(k, "out_of_use")` also parks it at its minimum):
/// hand-overs skip it, and if it is active the cascade hands over at once (up, else down).
#[pyclass(name = "DoCascade", module = "edgectl._core")]
pub struct PyDoCascade {
    inner: core::DoCascade,
    master: Py<PyPid>,
}

impl PyDoCascade {
    fn step_into(&mut self, py: Python<'_>, y: f64, dt_s: f64, out: &mut [f64]) -> PyResult<()> {
        let mut m = self.master.bind(py).try_borrow_mut()?;
        let pos = check(self.inner.update(&mut m.inner, y, dt_s))?;
        out.copy_from_slice(pos);
        Ok(())
    }
}

#[pymethods]
impl PyDoCascade {
    #[new]
    #[pyo3(signature = (master, stages, hysteresis_s=60.0, gains=None, degraded_gains=None))]
    fn new(
        py: Python<'_>,
        master: Py<PyPid>,
        stages: Vec<(f64, f64)>,
        hysteresis_s: f64,
        gains: Option<Vec<Option<(f64, f64)>>>,
        degraded_gains: Option<Vec<Option<(f64, f64)>>>,
    ) -> PyResult<Self> {
        let st: Vec<CascadeStage> = stages
            .into_iter()
            .map(|(min, max)| CascadeStage { min, max })
            .collect();
        let n = st.len();
        let mut inner = check(core::DoCascade::new(st, hysteresis_s))?;
        for (what, list) in [("gains", gains), ("degraded_gains", degraded_gains)] {
            let Some(list) = list else { continue };
            if list.len() != n {
                return Err(to_py_err(CoreError::InvalidConfig(format!(
                    "{what}: {} entries for {n} stages",
                    list.len()
                ))));
            }
            let mut m = master.bind(py).try_borrow_mut()?;
            for (k, g) in list.into_iter().enumerate() {
                let g = g.map(|(kp, ti_s)| StageGains { kp, ti_s });
                if what == "gains" {
                    check(inner.set_stage_gains(&mut m.inner, k, g))?;
                } else {
                    check(inner.set_stage_degraded_gains(&mut m.inner, k, g))?;
                }
            }
        }
        Ok(Self { inner, master })
    }

    /// Set how stage `k` is used: "enabled", "failed" (skipped, parked like any stage, the
    /// stages above run degraded) or "out_of_use" (skipped, parked at its minimum).
    fn set_stage_use(&mut self, py: Python<'_>, k: usize, usage: &str) -> PyResult<()> {
        let u = match usage {
            "enabled" => StageUse::Enabled,
            "failed" => StageUse::Failed,
            "out_of_use" => StageUse::OutOfUse,
            other => {
                return Err(to_py_err(CoreError::InvalidConfig(format!(
                    "stage use must be 'enabled', 'failed' or 'out_of_use', got {other:?}"
                ))))
            }
        };
        let mut m = self.master.bind(py).try_borrow_mut()?;
        check(self.inner.set_stage_use(&mut m.inner, k, u))
    }

    /// How each stage is used ("enabled", "failed", "out_of_use").
    #[getter]
    fn stage_use(&self) -> Vec<&'static str> {
        self.inner
            .stage_use()
            .iter()
            .map(|u| match u {
                StageUse::Enabled => "enabled",
                StageUse::Failed => "failed",
                StageUse::OutOfUse => "out_of_use",
            })
            .collect()
    }

    /// Whether each stage runs degraded (a stage below it has failed).
    #[getter]
    fn stage_degraded(&self) -> Vec<bool> {
        (0..self.inner.stages().len())
            .map(|k| self.inner.stage_degraded(k))
            .collect()
    }

    /// Set stage `k`'s degraded master gains `(kp, ti_s)`, or None for its own gains.
    #[pyo3(signature = (k, gains))]
    fn set_stage_degraded_gains(
        &mut self,
        py: Python<'_>,
        k: usize,
        gains: Option<(f64, f64)>,
    ) -> PyResult<()> {
        let mut m = self.master.bind(py).try_borrow_mut()?;
        let g = gains.map(|(kp, ti_s)| StageGains { kp, ti_s });
        check(self.inner.set_stage_degraded_gains(&mut m.inner, k, g))
    }

    /// Degraded master gains `(kp, ti_s)` of each stage (None: its own gains).
    #[getter]
    fn stage_degraded_gains(&self) -> Vec<Option<(f64, f64)>> {
        self.inner
            .stage_degraded_gains()
            .iter()
            .map(|g| g.map(|g| (g.kp, g.ti_s)))
            .collect()
    }

    /// Master gains `(kp, ti_s)` of stages without their own (None before the first update).
    #[getter]
    fn base_gains(&self) -> Option<(f64, f64)> {
        self.inner.base_gains().map(|g| (g.kp, g.ti_s))
    }

    /// Set the base gains `(kp, ti_s)` (e.g. restored after a restart).
    fn set_base_gains(&mut self, py: Python<'_>, gains: (f64, f64)) -> PyResult<()> {
        let mut m = self.master.bind(py).try_borrow_mut()?;
        let g = StageGains {
            kp: gains.0,
            ti_s: gains.1,
        };
        check(self.inner.set_base_gains(&mut m.inner, g))
    }

    /// Copy the master's live gains into the gain set in use (before reading the gains).
    fn store_live_gains(&mut self, py: Python<'_>) -> PyResult<()> {
        let m = self.master.bind(py).try_borrow()?;
        self.inner.store_live_gains(&m.inner);
        Ok(())
    }

    /// Enable or disable stage `k` (its actuator failed or is back).
    fn set_stage_enabled(&mut self, py: Python<'_>, k: usize, enabled: bool) -> PyResult<()> {
        let mut m = self.master.bind(py).try_borrow_mut()?;
        check(self.inner.set_stage_enabled(&mut m.inner, k, enabled))
    }

    /// Whether each stage may be used.
    #[getter]
    fn stage_enabled(&self) -> Vec<bool> {
        self.inner.stage_enabled()
    }

    /// Set stage `k`'s own master gains `(kp, ti_s)`, or None for the base gains.
    #[pyo3(signature = (k, gains))]
    fn set_stage_gains(
        &mut self,
        py: Python<'_>,
        k: usize,
        gains: Option<(f64, f64)>,
    ) -> PyResult<()> {
        let mut m = self.master.bind(py).try_borrow_mut()?;
        let g = gains.map(|(kp, ti_s)| StageGains { kp, ti_s });
        check(self.inner.set_stage_gains(&mut m.inner, k, g))
    }

    /// Own master gains `(kp, ti_s)` of each stage (None: the base gains).
    #[getter]
    fn stage_gains(&self) -> Vec<Option<(f64, f64)>> {
        self.inner
            .stage_gains()
            .iter()
            .map(|g| g.map(|g| (g.kp, g.ti_s)))
            .collect()
    }

    fn update<'py>(
        &mut self,
        py: Python<'py>,
        measurement: f64,
        dt_s: f64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mut out = vec![0.0; self.inner.stages().len()];
        self.step_into(py, measurement, dt_s, &mut out)?;
        Ok(out.into_pyarray(py))
    }

    #[getter]
    fn master(&self, py: Python<'_>) -> Py<PyPid> {
        self.master.clone_ref(py)
    }

    #[getter]
    fn active(&self) -> usize {
        self.inner.active()
    }

    #[setter]
    fn set_active(&mut self, py: Python<'_>, k: usize) -> PyResult<()> {
        let mut m = self.master.bind(py).try_borrow_mut()?;
        check(self.inner.set_active(&mut m.inner, k))
    }

    #[getter]
    fn handovers(&self) -> u64 {
        self.inner.handovers()
    }

    #[getter]
    fn hysteresis_s(&self) -> f64 {
        self.inner.hysteresis_s()
    }

    #[setter]
    fn set_hysteresis_s(&mut self, v: f64) -> PyResult<()> {
        check(self.inner.set_hysteresis_s(v))
    }

    #[getter]
    fn stages(&self) -> Vec<(f64, f64)> {
        self.inner.stages().iter().map(|s| (s.min, s.max)).collect()
    }

    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.outputs().to_vec().into_pyarray(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.master.bind(py).try_borrow()?;
        Ok(format!(
            "DoCascade(master={}, stages={:?}, hysteresis_s={:?}, active={:?})",
            m.__repr__(),
            self.stages(),
            self.inner.hysteresis_s(),
            self.inner.active()
        ))
    }
}

// ---- PulseOutput, FoamPulser ------------------------------------------------------------------

/// Time-proportioning pulse output for heaters (SSR) and dosing pumps, with a dose counter.
///
/// On-time per window = duty × `window_s`, quantised to `quantum_s` (the tick, or 10 ms mains
/// half-cycles), with minimum on/off times; the remainder is carried to the next window so
/// the mean duty is exact. `ml_per_min` (flow at full rate) or `ml_per_pulse` calibrate the
/// dose counter; `prime()` resets it (priming is not a dose).
///
/// Examples
/// --------
/// >>> p = PulseOutput(10.0, quantum_s=1.0, ml_per_min=6.0)
/// >>> sum(p.update(0.3, dt_s=1.0) for _ in range(100))
/// 30
/// >>> round(p.dose_ml, 6)
/// 3.0
#[pyclass(name = "PulseOutput", module = "edgectl._core")]
pub struct PyPulseOutput {
    inner: core::PulseOutput,
}

#[pymethods]
impl PyPulseOutput {
    #[new]
    #[pyo3(signature = (
        window_s, *, quantum_s=0.0, min_on_s=0.0, min_off_s=0.0, ml_per_min=None, ml_per_pulse=None
    ))]
    fn new(
        window_s: f64,
        quantum_s: f64,
        min_on_s: f64,
        min_off_s: f64,
        ml_per_min: Option<f64>,
        ml_per_pulse: Option<f64>,
    ) -> PyResult<Self> {
        let calibration = match (ml_per_min, ml_per_pulse) {
            (None, None) => PumpCalibration::None,
            (Some(v), None) => PumpCalibration::MlPerMin(v),
            (None, Some(v)) => PumpCalibration::MlPerPulse(v),
            (Some(_), Some(_)) => {
                return Err(to_py_err(CoreError::InvalidConfig(
                    "give either ml_per_min or ml_per_pulse, not both".into(),
                )))
            }
        };
        Ok(Self {
            inner: check(core::PulseOutput::new(PulseSettings {
                window_s,
                quantum_s,
                min_on_s,
                min_off_s,
                calibration,
            }))?,
        })
    }

    fn update(&mut self, duty: f64, dt_s: f64) -> PyResult<bool> {
        check(self.inner.update(duty, dt_s))
    }
    #[getter]
    fn is_on(&self) -> bool {
        self.inner.is_on()
    }
    #[getter]
    fn on_time_s(&self) -> f64 {
        self.inner.on_time_s()
    }
    #[getter]
    fn dose_ml(&self) -> f64 {
        self.inner.dose_ml()
    }
    #[getter]
    fn pulses(&self) -> u64 {
        self.inner.pulses()
    }
    fn reset_dose(&mut self) {
        self.inner.reset_dose();
    }
    fn prime(&mut self) {
        self.inner.prime();
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("window_s", s.window_s)?;
        d.set_item("quantum_s", s.quantum_s)?;
        d.set_item("min_on_s", s.min_on_s)?;
        d.set_item("min_off_s", s.min_off_s)?;
        match s.calibration {
            PumpCalibration::None => {}
            PumpCalibration::MlPerMin(v) => d.set_item("ml_per_min", v)?,
            PumpCalibration::MlPerPulse(v) => d.set_item("ml_per_pulse", v)?,
        }
        Ok(d)
    }
    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        let cal = match s.calibration {
            PumpCalibration::None => String::new(),
            PumpCalibration::MlPerMin(v) => format!(", ml_per_min={v:?}"),
            PumpCalibration::MlPerPulse(v) => format!(", ml_per_pulse={v:?}"),
        };
        format!(
            "PulseOutput(window_s={:?}, quantum_s={:?}, min_on_s={:?}, min_off_s={:?}{cal}, dose_ml={:?})",
            s.window_s,
            s.quantum_s,
            s.min_on_s,
            s.min_off_s,
            self.inner.dose_ml()
        )
    }
}

/// Foam probe → antifoam pump pulses (DCU3 §6.15): the probe must read foam for `delay_s`
/// (anti-splash), then `pulse_s` on, `pause_s` off, repeated while foam persists; dose in mL
/// from `ml_per_min`.
#[pyclass(name = "FoamPulser", module = "edgectl._core")]
pub struct PyFoamPulser {
    inner: core::FoamPulser,
}

#[pymethods]
impl PyFoamPulser {
    #[new]
    #[pyo3(signature = (*, pulse_s=2.0, pause_s=30.0, delay_s=5.0, ml_per_min=1.0))]
    fn new(pulse_s: f64, pause_s: f64, delay_s: f64, ml_per_min: f64) -> PyResult<Self> {
        Ok(Self {
            inner: check(core::FoamPulser::new(core::FoamSettings {
                pulse_s,
                pause_s,
                delay_s,
                ml_per_min,
            }))?,
        })
    }
    fn update(&mut self, foam: bool, dt_s: f64) -> PyResult<bool> {
        check(self.inner.update(foam, dt_s))
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("pulse_s", s.pulse_s)?;
        d.set_item("pause_s", s.pause_s)?;
        d.set_item("delay_s", s.delay_s)?;
        d.set_item("ml_per_min", s.ml_per_min)?;
        Ok(d)
    }
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().name()
    }
    #[getter]
    fn dose_ml(&self) -> f64 {
        self.inner.dose_ml()
    }
    #[getter]
    fn pulses(&self) -> u64 {
        self.inner.pulses()
    }
    fn reset_dose(&mut self) {
        self.inner.reset_dose();
    }
    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        format!(
            "FoamPulser(pulse_s={:?}, pause_s={:?}, delay_s={:?}, ml_per_min={:?}, state='{}', dose_ml={:?})",
            s.pulse_s,
            s.pause_s,
            s.delay_s,
            s.ml_per_min,
            self.inner.state().name(),
            self.inner.dose_ml()
        )
    }
}

// ---- Interlock, feeds -------------------------------------------------------------------------

/// Heater over-temperature interlock ladder: duty × `reduce_factor` at `reduce_c`, 0 at
/// `disable_c`, latched trip at `trip_c` (Pioreactor heater PCB); levels fall back with
/// `hysteresis_c`; a trip needs `reset(temp_c)` below `reduce_c − hysteresis_c`. A non-finite
/// temperature disables the heater.
#[pyclass(name = "OverTempLadder", module = "edgectl._core")]
pub struct PyOverTempLadder {
    inner: core::OverTempLadder,
}

#[pymethods]
impl PyOverTempLadder {
    #[new]
    #[pyo3(signature = (
        *, reduce_c=63.0, disable_c=65.0, trip_c=66.0, hysteresis_c=1.0, reduce_factor=0.9
    ))]
    fn new(
        reduce_c: f64,
        disable_c: f64,
        trip_c: f64,
        hysteresis_c: f64,
        reduce_factor: f64,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: check(core::OverTempLadder::new(LadderSettings {
                reduce_c,
                disable_c,
                trip_c,
                hysteresis_c,
                reduce_factor,
            }))?,
        })
    }
    fn update(&mut self, temp_c: f64, duty: f64) -> PyResult<f64> {
        check(self.inner.update(temp_c, duty))
    }
    fn reset(&mut self, temp_c: f64) -> PyResult<()> {
        check(self.inner.reset(temp_c))
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("reduce_c", s.reduce_c)?;
        d.set_item("disable_c", s.disable_c)?;
        d.set_item("trip_c", s.trip_c)?;
        d.set_item("hysteresis_c", s.hysteresis_c)?;
        d.set_item("reduce_factor", s.reduce_factor)?;
        Ok(d)
    }
    #[getter]
    fn level(&self) -> &'static str {
        self.inner.level().name()
    }
    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        format!(
            "OverTempLadder(reduce_c={:?}, disable_c={:?}, trip_c={:?}, hysteresis_c={:?}, \
             reduce_factor={:?}, level='{}')",
            s.reduce_c,
            s.disable_c,
            s.trip_c,
            s.hysteresis_c,
            s.reduce_factor,
            self.inner.level().name()
        )
    }
}

/// Exponential feed profile F(t) = (μ/Yxs + m)·X0·V0/Sf·e^(μt) (Korz et al. 1995), returned
/// in mL/min by `update(dt_s)`.
#[pyclass(name = "ExponentialFeed", module = "edgectl._core")]
pub struct PyExponentialFeed {
    inner: core::ExponentialFeed,
    repr: String,
}

#[pymethods]
impl PyExponentialFeed {
    #[new]
    #[pyo3(signature = (
        *, mu_per_h, yield_xs, x0_g_l, v0_l, feed_conc_g_l, maintenance_per_h=0.0,
        max_rate_ml_min=f64::INFINITY
    ))]
    fn new(
        mu_per_h: f64,
        yield_xs: f64,
        x0_g_l: f64,
        v0_l: f64,
        feed_conc_g_l: f64,
        maintenance_per_h: f64,
        max_rate_ml_min: f64,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: check(core::ExponentialFeed::new(
                mu_per_h,
                yield_xs,
                maintenance_per_h,
                x0_g_l,
                v0_l,
                feed_conc_g_l,
                max_rate_ml_min,
            ))?,
            repr: format!(
                "ExponentialFeed(mu_per_h={mu_per_h:?}, yield_xs={yield_xs:?}, x0_g_l={x0_g_l:?}, \
                 v0_l={v0_l:?}, feed_conc_g_l={feed_conc_g_l:?}, maintenance_per_h={maintenance_per_h:?}, \
                 max_rate_ml_min={:?})",
                max_rate_ml_min
            ),
        })
    }
    fn update(&mut self, dt_s: f64) -> PyResult<f64> {
        check(self.inner.update(dt_s))
    }
    fn rate_at(&self, t_h: f64) -> f64 {
        self.inner.rate_at(t_h)
    }
    #[getter]
    fn elapsed_h(&self) -> f64 {
        self.inner.elapsed_h()
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn __repr__(&self) -> String {
        self.repr.clone()
    }
}

/// DO-stat / pH-stat feed pulser: a feed pulse of `pulse_s` when the signal rises above
/// `threshold`, re-armed once it falls below `rearm` (Vojta et al. 2002).
#[pyclass(name = "StatPulser", module = "edgectl._core")]
pub struct PyStatPulser {
    inner: core::StatPulser,
    repr: String,
}

#[pymethods]
impl PyStatPulser {
    #[new]
    #[pyo3(signature = (*, threshold, rearm, pulse_s, ml_per_min))]
    fn new(threshold: f64, rearm: f64, pulse_s: f64, ml_per_min: f64) -> PyResult<Self> {
        Ok(Self {
            inner: check(core::StatPulser::new(threshold, rearm, pulse_s, ml_per_min))?,
            repr: format!(
                "StatPulser(threshold={threshold:?}, rearm={rearm:?}, pulse_s={pulse_s:?}, \
                 ml_per_min={ml_per_min:?})"
            ),
        })
    }
    fn update(&mut self, signal: f64, dt_s: f64) -> PyResult<bool> {
        check(self.inner.update(signal, dt_s))
    }
    #[getter]
    fn dose_ml(&self) -> f64 {
        self.inner.dose_ml()
    }
    #[getter]
    fn pulses(&self) -> u64 {
        self.inner.pulses()
    }
    #[getter]
    fn is_armed(&self) -> bool {
        self.inner.is_armed()
    }
    fn reset_dose(&mut self) {
        self.inner.reset_dose();
    }
    fn __repr__(&self) -> String {
        self.repr.clone()
    }
}

// ---- Autotune and tuning rules ----------------------------------------------------------------

/// First-order-plus-dead-time model gain·e^(−θs)/(τs + 1): `gain` (PV per output unit,
/// negative for reverse-acting plants), `tau_s`, `dead_time_s`.
#[pyclass(name = "Fopdt", module = "edgectl._core", frozen)]
#[derive(Clone)]
pub struct PyFopdt {
    inner: Fopdt,
}

#[pymethods]
impl PyFopdt {
    #[new]
    fn new(gain: f64, tau_s: f64, dead_time_s: f64) -> PyResult<Self> {
        Ok(Self {
            inner: check(
                Fopdt {
                    gain,
                    tau_s,
                    dead_time_s,
                }
                .validated(),
            )?,
        })
    }
    #[getter]
    fn gain(&self) -> f64 {
        self.inner.gain
    }
    #[getter]
    fn tau_s(&self) -> f64 {
        self.inner.tau_s
    }
    #[getter]
    fn dead_time_s(&self) -> f64 {
        self.inner.dead_time_s
    }
    fn __repr__(&self) -> String {
        format!(
            "Fopdt(gain={:?}, tau_s={:?}, dead_time_s={:?})",
            self.inner.gain, self.inner.tau_s, self.inner.dead_time_s
        )
    }
}

/// ISA settings (kp, ti_s, td_s, action) produced by a tuning rule; feed them to
/// `edgectl.control.pid_from_tuning`.
#[pyclass(name = "PidTuning", module = "edgectl._core", frozen)]
#[derive(Clone)]
pub struct PyPidTuning {
    inner: Tuning,
    rule: &'static str,
}

#[pymethods]
impl PyPidTuning {
    #[getter]
    fn kp(&self) -> f64 {
        self.inner.k
    }
    #[getter]
    fn ti_s(&self) -> f64 {
        self.inner.ti_s
    }
    #[getter]
    fn td_s(&self) -> f64 {
        self.inner.td_s
    }
    #[getter]
    fn action(&self) -> &'static str {
        self.inner.action.name()
    }
    #[getter]
    fn rule(&self) -> &'static str {
        self.rule
    }
    fn __repr__(&self) -> String {
        format!(
            "PidTuning(rule='{}', kp={:?}, ti_s={:?}, td_s={:?}, action='{}')",
            self.rule,
            self.inner.k,
            self.inner.ti_s,
            self.inner.td_s,
            self.inner.action.name()
        )
    }
}

/// Result of a relay experiment: Ku = 4d/(π√(a² − ε²)), Pu, amplitudes and half-periods;
/// `fopdt(gain=None)` fits a FOPDT from the cycle.
#[pyclass(name = "RelayResult", module = "edgectl._core", frozen)]
#[derive(Clone)]
pub struct PyRelayResult {
    inner: core::RelayResult,
}

#[pymethods]
impl PyRelayResult {
    #[getter]
    fn ku(&self) -> f64 {
        self.inner.ku
    }
    #[getter]
    fn pu_s(&self) -> f64 {
        self.inner.pu_s
    }
    #[getter]
    fn amplitude_pv(&self) -> f64 {
        self.inner.amplitude_pv
    }
    #[getter]
    fn amplitude_out(&self) -> f64 {
        self.inner.amplitude_out
    }
    #[getter]
    fn hysteresis(&self) -> f64 {
        self.inner.hysteresis
    }
    #[getter]
    fn t_on_s(&self) -> f64 {
        self.inner.t_on_s
    }
    #[getter]
    fn t_off_s(&self) -> f64 {
        self.inner.t_off_s
    }
    #[getter]
    fn y_max(&self) -> f64 {
        self.inner.y_max
    }
    #[getter]
    fn y_min(&self) -> f64 {
        self.inner.y_min
    }
    #[getter]
    fn u_high(&self) -> f64 {
        self.inner.u_high
    }
    #[getter]
    fn u_low(&self) -> f64 {
        self.inner.u_low
    }
    #[getter]
    fn setpoint(&self) -> f64 {
        self.inner.setpoint
    }
    #[getter]
    fn action(&self) -> &'static str {
        self.inner.action.name()
    }
    #[getter]
    fn cycles(&self) -> u32 {
        self.inner.cycles
    }
    #[pyo3(signature = (gain=None))]
    fn fopdt(&self, gain: Option<f64>) -> PyResult<PyFopdt> {
        Ok(PyFopdt {
            inner: check(core::fopdt_from_relay(&self.inner, gain))?,
        })
    }
    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "RelayResult(ku={:?}, pu_s={:?}, amplitude_pv={:?}, amplitude_out={:?}, t_on_s={:?}, \
             t_off_s={:?}, cycles={:?}, action='{}')",
            r.ku,
            r.pu_s,
            r.amplitude_pv,
            r.amplitude_out,
            r.t_on_s,
            r.t_off_s,
            r.cycles,
            r.action.name()
        )
    }
}

/// Relay-feedback autotune (Åström & Hägglund 1984), stepped like a controller.
///
/// The relay swings `bias ± amplitude` (amplitude reduced to stay inside the output limits)
/// with noise band `hysteresis`; flipped for `action="cooling"`. The first cycle is discarded,
/// the next `cycles` are averaged. Aborts (output back to `bias`) when the measurement leaves
/// [pv_min, pv_max] or after `max_time_s`.
///
/// Examples
/// --------
/// >>> at = RelayAutotune(setpoint=37.0, bias=50.0, amplitude=30.0, hysteresis=0.05)
/// >>> at.update(30.0, dt_s=1.0)
/// 80.0
#[pyclass(name = "RelayAutotune", module = "edgectl._core")]
pub struct PyRelayAutotune {
    inner: core::RelayAutotune,
}

#[pymethods]
impl PyRelayAutotune {
    #[new]
    #[pyo3(signature = (
        *, setpoint, bias, amplitude, hysteresis=0.0, output_min=0.0, output_max=100.0,
        action="heating", cycles=3, pv_min=f64::NEG_INFINITY, pv_max=f64::INFINITY,
        max_time_s=7200.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        setpoint: f64,
        bias: f64,
        amplitude: f64,
        hysteresis: f64,
        output_min: f64,
        output_max: f64,
        action: &str,
        cycles: u32,
        pv_min: f64,
        pv_max: f64,
        max_time_s: f64,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: check(core::RelayAutotune::new(RelaySettings {
                setpoint,
                bias,
                amplitude,
                hysteresis,
                output_min,
                output_max,
                action: action_of(action)?,
                cycles,
                pv_min,
                pv_max,
                max_time_s,
            }))?,
        })
    }
    fn update(&mut self, measurement: f64, dt_s: f64) -> PyResult<f64> {
        check(self.inner.update(measurement, dt_s))
    }
    #[getter]
    fn state(&self) -> &'static str {
        match self.inner.state() {
            RelayState::Running => "running",
            RelayState::Done => "done",
            RelayState::Aborted(_) => "aborted",
        }
    }
    #[getter]
    fn abort_reason(&self) -> Option<String> {
        match self.inner.state() {
            RelayState::Aborted(why) => Some(why.clone()),
            _ => None,
        }
    }
    #[getter]
    fn is_running(&self) -> bool {
        *self.inner.state() == RelayState::Running
    }
    #[getter]
    fn amplitude(&self) -> f64 {
        self.inner.amplitude()
    }
    #[getter]
    fn elapsed_s(&self) -> f64 {
        self.inner.elapsed_s()
    }
    #[getter]
    fn output(&self) -> f64 {
        self.inner.output()
    }
    fn result(&self) -> PyResult<PyRelayResult> {
        Ok(PyRelayResult {
            inner: check(self.inner.result())?,
        })
    }
    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        format!(
            "RelayAutotune(setpoint={:?}, bias={:?}, amplitude={:?}, hysteresis={:?}, output_min={:?}, \
             output_max={:?}, action='{}', cycles={:?}, state='{}')",
            s.setpoint,
            s.bias,
            self.inner.amplitude(),
            s.hysteresis,
            s.output_min,
            s.output_max,
            s.action.name(),
            s.cycles,
            self.state()
        )
    }
}

fn fopdt_of(m: &Bound<'_, PyFopdt>) -> Fopdt {
    m.get().inner
}

#[pyfunction]
#[pyo3(signature = (model, tau_c_s=None, delay_improved=false))]
fn simc_pi(
    model: &Bound<'_, PyFopdt>,
    tau_c_s: Option<f64>,
    delay_improved: bool,
) -> PyResult<PyPidTuning> {
    Ok(PyPidTuning {
        inner: check(core::simc_pi(fopdt_of(model), tau_c_s, delay_improved))?,
        rule: "simc",
    })
}

#[pyfunction]
#[pyo3(signature = (slope_gain_per_s, dead_time_s, tau_c_s=None))]
fn simc_integrating(
    slope_gain_per_s: f64,
    dead_time_s: f64,
    tau_c_s: Option<f64>,
) -> PyResult<PyPidTuning> {
    Ok(PyPidTuning {
        inner: check(core::simc_integrating(
            slope_gain_per_s,
            dead_time_s,
            tau_c_s,
        ))?,
        rule: "simc_integrating",
    })
}

#[pyfunction]
fn amigo_pi(model: &Bound<'_, PyFopdt>) -> PyResult<PyPidTuning> {
    Ok(PyPidTuning {
        inner: check(core::amigo_pi(fopdt_of(model)))?,
        rule: "amigo_pi",
    })
}

#[pyfunction]
fn imc_pid(model: &Bound<'_, PyFopdt>, lambda_s: f64) -> PyResult<PyPidTuning> {
    Ok(PyPidTuning {
        inner: check(core::imc_pid(fopdt_of(model), lambda_s))?,
        rule: "imc_pid",
    })
}

#[pyfunction]
#[pyo3(signature = (ku, pu_s, with_derivative=false, action="heating"))]
fn ziegler_nichols(
    ku: f64,
    pu_s: f64,
    with_derivative: bool,
    action: &str,
) -> PyResult<PyPidTuning> {
    Ok(PyPidTuning {
        inner: check(core::ziegler_nichols(
            ku,
            pu_s,
            with_derivative,
            action_of(action)?,
        ))?,
        rule: if with_derivative {
            "ziegler_nichols_pid"
        } else {
            "ziegler_nichols_pi"
        },
    })
}

// ---- LoopBank ---------------------------------------------------------------------------------

enum Slot {
    Pid(Py<PyPid>),
    Split(Py<PyPid>, Py<PySplitRange>),
    Cascade(Py<PyDoCascade>),
}

/// Named control blocks stepped in one call per scan (one Python → Rust crossing).
///
/// Add `Pid`s (1 output), `Pid` + `SplitRange` (2 outputs: low, high) and `DoCascade`s (one
/// output per stage); `step(measurements, dt_s)` takes one float64 measurement per block and
/// returns every output in `output_names` order. `bank["ph"]` is the very `Pid` object that
/// was added, so `bank["ph"].kp = 0.8` retunes the running loop. All inputs are checked before
/// any block is stepped.
///
/// Examples
/// --------
/// >>> import numpy as np
/// >>> bank = LoopBank()
/// >>> bank.add_pid("temp", Pid(5.0, ti_s=600.0, setpoint=37.0))
/// >>> bank.step(np.array([36.0]), dt_s=1.0)
/// array([5.])
/// >>> bank["temp"].kp = 8.0
#[pyclass(name = "LoopBank", module = "edgectl._core")]
#[derive(Default)]
pub struct PyLoopBank {
    names: Vec<String>,
    slots: Vec<Slot>,
    widths: Vec<usize>,
    output_names: Vec<String>,
}

impl PyLoopBank {
    fn push(&mut self, name: &str, slot: Slot, outs: Vec<String>) -> PyResult<()> {
        if self.names.iter().any(|n| n == name) {
            return check(Err(CoreError::InvalidConfig(format!(
                "loop bank already has a block named {name:?}"
            ))));
        }
        self.names.push(name.to_owned());
        self.widths.push(outs.len());
        self.output_names.extend(outs);
        self.slots.push(slot);
        Ok(())
    }

    fn index_of(&self, key: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(name) = key.extract::<&str>() {
            return self
                .names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| PyKeyError::new_err(format!("loop bank has no block {name:?}")));
        }
        if let Ok(i) = key.extract::<isize>() {
            let n = self.slots.len() as isize;
            let j = if i < 0 { i + n } else { i };
            if j < 0 || j >= n {
                return Err(PyIndexError::new_err(format!(
                    "block index {i} out of range for a bank of {n}"
                )));
            }
            return Ok(j as usize);
        }
        Err(PyTypeError::new_err(
            "loop bank keys are block names or indices",
        ))
    }

    fn run(&self, py: Python<'_>, y: &[f64], dt_s: f64, out: &mut [f64]) -> PyResult<()> {
        check(edgectl_core::error::check_dt(dt_s))?;
        if y.len() != self.slots.len() {
            return check(Err(CoreError::ShapeMismatch {
                what: "measurements",
                expected: self.slots.len(),
                got: y.len(),
            }));
        }
        if out.len() != self.output_names.len() {
            return check(Err(CoreError::ShapeMismatch {
                what: "outputs",
                expected: self.output_names.len(),
                got: out.len(),
            }));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(InvalidInputError::new_err(format!(
                "measurement of block {:?} is not finite (got {})",
                self.names[i], y[i]
            )));
        }
        let mut o = 0;
        for ((slot, &yi), &w) in self.slots.iter().zip(y).zip(&self.widths) {
            let dst = &mut out[o..o + w];
            match slot {
                Slot::Pid(p) => {
                    dst[0] = check(p.bind(py).try_borrow_mut()?.inner.update(yi, dt_s))?;
                }
                Slot::Split(p, s) => {
                    let u = check(p.bind(py).try_borrow_mut()?.inner.update(yi, dt_s))?;
                    let (lo, hi) = check(s.bind(py).try_borrow_mut()?.inner.update(u, dt_s))?;
                    dst[0] = lo;
                    dst[1] = hi;
                }
                Slot::Cascade(c) => {
                    c.bind(py).try_borrow_mut()?.step_into(py, yi, dt_s, dst)?;
                }
            }
            o += w;
        }
        Ok(())
    }
}

#[pymethods]
impl PyLoopBank {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn add_pid(&mut self, name: &str, pid: Py<PyPid>) -> PyResult<()> {
        self.push(name, Slot::Pid(pid), vec![name.to_owned()])
    }

    fn add_split_range(
        &mut self,
        name: &str,
        pid: Py<PyPid>,
        split: Py<PySplitRange>,
    ) -> PyResult<()> {
        self.push(
            name,
            Slot::Split(pid, split),
            vec![format!("{name}.low"), format!("{name}.high")],
        )
    }

    #[pyo3(signature = (name, cascade, stage_names=None))]
    fn add_cascade(
        &mut self,
        py: Python<'_>,
        name: &str,
        cascade: Py<PyDoCascade>,
        stage_names: Option<Vec<String>>,
    ) -> PyResult<()> {
        let n = cascade.bind(py).try_borrow()?.inner.stages().len();
        let outs = match stage_names {
            Some(s) if s.len() == n => s.iter().map(|x| format!("{name}.{x}")).collect(),
            Some(s) => {
                return check(Err(CoreError::ShapeMismatch {
                    what: "stage_names",
                    expected: n,
                    got: s.len(),
                }))
            }
            None => (0..n).map(|k| format!("{name}.{k}")).collect(),
        };
        self.push(name, Slot::Cascade(cascade), outs)
    }

    fn step<'py>(
        &self,
        py: Python<'py>,
        measurements: PyArrayLike1<'py, f64, AllowTypeChange>,
        dt_s: f64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mut out = vec![0.0; self.output_names.len()];
        match measurements.as_slice() {
            Ok(y) => self.run(py, y, dt_s, &mut out)?,
            Err(_) => {
                let y: Vec<f64> = measurements.as_array().iter().copied().collect();
                self.run(py, &y, dt_s, &mut out)?
            }
        }
        Ok(out.into_pyarray(py))
    }

    fn step_into<'py>(
        &self,
        py: Python<'py>,
        measurements: PyArrayLike1<'py, f64, AllowTypeChange>,
        dt_s: f64,
        out: PyReadwriteArray1<'py, f64>,
    ) -> PyResult<()> {
        let y: Vec<f64> = match measurements.as_slice() {
            Ok(y) => y.to_vec(),
            Err(_) => measurements.as_array().iter().copied().collect(),
        };
        let mut out = out;
        match out.as_slice_mut() {
            Ok(o) => self.run(py, &y, dt_s, o),
            Err(_) => Err(PyTypeError::new_err(
                "out must be a contiguous float64 array",
            )),
        }
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyPid>> {
        let i = self.index_of(key)?;
        Ok(match &self.slots[i] {
            Slot::Pid(p) | Slot::Split(p, _) => p.clone_ref(py),
            Slot::Cascade(c) => c.bind(py).try_borrow()?.master.clone_ref(py),
        })
    }

    fn block(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let i = self.index_of(key)?;
        Ok(match &self.slots[i] {
            Slot::Pid(p) => p.clone_ref(py).into_any(),
            Slot::Split(_, s) => s.clone_ref(py).into_any(),
            Slot::Cascade(c) => c.clone_ref(py).into_any(),
        })
    }

    fn __contains__(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn __len__(&self) -> usize {
        self.slots.len()
    }

    #[getter]
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.output_names.clone()
    }

    #[getter]
    fn n_outputs(&self) -> usize {
        self.output_names.len()
    }

    fn __repr__(&self) -> String {
        let kinds: Vec<String> = self
            .names
            .iter()
            .zip(&self.slots)
            .map(|(n, s)| {
                let k = match s {
                    Slot::Pid(_) => "pid",
                    Slot::Split(..) => "split_range",
                    Slot::Cascade(_) => "cascade",
                };
                format!("{n}: {k}")
            })
            .collect();
        format!(
            "LoopBank({{{}}}, n_outputs={:?})",
            kinds.join(", "),
            self.output_names.len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPid>()?;
    m.add_class::<PyPidComponents>()?;
    m.add_class::<PyVelocityPid>()?;
    m.add_class::<PySplitRange>()?;
    m.add_class::<PyDoCascade>()?;
    m.add_class::<PyPulseOutput>()?;
    m.add_class::<PyFoamPulser>()?;
    m.add_class::<PyOverTempLadder>()?;
    m.add_class::<PyExponentialFeed>()?;
    m.add_class::<PyStatPulser>()?;
    m.add_class::<PyFopdt>()?;
    m.add_class::<PyPidTuning>()?;
    m.add_class::<PyRelayResult>()?;
    m.add_class::<PyRelayAutotune>()?;
    m.add_class::<PyLoopBank>()?;
    m.add_function(wrap_pyfunction!(simc_pi, m)?)?;
    m.add_function(wrap_pyfunction!(simc_integrating, m)?)?;
    m.add_function(wrap_pyfunction!(amigo_pi, m)?)?;
    m.add_function(wrap_pyfunction!(imc_pid, m)?)?;
    m.add_function(wrap_pyfunction!(ziegler_nichols, m)?)?;
    Ok(())
}
