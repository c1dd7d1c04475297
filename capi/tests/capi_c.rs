//! The C ABI contract from C: `tests/c/capi_test.c` and the camera example
//! `examples/c/camera_nv12.c` compiled with `cc`, linked against the `libsavl.a` that this
//! `cargo test` built, and run. Skipped (with a message) when no C compiler is installed.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The static library built with this test: the `savl_static` example (the library's own
/// sources as a staticlib), which `cargo test` builds into `target/<profile>/examples/`.
fn libsavl_a() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples/libsavl_static.a")
}

/// Compiles `source` (relative to this crate) against `libsavl.a` into a new temporary folder:
/// the folder and the program; `None` (skipped) without a C compiler.
fn compile(source: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let lib = libsavl_a();
    assert!(
        lib.is_file(),
        "{} was not built: run the whole `cargo test` (it builds the savl_static example)",
        lib.display()
    );
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("skipped: no C compiler ({cc})");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join(source.file_stem().unwrap());
    let mut cc_cmd = Command::new(&cc);
    cc_cmd
        .arg(&source)
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm"]);
    run_ok(&mut cc_cmd, &format!("cc {}", source.display()));
    Some((dir, exe))
}

/// Runs `cmd`, asserting that it succeeds (with its output in the message otherwise); its stdout.
fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout
}

#[test]
fn c_test_program_passes_against_libsavl_a() {
    let Some((_dir, exe)) = compile("tests/c/capi_test.c") else {
        return;
    };
    let stdout = run_ok(&mut Command::new(&exe), "C checks");
    assert!(stdout.contains("0 failed"), "{stdout}");
}

/// The frames `examples/c/camera_nv12.c` synthesises (same formula), packed NV12.
fn camera_frame(w: u32, h: u32, n: u32) -> Vec<u8> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut f = Vec::new();
    for y in 0..h {
        for x in 0..w {
            f.push((16 + (x * 5 + y * 3 + n * 3) % 220) as u8);
        }
    }
    for y in 0..ch {
        for x in 0..cw {
            f.push((64 + (x * 7 + n * 5) % 128) as u8);
            f.push((64 + (y * 9 + 200 - n * 5 % 200) % 128) as u8);
        }
    }
    f
}

/// The camera example's NV12 output equals the Rust path: NV12 → RGB8 (`savl::yuv`, BT.601
/// limited), `Upscaler::upscale`, RGB8 → NV12; and it reports progress and a time per frame.
#[test]
fn camera_nv12_example_matches_the_rust_path() {
    let Some((dir, exe)) = compile("../examples/c/camera_nv12.c") else {
        return;
    };
    let (w, h, frames) = (26u32, 18u32, 3u32);
    let out_path = dir.path().join("out.nv12");
    let mut camera = Command::new(&exe);
    camera
        .args([w.to_string(), h.to_string(), frames.to_string()])
        .arg(&out_path);
    let stdout = run_ok(&mut camera, "camera_nv12");
    for n in 0..frames {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("frame {n}:")))
            .unwrap_or_else(|| panic!("no line for frame {n}:\n{stdout}"));
        assert!(
            line.contains(" ms ") && line.contains(&format!("{0}/{0} rows", h * 4)),
            "{line}"
        );
    }
    let got = std::fs::read(&out_path).unwrap();
    let up = savl::Upscaler::builder().build().unwrap();
    let sub = savl::yuv::Subsampling::Yuv420;
    let colour = savl::yuv::Colour::default();
    let (ow, oh) = (w * 4, h * 4);
    let mut expected = Vec::new();
    for n in 0..frames {
        let frame = camera_frame(w, h, n);
        let (y, uv) = frame.split_at((w * h) as usize);
        let yuv = savl::yuv::YuvImage {
            width: w,
            height: h,
            subsampling: sub,
            y: savl::yuv::Plane {
                data: y,
                stride: w as usize,
            },
            chroma: savl::yuv::Chroma::Interleaved {
                uv: savl::yuv::Plane {
                    data: uv,
                    stride: 2 * w.div_ceil(2) as usize,
                },
                order: savl::yuv::UvOrder::Uv,
            },
        };
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        savl::yuv::yuv_to_rgb(&yuv, colour, &mut rgb, 3 * w as usize).unwrap();
        let big = up
            .upscale(&image::RgbImage::from_raw(w, h, rgb).unwrap())
            .unwrap();
        let mut nv = vec![0u8; sub.frame_len(ow, oh)];
        let mut out = savl::yuv::YuvImageMut::packed(&mut nv, ow, oh, sub).unwrap();
        savl::yuv::rgb_to_yuv(big.as_raw(), 3 * ow as usize, colour, &mut out).unwrap();
        // packed() is planar (Y, U, V); the example writes NV12 (Y, then U, V pairs).
        let ylen = (ow * oh) as usize;
        let (y, chroma) = nv.split_at(ylen);
        let (u, v) = chroma.split_at(chroma.len() / 2);
        expected.extend_from_slice(y);
        expected.extend(u.iter().zip(v).flat_map(|(&u, &v)| [u, v]));
    }
    assert_eq!(got.len(), expected.len());
    let diff: Vec<usize> = (0..got.len()).filter(|&i| got[i] != expected[i]).collect();
    assert!(
        diff.is_empty(),
        "camera_nv12's output differs from the Rust path in {} bytes, first at {:?} of {}",
        diff.len(),
        diff.first(),
        got.len()
    );
}
