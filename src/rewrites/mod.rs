//! Load-time graph rewrites: each finds a pattern in tract's decluttered typed model and
//! replaces it with one of savl's ops ([`crate::ops`]), leaving everything that does not match
//! exactly to tract. [`strength`] rewrites the ONNX protobuf instead, before tract sees it.
//!
//! | rewrite | replaces | with | off switch (read at load) |
//! |---|---|---|---|
//! | [`winograd::rewrite_convs`] | 3×3 / stride 1 / pad 1 f32 `Conv` (+ LeakyRelu / PReLU) | `WinogradConv` | `SAVL_DISABLE_WINOGRAD=1` |
//! | [`pointwise::rewrite_pointwise`] | `Add(Σ EinSum(xᵢ, Wᵢ), bias)` 1×1 convs | `PointwiseConv` | `SAVL_DISABLE_POINTWISE=1` |
//! | [`modulation::fuse_modulation`] | `Mul(x, Slice*(Sigmoid(g)))` | `SigmoidMul` | the builder's `fused_modulation(false)` |
//! | [`shuffle::fuse_pixel_shuffle`] | depth-to-space (CRD) [+ `NearestUpsample` skip] | `PixelShuffle` | `SAVL_DISABLE_SHUFFLE=1` |
//! | [`elementwise::fuse_elementwise`] | trees of Sigmoid / LeakyRelu / Add / Sub / Mul / Max / Min | `Elementwise` | `SAVL_DISABLE_ELEMENTWISE=1` |

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

pub mod elementwise;
pub mod modulation;
pub mod pointwise;
pub mod shuffle;
pub mod strength;
pub mod winograd;

/// Applies the patch `one` finds until it finds none; returns how many were applied. After the
/// first, the model is decluttered once more, which drops the nodes the patches left unused.
/// `what` names the rewrite in the error when it does not converge.
pub(crate) fn rewrite_until_done(
    model: &mut TypedModel,
    what: &str,
    mut one: impl FnMut(&TypedModel) -> TractResult<Option<TypedModelPatch>>,
) -> TractResult<usize> {
    let mut n = 0;
    while let Some(patch) = one(model)? {
        patch.apply(model)?;
        n += 1;
        ensure!(n < 10_000, "{what} rewrite does not converge");
    }
    if n > 0 {
        *model = std::mem::take(model).into_decluttered()?;
    }
    Ok(n)
}

/// The constant behind `outlet` with its shape, if it is an f32 constant.
pub(crate) fn const_f32(model: &TypedModel, outlet: OutletId) -> Option<(Vec<usize>, Vec<f32>)> {
    let k = model.outlet_fact(outlet).ok()?.konst.clone()?;
    if k.datum_type() != f32::datum_type() {
        return None;
    }
    let shape = k.shape().to_vec();
    let k = k.try_as_plain_ram().ok()?;
    Some((shape, k.as_slice::<f32>().ok()?.to_vec()))
}

/// Whether an environment switch is unset, empty or `0`.
fn env_switch_off(name: &str) -> bool {
    std::env::var_os(name).is_none_or(|v| v.is_empty() || v == "0")
}
