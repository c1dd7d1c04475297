//! Heterogeneous real-world degradation synthesis (Real-ESRGAN second-order pipeline with
//! spatially varying regimes) and per-pixel ground-truth maps.
//!
//! The types below are the contract with the trainer; the implementation fills this module.

use crate::image::PlanarImage;

/// Ground truth of what was done to every LR pixel, at LR resolution (`height × width`,
/// row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct DegradationMaps {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Effective noise std at LR, in units of 1/255.
    pub noise_sigma: Vec<f32>,
    /// Combined blur width in LR pixels.
    pub blur_sigma: Vec<f32>,
    /// Per-pixel quality of the first JPEG step.
    pub jpeg_q1: Vec<u8>,
    /// Per-pixel quality of the second JPEG step.
    pub jpeg_q2: Vec<u8>,
    /// Index of the dominant regime.
    pub regime: Vec<u8>,
    /// Quintile bin (0..=4) of `noise_sigma`.
    pub noise_bin: Vec<u8>,
}

/// One training pair: the degraded LR input, the HR target, and the maps.
#[derive(Clone, Debug)]
pub struct DegradedPair {
    /// Degraded input, 3 planes, `hr / scale` in each dimension, quantised to 8 bit.
    pub lr: PlanarImage,
    /// Target (the USM-sharpened ground truth when sharpening is on), 3 planes.
    pub hr: PlanarImage,
    /// Ground-truth maps at LR resolution.
    pub maps: DegradationMaps,
}
