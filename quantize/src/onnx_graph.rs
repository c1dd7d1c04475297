//! Reading, editing and writing ONNX with tract's prost messages (`tract_onnx::pb`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use half::f16;
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use crate::error::{QuantError, Result};

/// Reads and decodes an ONNX file.
pub fn load_model(path: &Path) -> Result<pb::ModelProto> {
    let bytes = std::fs::read(path).map_err(|source| QuantError::Io {
        path: path.to_path_buf(),
        err: source,
    })?;
    decode_model(&bytes, path)
}

/// Decodes ONNX bytes; `path` only names the source in errors.
pub fn decode_model(bytes: &[u8], path: &Path) -> Result<pb::ModelProto> {
    let m = pb::ModelProto::decode(bytes).map_err(|e| QuantError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if m.graph.as_ref().is_none_or(|g| g.node.is_empty()) {
        return Err(QuantError::Decode {
            path: path.to_path_buf(),
            reason: "no graph or an empty graph".into(),
        });
    }
    Ok(m)
}

/// Encodes and writes an ONNX file.
pub fn save_model(model: &pb::ModelProto, path: &Path) -> Result<()> {
    std::fs::write(path, model.encode_to_vec()).map_err(|source| QuantError::Io {
        path: path.to_path_buf(),
        err: source,
    })
}

/// The graph of a model (a model without one is rejected by [`decode_model`]).
pub fn graph(model: &pb::ModelProto) -> &pb::GraphProto {
    model.graph.as_ref().expect("decode_model checks the graph")
}

/// Sets (or adds) a metadata property.
pub fn set_meta(model: &mut pb::ModelProto, key: &str, value: &str) {
    if let Some(e) = model.metadata_props.iter_mut().find(|e| e.key == key) {
        e.value = value.into();
    } else {
        model.metadata_props.push(pb::StringStringEntryProto {
            key: key.into(),
            value: value.into(),
        });
    }
}

/// A metadata property.
pub fn meta<'a>(model: &'a pb::ModelProto, key: &str) -> Option<&'a str> {
    model
        .metadata_props
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

use savl_contract::onnx_proto::tensor_raw as raw_tensor;
pub use savl_contract::onnx_proto::{
    attr_f, attr_i, attr_ints, attr_s, node, tensor_f32, tensor_i64, value_info,
};

/// FLOAT16 initializer.
pub fn tensor_f16(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    let raw = data
        .iter()
        .flat_map(|v| f16::from_f32(*v).to_le_bytes())
        .collect();
    raw_tensor(name, dims, DataType::Float16, raw)
}
/// INT8 initializer.
pub fn tensor_i8(name: &str, dims: &[i64], data: &[i8]) -> pb::TensorProto {
    raw_tensor(
        name,
        dims,
        DataType::Int8,
        data.iter().map(|v| *v as u8).collect(),
    )
}
/// UINT8 initializer.
pub fn tensor_u8(name: &str, dims: &[i64], data: &[u8]) -> pb::TensorProto {
    raw_tensor(name, dims, DataType::Uint8, data.to_vec())
}
/// INT32 initializer.
pub fn tensor_i32(name: &str, dims: &[i64], data: &[i32]) -> pb::TensorProto {
    raw_tensor(
        name,
        dims,
        DataType::Int32,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}
/// Values of a FLOAT or FLOAT16 tensor as f32 (`raw_data` or `float_data`); `None` for other types.
pub fn tensor_to_f32(t: &pb::TensorProto) -> Option<Vec<f32>> {
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return None;
    }
    match DataType::try_from(t.data_type).ok()? {
        DataType::Float if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DataType::Float => Some(t.float_data.clone()),
        DataType::Float16 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        DataType::Float16 => Some(
            t.int32_data
                .iter()
                .map(|v| f16::from_bits(*v as u16).to_f32())
                .collect(),
        ),
        _ => None,
    }
}

/// Element type of a value info, if it is a tensor.
pub fn elem_type(v: &pb::ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

/// Sets the element type of a tensor value info.
pub fn set_elem_type(v: &mut pb::ValueInfoProto, dt: DataType) {
    if let Some(pb::type_proto::Value::TensorType(t)) =
        v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = dt as i32;
    }
}

/// Initializers by name.
pub fn initializers(g: &pb::GraphProto) -> HashMap<&str, &pb::TensorProto> {
    g.initializer.iter().map(|t| (t.name.as_str(), t)).collect()
}

/// For every tensor name, the indices of the nodes that consume it.
pub fn consumers(g: &pb::GraphProto) -> HashMap<&str, Vec<usize>> {
    let mut m: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for inp in &n.input {
            if !inp.is_empty() {
                m.entry(inp.as_str()).or_default().push(i);
            }
        }
    }
    m
}

/// For every tensor name, the index of the node that produces it.
pub fn producers(g: &pb::GraphProto) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in &n.output {
            m.insert(o.as_str(), i);
        }
    }
    m
}

/// Removes nodes whose outputs nobody uses (and are not graph outputs), then unused initializers.
pub fn prune(g: &mut pb::GraphProto) {
    loop {
        let mut used: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
        for n in &g.node {
            used.extend(n.input.iter().cloned());
        }
        let before = g.node.len();
        g.node.retain(|n| n.output.iter().any(|o| used.contains(o)));
        if g.node.len() == before {
            g.initializer.retain(|t| used.contains(&t.name));
            return;
        }
    }
}

/// Integer attribute of a node.
pub fn get_attr_i(n: &pb::NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// Names of the `Conv` nodes, in graph order (nodes without a name get one).
pub fn ensure_node_names(g: &mut pb::GraphProto) {
    let mut seen = HashSet::new();
    for (i, n) in g.node.iter_mut().enumerate() {
        if n.name.is_empty() || !seen.insert(n.name.clone()) {
            n.name = format!("{}_{}", n.op_type, i);
            seen.insert(n.name.clone());
        }
    }
}
