//! What the runtime's integration tests share (each test file has `mod support;`): the repository
//! root and its model files, a test picture, an upscaler over model bytes, and a model file as
//! tract's decluttered graph, and a direct 3×3 convolution in f64 with random cases for the
//! Winograd kernels. The largest difference between two outputs is
//! `savl::testing::max_abs_diff`.
#![allow(dead_code)] // each test file uses a part of it

use std::path::{Path, PathBuf};

use image::RgbImage;
use savl::testing::Rng;
use savl::Upscaler;
use tract_onnx::prelude::*;

/// The root package's folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `models/name`, a shipped model file.
pub fn model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// A textured `w × h` test picture (sines over both axes, different per channel); `seed` shifts
/// the pattern.
pub fn textured(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = |k: u32| {
            let t = (x * 7 + y * 13 + k * 31 + seed) as f32;
            (128.0 + 100.0 * (t * 0.11).sin() * ((y as f32 + k as f32) * 0.07).cos()) as u8
        };
        image::Rgb([v(0), v(1), v(2)])
    })
}

/// An upscaler over the model `bytes` at precision f32 (comparable with tract's f32 outputs on
/// every CPU), with a fixed tile side and thread count.
pub fn upscaler(bytes: &[u8], tile: usize, threads: usize) -> Upscaler {
    Upscaler::builder()
        .model_bytes(bytes.to_vec())
        .precision(savl::Precision::F32)
        .tile(tile)
        .threads(threads)
        .build()
        .unwrap()
}

/// The model file at `path` as tract's typed, decluttered graph (before any savl rewrite).
pub fn decluttered(path: &Path) -> TypedModel {
    tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .expect("model loads")
}

/// The shipped model `name` ([`model`]) as [`decluttered`], or `None` (said on stderr) when the
/// file is not there.
pub fn decluttered_model(name: &str) -> Option<TypedModel> {
    let path = model(name);
    if !path.is_file() {
        eprintln!("skipped: {} not found", path.display());
        return None;
    }
    Some(decluttered(&path))
}

/// How many nodes of `m` run the op named `op`.
pub fn count_ops(m: &TypedModel, op: &str) -> usize {
    m.nodes.iter().filter(|n| n.op.name() == op).count()
}

/// Cross-correlation with zero padding 1, stride 1, OIHW kernel, accumulated in f64.
pub fn direct(
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    c: usize,
    k: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let mut y = vec![0f32; k * h * w];
    for ko in 0..k {
        for oy in 0..h {
            for ox in 0..w {
                let mut acc = bias[ko] as f64;
                for ci in 0..c {
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let (iy, ix) = (oy as isize + dy - 1, ox as isize + dx - 1);
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let xv = x[(ci * h + iy as usize) * w + ix as usize] as f64;
                            let wv = kernel[((ko * c + ci) * 3 + dy as usize) * 3 + dx as usize];
                            acc += xv * wv as f64;
                        }
                    }
                }
                y[(ko * h + oy) * w + ox] = acc as f32;
            }
        }
    }
    y
}

/// Kaiming-like weights (what a trained net has), inputs in [−4, 4].
pub fn case(
    rng: &mut Rng,
    c: usize,
    k: usize,
    h: usize,
    w: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let bound = (6.0 / (9.0 * c as f32)).sqrt();
    let x = rng.vec(c * h * w, -4.0, 4.0);
    let kernel = rng.vec(k * c * 9, -bound, bound);
    let bias = rng.vec(k, -0.5, 0.5);
    (x, kernel, bias)
}
