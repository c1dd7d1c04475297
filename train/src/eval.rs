//! Full-reference evaluation of ×4 SR methods on a folder of HR images, and the side-by-side
//! comparison picture.
//!
//! Protocol ([`EvalSet::load`]): each HR image is read as RGB (greyscale expanded), cropped at
//! the top-left to a multiple of 4, and degraded to LR by one of three [`DegradeMode`]s:
//!
//! * `hetero`: the project pipeline ([`crate::degrade::degrade`]) with every image
//!   heterogeneous (`hetero_prob = 1`, K = 2..4 regimes) and **without USM sharpening**, so the
//!   LR is made from the original HR and the score is measured against the original HR (the
//!   training target is the sharpened HR; scoring against that would reward over-sharpening).
//! * `homo`: the same with `hetero_prob = 0` (K = 1, the Real-ESRGAN second-order pipeline).
//! * `bicubic`: antialiased bicubic ÷4 ([`crate::degrade::downscale_bicubic_aa`]) only.
//!
//! The seed of image `NAME` is `seed ⊕ FNV-1a(NAME)`, so adding images changes no other LR.
//! Every method's output is clipped and rounded to 8 bit, then scored against the HR with
//! PSNR-Y and SSIM-Y ([`savl_contract::metrics`], BT.601 studio range, 4-px border shaved) and
//! SSIMULACRA 2 (the `ssimulacra2` crate, sRGB, on the same shaved crop; higher is better,
//! 100 = identical).
//!
//! Methods ([`Method`]): bicubic upscaling (image-rs `CatmullRom`, the a = −0.5 cubic, no
//! antialiasing needed when enlarging), any 3-channel ONNX model run through the `savl` runtime
//! ([`savl::Upscaler`], the precision of the file), and SRMD run through tract directly with its
//! documented 19-channel input (RGB, the 15 constant kernel-code channels of
//! `shared/peers/README.md`, a constant noise-level map σ/255), because the runtime feeds RGB only.

pub mod font;
pub mod niqe;

use crate::degrade::{degrade, downscale_bicubic_aa, DegradeConfig};
use crate::image::PlanarImage;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use savl_contract::metrics::{psnr_y, ssim_y};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

/// How the LR inputs are made from the HR images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DegradeMode {
    /// The project's heterogeneous pipeline, K ≥ 2 regimes, no USM.
    Hetero,
    /// The pipeline with K = 1 (homogeneous Real-ESRGAN), no USM.
    Homo,
    /// Antialiased bicubic ÷4 only.
    Bicubic,
}

impl DegradeMode {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            DegradeMode::Hetero => "hetero",
            DegradeMode::Homo => "homo",
            DegradeMode::Bicubic => "bicubic",
        }
    }
}

/// FNV-1a of an image name: its seed stream.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// LR of `hr` (sides multiples of 4) under `mode`, 8-bit.
pub fn make_lr(hr: &RgbImage, mode: DegradeMode, seed: u64) -> RgbImage {
    make_lr_with_maps(hr, mode, seed).0
}

/// [`make_lr`] and the oracle's gate input from the ground-truth maps of that degradation
/// ([`crate::train::oracle_guide`], `[4, h, w]`); for `bicubic`, the maps of the pipeline's
/// clean pairs (no noise, no JPEG).
pub fn make_lr_with_maps(hr: &RgbImage, mode: DegradeMode, seed: u64) -> (RgbImage, Vec<f32>) {
    let p = PlanarImage::from_rgb8(hr);
    let cfg = DegradeConfig {
        hetero_prob: if mode == DegradeMode::Hetero {
            1.0
        } else {
            0.0
        },
        usm: false,
        ..DegradeConfig::default()
    };
    match mode {
        DegradeMode::Bicubic => {
            let maps = degrade(&p, &cfg.clean(), seed).maps;
            (
                downscale_bicubic_aa(&p, 4).to_rgb8(),
                crate::train::oracle_guide(&maps),
            )
        }
        DegradeMode::Hetero | DegradeMode::Homo => {
            let pair = degrade(&p, &cfg, seed);
            (pair.lr.to_rgb8(), crate::train::oracle_guide(&pair.maps))
        }
    }
}

