//! The int8 model runs integer matmul kernels in tract, not f32 convolutions.

mod common;

use savl_quantize::int8::{quantize_int8, ConvForm, Int8Options};
use savl_quantize::runner::Runner;
use savl_quantize::Policy;
use tract_onnx::prelude::*;

fn describe(m: &TypedModel) -> Vec<String> {
    m.nodes()
        .iter()
        .map(|n| {
            format!(
                "{} {:?} -> {:?}",
                n.op.name(),
                n.op,
                n.outputs
                    .iter()
                    .map(|o| o.fact.datum_type)
                    .collect::<Vec<_>>()
            )
        })
        .collect()
}

#[test]
fn optimized_int8_graph_uses_integer_kernels() {
    for form in [ConvForm::QLinear, ConvForm::Integer] {
        check_form(form);
    }
}

fn check_form(form: ConvForm) {
    let m = common::small();
    let opts = Int8Options {
        policy: Policy::All,
        form,
        ..Default::default()
    };
    let (q, s) = quantize_int8(&m, &common::calib(2, 16), &opts, "small").unwrap();
    let nodes = describe(&Runner::new(&q, "int8").unwrap().optimized(16, 16).unwrap());
    let int_mm: Vec<&String> = nodes.iter().filter(|d| d.contains("mmm_i32")).collect();
    for d in &nodes {
        eprintln!("{d}");
    }
    // One integer matmul per quantized conv.
    assert!(
        int_mm.len() >= s.quantized.len(),
        "{} int8 matmuls for {} convs",
        int_mm.len(),
        s.quantized.len()
    );
    // No f32 matmul kernel is left: every conv is integer.
    assert!(
        !nodes.iter().any(|d| d.contains("mmm_f32")),
        "an f32 matmul remains"
    );
    // u8/i8 tensors flow between them.
    assert!(nodes
        .iter()
        .any(|d| d.contains("U8") || d.contains("I8") || d.contains("QU8") || d.contains("QI8")));

    // The f32 model, for contrast, has only f32 kernels.
    let f = describe(&Runner::new(&m, "f32").unwrap().optimized(16, 16).unwrap());
    assert!(f.iter().any(|d| d.contains("mmm_f32")));
    assert!(!f.iter().any(|d| d.contains("mmm_i32")));
}
