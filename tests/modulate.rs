//! The fused `x · sigmoid(g)` rewrite gives the same output as the unfused graph.

use savl::testing::max_abs_diff;
use savl_contract::testmodel::TestModel;
use tract_onnx::prelude::*;

fn test_image(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 9 % 251) as u8,
            (y * 5 % 253) as u8,
            ((x + y) * 3 % 255) as u8,
        ])
    })
}

#[test]
fn rewrite_finds_every_gate() {
    for body in [2, 4, 6, 10] {
        let m = TestModel {
            body,
            ..Default::default()
        };
        let bytes = m.onnx_bytes();
        let mut typed = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .unwrap()
            .into_typed()
            .unwrap()
            .into_decluttered()
            .unwrap();
        let n = savl::rewrites::modulation::fuse_modulation(&mut typed).unwrap();
        assert_eq!(n, body / 2, "body {body}");
        let names: Vec<String> = typed
            .nodes()
            .iter()
            .map(|n| n.op().name().to_string())
            .collect();
        assert!(!names.iter().any(|n| n == "Sigmoid"), "{names:?}");
        assert_eq!(
            names.iter().filter(|n| *n == "SavlSigmoidMul").count(),
            body / 2
        );
    }
}

#[test]
fn fused_equals_unfused() {
    let m = TestModel::sized(16, 6);
    let bytes = m.onnx_bytes();
    for (w, h) in [(31, 17), (64, 48)] {
        let img = test_image(w, h);
        let a = savl::testing::raw_sr(&bytes, &img, false).unwrap();
        let b = savl::testing::raw_sr(&bytes, &img, true).unwrap();
        let max = max_abs_diff(&a, &b);
        assert!(max <= 1e-5, "{w}×{h}: max |diff| {max}");
    }
}

#[test]
fn upscaler_fused_equals_unfused() {
    let bytes = TestModel::default().onnx_bytes();
    let img = test_image(40, 30);
    let build = |fused| {
        savl::Upscaler::builder()
            .model_bytes(bytes.clone())
            .fused_modulation(fused)
            .threads(1)
            .build()
            .unwrap()
    };
    let (a, b) = (build(false), build(true));
    assert!(
        b.describe().contains("fused modulation blocks: 2"),
        "{}",
        b.describe()
    );
    let (a, b) = (
        a.upscale_planar_f32(&img).unwrap(),
        b.upscale_planar_f32(&img).unwrap(),
    );
    let max = max_abs_diff(&a, &b);
    assert!(max <= 1e-5, "max |diff| {max}");
}
