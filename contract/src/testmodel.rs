//! A small synthetic savl-like ONNX model, built in memory, for tests and benches.
//!
//! Same shape of graph as SAVL-lite (estimator → `mu`/`severity`, gates
//! `sigmoid(conv1x1([μ‖s]))` split per block and multiplied after every 2nd body conv,
//! tail conv → DepthToSpace(4, CRD) + nearest ×4 skip), with random weights; with
//! [`TestModel::product_ops`], every op family of the exported product graph too.

use prost::Message;

use crate::keys;
use crate::onnx_proto::{attr_f, attr_i, attr_ints, attr_s, node, pb, tensor_f32, tensor_i64, Dim};
use pb::tensor_proto::DataType;

/// Shape of the synthetic model.
#[derive(Debug, Clone, Copy)]
pub struct TestModel {
    /// Body channels.
    pub channels: usize,
    /// Body 3×3 convs (gates after every 2nd).
    pub body: usize,
    /// Degradation code dimension.
    pub dim: usize,
    /// Weight seed.
    pub seed: u64,
    /// Write `mu` and `severity` outputs.
    pub degradation_outputs: bool,
    /// Write savl metadata props.
    pub metadata: bool,
    /// Upscaling factor (2–4 in tests; savl models are ×4).
    pub scale: usize,
    /// Build the estimator and the head as the exported SAVL nets do, so that every op family of
    /// the product graph appears (the quantizer's tests need them): one estimator conv split into
    /// `mu` and a severity standardised by Sub/Div/Clip (instead of two convs and Tanh·3), a head
    /// on `[lr ‖ ReduceMean_c(lr)]` scaled by `Exp(Clip(conv1x1([μ ‖ s])))`, a long skip over
    /// the body, and `sr` declared `[1, 3, H4, W4]` (instead of without a shape).
    pub product_ops: bool,
}

impl Default for TestModel {
    fn default() -> Self {
        TestModel {
            channels: 8,
            body: 4,
            dim: 4,
            seed: 1,
            degradation_outputs: true,
            metadata: true,
            scale: 4,
            product_ops: false,
        }
    }
}

struct G {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    rng: u64,
    n: usize,
}

impl G {
    fn uniform(&mut self) -> f32 {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.rng >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn name(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}_{}", self.n)
    }
    fn init_f32(&mut self, dims: &[i64], data: Vec<f32>) -> String {
        let name = self.name("w");
        self.inits.push(tensor_f32(&name, dims, &data));
        name
    }
    fn init_i64(&mut self, data: &[i64]) -> String {
        let name = self.name("k");
        self.inits
            .push(tensor_i64(&name, &[data.len() as i64], data));
        name
    }
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<pb::AttributeProto>,
        outputs: usize,
    ) -> Vec<String> {
        let name = self.name(op);
        let outs: Vec<String> = (0..outputs).map(|i| format!("{name}_o{i}")).collect();
        let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.nodes.push(node(&name, op, inputs, &out_refs, attrs));
        outs
    }
    fn conv(&mut self, x: &str, cin: usize, cout: usize, k: usize) -> String {
        self.conv_gain(x, cin, cout, k, 1.0)
    }
    /// A conv with weights `gain` times the usual size.
    fn conv_gain(&mut self, x: &str, cin: usize, cout: usize, k: usize, gain: f32) -> String {
        let fan = (cin * k * k) as f32;
        let scale = 1.5 * gain / fan.sqrt();
        let w: Vec<f32> = (0..cout * cin * k * k)
            .map(|_| self.uniform() * scale)
            .collect();
        let b: Vec<f32> = (0..cout).map(|_| self.uniform() * 0.05).collect();
        let w = self.init_f32(&[cout as i64, cin as i64, k as i64, k as i64], w);
        let b = self.init_f32(&[cout as i64], b);
        let p = (k / 2) as i64;
        self.node(
            "Conv",
            &[x, &w, &b],
            vec![
                attr_ints("kernel_shape", &[k as i64, k as i64]),
                attr_ints("pads", &[p, p, p, p]),
            ],
            1,
        )
        .remove(0)
    }
    fn lrelu(&mut self, x: &str) -> String {
        self.node("LeakyRelu", &[x], vec![attr_f("alpha", 0.1)], 1)
            .remove(0)
    }
    /// A one-output node.
    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        self.node(op, inputs, attrs, 1).remove(0)
    }
    /// A scalar FLOAT constant.
    fn scalar(&mut self, v: f32) -> String {
        self.init_f32(&[], vec![v])
    }
}

