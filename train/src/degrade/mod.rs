//! Heterogeneous real-world degradation synthesis (Real-ESRGAN second-order pipeline with
//! spatially varying regimes) and per-pixel ground-truth maps.
//!
//! Recipe and parameters: `shared/notes/degradations.md` (§1 Real-ESRGAN, §3 heterogeneous
//! variant). One HR crop goes through: USM sharpening of the GT → per-regime blur (or mode-B
//! continuous defocus) → random resize → spatially varying Gaussian/Poisson noise → per-MCU JPEG
//! → per-regime second blur → random resize → noise → final stage (resize + sinc + JPEG in one of
//! the two orders) → 8-bit quantisation. Between 1 and 4 regimes are blended by smooth random
//! masks; every random choice is drawn up front into a [`Plan`] ([`draw_plan`]) and executed by
//! [`execute`], so tests can pin any parameter.
//!
//! ```
//! use savl_train::degrade::{degrade, DegradeConfig};
//! use savl_train::PlanarImage;
//! let hr = PlanarImage::from_vec(3, 32, 32, vec![0.5; 3 * 32 * 32]);
//! let pair = degrade(&hr, &DegradeConfig::default(), 7);
//! assert_eq!((pair.lr.height, pair.lr.width), (8, 8));
//! assert_eq!(pair.maps.noise_sigma.len(), 64);
//! ```
//!
//! Module map: [`kernels`] (kernel formulas), [`filter`] (convolution), [`resize`] (PyTorch
//! resampling, antialiased bicubic), [`usm`], [`masks`], [`noise`], [`jpeg`] (DiffJPEG port),
//! [`plan`] (random draws), [`pipeline`] (execution and maps), [`sampler`] (the trainer's
//! on-the-fly pairs), [`maps_io`] (the file format of the maps).
//!
//! # Trainer path
//!
//! [`PairSampler::from_dir`] keeps the photos as 8-bit RGB; [`PairSampler::sample`] is
//! deterministic in `(seed, index)` (ChaCha8 seeded from a hash of both, [`rng_for`]) and
//! [`PairSampler::batch`] runs samples in parallel with rayon, giving the same pairs whatever the
//! thread count. The crop is degraded as is (no margin): the filters use reflect-101 borders.
//! [`downscale_bicubic_aa`] gives the clean content code z of an HR crop.
//!
//! # Command line
//!
//! `savl-train degrade --input DIR --output DIR --scale 4 --seed N [--crop 256 --per-image K]`
//! writes `hr/`, `lr/` (PNG) and `maps/` (safetensors, format in [`maps_io`]);
//! `savl-train degrade --preview OUT.png --input IMG --seed N` writes a contact sheet.
//!
//! Throughput and what it cost to get there: `docs/PERF.md` ("Degradation synthesis").
//!
//! # Deviations from the recipe (deliberate, documented)
//!
//! - Every random choice is drawn per sample (the reference draws the resizes, noise type,
//!   second-blur flag and final order per batch, §1.7).
//! - Resize coordinates use `in/out` as the scale (PyTorch uses `1/scale_factor` when given one;
//!   the two differ by the rounding of the output size).
//! - Blur kernels are trimmed of outer rings worth ≤ 0.125/255 and, when cheaper, applied as
//!   rank-1 terms within 0.25/255 ([`filter::SEPARABLE_TOL`]); outputs move by < 0.4/255.
//! - Drift modulates the noise amplitudes only (not the blur width).
//! - A mild regime also forbids sinc kernels and uses the pulse as its final kernel.
//! - `blur_sigma` counts the final sinc (clamped at 0) as a third term; resampling filters are not
//!   counted.
//! - The exact-label probe generator (§3.8) is [`probe`] (used by `savl-train probe`).

pub mod filter;
pub mod jpeg;
pub mod kernels;
pub mod maps_io;
pub mod masks;
pub mod noise;
pub mod pipeline;
pub mod plan;
pub mod probe;
pub mod resize;
pub mod sampler;
pub mod usm;

