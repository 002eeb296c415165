//! Plant configuration: every parameter of the simulator with units in its name.
//!
//! The shape mirrors `edgectl.sim.PlantConfig` on the Python side field for field (Python
//! decodes TOML with msgspec and hands the plant JSON text; [`PlantConfig::from_json`]). The
//! defaults are the reference's scenario A, "E. coli fed-batch, 2 L" ([`PlantConfig::ecoli_2l`]);
//! [`PlantConfig::cho_2l`] is scenario B. Tags as in `shared/reference/plant-models.md`:
//! [lit] literature, [code] public re-implementation, [derived], [est] engineering estimate.

use crate::error::{CoreError, CoreResult};
use serde::{Deserialize, Serialize};

/// Which culture grows in the vessel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Organism {
    /// E. coli fed-batch with overflow metabolism (§2 of the reference).
    Ecoli,
    /// CHO fed-batch, Xing et al. 2010 (§3).
    Cho,
    /// Sterile medium: no biology (for loop tuning and for steady-state checks).
    None,
}

/// Which E. coli kinetic model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcoliModel {
    /// Anane, López, Neubauer & Cruz Bournazou 2017, Biochem. Eng. J. 125:23 (smooth overflow).
    Anane2017,
    /// Xu, Jahic & Enfors 1999, Biotechnol. Prog. 15:81 (sharp overflow at the respiratory limit).
    Xu1999,
}

/// Anane et al. 2017 parameter set (§2b, all [lit]). Rates in g/g/h, concentrations in g/L.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnaneParams {
    /// Maximum glucose uptake, g/g/h.
    pub qs_max: f64,
    /// Glucose saturation constant, g/L.
    pub ks: f64,
    /// Acetate inhibition of glucose uptake, g/L.
    pub kia: f64,
    /// Glucose-uptake inhibition of acetate uptake, g/g/h.
    pub kis: f64,
    /// Acetate saturation constant, g/L.
    pub ksa: f64,
    /// Oxygen saturation constant in % DOT.
    pub ko: f64,
    /// Maximum overflow fraction of uptake, g/g/h.
    pub pa_max: f64,
    /// Overflow saturation constant, g/g/h.
    pub kap: f64,
    /// Maximum acetate uptake, g/g/h.
    pub qa_max: f64,
    /// Maintenance glucose uptake, g/g/h.
    pub qm: f64,
    /// Acetate produced per glucose overflowed, g/g.
    pub yas: f64,
    /// O2 per acetate consumed, g/g.
    pub yoa: f64,
    /// Biomass per acetate consumed, g/g.
    pub yxa: f64,
    /// Biomass per glucose oxidised (above maintenance), g/g.
    pub yem: f64,
    /// O2 per glucose oxidised (catabolic part), g/g.
    pub yos: f64,
    /// Biomass per glucose overflowed, g/g.
    pub yxsof: f64,
    /// Carbon fraction of glucose, g C/g.
    pub cs: f64,
    /// Carbon fraction of biomass, g C/g.
    pub cx: f64,
}

impl Default for AnaneParams {
    fn default() -> Self {
        AnaneParams {
            qs_max: 0.6356,
            ks: 0.0370,
            kia: 1.2399,
            kis: 2.1231,
            ksa: 0.0134,
            ko: 0.0001,
            pa_max: 0.2268,
            kap: 0.5052,
            qa_max: 0.1148,
            qm: 0.0129,
            yas: 0.9097,
            yoa: 0.5440,
            yxa: 0.5718,
            yem: 0.5333,
            yos: 1.5620,
            yxsof: 0.2268,
            cs: 0.391,
            cx: 0.488,
        }
    }
}

/// Xu, Jahic & Enfors 1999 set as re-implemented by Hebing 2018 (§2a, [code]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XuParams {
    /// Maximum glucose uptake, g/g/h.
    pub qs_max: f64,
    /// Maximum oxygen uptake, mmol O2/g/h.
    pub qo_max_mmol: f64,
    /// Maximum acetate uptake, g/g/h.
    pub qac_max: f64,
    /// Maintenance glucose uptake, g/g/h.
    pub qm: f64,
    /// Glucose saturation constant, g/L.
    pub ks: f64,
    /// Acetate saturation constant, g/L.
    pub ka: f64,
    /// Acetate inhibition of glucose uptake, g/L.
    pub kis: f64,
    /// Acetate inhibition of respiration, g/L.
    pub kio: f64,
    /// Biomass per glucose oxidised, g/g.
    pub yxs_ox: f64,
    /// Biomass per glucose overflowed, g/g.
    pub yxs_of: f64,
    /// Acetate per glucose overflowed (non-biomass part), g/g.
    pub yas: f64,
    /// Biomass per acetate consumed, g/g.
    pub yxa: f64,
    /// O2 per glucose oxidised, g/g.
    pub yos: f64,
    /// O2 per acetate oxidised, g/g.
    pub yoa: f64,
    /// Carbon content of glucose and acetate, C-mol/g.
    pub cs: f64,
    /// Carbon content of acetate, C-mol/g.
    pub ca: f64,
    /// Carbon content of biomass, C-mol/g.
    pub cx: f64,
    /// Dissolved-O2 saturation constant of respiration, mM [est] (not in the paper's model).
    pub ko_mm: f64,
}

impl Default for XuParams {
    fn default() -> Self {
        XuParams {
            qs_max: 1.30,
            qo_max_mmol: 15.6,
            qac_max: 0.06,
            qm: 0.04,
            ks: 0.05,
            ka: 0.05,
            kis: 5.0,
            kio: 4.0,
            yxs_ox: 0.51,
            yxs_of: 0.15,
            yas: 0.667,
            yxa: 0.4,
            yos: 1.067,
            yoa: 1.067,
            cs: 1.0 / 30.0,
            ca: 1.0 / 30.0,
            cx: 0.04,
            ko_mm: 0.002,
        }
    }
}

/// Cardinal temperature model with inflection (Rosso et al. 1993, J. Theor. Biol. 162:447),
/// normalised to 1 at 37 °C; limits [est].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardinalTemps {
    /// Apply the factor (false: growth independent of temperature).
    pub enabled: bool,
    /// Minimum growth temperature, °C.
    pub t_min_c: f64,
    /// Optimum growth temperature, °C.
    pub t_opt_c: f64,
    /// Maximum growth temperature, °C.
    pub t_max_c: f64,
}

impl Default for CardinalTemps {
    fn default() -> Self {
        CardinalTemps {
            enabled: true,
            t_min_c: 5.0,
            t_opt_c: 39.0,
            t_max_c: 47.0,
        }
    }
}

