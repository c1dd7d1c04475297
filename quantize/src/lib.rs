//! savl-quantize: int8 (QOperator) and fp16 ONNX files from a savl f32 model, and their
//! accuracy report.
//!
//! * [`int8::quantize_int8`]: static post-training quantization, `QLinearConv` with per-channel
//!   int8 weights and per-tensor u8 activations calibrated in f32 through tract; float
//!   elementwise parts between `DequantizeLinear` and `QuantizeLinear`; a [`Policy`] for what
//!   stays f32.
//! * [`fp16::convert_fp16`]: FLOAT16 weights and activations, Resize scales FLOAT, f32 I/O via Cast.
//! * [`report::compare`]: PSNR against the f32 output and PSNR-Y against HR, checked against
//!   the [`budget`]s.
//!
//! Every output keeps the f32 model's contract (`lr` `[1,3,H,W]` f32 in [0, 1] → `sr`
//! `[1,3,4H,4W]` f32) and metadata, with `savl.precision` set to `int8` or `f16`.
#![deny(missing_docs)]

pub mod budget;
pub mod calibrate;
pub mod error;
pub mod fp16;
pub mod images;
pub mod int8;
pub mod npy;
pub mod onnx_graph;
pub mod policy;
pub mod report;
pub mod runner;
#[doc(hidden)]
pub mod testmodel;

pub use calibrate::Method;
pub use error::{QuantError, Result};
pub use policy::Policy;
