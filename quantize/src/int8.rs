//! Static post-training int8 quantization in QOperator form.
//!
//! * Weights: symmetric int8 per output channel (`[-127, 127]`, zero point 0).
//! * Activations: per-tensor u8 with a zero point, ranges from calibration ([`crate::calibrate`]).
//! * Each quantized `Conv` becomes `QLinearConv` (bias int32 at scale `s_x · s_w[c]`), which tract
//!   runs as an i8×i8→i32 matmul with requantization fused. Its output is dequantized for the
//!   float parts (activations, gates, modulation, depth-to-space, skips); a conv reading another
//!   quantized conv's output takes the u8 tensor directly. `DequantizeLinear → LeakyRelu →
//!   QuantizeLinear` chains become lookup tables in tract.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use crate::calibrate::{self, Method, QParams};
use crate::error::{QuantError, Result};
use crate::images::Planar;
use crate::onnx_graph::{self as og, node};
use crate::policy::{self, Policy};
use crate::runner::{self, Runner};
use savl_contract::keys;

/// Weights of one conv quantized per output channel: `w ≈ q · scale[c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelQuant {
    /// One scale per output channel.
    pub scales: Vec<f32>,
    /// Quantized weights, same layout as the input (`[cout, ...]`).
    pub q: Vec<i8>,
}

/// Symmetric per-output-channel int8 quantization of `w` laid out `[cout, rest]`.
pub fn quantize_per_channel(w: &[f32], cout: usize) -> ChannelQuant {
    let per = w.len() / cout.max(1);
    let mut scales = Vec::with_capacity(cout);
    let mut q = Vec::with_capacity(w.len());
    for ch in w.chunks(per.max(1)) {
        let m = ch.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            ch.iter()
                .map(|v| (v / s).round_ties_even().clamp(-127.0, 127.0) as i8),
        );
    }
    ChannelQuant { scales, q }
}

/// The f32 weights a [`ChannelQuant`] stands for.
pub fn dequantize_per_channel(cq: &ChannelQuant) -> Vec<f32> {
    let per = cq.q.len() / cq.scales.len().max(1);
    cq.q.iter()
        .enumerate()
        .map(|(i, q)| *q as f32 * cq.scales[i / per.max(1)])
        .collect()
}

/// ONNX form of a quantized convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ConvForm {
    /// `QLinearConv`: u8 in, u8 out, requantization inside the op (the shipped form).
    #[default]
    #[value(name = "qlinear")]
    QLinear,
    /// `ConvInteger` (u8 in, i32 out, no weight zero point) → `Cast` → per-channel float
    /// `Mul` (`s_x·s_w`) and bias `Add`: requantization in float (an experiment for tract speed).
    #[value(name = "integer")]
    Integer,
}

/// Options of [`quantize_int8`].
#[derive(Debug, Clone, Default)]
pub struct Int8Options {
    /// What stays in f32.
    pub policy: Policy,
    /// Conv node names kept in f32 regardless of the policy.
    pub keep_f32: Vec<String>,
    /// Target PSNR (dB) against f32 on the calibration images for [`Policy::Auto`];
    /// default: the int8 budget plus 3 dB.
    pub auto_target_db: Option<f64>,
    /// At most this many convs kept by [`Policy::Auto`] (default: a quarter of them, at least 2).
    pub auto_max_keep: Option<usize>,
    /// Range selection for activations.
    pub method: Method,
    /// ONNX form of the quantized convs.
    pub form: ConvForm,
}

/// What [`quantize_int8`] did.
#[derive(Debug, Clone)]
pub struct Int8Summary {
    /// Conv nodes turned into `QLinearConv`.
    pub quantized: Vec<String>,
    /// Conv nodes left in f32.
    pub kept_f32: Vec<String>,
    /// PSNR (dB) of `sr` against f32 on the calibration images (at most 8 of them).
    pub calib_psnr: f64,
    /// Relative RMSE of the quantized weights, `rms(w − ŵ) / rms(w)`, over all quantized convs.
    pub weight_rel_rmse: f64,
}

