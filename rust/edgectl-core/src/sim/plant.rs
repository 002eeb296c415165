//! The plant: a fed-batch bench bioreactor tying biology, gas transfer, pH, heat, foam,
//! actuators, sensors, the spectrometer and faults together.
//!
//! Integration (reference §1): a fixed outer step `dt_s` chosen by the caller, split into equal
//! sub-steps no longer than `max_substep_s`. Within a sub-step:
//! 1. actuators follow their setpoints (exact first-order lags), pumps deliver from bottles;
//! 2. the biology (slow, hours) is integrated by RK4 on *amounts* in the vessel with the volume
//!    varying linearly, the dissolved O2 held; a step that would make any amount negative is
//!    retried as two half steps (down to 1/1024), so states stay non-negative;
//! 3. titrants enter through a first-order mixing lag;
//! 4. O2 and CO2 transfer (fast, seconds) use the exact exponential solution of their linear
//!    balances; pH is solved algebraically from the charge balance;
//! 5. the two thermal nodes are advanced by implicit Euler; foam by its exact solution.
//!
//! Sensors and the spectrometer sample once per outer step. Every cross-boundary flow (liquid
//! in and out, carbon in, carbon to the off-gas, carbon in samples and overflow) is counted in
//! a [`Ledger`], so mass balances can be checked over a whole run.

use crate::error::{check_dt, CoreError, CoreResult};
use crate::sim::actuators::{Mfc, Pump, Stirrer};
use crate::sim::cho::xing_rates;
use crate::sim::config::{BaseKind, EcoliModel, Organism, PlantConfig, SensorConfig, ThermalMode};
use crate::sim::ecoli::{
    anane_rates, ph_factor, temperature_factor, xu_rates, ACETATE_C_G_PER_G, ACETATE_G_PER_MOL,
    C_G_PER_MOL, O2_G_PER_MOL,
};
use crate::sim::faults::{self, Effects, Fault, FaultKind};
use crate::sim::gas::{self, GasMix, AIR_CO2, AIR_O2, ATM_BAR};
use crate::sim::ph::{ph_of, Carbonate, WeakAcid};
use crate::sim::rng::Rng;
use crate::sim::sensors::{Sensor, Signal};
use crate::sim::spectrometer::{Library, SpectrometerState};
use crate::sim::{foam, thermal};
use serde::{Deserialize, Serialize};

const NB: usize = 7;
const NA: usize = 3;
const MAX_SPLIT_DEPTH: u32 = 10;
const SNAPSHOT_MAGIC: &[u8; 8] = b"EDGESIM1";

/// Molar masses (g/mmol) used to express CHO metabolites in g/L.
const GLC_G_MMOL: f64 = 0.180_16;
const LAC_G_MMOL: f64 = 0.090_08;
const GLN_G_MMOL: f64 = 0.146_15;
const NH4_G_MMOL: f64 = 0.018_04;

/// Actuator names accepted by [`Plant::write`] (the plant contract, `edgectl/plant.py`).
pub const ACTUATORS: [&str; 12] = [
    "heater_duty",
    "cooling_duty",
    "stirrer_rpm_sp",
    "air_flow_sccm_sp",
    "o2_flow_sccm_sp",
    "co2_flow_sccm_sp",
    "n2_flow_sccm_sp",
    "feed_rate_ml_min",
    "base_rate_ml_min",
    "acid_rate_ml_min",
    "antifoam_rate_ml_min",
    "jacket_temp_sp_c",
];

/// Cumulative flows across the vessel boundary since t = 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Liquid delivered by each pump (feed, base, acid, antifoam), mL.
    pub pumped_ml: [f64; 4],
    /// Water evaporated, mL.
    pub evaporated_ml: f64,
    /// Broth removed by samples, mL.
    pub sampled_ml: f64,
    /// Broth lost through the overflow, mL.
    pub overflow_ml: f64,
    /// Carbon in the initial charge, mmol C.
    pub carbon_initial_mmol: f64,
    /// Carbon fed (feed substrates, carbonate base), mmol C.
    pub carbon_in_mmol: f64,
    /// Net CO2 carbon leaving with the gas (negative when CO2 is absorbed), mmol C.
    pub carbon_gas_out_mmol: f64,
    /// Carbon leaving in samples and overflow, mmol C.
    pub carbon_removed_mmol: f64,
    /// Carbon added by clamping a state at zero (should stay ~0), mmol C.
    pub carbon_clamped_mmol: f64,
    /// O2 consumed by the culture, mmol.
    pub o2_consumed_mmol: f64,
    /// CO2 produced by the culture, mmol.
    pub co2_produced_mmol: f64,
}

/// Instantaneous rates of the latest sub-step (for trends and checks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Sparger kLa of O2, 1/h.
    pub kla_h: f64,
    /// Sparger kLa of O2 after the gas-phase O2 balance (what the liquid sees), 1/h.
    pub kla_o2_h: f64,
    /// O2 uptake rate, mmol/L/h.
    pub our_mm_h: f64,
    /// CO2 evolution by the culture, mmol/L/h.
    pub cer_mm_h: f64,
    /// O2 transfer rate, mmol/L/h.
    pub otr_mm_h: f64,
    /// Specific growth rate, 1/h.
    pub mu_h: f64,
    /// O2 solubility under air at the head pressure, mM.
    pub o2_sat_mm: f64,
    /// Stirrer power dissipated, W.
    pub stirrer_power_w: f64,
    /// Metabolic heat, W.
    pub metabolic_heat_w: f64,
    /// Evaporation, g/h.
    pub evaporation_g_h: f64,
    /// Off-gas O2, %.
    pub offgas_o2_pct: f64,
    /// Off-gas CO2, %.
    pub offgas_co2_pct: f64,
}

struct Env {
    v0: f64,
    dvdt: f64,
    do_pct: f64,
    do_mm: f64,
    scale: f64,
    feed_l_h: f64,
}

