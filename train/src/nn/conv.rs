//! A stride-1 2-D convolution for the CPU with a fast backward pass.
//!
//! candle 0.11's stock `conv2d` computes the input gradient with a direct `conv_transpose2d`
//! (one `vec_dot` per output pixel, no GEMM), about 3× the cost of the forward. Here all three
//! products run as GEMMs on NCHW data without layout copies:
//!
//! - forward, per image: `out[Cout, HW] = W[Cout, Cin·k²] × im2col(x)[Cin·k², HW]`;
//! - input gradient: the same forward applied to `grad_out` with the kernel flipped in space and
//!   transposed in/out (`W'[ci, co, ky, kx] = W[co, ci, k−1−ky, k−1−kx]`), padding `k−1−p`;
//! - weight gradient: `dW[Cout, Cin·k²] = Σ_b grad_out_b[Cout, HW] × im2col(x_b)ᵀ`, one GEMM per
//!   image into per-thread accumulators.
//!
//! Only stride 1, dilation 1, groups 1, square kernels and f32 are supported; that is all the
//! SAVL nets use. On other devices [`conv2d`] falls back to candle's own conv.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Geometry of one stride-1 convolution.
#[derive(Clone, Copy, Debug)]
struct Geom {
    b: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn new(x: &Layout, w: &Layout, pad: usize) -> Result<Self> {
        let (b, cin, h, wd) = x.shape().dims4()?;
        let (cout, cin2, k, k2) = w.shape().dims4()?;
        if cin != cin2 || k != k2 {
            candle_core::bail!(
                "fast conv2d: input {:?} and kernel {:?} do not fit (need square kernels, equal Cin)",
                x.shape(),
                w.shape()
            );
        }
        if h + 2 * pad < k || wd + 2 * pad < k {
            candle_core::bail!(
                "fast conv2d: input {h}×{wd} with pad {pad} smaller than kernel {k}"
            );
        }
        Ok(Self {
            b,
            cin,
            h,
            w: wd,
            cout,
            k,
            pad,
            ho: h + 2 * pad + 1 - k,
            wo: wd + 2 * pad + 1 - k,
        })
    }

    fn kdim(&self) -> usize {
        self.cin * self.k * self.k
    }

    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.pad == 0
    }
}

const CONV: &str = "fast conv2d";

/// The f32 values of a contiguous CPU tensor, for the custom ops' kernels; `op` and `what` name
/// the op and the operand in the error otherwise.
pub(crate) fn contiguous_f32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("{op}: {what} must be f32, got {:?}", s.dtype()),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: {what} must be contiguous"),
    }
}

/// An im2col buffer borrowed from the current thread and handed back on drop, so the multi-MB
/// column matrices are allocated (and zero-filled) once per thread instead of once per conv.
/// A nested borrow on the same thread (rayon work stealing inside a GEMM) gets a fresh buffer.
struct Scratch(Vec<f32>);

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Scratch {
    fn take() -> Self {
        Self(SCRATCH.with(|c| c.take()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        SCRATCH.with(|c| {
            let old = c.take();
            c.set(if v.capacity() >= old.capacity() {
                v
            } else {
                old
            });
        });
    }
}

/// `cols[(ci·k + ky)·k + kx, oy·wo + ox] = x[ci, oy+ky−pad, ox+kx−pad]` (zero outside).
fn im2col(x: &[f32], g: &Geom, cols: &mut [f32]) {
    let (h, w, k, pad, ho, wo) = (g.h, g.w, g.k, g.pad as isize, g.ho, g.wo);
    let hw_out = ho * wo;
    for ci in 0..g.cin {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((ci * k + ky) * k + kx) * hw_out..][..hw_out];
                let dx = kx as isize - pad;
                // Valid output columns: 0 <= ox + dx < w.
                let ox0 = (-dx).clamp(0, wo as isize) as usize;
                let ox1 = (w as isize - dx).clamp(ox0 as isize, wo as isize) as usize;
                for oy in 0..ho {
                    let iy = oy as isize + ky as isize - pad;
                    let dst = &mut row[oy * wo..(oy + 1) * wo];
                    if iy < 0 || iy >= h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    dst[..ox0].fill(0.0);
                    let s0 = (ox0 as isize + dx) as usize;
                    dst[ox0..ox1].copy_from_slice(&src[s0..s0 + (ox1 - ox0)]);
                    dst[ox1..].fill(0.0);
                }
            }
        }
    }
}

