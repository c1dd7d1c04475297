//! Cross-architecture parity of the shipped models (issue: ARM builds verified under emulation).
//!
//! The goldens in `tests/golden/` are the outputs of the shipped models on a fixed input,
//! computed on x86-64. On any machine (x86 in CI, aarch64 under QEMU with a Cortex-A72 or A76):
//! * f32 must match the f32 golden within 1e-3 (max abs, on [0, 1] outputs);
//! * int8 must stay within its budget (≥ 40 dB PSNR) against the f32 golden, and f16 within its
//!   budget (≥ 55 dB);
//! * when `SAVL_EXPECT_AUTO` is set (CI sets it per emulated core), precision `auto` must resolve
//!   to it, and `SAVL_EXPECT_KERNEL` must name the int8 matmul kernel tract picked.
//!
//! After the shipped models change, regenerate the goldens on x86:
//! `SAVL_BLESS=1 cargo test -p savl --test arch_parity`.

mod support;

use std::path::{Path, PathBuf};

use image::RgbImage;
use savl::testing::max_abs_diff;
use savl::{Precision, Upscaler};
use support::root;

/// A 24×20 crop of the shipped sample picture: real content, small enough for QEMU.
fn input() -> RgbImage {
    let img = image::open(root().join("assets/sample.png"))
        .expect("assets/sample.png")
        .to_rgb8();
    image::imageops::crop_imm(&img, 60, 40, 24, 20).to_image()
}

fn model_file(p: Precision) -> PathBuf {
    let name = match p {
        Precision::Int8 => "savl-lite-x4.int8.onnx",
        Precision::F16 => "savl-lite-x4.f16.onnx",
        _ => "savl-lite-x4.onnx",
    };
    support::model(name)
}

fn run(p: Precision) -> Vec<f32> {
    let up = Upscaler::builder()
        .model_path(model_file(p))
        .tile(32)
        .threads(1)
        .build()
        .unwrap_or_else(|e| panic!("{p}: {e}"));
    up.upscale_planar_f32(&input()).unwrap()
}

fn golden_path(p: Precision) -> PathBuf {
    root()
        .join("tests/golden")
        .join(format!("arch_parity_{p}.f32"))
}

fn read_golden(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; bless with SAVL_BLESS=1 cargo test -p savl --test arch_parity",
            path.display()
        )
    });
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn write_golden(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let clamp = |v: &[f32]| v.iter().map(|x| x.clamp(0.0, 1.0)).collect::<Vec<_>>();
    savl_contract::metrics::psnr_f32(&clamp(a), &clamp(b))
}

fn bless() -> bool {
    std::env::var_os("SAVL_BLESS").is_some()
}

#[test]
fn f32_matches_the_x86_golden() {
    let out = run(Precision::F32);
    if bless() {
        if !cfg!(target_arch = "x86_64") {
            panic!("goldens are blessed on x86-64");
        }
        write_golden(&golden_path(Precision::F32), &out);
    }
    let golden = read_golden(&golden_path(Precision::F32));
    assert_eq!(out.len(), golden.len());
    let max = max_abs_diff(&out, &golden);
    println!("f32 vs x86 golden: max abs diff {max:.2e}");
    assert!(
        max <= 1e-3,
        "f32 output differs from the x86 golden by {max}"
    );
}

/// The output at `precision` is at least `budget_db` of PSNR against the f32 golden.
fn within_budget_of_the_f32_golden(precision: Precision, budget_db: f64) {
    let out = run(precision);
    let golden = read_golden(&golden_path(Precision::F32));
    let p = psnr(&out, &golden);
    println!("{precision} vs f32 golden: {p:.2} dB");
    assert!(
        p >= budget_db,
        "{precision} output {p:.2} dB against f32, budget {budget_db} dB"
    );
}

#[test]
fn int8_stays_within_budget_of_the_f32_golden() {
    within_budget_of_the_f32_golden(Precision::Int8, 40.0);
}

#[test]
fn f16_stays_within_budget_of_the_f32_golden() {
    within_budget_of_the_f32_golden(Precision::F16, 55.0);
}

#[test]
fn auto_precision_and_int8_kernel_are_the_expected_ones() {
    let up = Upscaler::builder().threads(1).build().unwrap();
    println!("{}", up.describe());
    if let Ok(expect) = std::env::var("SAVL_EXPECT_AUTO") {
        assert_eq!(up.precision().to_string(), expect, "{}", up.describe());
    }
    // The int8 matmul kernel tract picks for the int8 model on this CPU.
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx()
        .model_for_path(model_file(Precision::Int8))
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, 16, 16]).into())
        .unwrap()
        .into_optimized()
        .unwrap();
    let kernels: Vec<String> = model
        .nodes()
        .iter()
        .flat_map(|n| n.op().info().unwrap_or_default())
        .filter(|s| s.contains("mmm") || s.contains("i32"))
        .collect();
    println!("int8 plan kernels: {kernels:?}");
    assert!(
        kernels.iter().any(|k| k.contains("i32")),
        "no integer matmul kernel in the int8 plan: {kernels:?}"
    );
    if let Ok(expect) = std::env::var("SAVL_EXPECT_KERNEL") {
        assert!(
            kernels.iter().any(|k| k.contains(&expect)),
            "expected kernel {expect} in {kernels:?}"
        );
    }
}