/// The simulated bioreactor. Deterministic for a seed; [`Plant::snapshot`] captures everything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plant {
    cfg: PlantConfig,
    #[serde(skip)]
    lib: Library,
    #[serde(skip)]
    acids: Vec<WeakAcid>,
    t_s: f64,
    v_l: f64,
    bio: [f64; NB],
    acc: [f64; NA],
    c_o2_mm: f64,
    ct_mmol: f64,
    sid_mmol: f64,
    buf_mmol: Vec<f64>,
    pend_sid_mmol: f64,
    pend_ct_mmol: f64,
    h_mol_l: f64,
    t_liq_c: f64,
    t_heat_c: f64,
    foam_mm: f64,
    antifoam_mg: f64,
    stirrer: Stirrer,
    mfc: [Mfc; 4],
    pumps: [Pump; 4],
    heater_duty: f64,
    cooling_duty: f64,
    jacket_sp_c: f64,
    sensors: Vec<Sensor>,
    spectro: SpectrometerState,
    faults: Vec<Fault>,
    next_fault_id: u64,
    rng_sensors: Rng,
    rng_spectra: Rng,
    ledger: Ledger,
    diag: Diagnostics,
}

impl Plant {
    /// Build a plant at t = 0 from a validated configuration.
    pub fn new(cfg: PlantConfig) -> CoreResult<Plant> {
        cfg.validate()?;
        let v = cfg.vessel.volume0_l;
        let mut bio = [0.0; NB];
        match cfg.organism {
            Organism::Ecoli => {
                bio[0] = cfg.ecoli.x0_g_l * v;
                bio[1] = cfg.ecoli.s0_g_l * v;
                bio[2] = cfg.ecoli.a0_g_l * v;
            }
            Organism::Cho => {
                let c = &cfg.cho;
                bio = [
                    c.xv0_cells_l * v,
                    c.xd0_cells_l * v,
                    c.glc0_mm * v,
                    c.gln0_mm * v,
                    c.lac0_mm * v,
                    c.amm0_mm * v,
                    c.titer0_g_l * v,
                ];
            }
            Organism::None => {}
        }
        let a = &cfg.actuators;
        let i = &cfg.actuators.initial;
        let mfc = [i.air_sccm, i.o2_sccm, i.co2_sccm, i.n2_sccm].map(|f| Mfc {
            sp_sccm: f,
            flow_sccm: f,
        });
        let mut p = Plant {
            lib: Library::new(&cfg.spectrometer),
            acids: Vec::new(),
            t_s: 0.0,
            v_l: v,
            bio,
            acc: [0.0; NA],
            c_o2_mm: 0.0,
            ct_mmol: 0.0,
            sid_mmol: 0.0,
            buf_mmol: cfg.ph.buffers.iter().map(|b| b.total_mm * v).collect(),
            pend_sid_mmol: 0.0,
            pend_ct_mmol: 0.0,
            h_mol_l: 1e-7,
            t_liq_c: cfg.thermal.initial_temp_c,
            t_heat_c: cfg.thermal.initial_temp_c,
            foam_mm: 0.0,
            antifoam_mg: 0.0,
            stirrer: Stirrer {
                sp_rpm: i.stirrer_rpm.min(a.stirrer_max_rpm),
                rpm: i.stirrer_rpm.min(a.stirrer_max_rpm),
            },
            mfc,
            pumps: [
                Pump::new(&a.feed),
                Pump::new(&a.base),
                Pump::new(&a.acid),
                Pump::new(&a.antifoam),
            ],
            heater_duty: i.heater_duty,
            cooling_duty: i.cooling_duty,
            jacket_sp_c: i.jacket_temp_sp_c,
            sensors: Vec::new(),
            spectro: SpectrometerState::new(),
            faults: Vec::new(),
            next_fault_id: 1,
            rng_sensors: Rng::new(cfg.seed, 1),
            rng_spectra: Rng::new(cfg.seed, 2),
            ledger: Ledger::default(),
            diag: Diagnostics::default(),
            cfg,
        };
        p.init_chemistry();
        for fs in p.cfg.faults.clone() {
            let kind = FaultKind::parse(&fs.kind)?;
            p.push_fault(kind, fs.target, fs.value, fs.at_s, fs.duration_s);
        }
        p.ledger.carbon_initial_mmol = p.carbon_mmol();
        let fx = faults::effects(&p.faults, 0.0);
        p.update_diag_gas(0.0, 0.0);
        let truths = p.truths(&fx);
        p.sensors = truths.iter().map(|&t| Sensor::new(t)).collect();
        p.acquire_spectrum(&fx);
        p.spectro.next_t_s = p.cfg.spectrometer.period_s;
        Ok(p)
    }

    fn p_abs_bar(&self, fx: &Effects) -> f64 {
        ATM_BAR + self.cfg.vessel.pressure_bar_g + fx.pressure_delta_bar
    }

    fn mix(&self) -> GasMix {
        let f = |i: usize| self.mfc[i].flow_sccm;
        GasMix::from_flows(f(0), f(1), f(2), f(3))
    }

    fn o2_sat_air_mm(&self, p_abs: f64) -> f64 {
        gas::o2_saturation_mm(&self.cfg.gas, AIR_O2, p_abs)
    }

    /// (k, C_eq) of the O2 supply and (k, C_eq) of CO2, 1/h and mM.
    fn transfer(&self, mix: &GasMix, p_abs: f64) -> ((f64, f64), (f64, f64), f64) {
        let g = &self.cfg.gas;
        let kla = gas::kla_sparged_h(
            g,
            &self.cfg.vessel,
            self.stirrer.rpm,
            mix.total_sccm,
            self.v_l,
        );
        let kla_o2 = gas::kla_supply_limited_h(
            kla,
            gas::o2_saturation_mm(g, 1.0, p_abs),
            self.v_l,
            mix.total_sccm,
        );
        let o2 = gas::combine(
            kla_o2,
            gas::o2_saturation_mm(g, mix.x_o2, p_abs),
            g.kla_surface_h,
            gas::o2_saturation_mm(g, AIR_O2, p_abs),
        );
        let co2 = gas::combine(
            kla * g.kla_co2_ratio,
            gas::co2_saturation_mm(g, mix.x_co2, p_abs, self.t_liq_c),
            g.kla_surface_h * g.kla_co2_ratio,
            gas::co2_saturation_mm(g, AIR_CO2, p_abs, self.t_liq_c),
        );
        (o2, co2, kla)
    }

    fn carbonate(&self) -> Carbonate {
        Carbonate::from_pk(self.cfg.ph.pk1, self.cfg.ph.pk2, self.cfg.ph.pkw)
    }

