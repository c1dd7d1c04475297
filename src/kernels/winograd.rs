//! Winograd convolution F(m×m, 3×3) for 3×3 / stride 1 / pad 1 f32 convolutions.
//!
//! tract runs every 3×3 conv as LazyIm2col + matmul: 9·C multiply-adds per output value.
//! Winograd (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks") computes an
//! m×m output tile from an α×α input tile (α = m + 2) as `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, so the
//! multiply-adds become α²/m² · C per output value (4·C for F(2×2), 2.25·C for F(4×4)) plus
//! linear transforms. Here the kernel transform `U = G g Gᵀ` is done once
//! ([`WinogradWeights::new`]); at run time each block of tile rows is transformed
//! (`V = Bᵀ d B`, per channel), multiplied as α² GEMMs `M[p] = U[p] · V[p]` (K×C by C×tiles),
//! and transformed back with the bias and a per-channel leaky activation folded in
//! ([`conv3x3`]). Blocks run on tract's thread pool when one is given.
//!
//! The GEMMs: on x86-64 with AVX-512F, savl's own register blocks over a kernel packed at load
//! time (8 output channels × 48 tiles in 24 accumulators, no packing or dispatch per call), with
//! `V` and `M` stored chunk-major so that the transforms read and write each tile chunk's α²
//! values as one contiguous run; elsewhere the `gemm` crate on `[α², rows, tiles]` planes.
//!
//! fp16 products ([`WinogradWeights::with_fp16_products`], for aarch64 CPUs with FEAT_FP16):
//! the transforms stay f32; `U` is rounded to f16 once, and each block rounds each plane
//! `V[p]` to f16 and sums the products [`FP16_CHUNK`] input channels at a time in f16, adding
//! those sums in f32. With FEAT_FP16, savl's NEON register blocks (4 output channels × 16 tiles,
//! `fmla v.8h`: products and sums rounded to f16) widen and add each chunk's sums into f32
//! registers; elsewhere `gemm::gemm` on `half::f16`, one chunk per GEMM, computes in f32 from
//! the f16 operands, and the chunks' results are widened and added in memory.
//!
//! Accuracy (max abs difference to a direct convolution accumulated in f64, Kaiming-scaled
//! weights, inputs in [−4, 4], C ≤ 64): about 4e-6 for F(2×2), 1e-4 for F(4×4)
//! (`tests/winograd.rs`); for the fp16 products, see `tests/arch_parity.rs`.

use half::f16;
use half::slice::HalfFloatSliceExt;
use tract_linalg::element_wise::ElementWise;
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::TractResult;
use tract_onnx::tract_core::internal::ensure;

