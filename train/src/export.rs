//! ONNX export of the inference path (estimator → severity → gates → SR net; μ used, no
//! sampling), following the model-file contract of `ARCHITECTURE.md`:
//!
//! - input `lr` `[1, 3, H, W]` (H and W symbolic), RGB in [0, 1];
//! - outputs `sr` `[1, 3, 4H, 4W]`, then `mu` `[1, d, H, W]` and `severity` `[1, 1, H, W]`
//!   (guided nets only);
//! - metadata `savl.scale`, `savl.receptive_field`, `savl.preset`, `savl.precision` = `f32`,
//!   plus `savl.latent`, `savl.ablation`, `savl.severity_mean`, `savl.severity_std`.
//!
//! Opset 13, IR 8. Ops: Conv, LeakyRelu, Sigmoid, Mul, Add, Concat, Clip, Exp, ReduceMean, Sub,
//! Div, DepthToSpace (CRD), Resize (nearest, constant FLOAT scales). Node names are stable and
//! follow the candle variable names (`est.0.conv`, `body.3.conv`, `body.3.act`, `gate.2.conv`,
//! `gate.mul.2`, …). The severity uses fixed constants, so tile-by-tile inference is exact.

use anyhow::{ensure, Context, Result};
use candle_core::Tensor;
use prost::Message;
use savl_contract::onnx_proto::{
    attr_f, attr_i, attr_ints, attr_s, node, tensor_f32, Dim as DimValue,
};
use tract_onnx::pb::{
    tensor_proto::DataType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto,
};

use crate::nn::conv::Conv;
use crate::nn::Savl;
use savl_contract::keys;

/// ONNX opset written by the exporter.
pub const OPSET: i64 = 13;

/// Graph under construction.
#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

/// A FLOAT tensor's value info with the given dims.
fn value_info(name: &str, dims: &[DimValue]) -> ValueInfoProto {
    savl_contract::onnx_proto::value_info(name, DataType::Float, Some(dims))
}

impl Builder {
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<tract_onnx::pb::AttributeProto>,
    ) -> String {
        self.nodes.push(node(name, op, inputs, &[output], attrs));
        output.to_string()
    }

    fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        self.inits.push(tensor_f32(name, &dims, data));
        name.to_string()
    }

    fn conv(
        &mut self,
        name: &str,
        conv: &Conv,
        input: &str,
        output: Option<&str>,
    ) -> Result<String> {
        let w = tensor_data(&conv.weight)?;
        let b = tensor_data(&conv.bias)?;
        let (co, ci, k) = (conv.cout(), conv.cin(), conv.kernel());
        let wn = self.init_f32(&format!("{name}.weight"), &[co, ci, k, k], &w);
        let bn = self.init_f32(&format!("{name}.bias"), &[co], &b);
        let p = conv.padding as i64;
        let out = output
            .map(str::to_string)
            .unwrap_or_else(|| format!("{name}.conv"));
        Ok(self.node(
            "Conv",
            &format!("{name}.conv"),
            &[input, &wn, &bn],
            &out,
            vec![
                attr_ints("kernel_shape", &[k as i64, k as i64]),
                attr_ints("pads", &[p, p, p, p]),
                attr_ints("strides", &[1, 1]),
                attr_ints("dilations", &[1, 1]),
                attr_i("group", 1),
            ],
        ))
    }

    fn lrelu(&mut self, name: &str, input: &str, slope: f64) -> String {
        let out = format!("{name}.act");
        self.node(
            "LeakyRelu",
            &out,
            &[input],
            &out,
            vec![attr_f("alpha", slope as f32)],
        )
    }
}

fn tensor_data(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?)
}

