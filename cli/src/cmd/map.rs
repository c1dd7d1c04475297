//! The degradation map drawn by `savl inspect --map`.
//!
//! Three panels side by side, each the size of the input (small inputs enlarged by a whole
//! factor so the longer side reaches 320 px), on a white background:
//!
//! 1. **left**: the input picture;
//! 2. **middle**: the severity `s(u)` as a heatmap, turbo colour map from `s = −3` (dark blue:
//!    clean) through cyan, green and yellow to `s = +3` (dark red: strongly degraded), with the colour scale
//!    drawn as a strip under the panel (−3 at its left end, +3 at its right end);
//! 3. **right**: the degradation code μ (d channels) shown as colour: its first three principal
//!    components over this picture become R, G and B (each scaled to ±2.5 standard deviations
//!    around mid-grey). Areas of similar colour have a similar kind of degradation; the colours
//!    themselves have no fixed meaning from picture to picture.

use image::{Rgb, RgbImage};
use savl::DegradationEstimate;

/// Pixels of white between panels and above the colour strip.
const GAP: u32 = 8;

/// Most pixels used to estimate the principal components (the projection uses them all).
const PCA_SAMPLES: usize = 1 << 16;

/// Turbo colour map (Google's polynomial approximation), `t` in [0, 1].
pub fn turbo(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) as f64;
    let poly = |c: [f64; 6]| {
        let v = c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * c[5]))));
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    [
        poly([
            0.13572138,
            4.61539260,
            -42.66032258,
            132.13108234,
            -152.94239396,
            59.28637943,
        ]),
        poly([
            0.09140261,
            2.19418839,
            4.84296658,
            -14.18503333,
            4.27729857,
            2.82956604,
        ]),
        poly([
            0.10667330,
            12.64194608,
            -60.58204836,
            110.36276771,
            -89.90310912,
            27.34824973,
        ]),
    ]
}

/// Colour of a severity value (standardised, −3 … 3).
pub fn severity_colour(s: f32) -> [u8; 3] {
    let s = if s.is_finite() { s } else { 0.0 };
    turbo((s + 3.0) / 6.0)
}

/// μ (planar `d × n`) projected on its first three principal components, each scaled to [0, 1]
/// (±2.5 σ around 0.5). Deterministic: the sign of each component is chosen so that its largest
/// loading is positive.
pub fn mu_to_rgb(mu: &[f32], d: usize, n: usize) -> Vec<[f32; 3]> {
    if d == 0 || n == 0 || mu.len() < d * n {
        return vec![[0.5; 3]; n];
    }
    let stride = n.div_ceil(PCA_SAMPLES).max(1);
    let samples: Vec<usize> = (0..n).step_by(stride).collect();
    let m = samples.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|k| {
            samples
                .iter()
                .map(|&i| f64::from(mu[k * n + i]))
                .sum::<f64>()
                / m
        })
        .collect();
    let mut cov = vec![0f64; d * d];
    let mut x = vec![0f64; d];
    for &i in &samples {
        for k in 0..d {
            x[k] = f64::from(mu[k * n + i]) - mean[k];
        }
        for a in 0..d {
            for b in a..d {
                cov[a * d + b] += x[a] * x[b];
            }
        }
    }
    for a in 0..d {
        for b in a..d {
            cov[a * d + b] /= m;
            cov[b * d + a] = cov[a * d + b];
        }
    }
    // Top three eigenvectors by power iteration with deflation.
    let mut comps: Vec<(Vec<f64>, f64)> = Vec::new();
    for c in 0..3.min(d) {
        let mut v: Vec<f64> = (0..d)
            .map(|k| if k == c { 1.0 } else { 0.1 / (1 + k) as f64 })
            .collect();
        let mut lambda = 0.0;
        for _ in 0..200 {
            let w: Vec<f64> = (0..d)
                .map(|a| (0..d).map(|b| cov[a * d + b] * v[b]).sum())
                .collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-20 {
                lambda = 0.0;
                break;
            }
            lambda = norm;
            v = w.into_iter().map(|x| x / norm).collect();
        }
        let big = v
            .iter()
            .copied()
            .fold(0.0f64, |acc, x| if x.abs() > acc.abs() { x } else { acc });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        for a in 0..d {
            for b in 0..d {
                cov[a * d + b] -= lambda * v[a] * v[b];
            }
        }
        comps.push((v, lambda));
    }
    (0..n)
        .map(|i| {
            let mut px = [0.5f32; 3];
            for (c, (v, lambda)) in comps.iter().enumerate() {
                let sd = lambda.max(0.0).sqrt();
                if sd < 1e-9 {
                    continue;
                }
                let p: f64 = (0..d)
                    .map(|k| (f64::from(mu[k * n + i]) - mean[k]) * v[k])
                    .sum();
                px[c] = (0.5 + 0.5 * p / (2.5 * sd)).clamp(0.0, 1.0) as f32;
            }
            px
        })
        .collect()
}

/// Borrowed degradation maps at LR resolution (what [`DegradationEstimate`] holds).
#[derive(Debug, Clone, Copy)]
pub struct Maps<'a> {
    /// Map width.
    pub width: usize,
    /// Map height.
    pub height: usize,
    /// Channels of μ.
    pub dim: usize,
    /// μ, planar `dim × height × width`.
    pub mu: &'a [f32],
    /// Severity, `height × width`.
    pub severity: &'a [f32],
}

