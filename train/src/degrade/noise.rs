//! Spatially varying Gaussian + Poisson noise, sampled once per image (§3.5, with the Poisson
//! model of §1.4 / BasicSR `random_add_poisson_noise_pt`).

use crate::image::{round_half_up_u8, PlanarImage};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Per-pixel noise parameters on the working grid.
#[derive(Clone, Debug, Default)]
pub struct NoiseMaps {
    /// Gaussian std `A_G(u)` (intensity units, not /255).
    pub gauss_sigma: Vec<f32>,
    /// Poisson scale `A_P(u)`.
    pub poisson_scale: Vec<f32>,
    /// Grey fraction `γ(u)` ∈ [0, 1].
    pub gray: Vec<f32>,
}

/// Luma weights of torchvision `rgb_to_grayscale`.
const LUMA: [f32; 3] = [0.2989, 0.587, 0.114];

/// Poisson residuals `Poisson(q·vals)/vals − q` of the 8-bit quantised planes `q`, where
/// `vals = 2^⌈log₂ #unique⌉` over all given planes.
fn poisson_residual<R: Rng>(rng: &mut R, planes: &[&[f32]], need: &[f32]) -> Vec<Vec<f32>> {
    let quant: Vec<Vec<u8>> = planes
        .iter()
        .map(|p| {
            p.iter()
                .map(|&v| round_half_up_u8(v.clamp(0.0, 1.0) * 255.0))
                .collect()
        })
        .collect();
    let mut seen = [false; 256];
    quant
        .iter()
        .flatten()
        .for_each(|&q| seen[q as usize] = true);
    let unique = seen.iter().filter(|&&s| s).count().max(1);
    let vals_log2 = (unique as f64).log2().ceil() as u32;
    let vals = 2f64.powi(vals_log2 as i32);
    let tables = poisson_tables(vals_log2);
    // k / vals is exact as a product (vals is a power of 2); q / 255 comes from a table.
    let inv_vals = 1.0 / vals;
    let level: [f64; 256] = std::array::from_fn(|q| q as f64 / 255.0);
    quant
        .iter()
        .map(|q| {
            q.iter()
                .zip(need)
                .map(|(&qv, &n)| {
                    if n == 0.0 {
                        return 0.0;
                    }
                    let k = tables[qv as usize].sample(rng.random());
                    (k as f64 * inv_vals - level[qv as usize]) as f32
                })
                .collect()
        })
        .collect()
}

/// An exact Poisson(λ) sampler by inversion: the CDF and a guide table (`guide[j]` = the first
/// `k` with `cdf[k] ≥ j / len`), so a draw starts its search next to its answer.
struct PoissonTable {
    /// The CDF followed by a `+∞` sentinel, so the search needs no bounds test.
    cdf: Vec<f64>,
    guide: Vec<u32>,
}

impl PoissonTable {
    fn new(lambda: f64) -> Self {
        let mut cdf = poisson_cdf(lambda);
        let n = cdf.len();
        let guide = (0..n)
            .map(|j| cdf.partition_point(|&c| c < j as f64 / n as f64) as u32)
            .collect();
        cdf.push(f64::INFINITY);
        Self { cdf, guide }
    }

    /// The smallest `k` with `cdf[k] ≥ u` (the last `k` if none), for `u ∈ [0, 1)`: the same
    /// answer as a binary search over `cdf`.
    #[inline]
    fn sample(&self, u: f64) -> usize {
        let n = self.guide.len();
        let mut k = self.guide[((u * n as f64) as usize).min(n - 1)] as usize;
        // Two branch-free steps settle almost every draw (a step past the answer adds 0); the
        // loop finishes the rare longer searches.
        k += (self.cdf[k] < u) as usize;
        k += (self.cdf[k] < u) as usize;
        while self.cdf[k] < u {
            k += 1;
        }
        k.min(n - 1)
    }
}

/// The samplers of the 256 levels `λ = q / 255 · 2^vals_log2` (`vals_log2 ≤ 8`), built once per
/// process: λ takes at most 256 values per `vals`, so each level gets an exact CDF table
/// (truncated 12 std above the mean, where the tail is below 1e-30).
fn poisson_tables(vals_log2: u32) -> &'static [PoissonTable] {
    use std::sync::OnceLock;
    static TABLES: [OnceLock<Vec<PoissonTable>>; 9] = [const { OnceLock::new() }; 9];
    let i = (vals_log2 as usize).min(8);
    TABLES[i].get_or_init(|| {
        let vals = 2f64.powi(i as i32);
        (0..256)
            .map(|q| PoissonTable::new(q as f64 / 255.0 * vals))
            .collect()
    })
}