/// Top-left crop to multiples of `m`.
pub fn modcrop(img: &RgbImage, m: u32) -> RgbImage {
    let (w, h) = (img.width() / m * m, img.height() / m * m);
    image::imageops::crop_imm(img, 0, 0, w, h).to_image()
}

/// One evaluation image.
#[derive(Clone, Debug)]
pub struct EvalImage {
    /// File stem.
    pub name: String,
    /// Ground truth, modcropped to a multiple of 4.
    pub hr: RgbImage,
    /// Degraded input, a quarter of the HR size.
    pub lr: RgbImage,
    /// The oracle's gate input from the degradation's ground-truth maps, `[4, h, w]`.
    pub guide: Vec<f32>,
}

/// A set of evaluation images with their LR inputs.
#[derive(Clone, Debug)]
pub struct EvalSet {
    /// Images, sorted by file name.
    pub images: Vec<EvalImage>,
    /// How the LR was made.
    pub mode: DegradeMode,
    /// Global seed.
    pub seed: u64,
}

impl EvalSet {
    /// Loads every image of `dir` (png, jpg, jpeg, webp; sorted) and degrades it.
    ///
    /// # Errors
    /// Missing folder, no image, or an undecodable file.
    pub fn load(dir: &Path, mode: DegradeMode, seed: u64) -> Result<Self> {
        let files = crate::degrade::sampler::list_images(dir)?;
        let paths: Vec<PathBuf> = files;
        if paths.is_empty() {
            bail!("no images in {}", dir.display());
        }
        let mut images = Vec::new();
        for p in &paths {
            images.push(Self::load_one(p, mode, seed)?);
        }
        Ok(Self { images, mode, seed })
    }

    /// One image: read, modcrop, degrade with `seed ⊕ FNV-1a(stem)`.
    ///
    /// # Errors
    /// Undecodable file or an image under 16×16.
    pub fn load_one(p: &Path, mode: DegradeMode, seed: u64) -> Result<EvalImage> {
        let img = image::open(p)
            .with_context(|| format!("reading {}", p.display()))?
            .to_rgb8();
        let hr = modcrop(&img, 4);
        if hr.width() < 16 || hr.height() < 16 {
            bail!("{} is smaller than 16×16", p.display());
        }
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (lr, guide) = make_lr_with_maps(&hr, mode, seed ^ name_hash(&name));
        Ok(EvalImage {
            name,
            hr,
            lr,
            guide,
        })
    }
}

/// SRMD's 15-d kernel code (`nihui/srmd-ncnn-vulkan`, `shared/peers/README.md`), digits as
/// published there.
#[allow(clippy::excessive_precision)]
pub const SRMD_KERNEL_CODE: [f32; 15] = [
    -1.12360956e-08,
    -1.36899159e-08,
    1.85637958e-02,
    2.86066886e-08,
    3.35292965e-02,
    8.37272935e-08,
    -2.54424009e-07,
    -3.16234976e-02,
    -1.35169253e-02,
    -1.10466090e-08,
    3.84753793e-02,
    3.79465739e-08,
    -2.44916752e-01,
    -8.02213490e-01,
    -5.40549755e-01,
];

/// An SR method under evaluation.
pub enum Method {
    /// image-rs CatmullRom (a = −0.5 cubic) ×4.
    Bicubic,
    /// An ONNX model with 3-channel input through the `savl` runtime.
    Runtime {
        /// Row label.
        label: String,
        /// The loaded model.
        upscaler: Box<savl::Upscaler>,
    },
    /// A training checkpoint run in candle (any variant; the oracle reads the image's
    /// ground-truth maps).
    Checkpoint {
        /// Row label.
        label: String,
        /// The model (EMA weights).
        model: Box<crate::nn::Savl>,
    },
    /// SRMD through tract, 19-channel input, constant noise level `sigma` (0..255 scale).
    Srmd {
        /// The parsed (not yet sized) model.
        model: Box<InferenceModel>,
        /// Noise level σ on the 0..255 scale.
        sigma: f32,
    },
}

