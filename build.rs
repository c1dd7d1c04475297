//! Embeds whichever default models exist in `models/` (so the build never breaks without them),
//! and sets `cfg(savl_avx512)` when the compiler has the AVX-512 intrinsics (rustc ≥ 1.89; the
//! crate's MSRV is older), which `src/kernels/winograd.rs` needs for its AVX-512 products.

use std::env;
use std::fmt::Write;
use std::path::PathBuf;

/// Whether `$RUSTC` is at least 1.89 (AVX-512 intrinsics and `target_feature` stable).
fn rustc_has_avx512() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    let mut parts = version
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 89)
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(savl_avx512)");
    if rustc_has_avx512() {
        println!("cargo:rustc-cfg=savl_avx512");
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let files = [
        ("F32", "savl-lite-x4.onnx"),
        ("Int8", "savl-lite-x4.int8.onnx"),
        ("F16", "savl-lite-x4.f16.onnx"),
    ];
    let mut code = String::from(
        "/// Embedded default models: (precision, file name, bytes).\n\
         pub(crate) static EMBEDDED: &[(Precision, &str, &[u8])] = &[\n",
    );
    println!("cargo:rerun-if-changed=models");
    for (prec, name) in files {
        let path = root.join("models").join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        if env::var_os("SAVL_NO_EMBED").is_none() && path.is_file() {
            writeln!(
                code,
                "    (Precision::{prec}, {name:?}, include_bytes!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
    }
    code.push_str("];\n");
    println!("cargo:rerun-if-env-changed=SAVL_NO_EMBED");
    std::fs::write(out.join("embedded_models.rs"), code).unwrap();
}
