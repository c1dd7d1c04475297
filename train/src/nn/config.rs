//! Model sizes, presets and ablations.

/// Which variant of the model is trained (`--ablation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ablation {
    /// Full SAVL: estimator, LM lane with sampling, KL (MIS lane), μ/severity gates.
    #[default]
    Full,
    /// The same body without μ/σ² modulation: no estimator, no gates, no decoder. Extra body
    /// convs keep the multiply-adds within ±5 % of the full model.
    NoGuide,
    /// The estimator feeds the decoder with `r = μ` (no sampling) and there is no KL term.
    Deterministic,
    /// A CLUB upper bound on I(r; z) replaces the KL (MIS) term.
    Club,
    /// The same gated SR net guided by the ground-truth degradation maps of the synthetic pair
    /// (noise σ, blur σ, two JPEG qualities: [`ORACLE_MAPS`] channels, see
    /// [`crate::train::oracle_guide`]) instead of `[μ ‖ s]`: no estimator, no decoder. The upper
    /// bound of what guidance can give at this size; training and candle evaluation only (the
    /// runtime contract has no map input, so it is not exported).
    Oracle,
}

/// Channels of the oracle's gate input: noise σ, blur σ, JPEG quality 1 and 2.
pub const ORACLE_MAPS: usize = 4;

impl Ablation {
    /// Whether the SR net has gates (every variant but `noguide`).
    pub fn guided(self) -> bool {
        self != Self::NoGuide
    }

    /// Whether the net has an estimator and the training-only decoder (the guided variants but
    /// `oracle`, whose gates read the ground-truth maps).
    pub fn has_estimator(self) -> bool {
        self.guided() && self != Self::Oracle
    }
}

savl_contract::named_enum!(Ablation, "ablation", {
    Full => "full",
    NoGuide => "noguide",
    Deterministic => "deterministic",
    Club => "club",
    Oracle => "oracle",
});

/// The LM lane's likelihood `p_θ(y ∣ z, r)` (`--likelihood`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Likelihood {
    /// Laplace with a fixed scale: `L_rec = ‖y − ŷ‖₁` (mean over pixels and channels).
    #[default]
    L1,
    /// Laplace with a per-pixel, per-channel scale `b(r)` predicted from the latent alone by a
    /// 1×1 conv (`dec.scale`): `L_rec = mean(|y − ŷ| / b + log b)`. A fixed-scale decoder gains
    /// nothing from knowing the noise level (the best L1 prediction of a noisy pixel is its clean
    /// value), so only this form rewards `r` for carrying it.
    Laplace,
}

savl_contract::named_enum!(Likelihood, "likelihood", { L1 => "l1", Laplace => "laplace" });

/// Sizes of the SAVL network (estimator, SR net, training-only decoder).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Preset name, written to checkpoints and ONNX metadata.
    pub preset: String,
    /// Upscaling factor (only 4 is supported by the exporter contract).
    pub scale: usize,
    /// Body width C.
    pub channels: usize,
    /// Number of C→C conv3x3 in the body (N), before ablation adjustments.
    pub body_convs: usize,
    /// A gate multiply after every `gate_every`-th body conv.
    pub gate_every: usize,
    /// Estimator width.
    pub est_channels: usize,
    /// Number of conv3x3 in the estimator (the first maps 3 → width).
    pub est_convs: usize,
    /// Latent size d (μ and log σ² have d channels each).
    pub latent: usize,
    /// Decoder width (training only).
    pub dec_channels: usize,
    /// Number of width→width conv3x3 in the decoder, between its head and tail convs.
    pub dec_convs: usize,
    /// Negative slope of every LeakyReLU.
    pub leaky_slope: f64,
    /// Clamp range of log σ².
    pub logvar_range: (f32, f32),
    /// Variant.
    pub ablation: Ablation,
    /// The LM lane's likelihood (training only; `Laplace` adds the `dec.scale` head).
    pub likelihood: Likelihood,
}

