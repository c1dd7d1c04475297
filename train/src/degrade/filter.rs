//! Spatial filtering on planes: reflect-101 padding, 2-D convolution restricted to where a mask
//! is non-zero (the mask-blended blur of §3.4), separable Gaussian blur.

use super::kernels::Kernel;

/// Defines `$name` as `$imp` compiled twice: for the baseline target and with AVX2 (chosen at run
/// time). Rust never contracts `a * b + c` into FMA, so both paths give bit-identical results;
/// AVX2 only widens the auto-vectorised loops.
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

/// Outputs per register block of [`tap_sums`]: 64 f32, eight AVX2 registers, so eight independent
/// addition chains hide the adder latency.
const BLOCK: usize = 64;

/// For every `x < n`: `a = Σ_j coefs[j] · src[base + offs[j] + x]`, summed in the order of `j`
/// starting from 0, then `store(x, block)` for blocks of consecutive `x`. The sums of a block
/// stay in registers across all taps (one load per tap instead of a load and a store of an
/// accumulator row). Every output runs the plain per-tap loop's operations in its order, whatever
/// block it falls in, so the results are bit-identical to that loop.
#[inline(always)]
fn tap_sums(
    n: usize,
    src: &[f32],
    base: usize,
    offs: &[usize],
    coefs: &[f32],
    store: impl FnMut(usize, &[f32]),
) {
    let omax = offs.iter().copied().max().unwrap_or(0);
    assert!(base + omax + n <= src.len(), "taps read past the source");
    let simd_block = |x: usize| {
        // SAFETY: `for_each_block` calls this only when AVX2 is present and with
        // `x + BLOCK ≤ n`, so every read `base + o + x + i` is below `base + omax + n ≤ src.len()`.
        unsafe { simd::block_sums(src.as_ptr().add(base + x), offs, coefs) }
    };
    let portable = |x: usize, m: usize| {
        let mut a = [0.0f32; BLOCK];
        for (&o, &c) in offs.iter().zip(coefs) {
            let s = &src[base + o + x..base + o + x + m];
            for (ai, &si) in a.iter_mut().zip(s) {
                *ai += c * si;
            }
        }
        a
    };
    for_each_block(n, simd_block, portable, store);
}

