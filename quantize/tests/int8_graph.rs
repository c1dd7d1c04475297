//! int8 file structure: QLinearConv per quantized conv, `--keep-f32`, metadata, I/O contract.

mod common;

use savl_contract::keys;
use savl_quantize::int8::{quantize_int8, Int8Options};
use savl_quantize::onnx_graph::{elem_type, meta};
use savl_quantize::Policy;
use tract_onnx::pb::tensor_proto::DataType;

#[test]
fn keep_f32_metadata_and_io() {
    let m = common::small();
    let g0 = m.graph.as_ref().unwrap();
    let n_conv = g0.node.iter().filter(|n| n.op_type == "Conv").count();
    let first = g0
        .node
        .iter()
        .find(|n| n.op_type == "Conv")
        .unwrap()
        .name
        .clone();
    let opts = Int8Options {
        policy: Policy::All,
        keep_f32: vec![first.clone()],
        ..Default::default()
    };
    let (q, s) = quantize_int8(&m, &common::calib(2, 16), &opts, "small").unwrap();
    let g = q.graph.as_ref().unwrap();
    assert_eq!(s.kept_f32, vec![first.clone()]);
    assert_eq!(g.node.iter().filter(|n| n.op_type == "Conv").count(), 1);
    assert!(g
        .node
        .iter()
        .any(|n| n.op_type == "Conv" && n.name == first));
    assert_eq!(
        g.node.iter().filter(|n| n.op_type == "QLinearConv").count(),
        n_conv - 1
    );
    // Per-channel int8 weights, int32 bias.
    let qc = g.node.iter().find(|n| n.op_type == "QLinearConv").unwrap();
    let init = |name: &str| g.initializer.iter().find(|t| t.name == name).unwrap();
    assert_eq!(init(&qc.input[3]).data_type, DataType::Int8 as i32);
    assert_eq!(init(&qc.input[4]).dims, vec![init(&qc.input[3]).dims[0]]);
    assert_eq!(init(&qc.input[8]).data_type, DataType::Int32 as i32);
    // Metadata copied, precision set; I/O unchanged.
    assert_eq!(meta(&q, keys::PRECISION), Some("int8"));
    for k in [keys::SCALE, keys::RECEPTIVE_FIELD, keys::PRESET] {
        assert_eq!(meta(&q, k), meta(&m, k), "{k}");
    }
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name, "lr");
    assert_eq!(elem_type(&g.input[0]), Some(DataType::Float as i32));
    let outs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, ["sr", "mu", "severity"]);
    assert!(g
        .output
        .iter()
        .all(|o| elem_type(o) == Some(DataType::Float as i32)));
}

#[test]
fn unknown_keep_f32_node_is_an_error() {
    let opts = Int8Options {
        keep_f32: vec!["no_such_conv".into()],
        ..Default::default()
    };
    let e =
        quantize_int8(&common::small(), &common::calib(1, 16), &opts, "small.onnx").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no_such_conv") && msg.contains("small.onnx"),
        "{msg}"
    );
}
