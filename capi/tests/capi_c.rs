//! The C ABI contract from C: `tests/c/capi_test.c` compiled with `cc`, linked against the
//! `libsavl.a` that this `cargo test` built, and run. Skipped (with a message) when no C compiler
//! is installed.
#![cfg(unix)]

use std::path::PathBuf;
use std::process::Command;

/// The `libsavl.a` built with this test: in `target/<profile>/deps/` beside this test binary
/// (cargo copies it up to `target/<profile>/` only for `cargo build`).
fn libsavl_a() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let here = deps.join("libsavl.a");
    if here.is_file() {
        here
    } else {
        deps.parent().unwrap().join("libsavl.a")
    }
}

#[test]
fn c_test_program_passes_against_libsavl_a() {
    let lib = libsavl_a();
    assert!(lib.is_file(), "{} was not built", lib.display());
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("skipped: no C compiler ({cc})");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("capi_test");
    let out = Command::new(&cc)
        .arg(root.join("tests/c/capi_test.c"))
        .arg("-I")
        .arg(root.join("include"))
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
}
