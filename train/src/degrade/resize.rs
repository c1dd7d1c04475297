//! Resampling with PyTorch `F.interpolate` semantics (`align_corners=False`, no antialiasing:
//! aliasing on downscale is part of the Real-ESRGAN distribution), adaptive average pooling
//! (`area`), and an antialiased bicubic ÷n for the clean content code.

use crate::image::PlanarImage;

/// Interpolation mode of a random resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Adaptive average pooling (`mode="area"`).
    Area,
    /// Bilinear, not antialiased.
    Bilinear,
    /// Bicubic with a = −0.75, not antialiased.
    Bicubic,
}

impl ResizeMode {
    /// Short name used in file metadata.
    pub fn name(self) -> &'static str {
        match self {
            ResizeMode::Area => "area",
            ResizeMode::Bilinear => "bilinear",
            ResizeMode::Bicubic => "bicubic",
        }
    }
}

/// A 1-D resampling operator: output `i` is `Σ_t weights[i·taps + t] · in[index[i·taps + t]]`.
#[derive(Clone, Debug)]
pub struct Resample1d {
    /// Input length.
    pub n_in: usize,
    /// Output length.
    pub n_out: usize,
    /// Taps per output sample.
    pub taps: usize,
    index: Vec<usize>,
    weights: Vec<f32>,
}

