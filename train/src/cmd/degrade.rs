//! `savl-train degrade`: writes degraded LR/HR pairs and their ground-truth maps for a folder of
//! photos, or a contact sheet for one photo (`--preview`).
//!
//! Layout of `--output DIR`: `hr/NAME_KK.png` (the target, USM-sharpened), `lr/NAME_KK.png`
//! (the degraded input, `1/scale` size), `maps/NAME_KK.safetensors` (format in
//! [`crate::degrade::maps_io`]), where `KK` numbers the crops of one photo. Every pair is
//! determined by `(seed, file name, KK)`, so the files are byte-identical across runs and thread
//! counts, and adding photos to the folder does not change the others.

use crate::degrade::maps_io::{maps_bytes, png_bytes, scalars_json, write_atomic, Provenance};
use crate::degrade::sampler::{crop_rgb8, list_images};
use crate::degrade::{degrade, rng_for, DegradeConfig, DegradedPair};
use crate::image::PlanarImage;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Arguments of `savl-train degrade`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Folder of HR photos (png, jpg, jpeg, webp); with `--preview`, one photo.
    #[arg(long)]
    pub input: PathBuf,
    /// Output folder (created if needed); receives `hr/`, `lr/` and `maps/`.
    #[arg(long, required_unless_present = "preview")]
    pub output: Option<PathBuf>,
    /// Downscale factor (the recipe's ×4; ×2 also works).
    #[arg(long, default_value_t = 4)]
    pub scale: usize,
    /// Global seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of random square HR crops (a multiple of the scale). Without it the whole photo is
    /// degraded (its sides trimmed to multiples of the scale).
    #[arg(long)]
    pub crop: Option<usize>,
    /// Pairs per photo.
    #[arg(long, default_value_t = 1)]
    pub per_image: usize,
    /// Write a contact sheet (HR, LR, each map as a heatmap) to this PNG instead of a dataset.
    #[arg(long)]
    pub preview: Option<PathBuf>,
}

/// Runs the subcommand.
///
/// # Errors
/// Missing or empty input folder, no readable photo, bad `--scale`/`--crop`, or a write failure.
/// Unreadable photos are reported by name on stderr and skipped.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(1..=8).contains(&args.scale) {
        bail!(
            "--scale {} is out of range (1..=8; the recipe uses 4 or 2)",
            args.scale
        );
    }
    if let Some(c) = args.crop {
        if c < args.scale || c % args.scale != 0 {
            bail!(
                "--crop {c} must be a positive multiple of --scale {}",
                args.scale
            );
        }
    }
    let cfg = DegradeConfig {
        scale: args.scale,
        ..DegradeConfig::default()
    };
    match &args.preview {
        Some(out) => preview(&args, &cfg, out),
        None => dataset(&args, &cfg),
    }
}

/// FNV-1a of a file name: the per-photo RNG stream, independent of the folder's other files.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The HR input of pair `k` of a photo and its provenance.
fn pick_crop(
    img: &image::RgbImage,
    name: &str,
    k: usize,
    args: &Args,
) -> (PlanarImage, Provenance, u64) {
    let stream = name_hash(name) ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = rng_for(args.seed, stream);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (hr, crop) = match args.crop {
        Some(c) => {
            let x = rng.random_range(0..=w.saturating_sub(c));
            let y = rng.random_range(0..=h.saturating_sub(c));
            (crop_rgb8(img, x, y, c, false), Some((x, y, c)))
        }
        None => {
            let (tw, th) = (w / args.scale * args.scale, h / args.scale * args.scale);
            let full = PlanarImage::from_rgb8(img);
            (full.crop(0, 0, tw, th), None)
        }
    };
    let prov = Provenance {
        source: name.to_string(),
        seed: args.seed,
        stream,
        crop,
        scale: args.scale,
    };
    (hr, prov, rng.random())
}

