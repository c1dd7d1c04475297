//! [`rewrite_convs`]: tract's `Conv` nodes that fit (f32, NCHW, OIHW, group 1, 3×3, stride 1,
//! dilation 1, pad 1 on every side, constant kernel and bias) become [`WinogradConv`],
//! absorbing a LeakyRelu, an expanded PReLU or a SiLU right after it; every other conv is left to
//! tract. `SAVL_DISABLE_WINOGRAD=1` turns the rewrite off ([`enabled_by_env`]) and
//! `SAVL_WINOGRAD_TILE=2` picks F(2×2) instead of F(4×4) ([`tile_from_env`]).
//! [`rewrite_convs_fp16`] makes the same ops with their products in fp16 (precision f16 on CPUs
//! with native fp16 arithmetic, [`crate::CpuCaps::fp16_winograd`]), `SAVL_FP16_CHUNK` input
//! channels per fp16 sum ([`fp16_chunk_from_env`]).
//!
//! On the shipped model's outputs F(4×4) stays within 4e-5 of tract's own convs
//! (`tests/winograd.rs`).

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::logic::{CompGT, Iff};
use tract_onnx::tract_core::ops::math::Mul;
use tract_onnx::tract_core::ops::nn::{DataFormat, LeakyRelu, Silu};

use super::{const_f32, env_switch_off, rewrite_until_done};
use crate::kernels::winograd::{WinogradTile, WinogradWeights};
use crate::ops::WinogradConv;

/// `0` or the empty string (read at model load).
pub fn enabled_by_env() -> bool {
    env_switch_off("SAVL_DISABLE_WINOGRAD")
}

/// The tile to use: F(4×4) unless `SAVL_WINOGRAD_TILE=2` (read at model load; for benches).
pub fn tile_from_env() -> WinogradTile {
    match std::env::var("SAVL_WINOGRAD_TILE").as_deref() {
        Ok("2") => WinogradTile::F2,
        _ => WinogradTile::F4,
    }
}

/// Input channels per fp16 sum of [`rewrite_convs_fp16`]:
/// [`crate::kernels::winograd::FP16_CHUNK`] unless `SAVL_FP16_CHUNK` is a positive integer (read
/// at model load; for measurements).
pub fn fp16_chunk_from_env() -> usize {
    std::env::var("SAVL_FP16_CHUNK")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(crate::kernels::winograd::FP16_CHUNK)
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
    fp16: bool,
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
    let weights = WinogradWeights::new(tile, kernel, k, c);
    let weights = if fp16 {
        weights.with_fp16_products(fp16_chunk_from_env())
    } else {
        weights
    };
    Ok(Some(WinogradConv {
        weights: Arc::new(weights),
        bias: Arc::new(bias),
        negative_slope: Arc::new(vec![1.0; k]),
        silu: false,
    }))
}

/// The leaky-ReLU slope of `node`, if it is an f32 LeakyRelu.
fn leaky_slope(node: &TypedNode) -> Option<f32> {
    node.op_as::<ElementWiseOp>()
        .and_then(|op| op.0.downcast_ref::<LeakyRelu>())
        .map(|l| l.alpha)
}

/// Whether `node` is tract's SiLU (`x · sigmoid(x)`, which its declutter finds in ONNX graphs).
fn is_silu(node: &TypedNode) -> bool {
    node.op_as::<ElementWiseOp>()
        .is_some_and(|op| op.0.is::<Silu>())
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
    let zero = |o: OutletId| const_f32(model, o).is_some_and(|(_, v)| v.iter().all(|&z| z == 0.0));
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
    let (_, slope) = const_f32(model, slope_outlet)?;
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
fn rewrite_one(
    model: &TypedModel,
    tile: WinogradTile,
    fp16: bool,
) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(mut op) = winograd_for(model, node, tile, fp16)? else {
            continue;
        };
        // Fold a LeakyRelu that is the conv's only consumer (tract fuses it into its matmul).
        let mut replaced: OutletId = id.into();
        let succ = &node.outputs[0].successors;
        if !model.output_outlets()?.contains(&replaced) {
            if succ.len() == 1 {
                let next = model.node(succ[0].node);
                if let Some(alpha) = leaky_slope(next) {
                    op.negative_slope = Arc::new(vec![alpha; op.weights.k()]);
                    replaced = next.id.into();
                } else if is_silu(next) {
                    op.silu = true;
                    replaced = next.id.into();
                }
            } else if let Some((slopes, iff)) = prelu_after(model, replaced, op.weights.k()) {
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
    rewrite_until_done(model, "winograd", |m| rewrite_one(m, tile, false))
}

/// [`rewrite_convs`] with the products of every rewritten conv in fp16
/// ([`WinogradWeights::with_fp16_products`]); activations between the ops stay f32.
pub fn rewrite_convs_fp16(model: &mut TypedModel, tile: WinogradTile) -> TractResult<usize> {
    rewrite_until_done(model, "winograd fp16", |m| rewrite_one(m, tile, true))
}
