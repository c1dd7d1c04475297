//! The savl model contract, shared by the runtime (`savl`), the trainer (`savl-train`) and the
//! quantizer (`savl-quantize`): what a savl ONNX file holds ([`keys`]), how ONNX messages are
//! built ([`onnx_proto`]), how pictures are scored ([`metrics`]), a small synthetic model
//! that follows the contract ([`testmodel`]), and how option enums are named ([`names`]).
//!
//! ```
//! use savl_contract::{keys, testmodel::TestModel};
//! use savl_contract::onnx_proto::pb;
//! use prost::Message;
//!
//! let bytes = TestModel::default().onnx_bytes();
//! let model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
//! let scale = model.metadata_props.iter().find(|p| p.key == keys::SCALE).unwrap();
//! assert_eq!(scale.value, "4");
//! ```
#![deny(missing_docs)]

pub mod metrics;
pub mod names;
pub mod onnx_proto;
pub mod planar;
pub mod testmodel;

/// Metadata keys (`metadata_props`) of a savl ONNX file, and the names of its tensors.
///
/// A model has one input [`INPUT`](keys::INPUT) `[1,3,H,W]` in [0, 1] and the output [`OUTPUT`](keys::OUTPUT)
/// `[1,3,sH,sW]`; models with an estimator also output [`MU`](keys::MU) `[1,d,H,W]` and [`SEVERITY`](keys::SEVERITY)
/// `[1,1,H,W]`.
pub mod keys {
    /// The upscaling factor `s`, an integer in 1..=16. Required by the runtime.
    pub const SCALE: &str = "savl.scale";
    /// The receptive-field radius in input pixels: the halo tiles need for a seamless result.
    pub const RECEPTIVE_FIELD: &str = "savl.receptive_field";
    /// The architecture preset the model was trained as (`lite`, `base`, …).
    pub const PRESET: &str = "savl.preset";
    /// The precision of the weights: `f32`, `f16` or `int8`.
    pub const PRECISION: &str = "savl.precision";
    /// The degradation-code dimension `d` (the channels of [`MU`]).
    pub const LATENT: &str = "savl.latent";
    /// The training ablation (`full`, `noguide`, …).
    pub const ABLATION: &str = "savl.ablation";
    /// The mean of the severity map over the training set, for normalised display.
    pub const SEVERITY_MEAN: &str = "savl.severity_mean";
    /// The standard deviation of the severity map over the training set.
    pub const SEVERITY_STD: &str = "savl.severity_std";
    /// Multiply-accumulates per input pixel of the SR path.
    pub const MACS_PER_LR_PIXEL: &str = "savl.macs_per_lr_pixel";
    /// The gate inputs of clean photos, comma-separated floats: the origin of `--strength`.
    pub const CLEAN_CODE: &str = "savl.clean_code";

    /// The input tensor: the low-resolution picture.
    pub const INPUT: &str = "lr";
    /// The super-resolved output.
    pub const OUTPUT: &str = "sr";
    /// The per-pixel mean of the degradation code.
    pub const MU: &str = "mu";
    /// The per-pixel severity (from the code's variance).
    pub const SEVERITY: &str = "severity";
}
