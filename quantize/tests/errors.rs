//! Bad inputs give errors that name the file, from the library and from the binary.

mod common;

use std::process::Command;

use savl_quantize::images::{calibration_crops, CalibCrops};
use savl_quantize::onnx_graph::load_model;
use savl_quantize::QuantError;

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("savl-quantize-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_and_corrupt_models_name_the_file() {
    let d = tmpdir("bad");
    let missing = d.join("nope.onnx");
    let e = load_model(&missing).unwrap_err();
    assert!(matches!(e, QuantError::Io { .. }));
    assert!(e.to_string().contains("nope.onnx"), "{e}");

    let corrupt = d.join("corrupt.onnx");
    std::fs::write(&corrupt, b"\xff\xff\xff garbage, not protobuf \x00\x01").unwrap();
    let e = load_model(&corrupt).unwrap_err();
    assert!(matches!(e, QuantError::Decode { .. }), "{e:?}");
    assert!(e.to_string().contains("corrupt.onnx"), "{e}");
}

#[test]
fn empty_calibration_dir_names_the_dir() {
    let d = tmpdir("emptycal");
    let e = calibration_crops(&d, &CalibCrops::default()).unwrap_err();
    assert!(matches!(e, QuantError::Images { .. }));
    assert!(
        e.to_string()
            .contains(d.file_name().unwrap().to_str().unwrap()),
        "{e}"
    );
}

#[test]
fn cli_fails_with_the_file_name() {
    let exe = env!("CARGO_BIN_EXE_savl-quantize");
    let d = tmpdir("cli");
    let model = d.join("small.onnx");
    savl_quantize::onnx_graph::save_model(&common::small(), &model).unwrap();
    let out = d.join("out.onnx");
    // Missing model.
    let o = Command::new(exe)
        .args([
            "fp16",
            d.join("missing.onnx").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.onnx"));
    // Empty calibration directory.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = Command::new(exe)
        .args([
            "int8",
            model.to_str().unwrap(),
            "--calib",
            empty.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("empty"), "{err}");
    assert!(!out.exists());
}