/// Cardinal pH model (Rosso et al. 1995, Appl. Environ. Microbiol. 61:610), normalised to 1
/// at pH_opt; limits [est]. Growth (and with it ammonium uptake) stops outside (pH_min, pH_max).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardinalPh {
    /// Apply the factor (false: growth independent of pH).
    pub enabled: bool,
    /// Minimum pH for growth.
    pub ph_min: f64,
    /// Optimum pH.
    pub ph_opt: f64,
    /// Maximum pH for growth.
    pub ph_max: f64,
}

impl Default for CardinalPh {
    fn default() -> Self {
        CardinalPh {
            enabled: true,
            ph_min: 4.0,
            ph_opt: 7.0,
            ph_max: 9.5,
        }
    }
}

/// E. coli culture: model choice, parameters, initial state and feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EcoliConfig {
    /// Kinetic model.
    pub model: EcoliModel,
    /// Anane 2017 parameters (used when `model` is `anane2017`).
    pub anane: AnaneParams,
    /// Xu 1999 parameters (used when `model` is `xu1999`).
    pub xu: XuParams,
    /// Initial biomass, g/L (Anane 2017: 0.17).
    pub x0_g_l: f64,
    /// Initial glucose, g/L (Anane 2017: 4.94).
    pub s0_g_l: f64,
    /// Initial acetate, g/L (Anane 2017: 0.0129).
    pub a0_g_l: f64,
    /// Glucose in the feed bottle, g/L (Anane 2017: Si = 300).
    pub feed_glucose_g_l: f64,
    /// Ammonium taken up per g of biomass formed, mmol/g [est ~0.13 g N/g]; an SID sink.
    pub nitrogen_mmol_per_g: f64,
    /// Temperature response of the uptake capacities.
    pub temperature: CardinalTemps,
    /// pH response of the uptake capacities.
    pub ph_response: CardinalPh,
}

impl Default for EcoliConfig {
    fn default() -> Self {
        EcoliConfig {
            model: EcoliModel::Anane2017,
            anane: AnaneParams::default(),
            xu: XuParams::default(),
            x0_g_l: 0.17,
            s0_g_l: 4.94,
            a0_g_l: 0.0129,
            feed_glucose_g_l: 300.0,
            nitrogen_mmol_per_g: 9.0,
            temperature: CardinalTemps::default(),
            ph_response: CardinalPh::default(),
        }
    }
}

/// Xing et al. 2010 CHO parameters (§3; HugeAppear column [code], QmAb from Bioengineering 2018).
/// Cells per L, concentrations in mM, rates per h.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XingParams {
    /// Maximum growth rate, 1/h.
    pub mu_max_h: f64,
    /// Maximum death rate, 1/h.
    pub kd_h: f64,
    /// Glucose Monod constant, mM.
    pub kglc_mm: f64,
    /// Glutamine Monod constant, mM.
    pub kgln_mm: f64,
    /// Lactate inhibition of growth, mM.
    pub kilac_mm: f64,
    /// Ammonia inhibition of growth, mM.
    pub kiamm_mm: f64,
    /// Lactate constant of death, mM.
    pub kdlac_mm: f64,
    /// Ammonia constant of death, mM.
    pub kdamm_mm: f64,
    /// Cells per mmol glucose.
    pub yx_glc: f64,
    /// Cells per mmol glutamine.
    pub yx_gln: f64,
    /// Lactate per glucose, mmol/mmol.
    pub ylac_glc: f64,
    /// Ammonia per glutamine, mmol/mmol.
    pub yamm_gln: f64,
    /// Glucose maintenance, mmol/cell/h.
    pub mglc: f64,
    /// Glutamine maintenance a1, mmol/cell/h.
    pub a1: f64,
    /// Glutamine maintenance saturation constant a2, mM.
    pub a2: f64,
    /// Spontaneous glutamine decay, 1/h.
    pub dgln_h: f64,
    /// Ammonia uptake, mmol/cell/h.
    pub ramm: f64,
    /// Specific antibody productivity, g/cell/h.
    pub qmab_g_cell_h: f64,
    /// Specific O2 uptake, mmol/cell/h [est].
    pub qo2_mmol_cell_h: f64,
    /// Respiratory quotient [est].
    pub rq: f64,
    /// Dissolved-O2 saturation constant of respiration, mM [est].
    pub ko_mm: f64,
}

impl Default for XingParams {
    fn default() -> Self {
        XingParams {
            mu_max_h: 0.029,
            kd_h: 0.016,
            kglc_mm: 0.084,
            kgln_mm: 0.047,
            kilac_mm: 43.0,
            kiamm_mm: 6.51,
            kdlac_mm: 45.8,
            kdamm_mm: 6.51,
            yx_glc: 1.69e8,
            yx_gln: 9.74e8,
            ylac_glc: 1.23,
            yamm_gln: 0.67,
            mglc: 69.2e-12,
            a1: 3.2e-12,
            a2: 2.1,
            dgln_h: 7.2e-3,
            ramm: 6.3e-12,
            qmab_g_cell_h: 1.51e-12,
            qo2_mmol_cell_h: 3e-10,
            rq: 1.0,
            ko_mm: 0.001,
        }
    }
}

/// CHO culture: parameters, initial state and feed (scenario B).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChoConfig {
    /// Kinetic parameters.
    pub params: XingParams,
    /// Initial viable cells, cells/L.
    pub xv0_cells_l: f64,
    /// Initial dead cells, cells/L.
    pub xd0_cells_l: f64,
    /// Initial glucose, mM.
    pub glc0_mm: f64,
    /// Initial glutamine, mM.
    pub gln0_mm: f64,
    /// Initial lactate, mM.
    pub lac0_mm: f64,
    /// Initial ammonia, mM.
    pub amm0_mm: f64,
    /// Initial product titre, g/L.
    pub titer0_g_l: f64,
    /// Glucose in the feed, mM.
    pub feed_glc_mm: f64,
    /// Glutamine in the feed, mM.
    pub feed_gln_mm: f64,
    /// Dry mass per cell, pg [est], for foam and spectra.
    pub cell_dry_mass_pg: f64,
    /// Temperature response of growth.
    pub temperature: CardinalTemps,
    /// pH response of growth.
    pub ph_response: CardinalPh,
}

