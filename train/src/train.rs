//! The training loop: SR L1 + α·L_rec + β(t)·KL (or the CLUB bound), AdamW with a cosine
//! schedule, EMA weights, running severity statistics, safetensors checkpoints with exact resume,
//! a CSV log and a progress bar.
//!
//! Everything random in a step is a function of `(seed, step)`: the pairs are
//! `source.pairs(batch, crop, seed, step · batch)`, the reparameterisation noise and the CLUB
//! pixels/permutation come from ChaCha streams keyed by the step. Resuming from a checkpoint
//! therefore reproduces the uninterrupted run, and two ablations trained with the same seed see
//! the same data in the same order.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::degrade::{downscale_bicubic_aa, DegradedPair, PairSampler};
use crate::nn::club::{club_sample, ClubNet};
use crate::nn::savl::{kl_loss, mean_variance};
use crate::nn::{init_vars, Ablation, Config, Likelihood, Savl, ORACLE_MAPS};

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
    /// regresses the pair's ground-truth maps ([`oracle_guide`], L1), so μ must carry the noise
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

    fn ramp(&self, t: usize) -> f64 {
        if self.kl_warmup == 0 {
            1.0
        } else {
            (t as f64 / self.kl_warmup as f64).min(1.0)
        }
    }
}

/// Where training pairs come from.
pub trait PairSource: Send + Sync + 'static {
    /// Pairs `first_index .. first_index + n` of stream `seed`, HR crops of `crop_hr` pixels;
    /// deterministic in the arguments.
    fn pairs(&self, n: usize, crop_hr: usize, seed: u64, first_index: u64) -> Vec<DegradedPair>;

    /// The same pairs, each with its twin (the same degradation on other content), or `None`
    /// when this source cannot make twins.
    fn twin_pairs(
        &self,
        _n: usize,
        _crop_hr: usize,
        _seed: u64,
        _first_index: u64,
    ) -> Option<Vec<(DegradedPair, DegradedPair)>> {
        None
    }
}

impl PairSource for PairSampler {
    fn pairs(&self, n: usize, crop_hr: usize, seed: u64, first_index: u64) -> Vec<DegradedPair> {
        self.batch(n, crop_hr, seed, first_index)
    }

    fn twin_pairs(
        &self,
        n: usize,
        crop_hr: usize,
        seed: u64,
        first_index: u64,
    ) -> Option<Vec<(DegradedPair, DegradedPair)>> {
        Some(self.twin_batch(n, crop_hr, seed, first_index))
    }
}

/// One batch in host memory, NCHW f32.
#[derive(Clone, Debug)]
pub struct HostBatch {
    /// Pairs.
    pub n: usize,
    /// LR rows.
    pub h: usize,
    /// LR columns.
    pub w: usize,
    /// Degraded LR `[n, 3, h, w]`.
    pub lr: Vec<f32>,
    /// HR target `[n, 3, 4h, 4w]`.
    pub hr: Vec<f32>,
    /// Content code z = bicubic↓(HR) `[n, 3, h, w]`.
    pub z: Vec<f32>,
    /// The twins' degraded LR `[n, 3, h, w]` (empty without twins).
    pub twin_lr: Vec<f32>,
    /// The twins' content codes `[n, 3, h, w]` (empty without twins).
    pub twin_z: Vec<f32>,
    /// The oracle's gate input from the ground-truth maps `[n, 4, h, w]` ([`oracle_guide`]).
    pub maps: Vec<f32>,
}

/// The oracle's gate input from a pair's ground-truth maps, `[4, h, w]` row-major: noise σ / 10
/// (σ in 1/255), blur σ (LR px), and (100 − q) / 50 for both JPEG steps.
pub fn oracle_guide(maps: &crate::degrade::DegradationMaps) -> Vec<f32> {
    let mut v = Vec::with_capacity(4 * maps.noise_sigma.len());
    v.extend(maps.noise_sigma.iter().map(|s| s / 10.0));
    v.extend_from_slice(&maps.blur_sigma);
    v.extend(maps.jpeg_q1.iter().map(|&q| (100.0 - q as f32) / 50.0));
    v.extend(maps.jpeg_q2.iter().map(|&q| (100.0 - q as f32) / 50.0));
    v
}

/// Stacks pairs into a batch and computes the content codes.
pub fn host_batch(pairs: &[DegradedPair], scale: usize) -> Result<HostBatch> {
    let first = pairs.first().context("empty batch")?;
    let (h, w) = (first.lr.height, first.lr.width);
    let mut b = HostBatch {
        n: pairs.len(),
        h,
        w,
        lr: Vec::new(),
        hr: Vec::new(),
        z: Vec::new(),
        twin_lr: Vec::new(),
        twin_z: Vec::new(),
        maps: Vec::new(),
    };
    for p in pairs {
        ensure!(
            p.lr.channels == 3 && p.lr.height == h && p.lr.width == w,
            "pair LR is {}×{}×{}, expected 3×{h}×{w}",
            p.lr.channels,
            p.lr.height,
            p.lr.width
        );
        ensure!(
            p.hr.channels == 3 && p.hr.height == h * scale && p.hr.width == w * scale,
            "pair HR is {}×{}×{}, expected 3×{}×{}",
            p.hr.channels,
            p.hr.height,
            p.hr.width,
            h * scale,
            w * scale
        );
        b.lr.extend_from_slice(&p.lr.data);
        b.hr.extend_from_slice(&p.hr.data);
        b.z.extend_from_slice(&downscale_bicubic_aa(&p.hr, scale).data);
        b.maps.extend(oracle_guide(&p.maps));
    }
    Ok(b)
}

