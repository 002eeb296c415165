//! Criterion benchmarks of the control core: one PID update, a loop bank of 16 blocks.

use criterion::{criterion_group, criterion_main, Criterion};
use edgectl_core::control::{
    Block, CascadeStage, DoCascade, LoopBank, Pid, PidSettings, SplitRange, SplitRangeSettings,
};
use std::hint::black_box;

fn pid() -> Pid {
    let mut p = Pid::new(PidSettings {
        k: 2.0,
        ti_s: 60.0,
        td_s: 5.0,
        ..PidSettings::default()
    })
    .unwrap();
    p.set_setpoint(37.0).unwrap();
    p
}

fn bench_pid(c: &mut Criterion) {
    let mut p = pid();
    let mut y = 36.0;
    c.bench_function("pid_update", |b| {
        b.iter(|| {
            y = if y > 36.5 { 36.0 } else { y + 0.001 };
            black_box(p.update(black_box(y), black_box(0.01)).unwrap())
        })
    });
}

fn bench_bank(c: &mut Criterion) {
    let mut bank = LoopBank::new();
    for k in 0..14 {
        bank.add(&format!("pid{k}"), Block::Pid(pid())).unwrap();
    }
    bank.add(
        "ph",
        Block::SplitPid(
            pid(),
            SplitRange::new(SplitRangeSettings::default()).unwrap(),
        ),
    )
    .unwrap();
    let stages = vec![
        CascadeStage {
            min: 200.0,
            max: 800.0,
        },
        CascadeStage { min: 0.5, max: 2.0 },
        CascadeStage {
            min: 0.0,
            max: 60.0,
        },
    ];
    bank.add(
        "do",
        Block::Cascade(pid(), DoCascade::new(stages, 60.0).unwrap()),
    )
    .unwrap();
    let ys = [36.2; 16];
    let mut out = vec![0.0; bank.n_outputs()];
    c.bench_function("loop_bank_16_step", |b| {
        b.iter(|| {
            bank.step(black_box(&ys), black_box(0.1), &mut out).unwrap();
            black_box(out[0])
        })
    });
}

criterion_group!(benches, bench_pid, bench_bank);
criterion_main!(benches);
