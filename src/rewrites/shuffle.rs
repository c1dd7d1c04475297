//! [`fuse_pixel_shuffle`]: tract declutters ONNX `DepthToSpace` (CRD, PyTorch `pixel_shuffle`)
//! into `Reshape(1, [C·r²] → [C, r, r])`, `Move(3, 5)`, `Move(2, 3)` and
//! `Reshape(2, [H, r, W, r] → [H·r, W·r])`: two full copies of the HR output on one thread.
//! SR nets then usually add a nearest ×r upsample of the input, a third and fourth pass. This
//! rewrite replaces the chain, and the `Add(chain, NearestUpsample(base))` after it when there
//! is one, with one [`PixelShuffle`]: one pass over the output, on the pool, bit-identical.
//! `SAVL_DISABLE_SHUFFLE=1` turns it off ([`enabled_by_env`]).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::ops::nn::NearestUpsample;

use super::{env_switch_off, rewrite_until_done};
use crate::ops::PixelShuffle;

/// Whether the rewrite is on: true unless `SAVL_DISABLE_SHUFFLE` is set to anything but `0` or
/// the empty string (read at model load).
pub fn enabled_by_env() -> bool {
    env_switch_off("SAVL_DISABLE_SHUFFLE")
}

/// Replaces every depth-to-space chain (and the nearest-upsampled skip added to it) with
/// [`PixelShuffle`]; returns how many were replaced.
pub fn fuse_pixel_shuffle(model: &mut TypedModel) -> TractResult<usize> {
    rewrite_until_done(model, "pixel shuffle", fuse_one)
}

fn axis_op(model: &TypedModel, outlet: OutletId) -> Option<(&TypedNode, &AxisOp)> {
    let node = model.node(outlet.node);
    Some((node, node.op_as::<AxisOp>()?))
}

/// If `node` ends a depth-to-space chain: the chain's input `[N, C·r², H, W]` and `r`.
fn shuffle_source(model: &TypedModel, node: &TypedNode) -> Option<(OutletId, usize)> {
    let AxisOp::Reshape(2, hrwr, out) = node.op_as::<AxisOp>()? else {
        return None;
    };
    let (m23, AxisOp::Move(2, 3)) = axis_op(model, node.inputs[0])? else {
        return None;
    };
    let (m35, AxisOp::Move(3, 5)) = axis_op(model, m23.inputs[0])? else {
        return None;
    };
    let (split, AxisOp::Reshape(1, crr, c_r_r)) = axis_op(model, m35.inputs[0])? else {
        return None;
    };
    let x = split.inputs[0];
    let xf = model.outlet_fact(x).ok()?;
    if xf.datum_type != f32::datum_type() || xf.rank() != 4 || crr.len() != 1 || out.len() != 2 {
        return None;
    }
    let r = c_r_r.get(1)?.to_usize().ok()?;
    let ok = r > 1
        && c_r_r.len() == 3
        && c_r_r[2] == TDim::Val(r as i64)
        && crr[0] == xf.shape[1]
        && c_r_r[0].clone() * (r * r) == xf.shape[1]
        && hrwr.len() == 4
        && hrwr[0] == xf.shape[2]
        && hrwr[1] == TDim::Val(r as i64)
        && hrwr[2] == xf.shape[3]
        && hrwr[3] == TDim::Val(r as i64);
    ok.then_some((x, r))
}

/// If the chain's output `shuffled` only feeds `Add(shuffled, NearestUpsample×r(base))` (either
/// order) with `base` `[N, C, H, W]`: the Add node and `base`.
fn upsampled_skip(
    model: &TypedModel,
    shuffled: OutletId,
    x: OutletId,
    r: usize,
) -> Option<(usize, OutletId)> {
    let [succ] = model.outlet_successors(shuffled) else {
        return None;
    };
    let add = model.node(succ.node);
    if !add.op_as::<TypedBinOp>().is_some_and(|op| op.0.is::<Add>()) || add.inputs.len() != 2 {
        return None;
    }
    let other = add.inputs[1 - succ.slot];
    let up = model.node(other.node);
    let op = up.op_as::<NearestUpsample>()?;
    if op.scales[..] != [1, 1, r, r] {
        return None;
    }
    let base = up.inputs[0];
    let (bf, xf) = (model.outlet_fact(base).ok()?, model.outlet_fact(x).ok()?);
    let want = [
        xf.shape[0].clone(),
        xf.shape[1].clone() / (r * r) as u64,
        xf.shape[2].clone(),
        xf.shape[3].clone(),
    ];
    let fits = bf.datum_type == f32::datum_type()
        && bf.shape.to_tvec()[..] == want[..]
        && model.outlet_fact(add.id.into()).ok()?.shape == model.outlet_fact(shuffled).ok()?.shape;
    fits.then_some((add.id, base))
}

fn fuse_one(model: &TypedModel) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some((x, r)) = shuffle_source(model, node) else {
            continue;
        };
        let mut patch = TypedModelPatch::new("savl pixel shuffle");
        let mut inputs = vec![patch.tap_model(model, x)?];
        let replaced = match upsampled_skip(model, id.into(), x, r) {
            Some((add, base)) => {
                inputs.push(patch.tap_model(model, base)?);
                add
            }
            None => id,
        };
        let name = format!("{}.pixel_shuffle", model.node(replaced).name);
        let out = patch.wire_node(name, PixelShuffle { r }, &inputs)?[0];
        patch.shunt_outside(model, replaced.into(), out)?;
        return Ok(Some(patch));
    }
    Ok(None)
}
