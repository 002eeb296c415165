//! Synthetic Raman-type spectrometer.
//!
//! A spectrum is the sum of pure-component spectra weighted by the plant's concentrations
//! (g/L), attenuated by biomass turbidity, on top of a drifting baseline (offset, slope,
//! curvature, fluorescence), with white noise and cosmic-ray spikes; a dropout fault returns a
//! flat spectrum, as seen in real in-line data (reference §9).
//!
//! Pure components are generated procedurally: pseudo-Voigt bands at approximate literature
//! Raman positions (water bend ≈ 1640; glucose ≈ 1125/1060/915/520/425; lactate ≈ 857/1040/
//! 1455; acetate ≈ 928/1413; glutamine ≈ 1410/1330/880; protein and biomass ≈ 1003/1240/1450/
//! 1660 [est, approximate positions]) plus weak extra bands drawn from `library_seed`, so
//! the library is fixed per instrument and the bands overlap like real spectra.

use crate::sim::config::SpectrometerConfig;
use crate::sim::rng::Rng;
use serde::{Deserialize, Serialize};

/// Spectral components, in the order of [`Library::components`].
pub const COMPONENTS: [&str; 8] = [
    "water",
    "glucose",
    "lactate",
    "acetate",
    "glutamine",
    "ammonium",
    "biomass",
    "product",
];

/// Peak intensity per g/L relative to the water band [est].
const SENSITIVITY: [f64; 8] = [1.0, 0.02, 0.025, 0.02, 0.02, 0.03, 0.03, 0.03];

/// (centre cm⁻¹, width cm⁻¹, height) of the main bands of each component.
const BANDS: [&[(f64, f64, f64)]; 8] = [
    &[(1640.0, 70.0, 1.0), (450.0, 150.0, 0.25)],
    &[
        (1125.0, 14.0, 1.0),
        (1060.0, 16.0, 0.8),
        (915.0, 14.0, 0.5),
        (1365.0, 20.0, 0.4),
        (520.0, 16.0, 0.6),
        (425.0, 16.0, 0.5),
        (1460.0, 20.0, 0.3),
    ],
    &[
        (857.0, 14.0, 1.0),
        (1040.0, 16.0, 0.6),
        (1085.0, 16.0, 0.4),
        (1415.0, 18.0, 0.6),
        (1455.0, 18.0, 0.5),
        (545.0, 16.0, 0.3),
    ],
    &[
        (928.0, 14.0, 1.0),
        (1413.0, 18.0, 0.8),
        (650.0, 16.0, 0.4),
        (1350.0, 18.0, 0.3),
    ],
    &[
        (1410.0, 18.0, 0.6),
        (1330.0, 18.0, 0.5),
        (1105.0, 16.0, 0.4),
        (880.0, 14.0, 0.5),
        (1680.0, 20.0, 0.4),
    ],
    &[(1680.0, 30.0, 0.5), (1450.0, 30.0, 1.0)],
    &[
        (1003.0, 8.0, 0.6),
        (1450.0, 25.0, 0.8),
        (1660.0, 35.0, 1.0),
        (1240.0, 40.0, 0.5),
        (785.0, 14.0, 0.3),
    ],
    &[
        (1003.0, 8.0, 0.7),
        (1240.0, 40.0, 0.6),
        (1450.0, 25.0, 0.7),
        (1555.0, 25.0, 0.3),
        (1670.0, 30.0, 1.0),
    ],
];

/// Centre and half width of the `spectral_interferent` fault's band, cm⁻¹.
pub const INTERFERENT_CM1: f64 = 1100.0;
/// Half width of the interferent band, cm⁻¹.
pub const INTERFERENT_WIDTH_CM1: f64 = 15.0;

fn pseudo_voigt(x: f64, c: f64, w: f64) -> f64 {
    let z = (x - c) / w;
    0.5 * (-z * z * std::f64::consts::LN_2).exp() + 0.5 / (1.0 + z * z)
}

/// The pure-component library on the instrument axis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Library {
    /// Wavenumber axis, cm⁻¹.
    pub axis: Vec<f64>,
    /// One pure spectrum per component, scaled to intensity per g/L (water: per unit).
    pub components: Vec<Vec<f64>>,
    /// Scattering/fluorescence shape of biomass (baseline rise per g/L).
    pub scatter: Vec<f64>,
}