use super::{for_each_block, OutPtr};

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
    #[cfg_attr(not(all(target_arch = "x86_64", savl_avx512)), allow(dead_code))]
    /// The same values for the AVX-512 products: `[α², ⌈K / KR⌉, C, KR]`, the KR rows of one
    /// group side by side for each input channel (rows past K are zero).
    u_packed: Vec<f32>,
    /// The products run in fp16, on `u16`.
    fp16: bool,
    /// Input channels per fp16 sum (see [`FP16_CHUNK`]).
    fp16_chunk: usize,
    /// `u` rounded to f16 when the products run in fp16, else empty.
    u16: Vec<f16>,
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    /// The same f16 values for the NEON fp16 products: `[α², ⌈K / 4⌉, C, 4]`, the 4 rows of one
    /// group side by side for each input channel (rows past K are zero); empty unless fp16.
    u16_packed: Vec<f16>,
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
        let groups = k.div_ceil(KR);
        let mut u_packed = vec![0f32; a * a * groups * c * KR];
        for p in 0..a * a {
            for ko in 0..k {
                for ci in 0..c {
                    u_packed[((p * groups + ko / KR) * c + ci) * KR + ko % KR] =
                        u[(p * k + ko) * c + ci];
                }
            }
        }
        WinogradWeights {
            tile,
            k,
            c,
            u,
            u_packed,
            fp16: false,
            fp16_chunk: FP16_CHUNK,
            u16: Vec::new(),
            u16_packed: Vec::new(),
        }
    }

    /// These weights with the α² products of [`conv3x3`] run in fp16 (see the module doc):
    /// `U` is rounded to f16 here, once; the transforms stay f32; each product sums `chunk`
    /// input channels in f16 (at least 1; [`FP16_CHUNK`] is the default), and the chunks' sums
    /// are added in f32. Fast only where the CPU has native fp16 arithmetic (aarch64
    /// FEAT_FP16); elsewhere the `gemm` crate widens the f16 operands to f32.
    pub fn with_fp16_products(mut self, chunk: usize) -> WinogradWeights {
        self.u16 = self.u.iter().map(|&v| f16::from_f32(v)).collect();
        let (k, c, a2) = (self.k, self.c, self.tile.alpha() * self.tile.alpha());
        let groups = k.div_ceil(F16_KR);
        self.u16_packed = vec![f16::ZERO; a2 * groups * c * F16_KR];
        for p in 0..a2 {
            for ko in 0..k {
                for ci in 0..c {
                    self.u16_packed[((p * groups + ko / F16_KR) * c + ci) * F16_KR + ko % F16_KR] =
                        self.u16[(p * k + ko) * c + ci];
                }
            }
        }
        self.fp16 = true;
        self.fp16_chunk = chunk.max(1);
        self
    }

    /// Whether [`conv3x3`] runs the products in fp16
    /// ([`WinogradWeights::with_fp16_products`]).
    pub fn fp16_products(&self) -> bool {
        self.fp16
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

/// Input channels each fp16 product sums in f16 before the chunks are added in f32
/// ([`WinogradWeights::with_fp16_products`]): two sums for the shipped model's 48-channel convs,
/// which in one fp16 sum lose too much with F(4×4)'s large transformed values, while each more
/// chunk costs a pass over `M` (`docs/PERF.md`, "ARM").
pub const FP16_CHUNK: usize = 24;

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
    /// Transformed input, C rows in the [`Layout`] of the block's [`Products`].
    v: Vec<f32>,
    /// GEMM output, K rows in the [`Layout`] of the block's [`Products`].
    m: Vec<f32>,
    /// One zero-padded input row.
    prow: Vec<f32>,
    /// The block's padded input rows of one channel, each split into its M column phases:
    /// `[rows, M, tw + 1]`.
    phases: Vec<f32>,
    /// One plane of `V` and of `M` in f16 (fp16 products only, else empty).
    half: HalfPlanes,
}

/// One α² plane of `V` (`[C, tb]`) and of `M` (`[K, tb]`) in f16, for [`GemmF16`].
#[derive(Default)]
struct HalfPlanes {
    v: Vec<f16>,
    m: Vec<f16>,
}

impl Scratch {
    fn new<const M: usize, const A: usize>(wts: &WinogradWeights, g: &Geometry) -> Scratch {
        let tb = g.rows_per_block * g.tw;
        Scratch {
            v: vec![0.0; A * A * (wts.c * tb + PLANE_PAD)],
            m: vec![0.0; A * A * (wts.k * tb + PLANE_PAD)],
            prow: vec![0.0; M * (g.tw + 1)],
            phases: vec![0.0; (M * g.rows_per_block + 2) * M * (g.tw + 1)],
            half: if wts.fp16_products() {
                HalfPlanes {
                    v: vec![f16::ZERO; wts.c * tb],
                    m: vec![f16::ZERO; wts.k * tb],
                }
            } else {
                HalfPlanes::default()
            },
        }
    }
}

/// `y = act(conv3x3(x, kernel) + bias)` for one NCHW image with pad 1 on every side:
/// `x` is `[C, h, w]`, `y` is `[K, h, w]`, `bias` and `negative_slope` have K entries; the
/// activation is `v < 0 ? v · negative_slope[k] : v` (1.0 for none, α for a leaky ReLU).
/// Then `post` (a tract element-wise kernel, SPAN's SiLU say), when given, runs over each
/// block's output rows while they are still in cache: the same values as running it over `y`
/// afterwards. With a multi-thread `executor`, blocks of tile rows run on its pool. Inside
/// [`super::with_portable_products`] the GEMMs are the `gemm` crate's (the path of CPUs without
/// AVX-512F, and of fp16 products on CPUs without FEAT_FP16).
///
/// # Panics
/// If a buffer length does not match the shapes.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(
    wts: &WinogradWeights,
    bias: &[f32],
    negative_slope: &[f32],
    x: &[f32],
    h: usize,
    w: usize,
    y: &mut [f32],
    executor: &Executor,
    post: Option<&dyn ElementWise<f32>>,
) -> TractResult<()> {
    let f = match wts.tile {
        WinogradTile::F2 => conv3x3_m::<2, 4, F2x3>,
        WinogradTile::F4 => conv3x3_m::<4, 6, F4x3>,
    };
    f(wts, bias, negative_slope, x, h, w, y, executor, post)
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
    post: Option<&dyn ElementWise<f32>>,
) -> TractResult<()> {
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
        return Ok(());
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
        post,
        failed: std::sync::atomic::AtomicBool::new(false),
    };
    let run = block_fn::<M, A, T>(super::portable_products(), wts.fp16_products());
    let block = |scratch: &mut Scratch, b: usize| {
        let tr0 = b * rows_per_block;
        let tr1 = (tr0 + rows_per_block).min(th);
        run(&args, tr0, tr1, scratch);
    };
    for_each_block(executor, blocks, || Scratch::new::<M, A>(wts, &g), block);
    ensure!(
        !args.failed.into_inner(),
        "Winograd conv: the element-wise kernel after it failed"
    );
    Ok(())
}

