//! Winograd convolution F(m×m, 3×3) for the 3×3 / stride 1 / pad 1 f32 convs, as a typed tract
//! op inserted at load time.
//!
//! tract runs every 3×3 conv as LazyIm2col + matmul: 9·C multiply-adds per output value.
//! Winograd (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks") computes an
//! m×m output tile from an α×α input tile (α = m + 2) as `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, so the
//! multiply-adds become α²/m² · C per output value (4·C for F(2×2), 2.25·C for F(4×4)) plus
//! linear transforms. Here the kernel transform `U = G g Gᵀ` is done once when the op is built
//! ([`WinogradWeights::new`]); at run time each block of tile rows is transformed
//! (`V = Bᵀ d B`, per channel), multiplied as α² GEMMs `M[p] = U[p] · V[p]` (K×C by C×tiles,
//! the `gemm` crate), and transformed back with the bias and a per-channel leaky activation
//! folded in ([`conv3x3`]). Blocks run on tract's thread pool when the plan has one.
//!
//! [`rewrite_convs`] replaces tract's `Conv` nodes that fit (f32, NCHW, OIHW, group 1, 3×3,
//! stride 1, dilation 1, pad 1 on every side, constant kernel and bias) with [`WinogradConv`],
//! absorbing a LeakyRelu or an expanded PReLU right after it; every other conv is left to
//! tract. At model load, `SAVL_DISABLE_WINOGRAD=1` turns the rewrite off ([`enabled_by_env`])
//! and `SAVL_WINOGRAD_TILE=2` picks F(2×2) instead of F(4×4) ([`tile_from_env`]).
//!
//! Accuracy (max abs difference to a direct convolution accumulated in f64, Kaiming-scaled
//! weights, inputs in [−4, 4], C ≤ 64): about 4e-6 for F(2×2), 1e-4 for F(4×4); on the shipped
//! model's outputs F(4×4) stays within 4e-5 of tract's own convs (`tests/winograd.rs`).

use std::sync::Arc;

use tract_linalg::multithread::Executor;

use crate::graph_ops::{for_each_block, rewrite_until_done, OutPtr};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::logic::{CompGT, Iff};
use tract_onnx::tract_core::ops::math::Mul;
use tract_onnx::tract_core::ops::nn::{DataFormat, LeakyRelu};

/// Bytes of transformed input plus GEMM output one block may hold, sized to stay in a 1 MiB L2
/// core cache with room for the packed kernel (`docs/PERF.md`, "Winograd").
const BLOCK_BYTES: usize = 512 * 1024;

/// The Winograd output tile: F(2×2, 3×3) or F(4×4, 3×3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WinogradTile {
    /// 2×2 output tiles from 4×4 input tiles: 16 products per 4 outputs (2.25× fewer than
    /// direct), transform error close to a direct conv's.
    F2,
    /// 4×4 output tiles from 6×6 input tiles: 36 products per 16 outputs (4× fewer than
    /// direct), larger transform error (the constants reach 8 and 1/24).
    F4,
}

impl WinogradTile {
    /// Output tile side m.
    pub fn m(self) -> usize {
        match self {
            WinogradTile::F2 => 2,
            WinogradTile::F4 => 4,
        }
    }

    /// Input tile side α = m + 2.
    pub fn alpha(self) -> usize {
        self.m() + 2
    }

