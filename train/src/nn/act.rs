//! LeakyReLU as one fused op with its own backward.
//!
//! `candle_nn::ops::leaky_relu` composes five elementwise ops (zeros, max, min, mul, add) and
//! their backwards; this is one pass forward and one pass backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

#[derive(Clone, Copy, Debug)]
struct LeakyRelu {
    slope: f32,
}

fn contiguous_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("leaky_relu: f32 only, got {:?}", s.dtype()),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("leaky_relu: input must be contiguous"),
    }
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "savl-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = self.slope;
        // One pass from the input to a new buffer (no copy first).
        let v = contiguous_slice(s, l)?
            .iter()
            .map(|&x| if x < 0.0 { x * a } else { x })
            .collect();
        Ok((CpuStorage::F32(v), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The sign of the output equals the sign of the input for slope > 0.
        Ok(Some(res.apply_op2_no_bwd(
            &grad.contiguous()?,
            &LeakyReluGrad { slope: self.slope },
        )?))
    }
}

#[derive(Clone, Copy, Debug)]
struct LeakyReluGrad {
    slope: f32,
}

/// `grad · (y < 0 ? slope : 1)` from the activation output `y` (arg 1) and `grad` (arg 2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeakyReluGradOp(LeakyReluGrad);

impl LeakyReluGradOp {
    pub(crate) fn new(slope: f32) -> Self {
        Self(LeakyReluGrad { slope })
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
        self.0.cpu_fwd(s1, l1, s2, l2)
    }
}

impl candle_core::CustomOp2 for LeakyReluGrad {
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
        let y = contiguous_slice(s1, l1)?;
        let g = contiguous_slice(s2, l2)?;
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