impl Method {
    /// Loads a 3-channel model through the runtime with one worker thread per `threads`.
    ///
    /// # Errors
    /// When the runtime cannot load the file.
    pub fn runtime(label: &str, path: &Path, threads: usize) -> Result<Self> {
        let upscaler = savl::Upscaler::builder()
            .model_path(path)
            .threads(threads)
            .build()
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Method::Runtime {
            label: label.to_string(),
            upscaler: Box::new(upscaler),
        })
    }

    /// Parses SRMD's ONNX file.
    ///
    /// # Errors
    /// When tract cannot parse the file.
    pub fn srmd(path: &Path, sigma: f32) -> Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Method::Srmd {
            model: Box::new(model),
            sigma,
        })
    }

    /// Row label.
    pub fn label(&self) -> String {
        match self {
            Method::Bicubic => "bicubic (CatmullRom)".into(),
            Method::Runtime { label, upscaler } => {
                format!("{label} ({})", upscaler.precision().as_str())
            }
            Method::Srmd { sigma, .. } => format!("srmd_x4 σ={sigma} (tract direct, 19-ch)"),
            Method::Checkpoint { label, model } => {
                format!("{label} (candle, {})", model.cfg.ablation)
            }
        }
    }

    /// A short label for picture panels.
    pub fn short_label(&self) -> String {
        match self {
            Method::Bicubic => "bicubic".into(),
            Method::Runtime { label, .. } | Method::Checkpoint { label, .. } => label.clone(),
            Method::Srmd { sigma, .. } => format!("srmd noise {sigma}"),
        }
    }

    /// Whether this is an f16 model (slow software kernel on x86).
    pub fn is_f16(&self) -> bool {
        matches!(self, Method::Runtime { upscaler, .. } if upscaler.precision() == savl::Precision::F16)
    }

    /// Upscales `lr` ×4 to 8 bit; returns the image and the wall time of the upscaling.
    ///
    /// # Errors
    /// Runtime failures.
    pub fn upscale(&self, lr: &RgbImage) -> Result<(RgbImage, Duration)> {
        self.upscale_guided(lr, None)
    }

    /// [`upscale`](Self::upscale) with the ground-truth maps the oracle reads (`[4, h, w]`,
    /// [`EvalImage::guide`]); other methods ignore them.
    ///
    /// # Errors
    /// Runtime failures, or an oracle checkpoint without maps.
    pub fn upscale_guided(
        &self,
        lr: &RgbImage,
        guide: Option<&[f32]>,
    ) -> Result<(RgbImage, Duration)> {
        let t = Instant::now();
        let out = match self {
            Method::Bicubic => image::imageops::resize(
                lr,
                lr.width() * 4,
                lr.height() * 4,
                image::imageops::FilterType::CatmullRom,
            ),
            Method::Runtime { upscaler, .. } => upscaler.upscale(lr)?,
            Method::Srmd { model, sigma } => srmd_upscale(model, lr, *sigma)?,
            Method::Checkpoint { model, .. } => checkpoint_upscale(model, lr, guide)?,
        };
        Ok((out, t.elapsed()))
    }
}

/// A candle model on one whole image, output rounded to 8 bit.
fn checkpoint_upscale(
    model: &crate::nn::Savl,
    lr: &RgbImage,
    guide: Option<&[f32]>,
) -> Result<RgbImage> {
    use candle_core::{Device, Tensor as CTensor};
    let (w, h) = (lr.width() as usize, lr.height() as usize);
    let y = CTensor::from_vec(PlanarImage::from_rgb8(lr).data, (1, 3, h, w), &Device::Cpu)?;
    let sr = if model.cfg.ablation == crate::nn::Ablation::Oracle {
        let g = guide.context("the oracle needs the image's ground-truth maps")?;
        let maps = CTensor::from_slice(g, (1, crate::nn::ORACLE_MAPS, h, w), &Device::Cpu)?;
        model.forward_oracle(&y, &maps)?
    } else {
        model.forward(&y)?.sr
    };
    let t = sr.flatten_all()?.to_vec1::<f32>()?;
    Ok(planar_to_rgb8(&t, 4 * w, 4 * h))
}

