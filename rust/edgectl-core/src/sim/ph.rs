//! pH from the strong-ion-difference charge balance (reference §6).
//!
//! SID + h = Kw/h + C_T·(K1·h + 2·K1·K2)/(h² + K1·h + K1·K2) + Σ_i A_i·Ka_i/(h + Ka_i)
//!
//! where the A_i are the weak acids and buffers (each monoprotic around its pKa: phosphate,
//! HEPES, acetate, lactate). The right side falls and the left rises with h, so the root is
//! unique; it is found by Newton's method on ln h inside a bisection bracket (pH 1–14).
//! Concentrations in mM at the interface, mol/L inside.

/// A weak monoprotic acid or buffer: total concentration (mM) and Ka (mol/L).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeakAcid {
    /// Total concentration, mM.
    pub total_mm: f64,
    /// Dissociation constant, mol/L.
    pub ka: f64,
}

/// Carbonate and water constants (mol/L).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Carbonate {
    /// First carbonic constant K1′, mol/L.
    pub k1: f64,
    /// Second carbonic constant K2′, mol/L.
    pub k2: f64,
    /// Ion product of water, (mol/L)².
    pub kw: f64,
}

impl Carbonate {
    /// From pK1′, pK2′ and pKw.
    pub fn from_pk(pk1: f64, pk2: f64, pkw: f64) -> Self {
        Carbonate {
            k1: 10f64.powf(-pk1),
            k2: 10f64.powf(-pk2),
            kw: 10f64.powf(-pkw),
        }
    }

    /// Fraction of C_T present as dissolved CO2 at [H+] = h: h²/(h² + K1·h + K1·K2).
    pub fn co2_fraction(&self, h: f64) -> f64 {
        h * h / (h * h + self.k1 * h + self.k1 * self.k2)
    }

    /// Anion charge of the weak species and OH⁻ at h, mol/L (the right side above), and its
    /// derivative in h. Carbon is given as a total C_T or, for a liquid open to a gas, as a
    /// fixed dissolved CO2 concentration.
    fn anions(&self, h: f64, carbon: CarbonSpec, acids: &[WeakAcid]) -> (f64, f64) {
        let (k1, k2) = (self.k1, self.k2);
        let mut val = self.kw / h;
        let mut der = -self.kw / (h * h);
        match carbon {
            CarbonSpec::Total(ct) => {
                let d = h * h + k1 * h + k1 * k2;
                let n = k1 * h + 2.0 * k1 * k2;
                val += ct * n / d;
                der += ct * (k1 * d - n * (2.0 * h + k1)) / (d * d);
            }
            CarbonSpec::Dissolved(co2) => {
                // HCO3⁻ + 2·CO3²⁻ = CO2·(K1/h + 2·K1·K2/h²)
                val += co2 * (k1 / h + 2.0 * k1 * k2 / (h * h));
                der -= co2 * (k1 / (h * h) + 4.0 * k1 * k2 / (h * h * h));
            }
        }
        for a in acids {
            let t = a.total_mm * 1e-3;
            val += t * a.ka / (h + a.ka);
            der -= t * a.ka / ((h + a.ka) * (h + a.ka));
        }
        (val, der)
    }

    /// SID (mM) that gives pH `ph` with C_T (mM) and `acids`.
    pub fn sid_for_ph(&self, ph: f64, ct_mm: f64, acids: &[WeakAcid]) -> f64 {
        let h = 10f64.powf(-ph);
        let (a, _) = self.anions(h, CarbonSpec::Total(ct_mm * 1e-3), acids);
        (a - h) * 1e3
    }

    /// Solve the charge balance for [H+] (mol/L) with total inorganic carbon C_T (mM),
    /// starting from `h_guess`.
    pub fn solve_h(&self, sid_mm: f64, ct_mm: f64, acids: &[WeakAcid], h_guess: f64) -> f64 {
        self.solve(
            sid_mm,
            CarbonSpec::Total(ct_mm.max(0.0) * 1e-3),
            acids,
            h_guess,
        )
    }

