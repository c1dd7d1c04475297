//! Pointwise (1×1) convolutions over one or more concatenated NCHW inputs, as one typed tract
//! op inserted at load time.
//!
//! SAVL's gates are `conv1x1(concat(μ [16 ch], s [1 ch]))`, 48 output channels per block. tract
//! declutters the concat away and runs each gate as two EinSums (`NIHW,OI->NOHW` on μ and the
//! rank-1 `NIHW,O->NOHW` on s), an Add of the two and an Add of the bias: full passes over a
//! `[48, H, W]` tensor each, and little arithmetic per byte moved. [`PointwiseConv`] computes
//! `y = W · [x₁ ‖ x₂ ‖ …] + b` instead: for each block of pixels the inputs' channel planes are
//! gathered into one contiguous `ΣC × pixels` matrix and multiplied by `W` (`K × ΣC`, the
//! `gemm` crate) straight into the output rows, which were filled with the bias first. Blocks
//! run on tract's thread pool when the plan has one.
//!
//! [`rewrite_pointwise`] replaces `Add(Σ EinSum(xᵢ, Wᵢ), bias)` where every EinSum is a 1×1
//! conv in that form (f32, constant weight `[K, Cᵢ]`, or `[K]` when `Cᵢ = 1`), the terms are
//! summed by plain same-shape Adds, and the bias is a constant `[1, K, 1, 1]` (or any shape
//! with K values along the channel axis and 1 elsewhere); nothing else is touched. Only the
//! final Add is rewired: a term that also feeds something else keeps its EinSum. At model load,
//! `SAVL_DISABLE_POINTWISE=1` turns the rewrite off ([`enabled_by_env`]).
//!
//! Accuracy: the same products as tract's, summed in another order: on the shipped model `sr`
//! stays within 2.5e-6 of the unrewritten model and `mu`, `severity` came out identical
//! (`tests/pointwise.rs`).

use std::sync::Arc;

use tract_linalg::multithread::Executor;

use crate::graph_ops::{for_each_block, rewrite_until_done, OutPtr};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;

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

/// A 1×1 convolution over the channel-wise concatenation of its NCHW f32 inputs (same N, H, W),
/// with a bias: inputs `[N, Cᵢ, H, W]`, output `[N, K, H, W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PointwiseConv {
    /// Output channels K.
    pub k: usize,
    /// Channels of each input, in order.
    pub cs: Vec<usize>,
    /// `[K, ΣCᵢ]` row-major, columns in input order.
    pub weight: Arc<Vec<f32>>,
    /// K entries.
    pub bias: Arc<Vec<f32>>,
}

// No NaN is ever compared: the fields are model constants, compared only to dedup ops.
impl Eq for PointwiseConv {}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "SavlPointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("1x1 {:?}->{}", self.cs, self.k)])
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == self.cs.len(),
            "PointwiseConv takes {} inputs",
            self.cs.len()
        );
        let shape = inputs[0].shape();
        ensure!(shape.len() == 4, "PointwiseConv: inputs must be NCHW");
        let (n, h, w) = (shape[0], shape[2], shape[3]);
        for (x, &c) in inputs.iter().zip(&self.cs) {
            ensure!(
                x.shape() == [n, c, h, w],
                "PointwiseConv: input shape {:?}, wants [{n}, {c}, {h}, {w}]",
                x.shape()
            );
        }
        let pixels = h * w;
        let plains = inputs
            .iter()
            .map(|x| x.try_as_plain_ram())
            .collect::<TractResult<Vec<_>>>()?;
        let slices = plains
            .iter()
            .map(|x| x.as_slice::<f32>())
            .collect::<TractResult<Vec<_>>>()?;
        // SAFETY: f32 has no invalid bit patterns, and `pointwise` writes every element.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&[n, self.k, h, w])? };
        {
            let mut yv = y.try_as_plain_ram_mut()?;
            let ys = yv.as_slice_mut::<f32>()?;
            let executor = tract_linalg::multithread::current_tract_executor();
            for (b, yb) in ys.chunks_exact_mut(self.k * pixels.max(1)).enumerate() {
                let xs: Vec<&[f32]> = slices
                    .iter()
                    .zip(&self.cs)
                    .map(|(s, &c)| &s[b * c * pixels..][..c * pixels])
                    .collect();
                pointwise(
                    &self.weight,
                    &self.bias,
                    self.k,
                    &self.cs,
                    &xs,
                    pixels,
                    yb,
                    &executor,
                );
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == self.cs.len());
        let x = inputs[0];
        for (f, &c) in inputs.iter().zip(&self.cs) {
            ensure!(f.datum_type == f32::datum_type());
            ensure!(f.rank() == 4);
            ensure!(f.shape[1] == TDim::Val(c as i64));
            ensure!(f.shape[0] == x.shape[0] && f.shape[2] == x.shape[2]);
            ensure!(f.shape[3] == x.shape[3]);
        }
        let mut shape: TVec<TDim> = x.shape.iter().cloned().collect();
        shape[1] = TDim::Val(self.k as i64);
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let s = &inputs[0].shape;
        let pixels = s[0].clone() * s[2].clone() * s[3].clone();
        let c: usize = self.cs.iter().sum();
        Ok(tvec!((Cost::FMA(f32::datum_type()), pixels * (self.k * c))))
    }

    as_op!();
}

