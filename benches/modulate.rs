//! Fused `x · sigmoid(g)` vs tract's separate Sigmoid and Mul passes.
//!
//! `cargo bench -p savl --bench modulate`:
//! - `op/*`: the modulation alone on a [48, 128, 128] feature map (fused one-pass op vs a
//!   sigmoid pass into a new tensor followed by a multiply pass);
//! - `model/*`: a lite-m-shaped synthetic model (48 ch, 10 body convs, 5 gates), 128² tile,
//!   with and without the load-time rewrite.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use savl_contract::testmodel::TestModel;
use tract_linalg::multithread::Executor;
use tract_linalg::routines::Func;

fn bench_op(c: &mut Criterion) {
    let n = 48 * 128 * 128;
    let x0: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 0.03).collect();
    let g: Vec<f32> = (0..n).map(|i| ((i % 89) as f32 - 44.0) * 0.05).collect();
    let sig = Func::Sigmoid.ew_f32().expect("sigmoid kernel");
    let mut grp = c.benchmark_group("modulate_op_48x128x128");
    grp.bench_function("fused", |b| {
        let mut x = x0.clone();
        b.iter(|| {
            x.copy_from_slice(&x0);
            let gate = savl::kernels::elementwise::Program::gate();
            savl::kernels::elementwise::run_in_place(
                &gate,
                &[&[], &g],
                0,
                &mut x,
                &Executor::SingleThread,
            )
            .unwrap();
        })
    });
    grp.bench_function("unfused", |b| {
        let mut x = x0.clone();
        b.iter(|| {
            x.copy_from_slice(&x0);
            // What tract runs without the rewrite: Sigmoid into a fresh tensor, then Mul.
            let mut s = g.clone();
            sig.run(&mut s).unwrap();
            for (xv, sv) in x.iter_mut().zip(&s) {
                *xv *= *sv;
            }
            std::hint::black_box(&s);
        })
    });
    grp.finish();
}

fn bench_model(c: &mut Criterion) {
    savl::tune_allocator();
    let bytes = TestModel {
        channels: 48,
        body: 10,
        dim: 16,
        ..Default::default()
    }
    .onnx_bytes();
    let img = image::RgbImage::from_fn(128, 128, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8])
    });
    let mut grp = c.benchmark_group("modulate_model_lite_m_128");
    grp.sample_size(10);
    for fused in [true, false] {
        let up = savl::Upscaler::builder()
            .model_bytes(bytes.clone())
            .fused_modulation(fused)
            .threads(1)
            .tile(128)
            .build()
            .expect("build");
        let id = if fused { "fused" } else { "unfused" };
        grp.bench_function(id, |b| b.iter(|| up.upscale(&img).expect("upscale")));
    }
    grp.finish();
}

criterion_group!(benches, bench_op, bench_model);
criterion_main!(benches);