impl Default for ChoConfig {
    fn default() -> Self {
        ChoConfig {
            params: XingParams::default(),
            xv0_cells_l: 3e8,
            xd0_cells_l: 0.0,
            glc0_mm: 30.0,
            gln0_mm: 4.0,
            lac0_mm: 0.0,
            amm0_mm: 0.0,
            titer0_g_l: 0.0,
            feed_glc_mm: 500.0,
            feed_gln_mm: 50.0,
            cell_dry_mass_pg: 350.0,
            temperature: CardinalTemps {
                enabled: true,
                t_min_c: 20.0,
                t_opt_c: 37.5,
                t_max_c: 41.0,
            },
            ph_response: CardinalPh {
                enabled: true,
                ph_min: 5.5,
                ph_opt: 7.0,
                ph_max: 8.5,
            },
        }
    }
}

/// Vessel geometry and liquid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VesselConfig {
    /// Initial liquid volume, L.
    pub volume0_l: f64,
    /// Liquid above this volume leaves through the overflow (counted in the balances).
    pub max_volume_l: f64,
    /// Vessel inner diameter, m.
    pub diameter_m: f64,
    /// Impeller diameter, m.
    pub impeller_diameter_m: f64,
    /// Number of impellers on the shaft.
    pub impellers: u32,
    /// Rushton turbine power number Np ≈ 5 [lit].
    pub power_number: f64,
    /// Pg/P, 0.5–0.7 [est].
    pub gassed_power_ratio: f64,
    /// Broth density, kg/L (= g/mL).
    pub density_kg_l: f64,
    /// Mass of the empty vessel on the reactor balance, g.
    pub tare_g: f64,
    /// Head pressure, bar gauge.
    pub pressure_bar_g: f64,
}

impl Default for VesselConfig {
    fn default() -> Self {
        VesselConfig {
            volume0_l: 2.0,
            max_volume_l: 3.0,
            diameter_m: 0.13,
            impeller_diameter_m: 0.043,
            impellers: 1,
            power_number: 5.0,
            gassed_power_ratio: 0.6,
            density_kg_l: 1.0,
            tare_g: 0.0,
            pressure_bar_g: 0.0,
        }
    }
}

/// Gas–liquid transfer: kLa = factor · C · (Pg/V)^α · vs^β (van't Riet 1979) + surface aeration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GasConfig {
    /// van't Riet constant C (SI units).
    pub kla_c: f64,
    /// Exponent α of Pg/V (W/m³).
    pub kla_alpha: f64,
    /// Exponent β of vs (m/s).
    pub kla_beta: f64,
    /// Calibration factor [est]: 0.855 makes kLa(1200 rpm, 2 vvm, air) = 400 1/h at 2 L.
    pub kla_factor: f64,
    /// Surface aeration through the headspace (ambient air), 1/h [est].
    pub kla_surface_h: f64,
    /// kLa_CO2 / kLa_O2 ≈ 0.9 [est].
    pub kla_co2_ratio: f64,
    /// O2 solubility under air at 1 atm, mM (0.21 at 37 °C [lit]).
    pub o2_sat_air_mm: f64,
    /// Henry constant of CO2, mM/mmHg (0.0307 [lit]).
    pub henry_co2_mm_per_mmhg: f64,
    /// Initial DO, % air saturation; `None` = equilibrium with the initial gas.
    pub initial_do_pct: Option<f64>,
    /// Initial total inorganic carbon, mM; `None` = equilibrium with the initial gas.
    pub initial_ct_mm: Option<f64>,
}

impl Default for GasConfig {
    fn default() -> Self {
        GasConfig {
            kla_c: 0.002,
            kla_alpha: 0.7,
            kla_beta: 0.2,
            kla_factor: 0.855,
            kla_surface_h: 1.0,
            kla_co2_ratio: 0.9,
            o2_sat_air_mm: 0.21,
            henry_co2_mm_per_mmhg: 0.0307,
            initial_do_pct: None,
            initial_ct_mm: None,
        }
    }
}

/// A weak buffer treated as monoprotic around its pKa (reference §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufferConfig {
    /// Total buffer concentration, mM.
    pub total_mm: f64,
    /// pKa of the buffering step.
    pub pka: f64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            total_mm: 50.0,
            pka: 6.8,
        }
    }
}

/// Titrant in the base bottle (reference §6, "Base type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseKind {
    /// Adds SID only.
    Naoh,
    /// Adds SID (NH4+ treated as a strong cation below pH 8).
    Nh4oh,
    /// Adds 1 SID and 1 C_T per mol.
    Nahco3,
    /// Adds 2 SID and 1 C_T per mol.
    Na2co3,
}

/// pH: strong-ion-difference charge balance with CO2/bicarbonate, buffers and organic acids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhConfig {
    /// First apparent carbonic pK′.
    pub pk1: f64,
    /// Second apparent carbonic pK′.
    pub pk2: f64,
    /// pKw at 37 °C.
    pub pkw: f64,
    /// pKa of acetic acid.
    pub pka_acetate: f64,
    /// pKa of lactic acid.
    pub pka_lactate: f64,
    /// Weak buffers in the medium.
    pub buffers: Vec<BufferConfig>,
    /// Initial strong-ion difference, mM (used when `initial_ph` is `None`).
    pub sid_mm: f64,
    /// Initial pH; when set, the initial SID is solved to give it.
    pub initial_ph: Option<f64>,
    /// Titrant in the base bottle.
    pub base_kind: BaseKind,
    /// Base concentration, mol/L.
    pub base_conc_m: f64,
    /// Acid concentration, mol/L of protons.
    pub acid_conc_m: f64,
    /// First-order mixing lag of titrant additions, s [est 3–10].
    pub mixing_tau_s: f64,
}

impl Default for PhConfig {
    fn default() -> Self {
        PhConfig {
            pk1: 6.1,
            pk2: 10.1,
            pkw: 13.6,
            pka_acetate: 4.76,
            pka_lactate: 3.86,
            buffers: vec![BufferConfig::default()],
            sid_mm: 0.0,
            initial_ph: Some(7.0),
            base_kind: BaseKind::Nh4oh,
            base_conc_m: 3.0,
            acid_conc_m: 1.0,
            mixing_tau_s: 5.0,
        }
    }
}

/// How the heater node is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThermalMode {
    /// Electric blanket driven by `heater_duty`.
    Blanket,
    /// Water jacket from a circulator that follows `jacket_temp_sp_c` with a first-order lag.
    Jacket,
}

