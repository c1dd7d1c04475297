//! Image quality metrics, as SR papers compute them.
//!
//! * PSNR on RGB or on the luma `Y` of BT.601 studio range
//!   (`Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`, RGB in 0..255), with a border of
//!   `shave` pixels cropped on every side (the scale factor, by convention).
//! * SSIM (Wang et al. 2004) on `Y`: 11×11 Gaussian window with σ = 1.5, `K1 = 0.01`,
//!   `K2 = 0.03`, data range 255, population statistics, mean over the valid (fully covered)
//!   positions — the same as `skimage.metrics.structural_similarity(gaussian_weights=True,
//!   sigma=1.5, use_sample_covariance=False, data_range=255)`.
//!
//! ```
//! use image::RgbImage;
//! let a = RgbImage::from_pixel(16, 16, image::Rgb([100, 100, 100]));
//! let mut b = a.clone();
//! b.get_pixel_mut(8, 8).0 = [110, 100, 100];
//! let p = savl_contract::metrics::psnr_rgb(&a, &b, 0).unwrap();
//! assert!((p - (10.0 * (255.0f64 * 255.0 / (100.0 / (3.0 * 256.0))).log10())).abs() < 1e-9);
//! ```

use image::RgbImage;

/// Why two images cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// The images differ in size.
    #[error("image sizes differ: {0}x{1} vs {2}x{3}")]
    SizeMismatch(u32, u32, u32, u32),
    /// Nothing is left after cropping the border (or after the SSIM window).
    #[error("image {0}x{1} is too small for a border of {2} px")]
    TooSmall(u32, u32, u32),
}

/// BT.601 studio-range luma of an 8-bit RGB pixel, in 16..235.
#[inline]
pub fn luma_bt601(p: [u8; 3]) -> f64 {
    16.0 + (65.481 * p[0] as f64 + 128.553 * p[1] as f64 + 24.966 * p[2] as f64) / 255.0
}

/// Luma plane (row-major, `w × h`) of the image with `shave` pixels cropped on each side.
pub fn luma_plane(img: &RgbImage, shave: u32) -> Result<(Vec<f64>, usize, usize), MetricError> {
    let (w, h) = img.dimensions();
    if w <= 2 * shave || h <= 2 * shave {
        return Err(MetricError::TooSmall(w, h, shave));
    }
    let (cw, ch) = ((w - 2 * shave) as usize, (h - 2 * shave) as usize);
    let mut out = Vec::with_capacity(cw * ch);
    for y in shave..h - shave {
        for x in shave..w - shave {
            out.push(luma_bt601(img.get_pixel(x, y).0));
        }
    }
    Ok((out, cw, ch))
}

fn check(a: &RgbImage, b: &RgbImage) -> Result<(), MetricError> {
    if a.dimensions() != b.dimensions() {
        return Err(MetricError::SizeMismatch(
            a.width(),
            a.height(),
            b.width(),
            b.height(),
        ));
    }
    Ok(())
}

/// PSNR in dB from a mean squared error with peak 255; infinite for identical images.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// PSNR over the three RGB channels, `shave` border pixels cropped.
pub fn psnr_rgb(a: &RgbImage, b: &RgbImage, shave: u32) -> Result<f64, MetricError> {
    check(a, b)?;
    let (w, h) = a.dimensions();
    if w <= 2 * shave || h <= 2 * shave {
        return Err(MetricError::TooSmall(w, h, shave));
    }
    let mut se = 0.0f64;
    for y in shave..h - shave {
        for x in shave..w - shave {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            for c in 0..3 {
                let d = p[c] as f64 - q[c] as f64;
                se += d * d;
            }
        }
    }
    let n = 3.0 * ((w - 2 * shave) as f64) * ((h - 2 * shave) as f64);
    Ok(psnr_from_mse(se / n))
}

/// PSNR on BT.601 luma (unrounded), `shave` border pixels cropped.
pub fn psnr_y(a: &RgbImage, b: &RgbImage, shave: u32) -> Result<f64, MetricError> {
    check(a, b)?;
    let (ya, _, _) = luma_plane(a, shave)?;
    let (yb, _, _) = luma_plane(b, shave)?;
    let se: f64 = ya.iter().zip(&yb).map(|(p, q)| (p - q) * (p - q)).sum();
    Ok(psnr_from_mse(se / ya.len() as f64))
}

/// PSNR between two float buffers in [0, 1] (peak 1), e.g. a quantized model's raw output
/// against the f32 model's.
pub fn psnr_f32(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "psnr_f32: length mismatch");
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(p, q)| ((*p - *q) as f64).powi(2))
        .sum();
    let mse = se / a.len().max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

