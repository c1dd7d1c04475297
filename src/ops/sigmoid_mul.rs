//! [`SigmoidMul`]: tract op over [`crate::kernels::sigmoid_mul::sigmoid_mul`].

use tract_linalg::routines::Func;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::kernels::sigmoid_mul::{sigmoid_mul, sigmoid_mul_into};

/// `x · sigmoid(g)` for same-shape f32 tensors, in one pass.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct SigmoidMul;

impl Op for SigmoidMul {
    fn name(&self) -> StaticName {
        "SavlSigmoidMul".into()
    }
    op_as_typed_op!();
}

impl EvalOp for SigmoidMul {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let [x, g]: [TValue; 2] = inputs
            .into_vec()
            .try_into()
            .map_err(|_| format_err!("SigmoidMul takes 2 inputs"))?;
        ensure!(x.shape() == g.shape(), "SigmoidMul: shapes differ");
        let sig = Func::Sigmoid.ew_f32()?;
        let executor = tract_linalg::multithread::current_tract_executor();
        let g = g.try_as_plain_ram()?;
        let g = g.as_slice::<f32>()?;
        // In place when no other op reads the feature map, else into a new tensor (no copy first).
        let y = if x.is_exclusive() {
            let mut x = x.into_tensor();
            {
                let mut xv = x.try_as_plain_ram_mut()?;
                sigmoid_mul(xv.as_slice_mut::<f32>()?, g, &*sig, &executor)?;
            }
            x
        } else {
            // SAFETY: `sigmoid_mul_into` writes every element before anything reads it.
            let mut y = unsafe { Tensor::uninitialized::<f32>(x.shape())? };
            {
                let xv = x.try_as_plain_ram()?;
                let mut yv = y.try_as_plain_ram_mut()?;
                let ys = yv.as_slice_mut::<f32>()?;
                sigmoid_mul_into(ys, Some(xv.as_slice::<f32>()?), g, &*sig, &executor)?;
            }
            y
        };
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for SigmoidMul {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 2);
        ensure!(inputs[0].datum_type == f32::datum_type());
        ensure!(inputs[1].datum_type == f32::datum_type());
        ensure!(inputs[0].shape == inputs[1].shape);
        Ok(tvec!(inputs[0].datum_type.fact(inputs[0].shape.clone())))
    }

    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let n = inputs[0].shape.volume();
        Ok(tvec!((Cost::FMA(f32::datum_type()), n * 13)))
    }

    as_op!();
}
