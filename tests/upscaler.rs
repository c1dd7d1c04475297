//! Builder validation, bad models, precision handling, streaming order and estimate.

mod support;

use savl::testing::max_abs_diff;
use savl::{Error, Precision, Upscaler};
use savl_contract::testmodel::TestModel;
use support::upscaler;

fn img(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, 90]))
}

fn bytes() -> Vec<u8> {
    TestModel::default().onnx_bytes()
}

/// An upscaler over the model file `path` at `precision`.
fn load(path: &std::path::Path, precision: Precision) -> Result<Upscaler, Error> {
    Upscaler::builder()
        .model_path(path)
        .precision(precision)
        .build()
}

#[test]
fn builder_validates_ranges() {
    let b = || Upscaler::builder().model_bytes(bytes());
    let e = b().tile(8).build().unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                parameter: "tile",
                ..
            }
        ) && e.to_string().contains("16..=1024"),
        "{e}"
    );
    let e = b().tile(64).halo(32).build().unwrap_err();
    assert!(
        e.to_string().contains("halo 32 must be < tile/2 = 32"),
        "{e}"
    );
    let e = b().threads(0).build().unwrap_err();
    assert!(e.to_string().contains("threads 0 must be in 1..="), "{e}");
    let up = b().threads(1).build().unwrap();
    assert_eq!(up.scale(), 4);
    assert_eq!(up.halo(), TestModel::default().receptive_field());
    // auto: f32, or f16 (fp16 Winograd products on the f32 model) with native fp16.
    let want = if savl::CpuCaps::detect().fp16_winograd() {
        Precision::F16
    } else {
        Precision::F32
    };
    assert_eq!(up.precision(), want);
    let d = up.describe();
    assert!(
        d.contains(&format!("precision: {want}")) && d.contains("<bytes>"),
        "{d}"
    );
}

#[test]
fn bad_model_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.onnx");
    let e = Upscaler::builder()
        .model_path(&missing)
        .build()
        .unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("nope.onnx"),
        "{e}"
    );

    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(
        &corrupt,
        b"\x08\x07garbage that is not protobuf \xff\xff\xff",
    )
    .unwrap();
    let e = Upscaler::builder()
        .model_path(&corrupt)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Model { .. }), "{e:?}");
    assert!(e.to_string().contains("corrupt.onnx"), "{e}");

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let e = Upscaler::builder().model_path(&empty).build().unwrap_err();
    assert!(e.to_string().contains("empty.onnx"), "{e}");

    // Truncated real model.
    let trunc = dir.path().join("trunc.onnx");
    let b = bytes();
    std::fs::write(&trunc, &b[..b.len() / 2]).unwrap();
    let e = Upscaler::builder().model_path(&trunc).build().unwrap_err();
    assert!(
        matches!(e, Error::Model { .. }) && e.to_string().contains("trunc.onnx"),
        "{e}"
    );
}

#[test]
fn missing_precision_is_unsupported_and_siblings_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    std::fs::write(&p, bytes()).unwrap();
    let e = load(&p, Precision::Int8).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    assert!(
        e.to_string().contains("m.onnx") && e.to_string().contains("int8"),
        "{e}"
    );
    // f16 from f32 bytes: only as fp16 Winograd products, with native fp16.
    let f16 = Upscaler::builder()
        .model_bytes(bytes())
        .precision(Precision::F16)
        .build();
    if savl::CpuCaps::detect().fp16_winograd() {
        assert_eq!(f16.unwrap().precision(), Precision::F16);
    } else {
        let e = f16.unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    }
    // Explicit f32 on the f32 file, and on a `.int8.onnx` name whose f32 sibling exists.
    let up = load(&p, Precision::F32).unwrap();
    assert_eq!(up.precision(), Precision::F32);
}

