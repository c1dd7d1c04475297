//! Ad-hoc timings (ignored by default): `cargo test -p savl-train --test model_timing -- --ignored --nocapture`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use savl_train::nn::conv::{conv2d, conv2d_stock};

#[path = "../benches/support/mod.rs"]
mod support;
use support::{conv_case, step_batch};

/// User + system CPU seconds of this process so far (from /proc/self/stat, 100 Hz ticks).
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Median wall milliseconds of `reps` calls, and the mean CPU milliseconds per call.
fn med_cpu(mut f: impl FnMut(), reps: usize) -> (f64, f64) {
    let c0 = cpu_s();
    let m = med(&mut f, reps);
    (m, (cpu_s() - c0) * 1e3 / reps as f64)
}

fn med(mut f: impl FnMut(), reps: usize) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[reps / 2]
}

#[test]
#[ignore]
fn conv_timings() {
    let (_, x, w, r) = conv_case();
    println!("rayon threads {}", rayon::current_num_threads());
    type ConvFn = fn(&Tensor, &Tensor, usize) -> candle_core::Result<Tensor>;
    for (name, f) in [
        ("fast", conv2d as ConvFn),
        ("stock", conv2d_stock as ConvFn),
    ] {
        let (fwd, fwd_cpu) = med_cpu(|| drop(f(&x, &w, 1).unwrap()), 5);
        let (fb, fb_cpu) = med_cpu(
            || {
                let y = f(&x, &w, 1).unwrap();
                drop((y * &r).unwrap().sum_all().unwrap().backward().unwrap())
            },
            5,
        );
        println!(
            "{name}: forward {fwd:.1} ms (cpu {fwd_cpu:.0} ms), forward+backward {fb:.1} ms (cpu {fb_cpu:.0} ms)"
        );
    }
}

#[test]
#[ignore]
fn step_timings() {
    use savl_train::nn::{Ablation, Config};
    use savl_train::train::{TrainConfig, Trainer};
    let (n, h) = (16, 48);
    let batch = step_batch(n, h);
    let abl: Vec<Ablation> = match std::env::var("SAVL_ABLATIONS") {
        Ok(v) => v.split(',').map(|a| a.parse().unwrap()).collect(),
        Err(_) => vec![Ablation::Full, Ablation::NoGuide],
    };
    for ab in abl {
        let mut tc = TrainConfig::new(Config::lite().with_ablation(ab));
        tc.progress = false;
        let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
        let (ms, _cpu) = med_cpu(
            || {
                t.train_step(&batch).unwrap();
            },
            5,
        );
        let x = Tensor::from_slice(&batch.lr, (n, 3, h, h), &Device::Cpu).unwrap();
        let fwd = med(|| drop(t.model.forward(&x).unwrap()), 5);
        println!(
            "lite {ab}: step {ms:.0} ms ({:.1} samples/s), inference forward {fwd:.0} ms",
            n as f64 / ms * 1e3
        );
    }
}
