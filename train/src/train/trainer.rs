//! The model with its optimiser state, EMA and step counter: one training step at a time.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::nn::club::{club_sample, ClubNet};
use crate::nn::savl::{kl_loss, mean_variance};
use crate::nn::{init_vars, Ablation, Likelihood, Savl, ORACLE_MAPS};

use super::{checkpoint::*, config::*, data::*, optim::*};

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
    pub(super) club: Option<(VarMap, ClubNet, AdamW)>,
    pub(super) readout: Option<crate::nn::conv::Conv>,
    pub(super) opt: AdamW,
    pub(super) dev: Device,
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

    pub(super) fn noise(&self, shape: &[usize], stream: u64) -> Result<Tensor> {
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

    pub(super) fn losses(&mut self, batch: &HostBatch, train: bool) -> Result<(Tensor, Losses)> {
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

    pub(super) fn update_severity_stats(&self, lv: &Tensor) -> Result<()> {
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
    pub(super) fn club_term(&mut self, r: &Tensor, z: &Tensor, fit: bool) -> Result<Tensor> {
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

    pub(super) fn update_ema(&mut self) -> Result<()> {
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
