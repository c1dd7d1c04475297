//! NIQE (Mittal, Soundararajan, Bovik 2013), a no-reference naturalness score (lower = more
//! natural), **with our own pristine model**.
//!
//! The published NIQE compares an image's patch statistics with a multivariate Gaussian fitted on
//! 125 pristine photos; those parameters (`modelparameters.mat`, shipped by BasicSR/pyiqa) are not
//! available offline here, so [`NiqeModel::fit`] refits them with the same recipe on photos we
//! have (by default the 79 training photos): per 96×96 patch of the luma, 18 features at two
//! scales (GGD fit of the MSCN coefficients, AGGD fits of their products with the 4 neighbours),
//! keeping the patches sharper than 0.75 × the sharpest of each photo. The algorithm follows
//! BasicSR's `calculate_niqe` (7×7 Gaussian window σ = 7/6 with replicated borders, MSCN with
//! `+1`, `np.roll` neighbours, the 0.2..10 step-0.001 shape table, antialiased bicubic ÷2 for the
//! second scale, rounded BT.601 luma). Differences: the pristine photos and the luma (the original
//! fit used MATLAB `rgb2gray`). **Scores are therefore not comparable with published NIQE values**;
//! they rank methods against each other under one fixed model.

use crate::degrade::downscale_bicubic_aa;
use crate::image::PlanarImage;
use image::RgbImage;

/// Features per patch and scale.
const FEAT: usize = 18;
/// Features per patch (two scales).
pub const DIM: usize = 2 * FEAT;
/// Patch side at the first scale.
pub const BLOCK: usize = 96;

/// Γ(x) for x > 0 (Lanczos, g = 7).
pub fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x))
    } else {
        let x = x - 1.0;
        let mut a = G[0];
        let t = x + 7.5;
        for (i, g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
    }
}

/// The shape table: `(α, Γ(2/α)² / (Γ(1/α) Γ(3/α)))` for α = 0.2, 0.201, …, 10.
fn shape_table() -> &'static [(f64, f64)] {
    static T: std::sync::OnceLock<Vec<(f64, f64)>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=9800)
            .map(|i| {
                let a = 0.2 + i as f64 * 0.001;
                let r = 1.0 / a;
                (a, gamma(2.0 * r).powi(2) / (gamma(r) * gamma(3.0 * r)))
            })
            .collect()
    })
}

/// AGGD fit: `(α, β_left, β_right)`; NaN when one side is empty.
pub fn aggd(v: &[f64]) -> (f64, f64, f64) {
    let (mut ls, mut ln, mut rs, mut rn, mut abs, mut sq) = (0.0, 0usize, 0.0, 0usize, 0.0, 0.0);
    for &x in v {
        if x < 0.0 {
            ls += x * x;
            ln += 1;
        } else if x > 0.0 {
            rs += x * x;
            rn += 1;
        }
        abs += x.abs();
        sq += x * x;
    }
    let n = v.len() as f64;
    let (lstd, rstd) = ((ls / ln as f64).sqrt(), (rs / rn as f64).sqrt());
    let g = lstd / rstd;
    let rhat = (abs / n).powi(2) / (sq / n);
    let rnorm = rhat * (g.powi(3) + 1.0) * (g + 1.0) / (g * g + 1.0).powi(2);
    if !rnorm.is_finite() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let alpha = shape_table()
        .iter()
        .min_by(|a, b| (a.1 - rnorm).powi(2).total_cmp(&(b.1 - rnorm).powi(2)))
        .map_or(f64::NAN, |t| t.0);
    let k = (gamma(1.0 / alpha) / gamma(3.0 / alpha)).sqrt();
    (alpha, lstd * k, rstd * k)
}

/// The 18 features of one MSCN block (`h × w`, row-major).
fn block_features(b: &[f64], h: usize, w: usize) -> [f64; FEAT] {
    let mut f = [0.0; FEAT];
    let (a, bl, br) = aggd(b);
    f[0] = a;
    f[1] = (bl + br) / 2.0;
    let mut prod = vec![0.0; h * w];
    for (k, (dy, dx)) in [(0isize, 1isize), (1, 0), (1, 1), (1, -1)]
        .iter()
        .enumerate()
    {
        for y in 0..h {
            let sy = (y as isize - dy).rem_euclid(h as isize) as usize;
            for x in 0..w {
                let sx = (x as isize - dx).rem_euclid(w as isize) as usize;
                prod[y * w + x] = b[y * w + x] * b[sy * w + sx];
            }
        }
        let (a, bl, br) = aggd(&prod);
        let mean = (br - bl) * gamma(2.0 / a) / gamma(1.0 / a);
        f[2 + 4 * k..6 + 4 * k].copy_from_slice(&[a, mean, bl, br]);
    }
    f
}

