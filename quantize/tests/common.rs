//! Shared helpers for the integration tests (not a test target of its own).
#![allow(dead_code)]

use savl_quantize::images::{synthetic, Planar};
use savl_quantize::testmodel;
use tract_onnx::pb;

/// The small synthetic model every test quantizes.
pub fn small() -> pb::ModelProto {
    testmodel::proto(&testmodel::small())
}

/// `n` synthetic calibration pictures of `side`² pixels.
pub fn calib(n: usize, side: usize) -> Vec<Planar> {
    (0..n)
        .map(|i| synthetic(side, side, 100 + i as u64))
        .collect()
}