impl<'a> From<&'a DegradationEstimate> for Maps<'a> {
    fn from(e: &'a DegradationEstimate) -> Self {
        Maps {
            width: e.width,
            height: e.height,
            dim: e.dim,
            mu: &e.mu,
            severity: &e.severity,
        }
    }
}

/// Panels of small pictures are enlarged (nearest neighbour, whole factors up to 8) until their
/// longer side reaches this, so the map stays readable.
const MIN_PANEL_SIDE: u32 = 320;

/// Draws the three-panel map (see the module docs) for `input` and its maps.
pub fn render(input: &RgbImage, est: Maps<'_>) -> RgbImage {
    let (w, h) = input.dimensions();
    let k = MIN_PANEL_SIDE.div_ceil(w.max(h).max(1)).clamp(1, 8);
    let (pw, ph) = (w * k, h * k);
    let strip = (ph / 16).clamp(6, 32);
    let mut canvas = RgbImage::from_pixel(3 * pw + 2 * GAP, ph + GAP + strip, Rgb([255, 255, 255]));
    let (ew, eh) = (est.width.max(1), est.height.max(1));
    let n = est.width * est.height;
    let mu_rgb = mu_to_rgb(est.mu, est.dim, n);
    // Nearest-neighbour lookup, in case the maps are not at the input's resolution.
    let at = |x: u32, y: u32| -> usize {
        let ex = (x as usize * ew / w as usize).min(ew - 1);
        let ey = (y as usize * eh / h as usize).min(eh - 1);
        ey * est.width + ex
    };
    for py in 0..ph {
        for px in 0..pw {
            let (x, y) = (px / k, py / k);
            canvas.put_pixel(px, py, *input.get_pixel(x, y));
            let i = at(x, y);
            let s = est.severity.get(i).copied().unwrap_or(0.0);
            canvas.put_pixel(pw + GAP + px, py, Rgb(severity_colour(s)));
            let m = mu_rgb.get(i).copied().unwrap_or([0.5; 3]);
            canvas.put_pixel(
                2 * (pw + GAP) + px,
                py,
                Rgb(m.map(|c| (c * 255.0).round() as u8)),
            );
        }
    }
    for px in 0..pw {
        let t = if pw > 1 {
            px as f32 / (pw - 1) as f32
        } else {
            0.5
        };
        for py in ph + GAP..ph + GAP + strip {
            canvas.put_pixel(pw + GAP + px, py, Rgb(turbo(t)));
        }
    }
    canvas
}

/// Summary statistics of the severity map: (mean, median, 90th percentile, max, share > 1).
pub fn severity_stats(severity: &[f32]) -> Option<(f32, f32, f32, f32, f32)> {
    let mut v: Vec<f32> = severity.iter().copied().filter(|s| s.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let mean = (v.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64) as f32;
    let above = v.iter().filter(|&&s| s > 1.0).count() as f32 / n as f32;
    v.sort_unstable_by(f32::total_cmp);
    let q = |p: f64| v[((n - 1) as f64 * p).round() as usize];
    Some((mean, q(0.5), q(0.9), v[n - 1], above))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turbo_ends() {
        let lo = turbo(0.15);
        let hi = turbo(0.9);
        assert!(lo[2] > lo[0], "low end is blue: {lo:?}");
        assert!(hi[0] > hi[2], "high end is red: {hi:?}");
    }

    #[test]
    fn pca_finds_the_varying_direction() {
        // d = 3, n = 100: channel 1 varies, others constant.
        let n = 100;
        let mut mu = vec![0.2f32; 3 * n];
        for i in 0..n {
            mu[n + i] = i as f32 / n as f32;
        }
        let rgb = mu_to_rgb(&mu, 3, n);
        assert!(
            rgb[0][0] < 0.3 && rgb[n - 1][0] > 0.7,
            "{:?} {:?}",
            rgb[0],
            rgb[n - 1]
        );
        assert!((rgb[10][1] - 0.5).abs() < 1e-3);
    }

    #[test]
    fn render_layout() {
        let input = RgbImage::from_pixel(10, 6, Rgb([1, 2, 3]));
        let (mu, severity) = (vec![0.0; 2 * 60], vec![3.0; 60]);
        let est = Maps {
            width: 10,
            height: 6,
            dim: 2,
            mu: &mu,
            severity: &severity,
        };
        let map = render(&input, est);
        // 10×6 is enlarged 8× (the cap) to 80×48 panels.
        assert_eq!(map.dimensions(), (3 * 80 + 2 * GAP, 48 + GAP + 6));
        assert_eq!(map.get_pixel(79, 47).0, [1, 2, 3]);
        assert_eq!(map.get_pixel(80 + GAP, 0).0, severity_colour(3.0));
    }

    #[test]
    fn stats() {
        let (mean, med, p90, max, above) = severity_stats(&[0.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((mean, max), (1.5, 3.0));
        assert!(med >= 1.0 && p90 >= 2.0 && (above - 0.5).abs() < 1e-6);
    }
}