/// `dst[m×n] (row stride dst_rs) = (accumulate ? dst : 0) + lhs[m×k] · rhs[k×n]`, with explicit
/// row/column strides for the operands.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    threads: usize,
) {
    assert!(m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len());
    assert!(m == 0 || k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len());
    assert!(k == 0 || n == 0 || (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len());
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every accessed element inside the slices; `dst` is a
    // unique borrow and does not alias `lhs`/`rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Forward kernel on raw NCHW slices: `out[b, Cout, ho, wo]`, plus an optional per-channel
/// bias and LeakyReLU applied while the image's output is still in cache.
fn conv_fwd(x: &[f32], wt: &[f32], g: &Geom, bias: Option<&[f32]>, slope: Option<f32>) -> Vec<f32> {
    let hw_out = g.ho * g.wo;
    let kd = g.kdim();
    let in_len = g.cin * g.h * g.w;
    let out_len = g.cout * hw_out;
    let mut out = vec![0f32; g.b * out_len];
    let threads = rayon::current_num_threads();
    let one = |xb: &[f32], ob: &mut [f32], cols: &mut Vec<f32>, t: usize| {
        let rhs: &[f32] = if g.is_pointwise() {
            xb
        } else {
            cols.resize(kd * hw_out, 0.0);
            im2col(xb, g, cols);
            cols
        };
        sgemm(
            g.cout, hw_out, kd, ob, hw_out, false, wt, kd, 1, rhs, hw_out, 1, t,
        );
        if bias.is_some() || slope.is_some() {
            for (co, row) in ob.chunks_mut(hw_out).enumerate() {
                let bv = bias.map_or(0.0, |b| b[co]);
                match slope {
                    Some(a) => row.iter_mut().for_each(|v| {
                        let y = *v + bv;
                        *v = if y < 0.0 { y * a } else { y };
                    }),
                    None => row.iter_mut().for_each(|v| *v += bv),
                }
            }
        }
    };
    if g.b >= threads {
        out.par_chunks_mut(out_len)
            .zip(x.par_chunks(in_len))
            .for_each_init(Scratch::take, |cols, (ob, xb)| one(xb, ob, &mut cols.0, 1));
    } else {
        let mut cols = Scratch::take();
        for (ob, xb) in out.chunks_mut(out_len).zip(x.chunks(in_len)) {
            one(xb, ob, &mut cols.0, threads)
        }
    }
    out
}

/// Weight-gradient kernel: `dW[Cout, Cin, k, k] = Σ_b grad_b × im2col(x_b)ᵀ`, followed by the
/// bias gradient `db[Cout] = Σ_{b, pixels} grad` (packed: `Cout·Cin·k²` then `Cout` values).
fn conv_wgrad(x: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
    let hw_out = g.ho * g.wo;
    let kd = g.kdim();
    let in_len = g.cin * g.h * g.w;
    let out_len = g.cout * hw_out;
    let acc_one = |acc: &mut Vec<f32>, cols: &mut Vec<f32>, b: usize, first: bool, t: usize| {
        let xb = &x[b * in_len..(b + 1) * in_len];
        let gb = &grad[b * out_len..(b + 1) * out_len];
        let rhs: &[f32] = if g.is_pointwise() {
            xb
        } else {
            cols.resize(kd * hw_out, 0.0);
            im2col(xb, g, cols);
            cols
        };
        // rhs viewed as [HW, kd]: row stride 1, column stride hw_out.
        let (dw, db) = acc.split_at_mut(g.cout * kd);
        sgemm(
            g.cout, kd, hw_out, dw, kd, !first, gb, hw_out, 1, rhs, 1, hw_out, t,
        );
        for (co, row) in gb.chunks(hw_out).enumerate() {
            let s: f32 = row.iter().sum();
            db[co] = if first { s } else { db[co] + s };
        }
    };
    let threads = rayon::current_num_threads();
    if g.b >= threads && threads > 1 {
        let chunk = g.b.div_ceil(threads);
        let parts: Vec<Vec<f32>> = (0..g.b.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut acc = vec![0f32; g.cout * (kd + 1)];
                let mut cols = Scratch::take();
                for (i, b) in (c * chunk..((c + 1) * chunk).min(g.b)).enumerate() {
                    acc_one(&mut acc, &mut cols.0, b, i == 0, 1);
                }
                acc
            })
            .collect();
        let mut it = parts.into_iter();
        let mut acc = it.next().unwrap_or_else(|| vec![0f32; g.cout * (kd + 1)]);
        for p in it {
            acc.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        acc
    } else {
        let mut acc = vec![0f32; g.cout * (kd + 1)];
        let mut cols = Scratch::take();
        for b in 0..g.b {
            acc_one(&mut acc, &mut cols.0, b, b == 0, threads);
        }
        acc
    }
}

/// `W'[ci, co, ky, kx] = W[co, ci, k−1−ky, k−1−kx]`.
fn flip_transpose(w: &[f32], cout: usize, cin: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for co in 0..cout {
        for ci in 0..cin {
            for ky in 0..k {
                for kx in 0..k {
                    out[((ci * cout + co) * k + ky) * k + kx] =
                        w[((co * cin + ci) * k + (k - 1 - ky)) * k + (k - 1 - kx)];
                }
            }
        }
    }
    out
}

/// The forward op: `conv2d(x, w)` with stride 1 and symmetric zero padding.
#[derive(Clone, Copy, Debug)]
struct FastConv2d {
    pad: usize,
}

impl CustomOp2 for FastConv2d {
    fn name(&self) -> &'static str {
        "savl-fast-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1, l2, self.pad)?;
        let x = contiguous_f32(s1, l1, CONV, "input")?;
        let w = contiguous_f32(s2, l2, CONV, "kernel")?;
        let out = conv_fwd(x, w, &g, None, None);
        Ok((CpuStorage::F32(out), Shape::from((g.b, g.cout, g.ho, g.wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = conv_backward(x, w, &grad.contiguous()?, self.pad)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// The input, weight and bias gradients of a stride-1 conv with `pad` zeros, given the gradient
/// at its (pre-activation) output: `dx` by the transposed conv (flipped kernel, `k − 1 − pad`
/// padding), `dw` and `db` from one packed weight-gradient pass.
fn conv_backward(
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    pad: usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (cout, cin, k, _) = w.dims4()?;
    if pad + 1 > k {
        // Padding ≥ k would need a cropped transposed conv; the nets never use it.
        candle_core::bail!("fast conv2d backward: padding {pad} must be < kernel {k}");
    }
    let wf = w.flatten_all()?.to_vec1::<f32>()?;
    let wt = Tensor::from_vec(
        flip_transpose(&wf, cout, cin, k),
        (cin, cout, k, k),
        w.device(),
    )?;
    let dx = grad.apply_op2_no_bwd(&wt, &FastConv2d { pad: k - 1 - pad })?;
    let packed = x.apply_op2_no_bwd(grad, &WeightGrad { pad, k })?;
    let n = cout * cin * k * k;
    let dw = packed.narrow(0, 0, n)?.reshape((cout, cin, k, k))?;
    let db = packed.narrow(0, n, cout)?;
    Ok((dx, dw, db))
}

/// `act(conv2d(x, w) + b)` with `act` = LeakyReLU(slope) or identity; one pass forward, and a
/// backward that applies the activation mask once and reuses the kernels above.
#[derive(Clone, Copy, Debug)]
struct FastConvBiasAct {
    pad: usize,
    slope: Option<f32>,
}

impl CustomOp3 for FastConvBiasAct {
    fn name(&self) -> &'static str {
        "savl-fast-conv2d-bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1, l2, self.pad)?;
        let x = contiguous_f32(s1, l1, CONV, "input")?;
        let w = contiguous_f32(s2, l2, CONV, "kernel")?;
        let b = contiguous_f32(s3, l3, CONV, "bias")?;
        if b.len() != g.cout {
            candle_core::bail!(
                "fast conv2d: bias has {} values for {} channels",
                b.len(),
                g.cout
            );
        }
        let out = conv_fwd(x, w, &g, Some(b), self.slope);
        Ok((CpuStorage::F32(out), Shape::from((g.b, g.cout, g.ho, g.wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = match self.slope {
            Some(a) => {
                res.apply_op2_no_bwd(&grad.contiguous()?, &super::act::LeakyReluGradOp::new(a))?
            }
            None => grad.contiguous()?,
        };
        let (dx, dw, db) = conv_backward(x, w, &grad, self.pad)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `leaky_relu(conv2d(x, w) + b, slope)` (`slope = None`: no activation), stride 1, `padding`
/// zeros on every side. Fused on the CPU; candle's ops elsewhere.
pub fn conv2d_bias_act(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    padding: usize,
    slope: Option<f64>,
) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && slope.is_none_or(|s| s > 0.0) {
        let op = FastConvBiasAct {
            pad: padding,
            slope: slope.map(|s| s as f32),
        };
        x.contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, op)
    } else {
        let y = x.conv2d(w, padding, 1, 1, 1)?.broadcast_add(&b.reshape((
            1,
            b.elem_count(),
            1,
            1,
        ))?)?;
        match slope {
            Some(s) => candle_nn::ops::leaky_relu(&y, s),
            None => Ok(y),
        }
    }
}

/// `dW` of [`FastConv2d`] from the input (arg 1) and the output gradient (arg 2).
#[derive(Clone, Copy, Debug)]
struct WeightGrad {
    pad: usize,
    k: usize,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "savl-fast-conv2d-wgrad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, cin, h, w) = l1.shape().dims4()?;
        let (b2, cout, ho, wo) = l2.shape().dims4()?;
        let g = Geom {
            b,
            cin,
            h,
            w,
            cout,
            k: self.k,
            pad: self.pad,
            ho,
            wo,
        };
        if b != b2 || ho + self.k != h + 2 * self.pad + 1 || wo + self.k != w + 2 * self.pad + 1 {
            candle_core::bail!(
                "fast conv2d weight grad: input {:?} and grad {:?} do not fit",
                l1.shape(),
                l2.shape()
            );
        }
        let x = contiguous_f32(s1, l1, CONV, "input")?;
        let gr = contiguous_f32(s2, l2, CONV, "grad")?;
        let n = cout * (cin * self.k * self.k + 1);
        Ok((CpuStorage::F32(conv_wgrad(x, gr, &g)), Shape::from(n)))
    }
}

/// `conv2d(x, w)` with stride 1, dilation 1, groups 1 and `padding` zeros on every side.
///
/// On the CPU with f32 this is the GEMM-based op of this module (forward and backward); anywhere
/// else it is candle's `Tensor::conv2d`.
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        x.contiguous()?
            .apply_op2(&w.contiguous()?, FastConv2d { pad: padding })
    } else {
        x.conv2d(w, padding, 1, 1, 1)
    }
}

/// candle's stock `Tensor::conv2d` (stride 1), kept for comparisons and benches.
pub fn conv2d_stock(x: &Tensor, w: &Tensor, padding: usize) -> Result<Tensor> {
    x.conv2d(w, padding, 1, 1, 1)
}

/// A conv layer: weight `[Cout, Cin, k, k]` and bias `[Cout]`, "same" padding `k / 2`.
#[derive(Clone, Debug)]
pub struct Conv {
    /// `[Cout, Cin, k, k]`.
    pub weight: Tensor,
    /// `[Cout]`.
    pub bias: Tensor,
    /// Zero padding on every side.
    pub padding: usize,
}

impl Conv {
    /// Creates (or loads) `weight` and `bias` under `vb`, initialised as candle's `conv2d`
    /// (Kaiming-normal weights, uniform bias in ±1/√fan_in).
    pub fn new(cin: usize, cout: usize, k: usize, vb: candle_nn::VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(
            (cout, cin, k, k),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        let bias = vb.get_with_hints(
            cout,
            "bias",
            candle_nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Self {
            weight,
            bias,
            padding: k / 2,
        })
    }

    /// Kernel size.
    pub fn kernel(&self) -> usize {
        self.weight.dims()[2]
    }

    /// Input channels.
    pub fn cin(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Conv {
    /// `leaky_relu(conv(x) + bias, slope)`, fused.
    pub fn forward_act(&self, x: &Tensor, slope: f64) -> Result<Tensor> {
        conv2d_bias_act(x, &self.weight, &self.bias, self.padding, Some(slope))
    }
}

impl candle_core::Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d_bias_act(x, &self.weight, &self.bias, self.padding, None)
    }
}
