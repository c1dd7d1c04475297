//! Pointwise (1×1) convolution over one or more concatenated NCHW inputs.
//!
//! [`pointwise`] computes `y = W · [x₁ ‖ x₂ ‖ …] + b`: for each block of pixels the inputs'
//! channel planes are gathered into one contiguous `ΣC × pixels` matrix and multiplied by `W`
//! (`K × ΣC`, the `gemm` crate) straight into the output rows, which were filled with the bias
//! first. On x86-64 with AVX-512F, register blocks of 8 output channels × 48 pixels read the
//! input planes in place instead (no gather, no packing at run time). Blocks run on tract's
//! thread pool when one is given.

use tract_linalg::multithread::Executor;

use super::{for_each_block, OutPtr};

/// Bytes of gathered input plus output one pixel block may hold (stays in L2).
const BLOCK_BYTES: usize = 256 * 1024;

/// `y = W · [x₁ ‖ x₂ ‖ …] + b` for one image: each `xs[i]` is `[cs[i], pixels]` (NCHW planes),
/// `weight` is `[k, Σcs]` row-major, `bias` has `k` entries, `y` is `[k, pixels]`.
/// With a multi-thread `executor`, blocks of pixels run on its pool; the result does not depend
/// on the thread count.
///
/// # Panics
/// If a buffer length does not match the shapes.
pub fn pointwise(
    weight: &[f32],
    bias: &[f32],
    k: usize,
    cs: &[usize],
    xs: &[&[f32]],
    pixels: usize,
    y: &mut [f32],
    executor: &Executor,
) {
    let c: usize = cs.iter().sum();
    assert_eq!(xs.len(), cs.len(), "one input per channel count");
    assert_eq!(weight.len(), k * c, "weight must be [K, ΣC]");
    assert_eq!(bias.len(), k, "bias must have K entries");
    assert_eq!(y.len(), k * pixels, "y must be [K, pixels]");
    for (x, &ci) in xs.iter().zip(cs) {
        assert_eq!(x.len(), ci * pixels, "input must be [C, pixels]");
    }
    if pixels == 0 || k == 0 {
        return;
    }
    let block = (BLOCK_BYTES / ((c + k) * 4))
        .next_multiple_of(16)
        .clamp(16, pixels.next_multiple_of(16));
    let blocks = pixels.div_ceil(block);
    let out = OutPtr(y.as_mut_ptr());
    #[cfg(all(target_arch = "x86_64", savl_avx512))]
    if !super::portable_products() && is_x86_feature_detected!("avx512f") {
        let planes: Vec<&[f32]> = xs.iter().flat_map(|x| x.chunks_exact(pixels)).collect();
        let packed = avx512::pack(weight, k, c);
        let run = |_: &mut (), b: usize| {
            let p0 = b * block;
            // SAFETY: AVX-512F was detected just above; `packed` is `pack`'s layout for k × c,
            // `planes` holds c planes of `pixels` values, and block `b` alone writes pixels
            // p0 .. p0 + np of every output row of y ([k, pixels]).
            unsafe {
                avx512::block(
                    &packed,
                    bias,
                    k,
                    &planes,
                    p0,
                    block.min(pixels - p0),
                    out,
                    pixels,
                )
            };
        };
        for_each_block(executor, blocks, || (), run);
        return;
    }
    let operands = Operands {
        weight,
        bias,
        k,
        c,
        cs,
        xs,
        pixels,
    };
    let run = |scratch: &mut Vec<f32>, b: usize| {
        let p0 = b * block;
        operands.run_block(p0, block.min(pixels - p0), out, scratch);
    };
    for_each_block(executor, blocks, || vec![0f32; c * block], run);
}

/// The validated operands of one [`pointwise`] call (`c` = Σ`cs`).
struct Operands<'a> {
    weight: &'a [f32],
    bias: &'a [f32],
    k: usize,
    c: usize,
    cs: &'a [usize],
    xs: &'a [&'a [f32]],
    pixels: usize,
}

