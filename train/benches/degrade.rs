//! Throughput of the on-the-fly pair synthesis (256 → 64 crops at ×4).
//!
//! `cargo bench -p savl-train --bench degrade`; `RAYON_NUM_THREADS=2` pins the batch bench to
//! two threads. Photos come from `SAVL_BENCH_PHOTOS` (default `../shared/data/train` beside the repository), or
//! synthetic textures when that folder is missing. Before the criterion groups it prints the
//! process CPU time per pair, which does not depend on other load on the machine.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, Criterion, Throughput};
use savl_train::degrade::{DegradeConfig, PairSampler};
use std::hint::black_box;
use std::path::PathBuf;

fn sampler() -> PairSampler {
    let dir = std::env::var_os("SAVL_BENCH_PHOTOS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/train"
            ))
        },
        PathBuf::from,
    );
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
/// Process CPU time (user + system) in seconds, from `/proc/self/stat` (Linux; 10 ms ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// Wall-clock and CPU-time throughput of one 256-pair batch. The CPU time per pair does not
/// depend on what else runs on the machine, so it also gives the rate on idle cores.
fn cpu_report() {
    let s = sampler();
    s.prepare_all();
    let n = 256;
    let (t, c0) = (std::time::Instant::now(), cpu_seconds());
    black_box(s.batch(n, 256, 3, 0));
    let wall = t.elapsed().as_secs_f64();
    println!(
        "degrade/cpu_report: {n} pairs 256->64 on {} rayon threads: {:.1} pairs/s wall",
        rayon::current_num_threads(),
        n as f64 / wall
    );
    if let (Some(c0), Some(c1)) = (c0, cpu_seconds()) {
        let per = (c1 - c0) / n as f64;
        println!(
            "degrade/cpu_report: {:.1} ms CPU per pair = {:.0} pairs/s per idle core, {:.0} pairs/s on 2 idle cores",
            per * 1e3,
            1.0 / per,
            2.0 / per
        );
    }
}

fn main() {
    cpu_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
