//! Unsharp masking of the ground truth (Real-ESRGAN `USMSharp`, BasicSR `usm_sharp`).

use super::filter::{gaussian_taps, separable};
use crate::image::PlanarImage;

/// Tap count of the USM blur (radius 50 forced odd → 51).
pub const USM_TAPS: usize = 51;
/// OpenCV's automatic σ for 51 taps: `0.3·((51 − 1)/2 − 1) + 0.8 = 8.0`.
pub const USM_SIGMA: f64 = 8.0;
/// Weight of the residual.
pub const USM_WEIGHT: f32 = 0.5;
/// Threshold on `|I − blur(I)|`, in 8-bit units.
pub const USM_THRESHOLD: f32 = 10.0;

/// `res = I − blur(I)`; `mask = 1[255·|res| > 10]`; `soft = blur(mask)`;
/// `sharp = clip(I + 0.5·res, 0, 1)`; `out = soft·sharp + (1 − soft)·I`, per channel, with a
/// 51-tap σ = 8 Gaussian and reflect-101 borders.
pub fn usm_sharpen(img: &PlanarImage) -> PlanarImage {
    let (h, w) = (img.height, img.width);
    let taps = gaussian_taps(USM_SIGMA, USM_TAPS / 2);
    let mut out = img.clone();
    for c in 0..img.channels {
        let p = img.plane(c);
        let blur = separable(p, h, w, &taps);
        let mask: Vec<f32> = p
            .iter()
            .zip(&blur)
            .map(|(&i, &b)| {
                if (i - b).abs() * 255.0 > USM_THRESHOLD {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let soft = if mask.iter().all(|&m| m == 0.0) {
            mask
        } else {
            separable(&mask, h, w, &taps)
        };
        let o = out.plane_mut(c);
        for i in 0..h * w {
            let res = p[i] - blur[i];
            let sharp = (p[i] + USM_WEIGHT * res).clamp(0.0, 1.0);
            o[i] = soft[i] * sharp + (1.0 - soft[i]) * p[i];
        }
    }
    out
}
