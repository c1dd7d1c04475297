//! Training side of savl: heterogeneous degradation synthesis, the SAVL model in candle,
//! the trainer and ONNX export.

pub mod cmd;
pub mod degrade;
pub mod export;
pub mod image;
pub mod nn;
pub mod train;

pub use image::PlanarImage;
