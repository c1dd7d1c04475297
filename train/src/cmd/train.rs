//! `savl-train train --data DIR --preset lite --steps N --out runs/NAME [--resume]`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::degrade::{DegradeConfig, PairSampler};
use crate::nn::{Ablation, Config, Likelihood};
use crate::train::{device, run as train_loop, LmTarget, Stage, TrainConfig, Trainer};

/// Arguments of `savl-train train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of HR photos (png, jpg, webp); pairs are synthesised on the fly.
    #[arg(long)]
    pub data: PathBuf,
    /// Model preset: lite (edge, default), base (GPU), tiny (tests).
    #[arg(long, default_value = "lite")]
    pub preset: String,
    /// Ablation: full, noguide, deterministic, club, oracle (gates read the ground-truth maps;
    /// training and `eval --checkpoint` only).
    #[arg(long, default_value = "full")]
    pub ablation: Ablation,
    /// The LM lane's likelihood: l1 (fixed-scale Laplace) or laplace (per-pixel scale from the
    /// latent, which rewards it for carrying the noise level). An L1 checkpoint may be resumed
    /// with laplace.
    #[arg(long, default_value = "l1")]
    pub likelihood: Likelihood,
    /// Total optimiser steps (the cosine schedule spans them).
    #[arg(long)]
    pub steps: usize,
    /// Output folder: checkpoints, train.csv, model.onnx.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from OUT/last.safetensors (same flags as the first run).
    #[arg(long)]
    pub resume: bool,
    /// Pairs per step.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// LR crop side in pixels (HR crop is 4×).
    #[arg(long, default_value_t = 48)]
    pub lr_crop: usize,
    /// Seed of initialisation, data order and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Peak learning rate (AdamW, cosine to lr/100).
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// Learning-rate warm-up steps.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    /// β: KL weight (full model), reached after --kl-warmup steps.
    #[arg(long, default_value_t = 3e-3)]
    pub kl_weight: f64,
    /// Steps of the linear KL (and CLUB) weight ramp.
    #[arg(long, default_value_t = 2000)]
    pub kl_warmup: usize,
    /// Per-dim free bits in nats (0 disables).
    #[arg(long, default_value_t = 0.05)]
    pub free_bits: f32,
    /// α: weight of the LM-lane reconstruction loss.
    #[arg(long, default_value_t = 1.0)]
    pub rec_weight: f64,
    /// Weight of the CLUB bound (club ablation).
    #[arg(long, default_value_t = 3e-3)]
    pub club_weight: f64,
    /// EMA decay.
    #[arg(long, default_value_t = 0.999)]
    pub ema: f64,
    /// Checkpoint every this many steps.
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: usize,
    /// Train on CUDA device 0 (needs a build with `--features cuda`).
    #[arg(long)]
    pub cuda: bool,
    /// No progress bar (the CSV log is still written).
    #[arg(long)]
    pub quiet: bool,
    /// Train against the plain HR (no USM sharpening of the target and of the degradation's
    /// input). Sharpened targets (Real-ESRNet's `gt_usm`) look crisper but cost PSNR against
    /// the original HR; the shipped model was fine-tuned with this flag (see models/MODELS.md).
    #[arg(long)]
    pub no_usm: bool,
    /// Fraction of the pairs left clean (only the final resize to LR, no blur, noise or JPEG),
    /// so the model also learns to upscale photos that are not degraded. 0 is the paper's recipe.
    #[arg(long, default_value_t = 0.0, value_parser = parse_prob)]
    pub clean_prob: f64,
    /// What the LM lane reconstructs: `twin` (the same degradation on another photo, so only
    /// degradation helps) or `self` (the same crop; the earlier lane, kept as an ablation).
    #[arg(long, value_enum, default_value = "self")]
    pub lm_target: LmTarget,
    /// Stage: `0` estimator + decoder alone, `a` joint, `b` estimator frozen and SR net trained.
    #[arg(long, value_enum, default_value = "a")]
    pub stage: Stage,
    /// Whether the SR loss reaches the estimator through the gates.
    #[arg(long, default_value = "on", value_parser = parse_on_off)]
    pub sr_grad_to_estimator: bool,
    /// Start from the weights of this checkpoint (another stage's or variant's; EMA weights),
    /// copying every variable whose name and shape match; optimiser and step start fresh.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Then take the estimator, decoder and severity statistics (`est.*`, `dec.*`,
    /// `sev.stats`) from this checkpoint (e.g. a stage-0 run), EMA weights.
    #[arg(long, conflicts_with = "resume")]
    pub init_estimator_from: Option<PathBuf>,
    /// Photos (disjoint from training) for the representation probes at checkpoints, logged to
    /// OUT/probes.csv (noise-level and scene-ID accuracy, ρ(severity, σ_n)).
    #[arg(long)]
    pub probe_set: Option<PathBuf>,
    /// Probe at every this many checkpoints (and at the end).
    #[arg(long, default_value_t = 1)]
    pub probe_every: usize,
    /// Weight of the privileged map supervision (a training-only linear read-out of μ regresses
    /// the ground-truth noise σ, blur σ and JPEG quality maps); 0 disables it.
    #[arg(long, default_value_t = 0.0)]
    pub map_weight: f64,
}

