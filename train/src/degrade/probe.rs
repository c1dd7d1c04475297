//! The exact-label probe generator (`degradations.md` §3.8), separate from the training
//! pipeline: HR → antialiased bicubic ÷`scale` → isotropic Gaussian blur with a per-cell σ_b map
//! (LR px) → Gaussian noise with a per-cell σ_n taking one of 5 levels → per-MCU JPEG q → 8 bit.
//!
//! Every map is piecewise constant on a grid of `cell × cell` LR pixels (`cell` a multiple of 16,
//! so every 8×8 pooling patch and every 16×16 JPEG MCU lies in one cell), and the three maps are
//! drawn independently per cell, so the noise label is exact for every LR pixel and carries no
//! information about the blur or the JPEG quality. [`ProbeMaps::draw`] draws the maps from a seed;
//! [`probe_degrade`] applies them with a noise seed, so two scenes degraded with the same maps and
//! seed differ only in content (the scene-ID pairs).
//!
//! ```
//! use savl_train::degrade::probe::{probe_degrade, ProbeConfig, ProbeMaps};
//! use savl_train::PlanarImage;
//! let hr = PlanarImage::from_vec(3, 128, 128, vec![0.5; 3 * 128 * 128]);
//! let cfg = ProbeConfig::default();
//! let maps = ProbeMaps::draw(32, 32, &cfg, 1);
//! let s = probe_degrade(&hr, &maps, &cfg, 2);
//! assert_eq!((s.lr.height, s.lr.width), (32, 32));
//! assert!(s.noise_level.iter().all(|&l| l < 5));
//! ```

use super::filter::gaussian_blur;
use super::jpeg::{jpeg, quality_to_factor};
use super::resize::downscale_bicubic_aa;
use super::rng_for;
use crate::image::PlanarImage;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Knobs of the probe generator.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeConfig {
    /// Downscale factor. Default 4.
    pub scale: usize,
    /// Side of the constant-label cells, in LR px (a multiple of 16). Default 32.
    pub cell: usize,
    /// The 5 noise levels (Gaussian std, 1/255 units); the label of a pixel is the index.
    /// Default {1, 5, 10, 20, 30}.
    pub noise_levels: [f32; 5],
    /// Blur σ_b levels in LR px (0 = none), drawn uniformly per cell. Default {0, 0.5, 1, 1.5}.
    pub blur_levels: Vec<f32>,
    /// JPEG quality range per cell, uniform. Default 50..=95.
    pub jpeg_q: (u8, u8),
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            scale: 4,
            cell: 32,
            noise_levels: [1.0, 5.0, 10.0, 20.0, 30.0],
            blur_levels: vec![0.0, 0.5, 1.0, 1.5],
            jpeg_q: (50, 95),
        }
    }
}

/// Per-cell degradation maps at LR resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeMaps {
    /// Noise level index (0..5) per cell, row-major over the cell grid.
    pub noise_idx: Vec<u8>,
    /// Blur level index into [`ProbeConfig::blur_levels`] per cell.
    pub blur_idx: Vec<u8>,
    /// JPEG quality per cell.
    pub jpeg_q: Vec<u8>,
    /// LR rows.
    pub height: usize,
    /// LR columns.
    pub width: usize,
    /// Cell side in LR px.
    pub cell: usize,
}

impl ProbeMaps {
    /// Draws the maps for an `h × w` LR image, deterministically from `seed`.
    ///
    /// # Panics
    /// If `cfg.cell` is not a positive multiple of 16 or `cfg.blur_levels` is empty.
    pub fn draw(h: usize, w: usize, cfg: &ProbeConfig, seed: u64) -> Self {
        assert!(
            cfg.cell > 0 && cfg.cell % 16 == 0,
            "cell must be a multiple of 16"
        );
        assert!(!cfg.blur_levels.is_empty(), "no blur levels");
        let mut rng = rng_for(seed, 0x9e0b);
        let n = h.div_ceil(cfg.cell) * w.div_ceil(cfg.cell);
        let mut noise_idx = Vec::with_capacity(n);
        let mut blur_idx = Vec::with_capacity(n);
        let mut jpeg_q = Vec::with_capacity(n);
        for _ in 0..n {
            noise_idx.push(rng.random_range(0..5u8));
            blur_idx.push(rng.random_range(0..cfg.blur_levels.len()) as u8);
            jpeg_q.push(rng.random_range(cfg.jpeg_q.0..=cfg.jpeg_q.1));
        }
        Self {
            height: h,
            width: w,
            noise_idx,
            blur_idx,
            jpeg_q,
            cell: cfg.cell,
        }
    }

