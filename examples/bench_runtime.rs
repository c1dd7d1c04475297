//! Times the savl runtime on square inputs: median ms of `Upscaler::upscale`, one line per size.
//!
//! ```sh
//! cargo run --release --example bench_runtime -- MODEL.onnx 128,256 --threads 2 [--precision f32]
//!     [--tile 512] [--unfused] [--direct] [--runs 5] [--mallopt] [--dump PREFIX]
//! ```
//! `--dump PREFIX` writes each size's input and output as raw interleaved RGB bytes
//! (`PREFIX.<size>.in.rgb`, `s×s×3`, and `PREFIX.<size>.out.rgb`, `4s×4s×3`), for checking the
//! output against another runtime (`scripts/bench_vs_ncnn.py`).
//! With the default tile (≥ the input), each size runs as one tile: the same work as one
//! onnxruntime call on the whole image.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let flag = |f: &str| a.iter().position(|x| x == f);
    let val = |f: &str| flag(f).and_then(|i| a.get(i + 1)).cloned();
    if a.len() < 3 {
        eprintln!("usage: bench_runtime MODEL.onnx SIZES [--threads N] [--precision P] [--tile T] [--unfused] [--direct] [--runs N] [--mallopt] [--dump PREFIX]");
        std::process::exit(2);
    }
    if flag("--mallopt").is_some() {
        savl::tune_allocator();
    }
    let threads: usize = val("--threads")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(1);
    let runs: usize = val("--runs").map(|v| v.parse()).transpose()?.unwrap_or(5);
    let precision: savl::Precision = val("--precision")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or_default();
    let sizes: Vec<u32> = a[2]
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let max = *sizes.iter().max().unwrap_or(&64) as usize;
    let tile: usize = val("--tile")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(max.max(16));
    let up = savl::Upscaler::builder()
        .model_path(&a[1])
        .precision(precision)
        .threads(threads)
        .tile(tile)
        .fused_modulation(flag("--unfused").is_none())
        .direct_spatial(flag("--direct").is_some())
        .build()?;
    if flag("-v").is_some() {
        eprintln!("{}", up.describe());
    }
    if flag("--profile").is_some() {
        for &s in &sizes {
            eprint!("{}", up.profile(s as usize, s as usize, threads > 1)?);
        }
    }
    for s in sizes {
        let img = image::RgbImage::from_fn(s, s, |x, y| {
            let v = |k: u32| (128.0 + 90.0 * ((x * 3 + y * 5 + k * 17) as f32 * 0.05).sin()) as u8;
            image::Rgb([v(0), v(1), v(2)])
        });
        for _ in 0..2 {
            up.upscale(&img)?;
        }
        if let Some(prefix) = val("--dump") {
            std::fs::write(format!("{prefix}.{s}.in.rgb"), img.as_raw())?;
            std::fs::write(format!("{prefix}.{s}.out.rgb"), up.upscale(&img)?.as_raw())?;
        }
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t0 = Instant::now();
            std::hint::black_box(up.upscale(&img)?);
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(|a, b| a.total_cmp(b));
        println!(
            "savl {} {s} threads={threads} precision={} tile={tile}: median {:.1} ms",
            a[1],
            up.precision(),
            t[t.len() / 2]
        );
    }
    Ok(())
}