/// Cumulative Poisson(λ) probabilities for k = 0 ..= ⌈λ + 12√λ + 12⌉.
pub fn poisson_cdf(lambda: f64) -> Vec<f64> {
    let kmax = (lambda + 12.0 * lambda.sqrt() + 12.0).ceil() as usize;
    let mut cdf = Vec::with_capacity(kmax + 1);
    // Start from log p(0) = −λ; exp(−λ) stays a normal f64 for λ ≤ 700 (here λ ≤ 256).
    let mut p = (-lambda).exp();
    let mut acc = 0.0;
    for k in 0..=kmax {
        if k > 0 {
            p *= lambda / k as f64;
        }
        acc += p;
        cdf.push(acc);
    }
    cdf
}

/// The noise field `n(u) = A_G(√(1−γ) ε_rgb + √γ ε_gray) + A_P((1−γ) n_P,rgb + γ n_P,gray)` for a
/// 3-plane `img` (§3.5). The caller adds it and clips. Unit Gaussian fields and Poisson residuals
/// are drawn once over the whole image, and only where their amplitude is non-zero.
pub fn noise_field<R: Rng>(rng: &mut R, img: &PlanarImage, maps: &NoiseMaps) -> PlanarImage {
    let n = img.plane_len();
    let mut out = PlanarImage::zeros(img.channels, img.height, img.width);
    let any_g = maps.gauss_sigma.iter().any(|&a| a > 0.0);
    let any_p = maps.poisson_scale.iter().any(|&a| a > 0.0);
    let any_gray = maps.gray.iter().any(|&g| g > 0.0);
    if any_g {
        let gray_eps: Vec<f32> = if any_gray {
            (0..n).map(|_| StandardNormal.sample(rng)).collect()
        } else {
            vec![0.0; n]
        };
        // The per-pixel weights √(1−γ) and √γ·ε_gray, computed once for all channels.
        let w_rgb: Vec<f32> = maps.gray.iter().map(|&g| (1.0 - g).sqrt()).collect();
        let w_gray: Vec<f32> = maps
            .gray
            .iter()
            .zip(&gray_eps)
            .map(|(&g, &e)| g.sqrt() * e)
            .collect();
        for c in 0..img.channels {
            let o = out.plane_mut(c);
            for i in 0..n {
                let a = maps.gauss_sigma[i];
                if a > 0.0 {
                    let e: f32 = StandardNormal.sample(rng);
                    o[i] += a * (w_rgb[i] * e + w_gray[i]);
                }
            }
        }
    }
    if any_p {
        let rgb: Vec<&[f32]> = (0..img.channels).map(|c| img.plane(c)).collect();
        let colour = poisson_residual(rng, &rgb, &maps.poisson_scale);
        let gray = if any_gray && img.channels == 3 {
            let luma: Vec<f32> = (0..n)
                .map(|i| LUMA[0] * rgb[0][i] + LUMA[1] * rgb[1][i] + LUMA[2] * rgb[2][i])
                .collect();
            let need: Vec<f32> = maps
                .poisson_scale
                .iter()
                .zip(&maps.gray)
                .map(|(&a, &g)| a * g)
                .collect();
            poisson_residual(rng, &[&luma], &need)
                .pop()
                .unwrap_or_default()
        } else {
            vec![0.0; n]
        };
        for (c, col) in colour.iter().enumerate() {
            let o = out.plane_mut(c);
            for i in 0..n {
                let a = maps.poisson_scale[i];
                if a > 0.0 {
                    let g = maps.gray[i];
                    o[i] += a * ((1.0 - g) * col[i] + g * gray[i]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The guide-table search gives exactly the binary search's answer, including `u` past the
    /// truncated tail and `u` on the guide's bucket edges.
    #[test]
    fn guided_inversion_equals_binary_search() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for lambda in [0.0, 0.004, 0.7, 3.0, 17.5, 128.0, 256.0] {
            let t = PoissonTable::new(lambda);
            let cdf = poisson_cdf(lambda);
            let n = cdf.len();
            assert_eq!(t.cdf[..n], cdf[..]);
            let edges = (0..n).map(|j| j as f64 / n as f64);
            let us: Vec<f64> = (0..20_000)
                .map(|_| rng.random::<f64>())
                .chain(edges)
                .chain([0.0, 1.0 - f64::EPSILON])
                .chain(cdf.iter().copied().filter(|&c| c < 1.0))
                .collect();
            for u in us {
                let want = cdf.partition_point(|&c| c < u).min(n - 1);
                assert_eq!(t.sample(u), want, "λ {lambda}, u {u}");
            }
        }
    }
}
