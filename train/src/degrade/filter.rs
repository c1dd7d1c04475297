//! Spatial filtering on planes: reflect-101 padding, 2-D convolution restricted to where a mask
//! is non-zero (the mask-blended blur of §3.4), separable Gaussian blur.

use super::kernels::Kernel;

/// Defines `$name` as `$imp` compiled twice: for the baseline target and with AVX2 (chosen at
/// run time). Rust never contracts `a * b + c` into FMA, so both paths give bit-identical
/// results; AVX2 only widens the auto-vectorised loops.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:ident) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}

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

/// Outputs per register block of [`tap_sums`]: 32 f32, four AVX2 registers.
const BLOCK: usize = 32;

/// For every `x < n`: `a = Σ_j coefs[j] · src[base + offs[j] + x]`, summed in the order of `j`
/// starting from 0, then `store(x, block)` for blocks of consecutive `x`. The sums of a block
/// stay in registers across all taps (one load per tap instead of a load and a store of an
/// accumulator row), and the order of the additions is the plain per-tap loop's, so the results
/// are bit-identical to it.
#[inline(always)]
fn tap_sums(
    n: usize,
    src: &[f32],
    base: usize,
    offs: &[usize],
    coefs: &[f32],
    mut store: impl FnMut(usize, &[f32]),
) {
    let mut x = 0;
    while x + BLOCK <= n {
        let mut a = [0.0f32; BLOCK];
        for (&o, &c) in offs.iter().zip(coefs) {
            let s: &[f32; BLOCK] = src[base + o + x..base + o + x + BLOCK]
                .try_into()
                .expect("block");
            for i in 0..BLOCK {
                a[i] += c * s[i];
            }
        }
        store(x, &a);
        x += BLOCK;
    }
    if x < n {
        let m = n - x;
        let mut a = [0.0f32; BLOCK];
        for (&o, &c) in offs.iter().zip(coefs) {
            let s = &src[base + o + x..base + o + x + m];
            for (ai, &si) in a.iter_mut().zip(s) {
                *ai += c * si;
            }
        }
        store(x, &a[..m]);
    }
}

/// `out += a`, or `out += m · a` element-wise with a weight row `m`.
#[inline(always)]
fn add_weighted(out: &mut [f32], a: &[f32], m: Option<&[f32]>) {
    match m {
        None => out.iter_mut().zip(a).for_each(|(o, &a)| *o += a),
        Some(m) => {
            for ((o, &a), &mv) in out.iter_mut().zip(a).zip(m) {
                *o += mv * a;
            }
        }
    }
}

/// Like [`tap_sums`] for a symmetric filter: `a = kc · src[center + x] + Σ_t k[t] · (src[lo[t] + x]
/// + src[hi[t] + x])`, in the order of `t`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sym_tap_sums(
    n: usize,
    src: &[f32],
    kc: f32,
    center: usize,
    lo: &[usize],
    hi: &[usize],
    k: &[f32],
    mut store: impl FnMut(usize, &[f32]),
) {
    let mut x = 0;
    while x + BLOCK <= n {
        let c: &[f32; BLOCK] = src[center + x..center + x + BLOCK]
            .try_into()
            .expect("block");
        let mut a = [0.0f32; BLOCK];
        for i in 0..BLOCK {
            a[i] = kc * c[i];
        }
        for ((&l, &h), &kv) in lo.iter().zip(hi).zip(k) {
            let sa: &[f32; BLOCK] = src[l + x..l + x + BLOCK].try_into().expect("block");
            let sb: &[f32; BLOCK] = src[h + x..h + x + BLOCK].try_into().expect("block");
            for i in 0..BLOCK {
                a[i] += kv * (sa[i] + sb[i]);
            }
        }
        store(x, &a);
        x += BLOCK;
    }
    if x < n {
        let m = n - x;
        let mut a = [0.0f32; BLOCK];
        for i in 0..m {
            a[i] = kc * src[center + x + i];
        }
        for ((&l, &h), &kv) in lo.iter().zip(hi).zip(k) {
            for i in 0..m {
                a[i] += kv * (src[l + x + i] + src[h + x + i]);
            }
        }
        store(x, &a[..m]);
    }
}

