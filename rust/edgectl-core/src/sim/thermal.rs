//! Two-node thermal model (reference §7): liquid (with glass) and heater blanket or jacket.
//!
//! C_L·dT_L/dt = UA_HL·(T_H − T_L) − UA_amb·(T_L − T_amb) − UA_c·v·(T_L − T_cw) + Q_other
//!               + ṁ_feed·cp·(T_feed − T_L)
//! C_H·dT_H/dt = P_heater·duty − UA_HL·(T_H − T_L) − UA_Hamb·(T_H − T_amb)
//!
//! Q_other = stirrer power + metabolic heat − evaporation. The linear 2×2 system is advanced
//! by implicit Euler: unconditionally stable, and its fixed point is the exact steady state.
//! In jacket mode the heater node is the circulator water, which follows its setpoint with a
//! first-order lag, and the liquid sees it through UA_HL.

use crate::sim::config::ThermalConfig;

/// Heat flows into the liquid that do not depend on T_L over a sub-step, W.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThermalInputs {
    /// Heater power into the heater node, W (blanket mode).
    pub heater_w: f64,
    /// Cooling-valve opening 0–1.
    pub cooling: f64,
    /// Stirrer + metabolic − evaporative heat, W.
    pub other_w: f64,
    /// Heat capacity flow of cold additions, W/K (ṁ·cp).
    pub feed_w_k: f64,
    /// Liquid heat capacity, J/K.
    pub c_liquid_j_k: f64,
    /// Circulator setpoint in jacket mode, °C (`None` = heater node driven by `heater_w`).
    pub jacket_sp_c: Option<f64>,
}

/// Advance (T_L, T_H) by `dt_s` seconds.
pub fn step(cfg: &ThermalConfig, t_l: f64, t_h: f64, u: &ThermalInputs, dt_s: f64) -> (f64, f64) {
    let a = cfg.ua_heater_liquid_w_k;
    let b = cfg.ua_ambient_w_k;
    let c = cfg.ua_cooling_w_k * u.cooling.clamp(0.0, 1.0);
    let d = cfg.ua_heater_ambient_w_k;
    let cl = u.c_liquid_j_k;
    let ch = cfg.heater_heat_capacity_j_k;
    let q_l =
        b * cfg.ambient_c + c * cfg.cooling_water_c + u.other_w + u.feed_w_k * cfg.feed_temp_c;
    let k_l = a + b + c + u.feed_w_k;
    if let Some(sp) = u.jacket_sp_c {
        let th = crate::sim::gas::relax(t_h, sp, 1.0 / cfg.jacket_tau_s, dt_s);
        // Implicit Euler for T_L with the jacket at its end-of-step temperature.
        let tl = (cl * t_l + dt_s * (a * th + q_l)) / (cl + dt_s * k_l);
        return (tl, th);
    }
    // (C_L + dt·k_L)·T_L' − dt·a·T_H' = C_L·T_L + dt·q_L
    // −dt·a·T_L' + (C_H + dt·(a + d))·T_H' = C_H·T_H + dt·(P + d·T_amb)
    let m11 = cl + dt_s * k_l;
    let m12 = -dt_s * a;
    let m21 = -dt_s * a;
    let m22 = ch + dt_s * (a + d);
    let r1 = cl * t_l + dt_s * q_l;
    let r2 = ch * t_h + dt_s * (u.heater_w + d * cfg.ambient_c);
    let det = m11 * m22 - m12 * m21;
    ((r1 * m22 - m12 * r2) / det, (m11 * r2 - m21 * r1) / det)
}

/// Steady state (T_L, T_H) with constant inputs (blanket mode), for checks and for users.
pub fn steady_state(cfg: &ThermalConfig, u: &ThermalInputs) -> (f64, f64) {
    let a = cfg.ua_heater_liquid_w_k;
    let b = cfg.ua_ambient_w_k;
    let c = cfg.ua_cooling_w_k * u.cooling.clamp(0.0, 1.0);
    let d = cfg.ua_heater_ambient_w_k;
    let q_l =
        b * cfg.ambient_c + c * cfg.cooling_water_c + u.other_w + u.feed_w_k * cfg.feed_temp_c;
    let k_l = a + b + c + u.feed_w_k;
    // k_L·T_L − a·T_H = q_L ; −a·T_L + (a + d)·T_H = P + d·T_amb
    let det = k_l * (a + d) - a * a;
    let r2 = u.heater_w + d * cfg.ambient_c;
    ((q_l * (a + d) + a * r2) / det, (k_l * r2 + a * q_l) / det)
}

/// Water evaporated into dry sparge gas, g/h: gas flow at liquid temperature times saturated
/// vapour density, less what the condenser returns.
pub fn evaporation_g_h(total_sccm: f64, temp_c: f64, condenser_efficiency: f64) -> f64 {
    let t_k = temp_c + 273.15;
    let gas_l_h = total_sccm.max(0.0) * 60.0 / 1000.0 * t_k / 273.15;
    let p_sat_pa = crate::sim::gas::water_vapour_mmhg(temp_c) * 133.322;
    let rho_g_l = p_sat_pa * 18.015 / (8.314_462 * t_k) / 1000.0;
    gas_l_h * rho_g_l * (1.0 - condenser_efficiency.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(p: f64) -> ThermalInputs {
        ThermalInputs {
            heater_w: p,
            c_liquid_j_k: 2000.0 * 4.18 + 830.0,
            ..ThermalInputs::default()
        }
    }

    #[test]
    fn converges_to_analytic_steady_state() {
        let cfg = ThermalConfig::default();
        let u = inputs(20.0);
        let (mut tl, mut th) = (20.0, 20.0);
        for _ in 0..200_000 {
            (tl, th) = step(&cfg, tl, th, &u, 1.0);
        }
        // Hand solution: total loss P = UA_amb·(T_L − Ta) + UA_Hamb·(T_H − Ta) and
        // UA_HL·(T_H − T_L) = UA_amb·(T_L − Ta).
        let (a, b, d) = (5.0, 0.7, 0.3);
        let tl_ss = 20.0 + 20.0 * a / (b * (a + d) + a * d);
        let th_ss = tl_ss + b * (tl_ss - 20.0) / a;
        assert!((tl - tl_ss).abs() < 1e-6, "{tl} {tl_ss}");
        assert!((th - th_ss).abs() < 1e-6, "{th} {th_ss}");
        let (sl, sh) = steady_state(&cfg, &u);
        assert!((sl - tl_ss).abs() < 1e-9 && (sh - th_ss).abs() < 1e-9);
    }

    #[test]
    fn stable_with_huge_steps() {
        let cfg = ThermalConfig::default();
        let (tl, th) = step(&cfg, 37.0, 37.0, &inputs(150.0), 1e9);
        let (sl, sh) = steady_state(&cfg, &inputs(150.0));
        assert!((tl - sl).abs() < 0.1 && (th - sh).abs() < 0.1);
    }

    #[test]
    fn evaporation_rate() {
        // 2 L/min dry air at 37 °C carries ≈ 44 g/m³ → ≈ 5.9 g/h without condenser.
        let e = evaporation_g_h(2000.0, 37.0, 0.0);
        assert!((e - 5.96).abs() < 0.2, "{e}");
        assert_eq!(evaporation_g_h(2000.0, 37.0, 1.0), 0.0);
    }
}