    /// Solve for [H+] (mol/L) in equilibrium with dissolved CO2 `co2_mm` (open system).
    pub fn solve_h_open(&self, sid_mm: f64, co2_mm: f64, acids: &[WeakAcid]) -> f64 {
        self.solve(
            sid_mm,
            CarbonSpec::Dissolved(co2_mm.max(0.0) * 1e-3),
            acids,
            1e-7,
        )
    }

    fn solve(&self, sid_mm: f64, carbon: CarbonSpec, acids: &[WeakAcid], h_guess: f64) -> f64 {
        let sid = sid_mm * 1e-3;
        // g(x) = SID + h − anions(h), increasing in x = ln h.
        let g = |x: f64| {
            let h = x.exp();
            let (a, da) = self.anions(h, carbon, acids);
            (sid + h - a, h * (1.0 - da))
        };
        let (mut lo, mut hi) = ((1e-14f64).ln(), (1e-1f64).ln());
        let mut x = if h_guess.is_finite() && h_guess > 0.0 {
            h_guess.ln().clamp(lo, hi)
        } else {
            (1e-7f64).ln()
        };
        for _ in 0..200 {
            let (fx, dfx) = g(x);
            if fx > 0.0 {
                hi = x;
            } else {
                lo = x;
            }
            let mut xn = if dfx > 0.0 { x - fx / dfx } else { f64::NAN };
            if !(xn > lo && xn < hi) {
                xn = 0.5 * (lo + hi);
            }
            if (xn - x).abs() < 1e-13 || hi - lo < 1e-13 {
                return xn.exp();
            }
            x = xn;
        }
        x.exp()
    }
}

/// How inorganic carbon enters the charge balance.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CarbonSpec {
    /// Total inorganic carbon, mol/L.
    Total(f64),
    /// Dissolved CO2 fixed by the gas phase, mol/L.
    Dissolved(f64),
}

/// pH from [H+] in mol/L.
pub fn ph_of(h: f64) -> f64 {
    -h.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicarbonate_under_five_percent_co2() {
        // Reference §6: 24 mM NaHCO3 at 5 % CO2 (35.7 mmHg, H = 0.0307 mM/mmHg) → pH 7.44;
        // 10 % → 7.14. C_T is the dissolved CO2 plus the bicarbonate it is in equilibrium with.
        let c = Carbonate::from_pk(6.1, 10.1, 13.6);
        for (pco2, expect) in [(35.7, 7.44), (71.3, 7.14)] {
            let co2 = 0.0307 * pco2;
            let h = c.solve_h_open(24.0, co2, &[]);
            let ph = ph_of(h);
            // The closed-system solve with the matching C_T gives the same root.
            let ct = co2 / c.co2_fraction(h);
            assert!((ph_of(c.solve_h(24.0, ct, &[], 1e-9)) - ph).abs() < 1e-9);
            assert!((ph - expect).abs() < 0.01, "{ph} vs {expect}");
        }
    }

    #[test]
    fn sid_for_ph_inverts_solve() {
        let c = Carbonate::from_pk(6.1, 10.1, 13.6);
        let acids = [
            WeakAcid {
                total_mm: 50.0,
                ka: 10f64.powf(-6.8),
            },
            WeakAcid {
                total_mm: 5.0,
                ka: 10f64.powf(-4.76),
            },
        ];
        for ph in [4.0, 6.0, 7.0, 7.4, 9.0, 11.0] {
            let sid = c.sid_for_ph(ph, 3.0, &acids);
            let h = c.solve_h(sid, 3.0, &acids, 1e-3);
            assert!((ph_of(h) - ph).abs() < 1e-9, "{ph}");
        }
    }

    #[test]
    fn more_sid_more_alkaline() {
        let c = Carbonate::from_pk(6.1, 10.1, 13.6);
        let acids = [WeakAcid {
            total_mm: 50.0,
            ka: 10f64.powf(-6.8),
        }];
        let mut last = 0.0;
        for sid in [-10.0, 0.0, 10.0, 20.0, 40.0, 60.0] {
            let ph = ph_of(c.solve_h(sid, 2.0, &acids, 1e-7));
            assert!(ph > last);
            last = ph;
        }
    }
}
