//! Criterion benchmarks of the soft-sensor hot paths (throughput in spectra/s):
//! preprocess + predict of one 1047-point spectrum (SG 15/2 d1 + SNV on 446 points, 4 LV),
//! batch prediction of 1000 spectra, and a 10-component PLS fit on 300 × 1000.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgectl_core::spectra::{
    EdgeMode, FitOptions, PlsAlgorithm, PlsModel, PredictWorkspace, SoftSensor, Step, Target,
};
use ndarray::Array2;
use std::hint::black_box;

fn rng(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// Synthetic mid-IR-like spectra on a 1047-point axis 428–1833 cm⁻¹.
fn spectra(n: usize, p: usize, seed: u64) -> (Vec<f64>, Array2<f64>, Array2<f64>) {
    let axis: Vec<f64> = (0..p)
        .map(|i| 428.0 + 1405.0 * i as f64 / (p - 1) as f64)
        .collect();
    let mut r = rng(seed);
    let band = |c: f64, w: f64| -> Vec<f64> {
        axis.iter()
            .map(|v| (-((v - c) / w).powi(2)).exp())
            .collect()
    };
    let bands = [
        band(1030.0, 20.0),
        band(1080.0, 25.0),
        band(1150.0, 30.0),
        band(1400.0, 40.0),
    ];
    let mut x = Array2::zeros((n, p));
    let mut y = Array2::zeros((n, 1));
    for i in 0..n {
        let c: Vec<f64> = (0..4).map(|_| r() + 0.5).collect();
        for j in 0..p {
            x[[i, j]] =
                0.5 + c.iter().zip(&bands).map(|(ci, b)| ci * b[j]).sum::<f64>() + 0.002 * r();
        }
        y[[i, 0]] = 40.0 * c[0];
    }
    (axis, x, y)
}

fn bench(c: &mut Criterion) {
    let (axis, x, y) = spectra(40, 1047, 1);
    let steps = vec![
        Step::Region {
            windows_cm1: vec![[950.0, 1550.0]],
        },
        Step::SavitzkyGolay {
            window: 15,
            order: 2,
            deriv: 1,
            delta: 1.0,
            mode: EdgeMode::Interp,
        },
        Step::Snv { ddof: 1 },
    ];
    let opts = FitOptions {
        n_components: 4,
        algorithm: PlsAlgorithm::Nipals,
        targets: vec![Target {
            name: "glucose".into(),
            unit: "g/L".into(),
        }],
        confidence: 0.95,
        created_at: String::new(),
        description: String::new(),
    };
    let sensor = SoftSensor::fit(&axis, &steps, x.view(), y.view(), opts, None).unwrap();
    let one = x.row(3).to_vec();
    let mut ws = PredictWorkspace::default();
    let mut out = [0.0];
    let mut g = c.benchmark_group("softsensor");
    g.throughput(Throughput::Elements(1));
    g.bench_function("preprocess_predict_1047", |b| {
        b.iter(|| {
            sensor
                .predict_values(black_box(&one), &mut ws, &mut out)
                .unwrap()
        })
    });
    let (_, batch, _) = spectra(1000, 1047, 2);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("predict_batch_1000", |b| {
        b.iter(|| sensor.predict_batch(black_box(batch.view())).unwrap())
    });
    let pre = sensor.pipeline().transform_batch(batch.view()).unwrap();
    let (n, p) = pre.dim();
    let flat: Vec<f64> = pre.iter().copied().collect();
    let mut outb = vec![0.0; n];
    g.bench_function("pls_predict_1000_preprocessed", |b| {
        b.iter(|| {
            sensor
                .pls()
                .predict_rows_into(black_box(&flat), n, p, 4, &mut outb)
                .unwrap()
        })
    });
    g.finish();

    let (_, xf, yf) = spectra(300, 1000, 3);
    let mut g = c.benchmark_group("pls_fit");
    g.sample_size(20);
    g.bench_function("nipals_10lv_300x1000", |b| {
        b.iter(|| PlsModel::fit(black_box(xf.view()), yf.view(), 10, PlsAlgorithm::Nipals).unwrap())
    });
    g.bench_function("simpls_10lv_300x1000", |b| {
        b.iter(|| PlsModel::fit(black_box(xf.view()), yf.view(), 10, PlsAlgorithm::Simpls).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
