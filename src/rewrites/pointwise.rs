//! [`rewrite_pointwise`]: SAVL's gates are `conv1x1(concat(μ [16 ch], s [1 ch]))`, 48 output
//! channels per block. tract declutters the concat away and runs each gate as two EinSums
//! (`NIHW,OI->NOHW` on μ and the rank-1 `NIHW,O->NOHW` on s), an Add of the two and an Add of
//! the bias: full passes over a `[48, H, W]` tensor each, and little arithmetic per byte moved.
//! This rewrite replaces `Add(Σ EinSum(xᵢ, Wᵢ), bias)` where every EinSum is a 1×1 conv in that
//! form (f32, constant weight `[K, Cᵢ]`, or `[K]` when `Cᵢ = 1`), the terms are summed by plain
//! same-shape Adds, and the bias is a constant `[1, K, 1, 1]` (or any shape with K values along
//! the channel axis and 1 elsewhere) with one [`PointwiseConv`]; nothing else is touched. Only
//! the final Add is rewired: a term that also feeds something else keeps its EinSum.
//! `SAVL_DISABLE_POINTWISE=1` turns the rewrite off ([`enabled_by_env`]).
//!
//! Accuracy: the same products as tract's, summed in another order: on the shipped model `sr`
//! stays within 2.5e-6 of the unrewritten model and `mu`, `severity` came out identical
//! (`tests/pointwise.rs`).

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;

use super::{const_f32, env_switch_off, rewrite_until_done};
use crate::ops::PointwiseConv;

/// Whether the rewrite is on: true unless `SAVL_DISABLE_POINTWISE` is set to anything but `0`
/// or the empty string (read at model load).
pub fn enabled_by_env() -> bool {
    env_switch_off("SAVL_DISABLE_POINTWISE")
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
