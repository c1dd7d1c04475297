//! The SAVL networks: estimator g(y) → (μ, log σ²), severity map, gated SR net, and the
//! training-only decoder of the LM lane.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::config::{Ablation, Config, Likelihood};
use super::conv::Conv;

/// Amortised per-pixel Gaussian estimator: `est_convs` conv3x3 (LeakyReLU) then two 1x1 heads.
#[derive(Clone, Debug)]
pub struct Estimator {
    /// The conv3x3 stack (`est.0`, `est.1`, …).
    pub convs: Vec<Conv>,
    /// 1x1 head → μ (`est.mu`).
    pub mu: Conv,
    /// 1x1 head → log σ² (`est.logvar`), clamped afterwards.
    pub logvar: Conv,
    slope: f64,
    range: (f32, f32),
}

impl Estimator {
    /// Builds the estimator of `cfg` under `vb` (names `est.*` when `vb` is the model root).
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let e = cfg.est_channels;
        let convs = (0..cfg.est_convs)
            .map(|i| Conv::new(if i == 0 { 3 } else { e }, e, 3, vb.pp(i.to_string())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            convs,
            mu: Conv::new(e, cfg.latent, 1, vb.pp("mu"))?,
            logvar: Conv::new(e, cfg.latent, 1, vb.pp("logvar"))?,
            slope: cfg.leaky_slope,
            range: cfg.logvar_range,
        })
    }

    /// `(μ, log σ²)`, each `[B, d, H, W]`; log σ² is clamped to the configured range.
    pub fn forward(&self, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = y.clone();
        for c in &self.convs {
            h = c.forward_act(&h, self.slope)?;
        }
        let mu = self.mu.forward(&h)?;
        let lv = self.logvar.forward(&h)?.clamp(self.range.0, self.range.1)?;
        Ok((mu, lv))
    }
}

/// Severity `s = clamp((mean_d σ² − m) / s_d, −3, 3)` with fixed constants `m`, `s_d` (running
/// statistics from training, baked into the ONNX graph), so tiled inference is exact.
pub fn severity(logvar: &Tensor, mean: f32, std: f32) -> Result<Tensor> {
    let v = logvar.exp()?.mean_keepdim(1)?;
    ((v - mean as f64)? / std as f64)?.clamp(-3f32, 3f32)
}

/// The per-pixel mean of σ² over d, `[B, 1, H, W]` (the statistic the severity standardises).
pub fn mean_variance(logvar: &Tensor) -> Result<Tensor> {
    logvar.exp()?.mean_keepdim(1)
}

/// The SR network: head conv, `N` body conv3x3 + LeakyReLU with a gate multiply after every
/// `gate_every`-th, long skip, tail conv → PixelShuffle(scale) + nearest-upsampled input.
#[derive(Clone, Debug)]
pub struct SrNet {
    /// conv3x3 3 → C (`head`).
    pub head: Conv,
    /// conv3x3 C → C (`body.i`).
    pub body: Vec<Conv>,
    /// conv1x1 [`Config::gate_inputs`] → C per gate (`gate.k`), empty for `noguide`.
    pub gates: Vec<Conv>,
    /// conv3x3 C → 3·scale² (`tail`).
    pub tail: Conv,
    gate_every: usize,
    slope: f64,
    scale: usize,
}

