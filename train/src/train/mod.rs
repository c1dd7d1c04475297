//! The training loop: SR L1 + α·L_rec + β(t)·KL (or the CLUB bound), AdamW with a cosine
//! schedule, EMA weights, running severity statistics, safetensors checkpoints with exact resume,
//! a CSV log and a progress bar.
//!
//! Everything random in a step is a function of `(seed, step)`: the pairs are
//! `source.pairs(batch, crop, seed, step · batch)`, the reparameterisation noise and the CLUB
//! pixels/permutation come from ChaCha streams keyed by the step. Resuming from a checkpoint
//! therefore reproduces the uninterrupted run, and two ablations trained with the same seed see
//! the same data in the same order.

use anyhow::{bail, Result};
use candle_core::Device;

mod checkpoint;
mod config;
mod data;
mod optim;
mod run;
mod trainer;

pub use checkpoint::*;
pub use config::*;
pub use data::*;
pub use run::*;
pub use trainer::*;

/// The device for training: CPU, or CUDA device 0 with the `cuda` feature and `cuda = true`.
pub fn device(cuda: bool) -> Result<Device> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        Ok(Device::new_cuda(0)?)
    }
    #[cfg(not(feature = "cuda"))]
    {
        bail!("this binary was built without the `cuda` feature (cargo build -p savl-train --features cuda)")
    }
}

#[cfg(test)]
mod tests {
    use super::optim::AdamW;
    use super::*;
    use crate::nn::conv::conv2d_stock;
    use crate::nn::Config;
    use anyhow::Context;
    use candle_core::{Tensor, Var};

    /// candle's stock conv backward (the path on CUDA) returns tracked weight gradients; the
    /// optimiser's moments and the EMA must not keep that graph (and with it every step's
    /// activations) alive.
    #[test]
    fn optimiser_state_and_ema_hold_no_graph() -> Result<()> {
        let dev = Device::Cpu;
        let w1 = Var::from_tensor(&Tensor::randn(0f32, 0.3, (4, 3, 3, 3), &dev)?)?;
        let w2 = Var::from_tensor(&Tensor::randn(0f32, 0.3, (2, 4, 3, 3), &dev)?)?;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev)?;
        let y = conv2d_stock(&conv2d_stock(&x, w1.as_tensor(), 1)?, w2.as_tensor(), 1)?;
        let grads = y.sqr()?.sum_all()?.backward()?;
        let g2 = grads.get(&w2).context("no gradient for w2")?;
        assert!(g2.track_op(), "premise: the stock gradient is tracked");

        let tc = TrainConfig::new(Config::preset("tiny").context("tiny preset")?);
        let mut opt = AdamW::new(vec![("w1".into(), w1), ("w2".into(), w2)], &tc, 0.0)?;
        opt.step(&grads, 1e-3, 1)?;
        for (n, _, m, v) in &opt.vars {
            assert!(
                !m.track_op() && !v.track_op(),
                "{n}: a moment holds the graph"
            );
        }

        let mut t = Trainer::new(tc, &dev)?;
        t.update_ema()?;
        for (n, e) in &t.ema {
            assert!(!e.track_op(), "EMA of {n} holds the graph");
        }
        Ok(())
    }
}
