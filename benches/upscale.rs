//! ×4 on a 256×256 input, per precision of the embedded model (one 256² tile), 1 and 2 threads.
//!
//! `cargo bench -p savl --bench upscale`. f16 is skipped where the CPU has no native fp16
//! arithmetic (tract's software f16 kernel is ~70× slower on x86) unless `SAVL_BENCH_F16=1`.
//! `SAVL_BENCH_MODEL=path.onnx` benches that file as is instead.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use savl::{Precision, Upscaler};

fn image256() -> image::RgbImage {
    image::RgbImage::from_fn(256, 256, |x, y| {
        let v = |k: u32| (128.0 + 90.0 * ((x * 3 + y * 5 + k * 17) as f32 * 0.05).sin()) as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}

fn bench(c: &mut Criterion) {
    savl::tune_allocator();
    let img = image256();
    let mut g = c.benchmark_group("upscale_x4_256");
    g.sample_size(10);
    let f16_ok = savl::CpuCaps::detect().fp16 || std::env::var_os("SAVL_BENCH_F16").is_some();
    let model = std::env::var("SAVL_BENCH_MODEL").ok();
    let precisions = match &model {
        Some(_) => vec![Precision::Auto],
        None => Upscaler::embedded_precisions(),
    };
    for p in precisions {
        if p == Precision::F16 && !f16_ok {
            eprintln!("skipping f16: no native fp16 arithmetic on this CPU");
            continue;
        }
        for threads in [1, 2] {
            let mut b = Upscaler::builder().precision(p).threads(threads).tile(256);
            if let Some(m) = &model {
                b = b.model_path(m);
            }
            let up = match b.build() {
                Ok(up) => up,
                Err(e) => {
                    eprintln!("skipping {p}: {e}");
                    continue;
                }
            };
            let id = format!("{}/threads{threads}", up.precision());
            g.bench_function(id, |b| b.iter(|| up.upscale(&img).expect("upscale")));
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
