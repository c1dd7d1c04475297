//! [`WinogradConv`]: tract op over [`crate::kernels::winograd::conv3x3`].

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::kernels::winograd::{conv3x3, WinogradWeights};

/// A 3×3 / stride 1 / pad 1 convolution over NCHW f32, by Winograd, with the bias and an
/// optional per-channel leaky activation or a SiLU folded in. Input `[N, C, H, W]`, output `[N, K, H, W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradConv {
    /// The transformed kernel.
    pub weights: Arc<WinogradWeights>,
    /// Per output channel (K entries).
    pub bias: Arc<Vec<f32>>,
    /// Per output channel: negative inputs are multiplied by it (1.0: no activation).
    pub negative_slope: Arc<Vec<f32>>,
    /// Then `v · sigmoid(v)` (SiLU) on every output, by tract's own SiLU kernel (the same values
    /// as tract's separate op), on the pool.
    pub silu: bool,
}

// No NaN is ever compared: the fields are model constants, compared only to dedup ops.
impl Eq for WinogradConv {}

impl Op for WinogradConv {
    fn name(&self) -> StaticName {
        "SavlWinogradConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "F({m}x{m},3x3) {c}->{k}{products}",
            m = self.weights.tile().m(),
            c = self.weights.c(),
            k = self.weights.k(),
            products = if self.weights.fp16_products() {
                ", fp16 products"
            } else {
                ""
            }
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
        let k = self.weights.k();
        ensure!(
            c == self.weights.c(),
            "WinogradConv: {c} input channels, the kernel wants {}",
            self.weights.c()
        );
        let x = x.try_as_plain_ram()?;
        let xs = x.as_slice::<f32>()?;
        // SAFETY: f32 has no invalid bit patterns, and `conv3x3` writes every element.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&[n, k, h, w])? };
        {
            let mut yv = y.try_as_plain_ram_mut()?;
            let ys = yv.as_slice_mut::<f32>()?;
            let executor = tract_linalg::multithread::current_tract_executor();
            let silu = if self.silu {
                Some(tract_linalg::routines::Func::Silu.ew_f32()?)
            } else {
                None
            };
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
                    silu.as_deref(),
                )?;
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
        ensure!(x.shape[1] == TDim::Val(self.weights.c() as i64));
        let mut shape: TVec<TDim> = x.shape.iter().cloned().collect();
        shape[1] = TDim::Val(self.weights.k() as i64);
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let s = &inputs[0].shape;
        let (m, a) = (self.weights.tile().m(), self.weights.tile().alpha());
        let pixels = s[0].clone() * s[2].clone() * s[3].clone();
        let macs = pixels * (a * a * self.weights.k() * self.weights.c()) / (m * m);
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs)))
    }

    as_op!();
}
