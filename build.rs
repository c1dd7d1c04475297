//! Embeds whichever default models exist in `models/` (so the build never breaks without them).

use std::env;
use std::fmt::Write;
use std::path::PathBuf;

fn main() {
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