    /// Cell index of LR pixel `(y, x)`.
    #[inline]
    pub fn cell_of(&self, y: usize, x: usize) -> usize {
        (y / self.cell) * self.width.div_ceil(self.cell) + x / self.cell
    }

    /// A per-pixel plane from a per-cell value.
    pub fn per_pixel<T: Copy>(&self, per_cell: &[T]) -> Vec<T> {
        let mut out = Vec::with_capacity(self.height * self.width);
        for y in 0..self.height {
            for x in 0..self.width {
                out.push(per_cell[self.cell_of(y, x)]);
            }
        }
        out
    }
}

/// One probe image with its exact per-pixel labels at LR resolution.
#[derive(Clone, Debug)]
pub struct ProbeSample {
    /// Noise level index 0..5 per LR pixel (the 5-bin label).
    pub noise_level: Vec<u8>,
    /// Added Gaussian noise std per LR pixel, 1/255 units.
    pub noise_sigma: Vec<f32>,
    /// Blur σ_b per LR pixel (LR px).
    pub blur_sigma: Vec<f32>,
    /// JPEG quality per LR pixel.
    pub jpeg_q: Vec<u8>,
    /// Degraded LR image (8-bit values / 255).
    pub lr: PlanarImage,
}

/// Degrades `hr` (sides multiples of `cfg.scale`, LR size equal to the maps') with `maps`; the
/// noise is drawn from `seed` (independent per channel).
///
/// # Panics
/// If `hr` is not 3-plane or its LR size differs from the maps'.
pub fn probe_degrade(
    hr: &PlanarImage,
    maps: &ProbeMaps,
    cfg: &ProbeConfig,
    seed: u64,
) -> ProbeSample {
    assert_eq!(hr.channels, 3, "probe_degrade: RGB only");
    let lr = downscale_bicubic_aa(hr, cfg.scale);
    let (h, w) = (lr.height, lr.width);
    assert_eq!(
        (h, w),
        (maps.height, maps.width),
        "probe_degrade: maps size"
    );
    let n = h * w;
    let blur_px = maps.per_pixel(&maps.blur_idx);
    let mut out = PlanarImage::zeros(3, h, w);
    for c in 0..3 {
        let plane = lr.plane(c);
        let blurred: Vec<Vec<f32>> = cfg
            .blur_levels
            .iter()
            .map(|&s| {
                if s <= 0.0 {
                    plane.to_vec()
                } else {
                    gaussian_blur(plane, h, w, s as f64)
                }
            })
            .collect();
        let dst = out.plane_mut(c);
        for i in 0..n {
            dst[i] = blurred[blur_px[i] as usize][i];
        }
    }
    let noise_level = maps.per_pixel(&maps.noise_idx);
    let noise_sigma: Vec<f32> = noise_level
        .iter()
        .map(|&l| cfg.noise_levels[l as usize])
        .collect();
    let mut rng = rng_for(seed, 0x0015e);
    for c in 0..3 {
        let dst = out.plane_mut(c);
        for i in 0..n {
            let z: f32 = StandardNormal.sample(&mut rng);
            dst[i] += z * noise_sigma[i] / 255.0;
        }
    }
    // JPEG MCUs are 16×16 LR px; cells are multiples of 16, so each MCU lies in one cell.
    let (mh, mw) = (h.div_ceil(16), w.div_ceil(16));
    let mut factors = Vec::with_capacity(mh * mw);
    for my in 0..mh {
        for mx in 0..mw {
            let q = maps.jpeg_q[maps.cell_of(my * 16, mx * 16)];
            factors.push(quality_to_factor(q as f32));
        }
    }
    let coded = jpeg(&out, &factors);
    let lr = PlanarImage::from_rgb8(&coded.to_rgb8());
    ProbeSample {
        lr,
        noise_level,
        noise_sigma,
        blur_sigma: blur_px
            .iter()
            .map(|&b| cfg.blur_levels[b as usize])
            .collect(),
        jpeg_q: maps.per_pixel(&maps.jpeg_q),
    }
}
