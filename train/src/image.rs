//! Planar float images, the currency of the training side.
//!
//! Pixels are `f32` in `[0, 1]`, stored plane by plane (`channels × height × width`,
//! row-major), which is the layout candle tensors (CHW) and per-channel filters want.

use std::path::Path;

/// A float image in planar layout: `channels` planes of `height × width`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanarImage {
    /// Number of planes (3 for RGB, 1 for a map or a grey image).
    pub channels: usize,
    /// Rows per plane.
    pub height: usize,
    /// Columns per plane.
    pub width: usize,
    /// `channels * height * width` samples, plane after plane.
    pub data: Vec<f32>,
}

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageReadError {
    /// The file could not be opened, or its content is not a decodable image.
    #[error("{path}: {source}")]
    Decode {
        /// The file.
        path: String,
        /// What the decoder said.
        #[source]
        source: image::ImageError,
    },
}

impl PlanarImage {
    /// A black image.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    /// Wraps existing samples; panics if the length does not match the shape.
    pub fn from_vec(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            channels * height * width,
            "PlanarImage::from_vec: length mismatch"
        );
        Self {
            channels,
            height,
            width,
            data,
        }
    }

    /// Samples per plane.
    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }

    /// Plane `c`.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.plane_len();
        &self.data[c * n..(c + 1) * n]
    }

    /// Plane `c`, mutable.
    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.plane_len();
        &mut self.data[c * n..(c + 1) * n]
    }

    /// Sample at channel `c`, row `y`, column `x`.
    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// Converts an 8-bit RGB image (values / 255).
    pub fn from_rgb8(img: &image::RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut out = Self::zeros(3, h, w);
        out.data = savl_contract::planar::from_rgb8(img);
        out
    }

    /// Converts to 8-bit RGB, clamping to `[0, 1]` and rounding. A 1-plane image becomes grey RGB.
    pub fn to_rgb8(&self) -> image::RgbImage {
        let n = self.plane_len();
        let q = |v: f32| round_half_up_u8(v.clamp(0.0, 1.0) * 255.0);
        let mut out = image::RgbImage::new(self.width as u32, self.height as u32);
        for (i, p) in out.pixels_mut().enumerate() {
            for c in 0..3 {
                let src = if self.channels == 1 { 0 } else { c };
                p.0[c] = q(self.data[src * n + i]);
            }
        }
        out
    }

    /// Reads any image the `image` crate decodes (PNG, JPEG, WebP) as RGB.
    pub fn load(path: &Path) -> Result<Self, ImageReadError> {
        let img = image::open(path).map_err(|source| ImageReadError::Decode {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self::from_rgb8(&img.to_rgb8()))
    }

    /// The window `[x, x + w) × [y, y + h)`; panics when it leaves the image.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Self {
        assert!(
            x + w <= self.width && y + h <= self.height,
            "crop outside the image"
        );
        let mut out = Self::zeros(self.channels, h, w);
        for c in 0..self.channels {
            for r in 0..h {
                let src = (c * self.height + y + r) * self.width + x;
                let dst = (c * h + r) * w;
                out.data[dst..dst + w].copy_from_slice(&self.data[src..src + w]);
            }
        }
        out
    }

    /// Mirror left-right.
    pub fn flip_horizontal(&self) -> Self {
        let mut out = self.clone();
        for c in 0..self.channels {
            for r in 0..self.height {
                let row = (c * self.height + r) * self.width;
                out.data[row..row + self.width].reverse();
            }
        }
        out
    }
}

/// `x.round() as u8` for `x ∈ [0, 255]` without a libm call (vectorises): truncate, then add 1
/// when the dropped fraction is at least ½ (round half away from zero, as `f32::round`).
#[inline(always)]
pub(crate) fn round_half_up_u8(x: f32) -> u8 {
    let t = x as u8;
    t + ((x - t as f32) >= 0.5) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_up_equals_round() {
        let mut x = 0.0f32;
        while x <= 255.0 {
            for v in [x, x + 0.5, x + 0.49999997, x + 0.50000006] {
                if v <= 255.0 {
                    assert_eq!(round_half_up_u8(v), v.round() as u8, "{v}");
                }
            }
            x += 1.0;
        }
        let mut v = 0.0f32;
        while v <= 1.0 {
            let x = v * 255.0;
            assert_eq!(round_half_up_u8(x), x.round() as u8, "{x}");
            v = f32::from_bits(v.to_bits() + 997);
        }
    }

    #[test]
    fn rgb8_round_trip_is_exact() {
        let img =
            image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 70, 200]));
        let p = PlanarImage::from_rgb8(&img);
        assert_eq!(p.at(0, 2, 4), 160.0 / 255.0);
        assert_eq!(p.to_rgb8(), img);
    }

    #[test]
    fn crop_and_flip_move_the_right_pixels() {
        let p = PlanarImage::from_vec(1, 2, 3, vec![0., 1., 2., 3., 4., 5.]);
        assert_eq!(p.crop(1, 1, 2, 1).data, vec![4., 5.]);
        assert_eq!(p.flip_horizontal().data, vec![2., 1., 0., 5., 4., 3.]);
    }
}
