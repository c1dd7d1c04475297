//! [`PixelShuffle`]: tract op over [`crate::kernels::shuffle::pixel_shuffle`].

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::kernels::shuffle::{pixel_shuffle, Shuffle};

/// Depth to space by `r` (PyTorch `pixel_shuffle` order) of an NCHW f32 tensor
/// `[N, C·r², H, W]` into `[N, C, H·r, W·r]`; with a second input `base` `[N, C, H, W]`, plus
/// the nearest ×r upsample of `base`, in the same pass.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct PixelShuffle {
    /// The upscale factor.
    pub r: usize,
}

impl Op for PixelShuffle {
    fn name(&self) -> StaticName {
        "SavlPixelShuffle".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("×{}", self.r)])
    }

    op_as_typed_op!();
}

impl PixelShuffle {
    /// The output shape for input shape `x` and, when there is one, base shape `base`.
    fn output_shape<D: DimLike>(&self, x: &[D], base: Option<&[D]>) -> TractResult<TVec<D>> {
        ensure!(x.len() == 4, "PixelShuffle: input must be NCHW");
        let rr = D::from(self.r * self.r);
        let c = x[1].clone() / (self.r * self.r);
        ensure!(
            c.clone() * rr == x[1],
            "PixelShuffle: channels not a multiple of r²"
        );
        let shape: TVec<D> = tvec![
            x[0].clone(),
            c.clone(),
            x[2].clone() * self.r,
            x[3].clone() * self.r
        ];
        if let Some(b) = base {
            ensure!(
                b == [x[0].clone(), c, x[2].clone(), x[3].clone()],
                "PixelShuffle: base shape does not match the input"
            );
        }
        Ok(shape)
    }
}

impl TypedOp for PixelShuffle {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(matches!(inputs.len(), 1 | 2));
        ensure!(inputs.iter().all(|f| f.datum_type == f32::datum_type()));
        let base = inputs.get(1).map(|b| &*b.shape);
        Ok(tvec!(f32::fact(self.output_shape(&inputs[0].shape, base)?)))
    }

    as_op!();
}

impl EvalOp for PixelShuffle {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            matches!(inputs.len(), 1 | 2),
            "PixelShuffle takes 1 or 2 inputs"
        );
        let x = &inputs[0];
        let shape = self.output_shape(x.shape(), inputs.get(1).map(|b| b.shape()))?;
        let g = Shuffle {
            planes: shape[0] * shape[1],
            r: self.r,
            h: x.shape()[2],
            w: x.shape()[3],
        };
        let xv = x.try_as_plain_ram()?;
        let bv = inputs.get(1).map(|b| b.try_as_plain_ram()).transpose()?;
        let base = bv.as_ref().map(|b| b.as_slice::<f32>()).transpose()?;
        // SAFETY: f32 has no invalid bit patterns, and `pixel_shuffle` writes every element.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        {
            let mut yv = y.try_as_plain_ram_mut()?;
            let executor = tract_linalg::multithread::current_tract_executor();
            pixel_shuffle(
                xv.as_slice::<f32>()?,
                base,
                yv.as_slice_mut::<f32>()?,
                g,
                &executor,
            )?;
        }
        Ok(tvec!(y.into_tvalue()))
    }
}