multiversion! {
/// Adds `weight(u) · (kernel ⊛ plane)(u)` into `out` for every pixel where `weight > 0`
    /// (`weight = None` means 1 everywhere). Borders reflect-101, as in BasicSR `filter2D`.
    /// `out`, `plane` and `weight` are `h × w`.
    pub fn conv_accumulate(plane: &[f32], h: usize, w: usize, kernel: &Kernel, weight: Option<&[f32]>, out: &mut [f32]) => conv_accumulate_impl
}

#[inline(always)]
fn conv_accumulate_impl(
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
    let (offs, coefs): (Vec<usize>, Vec<f32>) = (0..ks * ks)
        .filter(|&i| kernel.data[i] != 0.0)
        .map(|i| ((i / ks) * pw + i % ks, kernel.data[i]))
        .unzip();
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
        let orow = &mut out[y * w + x0..y * w + x1];
        let mrow = weight.map(|m| &m[y * w + x0..y * w + x1]);
        tap_sums(x1 - x0, &padded, y * pw + x0, &offs, &coefs, |x, a| {
            add_weighted(
                &mut orow[x..x + a.len()],
                a,
                mrow.map(|m| &m[x..x + a.len()]),
            )
        });
    }
}

/// A kernel written as `Σ_i col_i · row_iᵀ + R` with `‖R‖₁ ≤ tol`: convolving with the factors
/// instead of the kernel changes any output in [0, 1] by at most `tol`.
#[derive(Clone, Debug)]
pub struct SeparableKernel {
    /// `(column taps, row taps)` of each rank-1 term, each of the kernel's size.
    pub terms: Vec<(Vec<f32>, Vec<f32>)>,
    /// Side length.
    pub size: usize,
}

/// Largest residual (sum of absolute weights) accepted by [`separable_factors`]: a quarter of an
/// 8-bit step.
pub const SEPARABLE_TOL: f64 = 0.25 / 255.0;

/// Greedy rank-1 deflation (power iteration) of `kernel` until the residual's L1 norm is at most
/// `tol`. Returns `None` when that needs more than `max_terms` terms.
pub fn separable_factors(kernel: &Kernel, tol: f64, max_terms: usize) -> Option<SeparableKernel> {
    let n = kernel.size;
    let mut a: Vec<f64> = kernel.data.iter().map(|&v| v as f64).collect();
    let mut terms = Vec::new();
    loop {
        if a.iter().map(|v| v.abs()).sum::<f64>() <= tol {
            return Some(SeparableKernel { terms, size: n });
        }
        if terms.len() == max_terms {
            return None;
        }
        // Start from the row through the largest entry, so the iteration never starts orthogonal.
        let imax = (0..n * n)
            .max_by(|&i, &j| a[i].abs().total_cmp(&a[j].abs()))
            .unwrap_or(0);
        let mut v: Vec<f64> = a[(imax / n) * n..(imax / n + 1) * n].to_vec();
        let mut u = vec![0.0f64; n];
        let mut sigma = 0.0;
        for _ in 0..200 {
            for i in 0..n {
                u[i] = (0..n).map(|j| a[i * n + j] * v[j]).sum();
            }
            let nu = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            u.iter_mut().for_each(|x| *x /= nu);
            for j in 0..n {
                v[j] = (0..n).map(|i| a[i * n + j] * u[i]).sum();
            }
            let s = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter_mut().for_each(|x| *x /= s.max(1e-300));
            if (s - sigma).abs() <= 1e-12 * s {
                sigma = s;
                break;
            }
            sigma = s;
        }
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] -= sigma * u[i] * v[j];
            }
        }
        let col = u.iter().map(|&x| (x * sigma) as f32).collect();
        let row = v.iter().map(|&x| x as f32).collect();
        terms.push((col, row));
    }
}