/// 7×7 Gaussian, σ = 7/6, replicated borders (`scipy.ndimage.convolve(mode='nearest')`).
fn gauss7(p: &[f64], h: usize, w: usize) -> Vec<f64> {
    let s = 7.0f64 / 6.0;
    let t: Vec<f64> = (-3..=3)
        .map(|i| (-(i * i) as f64 / (2.0 * s * s)).exp())
        .collect();
    let sum: f64 = t.iter().sum();
    let tp: Vec<f64> = t.iter().map(|v| v / sum).collect();
    // One 7-tap pass along x (step 1) then along y (step w), replicated borders.
    let pass = |src: &[f64], along_x: bool| -> Vec<f64> {
        let (n, step) = if along_x { (w, 1) } else { (h, w) };
        (0..h * w)
            .map(|i| {
                let k = if along_x { i % w } else { i / w };
                let base = i - k * step;
                (0..7)
                    .map(|t| {
                        let kk = (k as isize + t as isize - 3).clamp(0, n as isize - 1) as usize;
                        tp[t] * src[base + kk * step]
                    })
                    .sum()
            })
            .collect()
    };
    pass(&pass(p, true), false)
}

/// Rounded BT.601 luma (16..235) of an RGB image, as a row-major plane.
pub fn luma(img: &RgbImage) -> (Vec<f64>, usize, usize) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let y = img
        .pixels()
        .map(|p| savl_contract::metrics::luma_bt601(p.0).round())
        .collect();
    (y, h, w)
}

/// Per-patch features (`n × 36`) of a luma plane (`h × w`, cropped at the top-left to whole
/// 96×96 patches), and each patch's sharpness (mean local σ at the first scale).
pub fn patch_features(y: &[f64], h: usize, w: usize) -> (Vec<[f64; DIM]>, Vec<f64>) {
    let (bh, bw) = (h / BLOCK, w / BLOCK);
    let (ch, cw) = (bh * BLOCK, bw * BLOCK);
    let mut img: Vec<f64> = Vec::with_capacity(ch * cw);
    for r in 0..ch {
        img.extend_from_slice(&y[r * w..r * w + cw]);
    }
    let mut feats = vec![[0.0; DIM]; bh * bw];
    let mut sharp = vec![0.0; bh * bw];
    let (mut ih, mut iw) = (ch, cw);
    for scale in 0..2 {
        let mu = gauss7(&img, ih, iw);
        let sq: Vec<f64> = img.iter().map(|v| v * v).collect();
        let m2 = gauss7(&sq, ih, iw);
        let sigma: Vec<f64> = m2
            .iter()
            .zip(&mu)
            .map(|(a, m)| (a - m * m).abs().sqrt())
            .collect();
        let mscn: Vec<f64> = img
            .iter()
            .zip(mu.iter().zip(&sigma))
            .map(|(v, (m, s))| (v - m) / (s + 1.0))
            .collect();
        let b = BLOCK >> scale;
        let mut block = vec![0.0; b * b];
        for by in 0..bh {
            for bx in 0..bw {
                for r in 0..b {
                    let src = (by * b + r) * iw + bx * b;
                    block[r * b..(r + 1) * b].copy_from_slice(&mscn[src..src + b]);
                }
                let f = block_features(&block, b, b);
                feats[by * bw + bx][scale * FEAT..(scale + 1) * FEAT].copy_from_slice(&f);
                if scale == 0 {
                    let mut s = 0.0;
                    for r in 0..b {
                        let src = (by * b + r) * iw + bx * b;
                        s += sigma[src..src + b].iter().sum::<f64>();
                    }
                    sharp[by * bw + bx] = s / (b * b) as f64;
                }
            }
        }
        if scale == 0 {
            let p =
                PlanarImage::from_vec(1, ih, iw, img.iter().map(|v| (*v / 255.0) as f32).collect());
            let half = downscale_bicubic_aa(&p, 2);
            img = half.data.iter().map(|v| *v as f64 * 255.0).collect();
            (ih, iw) = (half.height, half.width);
        }
    }
    (feats, sharp)
}

/// Column means ignoring NaN, and the covariance (N − 1) of the rows without NaN.
fn mean_cov(rows: &[[f64; DIM]]) -> ([f64; DIM], Vec<f64>) {
    let mut mean = [0.0; DIM];
    for j in 0..DIM {
        let (s, n) = rows
            .iter()
            .map(|r| r[j])
            .filter(|v| v.is_finite())
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        mean[j] = s / n.max(1) as f64;
    }
    let clean: Vec<&[f64; DIM]> = rows
        .iter()
        .filter(|r| r.iter().all(|v| v.is_finite()))
        .collect();
    let mut cm = [0.0; DIM];
    for r in &clean {
        for j in 0..DIM {
            cm[j] += r[j];
        }
    }
    let n = clean.len().max(1) as f64;
    cm.iter_mut().for_each(|v| *v /= n);
    let mut cov = vec![0.0; DIM * DIM];
    for r in &clean {
        for i in 0..DIM {
            for j in 0..DIM {
                cov[i * DIM + j] += (r[i] - cm[i]) * (r[j] - cm[j]);
            }
        }
    }
    let d = (clean.len() as f64 - 1.0).max(1.0);
    cov.iter_mut().for_each(|v| *v /= d);
    (mean, cov)
}