    /// The kernel transform matrix G (α×3), row-major.
    fn g(self) -> &'static [[f64; 3]] {
        const G2: [[f64; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        const G4: [[f64; 3]; 6] = [
            [1.0 / 4.0, 0.0, 0.0],
            [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
            [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
            [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
            [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
            [0.0, 0.0, 1.0],
        ];
        match self {
            WinogradTile::F2 => &G2,
            WinogradTile::F4 => &G4,
        }
    }
}

/// A 3×3 kernel `[K, C, 3, 3]` (OIHW) in the Winograd domain: `U[p] = G g Gᵀ` for each of the
/// α² positions p, stored `[α², K, C]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradWeights {
    tile: WinogradTile,
    k: usize,
    c: usize,
    u: Vec<f32>,
}

impl WinogradWeights {
    /// Transform an OIHW 3×3 kernel (`kernel.len() == k·c·9`), in f64 so the only rounding is
    /// the final cast.
    ///
    /// # Panics
    /// If `kernel.len() != k·c·9`.
    pub fn new(tile: WinogradTile, kernel: &[f32], k: usize, c: usize) -> WinogradWeights {
        assert_eq!(kernel.len(), k * c * 9, "kernel must be [K, C, 3, 3]");
        let a = tile.alpha();
        let g = tile.g();
        let mut u = vec![0f32; a * a * k * c];
        for ko in 0..k {
            for ci in 0..c {
                let w = &kernel[(ko * c + ci) * 9..][..9];
                // t = G w (α×3), then U = t Gᵀ (α×α).
                let mut t = [[0f64; 3]; 6];
                for i in 0..a {
                    for col in 0..3 {
                        t[i][col] = (0..3).map(|r| g[i][r] * w[r * 3 + col] as f64).sum();
                    }
                }
                for i in 0..a {
                    for j in 0..a {
                        let v: f64 = (0..3).map(|col| t[i][col] * g[j][col]).sum();
                        u[((i * a + j) * k + ko) * c + ci] = v as f32;
                    }
                }
            }
        }
        WinogradWeights { tile, k, c, u }
    }

    /// The output tile.
    pub fn tile(&self) -> WinogradTile {
        self.tile
    }

    /// Output channels K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Input channels C.
    pub fn c(&self) -> usize {
        self.c
    }
}

/// Tiles transformed together (two 256-bit vectors of f32 per value: enough work per loop for
/// LLVM to vectorize every transform; 8 left the F(2×2) transforms scalar).
const LANES: usize = 16;

/// Floats between consecutive α² planes of the scratch buffers beyond their data: the planes'
/// sizes are multiples of 4 KiB for typical shapes, and the transforms touch all α² planes at
/// the same offset, which would map every access to the same L1 set.
const PLANE_PAD: usize = LANES;

/// `LANES` tiles' worth of one value of a transform.
type Lanes = [f32; LANES];

/// The 1-D transforms of one Winograd variant, `LANES` tiles at a time: `Bᵀ` maps α inputs to
/// α values, `Aᵀ` maps α values to m outputs.
trait Transforms<const M: usize, const A: usize> {
    /// `y = Bᵀ x`.
    fn bt(x: &[Lanes; A], y: &mut [Lanes; A]);
    /// `y = Aᵀ x`.
    fn at(x: &[Lanes; A], y: &mut [Lanes; M]);
}

/// F(2×2, 3×3).
struct F2x3;

impl Transforms<2, 4> for F2x3 {
    #[inline(always)]
    fn bt(x: &[Lanes; 4], y: &mut [Lanes; 4]) {
        for l in 0..LANES {
            let (a, b, c, d) = (x[0][l], x[1][l], x[2][l], x[3][l]);
            y[0][l] = a - c;
            y[1][l] = b + c;
            y[2][l] = c - b;
            y[3][l] = b - d;
        }
    }

    #[inline(always)]
    fn at(x: &[Lanes; 4], y: &mut [Lanes; 2]) {
        for l in 0..LANES {
            let (a, b, c, d) = (x[0][l], x[1][l], x[2][l], x[3][l]);
            y[0][l] = a + b + c;
            y[1][l] = b - c - d;
        }
    }
}

/// F(4×4, 3×3), interpolation points 0, ±1, ±2 and ∞.
struct F4x3;

impl Transforms<4, 6> for F4x3 {
    #[inline(always)]
    fn bt(x: &[Lanes; 6], y: &mut [Lanes; 6]) {
        for l in 0..LANES {
            let (a, b, c, d, e, f) = (x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]);
            y[0][l] = 4.0 * a - 5.0 * c + e;
            y[1][l] = -4.0 * (b + c) + d + e;
            y[2][l] = 4.0 * (b - c) - d + e;
            y[3][l] = 2.0 * (d - b) - c + e;
            y[4][l] = 2.0 * (b - d) - c + e;
            y[5][l] = 4.0 * b - 5.0 * d + f;
        }
    }

    #[inline(always)]
    fn at(x: &[Lanes; 6], y: &mut [Lanes; 4]) {
        for l in 0..LANES {
            let (a, b, c, d, e, f) = (x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]);
            let (s12, d12, s34, d34) = (b + c, b - c, d + e, d - e);
            y[0][l] = a + s12 + s34;
            y[1][l] = d12 + 2.0 * d34;
            y[2][l] = s12 + 4.0 * s34;
            y[3][l] = d12 + 8.0 * d34 + f;
        }
    }
}

/// Geometry of one image plane and its tiling.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    /// Tiles per row, rounded up to whole `LANES` (the extra tiles are computed, never stored).
    tw: usize,
    /// Tile rows per block.
    rows_per_block: usize,
}

/// Per-worker scratch, sized for the largest block.
struct Scratch {
    /// Transformed input, `[α², C, tile rows · tw]` (planes `PLANE_PAD` apart).
    v: Vec<f32>,
    /// GEMM output, `[α², K, tile rows · tw]` (planes `PLANE_PAD` apart).
    m: Vec<f32>,
    /// One zero-padded input row.
    prow: Vec<f32>,
    /// The block's padded input rows of one channel, each split into its M column phases:
    /// `[rows, M, tw + 1]`.
    phases: Vec<f32>,
}

impl Scratch {
    fn new<const M: usize, const A: usize>(wts: &WinogradWeights, g: &Geometry) -> Scratch {
        let tb = g.rows_per_block * g.tw;
        Scratch {
            v: vec![0.0; A * A * (wts.c * tb + PLANE_PAD)],
            m: vec![0.0; A * A * (wts.k * tb + PLANE_PAD)],
            prow: vec![0.0; M * (g.tw + 1)],
            phases: vec![0.0; (M * g.rows_per_block + 2) * M * (g.tw + 1)],
        }
    }
}

/// `y = act(conv3x3(x, kernel) + bias)` for one NCHW image with pad 1 on every side:
/// `x` is `[C, h, w]`, `y` is `[K, h, w]`, `bias` and `negative_slope` have K entries; the
/// activation is `v < 0 ? v · negative_slope[k] : v` (1.0 for none, α for a leaky ReLU).
/// With a multi-thread `executor`, blocks of tile rows run on its pool.
///
/// # Panics
/// If a buffer length does not match the shapes.
pub fn conv3x3(
    wts: &WinogradWeights,
    bias: &[f32],
    negative_slope: &[f32],
    x: &[f32],
    h: usize,
    w: usize,
    y: &mut [f32],
    executor: &Executor,
) {
    match wts.tile {
        WinogradTile::F2 => {
            conv3x3_m::<2, 4, F2x3>(wts, bias, negative_slope, x, h, w, y, executor)
        }
        WinogradTile::F4 => {
            conv3x3_m::<4, 6, F4x3>(wts, bias, negative_slope, x, h, w, y, executor)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conv3x3_m<const M: usize, const A: usize, T: Transforms<M, A>>(
    wts: &WinogradWeights,
    bias: &[f32],
    negative_slope: &[f32],
    x: &[f32],
    h: usize,
    w: usize,
    y: &mut [f32],
    executor: &Executor,
) {
    let (k, c) = (wts.k, wts.c);
    assert_eq!(x.len(), c * h * w, "x must be [C, h, w]");
    assert_eq!(y.len(), k * h * w, "y must be [K, h, w]");
    assert_eq!(bias.len(), k, "bias must have K entries");
    assert_eq!(
        negative_slope.len(),
        k,
        "negative_slope must have K entries"
    );
    if h == 0 || w == 0 {
        return;
    }
    let tw = w.div_ceil(M).next_multiple_of(LANES);
    let th = h.div_ceil(M);
    let per_tile_row = A * A * (c + k) * tw * 4;
    let rows_per_block = (BLOCK_BYTES / per_tile_row).clamp(1, th);
    let g = Geometry {
        h,
        w,
        tw,
        rows_per_block,
    };
    let blocks = th.div_ceil(rows_per_block);
    let args = BlockArgs {
        wts,
        bias,
        negative_slope,
        x,
        g,
        out: OutPtr(y.as_mut_ptr()),
    };
    let run = block_fn::<M, A, T>();
    let block = |scratch: &mut Scratch, b: usize| {
        let tr0 = b * rows_per_block;
        let tr1 = (tr0 + rows_per_block).min(th);
        run(&args, tr0, tr1, scratch);
    };
    for_each_block(executor, blocks, || Scratch::new::<M, A>(wts, &g), block);
}

/// What every block of one conv shares.
struct BlockArgs<'a> {
    wts: &'a WinogradWeights,
    bias: &'a [f32],
    negative_slope: &'a [f32],
    x: &'a [f32],
    g: Geometry,
    out: OutPtr,
}

type BlockFn = fn(&BlockArgs, usize, usize, &mut Scratch);

/// [`run_block`] for this CPU: on x86-64 with AVX2 and FMA, a copy compiled for them (the
/// baseline target only has SSE2, which halves the transforms' vector width).
fn block_fn<const M: usize, const A: usize, T: Transforms<M, A>>() -> BlockFn {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return |args, tr0, tr1, s| {
            // SAFETY: AVX2 and FMA were detected on this CPU just above.
            unsafe { run_block_avx2::<M, A, T>(args, tr0, tr1, s) }
        };
    }
    run_block::<M, A, T>
}

/// [`run_block`] compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_block_avx2<const M: usize, const A: usize, T: Transforms<M, A>>(
    args: &BlockArgs,
    tr0: usize,
    tr1: usize,
    s: &mut Scratch,
) {
    run_block::<M, A, T>(args, tr0, tr1, s)
}

/// Tile rows `tr0..tr1` of one image: input transform, α² GEMMs, output transform into `out`
/// (output rows `M·tr0 .. min(M·tr1, h)` of every channel, which no other block writes).
#[inline(always)]
fn run_block<const M: usize, const A: usize, T: Transforms<M, A>>(
    args: &BlockArgs,
    tr0: usize,
    tr1: usize,
    s: &mut Scratch,
) {
    let BlockArgs {
        wts,
        bias,
        negative_slope,
        x,
        g,
        out,
    } = *args;
    let (k, c) = (wts.k, wts.c);
    let (h, w, tw) = (g.h, g.w, g.tw);
    let nr = tr1 - tr0;
    let tb = nr * tw;
    let plane_v = c * tb + PLANE_PAD;
    let plane_m = k * tb + PLANE_PAD;
    let v = &mut s.v[..A * A * plane_v];
    let mm = &mut s.m[..A * A * plane_m];
    let phase_row = M * (tw + 1);

    // Stack buffers for LANES tiles, reused (overwritten whole) by every chunk.
    let mut d = [[[0.0; LANES]; A]; A];
    let mut rows_t = [[[0.0; LANES]; A]; A];
    let mut col = [[0.0; LANES]; A];
    let mut vt = [[0.0; LANES]; A];
    let mut cols_t = [[[0.0; LANES]; M]; A];
    let mut o = [[0.0; LANES]; M];
    let mut pixels = [[0.0f32; M]; LANES];

    // Input transform: V[p = i·α + j][c][tile] = (Bᵀ d B)[i][j].
    for ci in 0..c {
        let xc = &x[ci * h * w..][..h * w];
        // Padded row M·tr0 + r is source row M·tr0 + r − 1; phase q of a padded row holds its
        // padded columns q, q + M, q + 2M, …, so column i of tile t is phase i mod M at
        // t + i / M.
        for (r, ph) in s.phases.chunks_exact_mut(phase_row).enumerate() {
            match (M * tr0 + r).checked_sub(1).filter(|&sr| sr < h) {
                None => ph.fill(0.0),
                Some(sr) => {
                    s.prow[1..=w].copy_from_slice(&xc[sr * w..][..w]);
                    for (q, phq) in ph.chunks_exact_mut(tw + 1).enumerate() {
                        for (p, cols) in phq.iter_mut().zip(s.prow.chunks_exact(M)) {
                            *p = cols[q];
                        }
                    }
                }
            }
        }
        for tl in 0..nr {
            let rows = &s.phases[M * tl * phase_row..][..A * phase_row];
            for t0 in (0..tw).step_by(LANES) {
                for (r, dr) in d.iter_mut().enumerate() {
                    let row = &rows[r * phase_row..][..phase_row];
                    for (i, di) in dr.iter_mut().enumerate() {
                        let at = (i % M) * (tw + 1) + t0 + i / M;
                        di.copy_from_slice(&row[at..at + LANES]);
                    }
                }
                for r in 0..A {
                    T::bt(&d[r], &mut rows_t[r]);
                }
                let off = ci * tb + tl * tw + t0;
                for j in 0..A {
                    for r in 0..A {
                        col[r] = rows_t[r][j];
                    }
                    T::bt(&col, &mut vt);
                    for (i, vi) in vt.iter().enumerate() {
                        v[(i * A + j) * plane_v + off..][..LANES].copy_from_slice(vi);
                    }
                }
            }
        }
    }

    // M[p] = U[p] · V[p]: (K × C) · (C × tb).
    for p in 0..A * A {
        let u = &wts.u[p * k * c..][..k * c];
        let vp = &v[p * plane_v..][..c * tb];
        let mp = &mut mm[p * plane_m..][..k * tb];
        // SAFETY: the three row-major matrices lie inside the slices above (K×C with row
        // stride C, C×tb and K×tb with row stride tb), and dst does not alias the inputs.
        unsafe {
            gemm::gemm(
                k,
                tb,
                c,
                mp.as_mut_ptr(),
                1,
                tb as isize,
                false,
                u.as_ptr(),
                1,
                c as isize,
                vp.as_ptr(),
                1,
                tb as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    // Output transform, bias and activation: Y = Aᵀ M A.
    let mm = &*mm;
    for ko in 0..k {
        let (b, slope) = (bias[ko], negative_slope[ko]);
        for tl in 0..nr {
            let row0 = M * (tr0 + tl);
            let rows_here = M.min(h - row0);
            for t0 in (0..tw).step_by(LANES) {
                let col0 = M * t0;
                if col0 >= w {
                    break;
                }
                let off = ko * tb + tl * tw + t0;
                for j in 0..A {
                    for (r, cr) in col.iter_mut().enumerate() {
                        cr.copy_from_slice(&mm[(r * A + j) * plane_m + off..][..LANES]);
                    }
                    T::at(&col, &mut cols_t[j]);
                }
                let cols_here = (M * LANES).min(w - col0);
                for i in 0..rows_here {
                    for j in 0..A {
                        col[j] = cols_t[j][i];
                    }
                    T::at(&col, &mut o);
                    // SAFETY: columns col0 .. col0 + cols_here of row `row0 + i < h` of
                    // channel `ko` lie inside y ([K, h, w]); the row belongs to tile row
                    // tr0 + tl of this block, so no other worker touches it.
                    let yrow = unsafe {
                        std::slice::from_raw_parts_mut(
                            out.0.add((ko * h + row0 + i) * w + col0),
                            cols_here,
                        )
                    };
                    let act = |v: f32| {
                        let v = v + b;
                        if v < 0.0 {
                            v * slope
                        } else {
                            v
                        }
                    };
                    if cols_here == M * LANES {
                        for (l, px) in yrow.chunks_exact_mut(M).enumerate() {
                            for q in 0..M {
                                px[q] = act(o[q][l]);
                            }
                        }
                    } else {
                        for (l, px) in pixels.iter_mut().enumerate() {
                            for q in 0..M {
                                px[q] = act(o[q][l]);
                            }
                        }
                        yrow.copy_from_slice(&pixels.as_flattened()[..cols_here]);
                    }
                }
            }
        }
    }
}

/// A 3×3 / stride 1 / pad 1 convolution over NCHW f32, by Winograd, with the bias and an
/// optional per-channel leaky activation folded in. Input `[N, C, H, W]`, output `[N, K, H, W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradConv {
    /// The transformed kernel.
    pub weights: Arc<WinogradWeights>,
    /// Per output channel (K entries).
    pub bias: Arc<Vec<f32>>,
    /// Per output channel: negative inputs are multiplied by it (1.0: no activation).
    pub negative_slope: Arc<Vec<f32>>,
}

// No NaN is ever compared: the fields are model constants, compared only to dedup ops.
impl Eq for WinogradConv {}

impl Op for WinogradConv {
    fn name(&self) -> StaticName {
        "SavlWinogradConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "F({m}x{m},3x3) {c}->{k}",
            m = self.weights.tile.m(),
            c = self.weights.c,
            k = self.weights.k
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for WinogradConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "WinogradConv takes 1 input");
        let x = &inputs[0];
        let shape = x.shape();
        ensure!(shape.len() == 4, "WinogradConv: input must be NCHW");
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        let k = self.weights.k;
        ensure!(
            c == self.weights.c,
            "WinogradConv: {c} input channels, the kernel wants {}",
            self.weights.c
        );
        let x = x.try_as_plain_ram()?;
        let xs = x.as_slice::<f32>()?;
        // SAFETY: f32 has no invalid bit patterns, and `conv3x3` writes every element.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&[n, k, h, w])? };
        {
            let mut yv = y.try_as_plain_ram_mut()?;
            let ys = yv.as_slice_mut::<f32>()?;
            let executor = tract_linalg::multithread::current_tract_executor();
            for (xi, yi) in xs
                .chunks_exact(c * h * w)
                .zip(ys.chunks_exact_mut(k * h * w))
            {
                conv3x3(
                    &self.weights,
                    &self.bias,
                    &self.negative_slope,
                    xi,
                    h,
                    w,
                    yi,
                    &executor,
                );
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for WinogradConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1);
        let x = inputs[0];
        ensure!(x.datum_type == f32::datum_type());
        ensure!(x.rank() == 4);
        ensure!(x.shape[1] == TDim::Val(self.weights.c as i64));
        let mut shape: TVec<TDim> = x.shape.iter().cloned().collect();
        shape[1] = TDim::Val(self.weights.k as i64);
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let s = &inputs[0].shape;
        let (m, a) = (self.weights.tile.m(), self.weights.tile.alpha());
        let pixels = s[0].clone() * s[2].clone() * s[3].clone();
        let macs = pixels * (a * a * self.weights.k * self.weights.c) / (m * m);
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs)))
    }