/// The block loop shared by [`tap_sums`] and [`sym_tap_sums`]: `store(x, outputs)` for
/// consecutive blocks of `BLOCK` outputs, each from `simd_block(x)` when AVX2 is present or
/// `portable(x, BLOCK)`; the last, partial block is a whole SIMD block ending at `n` (its first
/// outputs repeat the previous block's, bit for bit) of which only the new outputs are stored, or
/// `portable(x, n − x)` when there is no SIMD or `n < BLOCK`.
#[inline(always)]
fn for_each_block(
    n: usize,
    simd_block: impl Fn(usize) -> [f32; BLOCK],
    portable: impl Fn(usize, usize) -> [f32; BLOCK],
    mut store: impl FnMut(usize, &[f32]),
) {
    let simd = simd::available();
    let mut x = 0;
    while x + BLOCK <= n {
        let a = if simd {
            simd_block(x)
        } else {
            portable(x, BLOCK)
        };
        store(x, &a);
        x += BLOCK;
    }
    if x < n {
        let m = n - x;
        if simd && n >= BLOCK {
            store(x, &simd_block(n - BLOCK)[BLOCK - m..]);
        } else {
            store(x, &portable(x, m)[..m]);
        }
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
    store: impl FnMut(usize, &[f32]),
) {
    let omax = lo.iter().chain(hi).copied().fold(center, usize::max);
    assert!(omax + n <= src.len(), "taps read past the source");
    assert!(
        lo.len() == k.len() && hi.len() == k.len(),
        "one tap per pair"
    );
    let simd_block = |x: usize| {
        // SAFETY: `for_each_block` calls this only when AVX2 is present and with
        // `x + BLOCK ≤ n`, so every read `o + x + i` (`o` ∈ lo, hi, center) is below
        // `omax + n ≤ src.len()`.
        unsafe { simd::sym_block_sums(src.as_ptr().add(x), kc, center, lo, hi, k) }
    };
    let portable = |x: usize, m: usize| {
        let mut a = [0.0f32; BLOCK];
        for i in 0..m {
            a[i] = kc * src[center + x + i];
        }
        for ((&l, &h), &kv) in lo.iter().zip(hi).zip(k) {
            for i in 0..m {
                a[i] += kv * (src[l + x + i] + src[h + x + i]);
            }
        }
        a
    };
    for_each_block(n, simd_block, portable, store);
}

/// The register-blocked inner loops of [`tap_sums`] and [`sym_tap_sums`] in AVX2
/// intrinsics: the eight accumulators stay in registers, which the auto-vectorised loops do not
/// manage (they keep the block on the stack). Each lane runs the same operations as the portable
/// loops, so the results are bit-identical to them.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::BLOCK;
    use std::arch::x86_64::*;

    /// Whether the CPU has AVX2 (detected once, then a cached load).
    #[inline(always)]
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// Eight accumulators as separate locals (an indexed array would live on the stack).
    macro_rules! eight {
        ($f:expr) => {
            ($f(0), $f(1), $f(2), $f(3), $f(4), $f(5), $f(6), $f(7))
        };
    }

    /// `a[i] = Σ_j coefs[j] · p[offs[j] + i]` for `i < BLOCK`, a multiply and an add per tap in
    /// the order of `j` (no FMA: the portable loops round the product).
    ///
    /// # Safety
    /// AVX2 must be available and `p[o + i]` readable for every `o` in `offs`, `i < BLOCK`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn block_sums(p: *const f32, offs: &[usize], coefs: &[f32]) -> [f32; BLOCK] {
        // SAFETY: the features and the reads are the caller's precondition (the intrinsics are
        // unsafe fns before Rust 1.86, hence one block around the whole body).
        unsafe {
            let z = _mm256_setzero_ps();
            let mut a = (z, z, z, z, z, z, z, z);
            for (&o, &c) in offs.iter().zip(coefs) {
                let cv = _mm256_set1_ps(c);
                let q = p.wrapping_add(o);
                let s = eight!(|j: usize| _mm256_loadu_ps(q.wrapping_add(8 * j)));
                a = add_scaled(a, cv, s);
            }
            store(a)
        }
    }

    /// `a[i] = kc · p[center + i] + Σ_t k[t] · (p[lo[t] + i] + p[hi[t] + i])` for `i < BLOCK`.
    ///
    /// # Safety
    /// AVX2 must be available and `p[o + i]` readable for every `o` in `lo`, `hi` and
    /// `center`, `i < BLOCK`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sym_block_sums(
        p: *const f32,
        kc: f32,
        center: usize,
        lo: &[usize],
        hi: &[usize],
        k: &[f32],
    ) -> [f32; BLOCK] {
        // SAFETY: as in `block_sums`.
        unsafe {
            let kcv = _mm256_set1_ps(kc);
            let c = p.wrapping_add(center);
            let mut a =
                eight!(|j: usize| _mm256_mul_ps(kcv, _mm256_loadu_ps(c.wrapping_add(8 * j))));
            for ((&l, &h), &kv) in lo.iter().zip(hi).zip(k) {
                let kv = _mm256_set1_ps(kv);
                let (ql, qh) = (p.wrapping_add(l), p.wrapping_add(h));
                let s = eight!(|j: usize| _mm256_add_ps(
                    _mm256_loadu_ps(ql.wrapping_add(8 * j)),
                    _mm256_loadu_ps(qh.wrapping_add(8 * j)),
                ));
                a = add_scaled(a, kv, s);
            }
            store(a)
        }
    }

    type Acc = (
        __m256,
        __m256,
        __m256,
        __m256,
        __m256,
        __m256,
        __m256,
        __m256,
    );

    /// `a + c · s` lane by lane (a multiply, then an add, as the portable loops).
    ///
    /// # Safety
    /// AVX2 must be available.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unused_unsafe)] // needed before Rust 1.86, where the intrinsics are unsafe fns
    unsafe fn add_scaled(a: Acc, c: __m256, s: Acc) -> Acc {
        // SAFETY: AVX2 is the caller's precondition.
        unsafe {
            (
                _mm256_add_ps(a.0, _mm256_mul_ps(c, s.0)),
                _mm256_add_ps(a.1, _mm256_mul_ps(c, s.1)),
                _mm256_add_ps(a.2, _mm256_mul_ps(c, s.2)),
                _mm256_add_ps(a.3, _mm256_mul_ps(c, s.3)),
                _mm256_add_ps(a.4, _mm256_mul_ps(c, s.4)),
                _mm256_add_ps(a.5, _mm256_mul_ps(c, s.5)),
                _mm256_add_ps(a.6, _mm256_mul_ps(c, s.6)),
                _mm256_add_ps(a.7, _mm256_mul_ps(c, s.7)),
            )
        }
    }

    /// # Safety
    /// AVX2 must be available.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(a: Acc) -> [f32; BLOCK] {
        let mut out = [0.0f32; BLOCK];
        for (chunk, v) in out
            .chunks_exact_mut(8)
            .zip([a.0, a.1, a.2, a.3, a.4, a.5, a.6, a.7])
        {
            // SAFETY: `chunk` holds 8 writable f32; AVX2 is the caller's precondition.
            unsafe { _mm256_storeu_ps(chunk.as_mut_ptr(), v) };
        }
        out
    }
}

