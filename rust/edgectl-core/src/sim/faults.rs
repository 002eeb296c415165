//! Fault injection (reference §10): sensor, actuator, utility and process faults, scheduled in
//! the configuration or injected at run time, each active over [start, end).

use crate::error::{CoreError, CoreResult};
use crate::sim::sensors::Signal;
use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Sensor `target` keeps its last reading.
    SensorStuck,
    /// Sensor `target` drifts by `value` units per hour from the fault start (IndPenSim: T
    /// sensor +0.4 K ramp, pH +0.1 ramp).
    SensorDrift,
    /// Sensor `target` reads `value` units high.
    SensorOffset,
    /// Sensor `target` reads NaN.
    SensorDropout,
    /// Pump `target` (feed, base, acid, antifoam): rotor stopped.
    PumpStall,
    /// Pump `target` turns but its line is blocked: nothing delivered.
    PumpBlocked,
    /// MFC `target` (air, o2, co2, n2) delivers `value` sccm (default 0) whatever its setpoint.
    MfcFailure,
    /// Heater stuck on at duty `value` (default 1.0).
    HeaterStuckOn,
    /// Cooling water lost: the cooling finger does nothing.
    CoolingFailure,
    /// All sparge gas flows are lost.
    AerationLoss,
    /// Stirrer motor stops.
    StirrerFailure,
    /// Growth capacity multiplied by `value` (contamination-like change of growth).
    GrowthChange,
    /// Power loss: every actuator stops and every sensor reads NaN.
    PowerLoss,
    /// Spectrometer returns flat dropout spectra.
    SpectrometerDropout,
    /// Head pressure changes by `value` bar (IndPenSim pressure fault).
    PressureStep,
    /// An unmodelled species appears in the broth (a contaminant's metabolite, antifoam): a
    /// band of peak intensity `value` (default 0.05, about 2.5 g/L of glucose's strongest
    /// band) at 1100 cm⁻¹ (inside the glucose region), 15 cm⁻¹ wide, in every spectrum. For
    /// soft-sensor drift tests.
    SpectralInterferent,
}

impl FaultKind {
    /// Every kind with its configuration name.
    pub const ALL: [(&'static str, FaultKind); 16] = [
        ("sensor_stuck", FaultKind::SensorStuck),
        ("sensor_drift", FaultKind::SensorDrift),
        ("sensor_offset", FaultKind::SensorOffset),
        ("sensor_dropout", FaultKind::SensorDropout),
        ("pump_stall", FaultKind::PumpStall),
        ("pump_blocked", FaultKind::PumpBlocked),
        ("mfc_failure", FaultKind::MfcFailure),
        ("heater_stuck_on", FaultKind::HeaterStuckOn),
        ("cooling_failure", FaultKind::CoolingFailure),
        ("aeration_loss", FaultKind::AerationLoss),
        ("stirrer_failure", FaultKind::StirrerFailure),
        ("growth_change", FaultKind::GrowthChange),
        ("power_loss", FaultKind::PowerLoss),
        ("spectrometer_dropout", FaultKind::SpectrometerDropout),
        ("pressure_step", FaultKind::PressureStep),
        ("spectral_interferent", FaultKind::SpectralInterferent),
    ];

    /// Parse a configuration name such as `"pump_stall"`.
    pub fn parse(name: &str) -> CoreResult<FaultKind> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                CoreError::InvalidConfig(format!(
                    "unknown fault kind {name:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// Configuration name of this kind.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Check that `target` names something this kind can act on.
    pub fn check_target(self, target: &str) -> CoreResult<()> {
        let ok = match self {
            FaultKind::SensorStuck
            | FaultKind::SensorDrift
            | FaultKind::SensorOffset
            | FaultKind::SensorDropout => Signal::parse(target).is_some(),
            FaultKind::PumpStall | FaultKind::PumpBlocked => pump_index(target).is_some(),
            FaultKind::MfcFailure => gas_index(target).is_some(),
            _ => target.is_empty(),
        };
        if ok {
            Ok(())
        } else {
            Err(CoreError::InvalidConfig(format!(
                "fault {} cannot target {target:?} ({})",
                self.name(),
                match self {
                    FaultKind::SensorStuck
                    | FaultKind::SensorDrift
                    | FaultKind::SensorOffset
                    | FaultKind::SensorDropout => "expected a sensor signal name",
                    FaultKind::PumpStall | FaultKind::PumpBlocked =>
                        "expected feed, base, acid or antifoam",
                    FaultKind::MfcFailure => "expected air, o2, co2 or n2",
                    _ => "this kind takes no target",
                }
            )))
        }
    }

    /// Value used when none is given.
    pub fn default_value(self) -> f64 {
        match self {
            FaultKind::HeaterStuckOn => 1.0,
            FaultKind::GrowthChange => 0.5,
            FaultKind::SensorDrift => 0.1,
            FaultKind::SpectralInterferent => 0.05,
            _ => 0.0,
        }
    }
}

/// Pump names in their index order.
pub const PUMPS: [&str; 4] = ["feed", "base", "acid", "antifoam"];
/// Gas names in their index order.
pub const GASES: [&str; 4] = ["air", "o2", "co2", "n2"];

/// Index of a pump name.
pub fn pump_index(name: &str) -> Option<usize> {
    PUMPS.iter().position(|p| *p == name)
}

/// Index of a gas name.
pub fn gas_index(name: &str) -> Option<usize> {
    GASES.iter().position(|p| *p == name)
}

/// One fault, active for start_s ≤ t < end_s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Id returned by injection (scheduled faults: 1, 2, ...).
    pub id: u64,
    /// What goes wrong.
    pub kind: FaultKind,
    /// Signal, pump or gas name (empty when the kind takes none).
    pub target: String,
    /// Kind-specific value (see [`FaultKind`]).
    pub value: f64,
    /// Start, simulated s.
    pub start_s: f64,
    /// End, simulated s (infinite until cleared).
    pub end_s: f64,
}

impl Fault {
    /// Whether the fault acts at time `t_s`.
    pub fn is_active(&self, t_s: f64) -> bool {
        t_s >= self.start_s && t_s < self.end_s
    }
}

/// Per-sensor fault effects.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SensorFault {
    /// Reading frozen.
    pub stuck: bool,
    /// Reading NaN.
    pub dropout: bool,
    /// Additive error, signal units (drift ramp plus offset).
    pub offset: f64,
}

/// The combined effect of all active faults at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Per-signal effects, in [`Signal::ALL`] order.
    pub sensors: [SensorFault; Signal::COUNT],
    /// Rotor stopped, per pump (feed, base, acid, antifoam).
    pub pump_stalled: [bool; 4],
    /// Line blocked, per pump.
    pub pump_blocked: [bool; 4],
    /// Stuck flow (sccm) per MFC (air, o2, co2, n2).
    pub mfc_stuck: [Option<f64>; 4],
    /// Heater duty forced to this value.
    pub heater_stuck: Option<f64>,
    /// No cooling water.
    pub cooling_failed: bool,
    /// All sparge flows zero.
    pub aeration_lost: bool,
    /// Stirrer stopped.
    pub stirrer_failed: bool,
    /// Multiplier of the uptake capacities.
    pub growth_factor: f64,
    /// Everything off, sensors NaN.
    pub power_lost: bool,
    /// Flat spectra.
    pub spectrometer_dropout: bool,
    /// Head-pressure change, bar.
    pub pressure_delta_bar: f64,
    /// Peak intensity of the unmodelled band in the spectra.
    pub spectral_interferent: f64,
}

