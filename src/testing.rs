//! Reference paths for tests and benches: whole-image inference without tiling.

use image::RgbImage;
use tract_onnx::prelude::*;

use crate::Error;

/// Planar `[3, H, W]` f32 input in [0, 1].
pub fn planar(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data = savl_contract::planar::from_rgb8(img);
    tract_ndarray::Array4::from_shape_vec((1, 3, h, w), data)
        .expect("shape")
        .into_tensor()
}

/// Run the model on the whole image at once (concrete plan, no tiling), optionally with the
/// fused-modulation rewrite; returns output 0 as planar f32 `[3, H·s, W·s]`.
pub fn raw_sr(model: &[u8], img: &RgbImage, fused: bool) -> Result<Vec<f32>, Error> {
    let mut typed = tract_onnx::onnx()
        .model_for_read(&mut &model[..])
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .map_err(Error::runtime)?;
    if fused {
        crate::rewrites::modulation::fuse_modulation(&mut typed).map_err(Error::runtime)?;
    }
    let x = planar(img);
    let out = typed
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .and_then(|p| p.run(tvec!(x.into_tvalue())))
        .map_err(Error::runtime)?;
    let t = out[0].cast_to::<f32>().map_err(Error::runtime)?;
    let v = t
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>().map(|s| s.to_vec()));
    v.map_err(Error::runtime)
}

/// Optimizes `model`, runs it once on `x` and returns every output as f32 values.
pub fn run_typed(model: TypedModel, x: &Tensor) -> TractResult<Vec<Vec<f32>>> {
    let out = model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .and_then(|p| p.run(tvec!(x.clone().into_tvalue())))?;
    out.iter()
        .map(|t| {
            let t = t.cast_to::<f32>()?;
            let v = t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            Ok(v)
        })
        .collect()
}

/// A deterministic, smooth `[1, 3, h, w]` input with values in (0.05, 0.95).
pub fn smooth_input(h: usize, w: usize) -> Tensor {
    let data: Vec<f32> = (0..3 * h * w)
        .map(|i| 0.5 + 0.45 * ((i % 97) as f32 * 0.31 + (i / w) as f32 * 0.17).sin())
        .collect();
    tract_ndarray::Array4::from_shape_vec((1, 3, h, w), data)
        .expect("shape")
        .into_tensor()
}

/// The largest `|a[i] − b[i]|`; panics when the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "max_abs_diff: lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Deterministic uniform test values (SplitMix64), for random shapes and weights in tests.
pub struct Rng(pub u64);

impl Rng {
    /// The next value in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    /// `n` values in [lo, hi).
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * self.next_f32()).collect()
    }
}
