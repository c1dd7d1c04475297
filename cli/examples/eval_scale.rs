//! PSNR-Y of savl's output at factors below the model's (×2, ×3 from a ×4 model), for the
//! downscale filters `savl upscale --scale` could use, next to plain bicubic; and PSNR of the
//! alpha-plane upscaling methods. Tables for docs/EVAL.md.
//!
//! ```sh
//! cargo run -p savl-cli --example eval_scale -- scale ../shared/data/eval/set5 ../shared/data/eval/set14 \
//!     [--model M.onnx] [--threads 2] [--matched]
//! cargo run -p savl-cli --example eval_scale -- alpha ../shared/data/eval/set5 ../shared/data/eval/set14
//! ```
//!
//! `scale`: for each HR picture (cropped to a multiple of the factor s), LR = antialiased
//! Catmull-Rom bicubic ×1/s of HR (`image`'s resize, the kernel of PIL's BICUBIC). The model
//! upscales LR ×4; that output is resized to the HR size with Lanczos3, Catmull-Rom or triangle
//! and compared with HR (PSNR on BT.601 studio-range Y, `s` px border shaved). "bicubic" is LR
//! resized to HR with Catmull-Rom.
//!
//! With `--matched` (ground truth matched to the output by downscaling): LR = HR ÷ 4 (the
//! model's own factor; HR cropped to a multiple of 12), ground truth = HR resized (antialiased
//! Catmull-Rom) to s × the LR size; the rest as above.
//!
//! `alpha`: alpha planes (a picture's own alpha channel; for pictures without one, the hard-edged
//! mask HR luma ≥ 128 → 1, else 0) are reduced ×1/4 the same way and
//! upscaled ×4 back by each `savl::photo::AlphaMethod`; PSNR of the plane (×255) against the
//! mask, and the share of output pixels that are neither clear (≤ 0.05) nor opaque (≥ 0.95),
//! next to the plane's own. Every method's output goes through `photo::pin_flat_alpha` as in
//! `savl upscale`.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;
use savl::photo::{self, AlphaMethod};