/// Portable stand-in: no SIMD path off x86-64 (the portable loops run instead).
#[cfg(not(target_arch = "x86_64"))]
mod simd {
    use super::BLOCK;

    #[inline(always)]
    pub fn available() -> bool {
        false
    }

    pub unsafe fn block_sums(_: *const f32, _: &[usize], _: &[f32]) -> [f32; BLOCK] {
        unreachable!("no SIMD path on this target")
    }

    pub unsafe fn sym_block_sums(
        _: *const f32,
        _: f32,
        _: usize,
        _: &[usize],
        _: &[usize],
        _: &[f32],
    ) -> [f32; BLOCK] {
        unreachable!("no SIMD path on this target")
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

/// The bounding box `(rows, cols)` (half-open) of the pixels `i = y·w + x` of an `h × w` grid
/// where `inside(i)`, or `None` when there are none.
pub fn support_box(
    h: usize,
    w: usize,
    inside: impl Fn(usize) -> bool,
) -> Option<((usize, usize), (usize, usize))> {
    let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
    for y in 0..h {
        let row = y * w..(y + 1) * w;
        if let Some(a) = row.clone().position(&inside) {
            let b = w - row.rev().position(&inside).unwrap_or(0);
            (y0, y1) = (y0.min(y), y + 1);
            (x0, x1) = (x0.min(a), x1.max(b));
        }
    }
    (y0 < y1).then_some(((y0, y1), (x0, x1)))
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
    // Only outputs inside the bounding box of the non-zero weights are computed.
    let ((y0, y1), (x0, x1)) = match weight {
        None => ((0, h), (0, w)),
        Some(m) => match support_box(h, w, |i| m[i] > 0.0) {
            Some(b) => b,
            None => return,
        },
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

/// Separable filter with symmetric odd `taps` (`taps[i] = taps[n − 1 − i]`) along rows then
/// columns, reflect-101 borders. Mirrored taps are summed first, halving the multiplies.
pub fn separable(plane: &[f32], h: usize, w: usize, taps: &[f32]) -> Vec<f32> {
    separable_in(plane, h, w, taps, (0, h), (0, w))
}

multiversion! {
/// [`separable`] computed only inside the box `rows × cols` (half-open ranges); outside it the
    /// result is 0. Inside it every value is bit-identical to [`separable`]'s.
    pub fn separable_in(plane: &[f32], h: usize, w: usize, taps: &[f32], rows: (usize, usize), cols: (usize, usize)) -> Vec<f32> => separable_impl
}

#[inline(always)]
fn separable_impl(
    plane: &[f32],
    h: usize,
    w: usize,
    taps: &[f32],
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
) -> Vec<f32> {
    let r = taps.len() / 2;
    debug_assert!(
        taps.iter().zip(taps.iter().rev()).all(|(a, b)| a == b),
        "taps must be symmetric"
    );
    assert!(
        y0 <= y1 && y1 <= h && x0 <= x1 && x1 <= w,
        "box outside the plane"
    );
    let mut out = vec![0.0f32; h * w];
    if y0 == y1 || x0 == x1 {
        return out;
    }
    let wc = x1 - x0;
    // The vertical pass reads rows y0 − r .. y1 + r; reflected, they all lie in this range.
    let (t0, t1) = (y0.saturating_sub(r), (y1 + r).min(h));
    // Rows t0..t1 of the horizontal pass (row `y` at `(y − t0)·w`), columns x0..x1 filled.
    let mut tmp = vec![0.0f32; (t1 - t0) * w];
    // Source column of each padded column x0 − r .. x1 + r, reflected.
    let cols: Vec<usize> = (0..wc + 2 * r)
        .map(|x| reflect101((x + x0) as isize - r as isize, w))
        .collect();
    let mut prow = vec![0.0f32; wc + 2 * r];
    let kc = taps[r];
    let k = &taps[..r];
    let lo: Vec<usize> = (0..r).collect();
    let hi: Vec<usize> = (0..r).map(|t| 2 * r - t).collect();
    for y in t0..t1 {
        let src = &plane[y * w..(y + 1) * w];
        for (p, &c) in prow.iter_mut().zip(&cols) {
            *p = src[c];
        }
        let dst = &mut tmp[(y - t0) * w + x0..(y - t0) * w + x1];
        sym_tap_sums(wc, &prow, kc, r, &lo, &hi, k, |x, a| {
            dst[x..x + a.len()].copy_from_slice(a)
        });
    }
    let mut lo = vec![0usize; r];
    let mut hi = vec![0usize; r];
    for y in y0..y1 {
        for t in 0..r {
            lo[t] = (reflect101(y as isize + t as isize - r as isize, h) - t0) * w + x0;
            hi[t] = (reflect101(y as isize + r as isize - t as isize, h) - t0) * w + x0;
        }
        let dst = &mut out[y * w + x0..y * w + x1];
        sym_tap_sums(wc, &tmp, kc, (y - t0) * w + x0, &lo, &hi, k, |x, a| {
            dst[x..x + a.len()].copy_from_slice(a)
        });
    }
    out
}

/// Gaussian blur of std `sigma` truncated at radius `ceil(3σ)` (at least 1), reflect-101.
pub fn gaussian_blur(plane: &[f32], h: usize, w: usize, sigma: f64) -> Vec<f32> {
    gaussian_blur_in(plane, h, w, sigma, (0, h), (0, w))
}

/// [`gaussian_blur`] computed only inside the box `rows × cols`, as [`separable_in`].
pub fn gaussian_blur_in(
    plane: &[f32],
    h: usize,
    w: usize,
    sigma: f64,
    rows: (usize, usize),
    cols: (usize, usize),
) -> Vec<f32> {
    let r = ((3.0 * sigma).ceil() as usize).max(1);
    separable_in(plane, h, w, &gaussian_taps(sigma, r), rows, cols)
}

/// Mean over a `(2r+1)²` window (reflect-101 borders).
pub fn box_mean(plane: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let n = 2 * r + 1;
    separable(plane, h, w, &vec![1.0 / n as f32; n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (i * 7919 % 1000) as f32 / 1000.0 - 0.3)
            .collect()
    }

    /// Every output of the register-blocked loops (SIMD blocks, the overlapping last block, the
    /// portable tail) is the plain per-tap sum, bit for bit, whatever `n`.
    #[test]
    fn blocked_tap_sums_equal_the_sequential_sum() {
        let src = source(600);
        let (offs, coefs) = ([0usize, 3, 7, 20, 41], [0.1f32, -0.25, 0.7, 0.05, 0.4]);
        for n in [1, 5, 63, 64, 65, 127, 128, 200, 550] {
            let mut got = vec![f32::NAN; n];
            tap_sums(n, &src, 2, &offs, &coefs, |x, a| {
                got[x..x + a.len()].copy_from_slice(a)
            });
            for (x, g) in got.iter().enumerate() {
                let want = offs
                    .iter()
                    .zip(&coefs)
                    .fold(0.0f32, |a, (&o, &c)| a + c * src[2 + o + x]);
                assert_eq!(g.to_bits(), want.to_bits(), "n {n}, x {x}");
            }
        }
        let (kc, center, lo, hi, k) = (
            0.3f32,
            3,
            [0usize, 1, 2],
            [6usize, 5, 4],
            [0.05f32, 0.15, 0.2],
        );
        for n in [1, 63, 64, 65, 300, 590] {
            let mut got = vec![f32::NAN; n];
            sym_tap_sums(n, &src, kc, center, &lo, &hi, &k, |x, a| {
                got[x..x + a.len()].copy_from_slice(a)
            });
            for (x, g) in got.iter().enumerate() {
                let want = (0..3).fold(kc * src[center + x], |a, t| {
                    a + k[t] * (src[lo[t] + x] + src[hi[t] + x])
                });
                assert_eq!(g.to_bits(), want.to_bits(), "sym: n {n}, x {x}");
            }
        }
    }

    /// Restricting the separable blur to a box changes nothing inside the box.
    #[test]
    fn separable_in_a_box_equals_the_whole_blur_there() {
        let (h, w) = (37, 150);
        let plane = source(h * w);
        let taps = gaussian_taps(2.5, 8);
        let full = separable(&plane, h, w, &taps);
        let (rows, cols) = ((3, 30), (70, 149));
        let part = separable_in(&plane, h, w, &taps, rows, cols);
        for y in 0..h {
            for x in 0..w {
                let inside = (rows.0..rows.1).contains(&y) && (cols.0..cols.1).contains(&x);
                let want = if inside { full[y * w + x] } else { 0.0 };
                assert_eq!(part[y * w + x].to_bits(), want.to_bits(), "({y}, {x})");
            }
        }
    }

    /// The 2-D convolution against a plain f64 sum with reflect-101 borders.
    #[test]
    fn convolution_matches_a_direct_f64_sum() {
        let (h, w) = (29, 131);
        let plane = source(h * w);
        let size = 7;
        let data: Vec<f32> = (0..size * size)
            .map(|i| ((i * 37 % 11) as f32 - 4.0) / 60.0)
            .collect();
        let kernel = Kernel { size, data };
        let got = convolve(&plane, h, w, &kernel);
        let r = size as isize / 2;
        for y in 0..h {
            for x in 0..w {
                let mut want = 0.0f64;
                for ky in 0..size {
                    for kx in 0..size {
                        let sy = reflect101(y as isize + ky as isize - r, h);
                        let sx = reflect101(x as isize + kx as isize - r, w);
                        want += kernel.data[ky * size + kx] as f64 * plane[sy * w + sx] as f64;
                    }
                }
                assert!((got[y * w + x] as f64 - want).abs() < 1e-5, "({y}, {x})");
            }
        }
    }

    #[test]
    fn support_box_bounds_exactly_the_marked_pixels() {
        let (h, w) = (6, 9);
        let marked = [(1, 7), (4, 2), (3, 5)];
        let inside = |i: usize| marked.contains(&(i / w, i % w));
        assert_eq!(support_box(h, w, inside), Some(((1, 5), (2, 8))));
        assert_eq!(support_box(h, w, |_| false), None);
        assert_eq!(support_box(h, w, |_| true), Some(((0, h), (0, w))));
    }
}