fn parse_on_off(s: &str) -> std::result::Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?}: expected on or off")),
    }
}

fn parse_prob(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("{p} is not a probability in [0, 1]")),
        Err(e) => Err(e.to_string()),
    }
}

impl Args {
    /// The plain config the loop receives.
    pub fn train_config(&self) -> Result<TrainConfig> {
        let Some(model) = Config::preset(&self.preset) else {
            bail!("unknown preset {:?} (lite, base, tiny)", self.preset)
        };
        let mut tc = TrainConfig::new(
            model
                .with_ablation(self.ablation)
                .with_likelihood(self.likelihood),
        );
        tc.steps = self.steps;
        tc.batch = self.batch;
        tc.lr_crop = self.lr_crop;
        tc.seed = self.seed;
        tc.lr = self.lr;
        tc.lr_min = self.lr / 100.0;
        tc.warmup = self.warmup;
        tc.kl_weight = self.kl_weight;
        tc.kl_warmup = self.kl_warmup;
        tc.free_bits = self.free_bits;
        tc.rec_weight = self.rec_weight;
        tc.club_weight = self.club_weight;
        tc.ema_decay = self.ema;
        tc.checkpoint_every = self.checkpoint_every;
        tc.progress = !self.quiet;
        tc.lm_target = self.lm_target;
        tc.stage = self.stage;
        tc.sr_grad_to_estimator = self.sr_grad_to_estimator;
        tc.probe_set = self.probe_set.clone();
        tc.probe_every = self.probe_every;
        tc.map_weight = self.map_weight;
        Ok(tc)
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let tc = args.train_config()?;
    let dev = device(args.cuda)?;
    let (sampler, skipped) = PairSampler::from_dir(
        &args.data,
        DegradeConfig {
            usm: !args.no_usm,
            clean_prob: args.clean_prob,
            ..DegradeConfig::default()
        },
    )
    .with_context(|| format!("loading training photos from {}", args.data.display()))?;
    for s in &skipped {
        eprintln!("savl-train: skipped {s:?}");
    }
    eprintln!("{} photos from {}", sampler.len(), args.data.display());
    let mut trainer = if args.resume {
        let last = args.out.join("last.safetensors");
        let t = Trainer::resume(tc, &last, &dev)
            .with_context(|| format!("resuming from {}", last.display()))?;
        eprintln!("resuming at step {}", t.step);
        t
    } else {
        if args.out.join("last.safetensors").exists() {
            bail!(
                "{} already holds a run; pass --resume or choose another --out",
                args.out.display()
            );
        }
        let mut t = Trainer::new(tc, &dev)?;
        if let Some(init) = &args.init_from {
            let fresh = t
                .init_from(init, true)
                .with_context(|| format!("initialising from {}", init.display()))?;
            eprintln!(
                "initialised from {} ({} variable(s) fresh{}{})",
                init.display(),
                fresh.len(),
                if fresh.is_empty() { "" } else { ": " },
                fresh.join(", ")
            );
        }
        if let Some(init) = &args.init_estimator_from {
            let pick = |n: &str| n.starts_with("est.") || n.starts_with("dec.") || n == "sev.stats";
            let fresh = t
                .init_some_from(init, true, &pick)
                .with_context(|| format!("initialising the estimator from {}", init.display()))?;
            if !fresh.is_empty() {
                bail!(
                    "{} lacks estimator variable(s) of this model: {}",
                    init.display(),
                    fresh.join(", ")
                );
            }
            eprintln!("estimator and decoder from {}", init.display());
        }
        t
    };
    let batch = trainer.tc.batch;
    let summary = train_loop(&mut trainer, Arc::new(sampler), &args.out)?;
    let last = summary.losses.last().copied().unwrap_or_default();
    println!(
        "step {}: sr L1 {:.4} ({:.2} dB), rec {:.4}, kl {:.3}; median step {:.3} s ({:.2} steps/s, {:.1} samples/s), data wait {:.3} s; checkpoint {}, ONNX {}",
        trainer.step,
        last.sr,
        last.psnr,
        last.rec,
        last.kl,
        summary.median_step_s,
        1.0 / summary.median_step_s,
        batch as f64 / summary.median_step_s,
        summary.median_wait_s,
        summary.checkpoint.display(),
        args.out.join("model.onnx").display()
    );
    Ok(())
}
