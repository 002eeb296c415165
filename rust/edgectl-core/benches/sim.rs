//! Simulator speed: a 14-day CHO fed-batch and a 40-hour E. coli fed-batch at 1 s outer steps.
//!
//! Prints simulated-time / wall-time ratios once, then lets criterion time the same runs
//! (10 samples each). `cargo bench -p edgectl-core --bench sim`.

use criterion::{criterion_group, Criterion};
use edgectl_core::sim::{Plant, PlantConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

const CHO_S: f64 = 14.0 * 86_400.0;
const ECOLI_S: f64 = 40.0 * 3600.0;

/// CHO scenario B with a continuous feed (0.02 mL/min) and the default gassing.
fn cho_run() -> Plant {
    let mut p = Plant::new(PlantConfig::cho_2l()).unwrap();
    p.write("feed_rate_ml_min", 0.02).unwrap();
    p.write("heater_duty", 0.12).unwrap();
    p.advance(CHO_S, 1.0).unwrap();
    p
}

/// E. coli scenario A: high stirring, a constant glucose feed (0.15 mL/min) from t = 0.
fn ecoli_run() -> Plant {
    let mut p = Plant::new(PlantConfig::ecoli_2l()).unwrap();
    p.write("stirrer_rpm_sp", 1200.0).unwrap();
    p.write("air_flow_sccm_sp", 4000.0).unwrap();
    p.write("feed_rate_ml_min", 0.15).unwrap();
    p.write("heater_duty", 0.12).unwrap();
    p.advance(ECOLI_S, 1.0).unwrap();
    p
}

fn print_ratios() {
    for (name, sim_s, f) in [
        ("cho_14d_1s", CHO_S, cho_run as fn() -> Plant),
        ("ecoli_40h_1s", ECOLI_S, ecoli_run as fn() -> Plant),
    ] {
        let t = Instant::now();
        black_box(f());
        let wall = t.elapsed().as_secs_f64();
        println!(
            "{name}: {sim_s:.0} s simulated in {wall:.3} s wall -> ratio {:.0}x real time",
            sim_s / wall
        );
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("cho_14d_1s", |b| b.iter(|| black_box(cho_run())));
    g.bench_function("ecoli_40h_1s", |b| b.iter(|| black_box(ecoli_run())));
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    print_ratios();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
