//! Accuracy of a quantized model against its f32 source (and against HR images when given).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;

use crate::budget::Budget;
use crate::error::{QuantError, Result};
use crate::images::{self, Planar};
use crate::runner::Runner;

/// One evaluation image: an LR input and optionally its HR target.
#[derive(Debug, Clone)]
pub struct EvalImage {
    /// File stem.
    pub name: String,
    /// LR input.
    pub lr: Planar,
    /// HR target (×4 the LR size).
    pub hr: Option<RgbImage>,
}

/// Figures for one image.
#[derive(Debug, Clone)]
pub struct ImageFigures {
    /// File stem.
    pub name: String,
    /// PSNR (dB, peak 1) of the quantized `sr` against the f32 `sr` (raw, unclamped).
    pub psnr_vs_f32: f64,
    /// PSNR-Y (dB) of the f32 model against HR (8-bit output, 4 px border shaved).
    pub psnr_y_f32: Option<f64>,
    /// PSNR-Y (dB) of the quantized model against HR.
    pub psnr_y_quant: Option<f64>,
}

/// Figures over a set of images.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per image.
    pub images: Vec<ImageFigures>,
    /// PSNR against f32 over all images (from the pooled MSE).
    pub psnr_vs_f32: f64,
    /// Lowest per-image PSNR against f32.
    pub min_psnr_vs_f32: f64,
    /// Mean PSNR-Y of the f32 model against HR.
    pub mean_psnr_y_f32: Option<f64>,
    /// Mean PSNR-Y of the quantized model against HR.
    pub mean_psnr_y_quant: Option<f64>,
}

impl Report {
    /// PSNR-Y lost against HR (f32 minus quantized), when HR was given.
    pub fn psnr_y_loss(&self) -> Option<f64> {
        Some(self.mean_psnr_y_f32? - self.mean_psnr_y_quant?)
    }

    /// Budget violations (empty when within budget).
    pub fn check(&self, b: &Budget) -> Vec<String> {
        let mut v = vec![];
        if self.psnr_vs_f32 < b.min_psnr_vs_f32 {
            v.push(format!(
                "{}: PSNR vs f32 {:.2} dB < {:.2} dB",
                b.scheme, self.psnr_vs_f32, b.min_psnr_vs_f32
            ));
        }
        if let Some(l) = self.psnr_y_loss() {
            if l > b.max_psnr_y_loss {
                v.push(format!(
                    "{}: PSNR-Y loss vs HR {:.3} dB > {:.3} dB",
                    b.scheme, l, b.max_psnr_y_loss
                ));
            }
        }
        v
    }
}

/// Bicubic ×1/4 (after cropping to a multiple of 4): the LR for an HR image.
pub fn downscale_x4(hr: &RgbImage) -> (RgbImage, RgbImage) {
    let (w, h) = (hr.width() / 4 * 4, hr.height() / 4 * 4);
    let hr = image::imageops::crop_imm(hr, 0, 0, w, h).to_image();
    let lr = image::imageops::resize(&hr, w / 4, h / 4, FilterType::CatmullRom);
    (lr, hr)
}

fn center_crop(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (x, y) = ((img.width() - w) / 2, (img.height() - h) / 2);
    image::imageops::crop_imm(img, x, y, w, h).to_image()
}