/// Normalised 1-D Gaussian taps of radius `r`.
fn gaussian_taps(sigma: f64, r: usize) -> Vec<f64> {
    let t: Vec<f64> = (0..=2 * r)
        .map(|i| {
            let x = i as f64 - r as f64;
            (-x * x / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let s: f64 = t.iter().sum();
    t.into_iter().map(|v| v / s).collect()
}

/// Separable "valid" filtering of a `w × h` plane with `taps`.
fn filter_valid(p: &[f64], w: usize, h: usize, taps: &[f64]) -> (Vec<f64>, usize, usize) {
    let k = taps.len();
    let (ow, oh) = (w + 1 - k, h + 1 - k);
    let mut tmp = vec![0.0; ow * h];
    for y in 0..h {
        for x in 0..ow {
            tmp[y * ow + x] = (0..k).map(|i| taps[i] * p[y * w + x + i]).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..k).map(|i| taps[i] * tmp[(y + i) * ow + x]).sum();
        }
    }
    (out, ow, oh)
}

/// SSIM of two planes (values in 0..255) of size `w × h`.
pub fn ssim_plane(a: &[f64], b: &[f64], w: usize, h: usize) -> Result<f64, MetricError> {
    const R: usize = 5;
    if w < 2 * R + 1 || h < 2 * R + 1 {
        return Err(MetricError::TooSmall(w as u32, h as u32, R as u32));
    }
    let taps = gaussian_taps(1.5, R);
    let prod = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()
    };
    let (ma, ow, oh) = filter_valid(a, w, h, &taps);
    let (mb, _, _) = filter_valid(b, w, h, &taps);
    let (maa, _, _) = filter_valid(&prod(&|x, _| x * x), w, h, &taps);
    let (mbb, _, _) = filter_valid(&prod(&|_, y| y * y), w, h, &taps);
    let (mab, _, _) = filter_valid(&prod(&|x, y| x * y), w, h, &taps);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut sum = 0.0;
    for i in 0..ow * oh {
        let (ua, ub) = (ma[i], mb[i]);
        let (va, vb, cov) = (maa[i] - ua * ua, mbb[i] - ub * ub, mab[i] - ua * ub);
        sum +=
            ((2.0 * ua * ub + c1) * (2.0 * cov + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2));
    }
    Ok(sum / (ow * oh) as f64)
}

/// SSIM on BT.601 luma, `shave` border pixels cropped.
pub fn ssim_y(a: &RgbImage, b: &RgbImage, shave: u32) -> Result<f64, MetricError> {
    check(a, b)?;
    let (ya, w, h) = luma_plane(a, shave)?;
    let (yb, _, _) = luma_plane(b, shave)?;
    ssim_plane(&ya, &yb, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed;
        RgbImage::from_fn(w, h, |x, y| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = (s >> 24) as i32 - 128;
            let v = |base: i32| (base + n / 4).clamp(0, 255) as u8;
            image::Rgb([
                v((x * 7) as i32),
                v((y * 5) as i32),
                v(((x + y) * 3) as i32),
            ])
        })
    }

    #[test]
    fn psnr_matches_closed_form_for_a_constant_offset() {
        let a = RgbImage::from_pixel(20, 10, image::Rgb([50, 60, 70]));
        let b = RgbImage::from_pixel(20, 10, image::Rgb([53, 63, 73]));
        let expected = 10.0 * (255.0f64 * 255.0 / 9.0).log10();
        assert!((psnr_rgb(&a, &b, 2).unwrap() - expected).abs() < 1e-12);
        // Y moves by 3 * (65.481 + 128.553 + 24.966) / 255 = 3 * 219 / 255.
        let dy = 3.0 * 219.0 / 255.0;
        assert!(
            (psnr_y(&a, &b, 0).unwrap() - 10.0 * (255.0f64 * 255.0 / (dy * dy)).log10()).abs()
                < 1e-9
        );
        assert_eq!(psnr_rgb(&a, &a, 0).unwrap(), f64::INFINITY);
    }

    #[test]
    fn luma_range_is_studio() {
        assert!((luma_bt601([0, 0, 0]) - 16.0).abs() < 1e-12);
        assert!((luma_bt601([255, 255, 255]) - 235.0).abs() < 1e-9);
    }

    #[test]
    fn ssim_is_one_for_identical_and_matches_brute_force() {
        let a = noisy(24, 19, 1);
        assert!((ssim_y(&a, &a, 0).unwrap() - 1.0).abs() < 1e-12);
        let b = noisy(24, 19, 2);
        // Independent brute-force SSIM: explicit 2-D Gaussian window per position.
        let (ya, w, h) = luma_plane(&a, 0).unwrap();
        let (yb, _, _) = luma_plane(&b, 0).unwrap();
        let g = gaussian_taps(1.5, 5);
        let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
        let mut total = 0.0;
        let mut n = 0;
        for y0 in 0..=h - 11 {
            for x0 in 0..=w - 11 {
                let (mut ua, mut ub, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for j in 0..11 {
                    for i in 0..11 {
                        let wt = g[i] * g[j];
                        let (p, q) = (ya[(y0 + j) * w + x0 + i], yb[(y0 + j) * w + x0 + i]);
                        ua += wt * p;
                        ub += wt * q;
                        saa += wt * p * p;
                        sbb += wt * q * q;
                        sab += wt * p * q;
                    }
                }
                let (va, vb, cv) = (saa - ua * ua, sbb - ub * ub, sab - ua * ub);
                total += ((2.0 * ua * ub + c1) * (2.0 * cv + c2))
                    / ((ua * ua + ub * ub + c1) * (va + vb + c2));
                n += 1;
            }
        }
        let s = ssim_y(&a, &b, 0).unwrap();
        assert!(
            (s - total / n as f64).abs() < 1e-9,
            "{s} vs {}",
            total / n as f64
        );
        assert!(s < 0.9);
    }

    #[test]
    fn errors_on_mismatch_and_tiny_images() {
        let a = RgbImage::new(8, 8);
        let b = RgbImage::new(9, 8);
        assert!(matches!(
            psnr_y(&a, &b, 0),
            Err(MetricError::SizeMismatch(..))
        ));
        assert!(matches!(psnr_y(&a, &a, 4), Err(MetricError::TooSmall(..))));
        assert!(matches!(ssim_y(&a, &a, 0), Err(MetricError::TooSmall(..))));
    }

    #[test]
    fn psnr_f32_peak_one() {
        let a = vec![0.5f32; 100];
        let b = vec![0.6f32; 100];
        assert!((psnr_f32(&a, &b) - 20.0).abs() < 1e-4);
    }
}