/// [`host_batch`] of the first pairs, with their twins' LR and content codes.
pub fn host_twin_batch(pairs: &[(DegradedPair, DegradedPair)], scale: usize) -> Result<HostBatch> {
    let firsts: Vec<DegradedPair> = pairs.iter().map(|(a, _)| a.clone()).collect();
    let mut b = host_batch(&firsts, scale)?;
    for (a, t) in pairs {
        ensure!(
            t.lr.height == a.lr.height && t.lr.width == a.lr.width,
            "twin LR is {}×{}, its pair's {}×{}",
            t.lr.height,
            t.lr.width,
            a.lr.height,
            a.lr.width
        );
        b.twin_lr.extend_from_slice(&t.lr.data);
        b.twin_z
            .extend_from_slice(&downscale_bicubic_aa(&t.hr, scale).data);
    }
    Ok(b)
}

/// Builds the batches of steps `start..end` on a background thread, one ahead of the consumer.
pub fn prefetch(
    source: Arc<dyn PairSource>,
    tc: &TrainConfig,
    start: usize,
    end: usize,
) -> Receiver<Result<HostBatch>> {
    let (tx, rx) = sync_channel(1);
    let (n, crop, seed, scale) = (
        tc.batch,
        tc.lr_crop * tc.model.scale,
        tc.seed,
        tc.model.scale,
    );
    let twins = tc.needs_twins();
    std::thread::spawn(move || {
        for step in start..end {
            let first = (step * n) as u64;
            let batch = if twins {
                match source.twin_pairs(n, crop, seed, first) {
                    Some(p) => host_twin_batch(&p, scale),
                    None => Err(anyhow::anyhow!(
                        "--lm-target twin needs twin pairs, which this data source cannot make"
                    )),
                }
            } else {
                host_batch(&source.pairs(n, crop, seed, first), scale)
            };
            if tx.send(batch).is_err() {
                break;
            }
        }
    });
    rx
}

/// Per-step loss terms (scalars), as logged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Losses {
    /// The optimised total.
    pub total: f32,
    /// SR L1.
    pub sr: f32,
    /// PSNR (dB) of the SR output on the batch.
    pub psnr: f32,
    /// LM-lane reconstruction L1 (mean |y − ŷ|, logged whatever the likelihood).
    pub rec: f32,
    /// KL summed over d (with free bits), logged for every guided variant.
    pub kl: f32,
    /// CLUB estimate (club ablation).
    pub club: f32,
    /// Map read-out L1 (with `map_weight > 0`).
    pub map: f32,
    /// β (or the CLUB weight) in effect.
    pub beta: f32,
    /// Learning rate in effect.
    pub lr: f32,
}

/// AdamW with its moments exposed (for checkpoints).
struct AdamW {
    vars: Vec<(String, Var, Tensor, Tensor)>,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    fn new(vars: Vec<(String, Var)>, tc: &TrainConfig, weight_decay: f64) -> Result<Self> {
        let vars = vars
            .into_iter()
            .map(|(n, v)| {
                let z = v.zeros_like()?;
                Ok((n, v, z.clone(), z))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            beta1: tc.beta1,
            beta2: tc.beta2,
            eps: tc.eps,
            weight_decay,
        })
    }

    /// One update; `t` is the 1-based step number for the bias correction.
    fn step(&mut self, grads: &GradStore, lr: f64, t: usize) -> Result<()> {
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(t as i32);
        let c2 = 1.0 - b2.powi(t as i32);
        for (_, var, m, v) in self.vars.iter_mut() {
            let Some(g) = grads.get(var) else { continue };
            // candle's stock backward ops (the CUDA path) can return a gradient that is still
            // tracked (its graph reaches the step's activations); the moments must not hold it,
            // or every step's activations stay alive through the chain m_t → m_{t-1} → …
            let g = &g.detach();
            *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let upd = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + self.eps)?)?;
            let w = (var.as_tensor() * (1.0 - lr * self.weight_decay))?;
            var.set(&(w - (upd * lr)?)?)?;
        }
        Ok(())
    }

    fn save_into(&self, prefix: &str, out: &mut HashMap<String, Tensor>) {
        for (n, _, m, v) in &self.vars {
            out.insert(format!("{prefix}.m.{n}"), m.clone());
            out.insert(format!("{prefix}.v.{n}"), v.clone());
        }
    }

    /// Loads the moments of every variable except those `keep_fresh` names (left at zero).
    fn load_from(
        &mut self,
        prefix: &str,
        t: &HashMap<String, Tensor>,
        keep_fresh: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        for (n, _, m, v) in self.vars.iter_mut() {
            if keep_fresh(n) {
                continue;
            }
            *m = t
                .get(&format!("{prefix}.m.{n}"))
                .with_context(|| format!("checkpoint lacks {prefix}.m.{n}"))?
                .clone();
            *v = t
                .get(&format!("{prefix}.v.{n}"))
                .with_context(|| format!("checkpoint lacks {prefix}.v.{n}"))?
                .clone();
        }
        Ok(())
    }
}

