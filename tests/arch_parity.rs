//! Cross-architecture parity of the shipped models (issue: ARM builds verified under emulation).
//!
//! The goldens in `tests/golden/` are the outputs of the shipped models on a fixed input,
//! computed on x86-64. On any machine (x86 in CI, aarch64 under QEMU with a Cortex-A72 or A76):
//! * f32 must match the f32 golden within 1e-3 (max abs, on [0, 1] outputs);
//! * int8 must stay within its budget (≥ 40 dB PSNR) against the f32 golden, and f16 (the
//!   embedded default) within its budget (≥ 55 dB): on a CPU with native fp16 that is the f32
//!   model with fp16 Winograd products, elsewhere tract's f16 graph;
//! * precision f16 runs the fp16 Winograd products exactly where the CPU has native fp16, and
//!   those products stay within a stated bound of a direct convolution in f64;
//! * when `SAVL_EXPECT_AUTO` is set (CI sets it per emulated core), precision `auto` must resolve
//!   to it, and `SAVL_EXPECT_KERNEL` must name the int8 matmul kernel tract picked.
//!
//! After the shipped models change, regenerate the goldens on x86:
//! `SAVL_BLESS=1 cargo test -p savl --test arch_parity`.

mod support;

use std::path::{Path, PathBuf};

use image::RgbImage;
use savl::kernels::winograd::{conv3x3, WinogradTile, WinogradWeights, FP16_CHUNK};
use savl::kernels::with_portable_products;
use savl::testing::{max_abs_diff, Rng};
use savl::{CpuCaps, Precision, Upscaler};
use support::root;
use tract_linalg::multithread::Executor;

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

