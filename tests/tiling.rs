//! Seamless tiling: tiled output equals whole-image output (f32, ≤ 1e-4 before quantisation,
//! and identical RGB8 after it). Precision f32 throughout: on a CPU with native fp16, `auto`
//! picks f16, whose Winograd grid moves with the tile origin, so its tiles differ from the
//! whole image by fp16 rounding (`tests/arch_parity.rs` holds f16 to its budget against f32).

mod support;

use savl::testing::max_abs_diff;
use savl::{Precision, TileConfig, Upscaler};
use savl_contract::testmodel::TestModel;
use support::{textured, upscaler};

#[test]
fn tiled_equals_whole_image_u8() {
    let m = TestModel::default();
    let bytes = m.onnx_bytes();
    // Whole image: a tile larger than the image.
    let (w, h) = (75, 53);
    let img = textured(w, h, 3);
    let whole = upscaler(&bytes, 256, 1).upscale(&img).unwrap();
    for tile in [32, 48, 64, 100, 128, 256] {
        for threads in [1, 2] {
            let up = upscaler(&bytes, tile, threads);
            assert_eq!(up.halo(), m.receptive_field());
            let tiled = up.upscale(&img).unwrap();
            assert_eq!(tiled.dimensions(), (w * 4, h * 4));
            let diff = whole
                .as_raw()
                .iter()
                .zip(tiled.as_raw())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                diff, 0,
                "tile {tile} threads {threads}: {diff} bytes differ"
            );
        }
    }
}

#[test]
fn tiled_equals_whole_image_f32() {
    let m = TestModel::sized(8, 6);
    let bytes = m.onnx_bytes();
    for (w, h) in [(37, 41), (70, 33), (129, 65)] {
        let img = textured(w, h, w + h);
        let whole = savl::testing::raw_sr(&bytes, &img, false).unwrap();
        for tile in [32, 33, 64, 96, 256] {
            let up = Upscaler::builder()
                .model_bytes(bytes.clone())
                .precision(Precision::F32)
                .tiles(TileConfig::new(tile))
                .threads(1)
                .build()
                .unwrap();
            let tiled = up.upscale_planar_f32(&img).unwrap();
            assert_eq!(tiled.len(), whole.len());
            let max = max_abs_diff(&whole, &tiled);
            assert!(max <= 1e-4, "{w}×{h} tile {tile}: max |diff| {max}");
        }
    }
}

/// The shipped model file (placeholder or trained), when present: tiled == whole (f32 ≤ 1e-4)
/// on an odd-sized image, tile sizes from 32 to 256.
#[test]
fn shipped_model_tiles_seamlessly() {
    let path = support::model("savl-lite-x4.onnx");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipped: {} missing", path.display());
        return;
    };
    let img = textured(45, 37, 5);
    let whole = savl::testing::raw_sr(&bytes, &img, false).unwrap();
    for tile in [32, 77, 256] {
        let up = Upscaler::builder()
            .model_path(&path)
            .precision(Precision::F32)
            .tile(tile)
            .threads(2)
            .build()
            .unwrap();
        let tiled = up.upscale_planar_f32(&img).unwrap();
        let max = max_abs_diff(&whole, &tiled);
        assert!(
            max <= 1e-4,
            "tile {tile} (halo {}): max |diff| {max}",
            up.halo()
        );
    }
}

/// A peer with 19 input channels is refused with a message naming the file.
#[test]
fn non_rgb_peer_is_a_model_error() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/peers/srmd_x4.onnx");
    if !std::path::Path::new(path).exists() {
        return;
    }
    let e = Upscaler::builder().model_path(path).build().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("srmd_x4.onnx") && msg.contains("3 channels"),
        "{msg}"
    );
}

/// The working-set estimate: at least the tile's ×4 output, and exactly proportional to the tile
/// area (every activation of a fully convolutional net is).
#[test]
fn working_set_estimate_grows_with_the_tile_area() {
    let m = TestModel::default();
    let up = Upscaler::builder()
        .model_bytes(m.onnx_bytes())
        .threads(1)
        .build()
        .unwrap();
    let a = up.tile_working_set(32, 32).unwrap();
    let b = up.tile_working_set(64, 64).unwrap();
    let c = up.tile_working_set(64, 128).unwrap();
    // At least the ×4 output of the tile (3 channels, f32) is alive at the end.
    assert!(a >= 3 * 128 * 128 * 4, "{a}");
    // Every activation is proportional to the tile area: 4× the pixels, 4× the bytes.
    assert_eq!(b, 4 * a, "{a} {b}");
    assert_eq!(c, 2 * b, "{b} {c}");
}

#[test]
fn auto_tile_fits_the_budget_and_stays_seamless() {
    let m = TestModel::sized(8, 6);
    let bytes = m.onnx_bytes();
    let (w, h) = (150, 90);
    let img = textured(w as u32, h as u32, 5);
    let roomy = Upscaler::builder()
        .model_bytes(bytes.clone())
        .precision(Precision::F32)
        .threads(2)
        .build()
        .unwrap();
    assert_eq!(roomy.tile(), None);
    // The default budget holds this small picture as one tile.
    assert_eq!(roomy.tile_for(w, h), w);
    let ws = roomy.tile_working_set(64, 64).unwrap();
    let tight = Upscaler::builder()
        .model_bytes(bytes.clone())
        .precision(Precision::F32)
        .threads(2)
        .max_memory(3 * ws)
        .build()
        .unwrap();
    let t = tight.tile_for(w, h);
    assert!(
        t < w && t > 2 * tight.halo(),
        "tile {t} halo {} ws {ws}",
        tight.halo()
    );
    let whole = roomy.upscale_planar_f32(&img).unwrap();
    let tiled = tight.upscale_planar_f32(&img).unwrap();
    let diff = max_abs_diff(&whole, &tiled);
    assert!(diff <= 1e-4, "auto tile {t}: max diff {diff}");
    // After quantisation a value that close can only move by one level.
    let (a, b) = (roomy.upscale(&img).unwrap(), tight.upscale(&img).unwrap());
    let worst = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max();
    assert!(worst <= Some(1), "u8 outputs differ by {worst:?}");
}
