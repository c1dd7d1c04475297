//! Throughput of the on-the-fly pair synthesis (256 → 64 crops at ×4).
//!
//! `cargo bench -p savl-train --bench degrade`; `RAYON_NUM_THREADS=2` pins the batch bench to
//! two threads. Photos come from `SAVL_BENCH_PHOTOS` (default `/work/shared/data/train`), or
//! synthetic textures when that folder is missing.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use savl_train::degrade::{DegradeConfig, PairSampler};
use std::hint::black_box;
use std::path::PathBuf;

fn sampler() -> PairSampler {
    let dir = std::env::var_os("SAVL_BENCH_PHOTOS")
        .map_or_else(|| PathBuf::from("/work/shared/data/train"), PathBuf::from);
    match PairSampler::from_dir(&dir, DegradeConfig::default()) {
        Ok((s, _)) => s,
        Err(_) => {
            let photos = (0..8u32)
                .map(|i| {
                    image::RgbImage::from_fn(640, 480, |x, y| {
                        let v = ((x * (3 + i)) ^ (y * 7)) % 256;
                        image::Rgb([
                            v as u8,
                            ((x + y + i * 30) % 256) as u8,
                            ((x * y) % 251) as u8,
                        ])
                    })
                })
                .collect();
            PairSampler::from_images(photos, DegradeConfig::default())
        }
    }
}

fn bench(c: &mut Criterion) {
    let s = sampler();
    s.prepare_all();
    let mut g = c.benchmark_group("degrade");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("pair_256_to_64_one_thread", |b| {
        b.iter(|| {
            i += 1;
            black_box(s.sample(256, 1, i))
        })
    });
    let n = 64;
    g.throughput(Throughput::Elements(n as u64));
    let mut first = 0u64;
    g.bench_function("batch64_256_to_64_rayon", |b| {
        b.iter(|| {
            first += n as u64;
            black_box(s.batch(n, 256, 2, first))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