use crate::image::PlanarImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use masks::MaskConfig;
pub use pipeline::execute;
pub use plan::{draw_plan, FinalOrder, Plan};
pub use resize::{downscale_bicubic_aa, ResizeMode};
pub use sampler::{DegradeError, PairSampler, SkippedFile};

/// Ground truth of what was done to every LR pixel, at LR resolution (`height × width`,
/// row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct DegradationMaps {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Effective noise std at LR, in units of 1/255: the noise-only field pushed through the
    /// linear stages (blur, resize, sinc; no clip or JPEG), RMS over a 7×7 window. To filter one
    /// plane instead of three, the field carries channel `(x + y) mod 3` at each pixel, so every
    /// window mixes the 3 channels equally (same expectation as the 3-channel RMS).
    pub noise_sigma: Vec<f32>,
    /// Combined blur width in LR pixels:
    /// `sqrt((σ₁/s)² + (σ₂·r₁/s)² + σ_f²)` with σ₁ the stage-1 kernel's equivalent std (HR px),
    /// σ₂ the stage-2 one (grid-1 px, `r₁` HR px per grid-1 px), σ_f the final sinc's (LR px);
    /// each σ² is blended over the masks. Resampling filters are not counted.
    pub blur_sigma: Vec<f32>,
    /// Per-pixel quality of the first JPEG step (100 when JPEG is off).
    pub jpeg_q1: Vec<u8>,
    /// Per-pixel quality of the second JPEG step (100 when JPEG is off).
    pub jpeg_q2: Vec<u8>,
    /// Index of the dominant regime.
    pub regime: Vec<u8>,
    /// Quintile bin (0..=4) of `noise_sigma` against [`DegradeConfig::noise_bin_edges`].
    pub noise_bin: Vec<u8>,
    /// Fraction of stage-1 noise that is Gaussian (`m_G`, the rest Poisson).
    pub gauss_frac: Vec<f32>,
    /// Fraction of stage-1 noise that is grey (`γ`).
    pub gray_frac: Vec<f32>,
}

/// Scalars describing one degradation (shared across regimes).
#[derive(Clone, Debug, PartialEq)]
pub struct DegradationInfo {
    /// Number of regimes K.
    pub regimes: usize,
    /// GT sharpened.
    pub usm: bool,
    /// First resize factor (relative to HR) and mode.
    pub resize1: (f64, ResizeMode),
    /// Second resize factor (relative to LR) and mode.
    pub resize2: (f64, ResizeMode),
    /// Mode of the final resize to LR.
    pub final_mode: ResizeMode,
    /// Final-stage order.
    pub order: FinalOrder,
    /// Stage 1 used mode-B continuous defocus.
    pub defocus: bool,
    /// Drift amplitude `a`, when drift was on.
    pub drift: Option<f32>,
}

/// One training pair: the degraded LR input, the HR target, and the maps.
#[derive(Clone, Debug)]
pub struct DegradedPair {
    /// Degraded input, 3 planes, `hr / scale` in each dimension, quantised to 8 bit.
    pub lr: PlanarImage,
    /// Target (the USM-sharpened ground truth when sharpening is on), 3 planes.
    pub hr: PlanarImage,
    /// Ground-truth maps at LR resolution.
    pub maps: DegradationMaps,
    /// Scalars of the degradation.
    pub info: DegradationInfo,
}