/// Two-node thermal model (reference §7): liquid + glass, heater blanket or jacket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThermalConfig {
    /// Blanket heater or circulator jacket.
    pub mode: ThermalMode,
    /// Liquid and heater temperature at t = 0, °C.
    pub initial_temp_c: f64,
    /// Room temperature, °C.
    pub ambient_c: f64,
    /// Liquid heat capacity, J/g/K.
    pub cp_liquid_j_g_k: f64,
    /// Glass and steel in contact with the liquid, J/K (1 kg glass ≈ 830).
    pub glass_heat_capacity_j_k: f64,
    /// Heater blanket (or jacket water) heat capacity, J/K.
    pub heater_heat_capacity_j_k: f64,
    /// Heater → liquid conductance, W/K.
    pub ua_heater_liquid_w_k: f64,
    /// Liquid → room conductance, W/K.
    pub ua_ambient_w_k: f64,
    /// Heater → room conductance, W/K.
    pub ua_heater_ambient_w_k: f64,
    /// Heater power at duty 1, W.
    pub heater_power_w: f64,
    /// Cooling finger UA at full valve, W/K (0 = no finger).
    pub ua_cooling_w_k: f64,
    /// Cooling water temperature, °C.
    pub cooling_water_c: f64,
    /// Circulator time constant in jacket mode, s.
    pub jacket_tau_s: f64,
    /// Metabolic heat per mmol O2 consumed, kJ (Cooney, Wang & Wang 1969: 0.46–0.50).
    pub met_heat_kj_per_mmol_o2: f64,
    /// Fraction of the water vapour in the off-gas returned by the condenser [est].
    pub condenser_efficiency: f64,
    /// Latent heat of evaporation, J/g.
    pub latent_heat_j_g: f64,
    /// Temperature of added liquids, °C.
    pub feed_temp_c: f64,
}

impl Default for ThermalConfig {
    fn default() -> Self {
        ThermalConfig {
            mode: ThermalMode::Blanket,
            initial_temp_c: 37.0,
            ambient_c: 20.0,
            cp_liquid_j_g_k: 4.18,
            glass_heat_capacity_j_k: 830.0,
            heater_heat_capacity_j_k: 400.0,
            ua_heater_liquid_w_k: 5.0,
            ua_ambient_w_k: 0.7,
            ua_heater_ambient_w_k: 0.3,
            heater_power_w: 150.0,
            ua_cooling_w_k: 10.0,
            cooling_water_c: 15.0,
            jacket_tau_s: 120.0,
            met_heat_kj_per_mmol_o2: 0.47,
            condenser_efficiency: 0.8,
            latent_heat_j_g: 2410.0,
            feed_temp_c: 20.0,
        }
    }
}

/// Foam (reference §8, all [est]): dh/dt = k_f·vvm·X − h·(1/τc + k_af·c_af).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FoamConfig {
    /// Foam growth, mm/h per (vvm · g/L biomass).
    pub k_f_mm_h: f64,
    /// Natural foam collapse time constant, s.
    pub collapse_tau_s: f64,
    /// Antifoam knock-down, 1/h per ppm.
    pub k_af_per_ppm_h: f64,
    /// Antifoam loss of activity, s.
    pub antifoam_tau_s: f64,
    /// Active antifoam in the antifoam bottle, mg/L.
    pub antifoam_conc_ppm: f64,
    /// Height of the foam probe tip above the liquid, mm.
    pub probe_height_mm: f64,
}

impl Default for FoamConfig {
    fn default() -> Self {
        FoamConfig {
            k_f_mm_h: 16.0,
            collapse_tau_s: 600.0,
            k_af_per_ppm_h: 12.0,
            antifoam_tau_s: 7200.0,
            antifoam_conc_ppm: 100_000.0,
            probe_height_mm: 30.0,
        }
    }
}

/// A peristaltic pump and its bottle on a balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PumpConfig {
    /// Largest rate the pump accepts, mL/min.
    pub max_rate_ml_min: f64,
    /// Relative delivery error of the calibration (0.02 = delivers 2 % more than set).
    pub calibration_error: f64,
    /// Loss of delivery per hour of running from tubing wear, fraction/h [est].
    pub wear_per_h: f64,
    /// Initial liquid in the bottle, g.
    pub bottle_g: f64,
    /// Density of the bottle contents, g/mL.
    pub density_g_ml: f64,
}

impl PumpConfig {
    fn with(max_rate_ml_min: f64, bottle_g: f64, density_g_ml: f64) -> Self {
        PumpConfig {
            max_rate_ml_min,
            calibration_error: 0.0,
            wear_per_h: 0.0,
            bottle_g,
            density_g_ml,
        }
    }
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig::with(10.0, 500.0, 1.0)
    }
}

/// A thermal mass-flow controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfcConfig {
    /// Full scale, sccm.
    pub max_sccm: f64,
    /// Flow response time constant, s.
    pub tau_s: f64,
    /// Readback resolution, sccm.
    pub resolution_sccm: f64,
}

impl MfcConfig {
    fn with(max_sccm: f64) -> Self {
        MfcConfig {
            max_sccm,
            tau_s: 0.7,
            resolution_sccm: max_sccm / 1000.0,
        }
    }
}

impl Default for MfcConfig {
    fn default() -> Self {
        MfcConfig::with(5000.0)
    }
}

/// Actuator values at t = 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitialActuators {
    /// Stirrer setpoint and speed, rpm.
    pub stirrer_rpm: f64,
    /// Air flow, sccm.
    pub air_sccm: f64,
    /// O2 flow, sccm.
    pub o2_sccm: f64,
    /// CO2 flow, sccm.
    pub co2_sccm: f64,
    /// N2 flow, sccm.
    pub n2_sccm: f64,
    /// Heater duty, 0–1.
    pub heater_duty: f64,
    /// Cooling valve, 0–1.
    pub cooling_duty: f64,
    /// Circulator setpoint (jacket mode), °C.
    pub jacket_temp_sp_c: f64,
}

impl Default for InitialActuators {
    fn default() -> Self {
        InitialActuators {
            stirrer_rpm: 800.0,
            air_sccm: 2000.0,
            o2_sccm: 0.0,
            co2_sccm: 0.0,
            n2_sccm: 0.0,
            heater_duty: 0.0,
            cooling_duty: 0.0,
            jacket_temp_sp_c: 37.0,
        }
    }
}

/// Actuators: stirrer, pumps, mass-flow controllers, initial values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActuatorsConfig {
    /// Stirrer speed time constant, s.
    pub stirrer_tau_s: f64,
    /// Stirrer maximum speed, rpm.
    pub stirrer_max_rpm: f64,
    /// Feed pump and bottle.
    pub feed: PumpConfig,
    /// Base pump and bottle.
    pub base: PumpConfig,
    /// Acid pump and bottle.
    pub acid: PumpConfig,
    /// Antifoam pump and bottle.
    pub antifoam: PumpConfig,
    /// Air MFC.
    pub air: MfcConfig,
    /// O2 MFC.
    pub o2: MfcConfig,
    /// CO2 MFC.
    pub co2: MfcConfig,
    /// N2 MFC.
    pub n2: MfcConfig,
    /// Values at t = 0.
    pub initial: InitialActuators,
}

