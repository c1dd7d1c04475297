//! Writes a synthetic photo-like JPEG for benchmarks: `make_test_jpeg OUT.jpg [WIDTH HEIGHT]`
//! (default 4000×3000, quality 90).
//!
//! The picture has smooth gradients, edges at many angles, fine texture and mild noise, so the
//! JPEG is about as large and as costly to decode as a camera photo (a flat picture would not
//! be). Used by `scripts/bench_memory.sh`; no Python or other imaging tool needed.

use std::fs::File;
use std::io::BufWriter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .ok_or("usage: make_test_jpeg OUT.jpg [WIDTH HEIGHT]")?;
    let width: u32 = args.get(1).map_or(Ok(4000), |s| s.parse())?;
    let height: u32 = args.get(2).map_or(Ok(3000), |s| s.parse())?;
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        // Hash noise, deterministic.
        let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
        h ^= h >> 15;
        h = h.wrapping_mul(0x2C1B_3C6D);
        h ^= h >> 12;
        let noise = (h & 0xff) as f32 / 255.0 - 0.5;
        // Concentric rings (edges at every angle), stripes, and a checker of 64-px cells.
        let (cx, cy) = (
            x as f32 - width as f32 * 0.6,
            y as f32 - height as f32 * 0.4,
        );
        let rings = ((cx * cx + cy * cy).sqrt() * 0.05).sin();
        let stripes = ((x as f32 * 0.31 + y as f32 * 0.17).sin() * 0.5 + 0.5) * (1.0 - fy);
        let checker = if ((x / 64) + (y / 64)) % 2 == 0 {
            1.0
        } else {
            0.0
        };
        let r = 0.45 * fx + 0.25 * rings + 0.2 * checker + 0.08 * noise + 0.1;
        let g = 0.5 * fy + 0.25 * stripes + 0.1 * rings + 0.08 * noise + 0.1;
        let b = 0.4 * (1.0 - fx) + 0.3 * stripes * checker + 0.08 * noise + 0.15;
        image::Rgb([r, g, b].map(|v| (v.clamp(0.0, 1.0) * 255.0) as u8))
    });
    let file = BufWriter::new(File::create(out)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90).encode_image(&img)?;
    eprintln!("wrote {out} ({width}×{height})");
    Ok(())
}
