//! [`PointwiseConv`]: tract op over [`crate::kernels::pointwise::pointwise`].

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::kernels::pointwise::pointwise;

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

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "SavlPointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("1x1 {:?}->{}", self.cs, self.k)])
    }

    op_as_typed_op!();
}

// No NaN is ever compared: the fields are model constants, compared only to dedup ops.
impl Eq for PointwiseConv {}

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