/// Hints the CPU to bring `data` into the caches (a no-op off x86-64).
#[inline(always)]
fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(16) {
        // SAFETY: a prefetch never faults; SSE is part of the x86-64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// What every block of one conv shares.
struct BlockArgs<'a> {
    wts: &'a WinogradWeights,
    bias: &'a [f32],
    negative_slope: &'a [f32],
    x: &'a [f32],
    g: Geometry,
    out: OutPtr,
    post: Option<&'a dyn ElementWise<f32>>,
    /// Set when `post` returned an error in some block.
    failed: std::sync::atomic::AtomicBool,
}

type BlockFn = fn(&BlockArgs, usize, usize, &mut Scratch);

/// [`run_block`] for this CPU: with `fp16` products, [`GemmF16`] on any CPU; on x86-64 with
/// AVX-512F (unless `portable_gemm`: inside [`super::with_portable_products`]; or the compiler
/// predates the AVX-512 intrinsics: `cfg(savl_avx512)`), a copy compiled for it with
/// `Avx512Products`; with AVX2 and FMA, a copy compiled for them (the baseline target only has
/// SSE2, which halves the transforms' vector width).
fn block_fn<const M: usize, const A: usize, T: Transforms<M, A>>(
    portable_gemm: bool,
    fp16: bool,
) -> BlockFn {
    if fp16 {
        #[cfg(target_arch = "aarch64")]
        if !portable_gemm && std::arch::is_aarch64_feature_detected!("fp16") {
            return |args, tr0, tr1, s| {
                // SAFETY: FEAT_FP16 was detected on this CPU just above.
                unsafe { run_block_fp16::<M, A, T>(args, tr0, tr1, s) }
            };
        }
        return run_block::<M, A, T, GemmF16>;
    }
    #[cfg(not(all(target_arch = "x86_64", savl_avx512)))]
    let _ = portable_gemm;
    #[cfg(all(target_arch = "x86_64", savl_avx512))]
    if !portable_gemm
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
    {
        return |args, tr0, tr1, s| {
            // SAFETY: AVX-512F, AVX2 and FMA were detected on this CPU just above.
            unsafe { run_block_avx512::<M, A, T>(args, tr0, tr1, s) }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return |args, tr0, tr1, s| {
            // SAFETY: AVX2 and FMA were detected on this CPU just above.
            unsafe { run_block_avx2::<M, A, T>(args, tr0, tr1, s) }
        };
    }
    run_block::<M, A, T, GemmCrate>
}

/// [`run_block`] compiled with FEAT_FP16, its products by [`NeonF16Products`].
///
/// # Safety
/// The CPU must support FEAT_FP16.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "fp16")]
unsafe fn run_block_fp16<const M: usize, const A: usize, T: Transforms<M, A>>(
    args: &BlockArgs,
    tr0: usize,
    tr1: usize,
    s: &mut Scratch,
) {
    run_block::<M, A, T, NeonF16Products>(args, tr0, tr1, s)
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
    run_block::<M, A, T, GemmCrate>(args, tr0, tr1, s)
}

/// [`run_block`] compiled with AVX-512F (the transforms on 512-bit vectors) and its products
/// by [`Avx512Products`].
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(all(target_arch = "x86_64", savl_avx512))]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_block_avx512<const M: usize, const A: usize, T: Transforms<M, A>>(
    args: &BlockArgs,
    tr0: usize,
    tr1: usize,
    s: &mut Scratch,
) {
    run_block::<M, A, T, Avx512Products>(args, tr0, tr1, s)
}

/// Where the values of one block's transformed input `V` and GEMM output `M` lie in the scratch
/// buffers: value `(p, row, tile t)` (row = input channel of V, output channel of M; t a multiple
/// of `LANES` here, the `LANES` tiles from t contiguous) is at
/// `p · p_stride + row · row_stride + (t / LANES) · chunk_stride`.
#[derive(Clone, Copy)]
struct Layout {
    p_stride: usize,
    row_stride: usize,
    chunk_stride: usize,
}