#[derive(Debug, Clone)]
struct ConvInfo {
    name: String,
    x: String,
    y: String,
    w: Vec<f32>,
    w_dims: Vec<i64>,
    b: Option<Vec<f32>>,
}

fn conv_infos(g: &pb::GraphProto) -> Vec<ConvInfo> {
    let inits = og::initializers(g);
    g.node
        .iter()
        .filter(|n| n.op_type == "Conv" && n.input.len() >= 2)
        .filter_map(|n| {
            let wt = inits.get(n.input[1].as_str())?;
            if wt.data_type != DataType::Float as i32 || wt.dims.len() != 4 {
                return None;
            }
            let w = og::tensor_to_f32(wt)?;
            let b = match n.input.get(2).filter(|s| !s.is_empty()) {
                Some(bn) => {
                    let bt = inits.get(bn.as_str())?;
                    Some(og::tensor_to_f32(bt)?)
                }
                None => None,
            };
            Some(ConvInfo {
                name: n.name.clone(),
                x: n.input[0].clone(),
                y: n.output[0].clone(),
                w,
                w_dims: wt.dims.clone(),
                b,
            })
        })
        .collect()
}

/// Quantizes `model` to int8 with activation ranges from `calib` (f32 runs through tract).
/// `what` names the model in errors.
pub fn quantize_int8(
    model: &pb::ModelProto,
    calib: &[Planar],
    opts: &Int8Options,
    what: &str,
) -> Result<(pb::ModelProto, Int8Summary)> {
    if calib.is_empty() {
        return Err(QuantError::graph(what, "no calibration images"));
    }
    let mut model = model.clone();
    let g = model.graph.as_mut().expect("decoded model has a graph");
    og::ensure_node_names(g);
    let convs = conv_infos(g);
    if convs.is_empty() {
        return Err(QuantError::graph(
            what,
            "no Conv with constant FLOAT weights to quantize",
        ));
    }
    for k in &opts.keep_f32 {
        if !g.node.iter().any(|n| &n.name == k) {
            return Err(QuantError::graph(
                what,
                format!("--keep-f32: no node named `{k}`"),
            ));
        }
    }
    // Calibration.
    let graph_inputs: HashSet<String> = g.input.iter().map(|i| i.name.clone()).collect();
    let mut tensors: Vec<String> = vec![];
    for c in &convs {
        for t in [&c.x, &c.y] {
            if !tensors.contains(t) {
                tensors.push(t.clone());
            }
        }
    }
    let stats = calibrate::collect(&model, &tensors, calib, what)?;
    let mut qp = HashMap::new();
    for t in &tensors {
        let s = stats.get(t).ok_or_else(|| {
            QuantError::graph(what, format!("calibration produced no values for `{t}`"))
        })?;
        let (lo, hi) = if graph_inputs.contains(t) {
            // The model input: 8-bit images in [0, 1] are then exact.
            (s.min.min(0.0), s.max.max(1.0))
        } else {
            calibrate::choose_range(s, opts.method)
        };
        qp.insert(t.clone(), QParams::from_range(lo, hi));
    }

    // Reference outputs for the policy and the summary.
    let sr = runner::sr_output_name(&model);
    let eval: Vec<&Planar> = calib.iter().take(8).collect();
    let f32_runner = Runner::new(&model, what)?;
    let mut reference = vec![];
    for img in &eval {
        reference.extend(f32_runner.run_output(&img.data, img.h, img.w, &sr)?.data);
    }
    let score = |keep: &HashSet<String>| -> Result<f64> {
        let m = build(&model, &convs, &qp, keep, opts.form);
        let r = Runner::new(&m, what)?;
        let mut out = Vec::with_capacity(reference.len());
        for img in &eval {
            out.extend(r.run_output(&img.data, img.h, img.w, &sr)?.data);
        }
        Ok(savl_contract::metrics::psnr_f32(&reference, &out))
    };

    let mut keep: HashSet<String> = opts.keep_f32.iter().cloned().collect();
    match opts.policy {
        Policy::All => {}
        Policy::KeepEnds => keep.extend(policy::end_convs(model.graph.as_ref().unwrap())),
        Policy::Auto => {
            let target = opts
                .auto_target_db
                .unwrap_or(crate::budget::INT8.min_psnr_vs_f32 + 3.0);
            let max_keep = opts.auto_max_keep.unwrap_or((convs.len() / 4).max(2));
            let base = score(&keep)?;
            if base < target {
                // Sensitivity: the PSNR when only this conv stays in f32.
                let mut gains = vec![];
                for c in convs.iter().filter(|c| !keep.contains(&c.name)) {
                    let mut k = keep.clone();
                    k.insert(c.name.clone());
                    gains.push((score(&k)?, c.name.clone()));
                }
                gains.sort_by(|a, b| b.0.total_cmp(&a.0));
                for (name, _) in gains.into_iter().map(|(_, n)| n).zip(0..max_keep) {
                    keep.insert(name);
                    if score(&keep)? >= target {
                        break;
                    }
                }
            }
        }
    }
    let calib_psnr = score(&keep)?;
    let mut out = build(&model, &convs, &qp, &keep, opts.form);
    og::set_meta(&mut out, keys::PRECISION, "int8");
    let kept: Vec<String> = convs
        .iter()
        .filter(|c| keep.contains(&c.name))
        .map(|c| c.name.clone())
        .collect();
    og::set_meta(&mut out, "savl.int8.kept_f32", &kept.join(","));
    let (mut se, mut ss) = (0.0f64, 0.0f64);
    for c in convs.iter().filter(|c| !keep.contains(&c.name)) {
        let cq = quantize_per_channel(&c.w, c.w_dims[0] as usize);
        for (a, b) in c.w.iter().zip(dequantize_per_channel(&cq)) {
            se += ((a - b) as f64).powi(2);
            ss += (*a as f64).powi(2);
        }
    }
    let summary = Int8Summary {
        quantized: convs
            .iter()
            .filter(|c| !keep.contains(&c.name))
            .map(|c| c.name.clone())
            .collect(),
        kept_f32: kept,
        calib_psnr,
        weight_rel_rmse: if ss > 0.0 { (se / ss).sqrt() } else { 0.0 },
    };
    Ok((out, summary))
}