impl Library {
    /// Build the library for `cfg` (deterministic for `library_seed`).
    pub fn new(cfg: &SpectrometerConfig) -> Self {
        let n = cfg.n_points;
        let axis: Vec<f64> = (0..n)
            .map(|i| cfg.start_cm1 + (cfg.stop_cm1 - cfg.start_cm1) * i as f64 / (n - 1) as f64)
            .collect();
        let mut rng = Rng::new(cfg.library_seed, 0x5EC7);
        let mut components = Vec::with_capacity(COMPONENTS.len());
        for (k, bands) in BANDS.iter().enumerate() {
            let mut all: Vec<(f64, f64, f64)> = bands.to_vec();
            let extra = 3 + (rng.next_u64() % 4) as usize;
            for _ in 0..extra {
                let c = 400.0 + 1400.0 * rng.uniform();
                let w = 8.0 + 25.0 * rng.uniform();
                let h = 0.05 + 0.25 * rng.uniform();
                all.push((c, w, h));
            }
            let mut s: Vec<f64> = axis
                .iter()
                .map(|&x| all.iter().map(|&(c, w, h)| h * pseudo_voigt(x, c, w)).sum())
                .collect();
            let peak = s.iter().cloned().fold(0.0f64, f64::max);
            let scale = if peak > 0.0 {
                SENSITIVITY[k] / peak
            } else {
                0.0
            };
            for v in &mut s {
                *v *= scale;
            }
            components.push(s);
        }
        let scatter = axis
            .iter()
            .map(|&x| 0.01 * (-(x - cfg.start_cm1) / 600.0).exp())
            .collect();
        Library {
            axis,
            components,
            scatter,
        }
    }
}

/// Time-varying state of the instrument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrometerState {
    /// Baseline coefficients: offset, slope, curvature, fluorescence.
    pub baseline: [f64; 4],
    /// Latest spectrum (empty before the first acquisition).
    pub last: Vec<f64>,
    /// Simulated time of the latest spectrum, s.
    pub last_t_s: f64,
    /// Simulated time of the next acquisition, s.
    pub next_t_s: f64,
    /// Number of spectra acquired.
    pub count: u64,
}

impl SpectrometerState {
    /// Before the first acquisition (due at t = 0).
    pub fn new() -> Self {
        SpectrometerState {
            baseline: [0.05, 0.0, 0.0, 0.02],
            last: Vec::new(),
            last_t_s: f64::NAN,
            next_t_s: 0.0,
            count: 0,
        }
    }

    /// Acquire one spectrum from concentrations `conc` (g/L, in [`COMPONENTS`] order; water
    /// is taken as 1) at time `t_s`.
    pub fn acquire(
        &mut self,
        cfg: &SpectrometerConfig,
        lib: &Library,
        conc: &[f64; 8],
        dropout: bool,
        t_s: f64,
        rng: &mut Rng,
    ) {
        self.acquire_with(cfg, lib, conc, dropout, 0.0, t_s, rng);
    }

