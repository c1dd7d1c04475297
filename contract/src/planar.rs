//! Planar f32 pictures where the crates meet: an 8-bit RGB picture as three `H×W` planes in
//! [0, 1] (`v / 255`), in R, G, B order, and back.
//!
//! ```
//! use savl_contract::planar::{from_rgb8, to_rgb8};
//! let img = image::RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 51]));
//! let p = from_rgb8(&img);
//! assert_eq!(p, vec![1.0, 1.0, 0.0, 0.0, 0.2, 0.2]);
//! assert_eq!(to_rgb8(&p, 2, 1), img);
//! ```

use image::RgbImage;

/// The three planes of `img`, `[3, H, W]` row-major, each value `v / 255`.
pub fn from_rgb8(img: &RgbImage) -> Vec<f32> {
    let n = img.width() as usize * img.height() as usize;
    let mut data = vec![0f32; 3 * n];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * n + i] = f32::from(px[c]) / 255.0;
        }
    }
    data
}

/// An 8-bit RGB picture from three planes `[3, h, w]`: each value clamped to [0, 1], scaled by
/// 255 and rounded half away from zero.
pub fn to_rgb8(planes: &[f32], w: usize, h: usize) -> RgbImage {
    let n = w * h;
    assert_eq!(planes.len(), 3 * n, "3×{h}×{w} planes expected");
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            (planes[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8
        }))
    })
}
