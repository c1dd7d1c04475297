//! What the runtime's integration tests share (each test file has `mod support;`): the repository
//! root and its model files, a test picture, an upscaler over model bytes, and a model file as
//! tract's decluttered graph. The largest difference between two outputs is
//! `savl::testing::max_abs_diff`.
#![allow(dead_code)] // each test file uses a part of it

use std::path::{Path, PathBuf};

use image::RgbImage;
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

/// An upscaler over the model `bytes` with a fixed tile side and thread count.
pub fn upscaler(bytes: &[u8], tile: usize, threads: usize) -> Upscaler {
    Upscaler::builder()
        .model_bytes(bytes.to_vec())
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
