//! Plant simulator (issue 4): a fed-batch bench bioreactor digital twin.
//!
//! - [`ecoli`]: E. coli overflow kinetics (Anane et al. 2017; Xu, Jahic & Enfors 1999).
//! - [`cho`]: CHO fed-batch kinetics (Xing et al. 2010).
//! - [`gas`]: kLa from stirrer power and gas velocity (van't Riet 1979), O2/CO2 transfer.
//! - [`ph`]: pH from the strong-ion-difference charge balance with CO2/bicarbonate.
//! - [`thermal`]: two-node heater/liquid model, evaporation.
//! - [`foam`]: foam height and antifoam.
//! - [`actuators`], [`sensors`], [`spectrometer`]: devices and their imperfections.
//! - [`faults`]: fault injection; [`rng`]: seeded xoshiro256**.
//! - [`plant`]: the [`Plant`] tying it together; [`config`]: [`PlantConfig`].
//!
//! Equations and parameters: `shared/reference/plant-models.md` (cited per module).

pub mod actuators;
pub mod cho;
pub mod config;
pub mod ecoli;
pub mod faults;
pub mod foam;
pub mod gas;
pub mod ph;
pub mod plant;
pub mod rng;
pub mod sensors;
pub mod spectrometer;
pub mod thermal;

pub use config::PlantConfig;
pub use faults::FaultKind;
pub use plant::{Plant, ACTUATORS};
pub use sensors::Signal;
