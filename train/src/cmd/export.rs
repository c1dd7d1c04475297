//! `savl-train export CKPT -o FILE.onnx`: the inference path of a checkpoint as ONNX.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use crate::nn::{init_vars, Ablation, Config, Savl};

/// Arguments of `savl-train export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint (safetensors) written by `savl-train train`.
    #[arg(required_unless_present = "untrained")]
    pub ckpt: Option<PathBuf>,
    /// Output ONNX file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Export the raw weights instead of the EMA weights.
    #[arg(long)]
    pub raw: bool,
    /// Export a freshly initialised model of this preset (lite, base, tiny) instead of a
    /// checkpoint: a placeholder with the right contract.
    #[arg(long, conflicts_with = "ckpt")]
    pub untrained: Option<String>,
    /// Ablation of the untrained model.
    #[arg(long, default_value = "full")]
    pub ablation: Ablation,
    /// Seed of the untrained model's weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let model = if let Some(preset) = &args.untrained {
        let Some(cfg) = Config::preset(preset) else {
            bail!("unknown preset {preset:?} (lite, base, tiny)")
        };
        let cfg = cfg.with_ablation(args.ablation);
        let vm = VarMap::new();
        let m = Savl::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
        init_vars(&vm, args.seed)?;
        m
    } else {
        let path = args.ckpt.as_ref().context("a checkpoint is required")?;
        let ck = crate::train::Checkpoint::load(path)?;
        ck.model(!args.raw, &Device::Cpu)?.1
    };
    crate::export::write_onnx(&model, &args.output)?;
    eprintln!(
        "wrote {} ({} preset, {} ablation, {} MAC/LR px, receptive field {} LR px)",
        args.output.display(),
        model.cfg.preset,
        model.cfg.ablation,
        model.cfg.macs_per_lr_pixel(),
        model.cfg.receptive_field()
    );
    Ok(())
}
