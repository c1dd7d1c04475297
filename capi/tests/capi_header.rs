//! `include/savl.h` must be what cbindgen generates from `src/abi.rs` today.
//! Regenerate with `SAVL_BLESS=1 cargo test -p savl-capi --test capi_header`.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/abi.rs"))
        .generate()
        .expect("cbindgen failed on src/abi.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = root.join("include/savl.h");
    if std::env::var_os("SAVL_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/savl.h is stale: regenerate it with `SAVL_BLESS=1 cargo test -p savl-capi --test capi_header`"
    );
    for f in [
        "savl_upscaler_new",
        "savl_upscaler_run",
        "savl_upscaler_free",
        "savl_last_error",
        "SAVL_STATUS_PANIC",
    ] {
        assert!(generated.contains(f), "header lacks {f}");
    }
}
