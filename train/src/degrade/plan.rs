//! Everything random about one degradation, drawn up front (§1.7, §3.1–3.3): regime masks,
//! per-regime kernels, noise and JPEG qualities, and the shared resizes and final order.
//! Drawing is separate from execution so tests can pin any parameter.

use super::kernels::{
    random_final_sinc, random_kernel, Kernel, KernelKind, KernelRanges, KERNEL1, KERNEL2,
};
use super::masks::{random_masks, smooth_field, Masks};
use super::resize::ResizeMode;
use super::DegradeConfig;
use rand::Rng;

/// Noise model of one regime in one stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NoiseKind {
    /// Additive Gaussian, std in intensity units (σ/255 of the recipe).
    Gaussian(f32),
    /// Poisson with this scale.
    Poisson(f32),
}

/// Noise of one regime in one stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseParams {
    /// Model and amplitude.
    pub kind: NoiseKind,
    /// One grey field broadcast to the channels instead of independent colour noise.
    pub gray: bool,
}

impl NoiseParams {
    /// No noise.
    pub const NONE: NoiseParams = NoiseParams {
        kind: NoiseKind::Gaussian(0.0),
        gray: false,
    };
}

/// Per-regime parameters (§3.3).
#[derive(Clone, Debug, PartialEq)]
pub struct RegimeParams {
    /// First-stage kernel (at HR).
    pub kernel1: Kernel,
    /// Its family.
    pub kind1: KernelKind,
    /// First-stage noise.
    pub noise1: NoiseParams,
    /// First JPEG quality (continuous).
    pub q1: f32,
    /// Second-stage kernel; the pulse when the p 0.8 flag said no blur.
    pub kernel2: Kernel,
    /// Its family.
    pub kind2: KernelKind,
    /// Second-stage noise.
    pub noise2: NoiseParams,
    /// Second JPEG quality.
    pub q2: f32,
    /// Final sinc kernel, or the pulse.
    pub final_kernel: Kernel,
    /// Drawn from the narrowed "mild" ranges.
    pub mild: bool,
}

/// Order of the final stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalOrder {
    /// (a) resize → sinc → JPEG.
    ResizeSincJpeg,
    /// (b) JPEG → resize → sinc.
    JpegResizeSinc,
}

/// Parameters shared by all regimes (a spatially varying resize would break alignment).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SharedParams {
    /// First resize factor (relative to HR) and mode.
    pub resize1: (f64, ResizeMode),
    /// Second resize factor (relative to the final LR size) and mode.
    pub resize2: (f64, ResizeMode),
    /// Mode of the resize to exactly the LR size.
    pub final_mode: ResizeMode,
    /// Final-stage order.
    pub order: FinalOrder,
}

/// Continuous defocus (§3.4 mode B): `σ_b(u) = σ_lo + (σ_hi − σ_lo)·sigmoid(γ·g(u))` in HR px,
/// replacing the stage-1 kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct Defocus {
    /// Lower σ.
    pub sigma_lo: f32,
    /// Upper σ.
    pub sigma_hi: f32,
    /// Per-pixel σ_b at HR.
    pub sigma: Vec<f32>,
}

/// Everything random about one degradation of an `height × width` HR image.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Soft masks at HR.
    pub masks: Masks,
    /// One entry per regime.
    pub regimes: Vec<RegimeParams>,
    /// Shared geometry.
    pub shared: SharedParams,
    /// Intra-regime drift: `(g(u) ∈ [−1, 1] at HR, a)`; noise amplitudes are multiplied by
    /// `1 + a·g`.
    pub drift: Option<(Vec<f32>, f32)>,
    /// Mode-B defocus for stage 1.
    pub defocus: Option<Defocus>,
    /// Whether the GT is USM-sharpened.
    pub usm: bool,
}

/// 8 defocus levels geometrically spaced over [0.2, 3.0] HR px.
pub fn defocus_levels() -> [f32; 8] {
    std::array::from_fn(|i| 0.2 * 15f32.powf(i as f32 / 7.0))
}

fn random_noise<R: Rng>(rng: &mut R, gauss_max: f32, poisson_max: f32) -> NoiseParams {
    let kind = if rng.random::<f64>() < 0.5 {
        NoiseKind::Gaussian(rng.random_range(1.0..=gauss_max) / 255.0)
    } else {
        NoiseKind::Poisson(rng.random_range(0.05..=poisson_max))
    };
    NoiseParams {
        kind,
        gray: rng.random::<f64>() < 0.4,
    }
}

fn random_resize<R: Rng>(rng: &mut R, probs: [f64; 3], up: f64, down: f64) -> (f64, ResizeMode) {
    let u: f64 = rng.random();
    let s = if u < probs[0] {
        rng.random_range(1.0..up)
    } else if u < probs[0] + probs[1] {
        rng.random_range(down..1.0)
    } else {
        1.0
    };
    (s, random_mode(rng))
}

fn random_mode<R: Rng>(rng: &mut R) -> ResizeMode {
    [ResizeMode::Area, ResizeMode::Bilinear, ResizeMode::Bicubic][rng.random_range(0..3)]
}