fn cubic(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

impl Resample1d {
    fn from_rows(n_in: usize, rows: Vec<Vec<(usize, f64)>>) -> Self {
        let taps = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
        let mut index = Vec::with_capacity(rows.len() * taps);
        let mut weights = Vec::with_capacity(rows.len() * taps);
        for r in &rows {
            for t in 0..taps {
                let (i, wv) = r.get(t).copied().unwrap_or((r[0].0, 0.0));
                index.push(i);
                weights.push(wv as f32);
            }
        }
        Self {
            n_in,
            n_out: rows.len(),
            taps,
            index,
            weights,
        }
    }

    /// PyTorch `F.interpolate(size=n_out, mode, align_corners=False)` along one axis.
    pub fn new(n_in: usize, n_out: usize, mode: ResizeMode) -> Self {
        assert!(n_in > 0 && n_out > 0, "resize to or from an empty axis");
        let scale = n_in as f64 / n_out as f64;
        let last = n_in - 1;
        let rows = (0..n_out)
            .map(|i| match mode {
                ResizeMode::Area => {
                    let a = (i * n_in) / n_out;
                    let b = ((i + 1) * n_in).div_ceil(n_out);
                    let wv = 1.0 / (b - a) as f64;
                    (a..b).map(|j| (j, wv)).collect()
                }
                ResizeMode::Bilinear => {
                    let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
                    let i0 = (src.floor() as usize).min(last);
                    let i1 = (i0 + 1).min(last);
                    let l = src - i0 as f64;
                    vec![(i0, 1.0 - l), (i1, l)]
                }
                ResizeMode::Bicubic => {
                    let src = (i as f64 + 0.5) * scale - 0.5;
                    let f = src.floor();
                    let t = src - f;
                    (-1..=2)
                        .map(|k| {
                            let j = (f as isize + k).clamp(0, last as isize) as usize;
                            (j, cubic(t - k as f64, -0.75))
                        })
                        .collect()
                }
            })
            .collect();
        Self::from_rows(n_in, rows)
    }

    /// Antialiased bicubic (Keys a = −0.5, the PIL / `antialias=True` filter) from `n_in` to
    /// `n_out`: the cubic is stretched by the downscale factor and the taps are renormalised.
    pub fn bicubic_antialiased(n_in: usize, n_out: usize) -> Self {
        let scale = n_in as f64 / n_out as f64;
        let support = 2.0 * scale.max(1.0);
        let fs = scale.max(1.0);
        let rows = (0..n_out)
            .map(|i| {
                let center = (i as f64 + 0.5) * scale;
                let lo = ((center - support).floor().max(0.0)) as usize;
                let hi = ((center + support).ceil() as usize).min(n_in);
                let mut r: Vec<(usize, f64)> = (lo..hi)
                    .map(|j| (j, cubic((j as f64 + 0.5 - center) / fs, -0.5)))
                    .filter(|p| p.1 != 0.0)
                    .collect();
                let s: f64 = r.iter().map(|p| p.1).sum();
                r.iter_mut().for_each(|p| p.1 /= s);
                r
            })
            .collect();
        Self::from_rows(n_in, rows)
    }

    /// Source indices and weights of output sample `o`.
    #[inline]
    fn weights_of(&self, o: usize) -> (&[usize], &[f32]) {
        let t = self.taps;
        (
            &self.index[o * t..(o + 1) * t],
            &self.weights[o * t..(o + 1) * t],
        )
    }
}

/// Resamples one `h × w` plane with a vertical and a horizontal 1-D operator.
pub fn resample_plane(
    plane: &[f32],
    h: usize,
    w: usize,
    ry: &Resample1d,
    rx: &Resample1d,
) -> Vec<f32> {
    assert!(ry.n_in == h && rx.n_in == w);
    let (oh, ow) = (ry.n_out, rx.n_out);
    // The horizontal pass gathers (it does not vectorise), so it runs on the shorter of the
    // input and the output height.
    if oh < h {
        let tmp = vertical_pass(plane, w, ry);
        horizontal_pass(&tmp, oh, w, rx)
    } else {
        let tmp = horizontal_pass(plane, h, w, rx);
        vertical_pass(&tmp, ow, ry)
    }
}

fn horizontal_pass(plane: &[f32], h: usize, w: usize, rx: &Resample1d) -> Vec<f32> {
    match rx.taps {
        2 => horizontal_pass_n::<2>(plane, h, w, rx),
        4 => horizontal_pass_n::<4>(plane, h, w, rx),
        _ => {
            let ow = rx.n_out;
            let mut out = vec![0.0f32; h * ow];
            for y in 0..h {
                let src = &plane[y * w..(y + 1) * w];
                let dst = &mut out[y * ow..(y + 1) * ow];
                for (x, d) in dst.iter_mut().enumerate() {
                    let (idx, wts) = rx.weights_of(x);
                    *d = idx.iter().zip(wts).map(|(&i, &wv)| wv * src[i]).sum();
                }
            }
            out
        }
    }
}

/// `v` cut into arrays of `N` (`v.len()` a multiple of `N`).
fn as_arrays<E: Copy, const N: usize>(v: &[E]) -> Vec<[E; N]> {
    v.chunks_exact(N)
        .map(|c| c.try_into().expect("length is a multiple of N"))
        .collect()
}

/// [`horizontal_pass`] for operators of exactly `T` taps (bilinear 2, bicubic 4): the tap loop
/// unrolls and the index bounds are checked once per row. Same sums, same order.
fn horizontal_pass_n<const T: usize>(
    plane: &[f32],
    h: usize,
    w: usize,
    rx: &Resample1d,
) -> Vec<f32> {
    let ow = rx.n_out;
    let (idx, wts) = (as_arrays::<_, T>(&rx.index), as_arrays::<_, T>(&rx.weights));
    assert!(idx.len() == ow && wts.len() == ow && idx.iter().flatten().all(|&i| i < w));
    let mut out = vec![0.0f32; h * ow];
    for y in 0..h {
        let src: &[f32] = &plane[y * w..(y + 1) * w];
        let dst = &mut out[y * ow..(y + 1) * ow];
        for ((d, ix), wv) in dst.iter_mut().zip(&idx).zip(&wts) {
            let mut s = 0.0f32;
            for t in 0..T {
                s += wv[t] * src[ix[t]];
            }
            *d = s;
        }
    }
    out
}

/// Rows are combined whole, which vectorises.
fn vertical_pass(plane: &[f32], w: usize, ry: &Resample1d) -> Vec<f32> {
    let mut out = vec![0.0f32; ry.n_out * w];
    for y in 0..ry.n_out {
        let (idx, wts) = ry.weights_of(y);
        let dst = &mut out[y * w..(y + 1) * w];
        for (&i, &wv) in idx.iter().zip(wts) {
            if wv == 0.0 {
                continue;
            }
            for (d, &s) in dst.iter_mut().zip(&plane[i * w..(i + 1) * w]) {
                *d += wv * s;
            }
        }
    }
    out
}

/// Resizes every plane of `img` to `oh × ow` with `mode` (PyTorch semantics).
pub fn resize(img: &PlanarImage, oh: usize, ow: usize, mode: ResizeMode) -> PlanarImage {
    if oh == img.height && ow == img.width {
        return img.clone();
    }
    let ry = Resample1d::new(img.height, oh, mode);
    let rx = Resample1d::new(img.width, ow, mode);
    map_planes(img, oh, ow, |p| {
        resample_plane(p, img.height, img.width, &ry, &rx)
    })
}

/// Resamples soft masks (or any map meant to keep partition-of-unity) to `oh × ow`: area
/// averaging when shrinking, bilinear when enlarging (per axis). Both are convex combinations,
/// so masks that sum to 1 still do.
pub fn resize_masks(plane: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    if oh == h && ow == w {
        return plane.to_vec();
    }
    let mode = |a: usize, b: usize| {
        if b < a {
            ResizeMode::Area
        } else {
            ResizeMode::Bilinear
        }
    };
    let ry = Resample1d::new(h, oh, mode(h, oh));
    let rx = Resample1d::new(w, ow, mode(w, ow));
    resample_plane(plane, h, w, &ry, &rx)
}

/// Nearest-neighbour resampling of a label plane (`out[i] = in[floor((i + 0.5)·n_in/n_out)]`).
pub fn resize_nearest<T: Copy>(plane: &[T], h: usize, w: usize, oh: usize, ow: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(oh * ow);
    let sxs: Vec<usize> = (0..ow)
        .map(|x| (((x as f64 + 0.5) * w as f64 / ow as f64) as usize).min(w - 1))
        .collect();
    for y in 0..oh {
        let sy = (((y as f64 + 0.5) * h as f64 / oh as f64) as usize).min(h - 1);
        let row = &plane[sy * w..(sy + 1) * w];
        out.extend(sxs.iter().map(|&sx| row[sx]));
    }
    out
}

fn map_planes(
    img: &PlanarImage,
    oh: usize,
    ow: usize,
    f: impl Fn(&[f32]) -> Vec<f32>,
) -> PlanarImage {
    let mut data = Vec::with_capacity(img.channels * oh * ow);
    for c in 0..img.channels {
        data.extend(f(img.plane(c)));
    }
    PlanarImage::from_vec(img.channels, oh, ow, data)
}

/// Antialiased bicubic downscale by an integer `factor` (the clean "content code" z of an HR
/// crop): output `⌊h/factor⌋ × ⌊w/factor⌋`, each axis filtered with the PIL-style stretched
/// cubic (a = −0.5), border taps renormalised. A constant image stays constant.
///
/// # Panics
/// If `factor` is 0 or larger than a side of `img`.
pub fn downscale_bicubic_aa(img: &PlanarImage, factor: usize) -> PlanarImage {
    assert!(
        factor > 0 && img.height >= factor && img.width >= factor,
        "downscale_bicubic_aa: bad factor"
    );
    let (oh, ow) = (img.height / factor, img.width / factor);
    let ry = Resample1d::bicubic_antialiased(img.height, oh);
    let rx = Resample1d::bicubic_antialiased(img.width, ow);
    map_planes(img, oh, ow, |p| {
        resample_plane(p, img.height, img.width, &ry, &rx)
    })
}
