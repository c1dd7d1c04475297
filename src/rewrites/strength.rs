//! The denoising strength: how much of the estimated degradation the SR net is told about.
//!
//! A savl model gates its SR body with `g = sigmoid(W·x + b)` where `x = [μ ‖ s]` is the
//! degradation code read from the input. Strength `S` replaces `x` by
//!
//! ```text
//! x' = x_clean + S · (x − x_clean)
//! ```
//!
//! where `x_clean` is the code the estimator gives on clean (plain downscaled) photos, stored in
//! the model's `savl.clean_code` metadata. `S = 1` is the model as trained, `S = 0` tells the net
//! every pixel is clean, `S > 1` exaggerates the estimate. The
//! rewrite is two elementwise nodes after the gate input, applied to the ONNX graph before it is
//! optimised, so tiling and every precision keep working.

use savl_contract::keys;
use tract_onnx::pb;

/// Metadata key of the clean reference code `x_clean` (comma-separated floats, `d + 1` of them:
/// μ then severity).
pub const CLEAN_CODE_KEY: &str = keys::CLEAN_CODE;

/// Name of the gate-input tensor in savl's exported graphs.
pub const GATE_INPUT: &str = "gate.concat";

/// Largest accepted strength.
pub const MAX_STRENGTH: f32 = 4.0;

/// Why a strength cannot be applied to a model.
#[derive(Debug, Clone, PartialEq)]
pub enum StrengthError {
    /// The graph has no `gate.concat` tensor (a peer model or a `noguide` file).
    NoGates,
    /// The model lacks `savl.clean_code`, or it does not parse.
    NoCleanCode(String),
}

impl std::fmt::Display for StrengthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrengthError::NoGates => write!(
                f,
                "the model has no degradation gates ({GATE_INPUT}), so a strength cannot apply"
            ),
            StrengthError::NoCleanCode(why) => write!(
                f,
                "the model has no usable {CLEAN_CODE_KEY} metadata ({why}); add it with \
                 `savl-train clean-code`"
            ),
        }
    }
}

/// Parses `savl.clean_code` from the model's metadata.
pub fn clean_code(proto: &pb::ModelProto) -> Result<Vec<f32>, StrengthError> {
    let v = proto
        .metadata_props
        .iter()
        .find(|p| p.key == CLEAN_CODE_KEY)
        .ok_or_else(|| StrengthError::NoCleanCode("missing".into()))?;
    let code = v
        .value
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<Result<Vec<f32>, _>>()
        .map_err(|e| StrengthError::NoCleanCode(e.to_string()))?;
    if code.is_empty() || code.iter().any(|c| !c.is_finite()) {
        return Err(StrengthError::NoCleanCode("empty or not finite".into()));
    }
    Ok(code)
}

/// Writes `code` as the model's `savl.clean_code` (replacing an earlier one).
pub fn set_clean_code(proto: &mut pb::ModelProto, code: &[f32]) {
    let value = code
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    proto.metadata_props.retain(|p| p.key != CLEAN_CODE_KEY);
    proto.metadata_props.push(pb::StringStringEntryProto {
        key: CLEAN_CODE_KEY.into(),
        value,
    });
}

/// Rewrites the graph so every consumer of `gate.concat` reads
/// `gate.concat · S + x_clean · (1 − S)` instead. `S = 1` leaves the graph untouched. The
/// constants take the element type of the graph's float weights (f16 files stay f16).
pub fn apply_strength(proto: &mut pb::ModelProto, strength: f32) -> Result<(), StrengthError> {
    if strength == 1.0 {
        return Ok(());
    }
    let code = clean_code(proto)?;
    let f16 = crate::model::precision_of(proto) == crate::Precision::F16;
    let graph = proto.graph.as_mut().ok_or(StrengthError::NoGates)?;
    let at = graph
        .node
        .iter()
        .position(|n| n.output.iter().any(|o| o == GATE_INPUT))
        .ok_or(StrengthError::NoGates)?;
    let scaled = format!("{GATE_INPUT}.strength.mul");
    let out = format!("{GATE_INPUT}.strength");
    for n in graph.node.iter_mut() {
        for i in n.input.iter_mut() {
            if i == GATE_INPUT {
                i.clone_from(&out);
            }
        }
    }
    let s_name = format!("{GATE_INPUT}.strength.s");
    let c_name = format!("{GATE_INPUT}.strength.offset");
    let offset: Vec<f32> = code.iter().map(|c| c * (1.0 - strength)).collect();
    graph
        .initializer
        .push(tensor(&s_name, &[], &[strength], f16));
    graph
        .initializer
        .push(tensor(&c_name, &[1, code.len() as i64, 1, 1], &offset, f16));
    // Right after the producer, so the node list stays in topological order.
    graph
        .node
        .insert(at + 1, node("Mul", &scaled, &[GATE_INPUT, &s_name]));
    graph
        .node
        .insert(at + 2, node("Add", &out, &[&scaled, &c_name]));
    Ok(())
}

fn node(op: &str, out: &str, inputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: out.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], v: &[f32], f16: bool) -> pb::TensorProto {
    let mut t = pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        ..Default::default()
    };
    if f16 {
        t.data_type = pb::tensor_proto::DataType::Float16 as i32;
        t.raw_data = v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
    } else {
        t.data_type = pb::tensor_proto::DataType::Float as i32;
        t.float_data = v.to_vec();
    }
    t
}