impl Operands<'_> {
    /// Pixels `p0 .. p0 + np` of every output channel (no other block writes them).
    fn run_block(&self, p0: usize, np: usize, out: OutPtr, scratch: &mut [f32]) {
        let Operands {
            weight,
            bias,
            k,
            c,
            cs,
            xs,
            pixels,
        } = *self;
        // The right-hand matrix: one input read in place, or all of them gathered.
        let (rhs, rhs_rs) = if let [x] = xs {
            (x[p0..].as_ptr(), pixels as isize)
        } else {
            let mut row = 0;
            for (x, &ci) in xs.iter().zip(cs) {
                for ch in 0..ci {
                    scratch[row * np..][..np].copy_from_slice(&x[ch * pixels + p0..][..np]);
                    row += 1;
                }
            }
            (scratch.as_ptr(), np as isize)
        };
        for (ko, &b) in bias.iter().enumerate() {
            // SAFETY: row `ko < k` of y ([k, pixels]), columns p0 .. p0 + np ≤ pixels; only this
            // block touches them.
            let row = unsafe { std::slice::from_raw_parts_mut(out.0.add(ko * pixels + p0), np) };
            row.fill(b);
        }
        // SAFETY: lhs is weight ([k, c], row stride c); rhs is [c, np] with row stride `rhs_rs`
        // inside an input ([c, pixels] from column p0) or the scratch ([c, np]); dst is y's
        // [k, np] window with row stride `pixels`, which aliases neither input.
        unsafe {
            gemm::gemm(
                k,
                np,
                c,
                out.0.add(p0),
                1,
                pixels as isize,
                true,
                weight.as_ptr(),
                1,
                c as isize,
                rhs,
                1,
                rhs_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// The AVX-512F products: 8 output channels × up to 3 vectors of 16 pixels in 24 accumulators,
/// one pass over the input channels, the last vector of a block masked.
#[cfg(all(target_arch = "x86_64", savl_avx512))]
mod avx512 {
    use super::OutPtr;
    use std::arch::x86_64::*;

    /// Output channels per register block.
    const KR: usize = 8;

    /// `weight` (`[k, c]` row-major) as `[⌈k / KR⌉][c][KR]`, zero beyond row k.
    pub(super) fn pack(weight: &[f32], k: usize, c: usize) -> Vec<f32> {
        let groups = k.div_ceil(KR);
        let mut packed = vec![0f32; groups * c * KR];
        for ko in 0..k {
            for ci in 0..c {
                packed[((ko / KR) * c + ci) * KR + ko % KR] = weight[ko * c + ci];
            }
        }
        packed
    }

    /// `y[ko, p] = bias[ko] + Σ_ci w[ko, ci] · planes[ci][p]` for pixels `p0 .. p0 + np`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `packed` is [`pack`]'s layout for `k × planes.len()`, each
    /// plane holds `pixels` values, `p0 + np ≤ pixels`, and `out` points to `[k, pixels]` values
    /// of which no other thread touches pixels `p0 .. p0 + np`.
    #[target_feature(enable = "avx512f")]
    // The intrinsics are newer than the crate's MSRV; `savl_avx512` (build.rs) compiles this only
    // with a compiler that has them.
    #[allow(clippy::incompatible_msrv, clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        packed: &[f32],
        bias: &[f32],
        k: usize,
        planes: &[&[f32]],
        p0: usize,
        np: usize,
        out: OutPtr,
        pixels: usize,
    ) {
        let c = planes.len();
        let end = p0 + np;
        let mut p = p0;
        while p < end {
            let vectors = (end - p).div_ceil(16);
            let nv = if vectors == 4 { 2 } else { vectors.min(3) };
            let last = (end - p - (nv - 1) * 16).min(16);
            let mask: __mmask16 = if last == 16 {
                0xffff
            } else {
                (1u16 << last) - 1
            };
            for g in 0..k.div_ceil(KR) {
                let rows = KR.min(k - g * KR);
                let ug = &packed[g * c * KR..][..c * KR];
                // SAFETY: the caller's contract; vectors j < nv cover pixels p + 16·j .. and the
                // last one only its `last` valid pixels (masked).
                unsafe {
                    match nv {
                        3 => {
                            group::<3>(ug, &bias[g * KR..][..rows], planes, p, mask, out, pixels, g)
                        }
                        2 => {
                            group::<2>(ug, &bias[g * KR..][..rows], planes, p, mask, out, pixels, g)
                        }
                        _ => {
                            group::<1>(ug, &bias[g * KR..][..rows], planes, p, mask, out, pixels, g)
                        }
                    }
                }
            }
            p += (nv - 1) * 16 + last;
        }
    }

    /// One register block: output rows `g·KR ..` (`bias.len()` of them) at pixels `p ..` in `NV`
    /// vectors, the last one masked by `mask`.
    ///
    /// # Safety
    /// As [`block`], for these pixels and rows.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::incompatible_msrv, clippy::too_many_arguments)]
    #[inline]
    unsafe fn group<const NV: usize>(
        u: &[f32],
        bias: &[f32],
        planes: &[&[f32]],
        p: usize,
        mask: __mmask16,
        out: OutPtr,
        pixels: usize,
        g: usize,
    ) {
        let m = |j: usize| if j + 1 == NV { mask } else { 0xffff };
        let mut acc = [[_mm512_setzero_ps(); NV]; KR];
        for (r, ar) in acc.iter_mut().enumerate().take(bias.len()) {
            *ar = [_mm512_set1_ps(bias[r]); NV];
        }
        for (ci, plane) in planes.iter().enumerate() {
            let mut x = [_mm512_setzero_ps(); NV];
            for (j, xj) in x.iter_mut().enumerate() {
                // SAFETY: pixels p + 16·j + i < pixels for the unmasked lanes i.
                *xj = unsafe { _mm512_maskz_loadu_ps(m(j), plane.as_ptr().add(p + 16 * j)) };
            }
            let ur = &u[ci * KR..][..KR];
            for (ar, &w) in acc.iter_mut().zip(ur) {
                let b = _mm512_set1_ps(w);
                for (aj, xj) in ar.iter_mut().zip(&x) {
                    *aj = _mm512_fmadd_ps(b, *xj, *aj);
                }
            }
        }
        for (r, ar) in acc.iter().enumerate().take(bias.len()) {
            for (j, aj) in ar.iter().enumerate() {
                // SAFETY: row g·KR + r < k of y, pixels as for the loads; only this block
                // writes them.
                unsafe {
                    _mm512_mask_storeu_ps(out.0.add((g * KR + r) * pixels + p + 16 * j), m(j), *aj)
                };
            }
        }
    }
}