impl Layout {
    #[inline(always)]
    fn at(&self, p: usize, row: usize, t: usize) -> usize {
        p * self.p_stride + row * self.row_stride + (t / LANES) * self.chunk_stride
    }
}

/// The α² products `M[p] = U[p] · V[p]` of one block (K × C by C × tb), with the layout of `V`
/// and `M` they read and write.
trait Products {
    /// The layout of a block's `V` (`rows` = C) or `M` (`rows` = K) for α² positions and tb
    /// tiles; it fits in `α² · (rows · tb + PLANE_PAD)` floats.
    fn layout(alpha2: usize, rows: usize, tb: usize) -> Layout;

    /// `half` is the block's f16 scratch (empty unless the weights have fp16 products).
    fn products(
        wts: &WinogradWeights,
        v: &[f32],
        lv: Layout,
        mm: &mut [f32],
        lm: Layout,
        tb: usize,
        half: &mut HalfPlanes,
    );
}

/// The products by the `gemm` crate (any CPU): planes `[α²][rows][tb]`, `PLANE_PAD` apart.
struct GemmCrate;

impl Products for GemmCrate {
    fn layout(_alpha2: usize, rows: usize, tb: usize) -> Layout {
        Layout {
            p_stride: rows * tb + PLANE_PAD,
            row_stride: tb,
            chunk_stride: LANES,
        }
    }

    #[inline(always)]
    fn products(
        wts: &WinogradWeights,
        v: &[f32],
        lv: Layout,
        mm: &mut [f32],
        lm: Layout,
        tb: usize,
        _half: &mut HalfPlanes,
    ) {
        let (k, c) = (wts.k, wts.c);
        for p in 0..wts.tile.alpha() * wts.tile.alpha() {
            let u = &wts.u[p * k * c..][..k * c];
            let vp = &v[p * lv.p_stride..][..c * tb];
            let mp = &mut mm[p * lm.p_stride..][..k * tb];
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
    }
}

/// The products in fp16 by the `gemm` crate: the same planes as [`GemmCrate`]; each `V[p]` is
/// rounded to f16 into `half.v`, and multiplied by the f16 `U[p]` one chunk of
/// `fp16_chunk` input channels at a time into `half.m` (sums in f16), whose partial products are
/// widened and added into `M[p]` in f32.
struct GemmF16;

impl Products for GemmF16 {
    fn layout(alpha2: usize, rows: usize, tb: usize) -> Layout {
        GemmCrate::layout(alpha2, rows, tb)
    }