/// A FLOAT tensor's value info with the given dims.
fn value_info(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    crate::onnx_proto::value_info(name, DataType::Float, Some(dims))
}

impl TestModel {
    /// The default model with `channels` body channels and `body` 3×3 convs.
    pub fn sized(channels: usize, body: usize) -> TestModel {
        TestModel {
            channels,
            body,
            ..Default::default()
        }
    }

    /// LR-pixel radius of the receptive field of `sr`.
    pub fn receptive_field(&self) -> usize {
        self.body + 2
    }

    /// The model as ONNX bytes.
    pub fn onnx_bytes(&self) -> Vec<u8> {
        let (c, d) = (self.channels, self.dim);
        let blocks = self.body / 2;
        let mut g = G {
            nodes: vec![],
            inits: vec![],
            rng: self.seed.wrapping_add(0x9e37),
            n: 0,
        };
        // Estimator.
        let e = g.conv("lr", 3, 8, 3);
        let e = g.lrelu(&e);
        let (mu, sev) = if self.product_ops {
            // One conv for [μ ‖ u], split; s = clip((u − 0.1) / 0.5, −3, 3).
            let e = g.conv(&e, 8, d + 1, 1);
            let sizes = g.init_i64(&[d as i64, 1]);
            let parts = g.node("Split", &[&e, &sizes], vec![attr_i("axis", 1)], 2);
            let (m0, s0, lo, hi) = (g.scalar(0.1), g.scalar(0.5), g.scalar(-3.0), g.scalar(3.0));
            let sv = g.op("Sub", &[&parts[1], &m0], vec![]);
            let sv = g.op("Div", &[&sv, &s0], vec![]);
            (parts[0].clone(), g.op("Clip", &[&sv, &lo, &hi], vec![]))
        } else {
            let mu = g.conv(&e, 8, d, 1);
            let sv = g.conv(&e, 8, 1, 1);
            let sv = g.node("Tanh", &[&sv], vec![], 1).remove(0);
            let three = g.init_f32(&[], vec![3.0]);
            (mu, g.node("Mul", &[&sv, &three], vec![], 1).remove(0))
        };
        // Gates: one conv1x1 over [mu ‖ s] → B·C → sigmoid → split per block.
        let cat = g
            .node("Concat", &[&mu, &sev], vec![attr_i("axis", 1)], 1)
            .remove(0);
        let gates = if blocks > 0 {
            let gl = g.conv(&cat, d + 1, blocks * c, 1);
            let gs = g.node("Sigmoid", &[&gl], vec![], 1).remove(0);
            if blocks == 1 {
                vec![gs]
            } else {
                let split = g.init_i64(&vec![c as i64; blocks]);
                g.node("Split", &[&gs, &split], vec![attr_i("axis", 1)], blocks)
            }
        } else {
            vec![]
        };
        // Body.
        let head = if self.product_ops {
            // Head on [lr ‖ mean_c(lr)], scaled by exp(clip(conv1x1([μ ‖ s]), −1, 1)).
            let ml = g.conv_gain(&cat, d + 1, c, 1, 0.5);
            let (lo, hi) = (g.scalar(-1.0), g.scalar(1.0));
            let ml = g.op("Clip", &[&ml, &lo, &hi], vec![]);
            let mscale = g.op("Exp", &[&ml], vec![]);
            let keep = vec![attr_ints("axes", &[1]), attr_i("keepdims", 1)];
            let mean = g.op("ReduceMean", &["lr"], keep);
            let inp = g.op("Concat", &["lr", &mean], vec![attr_i("axis", 1)]);
            let head = g.conv(&inp, 4, c, 3);
            g.op("Mul", &[&head, &mscale], vec![])
        } else {
            g.conv("lr", 3, c, 3)
        };
        let mut x = head.clone();
        for i in 0..self.body {
            let y = g.conv(&x, c, c, 3);
            x = g.lrelu(&y);
            if i % 2 == 1 {
                x = g.node("Mul", &[&x, &gates[i / 2]], vec![], 1).remove(0);
            }
        }
        let s = self.scale;
        let t = if self.product_ops {
            x = g.op("Add", &[&x, &head], vec![]);
            g.conv_gain(&x, c, 3 * s * s, 3, 0.3)
        } else {
            g.conv(&x, c, 3 * s * s, 3)
        };
        let d2s = g
            .node(
                "DepthToSpace",
                &[&t],
                vec![attr_i("blocksize", s as i64), attr_s("mode", "CRD")],
                1,
            )
            .remove(0);
        let scales = g.init_f32(&[4], vec![1.0, 1.0, s as f32, s as f32]);
        let up = g
            .node(
                "Resize",
                &["lr", "", &scales],
                vec![
                    attr_s("mode", "nearest"),
                    attr_s("coordinate_transformation_mode", "asymmetric"),
                    attr_s("nearest_mode", "floor"),
                ],
                1,
            )
            .remove(0);
        let sr = g.node("Add", &[&d2s, &up], vec![], 1).remove(0);
        // Name the outputs.
        let mut outputs = vec![];
        let ident = |g: &mut G, from: &str, to: &str| {
            g.nodes.push(node(
                &format!("out_{to}"),
                "Identity",
                &[from],
                &[to],
                vec![],
            ));
        };
        let h = || Dim::DimParam("H".into());
        let w = || Dim::DimParam("W".into());
        ident(&mut g, &sr, "sr");
        outputs.push(value_info("sr", &[Dim::DimValue(1), Dim::DimValue(3)]));
        if self.degradation_outputs {
            ident(&mut g, &mu, "mu");
            ident(&mut g, &sev, "severity");
            outputs.push(value_info(
                "mu",
                &[Dim::DimValue(1), Dim::DimValue(d as i64), h(), w()],
            ));
            outputs.push(value_info(
                "severity",
                &[Dim::DimValue(1), Dim::DimValue(1), h(), w()],
            ));
        }
        if self.product_ops {
            // `sr` declared as the exporter declares it (the ONNX checker wants a shape).
            let [h4, w4] = ["H4", "W4"].map(|p| Dim::DimParam(p.into()));
            outputs[0] = value_info("sr", &[Dim::DimValue(1), Dim::DimValue(3), h4, w4]);
        } else if let Some(pb::type_proto::Value::TensorType(t)) =
            outputs[0].r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            // Clear the shape of "sr" beyond N, C: tract infers it.
            t.shape = None;
        }
        let graph = pb::GraphProto {
            name: "savl-test".into(),
            node: g.nodes,
            initializer: g.inits,
            input: vec![value_info(
                "lr",
                &[Dim::DimValue(1), Dim::DimValue(3), h(), w()],
            )],
            output: outputs,
            ..Default::default()
        };
        let mut metadata_props = vec![];
        if self.metadata {
            for (k, v) in [
                (keys::SCALE, self.scale.to_string()),
                (keys::RECEPTIVE_FIELD, self.receptive_field().to_string()),
                (keys::PRESET, "test".to_string()),
                (keys::PRECISION, "f32".to_string()),
            ] {
                metadata_props.push(pb::StringStringEntryProto {
                    key: k.into(),
                    value: v,
                });
            }
        }
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            producer_name: "savl-testmodel".into(),
            graph: Some(graph),
            metadata_props,
            ..Default::default()
        }
        .encode_to_vec()
    }
}