/// Whether the rewrite is on: true unless `SAVL_DISABLE_POINTWISE` is set to anything but `0`
/// or the empty string (read at model load).
pub fn enabled_by_env() -> bool {
    std::env::var_os("SAVL_DISABLE_POINTWISE").is_none_or(|v| v.is_empty() || v == "0")
}

fn is_add(node: &TypedNode) -> bool {
    node.op_as::<TypedBinOp>()
        .is_some_and(|op| op.0.is::<Add>())
}

/// One term `W · x` of a 1×1 conv: the input, its channel count and `W` as `[K, C]`.
struct Term {
    x: OutletId,
    c: usize,
    weight: Vec<f32>,
}

/// The constant behind `outlet` as f32 values with its shape, if it is an f32 constant.
fn const_f32(model: &TypedModel, outlet: OutletId) -> Option<(Vec<usize>, Vec<f32>)> {
    let k = model.outlet_fact(outlet).ok()?.konst.clone()?;
    if k.datum_type() != f32::datum_type() {
        return None;
    }
    let shape = k.shape().to_vec();
    let k = k.try_as_plain_ram().ok()?;
    Some((shape, k.as_slice::<f32>().ok()?.to_vec()))
}

/// `node` as a 1×1 conv term with `k` output channels: an f32 EinSum `NIHW,OI->NOHW` with a
/// constant `[K, C]` weight, or `NIHW,O->NOHW` with a constant `[K]` weight and C = 1.
fn einsum_term(model: &TypedModel, node: &TypedNode, k: usize) -> Option<Term> {
    let op = node.op_as::<EinSum>()?;
    let f32t = f32::datum_type();
    if op.q_params.is_some() || op.operating_dt != f32t || node.inputs.len() != 2 {
        return None;
    }
    let [x, wo] = [node.inputs[0], node.inputs[1]];
    let xf = model.outlet_fact(x).ok()?;
    if xf.datum_type != f32t || xf.rank() != 4 || xf.konst.is_some() {
        return None;
    }
    let c = xf.shape[1].to_usize().ok()?;
    let (wshape, weight) = const_f32(model, wo)?;
    // Every axis as (positions in x, in the weight, in the output).
    let mut axes: Vec<(Vec<usize>, Vec<usize>, Vec<usize>)> = op
        .axes
        .iter_all_axes()
        .map(|a| {
            (
                a.inputs[0].to_vec(),
                a.inputs[1].to_vec(),
                a.outputs[0].to_vec(),
            )
        })
        .collect();
    axes.sort();
    let ax = |x: &[usize], w: &[usize], o: &[usize]| (x.to_vec(), w.to_vec(), o.to_vec());
    let mut want = vec![
        ax(&[0], &[], &[0]), // N
        ax(&[2], &[], &[2]), // H
        ax(&[3], &[], &[3]), // W
    ];
    if wshape == [k, c] {
        want.extend([ax(&[1], &[1], &[]), ax(&[], &[0], &[1])]); // I summed, O
    } else if wshape == [k] && c == 1 {
        want.extend([ax(&[1], &[], &[]), ax(&[], &[0], &[1])]); // I (size 1) summed, O
    } else {
        return None;
    }
    want.sort();
    (axes == want).then_some(Term { x, c, weight })
}