fn pictures(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in dirs {
        if d.is_file() {
            v.push(d.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        found.sort();
        v.extend(found);
    }
    v
}

fn crop(img: &RgbImage, m: u32) -> RgbImage {
    let (w, h) = (img.width() / m * m, img.height() / m * m);
    image::imageops::crop_imm(img, 0, 0, w, h).to_image()
}

fn set_of(p: &Path) -> String {
    p.parent()
        .and_then(|d| d.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The fraction of an alpha plane's values strictly between 0.05 and 0.95.
fn soft_fraction(alpha: &[f32]) -> f64 {
    alpha.iter().filter(|&&a| a > 0.05 && a < 0.95).count() as f64 / alpha.len() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| {
        args.iter()
            .position(|x| x == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mode = args.first().cloned().unwrap_or_default();
    let dirs: Vec<PathBuf> = args[1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let threads: usize = flag("--threads")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(2);
    let mut builder = savl::Upscaler::builder().threads(threads);
    builder = match flag("--model") {
        Some(m) => builder.model_path(m),
        None => builder.embedded_model(),
    };
    let up = builder.build()?;
    let native = up.scale() as u32;
    let pics = pictures(&dirs);
    let matched = args.iter().any(|a| a == "--matched");
    match mode.as_str() {
        "scale" => {
            let filters = [
                ("lanczos3", FilterType::Lanczos3),
                ("catmull-rom", FilterType::CatmullRom),
                ("triangle", FilterType::Triangle),
            ];
            let header: String = filters
                .iter()
                .map(|(n, _)| format!(" ×4 + {n} |"))
                .collect();
            println!("| set | picture | factor | bicubic |{header}");
            println!("|---|---|---|---|---|---|---|");
            // (set, factor) → sums of [bicubic, filters…] and count.
            let mut sums: Vec<(String, u32, [f64; 4], usize)> = Vec::new();
            for p in &pics {
                let hr0 = image::open(p)?.to_rgb8();
                for s in [2u32, 3] {
                    let (hr, lr) = if matched {
                        // LR = HR ÷ native; ground truth = HR resized to s × LR.
                        let hr12 = crop(&hr0, native * 3);
                        let (w, h) = hr12.dimensions();
                        let lr = image::imageops::resize(
                            &hr12,
                            w / native,
                            h / native,
                            FilterType::CatmullRom,
                        );
                        let gt = image::imageops::resize(
                            &hr12,
                            lr.width() * s,
                            lr.height() * s,
                            FilterType::CatmullRom,
                        );
                        (gt, lr)
                    } else {
                        let hr = crop(&hr0, s);
                        let (w, h) = hr.dimensions();
                        let lr = image::imageops::resize(&hr, w / s, h / s, FilterType::CatmullRom);
                        (hr, lr)
                    };
                    let (w, h) = hr.dimensions();
                    let big = up.upscale(&lr)?;
                    let mut row = [0f64; 4];
                    let bic = image::imageops::resize(&lr, w, h, FilterType::CatmullRom);
                    row[0] = savl_contract::metrics::psnr_y(&bic, &hr, s)?;
                    for (i, (_, f)) in filters.iter().enumerate() {
                        let out = image::imageops::resize(&big, w, h, *f);
                        row[i + 1] = savl_contract::metrics::psnr_y(&out, &hr, s)?;
                    }
                    assert_eq!(big.width(), lr.width() * native);
                    println!(
                        "| {} | {} | ×{s} | {:.2} | {:.2} | {:.2} | {:.2} |",
                        set_of(p),
                        p.file_stem().unwrap().to_string_lossy(),
                        row[0],
                        row[1],
                        row[2],
                        row[3]
                    );
                    let key = (set_of(p), s);
                    match sums.iter_mut().find(|e| (e.0.clone(), e.1) == key) {
                        Some(e) => {
                            for i in 0..4 {
                                e.2[i] += row[i];
                            }
                            e.3 += 1;
                        }
                        None => sums.push((key.0, s, row, 1)),
                    }
                }
            }
            println!();
            println!(
                "| set | factor | bicubic | ×4 + lanczos3 | ×4 + catmull-rom | ×4 + triangle |"
            );
            println!("|---|---|---|---|---|---|");
            for (set, s, sum, n) in &sums {
                let m = sum.map(|v| v / *n as f64);
                println!(
                    "| {set} | ×{s} | {:.2} | {:.2} | {:.2} | {:.2} |",
                    m[0], m[1], m[2], m[3]
                );
            }
        }
        "alpha" => {
            let methods = [
                ("model", AlphaMethod::Model),
                ("bicubic", AlphaMethod::Bicubic),
                ("nearest+smooth", AlphaMethod::NearestSmooth),
            ];
            println!("| picture | method | PSNR (alpha ×255) | soft pixels |");
            println!("|---|---|---|---|");
            let mut sums = [[0f64; 2]; 3];
            for p in &pics {
                let pic = image::open(p)?;
                let hr = crop(&pic.to_rgb8(), native);
                let (w, h) = hr.dimensions();
                let mask: Vec<f32> = if pic.color().has_alpha() {
                    // A real alpha channel.
                    let a = photo::alpha_plane(&pic);
                    let pw = pic.width() as usize;
                    (0..h as usize)
                        .flat_map(|y| (0..w as usize).map(move |x| (x, y)))
                        .map(|(x, y)| a[y * pw + x])
                        .collect()
                } else {
                    photo::luma8(&hr)
                        .as_raw()
                        .iter()
                        .map(|&v| if v >= 128 { 1.0 } else { 0.0 })
                        .collect()
                };
                let mask_soft = soft_fraction(&mask);
                println!(
                    "| {} | (the mask itself) | | {:.2} % |",
                    p.file_stem().unwrap().to_string_lossy(),
                    mask_soft * 100.0
                );
                let plane =
                    image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(w, h, mask.clone())
                        .unwrap();
                let lr: Vec<f32> =
                    image::imageops::resize(&plane, w / native, h / native, FilterType::CatmullRom)
                        .into_raw()
                        .into_iter()
                        .map(|v| v.clamp(0.0, 1.0))
                        .collect();
                let (lw, lh) = (w / native, h / native);
                for (i, (name, m)) in methods.iter().enumerate() {
                    let out = match m {
                        AlphaMethod::Model => {
                            photo::upscale_alpha_with(&lr, lw, lh, w, h, |rgb| {
                                up.upscale(rgb).map_err(|e| e.to_string())
                            })?
                        }
                        _ => photo::upscale_alpha(&lr, lw, lh, w, h, *m).unwrap(),
                    };
                    let mse = out
                        .iter()
                        .zip(&mask)
                        .map(|(a, b)| {
                            let d = f64::from(a - b) * 255.0;
                            d * d
                        })
                        .sum::<f64>()
                        / out.len() as f64;
                    let psnr = savl_contract::metrics::psnr_from_mse(mse);
                    let soft = soft_fraction(&out);
                    println!(
                        "| {} | {name} | {psnr:.2} | {:.2} % |",
                        p.file_stem().unwrap().to_string_lossy(),
                        soft * 100.0
                    );
                    sums[i][0] += psnr;
                    sums[i][1] += soft;
                }
            }
            println!();
            println!("| method | mean PSNR (alpha ×255) | mean soft pixels |");
            println!("|---|---|---|");
            for (i, (name, _)) in methods.iter().enumerate() {
                let n = pics.len() as f64;
                println!(
                    "| {name} | {:.2} | {:.2} % |",
                    sums[i][0] / n,
                    sums[i][1] / n * 100.0
                );
            }
        }
        _ => {
            eprintln!("usage: eval_scale scale|alpha DIR... [--model M.onnx] [--threads N]");
            std::process::exit(2);
        }
    }
    Ok(())
}
