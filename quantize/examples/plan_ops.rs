//! Op histogram of the optimised tract plan of a model, and its matmul kernels.
//!
//! ```sh
//! cargo run -p savl-quantize --example plan_ops -- models/savl-lite-x4.int8.onnx 64
//! ```

use std::collections::BTreeMap;

use savl_quantize::onnx_graph::load_model;
use savl_quantize::runner::Runner;
use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .map(String::as_str)
        .unwrap_or("models/savl-lite-x4.int8.onnx");
    let side: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let plan = Runner::new(&load_model(path.as_ref())?, path)?.optimized(side, side)?;
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    let mut kernels: BTreeMap<String, usize> = BTreeMap::new();
    for n in plan.nodes() {
        *ops.entry(n.op.name().to_string()).or_default() += 1;
        let d = format!("{:?}", n.op);
        if let Some(k) = d
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .find(|w| w.contains("_mmm_"))
        {
            *kernels.entry(k.to_string()).or_default() += 1;
        }
    }
    println!("{path} at {side}×{side}: {} nodes", plan.nodes().len());
    for (k, v) in &ops {
        println!("  {v:4}  {k}");
    }
    println!("matmul kernels: {kernels:?}");
    // Time per op kind over a few runs (single thread).
    let img = savl_quantize::images::synthetic(side, side, 1);
    let input = Tensor::from_shape(&[1, 3, side, side], &img.data)?;
    let plan = plan.into_runnable()?;
    let mut state = tract_onnx::tract_core::plan::SimpleState::new(&plan)?;
    let mut spent: BTreeMap<String, f64> = BTreeMap::new();
    let runs = 5;
    for _ in 0..runs {
        state.run_plan_with_eval(tvec![input.clone().into()], |ctx, st, node, inputs| {
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
            *spent.entry(node.op.name().to_string()).or_default() += t.elapsed().as_secs_f64();
            r
        })?;
    }
    let total: f64 = spent.values().sum();
    let mut v: Vec<_> = spent.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "time per run by op (mean of {runs}): {:.1} ms",
        total * 1e3 / runs as f64
    );
    for (k, t) in v.iter().take(12) {
        println!(
            "  {:8.2} ms {:5.1} %  {k}",
            t * 1e3 / runs as f64,
            100.0 * t / total
        );
    }
    Ok(())
}