fn write_pair(
    out: &Path,
    stem: &str,
    pair: &DegradedPair,
    prov: &Provenance,
) -> anyhow::Result<()> {
    let lr = png_bytes(&pair.lr.to_rgb8()).context("encoding LR")?;
    let hr = png_bytes(&pair.hr.to_rgb8()).context("encoding HR")?;
    let maps =
        maps_bytes(&pair.maps, &scalars_json(&pair.info, prov)).context("serialising maps")?;
    write_atomic(&out.join("lr").join(format!("{stem}.png")), &lr)?;
    write_atomic(&out.join("hr").join(format!("{stem}.png")), &hr)?;
    write_atomic(&out.join("maps").join(format!("{stem}.safetensors")), &maps)?;
    Ok(())
}

fn dataset(args: &Args, cfg: &DegradeConfig) -> anyhow::Result<()> {
    let out = args
        .output
        .as_ref()
        .context("--output is required without --preview")?;
    let files = list_images(&args.input)?;
    if files.is_empty() {
        bail!(
            "no image files (png, jpg, jpeg, webp) in {}",
            args.input.display()
        );
    }
    if args.per_image == 0 {
        bail!("--per-image must be at least 1");
    }
    for sub in ["lr", "hr", "maps"] {
        let d = out.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let pb = ProgressBar::new((files.len() * args.per_image) as u64);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pairs  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results: Vec<anyhow::Result<Option<String>>> = files
        .par_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let img = match image::open(path) {
                Ok(i) => i.to_rgb8(),
                Err(e) => {
                    pb.inc(args.per_image as u64);
                    pb.suspend(|| {
                        eprintln!("savl-train degrade: skipping {}: {e}", path.display())
                    });
                    return Ok(Some(format!("{}: {e}", path.display())));
                }
            };
            let stem = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for k in 0..args.per_image {
                let (hr, prov, seed) = pick_crop(&img, &name, k, args);
                let pair = degrade(&hr, cfg, seed);
                write_pair(out, &format!("{stem}_{k:02}"), &pair, &prov)?;
                pb.inc(1);
            }
            Ok(None)
        })
        .collect();
    pb.finish_and_clear();
    let mut skipped = Vec::new();
    for r in results {
        if let Some(s) = r? {
            skipped.push(s);
        }
    }
    let done = files.len() - skipped.len();
    if done == 0 {
        bail!(
            "no readable image in {} ({} unreadable file(s) skipped)",
            args.input.display(),
            skipped.len()
        );
    }
    eprintln!(
        "savl-train degrade: {} pairs from {done} photo(s) written to {}{}",
        done * args.per_image,
        out.display(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; {} unreadable file(s) skipped", skipped.len())
        }
    );
    Ok(())
}

/// Turbo-like colour map (blue → cyan → green → yellow → red) of `t ∈ [0, 1]`.
fn heat(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let stops: [[f32; 3]; 6] = [
        [0.19, 0.07, 0.23],
        [0.16, 0.47, 0.94],
        [0.10, 0.86, 0.62],
        [0.64, 0.99, 0.23],
        [0.98, 0.66, 0.16],
        [0.48, 0.02, 0.01],
    ];
    let f = t * 5.0;
    let i = (f.floor() as usize).min(4);
    let u = f - i as f32;
    std::array::from_fn(|c| ((stops[i][c] * (1.0 - u) + stops[i + 1][c] * u) * 255.0).round() as u8)
}

const REGIME_COLOURS: [[u8; 3]; 4] = [
    [230, 159, 0],
    [86, 180, 233],
    [0, 158, 115],
    [204, 121, 167],
];

/// One `size × size` tile from an LR-resolution map, nearest-upscaled.
fn map_tile(
    lh: usize,
    lw: usize,
    size_h: usize,
    size_w: usize,
    colour: impl Fn(usize) -> [u8; 3],
) -> image::RgbImage {
    image::RgbImage::from_fn(size_w as u32, size_h as u32, |x, y| {
        let ly = (y as usize * lh / size_h).min(lh - 1);
        let lx = (x as usize * lw / size_w).min(lw - 1);
        image::Rgb(colour(ly * lw + lx))
    })
}

