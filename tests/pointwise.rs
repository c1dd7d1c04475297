//! Pointwise (1×1) convs: the kernel against a direct sum written here, and the load-time
//! rewrite against tract's own EinSums on the shipped model.

mod support;

use savl::kernels::pointwise::pointwise;
use savl::kernels::with_portable_products;
use savl::rewrites::pointwise::rewrite_pointwise;
use savl::testing::{max_abs_diff, run_typed, smooth_input as input, Rng};
use support::{count_ops, decluttered};
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

/// `W · [x₁ ‖ x₂ ‖ …] + b`, accumulated in f64.
fn direct(weight: &[f32], bias: &[f32], k: usize, xs: &[Vec<f32>], pixels: usize) -> Vec<f32> {
    if pixels == 0 {
        return vec![];
    }
    let planes: Vec<&[f32]> = xs.iter().flat_map(|x| x.chunks_exact(pixels)).collect();
    let c = planes.len();
    let mut y = vec![0f32; k * pixels];
    for ko in 0..k {
        for p in 0..pixels {
            let mut acc = bias[ko] as f64;
            for (ci, plane) in planes.iter().enumerate() {
                acc += weight[ko * c + ci] as f64 * plane[p] as f64;
            }
            y[ko * pixels + p] = acc as f32;
        }
    }
    y
}

#[test]
fn matches_direct_sum_at_any_thread_count() {
    let mut rng = Rng(3);
    // (channels per input, K, pixels): the gate shape, one input, odd and tiny sizes, a size
    // spanning several blocks.
    let cases: &[(&[usize], usize, usize)] = &[
        (&[16, 1], 48, 37 * 42),
        (&[17], 13, 16 * 5 + 9),
        (&[4], 9, 64),
        (&[32], 16, 19 * 23),
        (&[3, 5, 1], 7, 1),
        (&[1], 1, 17),
        (&[16, 1], 48, 128 * 128 + 3),
        (&[2, 2], 3, 0),
    ];
    for &(cs, k, pixels) in cases {
        let c: usize = cs.iter().sum();
        let xs: Vec<Vec<f32>> = cs
            .iter()
            .map(|&ci| rng.vec(ci * pixels, -4.0, 4.0))
            .collect();
        let weight = rng.vec(k * c, -0.5, 0.5);
        let bias = rng.vec(k, -0.5, 0.5);
        let want = direct(&weight, &bias, k, &xs, pixels);
        let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        for portable in [false, true] {
            let run = |executor: &Executor| {
                let mut y = vec![f32::NAN; k * pixels];
                let mut call = || pointwise(&weight, &bias, k, cs, &refs, pixels, &mut y, executor);
                if portable {
                    with_portable_products(call)
                } else {
                    call()
                }
                y
            };
            let one = run(&Executor::SingleThread);
            let d = max_abs_diff(&one, &want);
            assert!(d <= 1e-5, "{cs:?}->{k} × {pixels}: max abs diff {d:e}");
            let three = run(&Executor::multithread(3));
            assert_eq!(
                one, three,
                "{cs:?}->{k}: the thread count changed the result"
            );
        }
    }
}

/// The model as savl loads it before this rewrite: decluttered, modulation fused, Winograd.
fn loaded(path: &std::path::Path) -> TypedModel {
    let mut m = decluttered(path);
    savl::rewrites::modulation::fuse_modulation(&mut m).expect("fuse");
    savl::rewrites::winograd::rewrite_convs(&mut m, savl::kernels::winograd::WinogradTile::F4)
        .expect("winograd");
    m
}

#[test]
fn rewritten_lite_model_matches_tract() {
    let path = support::model("savl-lite-x4.onnx");
    if !path.is_file() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let plain = loaded(&path);
    let mut pw = plain.clone();
    let n = rewrite_pointwise(&mut pw).expect("rewrite");
    // 5 gates ([μ ‖ s], 17 -> 48), μ (twice before dedup) and log-variance (32 -> 16).
    assert_eq!(n, 8, "Adds rewritten");
    assert_eq!(
        count_ops(&pw, "SavlPointwiseConv"),
        7,
        "ops after declutter"
    );
    assert_eq!(count_ops(&pw, "EinSum"), 0, "EinSums left");
    let gates = pw
        .nodes
        .iter()
        .filter_map(|n| n.op_as::<savl::ops::PointwiseConv>())
        .filter(|op| op.cs == [16, 1] && op.k == 48)
        .count();
    assert_eq!(gates, 5, "gate convs rewritten");
    assert_eq!(plain.outputs.len(), 3, "sr, mu, severity");
    for (h, w) in [(37, 42), (16, 16), (5, 131)] {
        let x = input(h, w);
        let a = run_typed(plain.clone(), &x).expect("plain model runs");
        let b = run_typed(pw.clone(), &x).expect("rewritten model runs");
        assert_eq!(a.len(), 3);
        assert_eq!(a.len(), b.len());
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            let d = max_abs_diff(a, b);
            eprintln!("{h}×{w} output {i}: max abs diff {d:e}");
            assert!(d <= 1e-5, "{h}×{w} output {i}: {d:e}");
        }
    }
}

#[test]
fn quantized_model_is_left_alone() {
    let Some(mut m) = support::decluttered_model("savl-lite-x4.int8.onnx") else {
        return;
    };
    assert_eq!(rewrite_pointwise(&mut m).expect("rewrite"), 0);
}