impl Default for ActuatorsConfig {
    fn default() -> Self {
        ActuatorsConfig {
            stirrer_tau_s: 1.5,
            stirrer_max_rpm: 1500.0,
            feed: PumpConfig::with(10.0, 1000.0, 1.1),
            base: PumpConfig::with(10.0, 500.0, 0.96),
            acid: PumpConfig::with(10.0, 500.0, 1.02),
            antifoam: PumpConfig::with(2.0, 100.0, 1.0),
            air: MfcConfig::with(5000.0),
            o2: MfcConfig::with(2000.0),
            co2: MfcConfig::with(500.0),
            n2: MfcConfig::with(2000.0),
            initial: InitialActuators::default(),
        }
    }
}

/// One sensor channel: first-order lag, white noise, linear drift, quantisation, dropout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorConfig {
    /// First-order lag, s.
    pub tau_s: f64,
    /// White-noise standard deviation, signal units.
    pub noise_sd: f64,
    /// Drift in signal units per day.
    pub drift_per_day: f64,
    /// Quantisation step in signal units (0 = none).
    pub resolution: f64,
    /// Probability per update that the reading is NaN.
    pub dropout_prob: f64,
    /// Transport delay before the lag, s (DO probe θ 1–3 s [est]).
    pub delay_s: f64,
}

impl SensorConfig {
    fn new(tau_s: f64, noise_sd: f64, drift_per_day: f64, resolution: f64) -> Self {
        SensorConfig {
            tau_s,
            noise_sd,
            drift_per_day,
            resolution,
            dropout_prob: 0.0,
            delay_s: 0.0,
        }
    }
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig::new(0.0, 0.0, 0.0, 0.0)
    }
}

/// Sensor channels (reference §9; DO τ [lit] Anane 2017, the rest [est]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorsConfig {
    /// Pt100 in the liquid.
    pub temp_c: SensorConfig,
    /// Heater/jacket temperature.
    pub jacket_temp_c: SensorConfig,
    /// pH electrode.
    pub ph: SensorConfig,
    /// DO probe, % air saturation.
    pub do_pct: SensorConfig,
    /// Stirrer speed readback.
    pub stirrer_rpm: SensorConfig,
    /// MFC flow readbacks (all four gases).
    pub gas_flow_sccm: SensorConfig,
    /// Balance under the vessel.
    pub reactor_mass_g: SensorConfig,
    /// Balances under the four bottles.
    pub bottle_mass_g: SensorConfig,
    /// Head pressure, bar gauge.
    pub pressure_bar: SensorConfig,
    /// Off-gas O2 and CO2 analyser, %.
    pub offgas_pct: SensorConfig,
}

impl Default for SensorsConfig {
    fn default() -> Self {
        SensorsConfig {
            temp_c: SensorConfig::new(20.0, 0.01, 0.0, 0.01),
            jacket_temp_c: SensorConfig::new(5.0, 0.02, 0.0, 0.01),
            ph: SensorConfig::new(5.0, 0.005, 0.0, 0.001),
            do_pct: SensorConfig {
                delay_s: 2.0,
                ..SensorConfig::new(35.0, 0.3, 1.0, 0.1)
            },
            stirrer_rpm: SensorConfig::new(0.0, 0.0, 0.0, 1.0),
            gas_flow_sccm: SensorConfig::new(0.0, 0.0, 0.0, 0.0),
            reactor_mass_g: SensorConfig::new(2.0, 0.1, 0.0, 0.1),
            bottle_mass_g: SensorConfig::new(2.0, 0.05, 0.0, 0.01),
            pressure_bar: SensorConfig::new(1.0, 0.001, 0.0, 0.001),
            offgas_pct: SensorConfig::new(30.0, 0.01, 0.0, 0.001),
        }
    }
}

/// Synthetic Raman-type spectrometer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpectrometerConfig {
    /// Acquire spectra at all.
    pub enabled: bool,
    /// First point of the axis, cm⁻¹.
    pub start_cm1: f64,
    /// Last point of the axis, cm⁻¹.
    pub stop_cm1: f64,
    /// Number of axis points.
    pub n_points: usize,
    /// A new spectrum every `period_s` of simulated time.
    pub period_s: f64,
    /// White noise sd, intensity units (water band ≈ 1).
    pub noise_sd: f64,
    /// Step sd of the baseline coefficients' random walk per spectrum.
    pub baseline_drift_sd: f64,
    /// Mean number of cosmic-ray spikes per spectrum.
    pub spike_rate: f64,
    /// Spike height, intensity units.
    pub spike_height: f64,
    /// Seed of the procedural pure-component library (fixed per instrument).
    pub library_seed: u64,
}

impl Default for SpectrometerConfig {
    fn default() -> Self {
        SpectrometerConfig {
            enabled: true,
            start_cm1: 400.0,
            stop_cm1: 1800.0,
            n_points: 1047,
            period_s: 60.0,
            noise_sd: 0.0005,
            baseline_drift_sd: 0.0005,
            spike_rate: 0.05,
            spike_height: 0.2,
            library_seed: 1,
        }
    }
}

/// A fault scheduled in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Fault kind name, e.g. `"pump_stall"` (see [`crate::sim::faults::FaultKind`]).
    pub kind: String,
    /// Sensor signal, pump or gas name; empty when the kind has no target.
    #[serde(default)]
    pub target: String,
    /// Kind-specific value (drift per hour, stuck flow, duty, growth factor); `None` = default.
    #[serde(default)]
    pub value: Option<f64>,
    /// Simulated time at which the fault starts, s.
    pub at_s: f64,
    /// Duration, s; `None` = until cleared.
    #[serde(default)]
    pub duration_s: Option<f64>,
}

/// The whole plant configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlantConfig {
    /// Seed of every random stream (bit-for-bit repeatable runs).
    pub seed: u64,
    /// Culture in the vessel.
    pub organism: Organism,
    /// Longest integration sub-step, s (the outer step is split to stay below it).
    pub max_substep_s: f64,
    /// E. coli culture (used when `organism` is `ecoli`).
    pub ecoli: EcoliConfig,
    /// CHO culture (used when `organism` is `cho`).
    pub cho: ChoConfig,
    /// Vessel and liquid.
    pub vessel: VesselConfig,
    /// Gas–liquid transfer.
    pub gas: GasConfig,
    /// Acid–base chemistry and titrants.
    pub ph: PhConfig,
    /// Heat balance.
    pub thermal: ThermalConfig,
    /// Foam and antifoam.
    pub foam: FoamConfig,
    /// Pumps, MFCs, stirrer.
    pub actuators: ActuatorsConfig,
    /// Sensor channels.
    pub sensors: SensorsConfig,
    /// Synthetic spectrometer.
    pub spectrometer: SpectrometerConfig,
    /// Faults scheduled at given times.
    pub faults: Vec<FaultSpec>,
}

