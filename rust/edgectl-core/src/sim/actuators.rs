//! Actuator models: peristaltic pumps with bottles, mass-flow controllers, stirrer motor.
//!
//! Pumps deliver `rate·(1 + calibration_error)·(1 − wear_per_h·running_h)` from a bottle on a
//! balance and stop delivering when the bottle is empty; MFCs and the stirrer follow their
//! setpoints with first-order lags (τ 0.5–1 s and 1–2 s [est], reference §1 and §9).

use crate::sim::config::{MfcConfig, PumpConfig};
use crate::sim::gas::relax;
use serde::{Deserialize, Serialize};

/// A peristaltic pump and its bottle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pump {
    /// Commanded rate, mL/min.
    pub rate_sp_ml_min: f64,
    /// Hours the rotor has turned (tubing wear).
    pub running_h: f64,
    /// Liquid left in the bottle, g.
    pub bottle_g: f64,
}

impl Pump {
    /// A stopped pump with a full bottle.
    pub fn new(cfg: &PumpConfig) -> Self {
        Pump {
            rate_sp_ml_min: 0.0,
            running_h: 0.0,
            bottle_g: cfg.bottle_g,
        }
    }

    /// Flow the rotor would deliver now, mL/min (calibration error and wear included).
    pub fn delivery_ml_min(&self, cfg: &PumpConfig) -> f64 {
        let wear = (1.0 - cfg.wear_per_h * self.running_h).max(0.0);
        (self.rate_sp_ml_min * (1.0 + cfg.calibration_error) * wear).max(0.0)
    }

    /// Run for `dt_s`: returns the volume delivered (mL). `rotor_turns` is false when stalled
    /// (or without power); `line_open` is false when the line is blocked.
    pub fn run(&mut self, cfg: &PumpConfig, dt_s: f64, rotor_turns: bool, line_open: bool) -> f64 {
        if !rotor_turns || self.rate_sp_ml_min <= 0.0 {
            return 0.0;
        }
        let want = self.delivery_ml_min(cfg) * dt_s / 60.0;
        self.running_h += dt_s / 3600.0;
        if !line_open {
            return 0.0;
        }
        let have = self.bottle_g / cfg.density_g_ml;
        let ml = want.min(have).max(0.0);
        self.bottle_g = (self.bottle_g - ml * cfg.density_g_ml).max(0.0);
        ml
    }
}

/// A thermal mass-flow controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mfc {
    /// Setpoint, sccm.
    pub sp_sccm: f64,
    /// Actual flow, sccm.
    pub flow_sccm: f64,
}

impl Mfc {
    /// Flow follows `target` (the setpoint unless a fault overrides it) with lag τ.
    pub fn step(&mut self, cfg: &MfcConfig, target: f64, dt_s: f64) {
        let t = target.clamp(0.0, cfg.max_sccm);
        self.flow_sccm = relax(self.flow_sccm, t, 1.0 / cfg.tau_s, dt_s).max(0.0);
    }
}

/// The stirrer motor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stirrer {
    /// Setpoint, rpm.
    pub sp_rpm: f64,
    /// Actual speed, rpm.
    pub rpm: f64,
}

impl Stirrer {
    /// Speed follows `target` rpm with lag `tau_s`, limited to `max_rpm`.
    pub fn step(&mut self, target: f64, max_rpm: f64, tau_s: f64, dt_s: f64) {
        let t = target.clamp(0.0, max_rpm);
        self.rpm = relax(self.rpm, t, 1.0 / tau_s, dt_s).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pump_calibration_wear_and_empty_bottle() {
        let cfg = PumpConfig {
            max_rate_ml_min: 10.0,
            calibration_error: 0.05,
            wear_per_h: 0.01,
            bottle_g: 10.0,
            density_g_ml: 1.0,
        };
        let mut p = Pump::new(&cfg);
        p.rate_sp_ml_min = 1.0;
        let ml = p.run(&cfg, 60.0, true, true);
        assert!((ml - 1.05).abs() < 1e-12);
        p.running_h = 10.0;
        assert!((p.delivery_ml_min(&cfg) - 1.05 * 0.9).abs() < 1e-12);
        let mut total = 0.0;
        for _ in 0..100 {
            total += p.run(&cfg, 60.0, true, true);
        }
        assert!((total - (10.0 - 1.05)).abs() < 1e-9);
        assert_eq!(p.bottle_g, 0.0);
        assert_eq!(p.run(&cfg, 60.0, true, true), 0.0);
        let mut q = Pump::new(&cfg);
        q.rate_sp_ml_min = 1.0;
        assert_eq!(q.run(&cfg, 60.0, false, true), 0.0);
        assert_eq!(q.run(&cfg, 60.0, true, false), 0.0);
        assert!(q.running_h > 0.0);
    }

    #[test]
    fn mfc_lag() {
        let cfg = MfcConfig {
            max_sccm: 1000.0,
            tau_s: 1.0,
            resolution_sccm: 1.0,
        };
        let mut m = Mfc {
            sp_sccm: 500.0,
            flow_sccm: 0.0,
        };
        m.step(&cfg, 500.0, 1.0);
        assert!((m.flow_sccm - 500.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-9);
        m.step(&cfg, 5000.0, 100.0);
        assert!((m.flow_sccm - 1000.0).abs() < 1e-9);
    }
}