use savl_contract::planar::to_rgb8 as planar_to_rgb8;

/// SRMD on one image: builds the 19-channel input and runs the model sized to it.
fn srmd_upscale(model: &InferenceModel, lr: &RgbImage, sigma: f32) -> Result<RgbImage> {
    let (w, h) = (lr.width() as usize, lr.height() as usize);
    let n = w * h;
    let mut data = vec![0f32; 19 * n];
    for (i, p) in lr.pixels().enumerate() {
        for c in 0..3 {
            data[c * n + i] = p.0[c] as f32 / 255.0;
        }
    }
    for (k, v) in SRMD_KERNEL_CODE.iter().enumerate() {
        data[(3 + k) * n..(4 + k) * n].fill(*v);
    }
    data[18 * n..].fill(sigma / 255.0);
    let input = tract_ndarray::Array4::from_shape_vec((1, 19, h, w), data)?;
    let plan = model
        .clone()
        .with_input_fact(0, f32::fact([1, 19, h, w]).into())?
        .into_optimized()?
        .into_runnable()?;
    let out = plan.run(tvec!(Tensor::from(input).into()))?;
    let t = out[0].to_plain_array_view::<f32>()?;
    let sh = t.shape();
    if sh != [1, 3, 4 * h, 4 * w] {
        bail!("SRMD output shape {sh:?}");
    }
    let t = t.as_slice().context("SRMD output not contiguous")?;
    Ok(planar_to_rgb8(t, 4 * w, 4 * h))
}

/// SSIMULACRA 2 of `dist` against `reference` (8-bit sRGB), on the crop without `shave` px.
///
/// # Errors
/// Size mismatch or an image under 8×8 after the crop.
pub fn ssimulacra2(reference: &RgbImage, dist: &RgbImage, shave: u32) -> Result<f64> {
    use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic};
    if reference.dimensions() != dist.dimensions() {
        bail!("ssimulacra2: sizes differ");
    }
    let (w, h) = reference.dimensions();
    if w <= 2 * shave + 8 || h <= 2 * shave + 8 {
        bail!("ssimulacra2: image too small");
    }
    let conv = |img: &RgbImage| -> Result<Rgb> {
        let (cw, ch) = (w - 2 * shave, h - 2 * shave);
        let mut v = Vec::with_capacity((cw * ch) as usize);
        for y in shave..h - shave {
            for x in shave..w - shave {
                let p = img.get_pixel(x, y).0;
                v.push([
                    p[0] as f32 / 255.0,
                    p[1] as f32 / 255.0,
                    p[2] as f32 / 255.0,
                ]);
            }
        }
        Rgb::new(
            v,
            cw as usize,
            ch as usize,
            TransferCharacteristic::SRGB,
            ColorPrimaries::BT709,
        )
        .map_err(|e| anyhow::anyhow!("ssimulacra2 input: {e:?}"))
    };
    ssimulacra2::compute_frame_ssimulacra2(conv(reference)?, conv(dist)?)
        .map_err(|e| anyhow::anyhow!("ssimulacra2: {e}"))
}

/// Scores of one output against its HR.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// PSNR on Y, dB, 4-px border shaved.
    pub psnr_y: f64,
    /// SSIM on Y, 4-px border shaved.
    pub ssim_y: f64,
    /// SSIMULACRA 2 on the same crop.
    pub ssimulacra2: f64,
}

/// Border shaved by every metric (the scale).
pub const SHAVE: u32 = 4;

/// PSNR-Y, SSIM-Y and SSIMULACRA 2 of `sr` against `hr`.
///
/// # Errors
/// Size mismatch or too small images.
pub fn score(sr: &RgbImage, hr: &RgbImage) -> Result<Scores> {
    Ok(Scores {
        psnr_y: psnr_y(sr, hr, SHAVE)?,
        ssim_y: ssim_y(sr, hr, SHAVE)?,
        ssimulacra2: ssimulacra2(hr, sr, SHAVE)?,
    })
}