    #[inline(always)]
    fn products(
        wts: &WinogradWeights,
        v: &[f32],
        lv: Layout,
        mm: &mut [f32],
        lm: Layout,
        tb: usize,
        half: &mut HalfPlanes,
    ) {
        let (k, c) = (wts.k, wts.c);
        let chunk = wts.fp16_chunk;
        let v16 = &mut half.v[..c * tb];
        let m16 = &mut half.m[..k * tb];
        for p in 0..wts.tile.alpha() * wts.tile.alpha() {
            let u = &wts.u16[p * k * c..][..k * c];
            narrow(v16, &v[p * lv.p_stride..][..c * tb]);
            let mp = &mut mm[p * lm.p_stride..][..k * tb];
            for c0 in (0..c).step_by(chunk) {
                let cc = chunk.min(c - c0);
                // SAFETY: as in `GemmCrate::products`: columns c0 .. c0 + cc of U[p] (K×C, row
                // stride C), rows c0 .. c0 + cc of V[p] (C×tb) and M[p] (K×tb, row stride tb)
                // lie inside `u`, `v16` and `m16`, and dst aliases neither input.
                unsafe {
                    gemm::gemm(
                        k,
                        tb,
                        cc,
                        m16.as_mut_ptr(),
                        1,
                        tb as isize,
                        false,
                        u.as_ptr().add(c0),
                        1,
                        c as isize,
                        v16.as_ptr().add(c0 * tb),
                        1,
                        tb as isize,
                        f16::ZERO,
                        f16::ONE,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                if c0 == 0 {
                    widen::<false>(mp, m16);
                } else {
                    widen::<true>(mp, m16);
                }
            }
        }
    }
}

/// Output rows of one register block of the NEON fp16 products (the packing group of
/// [`WinogradWeights`]' `u16_packed`).
const F16_KR: usize = 4;

/// The products in fp16 with savl's NEON register blocks (aarch64 with FEAT_FP16): the same
/// planes as [`GemmCrate`]; each `V[p]` is rounded to f16 into `half.v`, then each block of
/// [`F16_KR`] output channels × 16 tiles sums `fp16_chunk` input channels at a time in 8 fp16
/// accumulators (`fmla .8h`), widening and adding each chunk's sums into 16 f32 accumulators in
/// registers, and stores them into `M[p]` once. Only inlined into [`run_block_fp16`].
#[cfg(target_arch = "aarch64")]
struct NeonF16Products;

#[cfg(target_arch = "aarch64")]
impl Products for NeonF16Products {
    fn layout(alpha2: usize, rows: usize, tb: usize) -> Layout {
        GemmCrate::layout(alpha2, rows, tb)
    }

    #[inline(always)]
    fn products(
        wts: &WinogradWeights,
        v: &[f32],
        lv: Layout,
        mm: &mut [f32],
        lm: Layout,
        tb: usize,
        half: &mut HalfPlanes,
    ) {
        let (k, c) = (wts.k, wts.c);
        let groups = k.div_ceil(F16_KR);
        let v16 = &mut half.v[..c * tb];
        debug_assert_eq!(tb % 16, 0);
        for p in 0..wts.tile.alpha() * wts.tile.alpha() {
            narrow(v16, &v[p * lv.p_stride..][..c * tb]);
            let up = &wts.u16_packed[p * groups * c * F16_KR..][..groups * c * F16_KR];
            let mp = &mut mm[p * lm.p_stride..][..k * tb];
            for g in 0..groups {
                let rows = F16_KR.min(k - g * F16_KR);
                let ug = &up[g * c * F16_KR..][..c * F16_KR];
                for t0 in (0..tb).step_by(16) {
                    // SAFETY: only inlined into `run_block_fp16` (FEAT_FP16, checked at
                    // dispatch); `ug` holds C·4 values, `v16` rows ci < C of tb values from
                    // which tiles t0 .. t0 + 16 are read (t0 + 16 ≤ tb), and `mp` rows
                    // g·4 + r < K of tb values, of which the same tiles are written.
                    unsafe {
                        neon_f16_block(
                            ug.as_ptr(),
                            v16.as_ptr().add(t0),
                            tb,
                            c,
                            wts.fp16_chunk,
                            mp.as_mut_ptr().add(g * F16_KR * tb + t0),
                            rows,
                        )
                    }
                }
            }
        }
    }
}

/// `out[r, j] = Σ_ci u[ci·4 + r] · v[ci·tb + j]` for r < rows, j < 16: each run of `chunk`
/// input channels summed in f16, the runs' sums added in f32; `out[r, j]` is at
/// `out + r·tb + j`.
///
/// # Safety
/// The CPU must support FEAT_FP16; `u` has C·4 values, `v` 16 values from each `ci·tb`
/// (ci < C), and `out` 16 values from each `r·tb` (r < rows ≤ 4); `chunk ≥ 1`.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "fp16")]
#[inline]
unsafe fn neon_f16_block(
    u: *const f16,
    v: *const f16,
    tb: usize,
    c: usize,
    chunk: usize,
    out: *mut f32,
    rows: usize,
) {
    use std::arch::aarch64::*;
    // SAFETY: the caller guarantees FEAT_FP16 and the bounds above; the pointers below stay
    // inside them (rows ci < C of v, the first 16 values of each; rows r < rows of out).
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; F16_KR];
        let mut c0 = 0;
        while c0 < c {
            let c1 = (c0 + chunk).min(c);
            let mut h = [vdupq_n_u16(0); 2 * F16_KR];
            // Row c0 of v and its 4 weights; each step moves them one input channel on.
            let (mut vp, mut up) = (v.wrapping_add(c0 * tb), u.wrapping_add(c0 * F16_KR));
            for _ in c0..c1 {
                std::arch::asm!(
                    "ldp {x0:q}, {x1:q}, [{vp}]",
                    "ldr {w:d}, [{up}], #8",
                    "add {vp}, {vp}, {vstride}",
                    "fmla {h0:v}.8h, {x0:v}.8h, {w:v}.h[0]",
                    "fmla {h1:v}.8h, {x1:v}.8h, {w:v}.h[0]",
                    "fmla {h2:v}.8h, {x0:v}.8h, {w:v}.h[1]",
                    "fmla {h3:v}.8h, {x1:v}.8h, {w:v}.h[1]",
                    "fmla {h4:v}.8h, {x0:v}.8h, {w:v}.h[2]",
                    "fmla {h5:v}.8h, {x1:v}.8h, {w:v}.h[2]",
                    "fmla {h6:v}.8h, {x0:v}.8h, {w:v}.h[3]",
                    "fmla {h7:v}.8h, {x1:v}.8h, {w:v}.h[3]",
                    vp = inout(reg) vp,
                    up = inout(reg) up,
                    vstride = in(reg) tb * 2,
                    x0 = out(vreg) _,
                    x1 = out(vreg) _,
                    w = out(vreg_low16) _,
                    h0 = inout(vreg) h[0],
                    h1 = inout(vreg) h[1],
                    h2 = inout(vreg) h[2],
                    h3 = inout(vreg) h[3],
                    h4 = inout(vreg) h[4],
                    h5 = inout(vreg) h[5],
                    h6 = inout(vreg) h[6],
                    h7 = inout(vreg) h[7],
                    options(nostack, preserves_flags, readonly),
                );
            }
            for (r, ar) in acc.iter_mut().enumerate() {
                for (half, pair) in h[2 * r..2 * r + 2].iter().zip(ar.chunks_exact_mut(2)) {
                    let (lo, hi): (float32x4_t, float32x4_t);
                    std::arch::asm!(
                        "fcvtl {lo:v}.4s, {h:v}.4h",
                        "fcvtl2 {hi:v}.4s, {h:v}.8h",
                        h = in(vreg) *half,
                        lo = out(vreg) lo,
                        hi = out(vreg) hi,
                        options(pure, nomem, nostack, preserves_flags),
                    );
                    pair[0] = vaddq_f32(pair[0], lo);
                    pair[1] = vaddq_f32(pair[1], hi);
                }
            }
            c0 = c1;
        }
        for (r, ar) in acc.iter().enumerate().take(rows) {
            for (j, a) in ar.iter().enumerate() {
                vst1q_f32(out.add(r * tb + 4 * j), *a);
            }
        }
    }
}

/// `dst[i] = src[i]` rounded to f16 (to nearest, ties to even).
///
/// # Panics
/// If the lengths differ.
#[inline]
fn narrow(dst: &mut [f16], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "aarch64")]
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        // SAFETY: `s` holds 8 f32 (32 bytes read), `d` 8 f16 (16 bytes written); NEON and FCVTN
        // (single to half, rounding as FPCR says: to nearest, ties to even, unless changed) are
        // in every aarch64 CPU.
        unsafe {
            std::arch::asm!(
                "ldp {a:q}, {b:q}, [{s}]",
                "fcvtn {h:v}.4h, {a:v}.4s",
                "fcvtn2 {h:v}.8h, {b:v}.4s",
                "str {h:q}, [{d}]",
                s = in(reg) s.as_ptr(),
                d = in(reg) d.as_mut_ptr(),
                a = out(vreg) _,
                b = out(vreg) _,
                h = out(vreg) _,
                options(nostack, preserves_flags),
            );
        }
    }
    let done = if cfg!(target_arch = "aarch64") {
        src.len() / 8 * 8
    } else {
        0
    };
    dst[done..].convert_from_f32_slice(&src[done..]);
}

