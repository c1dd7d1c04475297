//! Training side of savl: heterogeneous degradation synthesis, the SAVL model in candle,
//! the trainer and ONNX export.
//!
//! # Training and export
//!
//! ```text
//! savl-train train --data ../shared/data/train --preset lite --steps 20000 --out runs/lite-a
//! savl-train train --data ../shared/data/train --preset lite --steps 20000 --out runs/lite-a --resume
//! savl-train export runs/lite-a/last.safetensors -o models/savl-lite-x4.onnx      # EMA weights
//! ```
//!
//! Ablations: `--ablation noguide|deterministic|club` (same seed ⇒ same data order). The run
//! folder holds `train.csv` (every loss term, lr, step time, samples/s), `ckpt-STEP.safetensors`
//! (weights, EMA, AdamW moments, step and config in the metadata), `last.safetensors` and, at the
//! end, `model.onnx`.
//!
//! Step and conv throughput, and how they were reached: `docs/PERF.md` ("Training").

pub mod cmd;
pub mod degrade;
pub mod eval;
pub mod export;
pub mod image;
pub mod nn;
pub mod probe;
pub mod train;

pub use image::PlanarImage;