    fn fill_acids(&mut self) {
        let v = self.v_l;
        let ph = &self.cfg.ph;
        self.acids.clear();
        for (b, amt) in ph.buffers.iter().zip(&self.buf_mmol) {
            self.acids.push(WeakAcid {
                total_mm: amt / v,
                ka: 10f64.powf(-b.pka),
            });
        }
        let (org_mm, pka) = match self.cfg.organism {
            Organism::Ecoli => (self.bio[2] / v / ACETATE_G_PER_MOL * 1000.0, ph.pka_acetate),
            Organism::Cho => (self.bio[4] / v, ph.pka_lactate),
            Organism::None => (0.0, ph.pka_acetate),
        };
        self.acids.push(WeakAcid {
            total_mm: org_mm,
            ka: 10f64.powf(-pka),
        });
    }

    fn init_chemistry(&mut self) {
        let fx = faults::effects(&[], 0.0);
        let p_abs = self.p_abs_bar(&fx);
        let mix = self.mix();
        let ((ko, ceq_o), (_, ceq_c), _) = self.transfer(&mix, p_abs);
        let sat = self.o2_sat_air_mm(p_abs);
        self.c_o2_mm = match self.cfg.gas.initial_do_pct {
            Some(d) => d / 100.0 * sat,
            None if ko > 0.0 => ceq_o,
            None => sat,
        };
        self.fill_acids();
        let carb = self.carbonate();
        let v = self.v_l;
        let ph_cfg = self.cfg.ph.clone();
        let ct_of = |h: f64| match self.cfg.gas.initial_ct_mm {
            Some(ct) => ct,
            None => ceq_c / carb.co2_fraction(h),
        };
        match ph_cfg.initial_ph {
            Some(ph) => {
                let h = 10f64.powf(-ph);
                let ct = ct_of(h);
                self.ct_mmol = ct * v;
                self.sid_mmol = carb.sid_for_ph(ph, ct, &self.acids) * v;
                self.h_mol_l = h;
            }
            None => {
                let h = match self.cfg.gas.initial_ct_mm {
                    Some(ct) => carb.solve_h(ph_cfg.sid_mm, ct, &self.acids, 1e-7),
                    None => carb.solve_h_open(ph_cfg.sid_mm, ceq_c, &self.acids),
                };
                self.h_mol_l = h;
                self.ct_mmol = ct_of(h) * v;
                self.sid_mmol = ph_cfg.sid_mm * v;
            }
        }
    }

    fn push_fault(
        &mut self,
        kind: FaultKind,
        target: String,
        value: Option<f64>,
        start_s: f64,
        duration_s: Option<f64>,
    ) -> u64 {
        let id = self.next_fault_id;
        self.next_fault_id += 1;
        self.faults.push(Fault {
            id,
            kind,
            target,
            value: value.unwrap_or(kind.default_value()),
            start_s,
            end_s: duration_s.map_or(f64::INFINITY, |d| start_s + d),
        });
        id
    }

    // ---------------------------------------------------------------- biology

    /// Carbon content (mmol C per unit amount) of the organic states.
    fn carbon_per_amount(&self) -> [f64; NB] {
        match self.cfg.organism {
            Organism::Ecoli => match self.cfg.ecoli.model {
                EcoliModel::Anane2017 => {
                    let p = &self.cfg.ecoli.anane;
                    let k = 1000.0 / C_G_PER_MOL;
                    [
                        p.cx * k,
                        p.cs * k,
                        ACETATE_C_G_PER_G * k,
                        0.0,
                        0.0,
                        0.0,
                        0.0,
                    ]
                }
                EcoliModel::Xu1999 => {
                    let p = &self.cfg.ecoli.xu;
                    [p.cx * 1e3, p.cs * 1e3, p.ca * 1e3, 0.0, 0.0, 0.0, 0.0]
                }
            },
            // Xing's model is not carbon balanced; glucose 6, glutamine 5, lactate 3 C per mol.
            Organism::Cho => [0.0, 0.0, 6.0, 5.0, 3.0, 0.0, 0.0],
            Organism::None => [0.0; NB],
        }
    }

    /// Total carbon in the vessel (organic states + inorganic carbon), mmol C.
    pub fn carbon_mmol(&self) -> f64 {
        let c = self.carbon_per_amount();
        self.bio.iter().zip(c).map(|(a, k)| a * k).sum::<f64>() + self.ct_mmol + self.pend_ct_mmol
    }

    fn deriv(&self, amt: &[f64; NB], t_h: f64, env: &Env) -> ([f64; NB], [f64; NA], f64) {
        let v = (env.v0 + env.dvdt * t_h).max(1e-9);
        let mut d = [0.0; NB];
        let mut a = [0.0; NA];
        let mut mu = 0.0;
        match self.cfg.organism {
            Organism::Ecoli => {
                let e = &self.cfg.ecoli;
                let (s, ac) = (amt[1] / v, amt[2] / v);
                let r = match e.model {
                    EcoliModel::Anane2017 => anane_rates(&e.anane, s, ac, env.do_pct, env.scale),
                    EcoliModel::Xu1999 => xu_rates(&e.xu, s, ac, env.do_mm, env.scale),
                };
                let x = amt[0];
                d[0] = r.mu * x;
                d[1] = env.feed_l_h * e.feed_glucose_g_l - r.qs * x;
                d[2] = (r.q_ac_prod - r.q_ac_cons) * x;
                a[0] = r.qo * x * 1000.0 / O2_G_PER_MOL;
                a[1] = r.qco2_mmol * x;
                a[2] = e.nitrogen_mmol_per_g * r.mu.max(0.0) * x;
                mu = r.mu;
            }
            Organism::Cho => {
                let c = &self.cfg.cho;
                let r = xing_rates(
                    &c.params,
                    amt[2] / v,
                    amt[3] / v,
                    amt[4] / v,
                    amt[5] / v,
                    env.do_mm,
                    env.scale,
                );
                let xv = amt[0];
                d[0] = (r.mu - r.mu_d) * xv;
                d[1] = r.mu_d * xv;
                d[2] = env.feed_l_h * c.feed_glc_mm - r.q_glc * xv;
                d[3] = env.feed_l_h * c.feed_gln_mm - r.q_gln * xv - c.params.dgln_h * amt[3];
                d[4] = r.q_lac * xv;
                d[5] = r.q_amm * xv + c.params.dgln_h * amt[3];
                d[6] = r.q_mab * xv;
                a[0] = r.q_o2 * xv;
                a[1] = r.q_co2 * xv;
                mu = r.mu;
            }
            Organism::None => {}
        }
        (d, a, mu)
    }