/// `dst[i] = src[i]` widened to f32, or `dst[i] += src[i]` when `ADD`.
///
/// # Panics
/// If the lengths differ.
#[inline]
fn widen<const ADD: bool>(dst: &mut [f32], src: &[f16]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "aarch64")]
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        // SAFETY: `s` holds 8 f16 (16 bytes read), `d` 8 f32 (32 bytes read and written); NEON
        // and FCVTL (half to single, exact) are in every aarch64 CPU.
        unsafe {
            if ADD {
                std::arch::asm!(
                    "ldr {h:q}, [{s}]",
                    "ldp {a:q}, {b:q}, [{d}]",
                    "fcvtl {lo:v}.4s, {h:v}.4h",
                    "fcvtl2 {hi:v}.4s, {h:v}.8h",
                    "fadd {lo:v}.4s, {lo:v}.4s, {a:v}.4s",
                    "fadd {hi:v}.4s, {hi:v}.4s, {b:v}.4s",
                    "stp {lo:q}, {hi:q}, [{d}]",
                    s = in(reg) s.as_ptr(),
                    d = in(reg) d.as_mut_ptr(),
                    h = out(vreg) _,
                    a = out(vreg) _,
                    b = out(vreg) _,
                    lo = out(vreg) _,
                    hi = out(vreg) _,
                    options(nostack, preserves_flags),
                );
            } else {
                std::arch::asm!(
                    "ldr {h:q}, [{s}]",
                    "fcvtl {lo:v}.4s, {h:v}.4h",
                    "fcvtl2 {hi:v}.4s, {h:v}.8h",
                    "stp {lo:q}, {hi:q}, [{d}]",
                    s = in(reg) s.as_ptr(),
                    d = in(reg) d.as_mut_ptr(),
                    h = out(vreg) _,
                    lo = out(vreg) _,
                    hi = out(vreg) _,
                    options(nostack, preserves_flags),
                );
            }
        }
    }
    let done = if cfg!(target_arch = "aarch64") {
        src.len() / 8 * 8
    } else {
        0
    };
    for (d, s) in dst[done..].iter_mut().zip(&src[done..]) {
        *d = if ADD { *d + s.to_f32() } else { s.to_f32() };
    }
}