/// The terms of `outlet` as a sum of 1×1 conv EinSums joined by same-shape Adds.
fn sum_terms(model: &TypedModel, outlet: OutletId, k: usize, depth: usize) -> Option<Vec<Term>> {
    let node = model.node(outlet.node);
    if let Some(t) = einsum_term(model, node, k) {
        return Some(vec![t]);
    }
    if depth == 0 || !is_add(node) || node.inputs.len() != 2 {
        return None;
    }
    let shape = &model.outlet_fact(outlet).ok()?.shape;
    let mut terms = vec![];
    for &i in &node.inputs {
        if &model.outlet_fact(i).ok()?.shape != shape {
            return None;
        }
        terms.extend(sum_terms(model, i, k, depth - 1)?);
    }
    Some(terms)
}

/// The op and its inputs for `node` if it is `Add(Σ 1×1 conv terms, per-channel bias)`.
fn pointwise_for(model: &TypedModel, node: &TypedNode) -> Option<(PointwiseConv, Vec<OutletId>)> {
    if !is_add(node) || node.inputs.len() != 2 {
        return None;
    }
    let out = model.outlet_fact(node.id.into()).ok()?;
    if out.datum_type != f32::datum_type() || out.rank() != 4 {
        return None;
    }
    let k = out.shape[1].to_usize().ok().filter(|&k| k > 0)?;
    for bias_ix in [1usize, 0] {
        let Some((bshape, bias)) = const_f32(model, node.inputs[bias_ix]) else {
            continue;
        };
        // K values along the channel axis of an NCHW tensor, every other dim 1.
        let r = bshape.len();
        let per_channel = bias.len() == k
            && r >= 3
            && bshape[r - 3] == k
            && bshape[r - 2..] == [1, 1]
            && bshape[..r - 3].iter().all(|&d| d == 1)
            && r <= 4;
        if !per_channel {
            continue;
        }
        let sum = node.inputs[1 - bias_ix];
        if model.outlet_fact(sum).ok()?.shape != out.shape {
            continue;
        }
        let terms = sum_terms(model, sum, k, 8)?;
        let x0 = &model.outlet_fact(terms[0].x).ok()?.shape;
        let mut c_total = 0;
        for t in &terms {
            let s = &model.outlet_fact(t.x).ok()?.shape;
            if s[0] != x0[0] || s[2] != x0[2] || s[3] != x0[3] || s[0] != out.shape[0] {
                return None;
            }
            if s[2] != out.shape[2] || s[3] != out.shape[3] {
                return None;
            }
            c_total += t.c;
        }
        // [K, ΣC]: each term's columns side by side.
        let mut weight = vec![0f32; k * c_total];
        let mut col = 0;
        for t in &terms {
            for ko in 0..k {
                weight[ko * c_total + col..][..t.c].copy_from_slice(&t.weight[ko * t.c..][..t.c]);
            }
            col += t.c;
        }
        let op = PointwiseConv {
            k,
            cs: terms.iter().map(|t| t.c).collect(),
            weight: Arc::new(weight),
            bias: Arc::new(bias),
        };
        return Some((op, terms.iter().map(|t| t.x).collect()));
    }
    None
}

/// One rewrite, if any fitting Add is left.
fn rewrite_one(model: &TypedModel) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some((op, xs)) = pointwise_for(model, node) else {
            continue;
        };
        let mut patch = TypedModelPatch::new("savl pointwise conv");
        let taps = xs
            .iter()
            .map(|&x| patch.tap_model(model, x))
            .collect::<TractResult<Vec<_>>>()?;
        let y = patch.wire_node(format!("{}.pointwise", node.name), op, &taps)?[0];
        patch.shunt_outside(model, id.into(), y)?;
        return Ok(Some(patch));
    }
    Ok(None)
}

/// Replace every `Add(Σ EinSum 1×1 conv terms, bias)` (see the module doc) with one
/// [`PointwiseConv`]; returns how many were replaced. Anything else is left unchanged.
pub fn rewrite_pointwise(model: &mut TypedModel) -> TractResult<usize> {
    rewrite_until_done(model, "pointwise", rewrite_one)
}