    as_op!();
}

/// Whether the rewrite is on: true unless `SAVL_DISABLE_WINOGRAD` is set to anything but
/// `0` or the empty string (read at model load).
pub fn enabled_by_env() -> bool {
    std::env::var_os("SAVL_DISABLE_WINOGRAD").is_none_or(|v| v.is_empty() || v == "0")
}

/// The tile to use: F(4×4) unless `SAVL_WINOGRAD_TILE=2` (read at model load; for benches).
pub fn tile_from_env() -> WinogradTile {
    match std::env::var("SAVL_WINOGRAD_TILE").as_deref() {
        Ok("2") => WinogradTile::F2,
        _ => WinogradTile::F4,
    }
}

fn is_pad_one(p: &PaddingSpec) -> bool {
    match p {
        PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, _) => {
            b.iter().chain(a.iter()).all(|&v| v == 1)
        }
        // For a 3×3 kernel at stride 1 and dilation 1, "same" is 1 on every side.
        PaddingSpec::SameUpper | PaddingSpec::SameLower => true,
        PaddingSpec::Valid => false,
    }
}

/// The op for `node` if it is a conv Winograd can take, else `None`.
fn winograd_for(
    model: &TypedModel,
    node: &TypedNode,
    tile: WinogradTile,
) -> TractResult<Option<WinogradConv>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let ps = &conv.pool_spec;
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&d| d == 1));
    if conv.q_params.is_some()
        || conv.group != 1
        || conv.kernel_fmt != KernelFormat::OIHW
        || ps.data_format != DataFormat::NCHW
        || ps.kernel_shape.as_slice() != [3, 3]
        || !ones(&ps.strides)
        || !ones(&ps.dilations)
        || !is_pad_one(&ps.padding)
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    let f32t = f32::datum_type();
    if facts[0].datum_type != f32t || facts[0].rank() != 4 {
        return Ok(None);
    }
    let (Some(kernel), Some(bias)) = (facts[1].konst.as_ref(), facts[2].konst.as_ref()) else {
        return Ok(None);
    };
    let (k, c) = (ps.output_channels, ps.input_channels);
    if kernel.datum_type() != f32t
        || bias.datum_type() != f32t
        || kernel.shape() != [k, c, 3, 3]
        || !(bias.len() == k || bias.len() == 1)
    {
        return Ok(None);
    }
    let kernel = kernel.try_as_plain_ram()?;
    let bias = bias.try_as_plain_ram()?;
    let (kernel, bias) = (kernel.as_slice::<f32>()?, bias.as_slice::<f32>()?);
    let bias: Vec<f32> = (0..k).map(|i| bias[i % bias.len()]).collect();
    Ok(Some(WinogradConv {
        weights: Arc::new(WinogradWeights::new(tile, kernel, k, c)),
        bias: Arc::new(bias),
        negative_slope: Arc::new(vec![1.0; k]),
    }))
}