/// Output rows of one register block of the AVX-512 products (the packing group of
/// [`WinogradWeights`]' `u_packed`).
const KR: usize = 8;

/// The products with AVX-512 register blocks over the pre-packed kernel: KR output channels ×
/// up to 48 tiles (3 vectors) in 24 accumulators, one pass over C, no packing at run time.
/// Only inlined into [`run_block_avx512`].
#[cfg(all(target_arch = "x86_64", savl_avx512))]
struct Avx512Products;

#[cfg(all(target_arch = "x86_64", savl_avx512))]
impl Products for Avx512Products {
    /// Chunk-major, `[tb / LANES][rows][α²][LANES]`: the input transform writes, and the output
    /// transform reads, the α² values of one row and chunk as one contiguous run (α² planes
    /// apart they were α² streams at once, more than the prefetchers follow).
    fn layout(alpha2: usize, rows: usize, _tb: usize) -> Layout {
        Layout {
            p_stride: LANES,
            row_stride: alpha2 * LANES,
            chunk_stride: rows * alpha2 * LANES,
        }
    }

    #[inline(always)]
    fn products(
        wts: &WinogradWeights,
        v: &[f32],
        lv: Layout,
        mm: &mut [f32],
        lm: Layout,
        tb: usize,
        _half: &mut HalfPlanes,
    ) {
        let (k, c) = (wts.k, wts.c);
        let groups = k.div_ceil(KR);
        debug_assert_eq!(tb % LANES, 0);
        for p in 0..wts.tile.alpha() * wts.tile.alpha() {
            let up = &wts.u_packed[p * groups * c * KR..][..groups * c * KR];
            let mut t0 = 0;
            while t0 < tb {
                // 3 vectors at a time, 2 + 2 for the last 4 (no single-vector pass).
                let nv = match (tb - t0) / LANES {
                    4 => 2,
                    n => n.min(3),
                };
                for g in 0..groups {
                    let rows = KR.min(k - g * KR);
                    let ug = &up[g * c * KR..][..c * KR];
                    let vb = &v[lv.at(p, 0, t0)..];
                    let ob = &mut mm[lm.at(p, g * KR, t0)..];
                    // SAFETY: this is only inlined into `run_block_avx512` (AVX-512F enabled,
                    // checked at dispatch); `ug` holds C·KR values; `vb` holds rows ci < C of
                    // chunks t0 / 16 + j, j < nv, and `ob` rows g·KR + r < K of the same chunks,
                    // all inside the block's layouts (t0 + 16·nv ≤ tb).
                    unsafe {
                        match nv {
                            3 => avx512_block::<3>(ug, vb, lv, c, ob, lm, rows),
                            2 => avx512_block::<2>(ug, vb, lv, c, ob, lm, rows),
                            _ => avx512_block::<1>(ug, vb, lv, c, ob, lm, rows),
                        }
                    }
                }
                t0 += nv * LANES;
            }
        }
    }
}