fn random_regime<R: Rng>(rng: &mut R, mild: bool, cfg: &DegradeConfig) -> RegimeParams {
    let narrow = |r: KernelRanges| {
        if mild {
            KernelRanges {
                sinc_prob: 0.0,
                sigma: (0.2, 1.0),
            }
        } else {
            r
        }
    };
    let (gmax1, pmax1, gmax2, pmax2, qlo) = if mild {
        (3.0, 0.5, 3.0, 0.5, 80.0)
    } else {
        (30.0, 3.0, 25.0, 2.5, 30.0)
    };
    let (mut kernel1, mut kind1) = random_kernel(rng, &narrow(KERNEL1));
    let mut noise1 = random_noise(rng, gmax1, pmax1);
    let q1 = rng.random_range(qlo..95.0);
    let (mut kernel2, mut kind2) = random_kernel(rng, &narrow(KERNEL2));
    if rng.random::<f64>() >= 0.8 {
        (kernel2, kind2) = (Kernel::pulse(), KernelKind::Pulse);
    }
    let mut noise2 = random_noise(rng, gmax2, pmax2);
    let q2 = rng.random_range(qlo..95.0);
    let (mut final_kernel, _) = random_final_sinc(rng, 0.8);
    if mild {
        final_kernel = Kernel::pulse();
    }
    if !cfg.blur {
        (kernel1, kind1) = (Kernel::pulse(), KernelKind::Pulse);
        (kernel2, kind2) = (Kernel::pulse(), KernelKind::Pulse);
        final_kernel = Kernel::pulse();
    }
    if !cfg.noise {
        noise1 = NoiseParams::NONE;
        noise2 = NoiseParams::NONE;
    }
    RegimeParams {
        kernel1,
        kind1,
        noise1,
        q1: q1 as f32,
        kernel2,
        kind2,
        noise2,
        q2: q2 as f32,
        final_kernel,
        mild,
    }
}

/// Draws a plan for an `h × w` HR image (§3.1): K = 1 with `1 − hetero_prob`, else K ∈ {2, 3, 4}
/// with `k_probs`; masks; per-regime parameters (regime 0 mild with `mild_regime_prob` when
/// K ≥ 2); shared resizes (stage 1: up/down/keep p [0.2, 0.7, 0.1], up U(1, 1.5), down
/// U(0.15, 1); stage 2: p [0.3, 0.4, 0.3], U(1, 1.2), U(0.3, 1)); final order p 0.5 each;
/// optional drift and mode-B defocus.
pub fn draw_plan<R: Rng>(rng: &mut R, h: usize, w: usize, cfg: &DegradeConfig) -> Plan {
    let k = if rng.random::<f64>() >= cfg.hetero_prob {
        1
    } else {
        let u: f64 = rng.random::<f64>() * cfg.k_probs.iter().sum::<f64>();
        if u < cfg.k_probs[0] {
            2
        } else if u < cfg.k_probs[0] + cfg.k_probs[1] {
            3
        } else {
            4
        }
    };
    let masks = random_masks(rng, k, h, w, &cfg.masks);
    let k = masks.k;
    let mild0 = k >= 2 && rng.random::<f64>() < cfg.mild_regime_prob;
    let regimes = (0..k)
        .map(|i| random_regime(rng, mild0 && i == 0, cfg))
        .collect();
    let (mut resize1, mut resize2) = (
        random_resize(rng, [0.2, 0.7, 0.1], 1.5, 0.15),
        random_resize(rng, [0.3, 0.4, 0.3], 1.2, 0.3),
    );
    if !cfg.resize {
        resize1.0 = 1.0;
        resize2.0 = 1.0;
    }
    let final_mode = random_mode(rng);
    let order = if rng.random::<f64>() < 0.5 {
        FinalOrder::ResizeSincJpeg
    } else {
        FinalOrder::JpegResizeSinc
    };
    let mut drift = None;
    let mut defocus = None;
    if k >= 2 {
        let (clo, chi) = cfg.masks.cell_px;
        if rng.random::<f64>() < cfg.drift_prob {
            let c = rng.random_range(clo.ln()..=chi.ln()).exp();
            let g = unit_field(smooth_field(rng, h, w, c));
            drift = Some((g, rng.random_range(0.0..=cfg.drift_amp_max) as f32));
        }
        if cfg.blur && rng.random::<f64>() < cfg.defocus_mode_prob {
            let c = rng.random_range(clo.ln()..=chi.ln()).exp();
            let g = unit_field(smooth_field(rng, h, w, c));
            let a = rng.random_range(0.2f32..=3.0);
            let b = rng.random_range(0.2f32..=3.0);
            let (lo, hi) = (a.min(b), a.max(b));
            let gamma = rng.random_range(2.0f32..=6.0);
            let sigma = g
                .iter()
                .map(|&v| lo + (hi - lo) / (1.0 + (-gamma * v).exp()))
                .collect();
            defocus = Some(Defocus {
                sigma_lo: lo,
                sigma_hi: hi,
                sigma,
            });
        }
    }
    Plan {
        masks,
        regimes,
        shared: SharedParams {
            resize1,
            resize2,
            final_mode,
            order,
        },
        drift,
        defocus,
        usm: cfg.usm,
    }
}

/// Scales a field to [−1, 1] by its largest magnitude.
fn unit_field(mut f: Vec<f32>) -> Vec<f32> {
    let m = f.iter().fold(0.0f32, |a, &v| a.max(v.abs())).max(1e-6);
    f.iter_mut().for_each(|v| *v /= m);
    f
}
