//! Activation ranges from calibration images run through tract in f32.

use std::collections::HashMap;

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use crate::error::Result;
use crate::images::Planar;
use crate::onnx_graph;
use crate::runner::Runner;

/// How an activation range is chosen from the calibration statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Method {
    /// The observed minimum and maximum.
    #[value(name = "minmax")]
    MinMax,
    /// The 0.01 % and 99.99 % quantiles (clips rare outliers).
    #[value(name = "percentile")]
    Percentile,
    /// The clipping range that minimises the quantization mean squared error on the samples.
    #[default]
    #[value(name = "mse")]
    Mse,
}

/// Values seen for one tensor: exact min/max and a strided sample.
#[derive(Debug, Clone, Default)]
pub struct TensorStats {
    /// Minimum over all calibration values.
    pub min: f32,
    /// Maximum over all calibration values.
    pub max: f32,
    /// A strided subsample of the values.
    pub samples: Vec<f32>,
}

/// Samples kept per tensor (over all images).
const SAMPLES: usize = 1 << 16;

/// Per-tensor u8 quantization parameters: `x ≈ (q − zero_point) · scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Step.
    pub scale: f32,
    /// Zero point (0..=255).
    pub zero_point: u8,
}

impl QParams {
    /// Parameters covering `[lo, hi]` (widened to include 0, as ONNX requires 0 to be exact).
    pub fn from_range(lo: f32, hi: f32) -> QParams {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let scale = ((hi - lo) / 255.0).max(1e-8);
        let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        QParams { scale, zero_point }
    }
    /// Quantize one value (round half to even, saturating).
    pub fn quantize(&self, x: f32) -> u8 {
        ((x / self.scale).round_ties_even() + self.zero_point as f32).clamp(0.0, 255.0) as u8
    }
    /// Dequantize one value.
    pub fn dequantize(&self, q: u8) -> f32 {
        (q as f32 - self.zero_point as f32) * self.scale
    }
}

/// Runs the f32 model on `images` and records statistics for the named tensors.
pub fn collect(
    model: &pb::ModelProto,
    tensors: &[String],
    images: &[Planar],
    what: &str,
) -> Result<HashMap<String, TensorStats>> {
    let mut m = model.clone();
    let g = m.graph.as_mut().expect("decoded model has a graph");
    for t in tensors {
        if !g.output.iter().any(|o| &o.name == t) {
            g.output
                .push(onnx_graph::value_info(t, DataType::Float, None));
        }
    }
    g.value_info.clear();
    let runner = Runner::new(&m, what)?;
    let per_image = (SAMPLES / images.len().max(1)).max(1);
    let mut stats: HashMap<String, TensorStats> = HashMap::new();
    for img in images {
        for out in runner.run(&img.data, img.h, img.w)? {
            if !tensors.contains(&out.name) {
                continue;
            }
            let s = stats.entry(out.name).or_insert(TensorStats {
                min: f32::INFINITY,
                max: f32::NEG_INFINITY,
                samples: vec![],
            });
            for v in &out.data {
                s.min = s.min.min(*v);
                s.max = s.max.max(*v);
            }
            let stride = (out.data.len() / per_image).max(1);
            s.samples.extend(out.data.iter().step_by(stride).copied());
        }
    }
    Ok(stats)
}

fn quant_mse(samples: &[f32], q: &QParams) -> f64 {
    samples
        .iter()
        .map(|&x| {
            let d = (q.dequantize(q.quantize(x)) - x) as f64;
            d * d
        })
        .sum::<f64>()
        / samples.len().max(1) as f64
}

/// The range `method` picks for a tensor.
pub fn choose_range(stats: &TensorStats, method: Method) -> (f32, f32) {
    match method {
        Method::MinMax => (stats.min, stats.max),
        Method::Percentile => {
            let mut s = stats.samples.clone();
            if s.is_empty() {
                return (stats.min, stats.max);
            }
            s.sort_by(f32::total_cmp);
            let at = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
            (at(0.0001), at(0.9999))
        }
        Method::Mse => {
            let (lo, hi) = (stats.min.min(0.0), stats.max.max(0.0));
            let fractions: Vec<f32> = (0..12).map(|k| 1.0 - 0.06 * k as f32).collect();
            let mut best = (f64::INFINITY, lo, hi);
            for &a in &fractions {
                for &b in &fractions {
                    let q = QParams::from_range(lo * a, hi * b);
                    let e = quant_mse(&stats.samples, &q);
                    if e < best.0 {
                        best = (e, lo * a, hi * b);
                    }
                }
            }
            (best.1, best.2)
        }
    }
}
