//! Pointwise (1×1) convolution over one or more concatenated NCHW inputs.
//!
//! [`pointwise`] computes `y = W · [x₁ ‖ x₂ ‖ …] + b`: for each block of pixels the inputs'
//! channel planes are gathered into one contiguous `ΣC × pixels` matrix and multiplied by `W`
//! (`K × ΣC`, the `gemm` crate) straight into the output rows, which were filled with the bias
//! first. Blocks run on tract's thread pool when one is given.

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
    let operands = Operands {
        weight,
        bias,
        k,
        c,
        cs,
        xs,
        pixels,
    };
    let out = OutPtr(y.as_mut_ptr());
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
