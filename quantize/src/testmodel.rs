//! A small savl-like ×4 model built in memory (random weights), for tests, examples and the
//! ONNX check script. It uses every op family of the product graph: Conv 3×3/1×1, LeakyRelu,
//! Sigmoid·Mul gates, Exp·Mul modulation, ReduceMean, Sub/Div/Clip, Split, Concat,
//! DepthToSpace (CRD) and a nearest-Resize skip with FLOAT scales.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;

use crate::onnx_graph::{
    attr_f, attr_i, attr_ints, attr_s, node, tensor_f32, tensor_i64, value_info,
};
use savl_contract::keys;

/// Shape of the small model.
#[derive(Debug, Clone, Copy)]
pub struct SmallModel {
    /// Body channels.
    pub channels: usize,
    /// Body 3×3 convs (a gate after every second).
    pub body: usize,
    /// Degradation code dimension (`mu` channels).
    pub dim: usize,
    /// Weight seed.
    pub seed: u64,
}

impl Default for SmallModel {
    fn default() -> Self {
        SmallModel {
            channels: 16,
            body: 4,
            dim: 4,
            seed: 7,
        }
    }
}

struct B {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    rng: u64,
    n: usize,
}

impl B {
    fn uniform(&mut self) -> f32 {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.rng >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn fresh(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}_{}", self.n)
    }
    fn konst(&mut self, dims: &[i64], data: &[f32]) -> String {
        let name = self.fresh("c");
        self.inits.push(tensor_f32(&name, dims, data));
        name
    }
    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        self.op_n(op, inputs, attrs, 1).remove(0)
    }
    fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<pb::AttributeProto>,
        n: usize,
    ) -> Vec<String> {
        let name = self.fresh(op);
        let outs: Vec<String> = (0..n).map(|i| format!("{name}_y{i}")).collect();
        let o: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
        self.nodes.push(node(&name, op, inputs, &o, attrs));
        outs
    }
    fn conv(&mut self, x: &str, cin: usize, cout: usize, k: usize, gain: f32) -> String {
        let scale = gain * 1.7 / ((cin * k * k) as f32).sqrt();
        let w: Vec<f32> = (0..cout * cin * k * k)
            .map(|_| self.uniform() * scale)
            .collect();
        let b: Vec<f32> = (0..cout).map(|_| self.uniform() * 0.05).collect();
        let wn = self.fresh("w");
        self.inits.push(tensor_f32(
            &wn,
            &[cout as i64, cin as i64, k as i64, k as i64],
            &w,
        ));
        let bn = self.fresh("b");
        self.inits.push(tensor_f32(&bn, &[cout as i64], &b));
        let p = (k / 2) as i64;
        self.op(
            "Conv",
            &[x, &wn, &bn],
            vec![
                attr_ints("kernel_shape", &[k as i64, k as i64]),
                attr_ints("pads", &[p, p, p, p]),
            ],
        )
    }
    fn lrelu(&mut self, x: &str) -> String {
        self.op("LeakyRelu", &[x], vec![attr_f("alpha", 0.1)])
    }
}

