//! What a run is: the model, the data, the schedule and the loss weights ([`TrainConfig`]).

use std::path::PathBuf;

use crate::nn::Config;

/// Everything the loop needs; built from the CLI flags by `cmd::train`, or directly in tests.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Model sizes and ablation.
    pub model: Config,
    /// Total optimiser steps (the cosine schedule spans them).
    pub steps: usize,
    /// Pairs per step.
    pub batch: usize,
    /// LR crop side (the HR crop is `scale ×` it).
    pub lr_crop: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate of the cosine schedule.
    pub lr_min: f64,
    /// Linear learning-rate warm-up steps.
    pub warmup: usize,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// EMA decay of the exported weights (ramped up as `min(decay, (1+t)/(10+t))`).
    pub ema_decay: f64,
    /// α: weight of the LM-lane loss (reconstruction L1, or the Laplace NLL with `likelihood = laplace`).
    pub rec_weight: f64,
    /// β: weight of the KL (full model).
    pub kl_weight: f64,
    /// Steps of the linear β ramp from 0.
    pub kl_warmup: usize,
    /// Per-dim free bits (nats); 0 disables.
    pub free_bits: f32,
    /// Weight of the CLUB bound (club ablation), ramped like β.
    pub club_weight: f64,
    /// Pixels per step used for the CLUB estimate.
    pub club_pixels: usize,
    /// Hidden size of the CLUB net.
    pub club_hidden: usize,
    /// Learning rate of the CLUB net.
    pub club_lr: f64,
    /// Momentum of the running severity statistics.
    pub sev_momentum: f64,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Seed of initialisation, data order and noise.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
    /// What the LM lane reconstructs from `r ~ q(r | y)`: the same crop's `y` or its twin's.
    pub lm_target: LmTarget,
    /// Which parts train ([`Stage`]).
    pub stage: Stage,
    /// Photos (disjoint from training) on which the representation probes
    /// ([`crate::probe::run_probes`]) run at every `probe_every`-th checkpoint, logged to
    /// `probes.csv`; `None` runs none.
    pub probe_set: Option<PathBuf>,
    /// Probe at every this many checkpoints (and at the end).
    pub probe_every: usize,
    /// Weight of the privileged map supervision: a training-only 1×1 read-out `readout.*` of μ
    /// regresses the pair's ground-truth maps ([`oracle_guide`](super::oracle_guide), L1), so μ must carry the noise
    /// level, blur and JPEG quality linearly. 0 disables it.
    pub map_weight: f64,
    /// Whether the SR loss reaches the estimator through the gates (stage A); off, the gates
    /// read a detached `[μ ‖ s]`, so only the LM lane and the KL shape the code.
    pub sr_grad_to_estimator: bool,
}

/// What the LM lane reconstructs (`--lm-target`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LmTarget {
    /// `y` from `z = D(x)` and `r ~ q(r | y)` of the same crop: `r` may carry anything,
    /// content included.
    #[value(name = "self")]
    SelfCrop,
    /// The twin's `y₂` (the same degradation plan on another photo, fresh noise) from its `z₂`
    /// and `r₁ ~ q(r | y₁)`: only what the two crops share, the degradation, lowers the loss.
    #[default]
    Twin,
}

/// Training stage (`--stage`), as the paper's schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// Estimator and decoder alone (LM lane + KL); the SR net is not run.
    #[value(name = "0")]
    Zero,
    /// Everything jointly.
    #[default]
    #[value(name = "a")]
    A,
    /// Estimator frozen (no LM lane, no KL, fixed severity statistics); the SR net trains.
    #[value(name = "b")]
    B,
}

impl TrainConfig {
    /// Defaults for `model` (method notes §7, scaled to CPU budgets).
    pub fn new(model: Config) -> Self {
        Self {
            model,
            steps: 1000,
            batch: 16,
            lr_crop: 48,
            lr: 5e-4,
            lr_min: 5e-6,
            warmup: 100,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 1e-4,
            ema_decay: 0.999,
            rec_weight: 1.0,
            kl_weight: 3e-3,
            kl_warmup: 2000,
            free_bits: 0.05,
            club_weight: 3e-3,
            club_pixels: 512,
            club_hidden: 32,
            club_lr: 1e-3,
            sev_momentum: 0.01,
            checkpoint_every: 500,
            seed: 0,
            progress: true,
            lm_target: LmTarget::SelfCrop,
            stage: Stage::A,
            probe_set: None,
            probe_every: 1,
            map_weight: 0.0,
            sr_grad_to_estimator: true,
        }
    }

    /// Learning rate at step `t` (0-based): linear warm-up, then cosine to `lr_min`.
    pub fn lr_at(&self, t: usize) -> f64 {
        if t < self.warmup {
            return self.lr * (t + 1) as f64 / self.warmup as f64;
        }
        let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
        let p = ((t - self.warmup) as f64 / span).min(1.0);
        self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + (std::f64::consts::PI * p).cos())
    }

    /// Whether the batches need twins: a twin LM lane on a model with an estimator, in a stage
    /// that trains it.
    pub fn needs_twins(&self) -> bool {
        self.lm_target == LmTarget::Twin
            && self.model.ablation.has_estimator()
            && self.stage != Stage::B
    }

    pub(super) fn ramp(&self, t: usize) -> f64 {
        if self.kl_warmup == 0 {
            1.0
        } else {
            (t as f64 / self.kl_warmup as f64).min(1.0)
        }
    }
}