fn sorted_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = vm
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The model, its optimiser state, EMA and step counter.
pub struct Trainer {
    /// The run's settings.
    pub tc: TrainConfig,
    /// Model variables (including the non-trained `sev.stats`).
    pub vm: VarMap,
    /// The model.
    pub model: Savl,
    /// EMA of every model variable, by name.
    pub ema: Vec<(String, Tensor)>,
    /// Steps done.
    pub step: usize,
    club: Option<(VarMap, ClubNet, AdamW)>,
    readout: Option<crate::nn::conv::Conv>,
    opt: AdamW,
    dev: Device,
}

impl Trainer {
    /// A fresh model initialised from `tc.seed`.
    pub fn new(tc: TrainConfig, dev: &Device) -> Result<Self> {
        ensure!(
            tc.batch > 0 && tc.lr_crop > 0 && tc.steps > 0,
            "batch, lr crop and steps must be positive"
        );
        let vm = VarMap::new();
        let model = Savl::new(&tc.model, VarBuilder::from_varmap(&vm, DType::F32, dev))?;
        let readout = if tc.map_weight > 0.0 && tc.model.ablation.has_estimator() {
            let vb = VarBuilder::from_varmap(&vm, DType::F32, dev);
            Some(crate::nn::conv::Conv::new(
                tc.model.latent,
                ORACLE_MAPS,
                1,
                vb.pp("readout"),
            )?)
        } else {
            None
        };
        init_vars(&vm, tc.seed)?;
        let trainable: Vec<_> = sorted_vars(&vm)
            .into_iter()
            .filter(|(n, _)| n != "sev.stats")
            .collect();
        let opt = AdamW::new(trainable, &tc, tc.weight_decay)?;
        let club = if tc.model.ablation == Ablation::Club {
            let cvm = VarMap::new();
            let net = ClubNet::new(
                tc.model.latent,
                3,
                tc.club_hidden,
                VarBuilder::from_varmap(&cvm, DType::F32, dev),
            )?;
            init_vars(&cvm, tc.seed ^ 0xC1B)?;
            let copt = AdamW::new(sorted_vars(&cvm), &tc, 0.0)?;
            Some((cvm, net, copt))
        } else {
            None
        };
        let ema = sorted_vars(&vm)
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?.detach())))
            .collect::<Result<_>>()?;
        Ok(Self {
            tc,
            vm,
            model,
            ema,
            step: 0,
            club,
            readout,
            opt,
            dev: dev.clone(),
        })
    }

    /// Continues from a checkpoint written by [`save`](Self::save); the model config must match,
    /// except that an L1 checkpoint may continue with the Laplace likelihood: its `dec.scale`
    /// head (training-only) then starts from its initialisation with zero Adam moments.
    pub fn resume(tc: TrainConfig, path: &Path, dev: &Device) -> Result<Self> {
        let ck = Checkpoint::load(path)?;
        let upgrade = ck.cfg.likelihood == Likelihood::L1
            && tc.model.likelihood == Likelihood::Laplace
            && ck.cfg.clone().with_likelihood(Likelihood::Laplace) == tc.model;
        ensure!(
            ck.cfg == tc.model || upgrade,
            "{}: checkpoint model {:?} ({}, {} likelihood) differs from the requested {:?} ({}, {} likelihood)",
            path.display(),
            ck.cfg.preset,
            ck.cfg.ablation,
            ck.cfg.likelihood,
            tc.model.preset,
            tc.model.ablation,
            tc.model.likelihood
        );
        let fresh = |name: &str| upgrade && name.starts_with("dec.scale.");
        let mut t = Self::new(tc, dev)?;
        for (name, var) in sorted_vars(&t.vm) {
            if !fresh(&name) {
                var.set(&ck.tensor(&name)?.to_device(dev)?)?;
            }
        }
        for (name, e) in t.ema.iter_mut() {
            if !fresh(name) {
                *e = ck.tensor(&format!("ema.{name}"))?.to_device(dev)?;
            }
        }
        t.opt.load_from("adam", &ck.tensors, &fresh)?;
        if let Some((cvm, _, copt)) = t.club.as_mut() {
            for (name, var) in sorted_vars(cvm) {
                var.set(&ck.tensor(&format!("club.{name}"))?.to_device(dev)?)?;
            }
            copt.load_from("clubadam", &ck.tensors, &|_| false)?;
        }
        t.step = ck.step;
        Ok(t)
    }

    /// Starts a new run from the weights of `path` (another stage's or another variant's
    /// checkpoint; its EMA weights when `ema`): every variable whose name and shape match is
    /// copied into both the weights and the EMA; the rest keep their initialisation. The
    /// optimiser state and the step start fresh. Returns the names left fresh.
    pub fn init_from(&mut self, path: &Path, ema: bool) -> Result<Vec<String>> {
        self.init_some_from(path, ema, &|_| true)
    }

    /// [`init_from`](Self::init_from) for the variables whose names `pick` accepts only (the
    /// others are neither copied nor reported).
    pub fn init_some_from(
        &mut self,
        path: &Path,
        ema: bool,
        pick: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let ck = Checkpoint::load(path)?;
        let mut fresh = Vec::new();
        for (name, var) in sorted_vars(&self.vm) {
            if !pick(&name) {
                continue;
            }
            let key = if ema && name != "sev.stats" {
                format!("ema.{name}")
            } else {
                name.clone()
            };
            match ck.tensors.get(&key) {
                Some(t) if t.dims() == var.dims() => {
                    let t = t.to_device(&self.dev)?;
                    var.set(&t)?;
                    if let Some((_, e)) = self.ema.iter_mut().find(|(n, _)| *n == name) {
                        *e = t.copy()?.detach();
                    }
                }
                _ => fresh.push(name),
            }
        }
        Ok(fresh)
    }

    /// Writes a checkpoint: model variables, `ema.*`, `adam.{m,v}.*`, CLUB net and its moments,
    /// and the step and config in the safetensors metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut out: HashMap<String, Tensor> = HashMap::new();
        for (n, v) in sorted_vars(&self.vm) {
            out.insert(n, v.as_tensor().clone());
        }
        for (n, e) in &self.ema {
            out.insert(format!("ema.{n}"), e.clone());
        }
        self.opt.save_into("adam", &mut out);
        if let Some((cvm, _, copt)) = &self.club {
            for (n, v) in sorted_vars(cvm) {
                out.insert(format!("club.{n}"), v.as_tensor().clone());
            }
            copt.save_into("clubadam", &mut out);
        }
        let mut meta = config_to_meta(&self.tc.model);
        meta.insert("step".into(), self.step.to_string());
        meta.insert("train.seed".into(), self.tc.seed.to_string());
        meta.insert("train.batch".into(), self.tc.batch.to_string());
        meta.insert("train.lr_crop".into(), self.tc.lr_crop.to_string());
        meta.insert("train.steps".into(), self.tc.steps.to_string());
        meta.insert(
            "train.lm_target".into(),
            format!("{:?}", self.tc.lm_target).to_lowercase(),
        );
        meta.insert("train.stage".into(), format!("{:?}", self.tc.stage));
        meta.insert(
            "train.sr_grad_to_estimator".into(),
            self.tc.sr_grad_to_estimator.to_string(),
        );
        let tmp = path.with_extension("tmp");
        let views = out
            .iter()
            .map(|(k, v)| Ok((k.clone(), F32View::new(v)?)))
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize_to_file(views, &Some(meta), &tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    fn noise(&self, shape: &[usize], stream: u64) -> Result<Tensor> {
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = ChaCha8Rng::seed_from_u64(self.tc.seed ^ 0x5A71_0000_0000);
        rng.set_stream(stream);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        Ok(Tensor::from_vec(v, shape, &self.dev)?)
    }

    /// One optimiser step on `batch`.
    pub fn train_step(&mut self, batch: &HostBatch) -> Result<Losses> {
        let (total, l) = self.losses(batch, true)?;
        ensure!(
            l.total.is_finite(),
            "loss is {} at step {}",
            l.total,
            self.step
        );
        let grads = total.backward()?;
        let lr_now = self.tc.lr_at(self.step);
        self.step += 1;
        self.opt.step(&grads, lr_now, self.step)?;
        self.update_ema()?;
        Ok(l)
    }

    /// The loss terms on `batch` with the current raw weights, without updating anything (the
    /// noise and CLUB pixels are those of the current step).
    pub fn evaluate(&mut self, batch: &HostBatch) -> Result<Losses> {
        Ok(self.losses(batch, false)?.1)
    }

    fn losses(&mut self, batch: &HostBatch, train: bool) -> Result<(Tensor, Losses)> {
        let tc = self.tc.clone();
        let s = tc.model.scale;
        let (n, h, w) = (batch.n, batch.h, batch.w);
        let lr_t = Tensor::from_slice(&batch.lr, (n, 3, h, w), &self.dev)?;
        let ramp = tc.ramp(self.step);
        let mut l = Losses {
            lr: tc.lr_at(self.step) as f32,
            ..Default::default()
        };
        let mut terms = Vec::new();
        let run_sr = tc.stage != Stage::Zero;
        let sr = match &self.model.estimator {
            None if tc.model.ablation == Ablation::Oracle => {
                ensure!(
                    batch.maps.len() == n * ORACLE_MAPS * h * w,
                    "the oracle needs the batch's ground-truth maps"
                );
                let maps = Tensor::from_slice(&batch.maps, (n, ORACLE_MAPS, h, w), &self.dev)?;
                Some(self.model.forward_oracle(&lr_t, &maps)?)
            }
            None => Some(self.model.sr.forward(&lr_t, None)?),
            Some(est) => {
                let (mu, lv) = est.forward(&lr_t)?;
                let (mu, lv) = if tc.stage == Stage::B {
                    (mu.detach(), lv.detach())
                } else {
                    (mu, lv)
                };
                if train && tc.stage != Stage::B {
                    self.update_severity_stats(&lv)?;
                }
                if tc.stage != Stage::B {
                    let r = match tc.model.ablation {
                        Ablation::Deterministic => mu.clone(),
                        _ => {
                            let eps = self.noise(mu.dims(), 2 * self.step as u64)?;
                            (&mu + ((&lv * 0.5)?.exp()? * eps)?)?
                        }
                    };
                    let (z_t, y_t) = match tc.lm_target {
                        LmTarget::SelfCrop => (
                            Tensor::from_slice(&batch.z, (n, 3, h, w), &self.dev)?,
                            lr_t.clone(),
                        ),
                        LmTarget::Twin => {
                            ensure!(
                                batch.twin_lr.len() == n * 3 * h * w
                                    && batch.twin_z.len() == n * 3 * h * w,
                                "--lm-target twin: the batch has no twins"
                            );
                            (
                                Tensor::from_slice(&batch.twin_z, (n, 3, h, w), &self.dev)?,
                                Tensor::from_slice(&batch.twin_lr, (n, 3, h, w), &self.dev)?,
                            )
                        }
                    };
                    let dec = self
                        .model
                        .decoder
                        .as_ref()
                        .context("guided model without decoder")?;
                    let (rec, rec_l1) = dec.nll(&z_t, &r, &y_t)?;
                    if let Some(head) = &self.readout {
                        ensure!(
                            batch.maps.len() == n * ORACLE_MAPS * h * w,
                            "the map read-out needs the batch's ground-truth maps"
                        );
                        let maps =
                            Tensor::from_slice(&batch.maps, (n, ORACLE_MAPS, h, w), &self.dev)?;
                        let err = (head.forward(&mu)? - maps)?.abs()?.mean_all()?;
                        l.map = err.to_scalar()?;
                        terms.push((err * tc.map_weight)?);
                    }
                    let kl = kl_loss(&mu, &lv, tc.free_bits)?;
                    l.rec = rec_l1.to_scalar()?;
                    l.kl = kl.to_scalar()?;
                    terms.push((rec * tc.rec_weight)?);
                    match tc.model.ablation {
                        Ablation::Full => {
                            l.beta = (tc.kl_weight * ramp) as f32;
                            terms.push((kl * (tc.kl_weight * ramp))?);
                        }
                        Ablation::Club => {
                            let c = self.club_term(&r, &z_t, train)?;
                            l.club = c.to_scalar()?;
                            l.beta = (tc.club_weight * ramp) as f32;
                            terms.push((c * (tc.club_weight * ramp))?);
                        }
                        _ => {}
                    }
                }
                if run_sr {
                    let (g, _) = if tc.sr_grad_to_estimator {
                        self.model.guide(&mu, &lv)?
                    } else {
                        self.model.guide(&mu.detach(), &lv.detach())?
                    };
                    Some(self.model.sr.forward(&lr_t, Some(&g))?)
                } else {
                    None
                }
            }
        };
        let mut total = match sr {
            Some(sr) => {
                let hr_t = Tensor::from_slice(&batch.hr, (n, 3, h * s, w * s), &self.dev)?;
                let diff = (&sr - &hr_t)?;
                let l_sr = diff.abs()?.mean_all()?;
                let mse: f32 = diff.sqr()?.mean_all()?.to_scalar()?;
                l.psnr = -10.0 * mse.max(1e-10).log10();
                l.sr = l_sr.to_scalar()?;
                l_sr
            }
            None => Tensor::new(0f32, &self.dev)?,
        };
        for t in terms {
            total = (total + t)?;
        }
        l.total = total.to_scalar()?;
        Ok((total, l))
    }

    fn update_severity_stats(&self, lv: &Tensor) -> Result<()> {
        let v = mean_variance(&lv.detach())?.flatten_all()?;
        let m: f32 = v.mean_all()?.to_scalar()?;
        let sd: f32 = v
            .broadcast_sub(&Tensor::new(m, &self.dev)?)?
            .sqr()?
            .mean_all()?
            .to_scalar::<f32>()?
            .sqrt();
        let stats = self
            .vm
            .data()
            .lock()
            .expect("varmap lock")
            .get("sev.stats")
            .context("no sev.stats")?
            .clone();
        let old = stats.to_vec1::<f32>()?;
        let k = self.tc.sev_momentum as f32;
        let new = [
            (1.0 - k) * old[0] + k * m,
            (1.0 - k) * old[1] + k * sd.max(1e-6),
        ];
        stats.set(&Tensor::new(&new, &self.dev)?)?;
        Ok(())
    }

    /// Fits the CLUB net one step on detached positive pairs, then returns the CLUBSample estimate
    /// with the net's output (gradients reach `r` only through it; the main optimiser does not
    /// own the net's variables).
    fn club_term(&mut self, r: &Tensor, z: &Tensor, fit: bool) -> Result<Tensor> {
        let (n, d, h, w) = r.dims4()?;
        let total = n * h * w;
        let p = self.tc.club_pixels.min(total);
        let mut rng = ChaCha8Rng::seed_from_u64(self.tc.seed ^ 0xC10B);
        rng.set_stream(2 * self.step as u64 + 1);
        let idx: Vec<u32> = (0..p).map(|_| rng.random_range(0..total as u32)).collect();
        let mut perm: Vec<u32> = (0..p as u32).collect();
        for i in (1..p).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        let idx = Tensor::from_vec(idx, p, &self.dev)?;
        let perm = Tensor::from_vec(perm, p, &self.dev)?;
        let a = r
            .permute((0, 2, 3, 1))?
            .reshape((total, d))?
            .index_select(&idx, 0)?;
        let b = z
            .permute((0, 2, 3, 1))?
            .reshape((total, 3))?
            .index_select(&idx, 0)?;
        let step = self.step + 1;
        let lr = self.tc.club_lr;
        let (_, net, copt) = self
            .club
            .as_mut()
            .context("club ablation without a CLUB net")?;
        if fit {
            let nll = net.nll(&a.detach(), &b)?;
            copt.step(&nll.backward()?, lr, step)?;
        }
        let (mu_q, lv_q) = net.forward(&a)?;
        Ok(club_sample(&mu_q, &lv_q, &b, &perm)?)
    }

    fn update_ema(&mut self) -> Result<()> {
        let t = self.step as f64;
        let d = self.tc.ema_decay.min((1.0 + t) / (10.0 + t));
        let vars = sorted_vars(&self.vm);
        for ((n, e), (vn, v)) in self.ema.iter_mut().zip(&vars) {
            debug_assert_eq!(n, vn);
            // Detached: a tracked EMA would keep every earlier step's EMA alive through its
            // op graph (a leak of a model's worth of tensors per step).
            *e = ((&*e * d)? + (v.as_tensor().detach() * (1.0 - d))?)?;
        }
        Ok(())
    }

    /// The EMA weights as a model (what `export` writes by default).
    pub fn ema_model(&self) -> Result<Savl> {
        let vm = VarMap::new();
        let m = Savl::new(
            &self.tc.model,
            VarBuilder::from_varmap(&vm, DType::F32, &self.dev),
        )?;
        let ema: HashMap<_, _> = self.ema.iter().cloned().collect();
        for (n, v) in sorted_vars(&vm) {
            v.set(ema.get(&n).context("EMA lacks a variable")?)?;
        }
        Ok(m)
    }
}

