//! Sensor models (reference §9): transport delay, first-order lag, white noise, linear drift,
//! quantisation, dropout, plus fault effects (stuck, drift ramp, offset, NaN).
//!
//! Each channel is updated once per outer step from the true value; readings between steps are
//! the latest sample, so what a reader sees depends only on the seed and the step sequence.

use crate::sim::config::SensorConfig;
use crate::sim::faults::SensorFault;
use crate::sim::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Sensor signals, with the names of the plant contract (`edgectl/plant.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(usize)]
pub enum Signal {
    /// `temp_c`: liquid temperature, °C.
    TempC,
    /// `jacket_temp_c`: heater or jacket temperature, °C.
    JacketTempC,
    /// `ph`: pH electrode.
    Ph,
    /// `do_pct`: dissolved O2, % air saturation.
    DoPct,
    /// `stirrer_rpm`: stirrer speed, rpm.
    StirrerRpm,
    /// `air_flow_sccm`: air MFC readback.
    AirFlowSccm,
    /// `o2_flow_sccm`: O2 MFC readback.
    O2FlowSccm,
    /// `co2_flow_sccm`: CO2 MFC readback.
    Co2FlowSccm,
    /// `n2_flow_sccm`: N2 MFC readback.
    N2FlowSccm,
    /// `reactor_mass_g`: balance under the vessel, g.
    ReactorMassG,
    /// `feed_mass_g`: feed bottle balance, g.
    FeedMassG,
    /// `base_mass_g`: base bottle balance, g.
    BaseMassG,
    /// `acid_mass_g`: acid bottle balance, g.
    AcidMassG,
    /// `antifoam_mass_g`: antifoam bottle balance, g.
    AntifoamMassG,
    /// `foam`: foam probe, 1 when foam touches it.
    Foam,
    /// `pressure_bar`: head pressure, bar gauge.
    PressureBar,
    /// `offgas_o2_pct`: off-gas O2, %.
    OffgasO2Pct,
    /// `offgas_co2_pct`: off-gas CO2, %.
    OffgasCo2Pct,
}

impl Signal {
    /// Number of signals.
    pub const COUNT: usize = 18;
    /// All signals in index order.
    pub const ALL: [Signal; Signal::COUNT] = [
        Signal::TempC,
        Signal::JacketTempC,
        Signal::Ph,
        Signal::DoPct,
        Signal::StirrerRpm,
        Signal::AirFlowSccm,
        Signal::O2FlowSccm,
        Signal::Co2FlowSccm,
        Signal::N2FlowSccm,
        Signal::ReactorMassG,
        Signal::FeedMassG,
        Signal::BaseMassG,
        Signal::AcidMassG,
        Signal::AntifoamMassG,
        Signal::Foam,
        Signal::PressureBar,
        Signal::OffgasO2Pct,
        Signal::OffgasCo2Pct,
    ];

    /// Contract name with units (`temp_c`, `do_pct`, `feed_mass_g`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Signal::TempC => "temp_c",
            Signal::JacketTempC => "jacket_temp_c",
            Signal::Ph => "ph",
            Signal::DoPct => "do_pct",
            Signal::StirrerRpm => "stirrer_rpm",
            Signal::AirFlowSccm => "air_flow_sccm",
            Signal::O2FlowSccm => "o2_flow_sccm",
            Signal::Co2FlowSccm => "co2_flow_sccm",
            Signal::N2FlowSccm => "n2_flow_sccm",
            Signal::ReactorMassG => "reactor_mass_g",
            Signal::FeedMassG => "feed_mass_g",
            Signal::BaseMassG => "base_mass_g",
            Signal::AcidMassG => "acid_mass_g",
            Signal::AntifoamMassG => "antifoam_mass_g",
            Signal::Foam => "foam",
            Signal::PressureBar => "pressure_bar",
            Signal::OffgasO2Pct => "offgas_o2_pct",
            Signal::OffgasCo2Pct => "offgas_co2_pct",
        }
    }

    /// Signal of a contract name.
    pub fn parse(name: &str) -> Option<Signal> {
        Signal::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// State of one sensor channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sensor {
    /// Time since the channel started, s.
    pub t_s: f64,
    /// Recent (time, true value) pairs for the transport delay.
    pub history: VecDeque<(f64, f64)>,
    /// Lagged true value (the probe's internal state).
    pub lagged: f64,
    /// Accumulated drift, signal units.
    pub drift: f64,
    /// Latest reading.
    pub reading: f64,
}

impl Sensor {
    /// A channel settled at `value`.
    pub fn new(value: f64) -> Self {
        Sensor {
            t_s: 0.0,
            history: VecDeque::from([(0.0, value)]),
            lagged: value,
            drift: 0.0,
            reading: value,
        }
    }

    /// Sample the channel after `dt_s` with true value `truth`.
    pub fn update(
        &mut self,
        cfg: &SensorConfig,
        truth: f64,
        dt_s: f64,
        fault: &SensorFault,
        rng: &mut Rng,
    ) {
        // Draw the random numbers unconditionally: the stream position never depends on state.
        let noise = rng.normal();
        let u = rng.uniform();
        let truth = self.delayed(truth, dt_s, cfg.delay_s);
        if truth.is_finite() {
            if cfg.tau_s > 0.0 && self.lagged.is_finite() {
                self.lagged = truth + (self.lagged - truth) * (-dt_s / cfg.tau_s).exp();
            } else {
                self.lagged = truth;
            }
        }
        self.drift += cfg.drift_per_day * dt_s / 86_400.0;
        if fault.stuck {
            return;
        }
        if fault.dropout || u < cfg.dropout_prob {
            self.reading = f64::NAN;
            return;
        }
        let mut y = self.lagged + self.drift + fault.offset + cfg.noise_sd * noise;
        if cfg.resolution > 0.0 {
            y = quantise(y, cfg.resolution);
        }
        self.reading = y;
    }
}

/// Round `y` to a multiple of `step`. Decimal steps (0.1, 0.01, ...) divide by the integer
/// 1/step, which gives the double nearest the decimal value (no 1000.0400000000001 readings).
pub fn quantise(y: f64, step: f64) -> f64 {
    let inv = 1.0 / step;
    let k = (y * inv).round();
    if (inv - inv.round()).abs() < 1e-9 * inv.max(1.0) {
        k / inv.round()
    } else {
        k * step
    }
}

impl Sensor {
    /// The true value `delay_s` ago, linearly interpolated between samples (held at the
    /// oldest sample until enough history exists).
    fn delayed(&mut self, truth: f64, dt_s: f64, delay_s: f64) -> f64 {
        self.t_s += dt_s;
        if delay_s <= 0.0 {
            self.history.clear();
            self.history.push_back((self.t_s, truth));
            return truth;
        }
        self.history.push_back((self.t_s, truth));
        let target = self.t_s - delay_s;
        while self.history.len() >= 2 && self.history[1].0 <= target {
            self.history.pop_front();
        }
        let (t0, v0) = self.history[0];
        if target <= t0 || self.history.len() < 2 {
            return v0;
        }
        let (t1, v1) = self.history[1];
        v0 + (v1 - v0) * (target - t0) / (t1 - t0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_gives_clean_decimals() {
        assert_eq!(quantise(1000.04000001, 0.01), 1000.04);
        assert_eq!(quantise(6.9534, 0.001), 6.953);
        assert_eq!(quantise(812.4, 1.0), 812.0);
        assert_eq!(quantise(7.0, 2.5), 7.5);
    }

    #[test]
    fn transport_delay() {
        let cfg = SensorConfig {
            delay_s: 2.5,
            ..SensorConfig::default()
        };
        let mut rng = Rng::new(1, 1);
        let mut s = Sensor::new(0.0);
        let ok = SensorFault::default();
        let mut out = Vec::new();
        for i in 1..=6 {
            s.update(&cfg, i as f64, 1.0, &ok, &mut rng);
            out.push(s.reading);
        }
        // A ramp v(t) = t read 2.5 s late (held at 0 until t = 2.5 s).
        assert_eq!(out, vec![0.0, 0.0, 0.5, 1.5, 2.5, 3.5]);
        assert!(s.history.len() <= 4);
    }

    #[test]
    fn names_roundtrip() {
        for s in Signal::ALL {
            assert_eq!(Signal::parse(s.name()), Some(s));
            assert_eq!(Signal::ALL[s as usize], s);
        }
        assert_eq!(Signal::parse("nope"), None);
    }

    #[test]
    fn lag_drift_quantisation_and_faults() {
        let cfg = SensorConfig {
            tau_s: 10.0,
            noise_sd: 0.0,
            drift_per_day: 1.0,
            resolution: 0.1,
            dropout_prob: 0.0,
            delay_s: 0.0,
        };
        let mut rng = Rng::new(1, 1);
        let mut s = Sensor::new(0.0);
        let ok = SensorFault::default();
        s.update(&cfg, 10.0, 10.0, &ok, &mut rng);
        let expect = 10.0 * (1.0 - (-1.0f64).exp());
        assert!((s.reading - (expect * 10.0).round() / 10.0).abs() < 1e-12);
        let r = s.reading;
        s.update(
            &cfg,
            50.0,
            10.0,
            &SensorFault { stuck: true, ..ok },
            &mut rng,
        );
        assert_eq!(s.reading, r);
        s.update(
            &cfg,
            50.0,
            10.0,
            &SensorFault {
                dropout: true,
                ..ok
            },
            &mut rng,
        );
        assert!(s.reading.is_nan());
        let mut d = Sensor::new(5.0);
        d.update(&cfg, 5.0, 86_400.0, &ok, &mut rng);
        assert!((d.reading - 6.0).abs() < 1e-9);
    }
}
