//! LeakyReLU as one fused op with its own backward.
//!
//! `candle_nn::ops::leaky_relu` composes five elementwise ops (zeros, max, min, mul, add) and
//! their backwards; this is one pass forward and one pass backward.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

use super::conv::contiguous_f32;

#[derive(Clone, Copy, Debug)]
struct LeakyRelu {
    slope: f32,
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "savl-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = self.slope;
        // One pass from the input to a new buffer (no copy first).
        let v = contiguous_f32(s, l, "leaky_relu", "input")?
            .iter()
            .map(|&x| if x < 0.0 { x * a } else { x })
            .collect();
        Ok((CpuStorage::F32(v), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The sign of the output equals the sign of the input for slope > 0.
        Ok(Some(res.apply_op2_no_bwd(
            &grad.contiguous()?,
            &LeakyReluGradOp::new(self.slope),
        )?))
    }
}

/// `grad · (y < 0 ? slope : 1)` from the activation output `y` (arg 1) and `grad` (arg 2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeakyReluGradOp {
    slope: f32,
}

impl LeakyReluGradOp {
    pub(crate) fn new(slope: f32) -> Self {
        Self { slope }
    }
}

impl candle_core::CustomOp2 for LeakyReluGradOp {
    fn name(&self) -> &'static str {
        "savl-leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, "leaky_relu", "output")?;
        let g = contiguous_f32(s2, l2, "leaky_relu", "gradient")?;
        if y.len() != g.len() {
            candle_core::bail!(
                "leaky_relu grad: shapes {:?} and {:?} differ",
                l1.shape(),
                l2.shape()
            );
        }
        let a = self.slope;
        let g = g
            .iter()
            .zip(y)
            .map(|(&g, &y)| if y < 0.0 { g * a } else { g })
            .collect();
        Ok((CpuStorage::F32(g), l1.shape().clone()))
    }
}

/// `max(x, 0) + slope · min(x, 0)`; `slope` must be positive.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && slope > 0.0 {
        x.contiguous()?.apply_op1(LeakyRelu {
            slope: slope as f32,
        })
    } else {
        candle_nn::ops::leaky_relu(x, slope)
    }
}
