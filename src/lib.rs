//! savl: degradation-aware ×4 super-resolution for the edge, run by tract.
//!
//! (Crate docs and the runnable example are written with the `Upscaler` API.)

pub mod metrics;