multiversion! {
/// Adds `weight(u) · (kernel ⊛ plane)(u)` into `out`, like [`conv_accumulate`], but through the
    /// rank-1 terms of `sep`; only rows whose weight is non-zero somewhere are computed.
    pub fn sep_conv_accumulate(plane: &[f32], h: usize, w: usize, sep: &SeparableKernel, weight: Option<&[f32]>, out: &mut [f32]) => sep_conv_accumulate_impl
}

#[inline(always)]
fn sep_conv_accumulate_impl(
    plane: &[f32],
    h: usize,
    w: usize,
    sep: &SeparableKernel,
    weight: Option<&[f32]>,
    out: &mut [f32],
) {
    let r = sep.size / 2;
    // The bounding box of the non-zero weights: only outputs inside it are computed.
    let ((y0, y1), (x0, x1)) = match weight {
        None => ((0, h), (0, w)),
        Some(m) => {
            let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
            for y in 0..h {
                let row = &m[y * w..(y + 1) * w];
                if let Some(a) = row.iter().position(|&v| v > 0.0) {
                    let b = w - row.iter().rev().position(|&v| v > 0.0).unwrap_or(0);
                    (y0, y1) = (y0.min(y), y + 1);
                    (x0, x1) = (x0.min(a), x1.max(b));
                }
            }
            if y0 >= y1 {
                return;
            }
            ((y0, y1), (x0, x1))
        }
    };
    let wc = x1 - x0;
    // Rows needed by the vertical pass, in reflect-101 order.
    let src_rows: Vec<usize> = (y0 as isize - r as isize..(y1 + r) as isize)
        .map(|y| reflect101(y, h))
        .collect();
    let cols: Vec<usize> = (0..wc + 2 * r)
        .map(|x| reflect101((x + x0) as isize - r as isize, w))
        .collect();
    let mut prow = vec![0.0f32; wc + 2 * r];
    let nrows = src_rows.len();
    let mut hpass = vec![0.0f32; sep.terms.len() * nrows * wc];
    let hoffs: Vec<usize> = (0..sep.size).collect();
    for (ri, &sy) in src_rows.iter().enumerate() {
        let src = &plane[sy * w..(sy + 1) * w];
        for (p, &c) in prow.iter_mut().zip(&cols) {
            *p = src[c];
        }
        for (t, (_, row)) in sep.terms.iter().enumerate() {
            let dst = &mut hpass[(t * nrows + ri) * wc..(t * nrows + ri + 1) * wc];
            tap_sums(wc, &prow, 0, &hoffs, row, |x, a| {
                dst[x..x + a.len()].copy_from_slice(a)
            });
        }
    }
    let (voffs, vcoefs): (Vec<usize>, Vec<f32>) = sep
        .terms
        .iter()
        .enumerate()
        .flat_map(|(t, (col, _))| {
            col.iter()
                .enumerate()
                .map(move |(k, &kv)| ((t * nrows + k) * wc, kv))
        })
        .unzip();
    for y in y0..y1 {
        let orow = &mut out[y * w + x0..y * w + x1];
        let mrow = weight.map(|m| &m[y * w + x0..y * w + x1]);
        tap_sums(wc, &hpass, (y - y0) * wc, &voffs, &vcoefs, |x, a| {
            add_weighted(
                &mut orow[x..x + a.len()],
                a,
                mrow.map(|m| &m[x..x + a.len()]),
            )
        });
    }
}

/// Adds `weight · (kernel ⊛ plane)` into `out` by the cheaper of direct and separable
/// convolution (separable when the factorisation within [`SEPARABLE_TOL`] has at most
/// `2·size/5` terms).
pub fn conv_accumulate_fast(
    plane: &[f32],
    h: usize,
    w: usize,
    kernel: &Kernel,
    sep: Option<&SeparableKernel>,
    weight: Option<&[f32]>,
    out: &mut [f32],
) {
    match sep {
        Some(s) if !kernel.is_pulse() => sep_conv_accumulate(plane, h, w, s, weight, out),
        _ => conv_accumulate(plane, h, w, kernel, weight, out),
    }
}

