//! Loading a model file (path, bytes or embedded), reading its contract, and building
//! optimised plans per tile shape.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::knobs::KnobScope;
use tract_onnx::tract_core::runtime::RunOptions;

use crate::error::anyhow_like::boxed;
use crate::precision::CpuCaps;
use crate::{Error, Precision};
use savl_contract::keys;

/// Where the model bytes come from.
#[derive(Clone)]
pub(crate) enum Source {
    Embedded,
    Path(PathBuf),
    Bytes(Arc<[u8]>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Embedded => f.write_str("Embedded"),
            Source::Path(p) => write!(f, "Path({p:?})"),
            Source::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// Models embedded at build time by `build.rs`: `(precision, file name, bytes)`.
pub(crate) mod embedded {
    use crate::Precision;
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

/// The precisions embedded in this build, f32 first.
pub(crate) fn embedded_precisions() -> Vec<Precision> {
    embedded::EMBEDDED.iter().map(|e| e.0).collect()
}

/// What kind of plan: the SR output only, or the degradation maps only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PlanKind {
    Sr,
    Estimate,
}

/// Metadata props of the savl contract.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub scale: Option<usize>,
    pub receptive_field: Option<usize>,
    pub preset: Option<String>,
    pub precision: Option<String>,
}

/// A loaded, decluttered model with symbolic H/W, ready to be specialised per tile shape.
pub(crate) struct LoadedModel {
    /// Path, or `<embedded:NAME>` / `<bytes>`.
    pub label: PathBuf,
    pub precision: Precision,
    pub meta: Meta,
    pub scale: usize,
    pub input_dt: DatumType,
    pub sr: OutletId,
    pub mu: Option<OutletId>,
    pub severity: Option<OutletId>,
    pub typed: TypedModel,
    pub fused: usize,
    /// 3×3 convs rewritten to savl's Winograd op (f32 models).
    pub winograd: usize,
    /// Those Winograd ops run their products in fp16: precision f16 from the f32 file
    /// ([`LoadOptions::fp16_winograd`]), set only when at least one conv was rewritten.
    pub fp16_winograd: bool,
    /// 1×1 conv groups rewritten to savl's pointwise op (f32 models).
    pub pointwise: usize,
    /// Depth-to-space chains rewritten to savl's pixel shuffle (f32 models).
    pub shuffles: usize,
    /// Element-wise trees rewritten to savl's one-pass op (f32 models).
    pub elementwise: usize,
    h_sym: Symbol,
    w_sym: Symbol,
    plans: Mutex<HashMap<PlanKey, Arc<TypedSimplePlan>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlanKey {
    h: usize,
    w: usize,
    kind: PlanKind,
    multithread: bool,
}

/// Options that change how plans are built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadOptions {
    pub fuse_modulation: bool,
    /// [`crate::strength`]: 1.0 leaves the graph as it is.
    pub strength: f32,
    /// An f32 file's Winograd convs run their products in fp16 (precision f16 on a CPU with
    /// native fp16 arithmetic, [`CpuCaps::fp16_winograd`]); set by [`load_for`].
    pub fp16_winograd: bool,
}

/// At most this many plans are cached per model (one or two are used per image size).
const MAX_CACHED_PLANS: usize = 8;

fn model_err(label: &Path, reason: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::model(label, reason, Some(boxed(e)))
}

/// The largest resampling factor a `Resize` node may declare: simplifying the graph plans each
/// axis at the output length, so an absurd factor in a hostile file would allocate without bound.
pub(crate) const MAX_RESIZE_FACTOR: f32 = 64.0;

/// The largest output length a `Resize` node may request through its `sizes` input.
pub(crate) const MAX_RESIZE_SIZE: i64 = 1 << 20;

/// Rejects a typed graph with a `Resize` node whose constant float inputs (scales, roi) are not
/// finite or exceed [`MAX_RESIZE_FACTOR`] in magnitude, or whose constant integer input (sizes)
/// exceeds [`MAX_RESIZE_SIZE`], before anything sized by them is allocated.
fn check_resize_factors(model: &TypedModel, label: &Path) -> Result<(), Error> {
    let unreadable = |e| model_err(label, "cannot read a Resize input", e);
    for node in model.nodes.iter().filter(|n| n.op.name() == "Resize") {
        for input in node.inputs.iter().skip(1) {
            let fact = model.outlet_fact(*input).map_err(unreadable)?;
            let Some(konst) = &fact.konst else {
                continue;
            };
            let bad = if konst.datum_type().is_float() {
                let v = konst.cast_to::<f32>().map_err(unreadable)?;
                let v = v.try_as_plain_ram().map_err(unreadable)?;
                let v = v.as_slice::<f32>().map_err(unreadable)?;
                v.iter()
                    .find(|s| !s.is_finite() || s.abs() > MAX_RESIZE_FACTOR)
                    .map(|s| {
                        format!("scale {s}, outside [-{MAX_RESIZE_FACTOR}, {MAX_RESIZE_FACTOR}]")
                    })
            } else if konst.datum_type().is_integer() {
                let v = konst.cast_to::<i64>().map_err(unreadable)?;
                let v = v.try_as_plain_ram().map_err(unreadable)?;
                let v = v.as_slice::<i64>().map_err(unreadable)?;
                v.iter()
                    .find(|s| **s > MAX_RESIZE_SIZE)
                    .map(|s| format!("size {s}, above {MAX_RESIZE_SIZE}"))
            } else {
                None
            };
            if let Some(bad) = bad {
                return Err(Error::model(
                    label,
                    format!("Resize node {:?} has {bad}", node.name),
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// Read a model file through a memory map.
pub(crate) fn read_path(path: &Path) -> Result<pb::ModelProto, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    // SAFETY: the map is only read, and dropped before this function returns; a file truncated
    // underneath us is the same hazard every mmap-based loader (tract's included) accepts.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    decode(&map, path)
}

pub(crate) fn decode(bytes: &[u8], label: &Path) -> Result<pb::ModelProto, Error> {
    if bytes.is_empty() {
        return Err(Error::model(label, "empty file, not an ONNX model", None));
    }
    let proto = pb::ModelProto::decode(bytes)
        .map_err(|e| model_err(label, "not a valid ONNX model (protobuf decode failed)", e))?;
    if proto.graph.is_none() {
        return Err(Error::model(label, "ONNX file has no graph", None));
    }
    Ok(proto)
}

fn meta_of(proto: &pb::ModelProto) -> Meta {
    let get = |k: &str| {
        proto
            .metadata_props
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.trim().to_string())
    };
    Meta {
        scale: get(keys::SCALE).and_then(|v| v.parse().ok()),
        receptive_field: get(keys::RECEPTIVE_FIELD).and_then(|v| v.parse().ok()),
        preset: get(keys::PRESET),
        precision: get(keys::PRECISION),
    }
}

/// Checks that the savl metadata the loader reads, when present, holds valid values: a scale
/// of 1–16 and a receptive field that is a non-negative integer.
fn check_meta(proto: &pb::ModelProto, label: &Path) -> Result<(), Error> {
    for p in &proto.metadata_props {
        let v = p.value.trim();
        let bad = match p.key.as_str() {
            keys::SCALE => !matches!(v.parse::<usize>(), Ok(1..=16)),
            keys::RECEPTIVE_FIELD => v.parse::<usize>().is_err(),
            _ => false,
        };
        if bad {
            return Err(Error::model(
                label,
                format!(
                    "invalid metadata {} = {:?} (expected {})",
                    p.key,
                    p.value,
                    if p.key == keys::SCALE {
                        "an integer from 1 to 16"
                    } else {
                        "a non-negative integer of LR pixels"
                    }
                ),
                None,
            ));
        }
    }
    Ok(())
}

/// The precision of a model file: from `savl.precision`, else from its ops and weights.
pub(crate) fn precision_of(proto: &pb::ModelProto) -> Precision {
    if let Some(p) = meta_of(proto)
        .precision
        .and_then(|p| p.parse::<Precision>().ok())
    {
        if p != Precision::Auto {
            return p;
        }
    }
    let Some(graph) = proto.graph.as_ref() else {
        return Precision::F32;
    };
    let int8_ops = [
        "QLinearConv",
        "ConvInteger",
        "QLinearMatMul",
        "MatMulInteger",
    ];
    if graph
        .node
        .iter()
        .any(|n| int8_ops.contains(&n.op_type.as_str()))
    {
        return Precision::Int8;
    }
    let f16 = pb::tensor_proto::DataType::Float16 as i32;
    let f32n = pb::tensor_proto::DataType::Float as i32;
    let n16 = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == f16)
        .count();
    let n32 = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == f32n)
        .count();
    if n16 > n32 {
        Precision::F16
    } else {
        Precision::F32
    }
}

impl LoadedModel {
    /// Parse, type and declutter the model, and check it against the savl contract.
    pub(crate) fn from_proto(
        proto: &pb::ModelProto,
        label: PathBuf,
        opts: LoadOptions,
    ) -> Result<LoadedModel, Error> {
        let lbl = label.as_path();
        check_meta(proto, lbl)?;
        let rewritten;
        let proto = if opts.strength == 1.0 {
            proto
        } else {
            let mut p = proto.clone();
            crate::rewrites::strength::apply_strength(&mut p, opts.strength)
                .map_err(|e| Error::Unsupported(format!("{}: {e}", label.display())))?;
            rewritten = p;
            &rewritten
        };
        let meta = meta_of(proto);
        let precision = precision_of(proto);
        let onnx = tract_onnx::onnx();
        let inference = onnx
            .model_for_proto_model(proto)
            .map_err(|e| model_err(lbl, "cannot parse the ONNX graph", e))?;
        let typed = inference
            .into_typed()
            .map_err(|e| model_err(lbl, "cannot type the graph (unsupported op or shape?)", e))?;
        check_resize_factors(&typed, lbl)?;
        let mut typed = typed
            .into_decluttered()
            .map_err(|e| model_err(lbl, "cannot simplify the graph", e))?;

        if typed.inputs.len() != 1 {
            return Err(Error::model(
                lbl,
                format!(
                    "expected 1 input (lr: [1,3,H,W]), found {}",
                    typed.inputs.len()
                ),
                None,
            ));
        }
        let input = typed
            .input_fact(0)
            .map_err(|e| model_err(lbl, "no input", e))?
            .clone();
        let input_dt = input.datum_type;
        if input_dt != f32::datum_type() && input_dt != f16::datum_type() {
            return Err(Error::model(
                lbl,
                format!("input must be float32 or float16, found {input_dt:?}"),
                None,
            ));
        }
        let shape: Vec<TDim> = input.shape.iter().cloned().collect();
        if shape.len() != 4 {
            return Err(Error::model(
                lbl,
                format!("input must be NCHW [1,3,H,W], found rank {}", shape.len()),
                None,
            ));
        }
        if shape[1] != TDim::Val(3) {
            return Err(Error::model(
                lbl,
                format!("input must have 3 channels (RGB), found {}", shape[1]),
                None,
            ));
        }
        let sym_of = |d: &TDim, what: &str| -> Result<Symbol, Error> {
            match d {
                TDim::Sym(s) => Ok(s.clone()),
                other => Err(Error::model(
                    lbl,
                    format!("input {what} must be a free dimension (symbolic), found {other}"),
                    None,
                )),
            }
        };
        let h_sym = sym_of(&shape[2], "height")?;
        let w_sym = sym_of(&shape[3], "width")?;
        // Fix the batch to 1 when it is symbolic.
        if let TDim::Sym(b) = &shape[0] {
            let mut subs = HashMap::new();
            subs.insert(b.clone(), TDim::Val(1));
            typed = typed
                .set_symbols(&subs)
                .map_err(|e| model_err(lbl, "cannot fix batch", e))?;
        }

        // Before reading outlet ids: the rewrite renumbers nodes.
        let fused = if opts.fuse_modulation {
            crate::rewrites::modulation::fuse_modulation(&mut typed)
                .map_err(|e| model_err(lbl, "fused-modulation rewrite failed", e))?
        } else {
            0
        };
        // f32 models only: the int8 and f16 files keep tract's convs.
        let f32_model = precision == Precision::F32 && input_dt == f32::datum_type();
        let winograd = if f32_model && crate::rewrites::winograd::enabled_by_env() {
            let tile = crate::rewrites::winograd::tile_from_env();
            if opts.fp16_winograd {
                crate::rewrites::winograd::rewrite_convs_fp16(&mut typed, tile)
            } else {
                crate::rewrites::winograd::rewrite_convs(&mut typed, tile)
            }
            .map_err(|e| model_err(lbl, "Winograd conv rewrite failed", e))?
        } else {
            0
        };
        let fp16_winograd = opts.fp16_winograd && winograd > 0;
        let pointwise = if f32_model && crate::rewrites::pointwise::enabled_by_env() {
            crate::rewrites::pointwise::rewrite_pointwise(&mut typed)
                .map_err(|e| model_err(lbl, "pointwise conv rewrite failed", e))?
        } else {
            0
        };
        let shuffles = if f32_model && crate::rewrites::shuffle::enabled_by_env() {
            crate::rewrites::shuffle::fuse_pixel_shuffle(&mut typed)
                .map_err(|e| model_err(lbl, "pixel shuffle rewrite failed", e))?
        } else {
            0
        };
        let elementwise = if f32_model && crate::rewrites::elementwise::enabled_by_env() {
            crate::rewrites::elementwise::fuse_elementwise(&mut typed)
                .map_err(|e| model_err(lbl, "element-wise rewrite failed", e))?
        } else {
            0
        };

        let outputs: Vec<OutletId> = typed
            .output_outlets()
            .map(|o| o.to_vec())
            .unwrap_or_default();
        if outputs.is_empty() {
            return Err(Error::model(lbl, "model has no outputs", None));
        }
        let graph_outputs: Vec<String> = proto
            .graph
            .as_ref()
            .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default();
        let find = |name: &str, ix: usize| -> Option<OutletId> {
            match graph_outputs.iter().position(|n| n == name) {
                Some(i) => outputs.get(i).copied(),
                None if outputs.len() >= 3 => outputs.get(ix).copied(),
                None => None,
            }
        };
        let sr = outputs[0];
        let mu = find("mu", 1);
        let severity = find("severity", 2);

        // Scale from the output shape, checked against the metadata.
        let probe = SymbolValues::default().with(&h_sym, 16).with(&w_sym, 16);
        let sr_fact = typed
            .outlet_fact(sr)
            .map_err(|e| model_err(lbl, "no output fact", e))?;
        let sr_rank = sr_fact.shape.len();
        let sr_channels = sr_fact.shape.get(1).and_then(|d| d.to_i64().ok());
        if sr_rank != 4 || sr_channels.is_some_and(|c| c != 3) {
            return Err(Error::model(
                lbl,
                format!(
                    "output 0 must be [1,3,s·H,s·W] (RGB), found shape {:?}",
                    sr_fact.shape
                ),
                None,
            ));
        }
        let out_h = sr_fact
            .shape
            .get(2)
            .and_then(|d| d.eval_to_i64(&probe).ok())
            .filter(|v| *v > 0 && v % 16 == 0);
        let scale = match (out_h, meta.scale) {
            (Some(h), Some(m)) if (h / 16) as usize != m => {
                return Err(Error::model(
                    lbl,
                    format!(
                        "metadata says savl.scale = {m} but the graph upscales by {}",
                        h / 16
                    ),
                    None,
                ))
            }
            (Some(h), _) => (h / 16) as usize,
            (None, Some(m)) => m,
            (None, None) => return Err(Error::model(
                lbl,
                "cannot tell the scale: output 0 is not [1,3,s·H,s·W] and savl.scale is missing",
                None,
            )),
        };
        if !(1..=16).contains(&scale) {
            return Err(Error::model(
                lbl,
                format!("unsupported scale ×{scale}"),
                None,
            ));
        }

        Ok(LoadedModel {
            label,
            precision,
            meta,
            scale,
            input_dt,
            sr,
            mu,
            severity,
            typed,
            fused,
            winograd,
            fp16_winograd,
            pointwise,
            shuffles,
            elementwise,
            h_sym,
            w_sym,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The precision the model runs in: f16 when its Winograd products run in fp16 (from the
    /// f32 file), else the file's.
    pub(crate) fn run_precision(&self) -> Precision {
        if self.fp16_winograd {
            Precision::F16
        } else {
            self.precision
        }
    }

    /// Load from a source with the given file precision already resolved.
    pub(crate) fn load(
        source: &Source,
        wanted: Precision,
        opts: LoadOptions,
    ) -> Result<LoadedModel, Error> {
        match source {
            Source::Embedded => {
                let Some((_, name, bytes)) = embedded::EMBEDDED
                    .iter()
                    .find(|e| e.0 == wanted || wanted == Precision::Auto)
                else {
                    return Err(Error::model(
                        "<embedded>",
                        "this build embeds no default model (models/savl-lite-x4.onnx was \
                         missing at build time); pass a model path",
                        None,
                    ));
                };
                let label = PathBuf::from(format!("<embedded:{name}>"));
                let proto = decode(bytes, &label)?;
                LoadedModel::from_proto(&proto, label, opts)
            }
            Source::Path(p) => {
                let proto = read_path(p)?;
                LoadedModel::from_proto(&proto, p.clone(), opts)
            }
            Source::Bytes(b) => {
                let label = PathBuf::from("<bytes>");
                let proto = decode(b, &label)?;
                LoadedModel::from_proto(&proto, label, opts)
            }
        }
    }

    /// The optimised plan for one tile shape, built once and cached.
    pub(crate) fn plan(
        &self,
        h: usize,
        w: usize,
        kind: PlanKind,
        executor: Option<&tract_linalg::multithread::Executor>,
        disable_direct_spatial: bool,
    ) -> Result<Arc<TypedSimplePlan>, Error> {
        let key = PlanKey {
            h,
            w,
            kind,
            multithread: executor.is_some(),
        };
        if let Some(p) = self.plans.lock().map_err(Error::runtime)?.get(&key) {
            return Ok(p.clone());
        }
        let plan = self.build_plan(&key, executor, disable_direct_spatial)?;
        let mut cache = self.plans.lock().map_err(Error::runtime)?;
        if cache.len() >= MAX_CACHED_PLANS {
            cache.clear();
        }
        cache.insert(key, plan.clone());
        Ok(plan)
    }

    fn build_plan(
        &self,
        key: &PlanKey,
        executor: Option<&tract_linalg::multithread::Executor>,
        disable_direct_spatial: bool,
    ) -> Result<Arc<TypedSimplePlan>, Error> {
        let PlanKey { h, w, kind, .. } = *key;
        let lbl = self.label.as_path();
        let mut model = self.typed.clone();
        let outputs = match kind {
            PlanKind::Sr => vec![self.sr],
            PlanKind::Estimate => match (self.mu, self.severity) {
                (Some(m), Some(s)) => vec![m, s],
                _ => return Err(self.no_estimate()),
            },
        };
        model
            .select_output_outlets(&outputs)
            .map_err(Error::runtime)?;
        let mut subs = HashMap::new();
        subs.insert(self.h_sym.clone(), TDim::Val(h as i64));
        subs.insert(self.w_sym.clone(), TDim::Val(w as i64));
        let knob = if disable_direct_spatial { "1" } else { "0" };
        let scope = KnobScope::new([("TRACT_DISABLE_DIRECT_SPATIAL", knob)])
            .map_err(|e| model_err(lbl, "knob", e))?;
        let optimized = scope
            .enter(|| model.set_symbols(&subs).and_then(|m| m.into_optimized()))
            .map_err(|e| model_err(lbl, format!("cannot build a plan for a {w}×{h} tile"), e))?;
        let opts = RunOptions {
            executor: executor.cloned(),
            ..Default::default()
        };
        optimized
            .into_runnable_with_options(&opts)
            .map_err(|e| model_err(lbl, format!("cannot build a plan for a {w}×{h} tile"), e))
    }

    /// Peak bytes of activations one run of an `h × w` tile holds at once
    /// ([`activation_bytes`] of the model with the tile's sides).
    pub(crate) fn activation_bytes(&self, h: usize, w: usize) -> Result<u64, Error> {
        let values = SymbolValues::default()
            .with(&self.h_sym, h as i64)
            .with(&self.w_sym, w as i64);
        activation_bytes(&self.typed, &values)
    }

    pub(crate) fn no_estimate(&self) -> Error {
        Error::Unsupported(format!(
            "model {} has no degradation outputs (`mu`, `severity`)",
            self.label.display()
        ))
    }
}

/// Peak bytes of activations one run of `model` holds at once, its symbols set to `values`: the graph walked in
/// evaluation order, each tensor alive from the node that makes it to its last consumer
/// (model outputs to the end), constants left out (they are shared by every tile), savl's
/// in-place ops (`SigmoidMul`, `Elementwise`) writing over an input read last by them. An
/// estimate of the plan's working set from the decluttered graph; tract's optimised plan
/// fuses some of these tensors away.
pub(crate) fn activation_bytes(model: &TypedModel, values: &SymbolValues) -> Result<u64, Error> {
    let order = model.eval_order().map_err(Error::runtime)?;
    let pos: HashMap<usize, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let outputs = model.output_outlets().map_err(Error::runtime)?;
    let mut frees: Vec<u64> = vec![0; order.len() + 1];
    let mut live = 0u64;
    let mut peak = 0u64;
    // The position of the op that reads `outlet` last (the end for a model output).
    let last_use = |outlet: OutletId, from: usize| -> usize {
        if outputs.contains(&outlet) {
            return order.len();
        }
        model.node(outlet.node).outputs[outlet.slot]
            .successors
            .iter()
            .filter_map(|s| pos.get(&s.node).copied())
            .max()
            .unwrap_or(from)
    };
    for (i, &id) in order.iter().enumerate() {
        let node = model.node(id);
        // The ops that write over an input nothing else reads any more (tract drops its own
        // reference before the op runs) allocate no output: the input's bytes stay live.
        let over = if node.op_is::<crate::ops::SigmoidMul>() {
            &node.inputs[..1]
        } else if node.op_is::<crate::ops::Elementwise>() {
            &node.inputs[..]
        } else {
            &[]
        };
        let in_place = over.iter().any(|&inp| {
            let fact = &model.node(inp.node).outputs[inp.slot].fact;
            fact.konst.is_none()
                && fact.shape == node.outputs[0].fact.shape
                && last_use(inp, i) == i
        });
        for (slot, out) in node.outputs.iter().enumerate() {
            if out.fact.konst.is_some() {
                continue;
            }
            let elems = out
                .fact
                .shape
                .iter()
                .map(|d| d.eval(values).to_i64().map(|v| v.max(0) as u64))
                .try_fold(1u64, |acc, d| d.map(|d| acc.saturating_mul(d)))
                .map_err(Error::runtime)?;
            let bytes = elems.saturating_mul(out.fact.datum_type.size_of() as u64);
            if in_place && slot == 0 {
                // The input's bytes, freed here in the walk, become the output's.
                frees[i] = frees[i].saturating_sub(bytes);
            } else {
                live = live.saturating_add(bytes);
            }
            let last = last_use(OutletId::new(id, slot), i);
            frees[last] = frees[last].saturating_add(bytes);
        }
        peak = peak.max(live);
        live = live.saturating_sub(frees[i]);
    }
    Ok(peak)
}

/// Candidate files for `precision` next to `path`: `NAME.onnx`, `NAME.int8.onnx`, `NAME.f16.onnx`.
pub(crate) fn sibling(path: &Path, precision: Precision) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".onnx")?;
    let base = stem
        .strip_suffix(".int8")
        .or_else(|| stem.strip_suffix(".f16"))
        .unwrap_or(stem);
    let file = match precision {
        Precision::F32 => format!("{base}.onnx"),
        Precision::Int8 => format!("{base}.int8.onnx"),
        Precision::F16 => format!("{base}.f16.onnx"),
        Precision::Auto => return None,
    };
    let p = path.with_file_name(file);
    (p != path && p.is_file()).then_some(p)
}

fn unsupported_precision(label: &Path, wanted: Precision, has: &[Precision]) -> Error {
    let has: Vec<String> = has.iter().map(|p| p.to_string()).collect();
    Error::Unsupported(format!(
        "model {} has no {wanted} variant (available: {})",
        label.display(),
        has.join(", ")
    ))
}

/// The precisions a model offers on this CPU: those of its files, plus f16 through the f32
/// file when the CPU runs fp16 Winograd products ([`CpuCaps::fp16_winograd`]) and `via_f32`.
fn offered(files: &[Precision], caps: &CpuCaps, via_f32: bool) -> Vec<Precision> {
    let mut v = files.to_vec();
    if via_f32
        && caps.fp16_winograd()
        && v.contains(&Precision::F32)
        && !v.contains(&Precision::F16)
    {
        v.push(Precision::F16);
    }
    v
}

/// Whether precision `p` runs as the f32 file with fp16 Winograd products on this CPU (given
/// that an f32 file is at hand).
fn f16_from_f32(p: Precision, caps: &CpuCaps) -> bool {
    p == Precision::F16 && caps.fp16_winograd()
}

/// Whether `auto` may run the f16 of an f32 file as fp16 Winograd products: only for savl
/// models (with `savl.preset`), whose fp16 accuracy CI checks on the shipped one; foreign
/// models' outputs fell to 47–55 dB against f32 that way (`docs/PERF.md`, "ARM"), so `auto` keeps
/// them f32. An explicit f16 runs it for any f32 file.
fn auto_f16_from_f32(proto: &pb::ModelProto) -> bool {
    meta_of(proto).preset.is_some()
}

/// What [`load_for`] adds to the reason when f16 runs from the f32 file.
const F16_FROM_F32: &str =
    "f16 runs the f32 file's 3×3 convs as Winograd with fp16 products (native fp16)";

/// The precision to run for `wanted`, among a model's file precisions `files`, and why: `auto`'s
/// choice for this CPU (f16 through the f32 file only when `auto_via_f32`), or `wanted` when the
/// model offers it; else an error naming `label` and the precisions `listed`.
fn pick_precision(
    wanted: Precision,
    files: &[Precision],
    caps: &CpuCaps,
    auto_via_f32: bool,
    label: &Path,
    listed: &[Precision],
) -> Result<(Precision, String), Error> {
    match wanted {
        Precision::Auto => {
            let (p, why) = caps.choose(&offered(files, caps, auto_via_f32));
            Ok((p, format!("auto: {why}")))
        }
        p if offered(files, caps, true).contains(&p) => Ok((p, "requested".to_string())),
        p => Err(unsupported_precision(label, p, listed)),
    }
}

/// The file precision and load options that run precision `p`: for f16 on a CPU with native
/// fp16 and Winograd ([`f16_from_f32`]), the f32 file with fp16 products when there is one;
/// else `p`'s own file with `opts`.
fn runs_as(
    p: Precision,
    files: &[Precision],
    caps: &CpuCaps,
    opts: LoadOptions,
) -> (Precision, LoadOptions) {
    if f16_from_f32(p, caps) && files.contains(&Precision::F32) {
        let fp16 = LoadOptions {
            fp16_winograd: true,
            ..opts
        };
        (Precision::F32, fp16)
    } else {
        (p, opts)
    }
}

/// `why`, plus [`F16_FROM_F32`] when `o` runs fp16 products.
fn with_fp16_note(why: String, o: &LoadOptions) -> String {
    if o.fp16_winograd {
        format!("{why}; {F16_FROM_F32}")
    } else {
        why
    }
}

/// Pick and load the model file for `wanted`; returns the model and why its precision was chosen.
///
/// Precision f16 on a CPU with native fp16 and Winograd on ([`CpuCaps::fp16_winograd`]) loads
/// the f32 file and runs its Winograd products in fp16 (tract's f16 graph has no Winograd);
/// without an f32 file, or on other CPUs, f16 is the f16 file. `auto` counts that f16 among a
/// model's precisions only for savl models ([`auto_f16_from_f32`]).
pub(crate) fn load_for(
    source: &Source,
    wanted: Precision,
    caps: &CpuCaps,
    opts: LoadOptions,
) -> Result<(LoadedModel, String), Error> {
    match source {
        Source::Embedded => {
            let files = embedded_precisions();
            if files.is_empty() {
                return Err(Error::model(
                    "<embedded>",
                    "this build embeds no default model (models/savl-lite-x4.onnx was missing \
                     at build time); give a model path",
                    None,
                ));
            }
            let listed = offered(&files, caps, true);
            let label = Path::new("<embedded>");
            let (p, why) = pick_precision(wanted, &files, caps, true, label, &listed)?;
            let (from, o) = runs_as(p, &files, caps, opts);
            Ok((LoadedModel::load(source, from, o)?, with_fp16_note(why, &o)))
        }
        Source::Path(path) => {
            let proto = read_path(path)?;
            let fp = precision_of(&proto);
            // The named file and the readable siblings that may run `wanted` (all for auto),
            // until the one it prefers is there (the f32 file for f16 through fp16 products).
            let mut files = vec![(fp, path.clone(), proto)];
            let runs_wanted =
                |q: Precision| q == wanted || (q == Precision::F32 && f16_from_f32(wanted, caps));
            let preferred = if f16_from_f32(wanted, caps) {
                Precision::F32
            } else {
                wanted
            };
            for p in [Precision::F32, Precision::F16, Precision::Int8] {
                let enough = wanted != Precision::Auto && files.iter().any(|f| f.0 == preferred);
                if enough
                    || !(wanted == Precision::Auto || runs_wanted(p))
                    || files.iter().any(|f| f.0 == p)
                {
                    continue;
                }
                let Some(sib) = sibling(path, p).filter(|s| s != path && s.is_file()) else {
                    continue;
                };
                if let Ok(sp) = read_path(&sib) {
                    if precision_of(&sp) == p {
                        files.push((p, sib, sp));
                    }
                }
            }
            let kinds: Vec<Precision> = files.iter().map(|f| f.0).collect();
            let savl_f32 = files
                .iter()
                .any(|(p, _, proto)| *p == Precision::F32 && auto_f16_from_f32(proto));
            let (p, why) = pick_precision(wanted, &kinds, caps, savl_f32, path, &[fp])?;
            let (from, o) = runs_as(p, &kinds, caps, opts);
            let (_, file, proto) = files
                .into_iter()
                .find(|f| f.0 == from)
                .ok_or_else(|| Error::runtime("the chosen precision has no file"))?;
            let why = if file == *path {
                why
            } else {
                format!("{why}; {} is the {from} variant", file.display())
            };
            Ok((
                LoadedModel::from_proto(&proto, file, o)?,
                with_fp16_note(why, &o),
            ))
        }
        Source::Bytes(bytes) => {
            let label = PathBuf::from("<bytes>");
            let proto = decode(bytes, &label)?;
            let fp = precision_of(&proto);
            let auto_via_f32 = auto_f16_from_f32(&proto);
            let (p, _) = pick_precision(wanted, &[fp], caps, auto_via_f32, &label, &[fp])?;
            let (_, o) = runs_as(p, &[fp], caps, opts);
            let why = with_fp16_note("the model given as bytes".into(), &o);
            Ok((LoadedModel::from_proto(&proto, label, o)?, why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::elementwise::{Program, Step, Unary};
    use crate::ops::Elementwise;

    fn sigmoid() -> Elementwise {
        Elementwise {
            program: Program {
                inputs: 1,
                steps: vec![Step::Unary(Unary::Sigmoid, 0)],
            },
        }
    }

    /// The walk of `x → a → b` (sigmoids), with a third sigmoid `c` of `x` when `extra` and `x`
    /// a model output when `x_out`; 4·8·8 f32 (1 KiB) per tensor.
    fn chain(extra: bool, x_out: bool) -> u64 {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([1, 4, 8, 8])).unwrap();
        let a = m.wire_node("a", sigmoid(), &[x]).unwrap()[0];
        let b = m.wire_node("b", sigmoid(), &[a]).unwrap()[0];
        let mut outs = vec![b];
        if extra {
            outs.push(m.wire_node("c", sigmoid(), &[x]).unwrap()[0]);
        }
        if x_out {
            outs.push(x);
        }
        m.select_output_outlets(&outs).unwrap();
        activation_bytes(&m, &SymbolValues::default()).unwrap()
    }

    /// An in-place op over an input read last by it adds nothing; over an input something
    /// else still reads, or a model output, it adds its output.
    #[test]
    fn in_place_ops_reuse_their_last_read_input() {
        let t = 4 * 8 * 8 * 4;
        assert_eq!(chain(false, false), t, "x, then a over x, then b over a");
        // Whichever of a and c runs first keeps x for the other: two tensors at most.
        assert_eq!(chain(true, false), 2 * t);
        assert_eq!(chain(false, true), 2 * t, "x stays an output");
    }
}