impl Default for PlantConfig {
    fn default() -> Self {
        PlantConfig::ecoli_2l()
    }
}

impl PlantConfig {
    /// Scenario A, "E. coli fed-batch, 2 L" (reference §11 A).
    pub fn ecoli_2l() -> Self {
        PlantConfig {
            seed: 0,
            organism: Organism::Ecoli,
            max_substep_s: 1.0,
            ecoli: EcoliConfig::default(),
            cho: ChoConfig::default(),
            vessel: VesselConfig::default(),
            gas: GasConfig::default(),
            ph: PhConfig::default(),
            thermal: ThermalConfig::default(),
            foam: FoamConfig::default(),
            actuators: ActuatorsConfig::default(),
            sensors: SensorsConfig::default(),
            spectrometer: SpectrometerConfig::default(),
            faults: Vec::new(),
        }
    }

    /// Scenario B, "CHO fed-batch, 2 L" (reference §11 B): coalescing medium with a
    /// microsparger, 24 mM NaHCO3 under 5 % CO2, 0.5 M NaHCO3 base, no cooling finger.
    pub fn cho_2l() -> Self {
        let mut c = PlantConfig::ecoli_2l();
        c.organism = Organism::Cho;
        c.max_substep_s = 5.0;
        c.gas.kla_c = 0.026;
        c.gas.kla_alpha = 0.4;
        c.gas.kla_beta = 0.5;
        c.gas.kla_factor = 4.0; // microsparger [est]: kLa ≈ 2–20 1/h over 50–200 rpm, 0.01–0.1 vvm
        c.gas.kla_surface_h = 0.2;
        c.ph.buffers = Vec::new();
        c.ph.sid_mm = 24.0;
        c.ph.initial_ph = None;
        c.ph.base_kind = BaseKind::Nahco3;
        c.ph.base_conc_m = 0.5;
        c.thermal.ua_cooling_w_k = 0.0;
        c.thermal.condenser_efficiency = 0.5;
        c.foam.k_f_mm_h = 16.0;
        c.actuators.initial = InitialActuators {
            stirrer_rpm: 150.0,
            air_sccm: 100.0,
            o2_sccm: 0.0,
            co2_sccm: 5.3,
            n2_sccm: 0.0,
            heater_duty: 0.0,
            cooling_duty: 0.0,
            jacket_temp_sp_c: 37.0,
        };
        c.actuators.air = MfcConfig::with(500.0);
        c.actuators.o2 = MfcConfig::with(200.0);
        c.actuators.co2 = MfcConfig::with(100.0);
        c.actuators.n2 = MfcConfig::with(500.0);
        c.actuators.feed = PumpConfig::with(2.0, 1000.0, 1.05);
        c.actuators.base = PumpConfig::with(2.0, 500.0, 1.03);
        c.actuators.acid = PumpConfig::with(2.0, 500.0, 1.0);
        c
    }

