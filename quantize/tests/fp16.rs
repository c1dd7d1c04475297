//! fp16 file structure: FLOAT16 weights, FLOAT Resize scales, f32 I/O, metadata.

mod common;

use savl_contract::keys;
use savl_quantize::fp16::convert_fp16;
use savl_quantize::onnx_graph::{elem_type, meta};
use tract_onnx::pb::tensor_proto::DataType;

#[test]
fn fp16_structure() {
    let m = common::small();
    for io_f16 in [false, true] {
        let h = convert_fp16(&m, io_f16);
        let g = h.graph.as_ref().unwrap();
        assert!(g.value_info.is_empty());
        assert_eq!(meta(&h, keys::PRECISION), Some("f16"));
        assert_eq!(meta(&h, keys::SCALE), Some("4"));
        let io = if io_f16 {
            DataType::Float16
        } else {
            DataType::Float
        } as i32;
        assert_eq!(elem_type(&g.input[0]), Some(io));
        assert!(g.output.iter().all(|o| elem_type(o) == Some(io)));
        // The type of input `i` of the first `op` node (an initializer).
        let input_type = |op: &str, i: usize| {
            let node = g.node.iter().find(|n| n.op_type == op).unwrap();
            let init = g.initializer.iter().find(|t| t.name == node.input[i]);
            init.unwrap().data_type
        };
        assert_eq!(input_type("Resize", 2), DataType::Float as i32, "scales");
        assert_eq!(input_type("Conv", 1), DataType::Float16 as i32, "weights");
        // Nothing else FLOAT among the initializers.
        let floats = g
            .initializer
            .iter()
            .filter(|t| t.data_type == DataType::Float as i32)
            .count();
        assert_eq!(floats, 1);
    }
}
