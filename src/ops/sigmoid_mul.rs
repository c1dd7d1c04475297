//! [`SigmoidMul`]: tract op over [`crate::kernels::elementwise`]'s gate program.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::kernels::elementwise::{run, run_in_place, Program};

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
        let executor = tract_linalg::multithread::current_tract_executor();
        let gate = Program::gate();
        let g = g.try_as_plain_ram()?;
        let g = g.as_slice::<f32>()?;
        // In place when no other op reads the feature map, else into a new tensor (no copy first).
        let y = if x.is_exclusive() {
            let mut x = x.into_tensor();
            {
                let mut xv = x.try_as_plain_ram_mut()?;
                run_in_place(&gate, &[&[], g], 0, xv.as_slice_mut::<f32>()?, &executor)?;
            }
            x
        } else {
            // SAFETY: `run` writes every element before anything reads it.
            let mut y = unsafe { Tensor::uninitialized::<f32>(x.shape())? };
            {
                let xv = x.try_as_plain_ram()?;
                let mut yv = y.try_as_plain_ram_mut()?;
                run(
                    &gate,
                    &[xv.as_slice::<f32>()?, g],
                    yv.as_slice_mut::<f32>()?,
                    &executor,
                )?;
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