/// `kernel` without its outer rings while the dropped weights' absolute sum stays at most
/// `tol` (no renormalisation, so an output in [0, 1] moves by at most `tol`).
pub fn trimmed(kernel: &Kernel, tol: f64) -> Kernel {
    let n = kernel.size;
    let r = kernel.radius();
    let mut dropped = 0.0f64;
    let mut keep = r;
    while keep > 0 {
        // Ring at Chebyshev radius `keep`.
        let mut ring = 0.0f64;
        for y in 0..n {
            for x in 0..n {
                let d = (y as isize - r as isize)
                    .abs()
                    .max((x as isize - r as isize).abs()) as usize;
                if d == keep {
                    ring += kernel.data[y * n + x].abs() as f64;
                }
            }
        }
        if dropped + ring > tol {
            break;
        }
        dropped += ring;
        keep -= 1;
    }
    if keep == r {
        return kernel.clone();
    }
    let m = 2 * keep + 1;
    let off = r - keep;
    let data = (0..m * m)
        .map(|i| kernel.data[(i / m + off) * n + i % m + off])
        .collect();
    Kernel { size: m, data }
}

/// The factorisation [`conv_accumulate_fast`] should use for `kernel`, if any.
pub fn plan_separable(kernel: &Kernel) -> Option<SeparableKernel> {
    if kernel.is_pulse() || kernel.size < 5 {
        return None;
    }
    separable_factors(kernel, SEPARABLE_TOL, (kernel.size * 2 / 5).max(1))
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

multiversion! {
/// Separable filter with symmetric odd `taps` (`taps[i] = taps[n − 1 − i]`) along rows then
    /// columns, reflect-101 borders. Mirrored taps are summed first, halving the multiplies.
    pub fn separable(plane: &[f32], h: usize, w: usize, taps: &[f32]) -> Vec<f32> => separable_impl
}

#[inline(always)]
fn separable_impl(plane: &[f32], h: usize, w: usize, taps: &[f32]) -> Vec<f32> {
    let r = taps.len() / 2;
    debug_assert!(
        taps.iter().zip(taps.iter().rev()).all(|(a, b)| a == b),
        "taps must be symmetric"
    );
    let mut tmp = vec![0.0f32; h * w];
    let cols: Vec<usize> = (0..w + 2 * r)
        .map(|x| reflect101(x as isize - r as isize, w))
        .collect();
    let mut prow = vec![0.0f32; w + 2 * r];
    let kc = taps[r];
    let k = &taps[..r];
    let lo: Vec<usize> = (0..r).collect();
    let hi: Vec<usize> = (0..r).map(|t| 2 * r - t).collect();
    for y in 0..h {
        let src = &plane[y * w..(y + 1) * w];
        for (p, &c) in prow.iter_mut().zip(&cols) {
            *p = src[c];
        }
        let dst = &mut tmp[y * w..(y + 1) * w];
        sym_tap_sums(w, &prow, kc, r, &lo, &hi, k, |x, a| {
            dst[x..x + a.len()].copy_from_slice(a)
        });
    }
    let mut out = vec![0.0f32; h * w];
    let mut lo = vec![0usize; r];
    let mut hi = vec![0usize; r];
    for y in 0..h {
        for t in 0..r {
            lo[t] = reflect101(y as isize + t as isize - r as isize, h) * w;
            hi[t] = reflect101(y as isize + r as isize - t as isize, h) * w;
        }
        let dst = &mut out[y * w..(y + 1) * w];
        sym_tap_sums(w, &tmp, kc, y * w, &lo, &hi, k, |x, a| {
            dst[x..x + a.len()].copy_from_slice(a)
        });
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