    /// Decode JSON text (what `edgectl.sim.PlantConfig` sends) and validate it.
    pub fn from_json(text: &str) -> CoreResult<Self> {
        let c: PlantConfig = serde_json::from_str(text)
            .map_err(|e| CoreError::InvalidConfig(format!("plant config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// This configuration as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Check every field's range; the error names the key path (`gas.kla_factor`).
    pub fn validate(&self) -> CoreResult<()> {
        let mut v = Validator::default();
        v.pos("max_substep_s", self.max_substep_s);
        let e = &self.ecoli;
        v.nonneg("ecoli.x0_g_l", e.x0_g_l);
        v.nonneg("ecoli.s0_g_l", e.s0_g_l);
        v.nonneg("ecoli.a0_g_l", e.a0_g_l);
        v.nonneg("ecoli.feed_glucose_g_l", e.feed_glucose_g_l);
        v.nonneg("ecoli.nitrogen_mmol_per_g", e.nitrogen_mmol_per_g);
        v.temps("ecoli.temperature", &e.temperature);
        v.phs("ecoli.ph_response", &e.ph_response);
        for (k, x) in [
            ("qs_max", e.anane.qs_max),
            ("ks", e.anane.ks),
            ("kia", e.anane.kia),
            ("kis", e.anane.kis),
            ("ksa", e.anane.ksa),
            ("ko", e.anane.ko),
            ("kap", e.anane.kap),
            ("cs", e.anane.cs),
        ] {
            v.pos_owned(format!("ecoli.anane.{k}"), x);
        }
        for (k, x) in [
            ("qs_max", e.xu.qs_max),
            ("qo_max_mmol", e.xu.qo_max_mmol),
            ("ks", e.xu.ks),
            ("ka", e.xu.ka),
            ("kis", e.xu.kis),
            ("kio", e.xu.kio),
            ("yos", e.xu.yos),
            ("yoa", e.xu.yoa),
            ("cs", e.xu.cs),
            ("ca", e.xu.ca),
            ("ko_mm", e.xu.ko_mm),
        ] {
            v.pos_owned(format!("ecoli.xu.{k}"), x);
        }
        let c = &self.cho;
        for (k, x) in [
            ("kglc_mm", c.params.kglc_mm),
            ("kgln_mm", c.params.kgln_mm),
            ("kilac_mm", c.params.kilac_mm),
            ("kiamm_mm", c.params.kiamm_mm),
            ("kdlac_mm", c.params.kdlac_mm),
            ("kdamm_mm", c.params.kdamm_mm),
            ("yx_glc", c.params.yx_glc),
            ("yx_gln", c.params.yx_gln),
            ("a2", c.params.a2),
            ("ko_mm", c.params.ko_mm),
        ] {
            v.pos_owned(format!("cho.params.{k}"), x);
        }
        for (k, x) in [
            ("xv0_cells_l", c.xv0_cells_l),
            ("xd0_cells_l", c.xd0_cells_l),
            ("glc0_mm", c.glc0_mm),
            ("gln0_mm", c.gln0_mm),
            ("lac0_mm", c.lac0_mm),
            ("amm0_mm", c.amm0_mm),
            ("titer0_g_l", c.titer0_g_l),
            ("feed_glc_mm", c.feed_glc_mm),
            ("feed_gln_mm", c.feed_gln_mm),
            ("cell_dry_mass_pg", c.cell_dry_mass_pg),
        ] {
            v.nonneg_owned(format!("cho.{k}"), x);
        }
        v.temps("cho.temperature", &c.temperature);
        v.phs("cho.ph_response", &c.ph_response);
        let ve = &self.vessel;
        v.pos("vessel.volume0_l", ve.volume0_l);
        v.pos("vessel.max_volume_l", ve.max_volume_l);
        if ve.max_volume_l < ve.volume0_l {
            v.fail("vessel.max_volume_l must be >= vessel.volume0_l".into());
        }
        v.pos("vessel.diameter_m", ve.diameter_m);
        v.pos("vessel.impeller_diameter_m", ve.impeller_diameter_m);
        v.pos("vessel.power_number", ve.power_number);
        v.range("vessel.gassed_power_ratio", ve.gassed_power_ratio, 0.0, 1.0);
        v.pos("vessel.density_kg_l", ve.density_kg_l);
        v.nonneg("vessel.tare_g", ve.tare_g);
        v.range("vessel.pressure_bar_g", ve.pressure_bar_g, -0.5, 5.0);
        let g = &self.gas;
        v.nonneg("gas.kla_c", g.kla_c);
        v.nonneg("gas.kla_alpha", g.kla_alpha);
        v.nonneg("gas.kla_beta", g.kla_beta);
        v.nonneg("gas.kla_factor", g.kla_factor);
        v.nonneg("gas.kla_surface_h", g.kla_surface_h);
        v.nonneg("gas.kla_co2_ratio", g.kla_co2_ratio);
        v.pos("gas.o2_sat_air_mm", g.o2_sat_air_mm);
        v.pos("gas.henry_co2_mm_per_mmhg", g.henry_co2_mm_per_mmhg);
        if let Some(d) = g.initial_do_pct {
            v.range("gas.initial_do_pct", d, 0.0, 500.0);
        }
        if let Some(d) = g.initial_ct_mm {
            v.nonneg("gas.initial_ct_mm", d);
        }
        let p = &self.ph;
        v.range("ph.pk1", p.pk1, 0.0, 14.0);
        v.range("ph.pk2", p.pk2, 0.0, 14.0);
        v.range("ph.pkw", p.pkw, 10.0, 16.0);
        v.range("ph.pka_acetate", p.pka_acetate, 0.0, 14.0);
        v.range("ph.pka_lactate", p.pka_lactate, 0.0, 14.0);
        for (i, b) in p.buffers.iter().enumerate() {
            v.nonneg_owned(format!("ph.buffers[{i}].total_mm"), b.total_mm);
            v.range_owned(format!("ph.buffers[{i}].pka"), b.pka, 0.0, 14.0);
        }
        v.finite("ph.sid_mm", p.sid_mm);
        if let Some(x) = p.initial_ph {
            v.range("ph.initial_ph", x, 2.0, 12.0);
        }
        v.nonneg("ph.base_conc_m", p.base_conc_m);
        v.nonneg("ph.acid_conc_m", p.acid_conc_m);
        v.pos("ph.mixing_tau_s", p.mixing_tau_s);
        let t = &self.thermal;
        v.range("thermal.initial_temp_c", t.initial_temp_c, -10.0, 100.0);
        v.range("thermal.ambient_c", t.ambient_c, -20.0, 60.0);
        v.pos("thermal.cp_liquid_j_g_k", t.cp_liquid_j_g_k);
        v.nonneg("thermal.glass_heat_capacity_j_k", t.glass_heat_capacity_j_k);
        v.pos(
            "thermal.heater_heat_capacity_j_k",
            t.heater_heat_capacity_j_k,
        );
        v.pos("thermal.ua_heater_liquid_w_k", t.ua_heater_liquid_w_k);
        v.nonneg("thermal.ua_ambient_w_k", t.ua_ambient_w_k);
        v.nonneg("thermal.ua_heater_ambient_w_k", t.ua_heater_ambient_w_k);
        v.nonneg("thermal.heater_power_w", t.heater_power_w);
        v.nonneg("thermal.ua_cooling_w_k", t.ua_cooling_w_k);
        v.finite("thermal.cooling_water_c", t.cooling_water_c);
        v.pos("thermal.jacket_tau_s", t.jacket_tau_s);
        v.nonneg("thermal.met_heat_kj_per_mmol_o2", t.met_heat_kj_per_mmol_o2);
        v.range(
            "thermal.condenser_efficiency",
            t.condenser_efficiency,
            0.0,
            1.0,
        );
        v.nonneg("thermal.latent_heat_j_g", t.latent_heat_j_g);
        v.finite("thermal.feed_temp_c", t.feed_temp_c);
        let f = &self.foam;
        v.nonneg("foam.k_f_mm_h", f.k_f_mm_h);
        v.pos("foam.collapse_tau_s", f.collapse_tau_s);
        v.nonneg("foam.k_af_per_ppm_h", f.k_af_per_ppm_h);
        v.pos("foam.antifoam_tau_s", f.antifoam_tau_s);
        v.nonneg("foam.antifoam_conc_ppm", f.antifoam_conc_ppm);
        v.nonneg("foam.probe_height_mm", f.probe_height_mm);
        let a = &self.actuators;
        v.pos("actuators.stirrer_tau_s", a.stirrer_tau_s);
        v.pos("actuators.stirrer_max_rpm", a.stirrer_max_rpm);
        for (name, pc) in [
            ("feed", &a.feed),
            ("base", &a.base),
            ("acid", &a.acid),
            ("antifoam", &a.antifoam),
        ] {
            v.nonneg_owned(
                format!("actuators.{name}.max_rate_ml_min"),
                pc.max_rate_ml_min,
            );
            v.range_owned(
                format!("actuators.{name}.calibration_error"),
                pc.calibration_error,
                -0.9,
                1.0,
            );
            v.range_owned(
                format!("actuators.{name}.wear_per_h"),
                pc.wear_per_h,
                0.0,
                1.0,
            );
            v.nonneg_owned(format!("actuators.{name}.bottle_g"), pc.bottle_g);
            v.pos_owned(format!("actuators.{name}.density_g_ml"), pc.density_g_ml);
        }
        for (name, m) in [
            ("air", &a.air),
            ("o2", &a.o2),
            ("co2", &a.co2),
            ("n2", &a.n2),
        ] {
            v.nonneg_owned(format!("actuators.{name}.max_sccm"), m.max_sccm);
            v.pos_owned(format!("actuators.{name}.tau_s"), m.tau_s);
            v.nonneg_owned(
                format!("actuators.{name}.resolution_sccm"),
                m.resolution_sccm,
            );
        }
        let i = &a.initial;
        v.nonneg("actuators.initial.stirrer_rpm", i.stirrer_rpm);
        v.nonneg("actuators.initial.air_sccm", i.air_sccm);
        v.nonneg("actuators.initial.o2_sccm", i.o2_sccm);
        v.nonneg("actuators.initial.co2_sccm", i.co2_sccm);
        v.nonneg("actuators.initial.n2_sccm", i.n2_sccm);
        v.range("actuators.initial.heater_duty", i.heater_duty, 0.0, 1.0);
        v.range("actuators.initial.cooling_duty", i.cooling_duty, 0.0, 1.0);
        v.finite("actuators.initial.jacket_temp_sp_c", i.jacket_temp_sp_c);
        let s = &self.sensors;
        for (name, sc) in [
            ("temp_c", &s.temp_c),
            ("jacket_temp_c", &s.jacket_temp_c),
            ("ph", &s.ph),
            ("do_pct", &s.do_pct),
            ("stirrer_rpm", &s.stirrer_rpm),
            ("gas_flow_sccm", &s.gas_flow_sccm),
            ("reactor_mass_g", &s.reactor_mass_g),
            ("bottle_mass_g", &s.bottle_mass_g),
            ("pressure_bar", &s.pressure_bar),
            ("offgas_pct", &s.offgas_pct),
        ] {
            v.nonneg_owned(format!("sensors.{name}.tau_s"), sc.tau_s);
            v.nonneg_owned(format!("sensors.{name}.noise_sd"), sc.noise_sd);
            v.finite_owned(format!("sensors.{name}.drift_per_day"), sc.drift_per_day);
            v.nonneg_owned(format!("sensors.{name}.resolution"), sc.resolution);
            v.range_owned(
                format!("sensors.{name}.dropout_prob"),
                sc.dropout_prob,
                0.0,
                1.0,
            );
        }
        let sp = &self.spectrometer;
        v.finite("spectrometer.start_cm1", sp.start_cm1);
        v.finite("spectrometer.stop_cm1", sp.stop_cm1);
        if sp.stop_cm1 <= sp.start_cm1 {
            v.fail("spectrometer.stop_cm1 must be > spectrometer.start_cm1".into());
        }
        if !(2..=100_000).contains(&sp.n_points) {
            v.fail(format!(
                "spectrometer.n_points must be in 2..=100000, got {}",
                sp.n_points
            ));
        }
        v.pos("spectrometer.period_s", sp.period_s);
        v.nonneg("spectrometer.noise_sd", sp.noise_sd);
        v.nonneg("spectrometer.baseline_drift_sd", sp.baseline_drift_sd);
        v.range("spectrometer.spike_rate", sp.spike_rate, 0.0, 100.0);
        v.nonneg("spectrometer.spike_height", sp.spike_height);
        for (k, fs) in self.faults.iter().enumerate() {
            if let Err(e) = crate::sim::faults::FaultKind::parse(&fs.kind)
                .and_then(|kind| kind.check_target(&fs.target))
            {
                v.fail(format!("faults[{k}]: {e}"));
            }
            v.nonneg_owned(format!("faults[{k}].at_s"), fs.at_s);
            if let Some(d) = fs.duration_s {
                v.nonneg_owned(format!("faults[{k}].duration_s"), d);
            }
            if let Some(x) = fs.value {
                v.finite_owned(format!("faults[{k}].value"), x);
            }
        }
        v.finish()
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<String>,
}

impl Validator {
    fn fail(&mut self, msg: String) {
        self.errors.push(msg);
    }
    fn finite_owned(&mut self, name: String, x: f64) {
        if !x.is_finite() {
            self.fail(format!("{name} must be finite, got {x}"));
        }
    }
    fn finite(&mut self, name: &str, x: f64) {
        self.finite_owned(name.to_string(), x);
    }
    fn pos_owned(&mut self, name: String, x: f64) {
        if !(x.is_finite() && x > 0.0) {
            self.fail(format!("{name} must be > 0, got {x}"));
        }
    }
    fn pos(&mut self, name: &str, x: f64) {
        self.pos_owned(name.to_string(), x);
    }
    fn nonneg_owned(&mut self, name: String, x: f64) {
        if !(x.is_finite() && x >= 0.0) {
            self.fail(format!("{name} must be >= 0, got {x}"));
        }
    }
    fn nonneg(&mut self, name: &str, x: f64) {
        self.nonneg_owned(name.to_string(), x);
    }
    fn range_owned(&mut self, name: String, x: f64, lo: f64, hi: f64) {
        if !(x.is_finite() && x >= lo && x <= hi) {
            self.fail(format!("{name} must be in [{lo}, {hi}], got {x}"));
        }
    }
    fn range(&mut self, name: &str, x: f64, lo: f64, hi: f64) {
        self.range_owned(name.to_string(), x, lo, hi);
    }
    fn temps(&mut self, name: &str, t: &CardinalTemps) {
        if !(t.t_min_c < t.t_opt_c && t.t_opt_c < t.t_max_c) {
            self.fail(format!(
                "{name}: need t_min_c < t_opt_c < t_max_c, got {} / {} / {}",
                t.t_min_c, t.t_opt_c, t.t_max_c
            ));
        }
    }
    fn phs(&mut self, name: &str, p: &CardinalPh) {
        if !(p.ph_min < p.ph_opt && p.ph_opt < p.ph_max) {
            self.fail(format!(
                "{name}: need ph_min < ph_opt < ph_max, got {} / {} / {}",
                p.ph_min, p.ph_opt, p.ph_max
            ));
        }
    }
    fn finish(self) -> CoreResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(CoreError::InvalidConfig(self.errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_roundtrip_json() {
        for c in [PlantConfig::ecoli_2l(), PlantConfig::cho_2l()] {
            c.validate().unwrap();
            let back = PlantConfig::from_json(&c.to_json()).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = PlantConfig::ecoli_2l();
        c.gas.kla_factor = -1.0;
        c.actuators.feed.density_g_ml = 0.0;
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("gas.kla_factor"), "{msg}");
        assert!(msg.contains("actuators.feed.density_g_ml"), "{msg}");
        let e = PlantConfig::from_json(r#"{"gas": {"kla_fator": 1.0}}"#).unwrap_err();
        assert!(e.to_string().contains("kla_fator"), "{e}");
    }

    #[test]
    fn partial_json_takes_defaults() {
        let c = PlantConfig::from_json(r#"{"seed": 5, "vessel": {"volume0_l": 1.5}}"#).unwrap();
        assert_eq!(c.seed, 5);
        assert_eq!(c.vessel.volume0_l, 1.5);
        assert_eq!(c.gas, GasConfig::default());
    }
}
