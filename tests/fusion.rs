//! The pixel-shuffle and element-wise rewrites on whole models: the rewritten graph has the ops
//! the rewrites promise and gives tract's own outputs bit for bit, on the shipped model and on
//! peers built differently (SPAN's attention, real-ESRGAN's nearest-upsampled skip).

mod support;

use std::path::{Path, PathBuf};

use savl::kernels::winograd::WinogradTile;
use savl::rewrites::elementwise::fuse_elementwise;
use savl::rewrites::shuffle::fuse_pixel_shuffle;
use savl::testing::{run_typed, smooth_input as input};
use support::{count_ops, decluttered, root};
use tract_onnx::prelude::*;

/// The model as savl loads it before these rewrites: modulation fused, Winograd, pointwise.
fn loaded(path: &Path) -> TypedModel {
    let mut m = decluttered(path);
    savl::rewrites::modulation::fuse_modulation(&mut m).expect("fuse");
    savl::rewrites::winograd::rewrite_convs(&mut m, WinogradTile::F4).expect("winograd");
    savl::rewrites::pointwise::rewrite_pointwise(&mut m).expect("pointwise");
    m
}

/// Rewrites `path`'s model, checks the op counts (`shuffles` pixel shuffles of which `with_skip`
/// take a second input, `trees` element-wise ops, and no op of `gone` left), and compares every
/// output with the unrewritten model's on a few tile shapes, bit for bit.
fn rewrite_matches(path: PathBuf, shuffles: usize, with_skip: usize, trees: usize, gone: &[&str]) {
    if !path.is_file() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let plain = loaded(&path);
    let mut fused = plain.clone();
    assert_eq!(fuse_pixel_shuffle(&mut fused).expect("shuffle"), shuffles);
    fuse_elementwise(&mut fused).expect("element-wise");
    assert_eq!(count_ops(&fused, "SavlPixelShuffle"), shuffles);
    let skips = fused
        .nodes
        .iter()
        .filter(|n| n.op_as::<savl::ops::PixelShuffle>().is_some() && n.inputs.len() == 2)
        .count();
    assert_eq!(skips, with_skip, "shuffles with the upsampled skip");
    assert_eq!(count_ops(&fused, "SavlElementwise"), trees);
    for op in gone {
        assert_eq!(count_ops(&fused, op), 0, "{op} left in {}", path.display());
    }
    for (h, w) in [(23, 31), (16, 16), (5, 40)] {
        let x = input(h, w);
        let a = run_typed(plain.clone(), &x).expect("plain model runs");
        let b = run_typed(fused.clone(), &x).expect("rewritten model runs");
        assert_eq!(a.len(), b.len());
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            let same =
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{} {h}×{w} output {i} differs", path.display());
        }
    }
}

#[test]
fn lite_model_tail_is_one_shuffle_with_its_skip() {
    rewrite_matches(
        support::model("savl-lite-x4.onnx"),
        1,
        1,
        3,
        &["NearestUpsample"],
    );
}

#[test]
fn span_attention_is_one_pass_per_block() {
    let peer = root().join("../shared/peers/spanx4_ch48.onnx");
    rewrite_matches(peer, 1, 0, 7, &["Sigmoid"]);
}

#[test]
fn realesr_skip_is_fused_into_the_shuffle() {
    let peer = root().join("../shared/peers/realesr-general-x4v3.onnx");
    rewrite_matches(peer, 1, 1, 0, &["NearestUpsample"]);
}
