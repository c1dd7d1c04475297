//! [`Elementwise`]: tract op over [`crate::kernels::elementwise::run`].

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::kernels::elementwise::{run, run_in_place, Program, Step, Unary};

/// A chain of element-wise ops ([`Program`]) over same-shape f32 tensors, in one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Elementwise {
    /// What to compute from the inputs.
    pub program: Program,
}

// No NaN is ever compared: the constants come from the model, compared only to dedup ops.
impl Eq for Elementwise {}

impl Op for Elementwise {
    fn name(&self) -> StaticName {
        "SavlElementwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}", self.program.steps)])
    }

    op_as_typed_op!();
}

impl TypedOp for Elementwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.program.validate()?;
        ensure!(inputs.len() == self.program.inputs);
        ensure!(inputs.iter().all(|f| f.datum_type == f32::datum_type()));
        ensure!(inputs.iter().all(|f| f.shape == inputs[0].shape));
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let per_element: usize = self
            .program
            .steps
            .iter()
            .map(|s| match s {
                Step::Unary(Unary::Sigmoid, _) => 13,
                _ => 1,
            })
            .sum();
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            inputs[0].shape.volume() * per_element
        )))
    }

    as_op!();
}

impl EvalOp for Elementwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == self.program.inputs,
            "Elementwise takes {} inputs",
            self.program.inputs
        );
        let shape: TVec<usize> = inputs[0].shape().into();
        ensure!(
            inputs.iter().all(|x| x.shape() == &*shape),
            "Elementwise: input shapes differ"
        );
        // Over an input no other op reads (tract has dropped its own reference), else into a
        // new tensor.
        let io = inputs.iter().position(|x| x.is_exclusive());
        let mut inputs: Vec<Option<TValue>> = inputs.into_iter().map(Some).collect();
        let mut y = match io.and_then(|k| inputs[k].take()) {
            Some(x) => x.into_tensor(),
            // SAFETY: f32 has no invalid bit patterns, and `run` writes every element.
            None => unsafe { Tensor::uninitialized::<f32>(&shape)? },
        };
        let plains = inputs
            .iter()
            .map(|x| x.as_ref().map(|x| x.try_as_plain_ram()).transpose())
            .collect::<TractResult<Vec<_>>>()?;
        let slices = plains
            .iter()
            .map(|x| x.as_ref().map_or(Ok(&[][..]), |x| x.as_slice::<f32>()))
            .collect::<TractResult<Vec<_>>>()?;
        {
            let mut yv = y.try_as_plain_ram_mut()?;
            let ys = yv.as_slice_mut::<f32>()?;
            let executor = tract_linalg::multithread::current_tract_executor();
            match io {
                Some(k) => run_in_place(&self.program, &slices, k, ys, &executor)?,
                None => run(&self.program, &slices, ys, &executor)?,
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}
