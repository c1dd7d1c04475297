//! Images as planar f32 `[3, h, w]` in [0, 1]: loading, calibration crops, synthetic images.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;

use crate::error::{QuantError, Result};

/// A planar RGB image in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Planar {
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `3 × h × w` values.
    pub data: Vec<f32>,
}

impl Planar {
    /// From an 8-bit RGB image.
    pub fn from_rgb(img: &RgbImage) -> Planar {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let data = savl_contract::planar::from_rgb8(img);
        Planar { h, w, data }
    }

    /// To 8-bit RGB: clamp to [0, 1], scale, round.
    pub fn to_rgb(&self) -> RgbImage {
        savl_contract::planar::to_rgb8(&self.data, self.w, self.h)
    }
}

/// Image files (png, jpg, jpeg, webp, bmp) in a directory, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|source| QuantError::Io {
        path: dir.to_path_buf(),
        err: source,
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "png" | "jpg" | "jpeg" | "webp" | "bmp"
                )
            })
        })
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(QuantError::Images {
            dir: dir.to_path_buf(),
            reason: "no images (png, jpg, jpeg, webp, bmp) in this directory".into(),
        });
    }
    Ok(v)
}

/// Decodes an image file to 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let img = image::ImageReader::open(path)
        .map_err(|source| QuantError::Io {
            path: path.to_path_buf(),
            err: source,
        })?
        .with_guessed_format()
        .map_err(|source| QuantError::Io {
            path: path.to_path_buf(),
            err: source,
        })?
        .decode()
        .map_err(|e| QuantError::Image {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(img.to_rgb8())
}

/// How calibration inputs are cut from a directory of photographs.
#[derive(Debug, Clone, Copy)]
pub struct CalibCrops {
    /// Side of the square LR crops (pixels).
    pub crop: usize,
    /// Photographs are first downscaled by this factor (to look like LR inputs); 1: as they are.
    pub downscale: u32,
    /// At most this many images are read.
    pub max_images: usize,
    /// Crops per image (spread over the image).
    pub crops_per_image: usize,
}

impl Default for CalibCrops {
    fn default() -> Self {
        CalibCrops {
            crop: 64,
            downscale: 4,
            max_images: 16,
            crops_per_image: 2,
        }
    }
}

/// Square crops for calibration from the images in `dir` (sorted, the first `max_images`).
pub fn calibration_crops(dir: &Path, cfg: &CalibCrops) -> Result<Vec<Planar>> {
    let files = list_images(dir)?;
    let mut out = vec![];
    for f in files.iter().take(cfg.max_images.max(1)) {
        let mut img = load_rgb(f)?;
        if cfg.downscale > 1 {
            let (w, h) = (img.width() / cfg.downscale, img.height() / cfg.downscale);
            if w == 0 || h == 0 {
                continue;
            }
            img = image::imageops::resize(&img, w, h, FilterType::Triangle);
        }
        let (w, h) = (img.width() as usize, img.height() as usize);
        let c = cfg.crop.min(w).min(h);
        if c == 0 {
            continue;
        }
        let n = cfg.crops_per_image.max(1);
        for k in 0..n {
            // Crop centres spread along the diagonal.
            let t = (k as f64 + 0.5) / n as f64;
            let x0 = ((w - c) as f64 * t) as u32;
            let y0 = ((h - c) as f64 * (1.0 - t)) as u32;
            let crop = image::imageops::crop_imm(&img, x0, y0, c as u32, c as u32).to_image();
            out.push(Planar::from_rgb(&crop));
        }
    }
    if out.is_empty() {
        return Err(QuantError::Images {
            dir: dir.to_path_buf(),
            reason: "no image large enough for a calibration crop".into(),
        });
    }
    Ok(out)
}

/// A deterministic synthetic image: smooth gradients, a few edges and texture (for tests).
pub fn synthetic(h: usize, w: usize, seed: u64) -> Planar {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    let (fx, fy, ph) = (rnd() * 0.4 + 0.05, rnd() * 0.4 + 0.05, rnd() * 6.0);
    let (ex, ey) = (rnd() * w as f32, rnd() * h as f32);
    let mut data = vec![0.0; 3 * h * w];
    for c in 0..3 {
        let base = rnd() * 0.5 + 0.2;
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                let smooth = 0.25 * ((xf * fx + ph + c as f32).sin() * (yf * fy).cos());
                let edge = if xf + 0.5 * yf > ex + 0.5 * ey {
                    0.2
                } else {
                    -0.1
                };
                let v = base + smooth + edge + 0.05 * (rnd() - 0.5);
                data[c * h * w + y * w + x] = v.clamp(0.0, 1.0);
            }
        }
    }
    Planar { h, w, data }
}