/// The leaky-ReLU slope of `node`, if it is an f32 LeakyRelu.
fn leaky_slope(node: &TypedNode) -> Option<f32> {
    node.op_as::<ElementWiseOp>()
        .and_then(|op| op.0.downcast_ref::<LeakyRelu>())
        .map(|l| l.alpha)
}

/// The constant behind `outlet` as f32 values, if it is one.
fn const_f32(model: &TypedModel, outlet: OutletId) -> Option<Vec<f32>> {
    let k = model.outlet_fact(outlet).ok()?.konst.clone()?;
    let k = k.cast_to::<f32>().ok()?;
    let k = k.try_as_plain_ram().ok()?;
    k.as_slice::<f32>().ok().map(|s| s.to_vec())
}

/// The per-channel slopes of a PReLU as ONNX importers expand it after a conv output `x`
/// (`Iff(0 > x, x · slope, x)` or `Iff(x > 0, x, x · slope)`, slope per channel or scalar),
/// with the Iff node; `None` if `x`'s consumers are anything else.
fn prelu_after(model: &TypedModel, x: OutletId, k: usize) -> Option<(Vec<f32>, usize)> {
    let succ = &model.outlet_successors(x);
    if succ.len() != 3 {
        return None;
    }
    let iff = succ
        .iter()
        .map(|i| model.node(i.node))
        .find(|n| n.op_is::<Iff>())?;
    let [cond, then, other] = iff.inputs[..] else {
        return None;
    };
    let outputs = model.output_outlets().ok()?;
    let only_feeds_iff = |o: OutletId| {
        !outputs.contains(&o) && model.outlet_successors(o).iter().all(|i| i.node == iff.id)
    };
    let gt = model.node(cond.node);
    if !gt
        .op_as::<TypedBinOp>()
        .is_some_and(|op| op.0.is::<CompGT>())
        || !only_feeds_iff(cond)
    {
        return None;
    }
    let zero = |o: OutletId| const_f32(model, o).is_some_and(|v| v.iter().all(|&z| z == 0.0));
    let neg_branch = match gt.inputs[..] {
        [a, b] if zero(a) && b == x => then,  // 0 > x
        [a, b] if a == x && zero(b) => other, // x > 0: the negative side is the else branch
        _ => return None,
    };
    if [then, other].iter().filter(|&&o| o == x).count() != 1 || neg_branch == x {
        return None;
    }
    let mul = model.node(neg_branch.node);
    if !mul.op_as::<TypedBinOp>().is_some_and(|op| op.0.is::<Mul>()) || !only_feeds_iff(neg_branch)
    {
        return None;
    }
    let slope_outlet = match mul.inputs[..] {
        [a, b] if a == x => b,
        [a, b] if b == x => a,
        _ => return None,
    };
    let slope = const_f32(model, slope_outlet)?;
    let shape = model
        .outlet_fact(slope_outlet)
        .ok()?
        .shape
        .as_concrete()?
        .to_vec();
    // Per channel against an NCHW x: `[.., K, 1, 1]`, every leading dim 1; a scalar broadcasts.
    let r = shape.len();
    let per_channel = r >= 3
        && shape[r - 3] == k
        && shape[r - 2..] == [1, 1]
        && shape[..r - 3].iter().all(|&d| d == 1);
    let slopes = match slope.len() {
        1 => vec![slope[0]; k],
        _ if per_channel => slope,
        _ => return None,
    };
    Some((slopes, iff.id))
}