#[test]
fn upscale_rows_streams_bands_in_order() {
    let up = upscaler(&bytes(), 32, 2);
    let src = img(45, 70);
    let whole = up.upscale(&src).unwrap();
    let row = 45 * 4 * 3;
    let mut next = 0u32;
    let mut bands = 0;
    up.upscale_rows(&src, |y, rows| {
        assert_eq!(y, next);
        assert_eq!(rows.len() % row, 0);
        let n = (rows.len() / row) as u32;
        assert!(n <= 32 * 4, "a band is at most one tile row");
        let s = y as usize * row;
        assert_eq!(&whole.as_raw()[s..s + rows.len()], rows);
        next += n;
        bands += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(next, 70 * 4);
    assert!(bands > 1);
}

#[test]
fn sink_error_stops_and_is_returned() {
    let up = upscaler(&bytes(), 32, 1);
    let mut calls = 0;
    let r = up.upscale_rows(&img(40, 90), |_, _| {
        calls += 1;
        Err(Error::Sink("disk full".into()))
    });
    assert!(matches!(r, Err(Error::Sink(_))));
    assert_eq!(calls, 1);
}

#[test]
fn bad_input_is_an_error() {
    let up = Upscaler::builder()
        .model_bytes(bytes())
        .threads(1)
        .max_input_pixels(1000)
        .build();
    let up = up.unwrap();
    assert!(matches!(
        up.upscale(&image::RgbImage::new(0, 5)),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        up.upscale(&img(40, 40)),
        Err(Error::Limits { unit: "pixels", .. })
    ));
    assert!(up.upscale(&img(1, 1)).is_ok());
}

#[test]
fn estimate_matches_whole_image_and_peers_are_unsupported() {
    let up = upscaler(&bytes(), 32, 2);
    let whole = upscaler(&bytes(), 256, 1);
    let src = img(50, 41);
    let (a, b) = (up.estimate(&src).unwrap(), whole.estimate(&src).unwrap());
    assert_eq!(
        (a.width, a.height, a.dim),
        (50, 41, TestModel::default().dim)
    );
    assert_eq!(a.mu.len(), a.dim * 50 * 41);
    let max = max_abs_diff(&a.mu, &b.mu);
    assert!(max < 1e-5, "{max}");
    assert!(a.severity.iter().all(|s| (-3.0..=3.0).contains(s)));

    let peer = TestModel {
        degradation_outputs: false,
        metadata: false,
        ..Default::default()
    };
    let up = Upscaler::builder()
        .model_bytes(peer.onnx_bytes())
        .threads(1)
        .build()
        .unwrap();
    assert_eq!(up.halo(), savl::DEFAULT_FOREIGN_HALO);
    assert!(matches!(up.estimate(&src), Err(Error::Unsupported(_))));
    assert_eq!(up.upscale(&src).unwrap().dimensions(), (200, 164));
}

#[test]
fn auto_picks_among_the_named_file_and_its_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let (f32_file, f16_file) = (dir.path().join("m.onnx"), dir.path().join("m.f16.onnx"));
    std::fs::copy(support::model("savl-lite-x4.f16.onnx"), &f16_file).unwrap();
    // Alone, the f16 file is what auto runs.
    let up = Upscaler::builder().model_path(&f16_file).build().unwrap();
    assert_eq!(
        (up.precision(), up.model_name()),
        (Precision::F16, f16_file.as_path())
    );
    // With its f32 sibling beside it, auto runs whichever this CPU runs faster, whichever
    // file was named, and says so. With native fp16, f16 is the f32 file with fp16 Winograd
    // products.
    std::fs::copy(support::model("savl-lite-x4.onnx"), &f32_file).unwrap();
    let caps = savl::CpuCaps::detect();
    let (best, _) = caps.choose(&[Precision::F32, Precision::F16]);
    let best_file = if best == Precision::F32 || caps.fp16_winograd() {
        &f32_file
    } else {
        &f16_file
    };
    for named in [&f16_file, &f32_file] {
        let up = Upscaler::builder().model_path(named).build().unwrap();
        assert_eq!(up.precision(), best, "named {}", named.display());
        assert_eq!(up.model_name(), best_file.as_path());
        assert!(up.describe().contains("auto:"), "{}", up.describe());
    }
    // An explicit precision is honoured.
    let up = load(&f32_file, Precision::F16).unwrap();
    assert_eq!(up.precision(), Precision::F16);
    let f16_from = if caps.fp16_winograd() {
        &f32_file
    } else {
        &f16_file
    };
    assert_eq!(up.model_name(), f16_from.as_path());
}
