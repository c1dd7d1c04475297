//! candle building blocks and the SAVL network.
//!
//! - [`conv`]: stride-1 conv2d with a GEMM forward and a fast custom backward (input gradient as
//!   a conv with flipped, transposed weights; weight gradient as im2col GEMMs);
//! - [`act`]: fused LeakyReLU;
//! - [`config`]: sizes, presets (`lite`, `base`, `tiny`) and ablations;
//! - [`savl`]: estimator, severity, gated SR net, LM-lane decoder, KL;
//! - [`club`]: the CLUB estimator of the `club` ablation.

pub mod act;
pub mod club;
pub mod config;
pub mod conv;
pub mod savl;

pub use config::{Ablation, Config, Likelihood, ORACLE_MAPS};
pub use savl::{Decoder, Estimator, Savl, SavlOutput, SrNet};

use candle_core::{Result, Tensor};
use candle_nn::VarMap;

/// Re-initialises every variable of `vm` deterministically from `seed` (candle's CPU RNG cannot
/// be seeded): conv/linear weights Kaiming-normal (gain √2), the last conv of the SR tail and of
/// the decoder scaled by 0.1 (so both start near their skip path), biases zero, `sev.stats` =
/// (1, 1). Variables are visited in name order.
pub fn init_vars(vm: &VarMap, seed: u64) -> Result<()> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let data = vm.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let last_dec = data
        .keys()
        .filter_map(|k| {
            k.strip_prefix("dec.")?
                .strip_suffix(".weight")?
                .parse::<usize>()
                .ok()
        })
        .max();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n = var.elem_count();
        let values: Vec<f32> = if name == "sev.stats" {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
            let mut std = (2.0f64 / fan_in as f64).sqrt();
            if name == "tail.weight" || last_dec.is_some_and(|l| *name == format!("dec.{l}.weight"))
            {
                std *= 0.1;
            }
            let d = Normal::new(0.0, std).expect("finite std");
            (0..n).map(|_| d.sample(&mut rng) as f32).collect()
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}