/// One rewrite, if any fitting conv is left.
fn rewrite_one(model: &TypedModel, tile: WinogradTile) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(mut op) = winograd_for(model, node, tile)? else {
            continue;
        };
        // Fold a LeakyRelu that is the conv's only consumer (tract fuses it into its matmul).
        let mut replaced: OutletId = id.into();
        let succ = &node.outputs[0].successors;
        if !model.output_outlets()?.contains(&replaced) {
            if succ.len() == 1 {
                let next = model.node(succ[0].node);
                if let Some(alpha) = leaky_slope(next) {
                    op.negative_slope = Arc::new(vec![alpha; op.weights.k]);
                    replaced = next.id.into();
                }
            } else if let Some((slopes, iff)) = prelu_after(model, replaced, op.weights.k) {
                op.negative_slope = Arc::new(slopes);
                replaced = iff.into();
            }
        }
        let mut patch = TypedModelPatch::new("savl winograd conv");
        let x = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(format!("{}.winograd", node.name), op, &[x])?[0];
        patch.shunt_outside(model, replaced, y)?;
        return Ok(Some(patch));
    }
    Ok(None)
}

/// Replace every conv Winograd can take (see the module doc) with a [`WinogradConv`] using
/// `tile`, folding a LeakyRelu or an expanded PReLU that directly follows it; returns how many
/// were replaced.
/// Convs that do not fit (other kernels, strides, padding, groups, dtypes, quantized or
/// non-constant weights) are left unchanged.
pub fn rewrite_convs(model: &mut TypedModel, tile: WinogradTile) -> TractResult<usize> {
    rewrite_until_done(model, "winograd", |m| rewrite_one(m, tile))
}
