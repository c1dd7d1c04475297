//! Winograd 3×3 convolution: the transforms against a direct convolution written here, and the
//! load-time rewrite against tract's own conv on real models.

mod support;

use std::path::PathBuf;

use savl::kernels::winograd::{conv3x3, WinogradTile, WinogradWeights};
use savl::kernels::with_portable_products;
use savl::rewrites::winograd::rewrite_convs;
use savl::testing::{max_abs_diff, run_typed, smooth_input as input, Rng};
use support::{case, count_ops, decluttered, direct, root};
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

fn winograd(
    tile: WinogradTile,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    slope: &[f32],
    c: usize,
    k: usize,
    h: usize,
    w: usize,
    ex: &Executor,
) -> Vec<f32> {
    let wts = WinogradWeights::new(tile, kernel, k, c);
    let mut y = vec![f32::NAN; k * h * w];
    conv3x3(&wts, bias, slope, x, h, w, &mut y, ex, None).unwrap();
    y
}

const SHAPES: &[(usize, usize, usize, usize)] = &[
    // (C, K, H, W): odd sizes, H or W below the tile side, one pixel, wide and tall planes.
    (3, 48, 17, 23),
    (48, 48, 32, 32),
    (64, 64, 19, 37),
    (32, 16, 1, 1),
    (5, 7, 1, 9),
    (5, 7, 9, 1),
    (8, 8, 3, 2),
    (16, 24, 2, 3),
    (7, 5, 5, 5),
    (64, 48, 130, 7),
    (2, 3, 6, 200),
];

fn check_tile(tile: WinogradTile, tol: f32) {
    let mut rng = Rng(7);
    let mut worst = 0f32;
    for &(c, k, h, w) in SHAPES {
        let (x, kernel, bias) = case(&mut rng, c, k, h, w);
        let want = direct(&x, &kernel, &bias, c, k, h, w);
        let got = winograd(
            tile,
            &x,
            &kernel,
            &bias,
            &vec![1.0; k],
            c,
            k,
            h,
            w,
            &Executor::SingleThread,
        );
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= tol,
            "{tile:?} C={c} K={k} {h}×{w}: max abs diff {d:e} > {tol:e}"
        );
        worst = worst.max(d);
    }
    eprintln!("{tile:?}: worst max abs diff vs direct {worst:e}");
}

#[test]
fn f2_matches_direct_conv() {
    check_tile(WinogradTile::F2, 1e-5);
}

#[test]
fn f4_matches_direct_conv() {
    check_tile(WinogradTile::F4, 1e-4);
}

/// The `gemm` crate's products (CPUs without AVX-512F) against the default path for this CPU,
/// on every shape, with a leaky activation, one thread and three.
#[test]
fn portable_gemm_path_matches() {
    let mut rng = Rng(5);
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        for &(c, k, h, w) in SHAPES {
            let (x, kernel, bias) = case(&mut rng, c, k, h, w);
            let slope: Vec<f32> = (0..k).map(|i| 0.1 * (i % 3) as f32).collect();
            let wts = WinogradWeights::new(tile, &kernel, k, c);
            for ex in [Executor::SingleThread, Executor::multithread(3)] {
                let mut a = vec![f32::NAN; k * h * w];
                let mut b = vec![f32::NAN; k * h * w];
                conv3x3(&wts, &bias, &slope, &x, h, w, &mut a, &ex, None).unwrap();
                with_portable_products(|| {
                    conv3x3(&wts, &bias, &slope, &x, h, w, &mut b, &ex, None)
                })
                .unwrap();
                let d = max_abs_diff(&a, &b);
                assert!(d <= 1e-4, "{tile:?} C={c} K={k} {h}×{w}: {d:e}");
            }
        }
    }
}

