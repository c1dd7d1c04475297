//! fp16: weights and activations FLOAT16, except what ONNX requires as float (Resize `roi` and
//! `scales`); f32 model inputs and outputs through `Cast` unless `io_f16`.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

use crate::onnx_graph::{self as og, attr_i, node};
use savl_contract::keys;

/// Inputs of `op` that must stay FLOAT whatever the data type (by input index).
fn float_only_input(op: &str, idx: usize) -> bool {
    matches!((op, idx), ("Resize", 1) | ("Resize", 2) | ("Upsample", 1))
}

fn to_f16(t: &pb::TensorProto) -> Option<pb::TensorProto> {
    if t.data_type != DataType::Float as i32 {
        return None;
    }
    let v = og::tensor_to_f32(t)?;
    Some(og::tensor_f16(&t.name, &t.dims, &v))
}

/// Converts a decoded f32 model to fp16.
pub fn convert_fp16(model: &pb::ModelProto, io_f16: bool) -> pb::ModelProto {
    let mut model = model.clone();
    let g = model.graph.as_mut().expect("decoded model has a graph");
    og::ensure_node_names(g);
    // Which float constants feed a float-only slot, and which feed anything else.
    let mut float_use: HashSet<String> = HashSet::new();
    let mut other_use: HashSet<String> = HashSet::new();
    for n in &g.node {
        for (i, inp) in n.input.iter().enumerate() {
            if float_only_input(&n.op_type, i) {
                float_use.insert(inp.clone());
            } else {
                other_use.insert(inp.clone());
            }
        }
    }
    // Initializers.
    let mut extra = vec![];
    let mut renamed: HashMap<String, String> = HashMap::new();
    for t in g.initializer.iter_mut() {
        if t.data_type != DataType::Float as i32 {
            continue;
        }
        match (float_use.contains(&t.name), other_use.contains(&t.name)) {
            (true, true) => {
                let mut h = to_f16(t).expect("float tensor");
                h.name = format!("{}__f16", t.name);
                renamed.insert(t.name.clone(), h.name.clone());
                extra.push(h);
            }
            (true, false) => {}
            _ => *t = to_f16(t).expect("float tensor"),
        }
    }
    g.initializer.extend(extra);
    for n in g.node.iter_mut() {
        let op = n.op_type.clone();
        for (i, inp) in n.input.iter_mut().enumerate() {
            if !float_only_input(&op, i) {
                if let Some(r) = renamed.get(inp) {
                    *inp = r.clone();
                }
            }
        }
    }
    // Constants and type-producing attributes.
    for n in g.node.iter_mut() {
        let feeds_float_only = n.output.iter().any(|o| float_use.contains(o));
        match n.op_type.as_str() {
            "Constant" | "ConstantOfShape" if !feeds_float_only => {
                for a in n.attribute.iter_mut() {
                    if a.name == "value" {
                        if let Some(h) = a.t.as_ref().and_then(to_f16) {
                            a.t = Some(h);
                        }
                    } else if a.name == "value_float" {
                        a.name = "value".into();
                        a.r#type = AttributeType::Tensor as i32;
                        a.t = Some(og::tensor_f16("", &[], &[a.f]));
                    } else if a.name == "value_floats" {
                        a.name = "value".into();
                        a.r#type = AttributeType::Tensor as i32;
                        a.t = Some(og::tensor_f16("", &[a.floats.len() as i64], &a.floats));
                        a.floats.clear();
                    }
                }
            }
            "Cast" if !feeds_float_only => {
                for a in n.attribute.iter_mut() {
                    if a.name == "to" && a.i == DataType::Float as i64 {
                        a.i = DataType::Float16 as i64;
                    }
                }
            }
            _ => {}
        }
    }
    // Inputs and outputs: f16 themselves with `io_f16`, else f32 with a Cast at the boundary.
    let (mut pre, mut post) = (vec![], vec![]);
    for (values, input) in [(&mut g.input, true), (&mut g.output, false)] {
        for v in values.iter_mut() {
            if og::elem_type(v) != Some(DataType::Float as i32)
                || (input && g.initializer.iter().any(|t| t.name == v.name))
            {
                continue;
            }
            if io_f16 {
                og::set_elem_type(v, DataType::Float16);
                continue;
            }
            let inner = format!("{}__f16", v.name);
            for n in g.node.iter_mut() {
                if !input {
                    rename(&mut n.output, &v.name, &inner);
                }
                rename(&mut n.input, &v.name, &inner);
            }
            if input {
                pre.push(cast(&v.name, &v.name, &inner, DataType::Float16));
            } else {
                post.push(cast(&v.name, &inner, &v.name, DataType::Float));
            }
        }
    }
    let body = std::mem::take(&mut g.node);
    g.node = pre.into_iter().chain(body).chain(post).collect();
    g.value_info.clear();
    og::set_meta(&mut model, keys::PRECISION, "f16");
    model
}

/// Renames every `from` in `names` to `to`.
fn rename(names: &mut [String], from: &str, to: &str) {
    for n in names.iter_mut().filter(|n| **n == from) {
        *n = to.to_owned();
    }
}

/// The `Cast` node `{io}__cast` of graph input or output `io`: `from` → `to` as `dt`.
fn cast(io: &str, from: &str, to: &str, dt: DataType) -> pb::NodeProto {
    node(
        &format!("{io}__cast"),
        "Cast",
        &[from],
        &[to],
        vec![attr_i("to", dt as i64)],
    )
}
