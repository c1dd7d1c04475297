//! int8 vs f32 speed in tract (single thread, concrete shape, optimised plans).
//!
//! ```sh
//! # the shipped files (after scripts/make_quantized_models.sh):
//! cargo run -p savl-quantize --example bench_int8 -- models/savl-lite-x4.onnx models/savl-lite-x4.int8.onnx 128
//! # no arguments: a synthetic 32-channel model, quantized in memory
//! cargo run -p savl-quantize --example bench_int8
//! ```
//! Prints the median of N runs for each model and the ratio, plus the int8 kernel used.

use std::time::Instant;

use savl_quantize::images::synthetic;
use savl_quantize::int8::{quantize_int8, Int8Options};
use savl_quantize::onnx_graph::load_model;
use savl_quantize::runner::Runner;
use savl_quantize::testmodel::{self, TestModel};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let side: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(128);
    let runs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(7);
    let (f32m, int8m, label) = if args.len() >= 2 {
        (
            load_model(args[0].as_ref())?,
            load_model(args[1].as_ref())?,
            format!("{} vs {}", args[0], args[1]),
        )
    } else {
        let m = testmodel::proto(&TestModel {
            channels: 32,
            body: 8,
            dim: 8,
            seed: 3,
            ..testmodel::small()
        });
        let cal: Vec<_> = (0..4).map(|i| synthetic(32, 32, i)).collect();
        let (q, _) = quantize_int8(&m, &cal, &Int8Options::default(), "synthetic")?;
        (
            m,
            q,
            "synthetic 32-channel model (8 body convs)".to_string(),
        )
    };
    let img = synthetic(side, side, 42);
    let mut res = vec![];
    for (name, m) in [("f32", &f32m), ("int8", &int8m)] {
        let r = Runner::new(m, name)?;
        let plan = r.optimized(side, side)?;
        let kernels: std::collections::BTreeSet<String> = plan
            .nodes()
            .iter()
            .filter_map(|n| {
                let d = format!("{:?}", n.op);
                d.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .find(|w| w.contains("_mmm_"))
                    .map(|s| s.to_string())
            })
            .collect();
        r.run(&img.data, side, side)?; // warm-up, builds the plan
        let mut t = vec![];
        for _ in 0..runs {
            let s = Instant::now();
            r.run(&img.data, side, side)?;
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
        let med = median(t.clone());
        println!(
            "{name:>5}: median {med:8.1} ms over {runs} runs (min {:.1}), kernels {kernels:?}",
            t.iter().cloned().fold(f64::INFINITY, f64::min)
        );
        res.push(med);
    }
    println!(
        "{label}, {side}×{side} LR input: f32/int8 time ratio {:.2} (>1: int8 faster)",
        res[0] / res[1]
    );
    Ok(())
}