/// Evaluation images: LR from `lr_dir` (with HR of the same file stem from `hr_dir`), or, with
/// only `hr_dir`, LR made by bicubic ×1/4 downscaling. `max_lr` crops LR (and HR) to at most
/// that side, at the centre (to bound run time).
pub fn load_eval(
    lr_dir: Option<&Path>,
    hr_dir: Option<&Path>,
    max_lr: Option<u32>,
) -> Result<Vec<EvalImage>> {
    let mut out = vec![];
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let pairs: Vec<(String, RgbImage, Option<RgbImage>)> = match (lr_dir, hr_dir) {
        (Some(lr), hr) => {
            let hr_files = match hr {
                Some(d) => images::list_images(d)?,
                None => vec![],
            };
            let mut v = vec![];
            for f in images::list_images(lr)? {
                let lr_img = images::load_rgb(&f)?;
                let hr_img = match hr_files.iter().find(|h| stem(h) == stem(&f)) {
                    Some(h) => Some(images::load_rgb(h)?),
                    None if hr.is_some() => {
                        return Err(QuantError::Images {
                            dir: hr.unwrap().to_path_buf(),
                            reason: format!("no HR image named like {}", f.display()),
                        })
                    }
                    None => None,
                };
                v.push((stem(&f), lr_img, hr_img));
            }
            v
        }
        (None, Some(hr)) => {
            let mut v = vec![];
            for f in images::list_images(hr)? {
                let (lr, hr) = downscale_x4(&images::load_rgb(&f)?);
                v.push((stem(&f), lr, Some(hr)));
            }
            v
        }
        (None, None) => {
            return Err(QuantError::Images {
                dir: PathBuf::from("."),
                reason: "give --images DIR and/or --hr DIR".into(),
            })
        }
    };
    for (name, mut lr, mut hr) in pairs {
        if let Some(m) = max_lr {
            let (w, h) = (lr.width().min(m), lr.height().min(m));
            lr = center_crop(&lr, w, h);
            hr = hr.map(|hr| {
                let cw = w * 4;
                let ch = h * 4;
                // Same centre as the LR crop, in HR pixels.
                let lx = (hr.width() / 4).saturating_sub(w) / 2 * 4;
                let ly = (hr.height() / 4).saturating_sub(h) / 2 * 4;
                image::imageops::crop_imm(&hr, lx, ly, cw.min(hr.width()), ch.min(hr.height()))
                    .to_image()
            });
        }
        if let Some(h) = &hr {
            if h.width() < lr.width() * 4 || h.height() < lr.height() * 4 {
                return Err(QuantError::Mismatch {
                    what: name,
                    reason: format!(
                        "HR {}×{} is smaller than 4× the LR {}×{}",
                        h.width(),
                        h.height(),
                        lr.width(),
                        lr.height()
                    ),
                });
            }
        }
        out.push(EvalImage {
            name,
            lr: Planar::from_rgb(&lr),
            hr,
        });
    }
    Ok(out)
}

/// Runs both models on every image and compares.
pub fn compare(f32_model: &Runner, quant: &Runner, sr: &str, imgs: &[EvalImage]) -> Result<Report> {
    let mut figures = vec![];
    let (mut se_all, mut n_all) = (0.0f64, 0usize);
    let mut y_f = vec![];
    let mut y_q = vec![];
    for im in imgs {
        let a = f32_model.run_output(&im.lr.data, im.lr.h, im.lr.w, sr)?;
        let b = quant.run_output(&im.lr.data, im.lr.h, im.lr.w, sr)?;
        if a.shape != b.shape {
            return Err(QuantError::Mismatch {
                what: im.name.clone(),
                reason: format!("output shapes differ: {:?} vs {:?}", a.shape, b.shape),
            });
        }
        let p = savl_contract::metrics::psnr_f32(&a.data, &b.data);
        se_all += a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>();
        n_all += a.data.len();
        let (mut pf, mut pq) = (None, None);
        if let Some(hr) = &im.hr {
            let (h, w) = (a.shape[2], a.shape[3]);
            let hr = image::imageops::crop_imm(hr, 0, 0, w as u32, h as u32).to_image();
            let fa = Planar { h, w, data: a.data }.to_rgb();
            let fb = Planar { h, w, data: b.data }.to_rgb();
            let err = |e: savl_contract::metrics::MetricError| QuantError::Mismatch {
                what: im.name.clone(),
                reason: e.to_string(),
            };
            let vf = savl_contract::metrics::psnr_y(&fa, &hr, 4).map_err(err)?;
            let vq = savl_contract::metrics::psnr_y(&fb, &hr, 4).map_err(err)?;
            y_f.push(vf);
            y_q.push(vq);
            (pf, pq) = (Some(vf), Some(vq));
        }
        figures.push(ImageFigures {
            name: im.name.clone(),
            psnr_vs_f32: p,
            psnr_y_f32: pf,
            psnr_y_quant: pq,
        });
    }
    let mse = se_all / n_all.max(1) as f64;
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Ok(Report {
        psnr_vs_f32: if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (1.0 / mse).log10()
        },
        min_psnr_vs_f32: figures
            .iter()
            .map(|f| f.psnr_vs_f32)
            .fold(f64::INFINITY, f64::min),
        mean_psnr_y_f32: mean(&y_f),
        mean_psnr_y_quant: mean(&y_q),
        images: figures,
    })
}