    fn rk4(&self, amt: &[f64; NB], t0: f64, th: f64, env: &Env) -> ([f64; NB], [f64; NA], f64) {
        let add = |x: &[f64; NB], k: &[f64; NB], f: f64| {
            let mut y = *x;
            for i in 0..NB {
                y[i] += f * k[i];
            }
            y
        };
        let (k1, a1, mu) = self.deriv(amt, t0, env);
        let (k2, a2, _) = self.deriv(&add(amt, &k1, th / 2.0), t0 + th / 2.0, env);
        let (k3, a3, _) = self.deriv(&add(amt, &k2, th / 2.0), t0 + th / 2.0, env);
        let (k4, a4, _) = self.deriv(&add(amt, &k3, th), t0 + th, env);
        let mut y = *amt;
        let mut acc = [0.0; NA];
        for i in 0..NB {
            y[i] += th / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        for i in 0..NA {
            acc[i] = th / 6.0 * (a1[i] + 2.0 * a2[i] + 2.0 * a3[i] + a4[i]);
        }
        (y, acc, mu)
    }

    /// RK4 over [t0, t0 + th] that halves the step while any amount would go negative.
    fn integrate(
        &mut self,
        amt: [f64; NB],
        t0: f64,
        th: f64,
        env: &Env,
        depth: u32,
    ) -> ([f64; NB], [f64; NA], f64) {
        let (mut y, acc, mu) = self.rk4(&amt, t0, th, env);
        for v in &mut y {
            // Amounts below 1e-200 are far below any balance's resolution; flushing them keeps
            // the arithmetic out of slow subnormal numbers.
            if v.abs() < 1e-200 {
                *v = 0.0;
            }
        }
        if y.iter().all(|&v| v >= 0.0) {
            return (y, acc, mu);
        }
        if depth >= MAX_SPLIT_DEPTH {
            let c = self.carbon_per_amount();
            let mut y = y;
            for i in 0..NB {
                if y[i] < 0.0 {
                    self.ledger.carbon_clamped_mmol += -y[i] * c[i];
                    y[i] = 0.0;
                }
            }
            return (y, acc, mu);
        }
        let (y1, acc1, mu) = self.integrate(amt, t0, th / 2.0, env, depth + 1);
        let (y2, acc2, _) = self.integrate(y1, t0 + th / 2.0, th / 2.0, env, depth + 1);
        let mut a = [0.0; NA];
        for i in 0..NA {
            a[i] = acc1[i] + acc2[i];
        }
        (y2, a, mu)
    }

    fn biomass_g_l(&self) -> f64 {
        match self.cfg.organism {
            Organism::Ecoli => self.bio[0] / self.v_l,
            Organism::Cho => self.bio[0] / self.v_l * self.cfg.cho.cell_dry_mass_pg * 1e-12,
            Organism::None => 0.0,
        }
    }

    fn growth_scale(&self, fx: &Effects) -> f64 {
        let (t, p) = match self.cfg.organism {
            Organism::Ecoli => (&self.cfg.ecoli.temperature, &self.cfg.ecoli.ph_response),
            _ => (&self.cfg.cho.temperature, &self.cfg.cho.ph_response),
        };
        temperature_factor(t, self.t_liq_c) * ph_factor(p, ph_of(self.h_mol_l)) * fx.growth_factor
    }

    // ---------------------------------------------------------------- stepping

    fn substep(&mut self, h: f64, fx: &Effects) {
        let th = h / 3600.0;
        let power = !fx.power_lost;
        let cfg = &self.cfg;
        let a = &cfg.actuators;
        // 1. Actuators.
        let stir_target = if power && !fx.stirrer_failed {
            self.stirrer.sp_rpm
        } else {
            0.0
        };
        self.stirrer
            .step(stir_target, a.stirrer_max_rpm, a.stirrer_tau_s, h);
        let mfc_cfg = [&a.air, &a.o2, &a.co2, &a.n2];
        for (i, m) in self.mfc.iter_mut().enumerate() {
            let target = if !power || fx.aeration_lost {
                0.0
            } else {
                fx.mfc_stuck[i].unwrap_or(m.sp_sccm)
            };
            m.step(mfc_cfg[i], target, h);
        }
        let pump_cfg = [&a.feed, &a.base, &a.acid, &a.antifoam];
        let mut vol_ml = [0.0; 4];
        for i in 0..4 {
            vol_ml[i] = self.pumps[i].run(
                pump_cfg[i],
                h,
                power && !fx.pump_stalled[i],
                !fx.pump_blocked[i],
            );
            self.ledger.pumped_ml[i] += vol_ml[i];
        }
        let mix = self.mix();
        let density = cfg.vessel.density_kg_l; // g/mL
        let evap_g_h = thermal::evaporation_g_h(
            mix.total_sccm,
            self.t_liq_c,
            cfg.thermal.condenser_efficiency,
        );
        let in_ml: f64 = vol_ml.iter().sum();
        let v0 = self.v_l;
        let evap_ml = (evap_g_h * th / density).min(0.5 * (v0 * 1000.0 + in_ml));
        self.ledger.evaporated_ml += evap_ml;
        let v1 = v0 + (in_ml - evap_ml) / 1000.0;

        // 2. Biology on amounts.
        let p_abs = self.p_abs_bar(fx);
        let sat_air = self.o2_sat_air_mm(p_abs);
        let env = Env {
            v0,
            dvdt: (v1 - v0) / th,
            do_pct: 100.0 * self.c_o2_mm / sat_air,
            do_mm: self.c_o2_mm,
            scale: self.growth_scale(fx),
            feed_l_h: vol_ml[0] / 1000.0 / th,
        };
        let (bio, dacc, mu) = self.integrate(self.bio, 0.0, th, &env, 0);
        self.bio = bio;
        for (acc, d) in self.acc.iter_mut().zip(dacc) {
            *acc += d;
        }
        self.ledger.o2_consumed_mmol += dacc[0];
        self.ledger.co2_produced_mmol += dacc[1];
        let cfg = &self.cfg;
        self.ledger.carbon_in_mmol += match cfg.organism {
            Organism::Ecoli => {
                vol_ml[0] / 1000.0 * cfg.ecoli.feed_glucose_g_l * self.carbon_per_amount()[1]
            }
            Organism::Cho => {
                vol_ml[0] / 1000.0 * (6.0 * cfg.cho.feed_glc_mm + 5.0 * cfg.cho.feed_gln_mm)
            }
            Organism::None => 0.0,
        };
        self.v_l = v1;

        // 3. Titrants through the mixing lag; ammonium uptake is an SID sink.
        let cfg = &self.cfg;
        let base_mmol = vol_ml[1] * cfg.ph.base_conc_m;
        let (sid_per, ct_per) = match cfg.ph.base_kind {
            BaseKind::Naoh | BaseKind::Nh4oh => (1.0, 0.0),
            BaseKind::Nahco3 => (1.0, 1.0),
            BaseKind::Na2co3 => (2.0, 1.0),
        };
        self.pend_sid_mmol += base_mmol * sid_per - vol_ml[2] * cfg.ph.acid_conc_m;
        self.pend_ct_mmol += base_mmol * ct_per;
        self.ledger.carbon_in_mmol += base_mmol * ct_per;
        let f = 1.0 - (-h / cfg.ph.mixing_tau_s).exp();
        self.sid_mmol += self.pend_sid_mmol * f;
        self.pend_sid_mmol *= 1.0 - f;
        self.ct_mmol += self.pend_ct_mmol * f;
        self.pend_ct_mmol *= 1.0 - f;
        if cfg.organism == Organism::Ecoli {
            self.sid_mmol -= dacc[2];
        }
        self.antifoam_mg = (self.antifoam_mg + vol_ml[3] / 1000.0 * cfg.foam.antifoam_conc_ppm)
            * foam::antifoam_decay(&cfg.foam, h);

        // 4. Gas transfer (exact exponential solutions), then pH.
        let ((k_o, ceq_o), (k_c, ceq_c), kla) = self.transfer(&mix, p_abs);
        let our = dacc[0] / th / v1;
        let dilution = in_ml / 1000.0 / th / v1;
        let c_old = self.c_o2_mm;
        self.c_o2_mm = gas::o2_step(c_old, k_o, ceq_o, our, dilution, th);
        self.ct_mmol += dacc[1];
        let carb = self.carbonate();
        let frac = carb.co2_fraction(self.h_mol_l);
        let ct_conc = self.ct_mmol / v1;
        let ct_new = if frac > 0.0 && k_c > 0.0 {
            gas::relax(ct_conc, ceq_c / frac, k_c * frac, th)
        } else {
            ct_conc
        };
        let gas_out = self.ct_mmol - ct_new * v1;
        self.ct_mmol = ct_new * v1;
        self.ledger.carbon_gas_out_mmol += gas_out;
        self.fill_acids();
        self.h_mol_l = carb.solve_h(
            self.sid_mmol / v1,
            self.ct_mmol / v1,
            &self.acids,
            self.h_mol_l,
        );

        // 5. Heat.
        let cfg = &self.cfg;
        let t = &cfg.thermal;
        let p_stir = gas::stirrer_power_w(&cfg.vessel, self.stirrer.rpm)
            * if mix.total_sccm > 0.0 {
                cfg.vessel.gassed_power_ratio
            } else {
                1.0
            };
        let q_met = t.met_heat_kj_per_mmol_o2 * 1000.0 * dacc[0] / h;
        let q_evap = t.latent_heat_j_g * evap_ml * density / h;
        let heater = match fx.heater_stuck {
            Some(d) => d,
            None if power => self.heater_duty,
            None => 0.0,
        };
        let jacket = (t.mode == ThermalMode::Jacket && power).then_some(self.jacket_sp_c);
        let u = thermal::ThermalInputs {
            heater_w: t.heater_power_w * heater,
            cooling: if power && !fx.cooling_failed {
                self.cooling_duty
            } else {
                0.0
            },
            other_w: p_stir + q_met - q_evap,
            feed_w_k: in_ml * density * t.cp_liquid_j_g_k / h,
            c_liquid_j_k: v1 * 1000.0 * density * t.cp_liquid_j_g_k + t.glass_heat_capacity_j_k,
            jacket_sp_c: jacket,
        };
        (self.t_liq_c, self.t_heat_c) = thermal::step(t, self.t_liq_c, self.t_heat_c, &u, h);

        // 6. Foam.
        let vvm = mix.total_sccm / 1000.0 / v1;
        let x = self.biomass_g_l();
        self.foam_mm = foam::step(
            &self.cfg.foam,
            self.foam_mm,
            vvm,
            x,
            self.antifoam_mg / v1,
            h,
        );

        // 7. Overflow.
        if self.v_l > self.cfg.vessel.max_volume_l {
            let frac = (self.v_l - self.cfg.vessel.max_volume_l) / self.v_l;
            let ml = self.remove_fraction(frac);
            self.ledger.overflow_ml += ml;
        }
        self.t_s += h;
        let cer = dacc[1] / th / v1;
        self.diag = Diagnostics {
            kla_h: kla,
            kla_o2_h: k_o - self.cfg.gas.kla_surface_h,
            our_mm_h: our,
            cer_mm_h: cer,
            otr_mm_h: k_o * (ceq_o - 0.5 * (c_old + self.c_o2_mm)),
            mu_h: mu,
            o2_sat_mm: sat_air,
            stirrer_power_w: p_stir,
            metabolic_heat_w: q_met,
            evaporation_g_h: evap_g_h,
            ..Diagnostics::default()
        };
        self.update_diag_gas(our * v1, gas_out / th);
    }

    fn update_diag_gas(&mut self, otr_mmol_h: f64, ctr_mmol_h: f64) {
        let (o2, co2) = gas::offgas_pct(&self.mix(), otr_mmol_h, ctr_mmol_h);
        self.diag.offgas_o2_pct = o2;
        self.diag.offgas_co2_pct = co2;
        if self.diag.o2_sat_mm == 0.0 {
            self.diag.o2_sat_mm = self.cfg.gas.o2_sat_air_mm;
        }
    }

    /// Remove a fraction of the liquid with everything dissolved in it; returns mL removed.
    fn remove_fraction(&mut self, frac: f64) -> f64 {
        let frac = frac.clamp(0.0, 1.0);
        let c_before = self.carbon_mmol();
        let keep = 1.0 - frac;
        for v in &mut self.bio {
            *v *= keep;
        }
        for v in &mut self.buf_mmol {
            *v *= keep;
        }
        self.ct_mmol *= keep;
        self.sid_mmol *= keep;
        self.pend_ct_mmol *= keep;
        self.pend_sid_mmol *= keep;
        self.antifoam_mg *= keep;
        let ml = self.v_l * 1000.0 * frac;
        self.v_l *= keep;
        self.ledger.carbon_removed_mmol += c_before - self.carbon_mmol();
        ml
    }

    fn truths(&self, fx: &Effects) -> [f64; Signal::COUNT] {
        let p_abs = self.p_abs_bar(fx);
        let q = |i: usize, m: &crate::sim::config::MfcConfig| {
            let f = self.mfc[i].flow_sccm;
            if m.resolution_sccm > 0.0 {
                crate::sim::sensors::quantise(f, m.resolution_sccm)
            } else {
                f
            }
        };
        let a = &self.cfg.actuators;
        [
            self.t_liq_c,
            self.t_heat_c,
            ph_of(self.h_mol_l),
            100.0 * self.c_o2_mm / self.o2_sat_air_mm(p_abs),
            self.stirrer.rpm,
            q(0, &a.air),
            q(1, &a.o2),
            q(2, &a.co2),
            q(3, &a.n2),
            self.v_l * 1000.0 * self.cfg.vessel.density_kg_l + self.cfg.vessel.tare_g,
            self.pumps[0].bottle_g,
            self.pumps[1].bottle_g,
            self.pumps[2].bottle_g,
            self.pumps[3].bottle_g,
            if self.foam_mm >= self.cfg.foam.probe_height_mm {
                1.0
            } else {
                0.0
            },
            p_abs - ATM_BAR,
            self.diag.offgas_o2_pct,
            self.diag.offgas_co2_pct,
        ]
    }

    fn sensor_cfg(&self, s: Signal) -> SensorConfig {
        let c = &self.cfg.sensors;
        match s {
            Signal::TempC => c.temp_c.clone(),
            Signal::JacketTempC => c.jacket_temp_c.clone(),
            Signal::Ph => c.ph.clone(),
            Signal::DoPct => c.do_pct.clone(),
            Signal::StirrerRpm => c.stirrer_rpm.clone(),
            Signal::AirFlowSccm | Signal::O2FlowSccm | Signal::Co2FlowSccm | Signal::N2FlowSccm => {
                c.gas_flow_sccm.clone()
            }
            Signal::ReactorMassG => c.reactor_mass_g.clone(),
            Signal::FeedMassG | Signal::BaseMassG | Signal::AcidMassG | Signal::AntifoamMassG => {
                c.bottle_mass_g.clone()
            }
            Signal::Foam => SensorConfig::default(),
            Signal::PressureBar => c.pressure_bar.clone(),
            Signal::OffgasO2Pct | Signal::OffgasCo2Pct => c.offgas_pct.clone(),
        }
    }

    fn spectral_concentrations(&self) -> [f64; 8] {
        let v = self.v_l;
        match self.cfg.organism {
            Organism::Ecoli => [
                1.0,
                self.bio[1] / v,
                0.0,
                self.bio[2] / v,
                0.0,
                0.0,
                self.bio[0] / v,
                0.0,
            ],
            Organism::Cho => [
                1.0,
                self.bio[2] / v * GLC_G_MMOL,
                self.bio[4] / v * LAC_G_MMOL,
                0.0,
                self.bio[3] / v * GLN_G_MMOL,
                self.bio[5] / v * NH4_G_MMOL,
                self.biomass_g_l(),
                self.bio[6] / v,
            ],
            Organism::None => [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    }

    fn acquire_spectrum(&mut self, fx: &Effects) {
        if !self.cfg.spectrometer.enabled {
            return;
        }
        let conc = self.spectral_concentrations();
        let dropout = fx.spectrometer_dropout || fx.power_lost;
        self.spectro.acquire_with(
            &self.cfg.spectrometer,
            &self.lib,
            &conc,
            dropout,
            fx.spectral_interferent,
            self.t_s,
            &mut self.rng_spectra,
        );
    }

    /// Advance the plant by one outer step of `dt_s` seconds (split into sub-steps).
    pub fn step(&mut self, dt_s: f64) -> CoreResult<()> {
        check_dt(dt_s)?;
        let fx = faults::effects(&self.faults, self.t_s);
        let n = (dt_s / self.cfg.max_substep_s).ceil().max(1.0) as usize;
        let h = dt_s / n as f64;
        for _ in 0..n {
            self.substep(h, &fx);
        }
        let fx_end = faults::effects(&self.faults, self.t_s);
        let truths = self.truths(&fx_end);
        for (i, s) in Signal::ALL.iter().enumerate() {
            let cfg = self.sensor_cfg(*s);
            let mut sf = fx_end.sensors[i];
            sf.dropout |= fx_end.power_lost;
            self.sensors[i].update(&cfg, truths[i], dt_s, &sf, &mut self.rng_sensors);
        }
        if self.cfg.spectrometer.enabled && self.t_s + 1e-9 >= self.spectro.next_t_s {
            self.acquire_spectrum(&fx_end);
            self.spectro.next_t_s += self.cfg.spectrometer.period_s;
            if self.spectro.next_t_s <= self.t_s {
                self.spectro.next_t_s = self.t_s + self.cfg.spectrometer.period_s;
            }
        }
        Ok(())
    }

    /// Advance by `seconds` in outer steps of `dt_s` (the last step is shortened to fit).
    pub fn advance(&mut self, seconds: f64, dt_s: f64) -> CoreResult<()> {
        check_dt(dt_s)?;
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(CoreError::InvalidParameter {
                name: "seconds",
                rule: "finite and >= 0",
                value: seconds,
            });
        }
        let n = (seconds / dt_s + 1e-9).floor();
        for _ in 0..n as u64 {
            self.step(dt_s)?;
        }
        let rest = seconds - n * dt_s;
        if rest > 1e-9 * dt_s {
            self.step(rest)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- I/O

    /// Simulated time, s.
    pub fn time_s(&self) -> f64 {
        self.t_s
    }

    /// The configuration the plant runs with.
    pub fn config(&self) -> &PlantConfig {
        &self.cfg
    }

    /// Latest reading of a sensor signal (noise, lag and faults included; NaN on dropout).
    pub fn read(&self, s: Signal) -> f64 {
        self.sensors[s as usize].reading
    }

    /// Read a signal or, for an actuator name, its last commanded value.
    pub fn read_name(&self, name: &str) -> Option<f64> {
        if let Some(s) = Signal::parse(name) {
            return Some(self.read(s));
        }
        self.actuator(name)
    }

    /// Last commanded value of an actuator.
    pub fn actuator(&self, name: &str) -> Option<f64> {
        Some(match name {
            "heater_duty" => self.heater_duty,
            "cooling_duty" => self.cooling_duty,
            "stirrer_rpm_sp" => self.stirrer.sp_rpm,
            "air_flow_sccm_sp" => self.mfc[0].sp_sccm,
            "o2_flow_sccm_sp" => self.mfc[1].sp_sccm,
            "co2_flow_sccm_sp" => self.mfc[2].sp_sccm,
            "n2_flow_sccm_sp" => self.mfc[3].sp_sccm,
            "feed_rate_ml_min" => self.pumps[0].rate_sp_ml_min,
            "base_rate_ml_min" => self.pumps[1].rate_sp_ml_min,
            "acid_rate_ml_min" => self.pumps[2].rate_sp_ml_min,
            "antifoam_rate_ml_min" => self.pumps[3].rate_sp_ml_min,
            "jacket_temp_sp_c" => self.jacket_sp_c,
            _ => return None,
        })
    }

    /// Set an actuator. Values are clamped to the device range (duty 0–1, pump 0–max rate,
    /// MFC 0–full scale, stirrer 0–max rpm); non-finite values and unknown names are errors.
    pub fn write(&mut self, name: &str, value: f64) -> CoreResult<()> {
        if !value.is_finite() {
            return Err(CoreError::NonFinite {
                name: "actuator value",
                value,
            });
        }
        let a = &self.cfg.actuators;
        let pos = value.max(0.0);
        match name {
            "heater_duty" => self.heater_duty = value.clamp(0.0, 1.0),
            "cooling_duty" => self.cooling_duty = value.clamp(0.0, 1.0),
            "stirrer_rpm_sp" => self.stirrer.sp_rpm = pos.min(a.stirrer_max_rpm),
            "air_flow_sccm_sp" => self.mfc[0].sp_sccm = pos.min(a.air.max_sccm),
            "o2_flow_sccm_sp" => self.mfc[1].sp_sccm = pos.min(a.o2.max_sccm),
            "co2_flow_sccm_sp" => self.mfc[2].sp_sccm = pos.min(a.co2.max_sccm),
            "n2_flow_sccm_sp" => self.mfc[3].sp_sccm = pos.min(a.n2.max_sccm),
            "feed_rate_ml_min" => self.pumps[0].rate_sp_ml_min = pos.min(a.feed.max_rate_ml_min),
            "base_rate_ml_min" => self.pumps[1].rate_sp_ml_min = pos.min(a.base.max_rate_ml_min),
            "acid_rate_ml_min" => self.pumps[2].rate_sp_ml_min = pos.min(a.acid.max_rate_ml_min),
            "antifoam_rate_ml_min" => {
                self.pumps[3].rate_sp_ml_min = pos.min(a.antifoam.max_rate_ml_min)
            }
            "jacket_temp_sp_c" => self.jacket_sp_c = value.clamp(0.0, 99.0),
            _ => {
                return Err(CoreError::InvalidConfig(format!(
                    "unknown actuator {name:?}; expected one of {}",
                    ACTUATORS.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// True process states (no sensor effects), names with units.
    pub fn state(&self) -> Vec<(&'static str, f64)> {
        let v = self.v_l;
        let fx = faults::effects(&self.faults, self.t_s);
        let p_abs = self.p_abs_bar(&fx);
        let mut out = vec![
            ("time_s", self.t_s),
            ("volume_l", v),
            ("temp_c", self.t_liq_c),
            ("heater_temp_c", self.t_heat_c),
            ("ph", ph_of(self.h_mol_l)),
            ("do_pct", 100.0 * self.c_o2_mm / self.o2_sat_air_mm(p_abs)),
            ("do_mm", self.c_o2_mm),
            ("ct_mm", self.ct_mmol / v),
            (
                "co2_aq_mm",
                self.ct_mmol / v * self.carbonate().co2_fraction(self.h_mol_l),
            ),
            ("sid_mm", self.sid_mmol / v),
            ("kla_h", self.diag.kla_h),
            ("kla_o2_h", self.diag.kla_o2_h),
            ("our_mm_h", self.diag.our_mm_h),
            ("cer_mm_h", self.diag.cer_mm_h),
            ("otr_mm_h", self.diag.otr_mm_h),
            ("mu_h", self.diag.mu_h),
            ("o2_sat_mm", self.diag.o2_sat_mm),
            ("stirrer_rpm", self.stirrer.rpm),
            ("stirrer_power_w", self.diag.stirrer_power_w),
            ("metabolic_heat_w", self.diag.metabolic_heat_w),
            ("evaporation_g_h", self.diag.evaporation_g_h),
            ("foam_mm", self.foam_mm),
            ("antifoam_ppm", self.antifoam_mg / v),
            ("biomass_g_l", self.biomass_g_l()),
            ("pressure_bar", p_abs - ATM_BAR),
            ("offgas_o2_pct", self.diag.offgas_o2_pct),
            ("offgas_co2_pct", self.diag.offgas_co2_pct),
        ];
        match self.cfg.organism {
            Organism::Ecoli => {
                out.push(("glucose_g_l", self.bio[1] / v));
                out.push(("acetate_g_l", self.bio[2] / v));
            }
            Organism::Cho => {
                let xv = self.bio[0] / v;
                let xd = self.bio[1] / v;
                out.extend([
                    ("xv_cells_l", xv),
                    ("xd_cells_l", xd),
                    (
                        "viability",
                        if xv + xd > 0.0 { xv / (xv + xd) } else { 0.0 },
                    ),
                    ("glucose_mm", self.bio[2] / v),
                    ("glutamine_mm", self.bio[3] / v),
                    ("lactate_mm", self.bio[4] / v),
                    ("ammonia_mm", self.bio[5] / v),
                    ("titer_g_l", self.bio[6] / v),
                    ("glucose_g_l", self.bio[2] / v * GLC_G_MMOL),
                    ("lactate_g_l", self.bio[4] / v * LAC_G_MMOL),
                ]);
            }
            Organism::None => {}
        }
        out
    }

    /// Latest reading of every signal, in [`Signal::ALL`] order.
    pub fn readings(&self) -> Vec<(&'static str, f64)> {
        Signal::ALL
            .iter()
            .map(|s| (s.name(), self.read(*s)))
            .collect()
    }

    /// Cumulative boundary flows (see [`Ledger`]) and the current carbon content.
    pub fn balances(&self) -> Vec<(&'static str, f64)> {
        let l = &self.ledger;
        vec![
            ("feed_ml", l.pumped_ml[0]),
            ("base_ml", l.pumped_ml[1]),
            ("acid_ml", l.pumped_ml[2]),
            ("antifoam_ml", l.pumped_ml[3]),
            ("evaporated_ml", l.evaporated_ml),
            ("sampled_ml", l.sampled_ml),
            ("overflow_ml", l.overflow_ml),
            ("carbon_initial_mmol", l.carbon_initial_mmol),
            ("carbon_in_mmol", l.carbon_in_mmol),
            ("carbon_gas_out_mmol", l.carbon_gas_out_mmol),
            ("carbon_removed_mmol", l.carbon_removed_mmol),
            ("carbon_clamped_mmol", l.carbon_clamped_mmol),
            ("carbon_now_mmol", self.carbon_mmol()),
            ("o2_consumed_mmol", l.o2_consumed_mmol),
            ("co2_produced_mmol", l.co2_produced_mmol),
        ]
    }

    /// The ledger of boundary flows.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Spectrometer axis, cm⁻¹.
    pub fn spectrum_axis(&self) -> &[f64] {
        &self.lib.axis
    }

    /// Latest spectrum (empty when the spectrometer is disabled).
    pub fn spectrum(&self) -> &[f64] {
        &self.spectro.last
    }

    /// Simulated time at which the latest spectrum was acquired, s (NaN if none).
    pub fn spectrum_time_s(&self) -> f64 {
        self.spectro.last_t_s
    }

    /// Take a sample of `volume_ml` for at-line analysis: returns the true states at this
    /// moment and removes the liquid (counted in the ledger).
    pub fn take_sample(&mut self, volume_ml: f64) -> CoreResult<Vec<(&'static str, f64)>> {
        if !(volume_ml.is_finite() && volume_ml >= 0.0 && volume_ml < self.v_l * 1000.0 * 0.5) {
            return Err(CoreError::InvalidParameter {
                name: "volume_ml",
                rule: "finite, >= 0 and below half the liquid volume",
                value: volume_ml,
            });
        }
        let st = self.state();
        let ml = self.remove_fraction(volume_ml / (self.v_l * 1000.0));
        self.ledger.sampled_ml += ml;
        Ok(st)
    }

    /// Inject a fault of `kind` (name as in [`FaultKind::ALL`]) on `target` starting now (or
    /// at `start_s`), for `duration_s` (None = until cleared). Returns its id.
    pub fn inject_fault(
        &mut self,
        kind: &str,
        target: &str,
        value: Option<f64>,
        start_s: Option<f64>,
        duration_s: Option<f64>,
    ) -> CoreResult<u64> {
        let k = FaultKind::parse(kind)?;
        k.check_target(target)?;
        if let Some(v) = value {
            if !v.is_finite() {
                return Err(CoreError::NonFinite {
                    name: "fault value",
                    value: v,
                });
            }
        }
        let start = start_s.unwrap_or(self.t_s);
        if !(start.is_finite() && start >= 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "start_s",
                rule: "finite and >= 0",
                value: start,
            });
        }
        if let Some(d) = duration_s {
            if d.is_nan() || d < 0.0 {
                return Err(CoreError::InvalidParameter {
                    name: "duration_s",
                    rule: ">= 0",
                    value: d,
                });
            }
        }
        Ok(self.push_fault(k, target.to_string(), value, start, duration_s))
    }

    /// End fault `id` now (a scheduled fault that has not started is removed). False if unknown.
    pub fn clear_fault(&mut self, id: u64) -> bool {
        let t = self.t_s;
        let mut found = false;
        for f in self.faults.iter_mut().filter(|f| f.id == id) {
            f.end_s = f.end_s.min(t);
            found = true;
        }
        found
    }

    /// End every fault now.
    pub fn clear_faults(&mut self) {
        let t = self.t_s;
        for f in &mut self.faults {
            f.end_s = f.end_s.min(t);
        }
    }

    /// All faults, past, active and scheduled.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// The whole plant state as bytes (bincode, with a magic header); [`Plant::restore`]
    /// rebuilds an identical plant that continues bit for bit.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = SNAPSHOT_MAGIC.to_vec();
        // Serialising plain data into a Vec cannot fail.
        out.extend(bincode::serialize(self).unwrap_or_default());
        out
    }

    /// Rebuild a plant from [`Plant::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> CoreResult<Plant> {
        if bytes.len() < SNAPSHOT_MAGIC.len() || &bytes[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
            return Err(CoreError::ModelFormat(
                "not a plant snapshot (bad magic header)".into(),
            ));
        }
        let mut p: Plant = bincode::deserialize(&bytes[SNAPSHOT_MAGIC.len()..])
            .map_err(|e| CoreError::ModelFormat(format!("plant snapshot: {e}")))?;
        p.cfg.validate()?;
        if p.sensors.len() != Signal::COUNT || p.buf_mmol.len() != p.cfg.ph.buffers.len() {
            return Err(CoreError::ModelFormat(
                "plant snapshot: inconsistent state sizes".into(),
            ));
        }
        p.lib = Library::new(&p.cfg.spectrometer);
        p.fill_acids();
        Ok(p)
    }
}