impl SrNet {
    /// Builds the SR net of `cfg` under `vb`.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let body = (0..cfg.effective_body_convs())
            .map(|i| Conv::new(c, c, 3, vb.pp(format!("body.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let gates = (0..cfg.gates())
            .map(|k| Conv::new(cfg.gate_inputs(), c, 1, vb.pp(format!("gate.{k}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            head: Conv::new(3, c, 3, vb.pp("head"))?,
            body,
            gates,
            tail: Conv::new(c, 3 * cfg.scale * cfg.scale, 3, vb.pp("tail"))?,
            gate_every: cfg.gate_every,
            slope: cfg.leaky_slope,
            scale: cfg.scale,
        })
    }

    /// `sr [B, 3, sH, sW]` from `y [B, 3, H, W]` and, for guided nets, the gate input
    /// (`[μ ‖ s]`, `[B, d+1, H, W]`; the oracle's maps, `[B, 4, H, W]`).
    pub fn forward(&self, y: &Tensor, guide: Option<&Tensor>) -> Result<Tensor> {
        let gates = match (guide, self.gates.is_empty()) {
            (Some(g), false) => self
                .gates
                .iter()
                .map(|c| candle_nn::ops::sigmoid(&c.forward(g)?))
                .collect::<Result<Vec<_>>>()?,
            (None, true) => Vec::new(),
            (Some(_), true) => candle_core::bail!("SrNet: guide given to an unguided net"),
            (None, false) => candle_core::bail!("SrNet: a guided net needs [mu, s]"),
        };
        let f0 = self.head.forward(y)?;
        let mut f = f0.clone();
        for (i, c) in self.body.iter().enumerate() {
            f = c.forward_act(&f, self.slope)?;
            if (i + 1) % self.gate_every == 0 {
                if let Some(g) = gates.get((i + 1) / self.gate_every - 1) {
                    f = (f * g)?;
                }
            }
        }
        let f = (f + f0)?;
        let t = self.tail.forward(&f)?;
        let (_, _, h, w) = y.dims4()?;
        let up = y.upsample_nearest2d(h * self.scale, w * self.scale)?;
        candle_nn::ops::pixel_shuffle(&t, self.scale)? + up
    }
}

/// Training-only decoder of the LM lane: `ŷ = z + Dec([z ‖ r])`, and with the Laplace
/// likelihood a per-pixel scale `log b = conv1x1(r)`.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// conv3x3 (3 + d) → width, conv3x3 width → width …, conv3x3 width → 3.
    pub convs: Vec<Conv>,
    /// `dec.scale`: conv1x1 d → 3 giving `log b` ([`Likelihood::Laplace`] only).
    pub scale: Option<Conv>,
    slope: f64,
}

/// Clamp range of the Laplace log-scale `log b` (b from 1e-3 to e).
pub const LOG_SCALE_RANGE: (f32, f32) = (-7.0, 1.0);

impl Decoder {
    /// Builds the decoder of `cfg` under `vb` (`dec.*`).
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let w = cfg.dec_channels;
        let mut convs = vec![Conv::new(3 + cfg.latent, w, 3, vb.pp("0"))?];
        for i in 0..cfg.dec_convs {
            convs.push(Conv::new(w, w, 3, vb.pp((i + 1).to_string()))?);
        }
        convs.push(Conv::new(w, 3, 3, vb.pp((cfg.dec_convs + 1).to_string()))?);
        let scale = match cfg.likelihood {
            Likelihood::L1 => None,
            Likelihood::Laplace => Some(Conv::new(cfg.latent, 3, 1, vb.pp("scale"))?),
        };
        Ok(Self {
            convs,
            scale,
            slope: cfg.leaky_slope,
        })
    }

    /// Reconstructs the degraded LR from the content code `z [B,3,H,W]` and `r [B,d,H,W]`.
    pub fn forward(&self, z: &Tensor, r: &Tensor) -> Result<Tensor> {
        let mut h = Tensor::cat(&[z, r], 1)?;
        let last = self.convs.len() - 1;
        for (i, c) in self.convs.iter().enumerate() {
            h = if i < last {
                c.forward_act(&h, self.slope)?
            } else {
                c.forward(&h)?
            };
        }
        z + h
    }

    /// The LM lane's negative log-likelihood of `y` (up to a constant), averaged over pixels
    /// and channels: `|y − ŷ|` for [`Likelihood::L1`], `|y − ŷ| / b(r) + log b(r)` for
    /// [`Likelihood::Laplace`]. Returns `(loss, mean |y − ŷ|)`.
    pub fn nll(&self, z: &Tensor, r: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let err = (self.forward(z, r)? - y)?.abs()?;
        let l1 = err.mean_all()?;
        match &self.scale {
            None => Ok((l1.clone(), l1)),
            Some(head) => {
                let logb = head
                    .forward(r)?
                    .clamp(LOG_SCALE_RANGE.0, LOG_SCALE_RANGE.1)?;
                let nll = laplace_nll(&err, &logb)?;
                Ok((nll, l1))
            }
        }
    }
}

/// `mean(|e| · exp(−log b) + log b)` over every element: the Laplace negative log-likelihood
/// without its constant `log 2`.
pub fn laplace_nll(abs_err: &Tensor, logb: &Tensor) -> Result<Tensor> {
    ((abs_err * logb.neg()?.exp()?)? + logb)?.mean_all()
}

/// What the inference path returns.
#[derive(Clone, Debug)]
pub struct SavlOutput {
    /// `[B, 3, 4H, 4W]`.
    pub sr: Tensor,
    /// `[B, d, H, W]`, `None` for `noguide`.
    pub mu: Option<Tensor>,
    /// Clamped log σ², `[B, d, H, W]`.
    pub logvar: Option<Tensor>,
    /// `[B, 1, H, W]`.
    pub severity: Option<Tensor>,
}

/// The whole model. The severity constants are kept outside the `VarMap`'s trainable set (the
/// trainer updates them as running statistics).
#[derive(Clone, Debug)]
pub struct Savl {
    /// The sizes it was built with.
    pub cfg: Config,
    /// `est.*`; `None` for `noguide`.
    pub estimator: Option<Estimator>,
    /// The SR net (`head`, `body.i`, `gate.k`, `tail`).
    pub sr: SrNet,
    /// `dec.*`; `None` for `noguide`.
    pub decoder: Option<Decoder>,
    /// `sev.stats`: `[mean, std]` of the per-pixel mean σ².
    pub sev_stats: Tensor,
}

impl Savl {
    /// Builds (or loads) every part of `cfg` under `vb`.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let guided = cfg.ablation.has_estimator();
        let estimator = if guided {
            Some(Estimator::new(cfg, vb.pp("est"))?)
        } else {
            None
        };
        let decoder = if guided {
            Some(Decoder::new(cfg, vb.pp("dec"))?)
        } else {
            None
        };
        let sev_stats = vb.get_with_hints(2, "sev.stats", candle_nn::Init::Const(1.0))?;
        Ok(Self {
            cfg: cfg.clone(),
            estimator,
            sr: SrNet::new(cfg, vb)?,
            decoder,
            sev_stats,
        })
    }

    /// The standardisation constants `(mean, std)` of the severity map.
    pub fn severity_constants(&self) -> Result<(f32, f32)> {
        let v = self.sev_stats.to_vec1::<f32>()?;
        Ok((v[0], v[1].max(1e-6)))
    }

    /// The gate input `[μ ‖ s]` and the severity map from `(μ, log σ²)`.
    pub fn guide(&self, mu: &Tensor, logvar: &Tensor) -> Result<(Tensor, Tensor)> {
        let (m, s) = self.severity_constants()?;
        let sev = severity(logvar, m, s)?;
        Ok((Tensor::cat(&[mu, &sev], 1)?, sev))
    }

    /// Inference path: estimator (μ used, no sampling) and SR net.
    ///
    /// # Errors
    /// For the `oracle` variant, which needs [`forward_oracle`](Self::forward_oracle).
    pub fn forward(&self, y: &Tensor) -> Result<SavlOutput> {
        if self.cfg.ablation == Ablation::Oracle {
            candle_core::bail!("the oracle model needs the ground-truth maps: use forward_oracle");
        }
        match &self.estimator {
            None => Ok(SavlOutput {
                sr: self.sr.forward(y, None)?,
                mu: None,
                logvar: None,
                severity: None,
            }),
            Some(est) => {
                let (mu, lv) = est.forward(y)?;
                let (g, sev) = self.guide(&mu, &lv)?;
                let sr = self.sr.forward(y, Some(&g))?;
                Ok(SavlOutput {
                    sr,
                    mu: Some(mu),
                    logvar: Some(lv),
                    severity: Some(sev),
                })
            }
        }
    }
}

impl Savl {
    /// The `oracle` variant's SR output from `y` and its ground-truth maps `[B, 4, H, W]`.
    pub fn forward_oracle(&self, y: &Tensor, maps: &Tensor) -> Result<Tensor> {
        if self.cfg.ablation != Ablation::Oracle {
            candle_core::bail!("forward_oracle on a {} model", self.cfg.ablation);
        }
        self.sr.forward(y, Some(maps))
    }
}

/// KL(N(μ, σ²) ‖ N(0, I)) per latent dim, averaged over batch and pixels: `[d]`.
///
/// `KL_k = ½ · mean_{b,u} (μ_k² + σ_k² − log σ_k² − 1)`.
pub fn kl_per_dim(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    let t = ((mu.sqr()? + logvar.exp()?)? - logvar)?;
    let t = (t - 1.0)? * 0.5;
    // [B, d, H, W] → [d]
    t?.transpose(0, 1)?.flatten_from(1)?.mean(D::Minus1)
}

/// KL summed over d (averaged over pixels and batch), with per-dim free bits:
/// `Σ_k max(KL_k, free_bits)`; `free_bits = 0` gives the plain KL.
pub fn kl_loss(mu: &Tensor, logvar: &Tensor, free_bits: f32) -> Result<Tensor> {
    let k = kl_per_dim(mu, logvar)?;
    if free_bits > 0.0 {
        k.maximum(free_bits)?.sum_all()
    } else {
        k.sum_all()
    }
}