/// A summary of a run.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Losses of every step run, in order.
    pub losses: Vec<Losses>,
    /// Median seconds per step (compute only, data prefetched).
    pub median_step_s: f64,
    /// Median seconds spent waiting for data per step.
    pub median_wait_s: f64,
    /// Last checkpoint written.
    pub checkpoint: PathBuf,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Keeps the header and the rows of steps `≤ step` of the CSV log at `path` (written to a
/// temporary file, then renamed); returns how many rows were dropped.
pub fn trim_log(path: &Path, step: usize) -> Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut kept = String::with_capacity(text.len());
    let mut dropped = 0;
    for (i, line) in text.lines().enumerate() {
        let row_step = line.split(',').next().and_then(|f| f.parse::<usize>().ok());
        match row_step {
            Some(s) if i > 0 && s > step => dropped += 1,
            _ => {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    if dropped > 0 {
        let tmp = path.with_extension("csv.tmp");
        std::fs::write(&tmp, kept).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    }
    Ok(dropped)
}

/// Runs `trainer` to `tc.steps`, writing `out/train.csv`, `out/ckpt-STEP.safetensors`,
/// `out/last.safetensors` and, at the end, `out/model.onnx` (EMA weights).
pub fn run(trainer: &mut Trainer, source: Arc<dyn PairSource>, out: &Path) -> Result<RunSummary> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tc = trainer.tc.clone();
    let start = trainer.step;
    if start >= tc.steps {
        bail!("the run is already at step {start} of {}", tc.steps);
    }
    let csv_path = out.join("train.csv");
    let fresh = start == 0 || !csv_path.exists();
    if !fresh {
        // A run stopped between checkpoints logged steps past the one it resumes from; those
        // steps run again, so their old rows go.
        let dropped = trim_log(&csv_path, start)?;
        if dropped > 0 && tc.progress {
            eprintln!(
                "{}: dropped {dropped} row(s) logged after step {start} (they run again)",
                csv_path.display()
            );
        }
    }
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(&csv_path)
        .with_context(|| format!("opening {}", csv_path.display()))?;
    if fresh {
        writeln!(
            csv,
            "step,lr,total,sr_l1,psnr,rec_l1,kl,club,beta,step_s,wait_s,samples_per_s,map_l1"
        )?;
    }
    let bar = if tc.progress {
        let b = indicatif::ProgressBar::new(tc.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            )
            .expect("template"),
        );
        b.set_position(start as u64);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let probes = match &tc.probe_set {
        Some(dir) if tc.model.ablation.has_estimator() => {
            let gen = crate::degrade::probe::ProbeConfig::default();
            let set = crate::probe::ProbeSet::load(dir, &gen)
                .with_context(|| format!("loading the probe set {}", dir.display()))?;
            Some((set, gen))
        }
        _ => None,
    };
    let mut checkpoints = 0usize;
    let rx = prefetch(source, &tc, start, tc.steps);
    let mut losses = Vec::new();
    let (mut step_times, mut waits) = (Vec::new(), Vec::new());
    let mut last_ckpt = out.join("last.safetensors");
    let run_start = Instant::now();
    while trainer.step < tc.steps {
        let t0 = Instant::now();
        let batch = rx.recv().context("the data thread stopped")??;
        let t1 = Instant::now();
        let l = trainer.train_step(&batch)?;
        let (wait, dt) = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
        waits.push(wait);
        step_times.push(dt);
        let done = trainer.step - start;
        let sps = done as f64 / run_start.elapsed().as_secs_f64();
        writeln!(
            csv,
            "{},{:.3e},{:.5},{:.5},{:.3},{:.5},{:.4},{:.4},{:.3e},{:.3},{:.3},{:.2},{:.5}",
            trainer.step,
            l.lr,
            l.total,
            l.sr,
            l.psnr,
            l.rec,
            l.kl,
            l.club,
            l.beta,
            dt,
            wait,
            sps * tc.batch as f64,
            l.map
        )?;
        bar.set_position(trainer.step as u64);
        bar.set_message(format!(
            "sr {:.4} psnr {:.2} rec {:.4} kl {:.3}{} β {:.1e} | {:.2} steps/s {:.1} samples/s",
            l.sr,
            l.psnr,
            l.rec,
            l.kl,
            if tc.model.ablation == Ablation::Club {
                format!(" club {:.3}", l.club)
            } else {
                String::new()
            },
            l.beta,
            sps,
            sps * tc.batch as f64
        ));
        losses.push(l);
        if trainer.step % tc.checkpoint_every.max(1) == 0 || trainer.step == tc.steps {
            csv.flush()?;
            let p = out.join(format!("ckpt-{:07}.safetensors", trainer.step));
            trainer.save(&p)?;
            std::fs::copy(&p, out.join("last.safetensors"))
                .context("copying the last checkpoint")?;
            last_ckpt = p;
            checkpoints += 1;
            if let Some((set, gen)) = &probes {
                if checkpoints % tc.probe_every.max(1) == 0 || trainer.step == tc.steps {
                    let row = probe_checkpoint(trainer, set, gen)?;
                    log_probe(&out.join("probes.csv"), trainer.step, &row)?;
                    bar.println(format!(
                        "step {}: probes noise {:.1} %, scene {:.1} %, ρ {:.3}",
                        trainer.step,
                        100.0 * row.noise_acc,
                        100.0 * row.scene_acc,
                        row.spearman.unwrap_or(f64::NAN)
                    ));
                }
            }
        }
    }
    bar.finish();
    if tc.model.ablation != Ablation::Oracle {
        crate::export::write_onnx(&trainer.ema_model()?, &out.join("model.onnx"))?;
    }
    Ok(RunSummary {
        losses,
        median_step_s: median(step_times),
        median_wait_s: median(waits),
        checkpoint: last_ckpt,
    })
}

/// The representation probes on the trainer's EMA model, exported and run through the runtime.
fn probe_checkpoint(
    trainer: &Trainer,
    set: &crate::probe::ProbeSet,
    gen: &crate::degrade::probe::ProbeConfig,
) -> Result<crate::probe::ProbeRow> {
    let bytes = crate::export::to_onnx_bytes(&trainer.ema_model()?)?;
    let upscaler = savl::Upscaler::builder()
        .model_bytes(bytes)
        .threads(1)
        .build()
        .context("loading the exported checkpoint for the probes")?;
    let feats = crate::probe::Features::Model {
        label: format!("step {}", trainer.step),
        upscaler: Box::new(upscaler),
    };
    let cfg = crate::probe::ProbeRunConfig {
        gen: gen.clone(),
        ..Default::default()
    };
    crate::probe::run_probes(&feats, set, &cfg)
}

/// Appends a row to the probe log (header first when the file is new).
fn log_probe(path: &Path, step: usize, row: &crate::probe::ProbeRow) -> Result<()> {
    let fresh = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if fresh {
        writeln!(f, "step,noise_acc,scene_acc,spearman")?;
    }
    writeln!(
        f,
        "{step},{:.4},{:.4},{:.4}",
        row.noise_acc,
        row.scene_acc,
        row.spearman.unwrap_or(f64::NAN)
    )?;
    Ok(())
}

/// An f32 tensor in host memory, as `safetensors` 0.4 wants it.
struct F32View {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl F32View {
    fn new(t: &Tensor) -> Result<Self> {
        let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        Ok(Self {
            shape: t.dims().to_vec(),
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
    }
}

impl safetensors::View for F32View {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model sizes.
    pub cfg: Config,
    /// Optimiser steps done.
    pub step: usize,
    /// Every tensor in the file.
    pub tensors: HashMap<String, Tensor>,
    /// The safetensors metadata.
    pub meta: HashMap<String, String>,
}

impl Checkpoint {
    /// Reads a checkpoint written by [`Trainer::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, st_meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        let meta: HashMap<String, String> = st_meta.metadata().clone().unwrap_or_default();
        let cfg = config_from_meta(&meta)
            .with_context(|| format!("{}: no model config", path.display()))?;
        let step = meta
            .get("step")
            .and_then(|s| s.parse().ok())
            .context("checkpoint without a step")?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        Ok(Self {
            cfg,
            step,
            tensors,
            meta,
        })
    }

    fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .with_context(|| format!("checkpoint lacks {name}"))
    }

    /// The model, from the EMA weights (`ema = true`) or the raw ones.
    pub fn model(&self, ema: bool, dev: &Device) -> Result<(VarMap, Savl)> {
        let prefix = if ema { "ema." } else { "" };
        let vm = VarMap::new();
        let m = Savl::new(&self.cfg, VarBuilder::from_varmap(&vm, DType::F32, dev))?;
        for (name, var) in sorted_vars(&vm) {
            var.set(&self.tensor(&format!("{prefix}{name}"))?.to_device(dev)?)?;
        }
        Ok((vm, m))
    }
}

fn config_to_meta(c: &Config) -> HashMap<String, String> {
    let kv = [
        ("preset", c.preset.clone()),
        ("scale", c.scale.to_string()),
        ("channels", c.channels.to_string()),
        ("body_convs", c.body_convs.to_string()),
        ("gate_every", c.gate_every.to_string()),
        ("est_channels", c.est_channels.to_string()),
        ("est_convs", c.est_convs.to_string()),
        ("latent", c.latent.to_string()),
        ("dec_channels", c.dec_channels.to_string()),
        ("dec_convs", c.dec_convs.to_string()),
        ("leaky_slope", c.leaky_slope.to_string()),
        ("logvar_min", c.logvar_range.0.to_string()),
        ("logvar_max", c.logvar_range.1.to_string()),
        ("ablation", c.ablation.name().to_string()),
        ("likelihood", c.likelihood.name().to_string()),
    ];
    kv.into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect()
}

fn config_from_meta(m: &HashMap<String, String>) -> Result<Config> {
    let get = |k: &str| {
        m.get(&format!("model.{k}"))
            .with_context(|| format!("metadata lacks model.{k}"))
    };
    fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T> {
        v.parse()
            .map_err(|_| anyhow::anyhow!("metadata model.{k} = {v:?} is not a number"))
    }
    Ok(Config {
        preset: get("preset")?.clone(),
        scale: num("scale", get("scale")?)?,
        channels: num("channels", get("channels")?)?,
        body_convs: num("body_convs", get("body_convs")?)?,
        gate_every: num("gate_every", get("gate_every")?)?,
        est_channels: num("est_channels", get("est_channels")?)?,
        est_convs: num("est_convs", get("est_convs")?)?,
        latent: num("latent", get("latent")?)?,
        dec_channels: num("dec_channels", get("dec_channels")?)?,
        dec_convs: num("dec_convs", get("dec_convs")?)?,
        leaky_slope: num("leaky_slope", get("leaky_slope")?)?,
        logvar_range: (
            num("logvar_min", get("logvar_min")?)?,
            num("logvar_max", get("logvar_max")?)?,
        ),
        ablation: get("ablation")?.parse().map_err(anyhow::Error::msg)?,
        // Checkpoints from before the Laplace likelihood existed are L1.
        likelihood: match m.get("model.likelihood") {
            Some(v) => v.parse().map_err(anyhow::Error::msg)?,
            None => Likelihood::L1,
        },
    })
}

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
    use super::*;
    use crate::nn::conv::conv2d_stock;

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
