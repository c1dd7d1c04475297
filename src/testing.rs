//! Reference paths for tests and benches: whole-image inference without tiling.

use image::RgbImage;
use tract_onnx::prelude::*;

use crate::Error;

/// Planar `[3, H, W]` f32 input in [0, 1].
pub fn planar(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = vec![0f32; 3 * w * h];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * w * h + i] = px[c] as f32 / 255.0;
        }
    }
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
        crate::modulate::fuse_modulation(&mut typed).map_err(Error::runtime)?;
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