impl Config {
    /// SAVL-lite (lite-m of the method notes): C = 48, N = 10, estimator 3×conv3x3 @ 32, d = 16;
    /// ≈ 0.25 M multiply-adds per LR pixel including the estimator.
    pub fn lite() -> Self {
        Self {
            preset: "lite".into(),
            scale: 4,
            channels: 48,
            body_convs: 10,
            gate_every: 2,
            est_channels: 32,
            est_convs: 3,
            latent: 16,
            dec_channels: 32,
            dec_convs: 4,
            leaky_slope: 0.1,
            logvar_range: (-10.0, 5.0),
            ablation: Ablation::Full,
            likelihood: Likelihood::L1,
        }
    }

    /// A larger net for GPUs: C = 64, N = 16, estimator 3×conv3x3 @ 64, d = 16.
    pub fn base() -> Self {
        Self {
            preset: "base".into(),
            channels: 64,
            body_convs: 16,
            est_channels: 64,
            dec_channels: 64,
            dec_convs: 6,
            ..Self::lite()
        }
    }

    /// A toy size for tests: C = 8, N = 2, d = 4.
    pub fn tiny() -> Self {
        Self {
            preset: "tiny".into(),
            channels: 8,
            body_convs: 2,
            est_channels: 8,
            est_convs: 2,
            latent: 4,
            dec_channels: 8,
            dec_convs: 1,
            ..Self::lite()
        }
    }

    /// A preset by name (`lite`, `base`, `tiny`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "lite" => Some(Self::lite()),
            "base" => Some(Self::base()),
            "tiny" => Some(Self::tiny()),
            _ => None,
        }
    }

    /// The same sizes with another variant.
    pub fn with_ablation(self, ablation: Ablation) -> Self {
        Config { ablation, ..self }
    }

    /// The same sizes with the LM lane's likelihood `likelihood`.
    pub fn with_likelihood(self, likelihood: Likelihood) -> Self {
        Config { likelihood, ..self }
    }

    /// Channels of the gates' input: `[μ ‖ s]` (d + 1), or the oracle's [`ORACLE_MAPS`].
    pub fn gate_inputs(&self) -> usize {
        if self.ablation == Ablation::Oracle {
            ORACLE_MAPS
        } else {
            self.latent + 1
        }
    }

    /// Number of gate multiplies (B = N / gate_every) of the guided net.
    pub fn gates(&self) -> usize {
        if self.ablation.guided() {
            self.body_convs / self.gate_every
        } else {
            0
        }
    }

    /// Body convs actually built: N for guided nets; for `noguide`, N plus as many extra convs as
    /// bring the multiply-adds closest to the guided net's.
    pub fn effective_body_convs(&self) -> usize {
        if self.ablation.guided() {
            return self.body_convs;
        }
        let guided = self
            .clone()
            .with_ablation(Ablation::Full)
            .macs_per_lr_pixel() as f64;
        let per_conv = (9 * self.channels * self.channels) as f64;
        let base = self.sr_macs(self.body_convs) as f64;
        self.body_convs + ((guided - base) / per_conv).round().max(0.0) as usize
    }

    fn sr_macs(&self, n: usize) -> usize {
        let c = self.channels;
        let out = 3 * self.scale * self.scale;
        9 * 3 * c + n * 9 * c * c + 9 * c * out
    }

    /// Multiply-adds per LR pixel of the inference path (estimator, gates, SR net), counting
    /// convolutions only.
    pub fn macs_per_lr_pixel(&self) -> usize {
        let mut macs = self.sr_macs(self.effective_body_convs());
        if self.ablation.has_estimator() {
            let e = self.est_channels;
            macs += 9 * 3 * e + (self.est_convs - 1) * 9 * e * e + 2 * e * self.latent;
        }
        macs += self.gates() * self.gate_inputs() * self.channels;
        macs
    }

    /// Radius (LR pixels) of the receptive field of `sr`: the runtime's tile halo must be ≥ it.
    pub fn receptive_field(&self) -> usize {
        let n = self.effective_body_convs();
        let body = 1 + n + 1;
        if !self.ablation.has_estimator() {
            return body;
        }
        // The first gate sits after body conv `gate_every`; what follows it adds its own radius.
        let est = self.est_convs;
        body.max(est + (n - self.gate_every) + 1)
    }
}
