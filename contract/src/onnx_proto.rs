//! Constructors for ONNX protobuf messages (tract's prost types, re-exported as [`pb`]).
//!
//! The exporter (`savl-train`), the quantizer (`savl-quantize`) and the synthetic test models
//! ([`crate::testmodel`]) all write ONNX. They build attributes, initializers, nodes and value
//! infos here, so each field is set the same way everywhere.
//!
//! ```
//! use savl_contract::onnx_proto::{attr_ints, node, tensor_f32, value_info, pb, Dim};
//! let w = tensor_f32("w", &[1, 1, 1, 1], &[2.0]);
//! let conv = node("c", "Conv", &["x", "w"], &["y"], vec![attr_ints("kernel_shape", &[1, 1])]);
//! let x = value_info("x", pb::tensor_proto::DataType::Float, Some(&[Dim::DimValue(1)]));
//! assert_eq!((w.raw_data.len(), conv.output[0].as_str(), x.name.as_str()), (4, "y", "x"));
//! ```

pub use tract_onnx::pb;
/// One dimension of a tensor shape: a fixed size or a symbol.
pub use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;

use pb::attribute_proto::AttributeType;
use pb::tensor_proto::DataType;
use pb::tensor_shape_proto::Dimension;

/// An integer attribute.
pub fn attr_i(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

/// A float attribute.
pub fn attr_f(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr_s(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A node of operator `op`.
pub fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// An initializer of element type `dt` holding `raw` (little-endian, as ONNX's `raw_data`).
pub fn tensor_raw(name: &str, dims: &[i64], dt: DataType, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dt as i32,
        raw_data: raw,
        ..Default::default()
    }
}

/// A FLOAT initializer.
pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    tensor_raw(
        name,
        dims,
        DataType::Float,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// An INT64 initializer.
pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> pb::TensorProto {
    tensor_raw(
        name,
        dims,
        DataType::Int64,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// A tensor `ValueInfoProto` of element type `elem` with the given dims (`None`: no shape).
pub fn value_info(name: &str, elem: DataType, dims: Option<&[Dim]>) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape: dims.map(|dims| pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(d.clone()),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn initializers_hold_little_endian_values() {
        let t = tensor_f32("w", &[2], &[1.0, -2.5]);
        let back: Vec<f32> = t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!((back, t.dims, t.data_type), (vec![1.0, -2.5], vec![2], 1));
        let k = tensor_i64("k", &[1], &[-3]);
        assert_eq!(
            (k.raw_data, k.data_type),
            ((-3i64).to_le_bytes().to_vec(), 7)
        );
    }

    #[test]
    fn messages_survive_an_encode_decode_round_trip() {
        let n = node(
            "n",
            "LeakyRelu",
            &["a"],
            &["b"],
            vec![attr_f("alpha", 0.1), attr_s("mode", "x"), attr_i("k", 4)],
        );
        let back = pb::NodeProto::decode(n.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.attribute[0].f, 0.1);
        let v = value_info(
            "lr",
            DataType::Float,
            Some(&[Dim::DimValue(1), Dim::DimParam("H".into())]),
        );
        let back = pb::ValueInfoProto::decode(v.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, v);
    }
}
