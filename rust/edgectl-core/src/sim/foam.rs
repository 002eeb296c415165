//! Foam (reference §8, placeholder structure, all [est]).
//!
//! dh/dt = k_f·vvm·X − h·(1/τ_c + k_af·c_af): foam grows with gas flow times biomass, collapses
//! on its own and is knocked down in proportion to the active antifoam concentration, which
//! loses activity with τ_af. Both equations are linear over a sub-step and use their exact
//! solution, so h and c_af never go negative.

use crate::sim::config::FoamConfig;

/// Advance the foam height (mm) by `dt_s` for gas `vvm`, biomass `x_g_l` and antifoam `c_ppm`.
pub fn step(cfg: &FoamConfig, h_mm: f64, vvm: f64, x_g_l: f64, c_ppm: f64, dt_s: f64) -> f64 {
    let growth = cfg.k_f_mm_h * vvm.max(0.0) * x_g_l.max(0.0) / 3600.0;
    let k = 1.0 / cfg.collapse_tau_s + cfg.k_af_per_ppm_h * c_ppm.max(0.0) / 3600.0;
    let eq = growth / k;
    (eq + (h_mm - eq) * (-k * dt_s).exp()).max(0.0)
}

/// Decay factor of antifoam activity over `dt_s`.
pub fn antifoam_decay(cfg: &FoamConfig, dt_s: f64) -> f64 {
    (-dt_s / cfg.antifoam_tau_s).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foam_rises_and_antifoam_knocks_it_down() {
        let cfg = FoamConfig::default();
        let mut h = 0.0;
        for _ in 0..3600 {
            h = step(&cfg, h, 1.0, 30.0, 0.0, 1.0);
        }
        assert!(h > cfg.probe_height_mm, "{h}");
        let mut h2 = h;
        for _ in 0..300 {
            h2 = step(&cfg, h2, 1.0, 30.0, 5.0, 1.0);
        }
        assert!(h2 < cfg.probe_height_mm, "{h2}");
        assert_eq!(step(&cfg, 0.0, 0.0, 30.0, 0.0, 10.0), 0.0);
    }
}