/// The output of the shipped model at precision `p`: its `p` file, or the embedded default.
fn run(p: Precision, embedded: bool) -> Vec<f32> {
    let builder = Upscaler::builder().precision(p).tile(32).threads(1);
    let builder = if embedded {
        builder.embedded_model()
    } else {
        builder.model_path(model_file(p))
    };
    let up = builder.build().unwrap_or_else(|e| panic!("{p}: {e}"));
    println!("{}", up.describe());
    assert_eq!(up.precision(), p);
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
    let out = run(Precision::F32, false);
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

/// The output at `precision` (of its file, or the embedded default) is at least `budget_db` of
/// PSNR against the f32 golden.
fn within_budget_of_the_f32_golden(precision: Precision, embedded: bool, budget_db: f64) {
    let out = run(precision, embedded);
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
    within_budget_of_the_f32_golden(Precision::Int8, false, 40.0);
}

#[test]
fn f16_stays_within_budget_of_the_f32_golden() {
    within_budget_of_the_f32_golden(Precision::F16, true, 55.0);
}

/// Precision f16 runs the f32 model's Winograd convs with fp16 products exactly when the CPU has
/// native fp16 (`CpuCaps::fp16_winograd`), for the embedded model and for a named file; elsewhere
/// it is the f16 file in tract.
#[test]
fn f16_takes_the_fp16_winograd_path_only_with_native_fp16() {
    let caps = CpuCaps::detect();
    println!(
        "native fp16: {}, fp16 Winograd: {}",
        caps.fp16,
        caps.fp16_winograd()
    );
    let f16 = |b: savl::UpscalerBuilder| b.precision(Precision::F16).threads(1).build().unwrap();
    for (what, up, f32_file) in [
        (
            "embedded",
            f16(Upscaler::builder()),
            "<embedded:savl-lite-x4.onnx>".into(),
        ),
        (
            "path",
            f16(Upscaler::builder().model_path(model_file(Precision::F16))),
            model_file(Precision::F32),
        ),
    ] {
        let describe = up.describe();
        assert_eq!(up.precision(), Precision::F16, "{what}: {describe}");
        let fp16_products = describe.contains("(fp16 products)");
        assert_eq!(fp16_products, caps.fp16_winograd(), "{what}: {describe}");
        assert_eq!(
            up.model_name() == f32_file.as_path(),
            caps.fp16_winograd(),
            "{what}: {describe}"
        );
    }
    // A foreign f32 model (no savl metadata): `auto` keeps f32 (its fp16 Winograd output is not
    // held to the budget), an explicit f16 runs the fp16 products where the CPU has them.
    let peer = root().join("../shared/peers/realesr-animevideov3-x4.onnx");
    if peer.is_file() {
        let auto = Upscaler::builder().model_path(&peer).threads(1).build();
        assert_eq!(auto.unwrap().precision(), Precision::F32);
        let f16 = Upscaler::builder()
            .model_path(&peer)
            .precision(Precision::F16)
            .threads(1)
            .build();
        assert_eq!(f16.is_ok(), caps.fp16_winograd(), "{:?}", f16.err());
    }
}

/// Winograd with fp16 products ([`FP16_CHUNK`] channels per f16 sum) against a direct
/// convolution in f64, on the shipped model's conv shapes (48 → 48 channels, 3 → 48) and two
/// with remainders, Kaiming-scaled weights, inputs in [−4, 4] (outputs of RMS ≈ 3): F(4×4) within 0.5 max
/// abs and 0.04 RMS, F(2×2) within 0.03 and 0.006. With native fp16 the products and their
/// sums are rounded to f16 (unit roundoff 2⁻¹¹) and F(4×4)'s transformed inputs reach ≈ 100× the
/// input, so this is far looser than the f32 kernels' bounds (`tests/winograd.rs`); elsewhere
/// the `gemm` crate sums in f32 and the error is smaller.
#[test]
fn fp16_products_match_a_direct_conv() {
    let mut rng = Rng(3);
    for (tile, tol, tol_rms) in [
        (WinogradTile::F4, 0.5f32, 0.04),
        (WinogradTile::F2, 0.03, 0.006),
    ] {
        // The shipped model's shapes, then remainders: K not a multiple of 4, C below and
        // above a multiple of the chunk.
        for &(c, k, h, w) in &[
            (48, 48, 12, 20),
            (3, 48, 9, 13),
            (19, 10, 7, 33),
            (50, 6, 5, 18),
        ] {
            let (x, kernel, bias) = support::case(&mut rng, c, k, h, w);
            let want = support::direct(&x, &kernel, &bias, c, k, h, w);
            let wts = WinogradWeights::new(tile, &kernel, k, c).with_fp16_products(FP16_CHUNK);
            assert!(wts.fp16_products());
            let mut y = vec![f32::NAN; k * h * w];
            let slope = vec![1.0; k];
            conv3x3(
                &wts,
                &bias,
                &slope,
                &x,
                h,
                w,
                &mut y,
                &Executor::SingleThread,
                None,
            )
            .unwrap();
            let d = max_abs_diff(&y, &want);
            let rms = |v: &mut dyn Iterator<Item = f32>| {
                let (s, n) = v.fold((0f64, 0usize), |(s, n), x| (s + (x as f64).powi(2), n + 1));
                (s / n as f64).sqrt()
            };
            let out_rms = rms(&mut want.iter().copied());
            let err_rms = rms(&mut y.iter().zip(&want).map(|(a, b)| a - b));
            println!(
                "fp16 products {tile:?} C={c} K={k} {h}×{w}: max abs error {d:.2e}, RMS error \
                 {err_rms:.2e} (output RMS {out_rms:.2})"
            );
            // The same products by the `gemm` crate's f16 GEMMs (on a CPU with native fp16, savl's
            // NEON fp16 blocks run the path above): the same sums in the same order.
            let mut yg = vec![f32::NAN; k * h * w];
            let ex = Executor::SingleThread;
            with_portable_products(|| conv3x3(&wts, &bias, &slope, &x, h, w, &mut yg, &ex, None))
                .unwrap();
            let dg = max_abs_diff(&y, &yg);
            println!("  against the gemm crate's f16 products: max abs diff {dg:.2e}");
            assert!(
                dg <= 1e-3,
                "{tile:?} C={c} K={k}: {dg:e} from the gemm crate's products"
            );
            assert!(
                d <= tol && err_rms <= tol_rms,
                "{tile:?} C={c} K={k}: max abs {d:e}, RMS {err_rms:e}; bounds {tol:e}, {tol_rms:e}"
            );
        }
    }
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