impl SmallModel {
    /// The model.
    pub fn proto(&self) -> pb::ModelProto {
        let (c, d) = (self.channels, self.dim);
        let blocks = (self.body / 2).max(1);
        let mut b = B {
            nodes: vec![],
            inits: vec![],
            rng: self.seed ^ 0x5eed,
            n: 0,
        };
        // Estimator: mu (d channels) and a standardised severity in [-3, 3].
        let e = b.conv("lr", 3, 8, 3, 1.0);
        let e = b.lrelu(&e);
        let e = b.conv(&e, 8, d + 1, 1, 1.0);
        let sizes = b.fresh("split");
        b.inits.push(tensor_i64(&sizes, &[2], &[d as i64, 1]));
        let parts = b.op_n("Split", &[&e, &sizes], vec![attr_i("axis", 1)], 2);
        let mu = parts[0].clone();
        let (m0, s0, lo, hi) = (
            b.konst(&[], &[0.1]),
            b.konst(&[], &[0.5]),
            b.konst(&[], &[-3.0]),
            b.konst(&[], &[3.0]),
        );
        let sv = b.op("Sub", &[&parts[1], &m0], vec![]);
        let sv = b.op("Div", &[&sv, &s0], vec![]);
        let sev = b.op("Clip", &[&sv, &lo, &hi], vec![]);
        // Modulation from [mu ‖ s]: sigmoid gates (split per block) and an exp scale.
        let cat = b.op("Concat", &[&mu, &sev], vec![attr_i("axis", 1)]);
        let gl = b.conv(&cat, d + 1, blocks * c, 1, 1.0);
        let gs = b.op("Sigmoid", &[&gl], vec![]);
        let gates = if blocks == 1 {
            vec![gs]
        } else {
            let gsz = b.fresh("split");
            b.inits
                .push(tensor_i64(&gsz, &[blocks as i64], &vec![c as i64; blocks]));
            b.op_n("Split", &[&gs, &gsz], vec![attr_i("axis", 1)], blocks)
        };
        let ml = b.conv(&cat, d + 1, c, 1, 0.5);
        let (l1, h1) = (b.konst(&[], &[-1.0]), b.konst(&[], &[1.0]));
        let ml = b.op("Clip", &[&ml, &l1, &h1], vec![]);
        let mscale = b.op("Exp", &[&ml], vec![]);
        // Body: head on [lr ‖ mean_c(lr)], modulated, gated blocks, long skip.
        let mean = b.op(
            "ReduceMean",
            &["lr"],
            vec![attr_ints("axes", &[1]), attr_i("keepdims", 1)],
        );
        let inp = b.op("Concat", &["lr", &mean], vec![attr_i("axis", 1)]);
        let head = b.conv(&inp, 4, c, 3, 1.0);
        let head = b.op("Mul", &[&head, &mscale], vec![]);
        let mut x = head.clone();
        for i in 0..self.body {
            let y = b.conv(&x, c, c, 3, 1.0);
            x = b.lrelu(&y);
            if i % 2 == 1 {
                x = b.op("Mul", &[&x, &gates[(i / 2).min(blocks - 1)]], vec![]);
            }
        }
        x = b.op("Add", &[&x, &head], vec![]);
        let t = b.conv(&x, c, 48, 3, 0.3);
        let d2s = b.op(
            "DepthToSpace",
            &[&t],
            vec![attr_i("blocksize", 4), attr_s("mode", "CRD")],
        );
        let scales = b.konst(&[4], &[1.0, 1.0, 4.0, 4.0]);
        let up = b.op(
            "Resize",
            &["lr", "", &scales],
            vec![
                attr_s("mode", "nearest"),
                attr_s("coordinate_transformation_mode", "asymmetric"),
                attr_s("nearest_mode", "floor"),
            ],
        );
        let sr = b.op("Add", &[&d2s, &up], vec![]);
        for (from, to) in [
            (sr.as_str(), "sr"),
            (mu.as_str(), "mu"),
            (sev.as_str(), "severity"),
        ] {
            b.nodes.push(node(
                &format!("out_{to}"),
                "Identity",
                &[from],
                &[to],
                vec![],
            ));
        }
        let hw = || [Dim::DimParam("H".into()), Dim::DimParam("W".into())];
        let dims = |ch: i64| {
            let [h, w] = hw();
            vec![Dim::DimValue(1), Dim::DimValue(ch), h, w]
        };
        let graph = pb::GraphProto {
            name: "savl-quantize-small".into(),
            node: b.nodes,
            initializer: b.inits,
            input: vec![value_info("lr", DataType::Float, Some(&dims(3)))],
            output: vec![
                value_info(
                    "sr",
                    DataType::Float,
                    Some(&[
                        Dim::DimValue(1),
                        Dim::DimValue(3),
                        Dim::DimParam("H4".into()),
                        Dim::DimParam("W4".into()),
                    ]),
                ),
                value_info("mu", DataType::Float, Some(&dims(d as i64))),
                value_info("severity", DataType::Float, Some(&dims(1))),
            ],
            ..Default::default()
        };
        let meta = [
            (keys::SCALE, "4".to_string()),
            (keys::RECEPTIVE_FIELD, (self.body + 3).to_string()),
            (keys::PRESET, "quantize-test".to_string()),
            (keys::PRECISION, "f32".to_string()),
        ];
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            producer_name: "savl-quantize-testmodel".into(),
            graph: Some(graph),
            metadata_props: meta
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto {
                    key: k.to_string(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The model as ONNX bytes.
    pub fn onnx_bytes(&self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }
}
