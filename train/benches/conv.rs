//! Conv forward + backward, candle's stock conv2d against the fast op of `savl_train::nn::conv`
//! (b16, 48 → 48 channels, 48×48, 3×3), one `lite` training step of the full SAVL model (batch
//! 16, 48² LR crops, AdamW) on a fixed in-memory batch, and one step of the SR net alone (the net
//! of the PyTorch anchor).
//!
//! `cargo bench -p savl-train --bench conv` (glibc malloc tuned as in the trainer's `main`;
//! `SAVL_BENCH_MALLOC_DEFAULT=1` keeps glibc's defaults, to measure what the tuning gives)

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use savl_train::nn::conv::{conv2d, conv2d_stock};
use savl_train::nn::{Config, SrNet};
use savl_train::train::{TrainConfig, Trainer};

mod support;
use support::{conv_case, rand, step_batch};

fn conv(c: &mut Criterion) {
    // As the trainer's main does (see `savl::tune_allocator`).
    if std::env::var_os("SAVL_BENCH_MALLOC_DEFAULT").is_none() {
        savl::tune_allocator();
    }
    let (b, x, w, r) = conv_case();
    let mut g = c.benchmark_group("conv3x3_b16_c48_48x48");
    g.sample_size(10);
    g.throughput(Throughput::Elements(b as u64));
    type ConvFn = fn(&Tensor, &Tensor, usize) -> candle_core::Result<Tensor>;
    for (name, f) in [
        ("stock", conv2d_stock as ConvFn),
        ("fast", conv2d as ConvFn),
    ] {
        g.bench_function(format!("{name}/forward"), |bn| {
            bn.iter(|| black_box(f(&x, &w, 1).unwrap()))
        });
        g.bench_function(format!("{name}/forward+backward"), |bn| {
            bn.iter(|| {
                let y = f(&x, &w, 1).unwrap();
                black_box((y * &r).unwrap().sum_all().unwrap().backward().unwrap())
            })
        });
    }
    g.finish();
}

fn step(c: &mut Criterion) {
    let mut tc = TrainConfig::new(Config::lite());
    tc.progress = false;
    let (n, h) = (16, 48);
    let batch = step_batch(n, h);
    let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
    let mut g = c.benchmark_group("lite_step_b16_48x48");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("adamw_step", |bn| {
        bn.iter(|| black_box(t.train_step(&batch).unwrap()))
    });
    g.finish();
}

/// The net of the PyTorch anchor (`tract-candle.md` §15): the `lite` SR net alone (head, 10 body
/// convs at 48 ch, 5 gates fed by a fixed guide map, tail, ×4 shuffle), L1 loss, candle-nn's
/// AdamW; batch 16 × 48² LR. The full SAVL step above adds the estimator and the LM decoder.
fn sr_net_step(c: &mut Criterion) {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
    let cfg = Config::lite();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, candle_core::DType::F32, &Device::Cpu);
    let net = SrNet::new(&cfg, vb).unwrap();
    let mut opt = AdamW::new(
        vm.all_vars(),
        ParamsAdamW {
            lr: 1e-4,
            ..Default::default()
        },
    )
    .unwrap();
    let n = 16;
    let y = rand(&[n, 3, 48, 48], 6).affine(0.5, 0.5).unwrap();
    let guide = rand(&[n, cfg.latent + 1, 48, 48], 7);
    let hr = rand(&[n, 3, 192, 192], 8).affine(0.5, 0.5).unwrap();
    let mut g = c.benchmark_group("lite_sr_net_step_b16_48x48");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("adamw_step", |bn| {
        bn.iter(|| {
            let sr = net.forward(&y, Some(&guide)).unwrap();
            let loss = (sr - &hr).unwrap().abs().unwrap().mean_all().unwrap();
            opt.backward_step(&loss).unwrap();
            black_box(loss)
        })
    });
    g.finish();
}

criterion_group!(benches, conv, step, sr_net_step);
criterion_main!(benches);
