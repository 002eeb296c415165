//! Property tests of the control core invariants (proptest).

use edgectl_core::control::*;
use proptest::prelude::*;

fn settings() -> impl Strategy<Value = PidSettings> {
    (
        (
            0.0..50.0f64,
            prop_oneof![Just(f64::INFINITY), 0.5..500.0f64],
            prop_oneof![Just(0.0), 0.1..60.0f64],
            prop_oneof![Just(f64::INFINITY), 2.0..20.0f64],
            0.0..1.0f64,
            0.0..1.0f64,
        ),
        (
            -100.0..50.0f64,
            1.0..150.0f64,
            prop_oneof![Just(f64::INFINITY), 0.1..50.0f64],
            prop_oneof![Just(0.0), 0.01..1.0f64],
            any::<bool>(),
            prop_oneof![
                Just(AntiWindup::BackCalculation),
                Just(AntiWindup::Conditional),
                Just(AntiWindup::Clamp)
            ],
            any::<bool>(),
        ),
    )
        .prop_map(
            |((k, ti, td, n, b, c), (lo, span, rate, db, off, aw, cooling))| PidSettings {
                k,
                ti_s: ti,
                td_s: td,
                n,
                b,
                c,
                output_min: lo,
                output_max: lo + span,
                rate_limit_per_s: rate,
                deadband: db,
                deadband_outputs_off: off,
                output_off: lo,
                anti_windup: aw,
                action: if cooling {
                    Action::Cooling
                } else {
                    Action::Heating
                },
                ..PidSettings::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn pid_output_stays_within_limits_and_rate(
        s in settings(),
        trace in prop::collection::vec((-200.0..200.0f64, 0.001..10.0f64, -50.0..50.0f64), 1..80),
        sp in -100.0..100.0f64,
    ) {
        let mut p = Pid::new(s.clone()).unwrap();
        p.set_setpoint(sp).unwrap();
        let mut prev: Option<f64> = None;
        for (y, dt, ff) in trace {
            let u = p.update_full(y, dt, ff, None).unwrap();
            prop_assert!(u.is_finite());
            prop_assert!(u >= s.output_min && u <= s.output_max, "u {} outside", u);
            if let Some(up) = prev {
                if s.rate_limit_per_s.is_finite() && !(s.deadband_outputs_off && s.deadband > 0.0) {
                    prop_assert!((u - up).abs() <= s.rate_limit_per_s * dt * (1.0 + 1e-9) + 1e-9);
                }
            }
            let c = p.components();
            prop_assert!((c.p + c.i + c.d + c.ff - c.v).abs() <= 1e-6 * (1.0 + c.v.abs()));
            prop_assert!(p.integral().is_finite());
            prev = Some(u);
        }
    }

    #[test]
    fn pid_rejects_bad_dt_without_state_change(
        s in settings(),
        bad_dt in prop_oneof![Just(0.0), Just(f64::NAN), Just(f64::INFINITY), -10.0..0.0f64],
        y in -100.0..100.0f64,
    ) {
        let mut p = Pid::new(s).unwrap();
        p.update(y, 1.0).unwrap();
        let before = format!("{p:?}");
        prop_assert!(p.update(y + 1.0, bad_dt).is_err());
        prop_assert!(p.update(f64::NAN, 1.0).is_err());
        prop_assert_eq!(format!("{p:?}"), before);
    }

    #[test]
    fn manual_to_auto_never_bumps(
        s in settings(),
        sp in -100.0..100.0f64,
        y in -100.0..100.0f64,
        u_man in -100.0..150.0f64,
    ) {
        let mut p = Pid::new(PidSettings { rate_limit_per_s: f64::INFINITY, deadband: 0.0, ..s }).unwrap();
        p.set_setpoint(sp).unwrap();
        p.set_mode(Mode::Manual);
        p.set_manual_output(u_man).unwrap();
        let u0 = p.update(y, 1.0).unwrap();
        p.set_mode(Mode::Auto);
        let u1 = p.update(y, 1.0).unwrap();
        prop_assert!((u1 - u0).abs() <= 1e-9 * (1.0 + u0.abs()), "{} -> {}", u0, u1);
    }

    #[test]
    fn split_range_never_both(
        db in 0.0..20.0f64,
        co in prop_oneof![Just(0.0), 0.5..5.0f64],
        us in prop::collection::vec(-150.0..150.0f64, 1..100),
    ) {
        let mut s = SplitRange::new(SplitRangeSettings { deadband: db, changeover_s: co, ..SplitRangeSettings::default() }).unwrap();
        for u in us {
            let (lo, hi) = s.update(u, 1.0).unwrap();
            prop_assert!(lo == 0.0 || hi == 0.0);
            prop_assert!((0.0..=100.0).contains(&lo) && (0.0..=100.0).contains(&hi));
            if co == 0.0 {
                prop_assert_eq!((lo, hi), s.map(u));
            }
        }
    }

    #[test]
    fn pulse_dose_equals_flow_times_on_time(
        duties in prop::collection::vec(0.0..1.0f64, 1..400),
        window in 2.0..20.0f64,
        rate in 0.1..50.0f64,
    ) {
        let mut p = PulseOutput::new(PulseSettings {
            window_s: window,
            quantum_s: 0.5,
            calibration: PumpCalibration::MlPerMin(rate),
            ..PulseSettings::default()
        }).unwrap();
        let mut on_s = 0.0;
        for d in duties {
            if p.update(d, 0.5).unwrap() {
                on_s += 0.5;
            }
        }
        prop_assert!((p.dose_ml() - rate / 60.0 * on_s).abs() < 1e-9);
    }

    #[test]
    fn pulse_mean_duty_converges(duty in 0.0..1.0f64, window in 1.0..10.0f64) {
        let mut p = PulseOutput::new(PulseSettings { window_s: window, quantum_s: 0.1, ..PulseSettings::default() }).unwrap();
        let n = (200.0 * window / 0.1) as usize;
        let mut on = 0usize;
        for _ in 0..n {
            if p.update(duty, 0.1).unwrap() { on += 1; }
        }
        let mean = on as f64 / n as f64;
        // On-time is quantised to whole ticks of 0.1 s, so a window that is not a whole
        // number of ticks can lose up to one tick per window: |error| <= quantum / window.
        let bound = 0.1 / window + 0.005;
        prop_assert!((mean - duty).abs() <= bound, "mean {} vs duty {} (bound {})", mean, duty, bound);
    }

    #[test]
    fn cascade_outputs_stay_in_stage_ranges(
        ys in prop::collection::vec(0.0..100.0f64, 1..300),
        hyst in 0.0..20.0f64,
    ) {
        let mut m = Pid::new(PidSettings { k: 3.0, ti_s: 20.0, ..PidSettings::default() }).unwrap();
        m.set_setpoint(40.0).unwrap();
        let stages = vec![
            CascadeStage { min: 200.0, max: 800.0 },
            CascadeStage { min: 0.5, max: 2.0 },
            CascadeStage { min: 0.0, max: 60.0 },
        ];
        let mut c = DoCascade::new(stages.clone(), hyst).unwrap();
        for y in ys {
            let out = c.update(&mut m, y, 1.0).unwrap().to_vec();
            for (o, st) in out.iter().zip(stages.iter()) {
                prop_assert!(*o >= st.min && *o <= st.max);
            }
            let a = c.active();
            for (j, (o, st)) in out.iter().zip(stages.iter()).enumerate() {
                if j < a { prop_assert_eq!(*o, st.max); }
                if j > a { prop_assert_eq!(*o, st.min); }
            }
        }
    }

    #[test]
    fn velocity_output_within_limits(
        s in settings(),
        trace in prop::collection::vec((-200.0..200.0f64, 0.001..10.0f64), 1..80),
    ) {
        let lo = s.output_min;
        let hi = s.output_max;
        let mut v = VelocityPid::new(s, 0.5 * (lo + hi)).unwrap();
        v.set_setpoint(10.0).unwrap();
        for (y, dt) in trace {
            let u = v.update(y, dt, 0.0).unwrap();
            prop_assert!(u >= lo && u <= hi);
        }
    }
}
