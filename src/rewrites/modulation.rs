//! [`fuse_modulation`]: SAVL gates are `sigmoid(conv1x1([μ ‖ s]))`, split per block, and
//! multiplied into the body features after every 2nd conv. Unfused, tract runs that as a full
//! Sigmoid pass over the gate tensor, a Slice copy per block, and a same-shape Mul pass (which
//! tract does not fuse into the matmul). This rewrite turns `Mul(x, [Slice…](Sigmoid(g)))` into
//! `SigmoidMul(x, [Slice…](g))`, which computes the sigmoid of a cache-sized chunk of `g` and
//! multiplies it into `x` in place: one pass, no intermediate gate tensor.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::Slice;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::math::Mul;
use tract_onnx::tract_core::ops::nn::Sigmoid;

use super::rewrite_until_done;
use crate::ops::SigmoidMul;

fn is_sigmoid(node: &TypedNode) -> bool {
    node.op_as::<ElementWiseOp>()
        .is_some_and(|op| op.0.is::<Sigmoid>())
}

fn is_mul(node: &TypedNode) -> bool {
    node.op_as::<TypedBinOp>()
        .is_some_and(|op| op.0.is::<Mul>())
}

/// For a Mul input, the Slice chain back to a Sigmoid: `(sigmoid input, slices in order)`.
fn gate_source(model: &TypedModel, outlet: OutletId) -> Option<(OutletId, Vec<Slice>)> {
    let mut slices = vec![];
    let mut cur = outlet;
    for _ in 0..8 {
        let node = model.node(cur.node);
        if is_sigmoid(node) {
            slices.reverse();
            return Some((node.inputs[0], slices));
        }
        let slice = node.op_as::<Slice>()?;
        slices.push(slice.clone());
        cur = node.inputs[0];
    }
    None
}

/// One rewrite, if any `Mul(x, Slice*(Sigmoid(g)))` is left.
fn fuse_one(model: &TypedModel) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        if !is_mul(node) || node.inputs.len() != 2 {
            continue;
        }
        let facts = model.node_input_facts(id)?;
        if facts[0].datum_type != f32::datum_type()
            || facts[1].datum_type != f32::datum_type()
            || facts[0].shape != facts[1].shape
        {
            continue;
        }
        for gate_ix in [1usize, 0] {
            let Some((g, slices)) = gate_source(model, node.inputs[gate_ix]) else {
                continue;
            };
            let x = node.inputs[1 - gate_ix];
            let mut patch = TypedModelPatch::new("savl fused modulation");
            let mut gw = patch.tap_model(model, g)?;
            for (k, s) in slices.into_iter().enumerate() {
                gw = patch.wire_node(format!("{}.gate_slice{k}", node.name), s, &[gw])?[0];
            }
            let xw = patch.tap_model(model, x)?;
            // The rewired gate must still match x (it does unless a Slice was not a pure split).
            let gf = patch.outlet_fact(gw)?;
            if gf.shape != facts[1 - gate_ix].shape {
                continue;
            }
            let out =
                patch.wire_node(format!("{}.sigmoid_mul", node.name), SigmoidMul, &[xw, gw])?[0];
            patch.shunt_outside(model, id.into(), out)?;
            return Ok(Some(patch));
        }
    }
    Ok(None)
}

/// Rewrite every `Mul(x, Sigmoid(g))` (the Sigmoid possibly followed by Slices, as when one
/// gate tensor is split per block) into one fused [`SigmoidMul`]; returns how many were fused.
/// Leaves the model unchanged where the pattern does not match exactly (other dtypes,
/// broadcasting muls).
pub fn fuse_modulation(model: &mut TypedModel) -> TractResult<usize> {
    rewrite_until_done(model, "fused-modulation", fuse_one)
}
