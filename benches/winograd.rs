//! Winograd 3×3 conv vs tract's own conv (LazyIm2col + matmul), each followed by a LeakyRelu
//! (tract fuses it into the matmul store, Winograd into its output transform), on a 128×128
//! NCHW feature map, concrete shapes, DirectSpatialConv off as in the runtime; one thread, and
//! two on tract's executor (`*_2threads` groups).
//!
//! `cargo bench --profile dev -p savl --bench winograd` (groups
//! `conv3x3_{48x48,64x64}_128[_2threads]`; functions `tract`, `winograd_f2`, `winograd_f4`).

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use savl::kernels::winograd::WinogradTile;
use savl::rewrites::winograd::rewrite_convs;
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::knobs::KnobScope;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::nn::{leaky_relu, DataFormat};
use tract_onnx::tract_core::runtime::RunOptions;

const SIDE: usize = 128;

/// Source → Conv(3×3, pad 1, bias) → LeakyRelu(0.1), C → K channels at SIDE×SIDE.
fn conv_model(c: usize, k: usize) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact([1, c, SIDE, SIDE]))?;
    let kernel: Vec<f32> = (0..k * c * 9)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.2)
        .collect();
    let bias: Vec<f32> = (0..k).map(|i| (i as f32 - 20.0) * 0.01).collect();
    let kernel = m.add_const("kernel", tensor1(&kernel).into_shape(&[k, c, 3, 3])?)?;
    let bias = m.add_const("bias", tensor1(&bias))?;
    let pool = PoolSpec::new(
        DataFormat::NCHW,
        tvec![3, 3],
        PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
        None,
        None,
        c,
        k,
    );
    let conv = Conv {
        pool_spec: pool,
        kernel_fmt: KernelFormat::OIHW,
        group: 1,
        q_params: None,
    };
    let y = m.wire_node("conv", conv, &[x, kernel, bias])?;
    let y = m.wire_node("act", leaky_relu(0.1), &y)?;
    m.select_output_outlets(&y)?;
    Ok(m)
}

/// The runtime's plan: concrete shapes, DirectSpatialConv off, and with `threads > 1` tract's
/// multithread executor (which the Winograd op also runs its blocks on).
fn plan(model: TypedModel, threads: usize) -> TractResult<Arc<TypedSimplePlan>> {
    let knob = KnobScope::new([("TRACT_DISABLE_DIRECT_SPATIAL", "1")])?;
    let opts = RunOptions {
        executor: (threads > 1).then(|| Executor::multithread(threads)),
        ..Default::default()
    };
    knob.enter(|| model.into_optimized())?
        .into_runnable_with_options(&opts)
}

fn bench_conv(cr: &mut Criterion) {
    savl::tune_allocator();
    for (ch, threads) in [(48usize, 1usize), (64, 1), (48, 2), (64, 2)] {
        let x: Tensor = tensor1(
            &(0..ch * SIDE * SIDE)
                .map(|i| ((i % 251) as f32 / 251.0 - 0.5) * 4.0)
                .collect::<Vec<_>>(),
        )
        .into_shape(&[1, ch, SIDE, SIDE])
        .expect("shape");
        let suffix = if threads > 1 {
            format!("_{threads}threads")
        } else {
            String::new()
        };
        let mut grp = cr.benchmark_group(format!("conv3x3_{ch}x{ch}_{SIDE}{suffix}"));
        grp.sample_size(20);
        grp.throughput(Throughput::Elements((SIDE * SIDE) as u64));
        let variants = [
            ("tract", None),
            ("winograd_f2", Some(WinogradTile::F2)),
            ("winograd_f4", Some(WinogradTile::F4)),
        ];
        for (name, tile) in variants {
            let mut model = conv_model(ch, ch).expect("model");
            if let Some(tile) = tile {
                assert_eq!(rewrite_convs(&mut model, tile).expect("rewrite"), 1);
            }
            let plan = plan(model, threads).expect("plan");
            let mut state = TypedSimpleState::new(&plan).expect("state");
            grp.bench_function(name, |b| {
                b.iter(|| state.run(tvec!(x.clone().into_tvalue())).expect("run"))
            });
        }
        grp.finish();
    }
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