fn preview(args: &Args, cfg: &DegradeConfig, out: &Path) -> anyhow::Result<()> {
    let img = image::open(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?
        .to_rgb8();
    let name = args
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let side = args
        .crop
        .unwrap_or_else(|| (w.min(h).min(512) / args.scale * args.scale).max(args.scale));
    let mut rng = rng_for(args.seed, name_hash(&name));
    let (x0, y0) = if args.crop.is_some() {
        (
            rng.random_range(0..=w.saturating_sub(side)),
            rng.random_range(0..=h.saturating_sub(side)),
        )
    } else {
        (w.saturating_sub(side) / 2, h.saturating_sub(side) / 2)
    };
    let hr = crop_rgb8(&img, x0, y0, side, false);
    let pair = degrade(&hr, cfg, rng.random());
    let m = &pair.maps;
    let (lh, lw) = (m.height, m.width);
    let max = |v: &[f32]| v.iter().fold(1e-6f32, |a, &b| a.max(b));
    let (nmax, bmax) = (max(&m.noise_sigma), max(&m.blur_sigma));
    let qcol = |q: &[u8]| {
        let q = q.to_vec();
        move |i: usize| heat((q[i] as f32 - 30.0) / 70.0)
    };
    let tiles: Vec<(String, image::RgbImage)> = vec![
        ("HR (target)".into(), pair.hr.to_rgb8()),
        (
            format!("LR ×{} (nearest)", args.scale),
            map_tile(lh, lw, side, side, |i| {
                let n = lh * lw;
                let q = |c: usize| (pair.lr.data[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8;
                [q(0), q(1), q(2)]
            }),
        ),
        (
            format!("regime (K = {})", pair.info.regimes),
            map_tile(lh, lw, side, side, |i| {
                REGIME_COLOURS[m.regime[i] as usize % 4]
            }),
        ),
        (
            format!("noise_sigma 0..{nmax:.1} /255"),
            map_tile(lh, lw, side, side, |i| heat(m.noise_sigma[i] / nmax)),
        ),
        (
            format!("blur_sigma 0..{bmax:.2} LR px"),
            map_tile(lh, lw, side, side, |i| heat(m.blur_sigma[i] / bmax)),
        ),
        (
            "jpeg_q1 30..100".into(),
            map_tile(lh, lw, side, side, qcol(&m.jpeg_q1)),
        ),
        (
            "jpeg_q2 30..100".into(),
            map_tile(lh, lw, side, side, qcol(&m.jpeg_q2)),
        ),
        (
            "noise_bin 0..4".into(),
            map_tile(lh, lw, side, side, |i| heat(m.noise_bin[i] as f32 / 4.0)),
        ),
    ];
    let gap = 8;
    let cols = 4;
    let rows = tiles.len().div_ceil(cols);
    let mut sheet = image::RgbImage::from_pixel(
        (cols * side + (cols + 1) * gap) as u32,
        (rows * side + (rows + 1) * gap) as u32,
        image::Rgb([255, 255, 255]),
    );
    for (t, (_, tile)) in tiles.iter().enumerate() {
        let (cx, cy) = (
            gap + (t % cols) * (side + gap),
            gap + (t / cols) * (side + gap),
        );
        image::imageops::replace(&mut sheet, tile, cx as i64, cy as i64);
    }
    write_atomic(
        out,
        &png_bytes(&sheet).context("encoding the contact sheet")?,
    )?;
    println!(
        "contact sheet {} ({}×{} crop at ({x0}, {y0}) of {name}, seed {}):",
        out.display(),
        side,
        side,
        args.seed
    );
    for (t, (label, _)) in tiles.iter().enumerate() {
        println!("  row {} col {}: {label}", t / cols + 1, t % cols + 1);
    }
    println!("  heatmaps: dark blue = low → red = high; regimes: orange, sky blue, green, pink");
    Ok(())
}