/// Mean scores of one method over a set.
#[derive(Clone, Debug)]
pub struct EvalRow {
    /// Method label.
    pub method: String,
    /// Means over the images.
    pub mean: Scores,
    /// Mean wall time per image.
    pub ms_per_image: f64,
    /// Images scored.
    pub images: usize,
    /// Per-image `(name, scores)`.
    pub per_image: Vec<(String, Scores)>,
}

/// Runs `method` on the first `limit` images of `set` (all when `None`).
///
/// # Errors
/// A failing upscale or metric.
pub fn evaluate(method: &Method, set: &EvalSet, limit: Option<usize>) -> Result<EvalRow> {
    let n = limit.unwrap_or(usize::MAX).min(set.images.len());
    let mut per_image = Vec::with_capacity(n);
    let mut total = Duration::ZERO;
    for im in &set.images[..n] {
        let (sr, t) = method.upscale_guided(&im.lr, Some(&im.guide))?;
        total += t;
        per_image.push((im.name.clone(), score(&sr, &im.hr)?));
    }
    let k = per_image.len().max(1) as f64;
    let mean = Scores {
        psnr_y: per_image.iter().map(|s| s.1.psnr_y).sum::<f64>() / k,
        ssim_y: per_image.iter().map(|s| s.1.ssim_y).sum::<f64>() / k,
        ssimulacra2: per_image.iter().map(|s| s.1.ssimulacra2).sum::<f64>() / k,
    };
    Ok(EvalRow {
        method: method.label(),
        mean,
        ms_per_image: total.as_secs_f64() * 1000.0 / k,
        images: per_image.len(),
        per_image,
    })
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[EvalRow]) -> String {
    let mut s = String::from(
        "| method | PSNR-Y (dB) ↑ | SSIM-Y ↑ | SSIMULACRA2 ↑ | ms / image | images |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.2} | {:.4} | {:.2} | {:.0} | {} |\n",
            r.method, r.mean.psnr_y, r.mean.ssim_y, r.mean.ssimulacra2, r.ms_per_image, r.images
        ));
    }
    s
}

/// One column of a comparison sheet: a label and the crop to show.
pub struct Panel {
    /// Label drawn above the crop.
    pub label: String,
    /// The crop (every panel of a row has the same size).
    pub image: RgbImage,
}

/// Panels in a grid (one row per image), each with its label on a dark strip above it.
pub fn compare_sheet(rows: &[Vec<Panel>], zoom: u32) -> RgbImage {
    const STRIP: u32 = 12;
    const GAP: u32 = 4;
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0) as u32;
    let pw = rows
        .iter()
        .flat_map(|r| r.iter().map(|p| p.image.width()))
        .max()
        .unwrap_or(0)
        * zoom;
    let heights: Vec<u32> = rows
        .iter()
        .map(|r| r.iter().map(|p| p.image.height()).max().unwrap_or(0) * zoom + STRIP)
        .collect();
    let (w, h) = (
        cols * (pw + GAP) + GAP,
        heights.iter().map(|h| h + GAP).sum::<u32>() + GAP,
    );
    let mut out = RgbImage::from_pixel(w.max(1), h.max(1), image::Rgb([24, 24, 24]));
    let mut y0 = GAP;
    for (r, row) in rows.iter().enumerate() {
        for (c, p) in row.iter().enumerate() {
            let x0 = GAP + c as u32 * (pw + GAP);
            let scaled = image::imageops::resize(
                &p.image,
                p.image.width() * zoom,
                p.image.height() * zoom,
                image::imageops::FilterType::Nearest,
            );
            image::imageops::replace(&mut out, &scaled, x0 as i64, (y0 + STRIP) as i64);
            let max_chars = (pw / 6).max(1) as usize;
            let text: String = p.label.chars().take(max_chars).collect();
            font::draw_text(&mut out, x0 + 1, y0 + 2, &text, 1, [240, 240, 240]);
        }
        y0 += heights[r] + GAP;
    }
    out
}

/// Nearest-neighbour ×`s` enlargement (to show an LR crop at HR size).
pub fn nearest_up(img: &RgbImage, s: u32) -> RgbImage {
    image::imageops::resize(
        img,
        img.width() * s,
        img.height() * s,
        image::imageops::FilterType::Nearest,
    )
}
