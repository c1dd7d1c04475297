//! Spatial filtering on planes: reflect-101 padding, 2-D convolution restricted to where a mask
//! is non-zero (the mask-blended blur of §3.4), separable Gaussian blur.

use super::kernels::Kernel;

/// Reflect-101 index (OpenCV `BORDER_REFLECT_101`, PyTorch `reflect`): `-1 → 1`, `n → n − 2`.
/// Folds repeatedly, so any offset is valid for `n ≥ 1`.
#[inline]
pub fn reflect101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let n = n as isize;
    let period = 2 * (n - 1);
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - j;
    }
    j as usize
}

/// Copies an `h × w` plane into a `(h + 2r) × (w + 2r)` plane with reflect-101 borders.
pub fn pad_reflect(plane: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let (ph, pw) = (h + 2 * r, w + 2 * r);
    let mut out = vec![0.0f32; ph * pw];
    let cols: Vec<usize> = (0..pw)
        .map(|x| reflect101(x as isize - r as isize, w))
        .collect();
    for y in 0..ph {
        let sy = reflect101(y as isize - r as isize, h);
        let src = &plane[sy * w..(sy + 1) * w];
        let dst = &mut out[y * pw..(y + 1) * pw];
        dst[r..r + w].copy_from_slice(src);
        for x in (0..r).chain(r + w..pw) {
            dst[x] = src[cols[x]];
        }
    }
    out
}

/// Adds `weight(u) · (kernel ⊛ plane)(u)` into `out` for every pixel where `weight > 0`
/// (`weight = None` means 1 everywhere). Borders reflect-101, as in BasicSR `filter2D`.
/// `out`, `plane` and `weight` are `h × w`.
pub fn conv_accumulate(
    plane: &[f32],
    h: usize,
    w: usize,
    kernel: &Kernel,
    weight: Option<&[f32]>,
    out: &mut [f32],
) {
    if kernel.is_pulse() {
        for i in 0..h * w {
            out[i] += weight.map_or(1.0, |m| m[i]) * plane[i];
        }
        return;
    }
    let r = kernel.radius();
    let padded = pad_reflect(plane, h, w, r);
    let pw = w + 2 * r;
    let ks = kernel.size;
    let mut acc = vec![0.0f32; w];
    for y in 0..h {
        let (x0, x1) = match weight {
            None => (0, w),
            Some(m) => {
                let row = &m[y * w..(y + 1) * w];
                match row.iter().position(|&v| v > 0.0) {
                    None => continue,
                    Some(a) => (a, w - row.iter().rev().position(|&v| v > 0.0).unwrap_or(0)),
                }
            }
        };
        let acc = &mut acc[x0..x1];
        acc.fill(0.0);
        for ky in 0..ks {
            let prow = &padded[(y + ky) * pw..(y + ky + 1) * pw];
            for kx in 0..ks {
                let kv = kernel.data[ky * ks + kx];
                if kv == 0.0 {
                    continue;
                }
                let src = &prow[x0 + kx..x1 + kx];
                for (a, &s) in acc.iter_mut().zip(src) {
                    *a += kv * s;
                }
            }
        }
        let orow = &mut out[y * w + x0..y * w + x1];
        match weight {
            None => orow.iter_mut().zip(acc.iter()).for_each(|(o, &a)| *o += a),
            Some(m) => {
                let mrow = &m[y * w + x0..y * w + x1];
                for ((o, &a), &mv) in orow.iter_mut().zip(acc.iter()).zip(mrow) {
                    *o += mv * a;
                }
            }
        }
    }
}

/// `kernel ⊛ plane` with reflect-101 borders.
pub fn convolve(plane: &[f32], h: usize, w: usize, kernel: &Kernel) -> Vec<f32> {
    let mut out = vec![0.0; h * w];
    conv_accumulate(plane, h, w, kernel, None, &mut out);
    out
}

/// Normalised 1-D Gaussian taps of radius `r`.
pub fn gaussian_taps(sigma: f64, r: usize) -> Vec<f32> {
    let r = r as isize;
    let t: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = t.iter().sum();
    t.into_iter().map(|v| (v / s) as f32).collect()
}

/// Separable filter with symmetric odd `taps` along rows then columns, reflect-101 borders.
pub fn separable(plane: &[f32], h: usize, w: usize, taps: &[f32]) -> Vec<f32> {
    let r = taps.len() / 2;
    let mut tmp = vec![0.0f32; h * w];
    let cols: Vec<usize> = (0..w + 2 * r)
        .map(|x| reflect101(x as isize - r as isize, w))
        .collect();
    let mut prow = vec![0.0f32; w + 2 * r];
    for y in 0..h {
        let src = &plane[y * w..(y + 1) * w];
        for (p, &c) in prow.iter_mut().zip(&cols) {
            *p = src[c];
        }
        let dst = &mut tmp[y * w..(y + 1) * w];
        for (t, &kv) in taps.iter().enumerate() {
            for (d, &s) in dst.iter_mut().zip(&prow[t..t + w]) {
                *d += kv * s;
            }
        }
    }
    let mut out = vec![0.0f32; h * w];
    for y in 0..h {
        let dst = &mut out[y * w..(y + 1) * w];
        for (t, &kv) in taps.iter().enumerate() {
            let sy = reflect101(y as isize + t as isize - r as isize, h);
            for (d, &s) in dst.iter_mut().zip(&tmp[sy * w..(sy + 1) * w]) {
                *d += kv * s;
            }
        }
    }
    out
}

/// Gaussian blur of std `sigma` truncated at radius `ceil(3σ)` (at least 1), reflect-101.
pub fn gaussian_blur(plane: &[f32], h: usize, w: usize, sigma: f64) -> Vec<f32> {
    let r = ((3.0 * sigma).ceil() as usize).max(1);
    separable(plane, h, w, &gaussian_taps(sigma, r))
}

/// Mean over a `(2r+1)²` window (reflect-101 borders).
pub fn box_mean(plane: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let n = 2 * r + 1;
    separable(plane, h, w, &vec![1.0 / n as f32; n])
}