/// Rewrites the graph: every conv not in `keep` becomes QLinearConv.
fn build(
    model: &pb::ModelProto,
    convs: &[ConvInfo],
    qp: &HashMap<String, QParams>,
    keep: &HashSet<String>,
    form: ConvForm,
) -> pb::ModelProto {
    let mut model = model.clone();
    let g = model.graph.as_mut().expect("decoded model has a graph");
    let by_name: HashMap<&str, &ConvInfo> = convs.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut nodes = Vec::with_capacity(g.node.len() * 2);
    let mut inits = vec![];
    // Quantized (u8) version of a float tensor, and the tensors whose params exist.
    let mut q_of: HashMap<String, String> = HashMap::new();
    let mut params_done: HashSet<String> = HashSet::new();
    let mut qparams = |t: &str, inits: &mut Vec<pb::TensorProto>| -> (String, String) {
        let (s, z) = (format!("{t}__scale"), format!("{t}__zp"));
        if params_done.insert(t.to_string()) {
            let p = qp[t];
            inits.push(og::tensor_f32(&s, &[], &[p.scale]));
            inits.push(og::tensor_u8(&z, &[], &[p.zero_point]));
        }
        (s, z)
    };
    for n in std::mem::take(&mut g.node) {
        let Some(c) = by_name
            .get(n.name.as_str())
            .filter(|c| !keep.contains(&c.name))
        else {
            nodes.push(n);
            continue;
        };
        let (xs, xz) = qparams(&c.x, &mut inits);
        let xq = match q_of.get(&c.x) {
            Some(q) => q.clone(),
            None => {
                let q = format!("{}__q", c.x);
                nodes.push(node(
                    &format!("{}__quant", c.x),
                    "QuantizeLinear",
                    &[&c.x, &xs, &xz],
                    &[&q],
                    vec![],
                ));
                q_of.insert(c.x.clone(), q.clone());
                q
            }
        };
        let cout = c.w_dims[0] as usize;
        let cq = quantize_per_channel(&c.w, cout);
        if form == ConvForm::Integer {
            let wq = format!("{}__wq", c.name);
            inits.push(og::tensor_i8(&wq, &c.w_dims, &cq.q));
            let acc = format!("{}__acc", c.y);
            nodes.push(node(
                &n.name,
                "ConvInteger",
                &[&xq, &wq, &xz],
                &[&acc],
                n.attribute.clone(),
            ));
            let accf = format!("{}__accf", c.y);
            let to_f = vec![og::attr_i("to", DataType::Float as i64)];
            nodes.push(node(
                &format!("{}__to_float", n.name),
                "Cast",
                &[&acc],
                &[&accf],
                to_f,
            ));
            let sx = qp[&c.x].scale;
            let sc: Vec<f32> = cq.scales.iter().map(|sw| sx * sw).collect();
            let (scn, bn) = (format!("{}__oscale", c.name), format!("{}__obias", c.name));
            inits.push(og::tensor_f32(&scn, &[1, cout as i64, 1, 1], &sc));
            let scaled = if c.b.is_some() {
                format!("{}__scaled", c.y)
            } else {
                c.y.clone()
            };
            nodes.push(node(
                &format!("{}__rescale", n.name),
                "Mul",
                &[&accf, &scn],
                &[&scaled],
                vec![],
            ));
            if let Some(b) = &c.b {
                inits.push(og::tensor_f32(&bn, &[1, cout as i64, 1, 1], b));
                nodes.push(node(
                    &format!("{}__add_bias", n.name),
                    "Add",
                    &[&scaled, &bn],
                    &[&c.y],
                    vec![],
                ));
            }
            continue;
        }
        let (wq, wsn, wzn) = (
            format!("{}__wq", c.name),
            format!("{}__wscale", c.name),
            format!("{}__wzp", c.name),
        );
        inits.push(og::tensor_i8(&wq, &c.w_dims, &cq.q));
        inits.push(og::tensor_f32(&wsn, &[cout as i64], &cq.scales));
        inits.push(og::tensor_i8(&wzn, &[cout as i64], &vec![0; cout]));
        let (ys, yz) = qparams(&c.y, &mut inits);
        let yq = format!("{}__q", c.y);
        let mut inputs = vec![xq.clone(), xs, xz, wq, wsn, wzn, ys.clone(), yz.clone()];
        if let Some(b) = &c.b {
            let sx = qp[&c.x].scale;
            let bq: Vec<i32> = b
                .iter()
                .zip(&cq.scales)
                .map(|(b, sw)| (*b as f64 / (sx as f64 * *sw as f64)).round() as i32)
                .collect();
            let bn = format!("{}__bq", c.name);
            inits.push(og::tensor_i32(&bn, &[cout as i64], &bq));
            inputs.push(bn);
        }
        let inputs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
        nodes.push(node(
            &n.name,
            "QLinearConv",
            &inputs,
            &[&yq],
            n.attribute.clone(),
        ));
        nodes.push(node(
            &format!("{}__dequant", n.name),
            "DequantizeLinear",
            &[&yq, &ys, &yz],
            &[&c.y],
            vec![],
        ));
        q_of.insert(c.y.clone(), yq);
    }
    g.node = nodes;
    g.initializer.extend(inits);
    g.value_info.clear();
    og::prune(g);
    model
}
