//! Start-up cost of the embedded default model: median ms of loading it (`build`: parse, type,
//! declutter, rewrite), of the first upscale of a `SIZE × SIZE` image (one tile: plan for that
//! shape plus one run), and of a second upscale (run only, plan cached).
//!
//! ```sh
//! cargo run --release --example load_time -- [SIZE] [--runs N] [--threads N]   # defaults 128, 5, 1
//! cargo run --profile dist --example load_time
//! ```

use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let val = |f: &str| {
        a.iter()
            .position(|x| x == f)
            .and_then(|i| a.get(i + 1))
            .cloned()
    };
    let size: u32 = match a.get(1) {
        Some(s) if !s.starts_with("--") => s.parse()?,
        _ => 128,
    };
    let runs: usize = val("--runs").map(|v| v.parse()).transpose()?.unwrap_or(5);
    let threads: usize = val("--threads")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(1);
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let (mut load, mut first, mut second) = (vec![], vec![], vec![]);
    let mut precision = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let up = savl::Upscaler::builder().threads(threads).build()?;
        load.push(t.elapsed().as_secs_f64() * 1e3);
        precision = Some(up.precision());
        let t = Instant::now();
        up.upscale(&img)?;
        first.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        up.upscale(&img)?;
        second.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (l, f, s) = (median(&mut load), median(&mut first), median(&mut second));
    println!(
        "embedded model ({:?}), {size}×{size}, {threads} thread(s), median of {}: \
         load {l:.1} ms, first upscale {f:.1} ms, second {s:.1} ms, load + first {:.1} ms",
        precision.unwrap_or_default(),
        load.len(),
        l + f
    );
    Ok(())
}
