//! Which convolutions stay in f32.

use std::collections::HashSet;

use tract_onnx::pb;

use crate::onnx_graph;

/// What stays in float when quantizing to int8 (besides `--keep-f32` nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Policy {
    /// Quantize every convolution.
    #[value(name = "all")]
    All,
    /// Keep the first convolutions (reading the model input) and the last ones (whose output
    /// reaches a model output without another convolution) in f32.
    #[value(name = "keep-ends")]
    KeepEnds,
    /// Quantize everything, then, while the calibration PSNR against f32 is below the target,
    /// keep the most sensitive convolutions (measured one by one) in f32.
    #[default]
    #[value(name = "auto")]
    Auto,
}

/// The first convs (consuming a graph input) and the last ones (reaching a graph output
/// through non-conv nodes only), by node name.
pub fn end_convs(g: &pb::GraphProto) -> HashSet<String> {
    let inputs: HashSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    let mut out = HashSet::new();
    for n in &g.node {
        if n.op_type == "Conv" && n.input.first().is_some_and(|x| inputs.contains(x.as_str())) {
            out.insert(n.name.clone());
        }
    }
    // Walk back from the outputs through non-conv nodes.
    let producers = onnx_graph::producers(g);
    let mut stack: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let mut seen = HashSet::new();
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        if let Some(&i) = producers.get(t) {
            let n = &g.node[i];
            if n.op_type == "Conv" {
                out.insert(n.name.clone());
            } else {
                stack.extend(n.input.iter().filter(|s| !s.is_empty()).map(|s| s.as_str()));
            }
        }
    }
    out
}
