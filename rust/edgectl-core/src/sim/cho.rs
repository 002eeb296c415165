//! CHO fed-batch kinetics of Xing, Bishop, Leister et al. 2010, *Biotechnol. Prog.* 26:208–219
//! (reference §3), parameters as in the HugeAppear/CHO-cell-Bioreactor re-implementation, mAb
//! productivity from *Bioengineering* 2018, 5(1):25, Table 2. Cells per L, metabolites in mM.
//!
//! Two guards keep states non-negative where the published equations would not: the growth-
//! associated uptake uses max(μ − μd, 0) (a dying culture does not give glucose back), and the
//! glucose maintenance and ammonia uptake vanish with their substrate (Monod factors with Kglc
//! and 0.1 mM [est]).

use crate::sim::config::XingParams;

/// Specific rates of the Xing model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChoRates {
    /// Growth rate μ, 1/h.
    pub mu: f64,
    /// Death rate μd, 1/h.
    pub mu_d: f64,
    /// Glucose uptake, mmol/cell/h.
    pub q_glc: f64,
    /// Glutamine uptake, mmol/cell/h.
    pub q_gln: f64,
    /// Lactate production, mmol/cell/h.
    pub q_lac: f64,
    /// Net ammonia production by the cells, mmol/cell/h.
    pub q_amm: f64,
    /// Antibody production, g/cell/h.
    pub q_mab: f64,
    /// O2 uptake, mmol/cell/h.
    pub q_o2: f64,
    /// CO2 production, mmol/cell/h.
    pub q_co2: f64,
}

/// Xing et al. 2010 rates at glucose `glc`, glutamine `gln`, lactate `lac`, ammonia `amm` (mM)
/// and dissolved O2 `do_mm`; `scale` multiplies μmax (temperature × growth-fault factor).
pub fn xing_rates(
    p: &XingParams,
    glc: f64,
    gln: f64,
    lac: f64,
    amm: f64,
    do_mm: f64,
    scale: f64,
) -> ChoRates {
    let (glc, gln, lac, amm, c) = (
        glc.max(0.0),
        gln.max(0.0),
        lac.max(0.0),
        amm.max(0.0),
        do_mm.max(0.0),
    );
    let f_glc = glc / (p.kglc_mm + glc);
    let mu = scale * p.mu_max_h * f_glc * gln / (p.kgln_mm + gln) * p.kilac_mm / (p.kilac_mm + lac)
        * p.kiamm_mm
        / (p.kiamm_mm + amm);
    let mu_d = p.kd_h * lac / (p.kdlac_mm + lac) * amm / (p.kdamm_mm + amm);
    let net = (mu - mu_d).max(0.0);
    let m_gln = p.a1 * gln / (p.a2 + gln);
    let q_glc = net / p.yx_glc + p.mglc * f_glc;
    let q_gln = net / p.yx_gln + m_gln;
    let q_o2 = p.qo2_mmol_cell_h * c / (c + p.ko_mm);
    ChoRates {
        mu,
        mu_d,
        q_glc,
        q_gln,
        q_lac: p.ylac_glc * q_glc,
        q_amm: p.yamm_gln * net / p.yx_gln - p.ramm * amm / (amm + 0.1),
        q_mab: p.qmab_g_cell_h,
        q_o2,
        q_co2: p.rq * q_o2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_rate_at_initial_conditions() {
        let p = XingParams::default();
        let r = xing_rates(&p, 30.0, 4.0, 0.0, 0.0, 0.2, 1.0);
        let expect = 0.029 * 30.0 / 30.084 * 4.0 / 4.047;
        assert!((r.mu - expect).abs() < 1e-12);
        assert_eq!(r.mu_d, 0.0);
        assert!(r.q_glc > 0.0 && r.q_lac > 0.0);
    }

    #[test]
    fn inhibition_and_death_with_lactate_and_ammonia() {
        let p = XingParams::default();
        let clean = xing_rates(&p, 30.0, 4.0, 0.0, 0.0, 0.2, 1.0);
        let dirty = xing_rates(&p, 30.0, 4.0, 43.0, 6.51, 0.2, 1.0);
        assert!((dirty.mu - clean.mu * 0.25).abs() < 1e-12);
        assert!(dirty.mu_d > 0.0);
    }

    #[test]
    fn starved_culture_consumes_nothing() {
        let p = XingParams::default();
        let r = xing_rates(&p, 0.0, 0.0, 10.0, 0.0, 0.2, 1.0);
        assert_eq!(r.mu, 0.0);
        assert_eq!(r.q_glc, 0.0);
        assert_eq!(r.q_gln, 0.0);
        assert!(r.q_amm <= 0.0 + 1e-30);
    }
}
