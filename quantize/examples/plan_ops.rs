//! Op histogram of the optimised tract plan of a model, and its matmul kernels.
//!
//! ```sh
//! cargo run -p savl-quantize --example plan_ops -- models/savl-lite-x4.int8.onnx 64
//! ```

use std::collections::BTreeMap;

use savl_quantize::onnx_graph::load_model;
use savl_quantize::runner::Runner;

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
    Ok(())
}