/// Knobs of the synthesis (§3.11). `Default` is the recipe at ×4.
#[derive(Clone, Debug, PartialEq)]
pub struct DegradeConfig {
    /// Downscale factor (4 or 2); HR sides must be multiples of it.
    pub scale: usize,
    /// Probability of a heterogeneous image (K ≥ 2). Default 0.7.
    pub hetero_prob: f64,
    /// Relative probabilities of K = 2, 3, 4. Default 0.5, 0.3, 0.2.
    pub k_probs: [f64; 3],
    /// Mask generator knobs (cell 32–160 px log-uniform, edges U(1, 16) px, hard p 0.25,
    /// min region 8 %).
    pub masks: MaskConfig,
    /// Probability that regime 0 is mild. Default 0.5.
    pub mild_regime_prob: f64,
    /// Probability of intra-regime drift of the noise amplitude. Default 0.3.
    pub drift_prob: f64,
    /// Drift amplitude upper bound (a ~ U(0, this)). Default 0.5.
    pub drift_amp_max: f64,
    /// Probability of mode-B continuous defocus in stage 1 (heterogeneous images). Default 0.3.
    pub defocus_mode_prob: f64,
    /// Sharpen the GT with USM before degrading (and return it as the target). Default true.
    pub usm: bool,
    /// Blur kernels on (off: every kernel is the pulse). Default true.
    pub blur: bool,
    /// Random resizes on (off: both factors 1; the final resize to LR stays). Default true.
    pub resize: bool,
    /// Noise on. Default true.
    pub noise: bool,
    /// JPEG on. Default true.
    pub jpeg: bool,
    /// Edges (in 1/255) of the 5 `noise_bin` classes: the quintiles of `noise_sigma` over all LR
    /// pixels of 1000 pairs of 256 crops at ×4 ([`PairSampler::noise_quintiles`], seed
    /// `0xCA11B`, the 79 photos of `shared/data/train`), so each class holds ~20 % of pixels.
    pub noise_bin_edges: [f32; 4],
    /// Probability that a [`PairSampler`] pair is clean: no blur, no random resizes, no noise,
    /// no JPEG, only the final resize to LR (so the model also sees photos that need upscaling
    /// and nothing else). Default 0 (the recipe); the draw is made after all of a pair's other
    /// draws, so with 0 the pairs are identical to those of a config without it.
    pub clean_prob: f64,
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self {
            scale: 4,
            hetero_prob: 0.7,
            k_probs: [0.5, 0.3, 0.2],
            masks: MaskConfig::default(),
            mild_regime_prob: 0.5,
            drift_prob: 0.3,
            drift_amp_max: 0.5,
            defocus_mode_prob: 0.3,
            usm: true,
            blur: true,
            resize: true,
            noise: true,
            jpeg: true,
            noise_bin_edges: [3.46, 5.9, 8.78, 12.53],
            clean_prob: 0.0,
        }
    }
}

impl DegradeConfig {
    /// This config with every degradation off except the final resize to LR (one regime).
    pub fn clean(&self) -> Self {
        Self {
            hetero_prob: 0.0,
            blur: false,
            resize: false,
            noise: false,
            jpeg: false,
            ..self.clone()
        }
    }
}

/// A ChaCha8 generator seeded from a hash of `(seed, stream)`; identical for identical inputs
/// on any thread.
pub fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let a = splitmix(seed);
    let b = splitmix(a ^ splitmix(stream.wrapping_add(0x5EED)));
    let mut key = [0u8; 32];
    for (i, v) in [a, b, splitmix(b), splitmix(a.wrapping_add(b))]
        .iter()
        .enumerate()
    {
        key[i * 8..(i + 1) * 8].copy_from_slice(&v.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The whole pipeline on one HR crop: draws a [`Plan`] and executes it, all from `seed`.
///
/// # Panics
/// If `hr` is not 3-plane or its sides are not positive multiples of `cfg.scale`.
pub fn degrade(hr: &PlanarImage, cfg: &DegradeConfig, seed: u64) -> DegradedPair {
    let mut rng = rng_for(seed, 0);
    let plan = draw_plan(&mut rng, hr.height, hr.width, cfg);
    execute(hr, &plan, cfg, &mut rng)
}

/// [`degrade`] for a crop of an already USM-sharpened photo (see [`PairSampler`]): the same
/// random draws from `seed`, without sharpening again; `hr_sharp` is the returned target.
///
/// # Panics
/// As [`degrade`].
pub fn degrade_presharpened(
    hr_sharp: &PlanarImage,
    cfg: &DegradeConfig,
    seed: u64,
) -> DegradedPair {
    let mut rng = rng_for(seed, 0);
    let plan = draw_plan(&mut rng, hr_sharp.height, hr_sharp.width, cfg);
    pipeline::execute_presharpened(hr_sharp, &plan, cfg, &mut rng)
}