/// `out[r, j] = Σ_ci u[ci·KR + r] · v[ci, j]` for r < rows, j < NV vectors of 16 tiles, where
/// `v[ci, j]` is at `ci · lv.row_stride + j · lv.chunk_stride` and `out[r, j]` at
/// `r · lo.row_stride + j · lo.chunk_stride`.
///
/// # Safety
/// The CPU must support AVX-512F; `u` has C·KR values, and every `v[ci, j]` (ci < C) and
/// `out[r, j]` (r < rows ≤ KR) 16 values in bounds.
#[cfg(all(target_arch = "x86_64", savl_avx512))]
// The intrinsics are newer than the crate's MSRV; `savl_avx512` (build.rs) compiles this only
// with a compiler that has them.
#[allow(clippy::incompatible_msrv)]
#[inline(always)]
unsafe fn avx512_block<const NV: usize>(
    u: &[f32],
    v: &[f32],
    lv: Layout,
    c: usize,
    out: &mut [f32],
    lo: Layout,
    rows: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(u.len() >= c * KR && rows <= KR);
    debug_assert!(c == 0 || v.len() >= (c - 1) * lv.row_stride + (NV - 1) * lv.chunk_stride + 16);
    debug_assert!(
        rows == 0 || out.len() >= (rows - 1) * lo.row_stride + (NV - 1) * lo.chunk_stride + 16
    );
    // SAFETY: the caller guarantees AVX-512F and the bounds above; every pointer below stays
    // inside them (rows ci < C of v, the first 16·NV values of each; rows r < rows of out).
    unsafe {
        let (u, v, out) = (u.as_ptr(), v.as_ptr(), out.as_mut_ptr());
        let mut acc = [[_mm512_setzero_ps(); NV]; KR];
        for ci in 0..c {
            let vr = v.add(ci * lv.row_stride);
            let mut x = [_mm512_setzero_ps(); NV];
            for (j, xj) in x.iter_mut().enumerate() {
                *xj = _mm512_loadu_ps(vr.add(j * lv.chunk_stride));
            }
            let ur = u.add(ci * KR);
            for (r, ar) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*ur.add(r));
                for (aj, xj) in ar.iter_mut().zip(&x) {
                    *aj = _mm512_fmadd_ps(b, *xj, *aj);
                }
            }
        }
        for (r, ar) in acc.iter().enumerate().take(rows) {
            for (j, aj) in ar.iter().enumerate() {
                _mm512_storeu_ps(out.add(r * lo.row_stride + j * lo.chunk_stride), *aj);
            }
        }
    }
}

/// Tile rows `tr0..tr1` of one image: input transform, α² GEMMs, output transform into `out`
/// (output rows `M·tr0 .. min(M·tr1, h)` of every channel, which no other block writes).
#[inline(always)]
fn run_block<const M: usize, const A: usize, T: Transforms<M, A>, P: Products>(
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
        post,
        ..
    } = *args;
    let (k, c) = (wts.k, wts.c);
    let (h, w, tw) = (g.h, g.w, g.tw);
    let nr = tr1 - tr0;
    let tb = nr * tw;
    let lv = P::layout(A * A, c, tb);
    let lm = P::layout(A * A, k, tb);
    let v = &mut s.v[..A * A * (c * tb + PLANE_PAD)];
    let mm = &mut s.m[..A * A * (k * tb + PLANE_PAD)];
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
    // Source rows the block reads: padded rows M·tr0 .. M·tr1 + 2, less the padding.
    let src_rows = (M * tr0).saturating_sub(1)..(M * tr1 + 1).min(h);
    for ci in 0..c {
        let xc = &x[ci * h * w..][..h * w];
        // The next channel's rows are short runs in another part of the image, which the
        // hardware prefetchers pick up late: ask for them while this channel is transformed.
        if ci + 1 < c {
            prefetch(&x[((ci + 1) * h + src_rows.start) * w..(ci + 1) * h * w + src_rows.end * w]);
        }
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
                let t = tl * tw + t0;
                for j in 0..A {
                    for r in 0..A {
                        col[r] = rows_t[r][j];
                    }
                    T::bt(&col, &mut vt);
                    for (i, vi) in vt.iter().enumerate() {
                        v[lv.at(i * A + j, ci, t)..][..LANES].copy_from_slice(vi);
                    }
                }
            }
        }
    }

    // M[p] = U[p] · V[p]: (K × C) · (C × tb).
    P::products(wts, v, lv, mm, lm, tb, &mut s.half);

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
                let t = tl * tw + t0;
                for j in 0..A {
                    for (r, cr) in col.iter_mut().enumerate() {
                        cr.copy_from_slice(&mm[lm.at(r * A + j, ko, t)..][..LANES]);
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
        if let Some(post) = post {
            let (r0, r1) = (M * tr0, (M * tr1).min(h));
            // SAFETY: rows r0 .. r1 of channel `ko` are this block's (written just above), and
            // lie inside y ([K, h, w]).
            let rows = unsafe {
                std::slice::from_raw_parts_mut(out.0.add((ko * h + r0) * w), (r1 - r0) * w)
            };
            if post.run(rows).is_err() {
                args.failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}
