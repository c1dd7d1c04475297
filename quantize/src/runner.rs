//! Running an ONNX model through tract with a concrete input shape (`[1, 3, h, w]`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::prelude::*;

use crate::error::{QuantError, Result};
use crate::onnx_graph;

type Plan = Arc<TypedSimplePlan>;

/// One output of a run, converted to f32.
#[derive(Debug, Clone)]
pub struct Output {
    /// Graph output name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// A model ready to run at any concrete `[1, C, h, w]`; optimised plans are cached per shape.
pub struct Runner {
    what: String,
    model: InferenceModel,
    input_f16: bool,
    channels: usize,
    output_names: Vec<String>,
    plans: Mutex<HashMap<(usize, usize), Plan>>,
}

impl Runner {
    /// Parses a model; `what` names it in errors (usually the file name).
    pub fn new(proto: &pb::ModelProto, what: &str) -> Result<Runner> {
        let g = onnx_graph::graph(proto);
        let input = g
            .input
            .iter()
            .find(|i| !g.initializer.iter().any(|t| t.name == i.name))
            .ok_or_else(|| QuantError::graph(what, "no graph input"))?;
        let input_f16 = onnx_graph::elem_type(input) == Some(DataType::Float16 as i32);
        let channels = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => t
                .shape
                .as_ref()
                .and_then(|s| s.dim.get(1))
                .and_then(|d| match d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v as usize),
                    _ => None,
                })
                .unwrap_or(3),
            None => 3,
        };
        let output_names = g.output.iter().map(|o| o.name.clone()).collect();
        let bytes = proto.encode_to_vec();
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| QuantError::tract(what, e))?;
        Ok(Runner {
            what: what.into(),
            model,
            input_f16,
            channels,
            output_names,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Input channel count (3 for savl models).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The optimised typed model for an `h × w` input (for inspection).
    pub fn optimized(&self, h: usize, w: usize) -> Result<TypedModel> {
        let dt = if self.input_f16 {
            f16::datum_type()
        } else {
            f32::datum_type()
        };
        let fact = InferenceFact::dt_shape(dt, tvec![1, self.channels, h, w]);
        self.model
            .clone()
            .with_input_fact(0, fact)
            .and_then(|m| m.into_optimized())
            .map_err(|e| QuantError::tract(format!("{} at {w}×{h}", self.what), e))
    }

    fn plan(&self, h: usize, w: usize) -> Result<Plan> {
        if let Some(p) = self.plans.lock().unwrap().get(&(h, w)) {
            return Ok(p.clone());
        }
        let plan = self
            .optimized(h, w)?
            .into_runnable()
            .map_err(|e| QuantError::tract(self.what.clone(), e))?;
        self.plans.lock().unwrap().insert((h, w), plan.clone());
        Ok(plan)
    }

    /// Runs on a planar `[1, C, h, w]` f32 input; returns every graph output as f32.
    pub fn run(&self, input: &[f32], h: usize, w: usize) -> Result<Vec<Output>> {
        let plan = self.plan(h, w)?;
        let err = |e| QuantError::tract(self.what.clone(), e);
        let t = Tensor::from_shape(&[1, self.channels, h, w], input).map_err(err)?;
        let t = if self.input_f16 {
            t.cast_to::<f16>().map_err(err)?.into_owned()
        } else {
            t
        };
        let outs = plan.run(tvec![t.into()]).map_err(err)?;
        outs.iter()
            .zip(&self.output_names)
            .map(|(o, name)| {
                let o = o.cast_to::<f32>().map_err(err)?;
                let data = o
                    .try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>().map(|s| s.to_vec()));
                Ok(Output {
                    name: name.clone(),
                    shape: o.shape().to_vec(),
                    data: data.map_err(err)?,
                })
            })
            .collect()
    }

    /// Runs and returns the output called `name`.
    pub fn run_output(&self, input: &[f32], h: usize, w: usize, name: &str) -> Result<Output> {
        self.run(input, h, w)?
            .into_iter()
            .find(|o| o.name == name)
            .ok_or_else(|| {
                QuantError::graph(self.what.clone(), format!("no output named `{name}`"))
            })
    }
}

/// Name of the super-resolved output: `sr` if present, else the first output.
pub fn sr_output_name(proto: &pb::ModelProto) -> String {
    let g = onnx_graph::graph(proto);
    g.output
        .iter()
        .find(|o| o.name == "sr")
        .or(g.output.first())
        .map(|o| o.name.clone())
        .unwrap_or_default()
}