/// Builds the ONNX model of `model`'s inference path.
pub fn to_onnx(model: &Savl) -> Result<ModelProto> {
    let cfg = &model.cfg;
    ensure!(
        cfg.ablation.has_estimator() || !cfg.ablation.guided(),
        "the {} model reads ground-truth maps, which the model-file contract has no input for",
        cfg.ablation
    );
    ensure!(
        cfg.scale == 4,
        "the model-file contract is ×4; this model is ×{}",
        cfg.scale
    );
    let slope = cfg.leaky_slope;
    let mut b = Builder::default();
    let h = DimValue::DimParam("H".into());
    let w = DimValue::DimParam("W".into());
    let h4 = DimValue::DimParam("H4".into());
    let w4 = DimValue::DimParam("W4".into());
    let one = DimValue::DimValue(1);
    let mut outputs = vec![value_info(
        "sr",
        &[one.clone(), DimValue::DimValue(3), h4, w4],
    )];

    let guide = if let Some(est) = &model.estimator {
        let mut x = "lr".to_string();
        for (i, c) in est.convs.iter().enumerate() {
            let n = format!("est.{i}");
            x = b.conv(&n, c, &x, None)?;
            x = b.lrelu(&n, &x, slope);
        }
        let mu = b.conv("est.mu", &est.mu, &x, Some("mu"))?;
        let lv = b.conv("est.logvar", &est.logvar, &x, None)?;
        let (lo, hi) = cfg.logvar_range;
        let lo_n = b.init_f32("est.logvar.min", &[], &[lo]);
        let hi_n = b.init_f32("est.logvar.max", &[], &[hi]);
        let lv = b.node(
            "Clip",
            "est.logvar.clip",
            &[&lv, &lo_n, &hi_n],
            "est.logvar.clip",
            vec![],
        );
        let var = b.node("Exp", "sev.exp", &[&lv], "sev.exp", vec![]);
        let mv = b.node(
            "ReduceMean",
            "sev.mean",
            &[&var],
            "sev.mean",
            vec![attr_ints("axes", &[1]), attr_i("keepdims", 1)],
        );
        let (m, s) = model.severity_constants()?;
        let m_n = b.init_f32("sev.center", &[], &[m]);
        let s_n = b.init_f32("sev.scale", &[], &[s]);
        let c = b.node("Sub", "sev.sub", &[&mv, &m_n], "sev.sub", vec![]);
        let d = b.node("Div", "sev.div", &[&c, &s_n], "sev.div", vec![]);
        let lo3 = b.init_f32("sev.min", &[], &[-3.0]);
        let hi3 = b.init_f32("sev.max", &[], &[3.0]);
        let sev = b.node("Clip", "sev.clip", &[&d, &lo3, &hi3], "severity", vec![]);
        let g = b.node(
            "Concat",
            "gate.concat",
            &[&mu, &sev],
            "gate.concat",
            vec![attr_i("axis", 1)],
        );
        outputs.push(value_info(
            "mu",
            &[
                one.clone(),
                DimValue::DimValue(cfg.latent as i64),
                h.clone(),
                w.clone(),
            ],
        ));
        outputs.push(value_info(
            "severity",
            &[one.clone(), DimValue::DimValue(1), h.clone(), w.clone()],
        ));
        Some(g)
    } else {
        None
    };

    let mut gates = Vec::new();
    if let Some(g) = &guide {
        for (k, c) in model.sr.gates.iter().enumerate() {
            let n = format!("gate.{k}");
            let x = b.conv(&n, c, g, None)?;
            let out = format!("{n}.sigmoid");
            gates.push(b.node("Sigmoid", &out, &[&x], &out, vec![]));
        }
    }

    let f0 = b.conv("head", &model.sr.head, "lr", None)?;
    let mut f = f0.clone();
    let every = cfg.gate_every;
    for (i, c) in model.sr.body.iter().enumerate() {
        let n = format!("body.{i}");
        f = b.conv(&n, c, &f, None)?;
        f = b.lrelu(&n, &f, slope);
        if (i + 1) % every == 0 {
            let k = (i + 1) / every - 1;
            if let Some(g) = gates.get(k) {
                let name = format!("gate.mul.{k}");
                f = b.node("Mul", &name, &[&f, g], &name, vec![]);
            }
        }
    }
    let f = b.node("Add", "body.skip", &[&f, &f0], "body.skip", vec![]);
    let t = b.conv("tail", &model.sr.tail, &f, None)?;
    let s = cfg.scale as i64;
    let shuf = b.node(
        "DepthToSpace",
        "tail.shuffle",
        &[&t],
        "tail.shuffle",
        vec![attr_i("blocksize", s), attr_s("mode", "CRD")],
    );
    let scales = b.init_f32("up.scales", &[4], &[1.0, 1.0, s as f32, s as f32]);
    let up = b.node(
        "Resize",
        "up.resize",
        &["lr", "", &scales],
        "up.resize",
        vec![
            attr_s("mode", "nearest"),
            attr_s("coordinate_transformation_mode", "asymmetric"),
            attr_s("nearest_mode", "floor"),
        ],
    );
    b.node("Add", "out.add", &[&shuf, &up], "sr", vec![]);

    let graph = GraphProto {
        node: b.nodes,
        name: format!("savl-{}-x{}", cfg.preset, cfg.scale),
        initializer: b.inits,
        input: vec![value_info("lr", &[one, DimValue::DimValue(3), h, w])],
        output: outputs,
        ..Default::default()
    };
    let (m, sd) = model.severity_constants()?;
    let props = [
        (keys::SCALE, cfg.scale.to_string()),
        (keys::RECEPTIVE_FIELD, cfg.receptive_field().to_string()),
        (keys::PRESET, cfg.preset.clone()),
        (keys::PRECISION, "f32".to_string()),
        (
            keys::LATENT,
            if cfg.ablation.has_estimator() {
                cfg.latent.to_string()
            } else {
                "0".into()
            },
        ),
        (keys::ABLATION, cfg.ablation.name().to_string()),
        (keys::SEVERITY_MEAN, m.to_string()),
        (keys::SEVERITY_STD, sd.to_string()),
        (keys::MACS_PER_LR_PIXEL, cfg.macs_per_lr_pixel().to_string()),
    ];
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "savl-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: props
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.into(),
                value: v,
            })
            .collect(),
        ..Default::default()
    })
}

/// The encoded ONNX bytes of `model`'s inference path.
pub fn to_onnx_bytes(model: &Savl) -> Result<Vec<u8>> {
    Ok(to_onnx(model)?.encode_to_vec())
}

/// Writes `model`'s inference path to `path`.
pub fn write_onnx(model: &Savl, path: &std::path::Path) -> Result<()> {
    let bytes = to_onnx_bytes(model)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
