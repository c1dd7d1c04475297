//! Regime masks (§3.2): smooth random fields, argmax into hard labels, area check, Gaussian
//! softening. The soft masks sum to 1 at every pixel.

use super::filter::gaussian_blur;
use super::resize::{resample_plane, Resample1d, ResizeMode};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Knobs of the mask generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskConfig {
    /// Coarse-grid cell size range in HR px, drawn log-uniformly once per image.
    pub cell_px: (f64, f64),
    /// Minimum pixel fraction of every regime.
    pub min_region_frac: f64,
    /// Edge softening σ range in HR px.
    pub edge_sigma_px: (f64, f64),
    /// Probability of hard edges (σ_e = 0.5).
    pub hard_edge_prob: f64,
}

impl Default for MaskConfig {
    fn default() -> Self {
        Self {
            cell_px: (32.0, 160.0),
            edge_sigma_px: (1.0, 16.0),
            hard_edge_prob: 0.25,
            min_region_frac: 0.08,
        }
    }
}

/// Soft regime masks at one resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Masks {
    /// Number of regimes.
    pub k: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `k` planes of `height × width`; at every pixel the planes sum to 1.
    pub weights: Vec<Vec<f32>>,
}

impl Masks {
    /// One regime covering everything.
    pub fn single(height: usize, width: usize) -> Self {
        Self {
            k: 1,
            height,
            width,
            weights: vec![vec![1.0; height * width]],
        }
    }

    /// Index of the largest weight at every pixel (ties → lowest index).
    pub fn argmax(&self) -> Vec<u8> {
        (0..self.height * self.width)
            .map(|i| {
                let mut best = 0;
                for k in 1..self.k {
                    if self.weights[k][i] > self.weights[best][i] {
                        best = k;
                    }
                }
                best as u8
            })
            .collect()
    }

    /// The masks resampled to `oh × ow` (area down, bilinear up; the sum stays 1).
    pub fn resized(&self, oh: usize, ow: usize) -> Self {
        let weights = self
            .weights
            .iter()
            .map(|p| super::resize::resize_masks(p, self.height, self.width, oh, ow))
            .collect();
        Self {
            k: self.k,
            height: oh,
            width: ow,
            weights,
        }
    }

    /// `Σ_k w_k(u) · v_k` per pixel.
    pub fn blend(&self, values: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; self.height * self.width];
        for (plane, &v) in self.weights.iter().zip(values) {
            if v != 0.0 {
                out.iter_mut().zip(plane).for_each(|(o, &m)| *o += m * v);
            }
        }
        out
    }
}

/// A smooth random field: white Gaussian noise on a grid of cell `cell` px, bicubic-upsampled
/// to `h × w`. Values are roughly unit-variance.
pub fn smooth_field<R: Rng>(rng: &mut R, h: usize, w: usize, cell: f64) -> Vec<f32> {
    let gh = ((h as f64 / cell).ceil() as usize + 1).max(2);
    let gw = ((w as f64 / cell).ceil() as usize + 1).max(2);
    let grid: Vec<f32> = (0..gh * gw).map(|_| StandardNormal.sample(rng)).collect();
    let ry = Resample1d::new(gh, h, ResizeMode::Bicubic);
    let rx = Resample1d::new(gw, w, ResizeMode::Bicubic);
    resample_plane(&grid, gh, gw, &ry, &rx)
}

/// Draws `k` soft masks at `h × w` (§3.2). Returns fewer regimes when the area check fails three
/// times at a given `k`; `k = 1` gives a single all-ones mask.
pub fn random_masks<R: Rng>(rng: &mut R, k: usize, h: usize, w: usize, cfg: &MaskConfig) -> Masks {
    if k <= 1 {
        return Masks::single(h, w);
    }
    let (clo, chi) = cfg.cell_px;
    let cell = (rng.random_range(clo.ln()..=chi.ln())).exp();
    let n = h * w;
    let mut k = k;
    let labels = loop {
        if k == 1 {
            return Masks::single(h, w);
        }
        let mut found = None;
        for _ in 0..3 {
            let fields: Vec<Vec<f32>> = (0..k).map(|_| smooth_field(rng, h, w, cell)).collect();
            let offsets: Vec<f32> = (0..k)
                .map(|_| {
                    let z: f32 = StandardNormal.sample(rng);
                    0.5 * z
                })
                .collect();
            let mut labels = vec![0u8; n];
            let mut counts = vec![0usize; k];
            for i in 0..n {
                let mut best = 0;
                let mut bv = f32::NEG_INFINITY;
                for j in 0..k {
                    let v = fields[j][i] + offsets[j];
                    if v > bv {
                        bv = v;
                        best = j;
                    }
                }
                labels[i] = best as u8;
                counts[best] += 1;
            }
            if counts
                .iter()
                .all(|&c| c as f64 >= cfg.min_region_frac * n as f64)
            {
                found = Some(labels);
                break;
            }
        }
        match found {
            Some(l) => break l,
            None => k -= 1,
        }
    };
    let sigma_e = if rng.random::<f64>() < cfg.hard_edge_prob {
        0.5
    } else {
        rng.random_range(cfg.edge_sigma_px.0..=cfg.edge_sigma_px.1)
    };
    // The last mask is 1 − Σ others (the blur is linear and normalised), one blur fewer.
    let mut weights: Vec<Vec<f32>> = (0..k - 1)
        .map(|j| {
            let onehot: Vec<f32> = labels
                .iter()
                .map(|&l| if l as usize == j { 1.0 } else { 0.0 })
                .collect();
            gaussian_blur(&onehot, h, w, sigma_e)
        })
        .collect();
    let last = (0..n)
        .map(|i| {
            let v = 1.0 - weights.iter().map(|p| p[i]).sum::<f32>();
            // Rounding leaves ~1e-7 where the others cover everything; keep the support exact.
            if v < 1e-6 {
                0.0
            } else {
                v
            }
        })
        .collect();
    weights.push(last);
    Masks {
        k,
        height: h,
        width: w,
        weights,
    }
}