/// Combine the faults active at `t_s`.
pub fn effects(faults: &[Fault], t_s: f64) -> Effects {
    let mut e = Effects {
        growth_factor: 1.0,
        ..Effects::default()
    };
    for f in faults.iter().filter(|f| f.is_active(t_s)) {
        match f.kind {
            FaultKind::SensorStuck
            | FaultKind::SensorDrift
            | FaultKind::SensorOffset
            | FaultKind::SensorDropout => {
                if let Some(s) = Signal::parse(&f.target) {
                    let sf = &mut e.sensors[s as usize];
                    match f.kind {
                        FaultKind::SensorStuck => sf.stuck = true,
                        FaultKind::SensorDropout => sf.dropout = true,
                        FaultKind::SensorOffset => sf.offset += f.value,
                        _ => sf.offset += f.value * (t_s - f.start_s) / 3600.0,
                    }
                }
            }
            FaultKind::PumpStall => {
                if let Some(i) = pump_index(&f.target) {
                    e.pump_stalled[i] = true;
                }
            }
            FaultKind::PumpBlocked => {
                if let Some(i) = pump_index(&f.target) {
                    e.pump_blocked[i] = true;
                }
            }
            FaultKind::MfcFailure => {
                if let Some(i) = gas_index(&f.target) {
                    e.mfc_stuck[i] = Some(f.value.max(0.0));
                }
            }
            FaultKind::HeaterStuckOn => e.heater_stuck = Some(f.value.clamp(0.0, 1.0)),
            FaultKind::CoolingFailure => e.cooling_failed = true,
            FaultKind::AerationLoss => e.aeration_lost = true,
            FaultKind::StirrerFailure => e.stirrer_failed = true,
            FaultKind::GrowthChange => e.growth_factor *= f.value.max(0.0),
            FaultKind::PowerLoss => e.power_lost = true,
            FaultKind::SpectrometerDropout => e.spectrometer_dropout = true,
            FaultKind::PressureStep => e.pressure_delta_bar += f.value,
            FaultKind::SpectralInterferent => e.spectral_interferent += f.value,
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_targets() {
        for (n, k) in FaultKind::ALL {
            assert_eq!(FaultKind::parse(n).unwrap(), k);
            assert_eq!(k.name(), n);
        }
        assert!(FaultKind::parse("meteor").is_err());
        assert!(FaultKind::PumpStall.check_target("feed").is_ok());
        assert!(FaultKind::PumpStall.check_target("air").is_err());
        assert!(FaultKind::SensorDrift.check_target("ph").is_ok());
        assert!(FaultKind::PowerLoss.check_target("x").is_err());
    }

    #[test]
    fn drift_ramps_and_windows_apply() {
        let f = Fault {
            id: 1,
            kind: FaultKind::SensorDrift,
            target: "temp_c".into(),
            value: 0.4,
            start_s: 3600.0,
            end_s: 3.0 * 3600.0,
        };
        let faults = [f];
        assert_eq!(
            effects(&faults, 0.0).sensors[Signal::TempC as usize].offset,
            0.0
        );
        let e = effects(&faults, 5400.0);
        assert!((e.sensors[Signal::TempC as usize].offset - 0.2).abs() < 1e-12);
        assert_eq!(effects(&faults, 3.0 * 3600.0).sensors[0].offset, 0.0);
    }
}