/// Moore–Penrose pseudo-inverse of a symmetric `n × n` matrix (cyclic Jacobi eigensolver;
/// eigenvalues below `1e-10 · max` are dropped, like `numpy.linalg.pinv`'s default cut-off
/// order of magnitude).
pub fn pinv_sym(m: &[f64], n: usize) -> Vec<f64> {
    let mut a = m.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let ev: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    let max = ev.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let mut out = vec![0.0; n * n];
    for (k, e) in ev.iter().enumerate() {
        if e.abs() <= 1e-10 * max {
            continue;
        }
        for i in 0..n {
            for j in 0..n {
                out[i * n + j] += v[i * n + k] * v[j * n + k] / e;
            }
        }
    }
    out
}

/// A pristine multivariate Gaussian of the 36 patch features.
#[derive(Clone, Debug)]
pub struct NiqeModel {
    /// Mean.
    pub mean: [f64; DIM],
    /// Covariance, row-major 36 × 36.
    pub cov: Vec<f64>,
    /// Patches the model was fitted on.
    pub patches: usize,
}

impl NiqeModel {
    /// Fits on the patches of `photos` sharper than 0.75 × the sharpest patch of each photo.
    pub fn fit<'a>(photos: impl IntoIterator<Item = &'a RgbImage>) -> Self {
        Self::from_rows(&Self::patch_rows(photos))
    }

    /// The selected pristine patch features of `photos` (for fitting in batches).
    pub fn patch_rows<'a>(photos: impl IntoIterator<Item = &'a RgbImage>) -> Vec<[f64; DIM]> {
        let mut rows = Vec::new();
        for img in photos {
            let (y, h, w) = luma(img);
            let (f, s) = patch_features(&y, h, w);
            let max = s.iter().fold(0.0f64, |m, v| m.max(*v));
            rows.extend(
                f.into_iter()
                    .zip(s)
                    .filter(|(_, s)| *s > 0.75 * max)
                    .map(|(f, _)| f),
            );
        }
        rows
    }

    /// The Gaussian of the given pristine rows.
    pub fn from_rows(rows: &[[f64; DIM]]) -> Self {
        let (mean, cov) = mean_cov(rows);
        Self {
            mean,
            cov,
            patches: rows.len(),
        }
    }

    /// NIQE of `img` (at least 96×96 after `crop` px are removed on each side); lower is more
    /// natural. `None` when the image holds no whole patch.
    pub fn score(&self, img: &RgbImage, crop: u32) -> Option<f64> {
        let (w, h) = img.dimensions();
        if w <= 2 * crop || h <= 2 * crop {
            return None;
        }
        let c = image::imageops::crop_imm(img, crop, crop, w - 2 * crop, h - 2 * crop).to_image();
        let (y, h, w) = luma(&c);
        let (f, _) = patch_features(&y, h, w);
        if f.is_empty() {
            return None;
        }
        let (mean, cov) = mean_cov(&f);
        let avg: Vec<f64> = self
            .cov
            .iter()
            .zip(&cov)
            .map(|(a, b)| (a + b) / 2.0)
            .collect();
        let inv = pinv_sym(&avg, DIM);
        let d: Vec<f64> = (0..DIM).map(|i| self.mean[i] - mean[i]).collect();
        let mut q = 0.0;
        for i in 0..DIM {
            for j in 0..DIM {
                q += d[i] * inv[i * DIM + j] * d[j];
            }
        }
        Some(q.max(0.0).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_matches_known_values() {
        assert!((gamma(1.0) - 1.0).abs() < 1e-12);
        assert!((gamma(5.0) - 24.0).abs() < 1e-9);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-12);
        assert!((gamma(0.1) - 9.513_507_698_668_732).abs() < 1e-9);
    }

    #[test]
    fn aggd_recovers_the_gaussian_shape() {
        // Box–Muller normals: α ≈ 2, β ≈ σ·√2 on both sides.
        let mut s = 12345u64;
        let mut u = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let v: Vec<f64> = (0..200_000)
            .map(|_| (-2.0 * u().ln()).sqrt() * (std::f64::consts::TAU * u()).cos() * 3.0)
            .collect();
        let (a, bl, br) = aggd(&v);
        assert!((a - 2.0).abs() < 0.05, "α {a}");
        let want = 3.0 * 2f64.sqrt();
        assert!(
            (bl - want).abs() < 0.1 && (br - want).abs() < 0.1,
            "{bl} {br}"
        );
    }

    #[test]
    fn pinv_inverts_a_spd_matrix_and_drops_a_null_direction() {
        let m = [4.0, 1.0, 0.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0];
        let p = pinv_sym(&m, 3);
        // Inverse of [[4, 1], [1, 3]] is [[3, −1], [−1, 4]] / 11; the null direction stays 0.
        let want = [
            3.0 / 11.0,
            -1.0 / 11.0,
            0.0,
            -1.0 / 11.0,
            4.0 / 11.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
    }
}