/// A folded element-wise kernel (SPAN's SiLU) run per block gives bit for bit what running it
/// over the whole output afterwards gives, on every shape, one thread and three.
#[test]
fn folded_silu_equals_silu_afterwards() {
    let silu = tract_linalg::routines::Func::Silu.ew_f32().unwrap();
    let mut rng = Rng(9);
    for &(c, k, h, w) in SHAPES {
        let (x, kernel, bias) = case(&mut rng, c, k, h, w);
        let slope = vec![1.0; k];
        let wts = WinogradWeights::new(WinogradTile::F4, &kernel, k, c);
        for ex in [Executor::SingleThread, Executor::multithread(3)] {
            let mut want = vec![f32::NAN; k * h * w];
            conv3x3(&wts, &bias, &slope, &x, h, w, &mut want, &ex, None).unwrap();
            silu.run(&mut want).unwrap();
            let mut got = vec![f32::NAN; k * h * w];
            conv3x3(&wts, &bias, &slope, &x, h, w, &mut got, &ex, Some(&*silu)).unwrap();
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "C={c} K={k} {h}×{w}");
        }
    }
}

#[test]
fn leaky_activation_and_threads() {
    let mut rng = Rng(11);
    let (c, k, h, w) = (24, 16, 45, 38);
    let (x, kernel, bias) = case(&mut rng, c, k, h, w);
    let slope: Vec<f32> = (0..k).map(|i| 0.05 * i as f32).collect();
    let want: Vec<f32> = direct(&x, &kernel, &bias, c, k, h, w)
        .iter()
        .enumerate()
        .map(|(i, &v)| if v < 0.0 { v * slope[i / (h * w)] } else { v })
        .collect();
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        let one = winograd(
            tile,
            &x,
            &kernel,
            &bias,
            &slope,
            c,
            k,
            h,
            w,
            &Executor::SingleThread,
        );
        assert!(max_abs_diff(&one, &want) <= 1e-4, "{tile:?}");
        let two = winograd(
            tile,
            &x,
            &kernel,
            &bias,
            &slope,
            c,
            k,
            h,
            w,
            &Executor::multithread(3),
        );
        assert_eq!(one, two, "{tile:?}: the thread count changed the result");
    }
}

/// The rewritten model against tract's own convs, on every output; `folded` names the
/// activation op that every conv's output goes through, which the rewrite must have absorbed.
fn rewrite_matches(path: PathBuf, tile: WinogradTile, want_rewritten: usize, folded: &str) {
    if !path.is_file() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let plain = decluttered(&path);
    let mut wino = plain.clone();
    let n = rewrite_convs(&mut wino, tile).expect("rewrite");
    assert_eq!(n, want_rewritten, "{}: convs rewritten", path.display());
    let left = count_ops(&wino, folded);
    assert_eq!(
        left,
        0,
        "{}: {folded} nodes left after the rewrite",
        path.display()
    );
    let x = input(37, 42);
    let a = run_typed(plain, &x).expect("plain model runs");
    let b = run_typed(wino, &x).expect("rewritten model runs");
    assert_eq!(a.len(), b.len());
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let d = max_abs_diff(a, b);
        eprintln!("{} {tile:?} output {i}: max abs diff {d:e}", path.display());
        assert!(d <= 1e-4, "{} output {i}: {d:e}", path.display());
    }
}

#[test]
fn rewritten_lite_model_matches_tract() {
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        rewrite_matches(support::model("savl-lite-x4.onnx"), tile, 15, "LeakyRelu");
    }
}

#[test]
fn rewritten_peer_model_matches_tract() {
    let peer = root().join("../shared/peers/realesr-animevideov3-x4.onnx");
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        rewrite_matches(peer.clone(), tile, 18, "Iff");
    }
}

/// SPAN's convs are followed by SiLUs, which the rewrite folds in.
#[test]
fn rewritten_silu_peer_model_matches_tract() {
    let peer = root().join("../shared/peers/spanx4_ch48.onnx");
    rewrite_matches(peer, WinogradTile::F4, 21, "Silu");
}

#[test]
fn quantized_model_is_left_alone() {
    let Some(mut m) = support::decluttered_model("savl-lite-x4.int8.onnx") else {
        return;
    };
    assert_eq!(rewrite_convs(&mut m, WinogradTile::F2).expect("rewrite"), 0);
}