    /// [`Self::acquire`] with an unmodelled band of peak intensity `interferent` at
    /// [`INTERFERENT_CM1`] (the `spectral_interferent` fault).
    #[allow(clippy::too_many_arguments)]
    pub fn acquire_with(
        &mut self,
        cfg: &SpectrometerConfig,
        lib: &Library,
        conc: &[f64; 8],
        dropout: bool,
        interferent: f64,
        t_s: f64,
        rng: &mut Rng,
    ) {
        for (i, b) in self.baseline.iter_mut().enumerate() {
            let mean = [0.05, 0.0, 0.0, 0.02][i];
            *b = mean + 0.995 * (*b - mean) + cfg.baseline_drift_sd * rng.normal();
        }
        let n = lib.axis.len();
        let mut out = vec![0.0; n];
        if dropout {
            out.iter_mut().for_each(|v| *v = self.baseline[0]);
        } else {
            let biomass = conc[6].max(0.0);
            let attenuation = 1.0 / (1.0 + 0.01 * biomass);
            let (a0, a1) = (lib.axis[0], lib.axis[n - 1]);
            for (j, v) in out.iter_mut().enumerate() {
                let mut s = 0.0;
                for (k, comp) in lib.components.iter().enumerate() {
                    let c = if k == 0 { 1.0 } else { conc[k].max(0.0) };
                    s += c * comp[j];
                }
                if interferent != 0.0 {
                    s += interferent
                        * pseudo_voigt(lib.axis[j], INTERFERENT_CM1, INTERFERENT_WIDTH_CM1);
                }
                let x = 2.0 * (lib.axis[j] - a0) / (a1 - a0) - 1.0;
                let base = self.baseline[0]
                    + self.baseline[1] * x
                    + self.baseline[2] * (x * x - 1.0 / 3.0)
                    + self.baseline[3] * (-(lib.axis[j] - a0) / 500.0).exp()
                    + biomass * lib.scatter[j];
                *v = attenuation * s + base;
            }
        }
        for v in out.iter_mut() {
            *v += cfg.noise_sd * rng.normal();
        }
        let spikes = rng.poisson(cfg.spike_rate);
        for _ in 0..spikes {
            let j = (rng.next_u64() % n as u64) as usize;
            let h = cfg.spike_height * (0.5 + rng.uniform());
            if !dropout {
                out[j] += h;
            }
        }
        self.last = out;
        self.last_t_s = t_s;
        self.count += 1;
    }
}

impl Default for SpectrometerState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_peaks_where_expected() {
        let cfg = SpectrometerConfig::default();
        let lib = Library::new(&cfg);
        assert_eq!(lib.axis.len(), 1047);
        let idx = |x: f64| {
            lib.axis
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()))
                .unwrap()
                .0
        };
        let g = &lib.components[1];
        assert!(g[idx(1125.0)] > 5.0 * g[idx(1600.0)].abs());
        assert!((lib.components[0].iter().cloned().fold(0.0, f64::max) - 1.0).abs() < 1e-12);
        assert_eq!(Library::new(&cfg), lib);
    }

    #[test]
    fn cosmic_spikes_and_noise() {
        let cfg = SpectrometerConfig {
            baseline_drift_sd: 0.0,
            spike_rate: 3.0,
            spike_height: 1.0,
            ..SpectrometerConfig::default()
        };
        let quiet = SpectrometerConfig {
            spike_rate: 0.0,
            ..cfg.clone()
        };
        let lib = Library::new(&cfg);
        let conc = [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let (mut a, mut b) = (SpectrometerState::new(), SpectrometerState::new());
        let (mut ra, mut rb) = (Rng::new(4, 2), Rng::new(4, 2));
        let mut spiky = 0;
        for i in 0..50 {
            a.acquire(&cfg, &lib, &conc, false, i as f64, &mut ra);
            b.acquire(&quiet, &lib, &conc, false, i as f64, &mut rb);
            let jumps = a
                .last
                .iter()
                .zip(&b.last)
                .filter(|(x, y)| (*x - *y).abs() > 0.4)
                .count();
            spiky += jumps;
        }
        // Poisson mean 3 per spectrum over 50 spectra, heights 0.5–1.5 above noise.
        assert!((100..200).contains(&spiky), "{spiky}");
    }

    #[test]
    fn spectrum_is_linear_in_concentration_without_noise() {
        let cfg = SpectrometerConfig {
            noise_sd: 0.0,
            baseline_drift_sd: 0.0,
            spike_rate: 0.0,
            ..SpectrometerConfig::default()
        };
        let lib = Library::new(&cfg);
        let mut st = SpectrometerState::new();
        let mut rng = Rng::new(0, 9);
        st.acquire(
            &cfg,
            &lib,
            &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            false,
            0.0,
            &mut rng,
        );
        let base = st.last.clone();
        st.acquire(
            &cfg,
            &lib,
            &[1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            false,
            1.0,
            &mut rng,
        );
        for ((now, before), comp) in st.last.iter().zip(&base).zip(&lib.components[1]) {
            assert!((now - before - 2.0 * comp).abs() < 1e-12);
        }
        st.acquire(
            &cfg,
            &lib,
            &[1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            true,
            2.0,
            &mut rng,
        );
        assert!(st.last.iter().all(|&v| v == st.last[0]));
    }
}
