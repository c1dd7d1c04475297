//! `savl-train clean-code MODEL.onnx [MORE.onnx …] --data DIR`: measures the degradation code
//! the model gives on clean photos and stores it as `savl.clean_code`, the reference the
//! runtime's `--strength` interpolates from (see `savl::strength`).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use prost::Message;
use tract_onnx::pb;

use crate::degrade::downscale_bicubic_aa;
use crate::image::PlanarImage;

/// Arguments of `savl-train clean-code`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The f32 model whose estimator is measured; the code is written into it and into every
    /// `--also` file (its int8 / f16 siblings).
    pub model: PathBuf,
    /// More files of the same model that get the same code.
    #[arg(long, value_delimiter = ',')]
    pub also: Vec<PathBuf>,
    /// Clean HR photos (plain ÷4 bicubic downscales of them are the clean inputs).
    #[arg(long, default_value = "../shared/data/train")]
    pub data: PathBuf,
    /// Photos used, the first N by name.
    #[arg(long, default_value_t = 24)]
    pub photos: usize,
    /// HR centre crop side (px, a multiple of 4).
    #[arg(long, default_value_t = 512)]
    pub crop: usize,
}

/// The mean `[μ ‖ s]` of `model_path` over the clean LR versions of `photos`.
///
/// # Errors
/// An unreadable photo or model, or a model without μ/severity outputs.
pub fn measure(model_path: &Path, photos: &[PathBuf], crop: usize) -> Result<Vec<f32>> {
    let up = savl::Upscaler::builder()
        .model_path(model_path)
        .precision(savl::Precision::F32)
        .threads(1)
        .build()
        .with_context(|| format!("loading {}", model_path.display()))?;
    let mut sum: Vec<f64> = Vec::new();
    let mut n = 0usize;
    for p in photos {
        let img = PlanarImage::load(p)?;
        let side = crop.min(img.width).min(img.height) / 4 * 4;
        ensure!(side >= 16, "{} is too small", p.display());
        let hr = img.crop((img.width - side) / 2, (img.height - side) / 2, side, side);
        let lr = downscale_bicubic_aa(&hr, 4).to_rgb8();
        let est = up
            .estimate(&lr)
            .with_context(|| format!("{}: estimating", p.display()))?;
        let px = est.width * est.height;
        if sum.is_empty() {
            sum = vec![0.0; est.dim + 1];
        }
        for k in 0..est.dim {
            sum[k] += est.mu[k * px..(k + 1) * px]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
        }
        sum[est.dim] += est.severity.iter().map(|&v| v as f64).sum::<f64>();
        n += px;
    }
    ensure!(n > 0, "no photo measured");
    Ok(sum.iter().map(|s| (s / n as f64) as f32).collect())
}

/// Rewrites `path` with `code` as its `savl.clean_code` (temporary file, then rename).
///
/// # Errors
/// An unreadable or undecodable file, or a failed write.
pub fn write_code(path: &Path, code: &[f32]) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut proto = pb::ModelProto::decode(bytes.as_slice())
        .with_context(|| format!("{} is not an ONNX model", path.display()))?;
    savl::strength::set_clean_code(&mut proto, code);
    let tmp = path.with_extension("onnx.tmp");
    std::fs::write(&tmp, proto.encode_to_vec())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Runs the subcommand.
///
/// # Errors
/// As [`measure`] and [`write_code`].
pub fn run(args: Args) -> Result<()> {
    let mut photos = crate::degrade::sampler::list_images(&args.data)?;
    photos.truncate(args.photos.max(1));
    let code = measure(&args.model, &photos, args.crop)?;
    eprintln!(
        "clean code over {} photos: {}",
        photos.len(),
        code.iter()
            .map(|c| format!("{c:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for p in std::iter::once(&args.model).chain(&args.also) {
        write_code(p, &code)?;
        eprintln!("wrote savl.clean_code into {}", p.display());
    }
    Ok(())
}
