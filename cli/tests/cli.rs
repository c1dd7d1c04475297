//! The `savl` binary end to end, on tiny pictures and the tiny synthetic test model
//! (`savl_contract::testmodel`), so every test runs in well under a second.

use std::io::Write;
use std::process::Stdio;

mod support;
use support::{assert_mentions, dims, exits, stderr, Fixture};

#[test]
fn upscale_writes_name_x4_png_beside_the_input() {
    let f = Fixture::with_picture("photo.png", 20, 12);
    assert_eq!(
        f.dims_after(&["upscale", "photo.png"], "photo_x4.png"),
        (80, 48)
    );
}

#[test]
fn upscale_output_format_from_extension_or_flag() {
    let f = Fixture::with_picture("in.jpg", 10, 8);
    let o = f.savl(&["upscale", "in.jpg", "-o", "out.webp"]);
    exits(&o, 0);
    assert_eq!(
        image::ImageFormat::from_path(f.path("out.webp")).unwrap(),
        image::ImageFormat::WebP
    );
    assert_eq!(dims(&f.path("out.webp")), (40, 32));

    assert_eq!(
        f.dims_after(
            &["upscale", "in.jpg", "--format", "jpg", "--out-dir", "o"],
            "o/in_x4.jpg"
        ),
        (40, 32)
    );

    // A flag that contradicts -o's extension is a usage error.
    let o = f.savl(&["upscale", "in.jpg", "-o", "x.png", "--format", "jpg"]);
    exits(&o, 2);
}

#[test]
fn batch_goes_on_past_a_corrupt_file_and_lists_it() {
    let f = Fixture::with_picture("frames/a.png", 9, 7);
    std::fs::write(f.path("frames/b.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let c = f.picture("frames/c.png", 9, 7);
    // A truncated PNG too.
    let bytes = std::fs::read(&c).unwrap();
    std::fs::write(f.path("frames/d.png"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(f.path("frames/notes.txt"), b"not a picture").unwrap();

    let err = f.fails(&["upscale", "frames", "--out-dir", "out"], 1);
    assert!(err.contains("2 of 4 inputs failed"), "{err}");
    assert_mentions(&err, &["b.png", "d.png"]);
    assert_eq!(dims(&f.path("out/a_x4.png")), (36, 28));
    assert_eq!(dims(&f.path("out/c_x4.png")), (36, 28));
    assert!(!f.path("out/b_x4.png").exists());
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(f.path("out")).unwrap().collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn existing_output_is_kept_without_force() {
    let f = Fixture::with_picture("p.png", 8, 8);
    std::fs::write(f.path("p_x4.png"), b"precious").unwrap();
    let o = f.savl(&["upscale", "p.png"]);
    exits(&o, 1);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(f.path("p_x4.png")).unwrap(), b"precious");

    assert_eq!(
        f.dims_after(&["upscale", "p.png", "--force"], "p_x4.png"),
        (32, 32)
    );
}

#[test]
fn an_input_is_never_overwritten_even_with_force() {
    let f = Fixture::new();
    let input = f.picture("p.png", 8, 8);
    let before = std::fs::read(&input).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["upscale", "p.png", "-o", "./p.png"];
        args.extend_from_slice(extra);
        let o = f.savl(&args);
        exits(&o, 1);
        assert!(
            stderr(&o).contains("refusing to overwrite the input"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::with_picture("a.png", 8, 8);
    f.picture("b.png", 8, 8);
    let o = f.savl(&["upscale", "a.png", "b.png", "-o", "x.png"]);
    exits(&o, 2);
    assert!(stderr(&o).contains("--out-dir"), "{}", stderr(&o));
    let o = f.savl(&["upscale", "a.png", "-o", "x.tiff"]);
    exits(&o, 2);
    let o = f.savl(&["upscale", "a.png", "--precision", "f64"]);
    exits(&o, 2);
}

#[test]
fn decoded_size_limit_names_the_file() {
    let f = Fixture::with_picture("big.png", 40, 30);
    let err = f.fails(&["upscale", "big.png", "--limit-mp", "0.001"], 1);
    assert_mentions(&err, &["big.png", "limit"]);
}

#[test]
fn a_missing_or_corrupt_model_or_precision_is_fatal_and_named() {
    let f = Fixture::with_picture("a.png", 8, 8);
    std::fs::write(f.path("bad.onnx"), b"this is not onnx").unwrap();
    for model in ["nope.onnx", "bad.onnx"] {
        let err = exits(&f.savl_bare(&["upscale", "a.png", "--model", model]), 2);
        assert!(err.contains(model), "{err}");
    }
    assert!(!f.path("a_x4.png").exists());
    // So is a precision the model lacks.
    let err = f.fails(&["upscale", "a.png", "--precision", "int8"], 2);
    assert_mentions(&err, &["tiny.onnx", "int8"]);
}

#[test]
fn verbose_prints_the_precision_choice() {
    let f = Fixture::with_picture("a.png", 8, 8);
    let o = f.savl(&["-v", "upscale", "a.png"]);
    exits(&o, 0);
    assert!(stderr(&o).contains("precision: f32"), "{}", stderr(&o));
}

#[test]
fn raw_frames_round_trip_sizes() {
    let f = Fixture::new();
    let (w, h) = (12usize, 6usize);
    let frames: Vec<u8> = (0..3 * w * h * 3).map(|i| (i * 7) as u8).collect();
    let o = f.savl_with_stdin(&["upscale", "--raw", "12x6"], &frames);
    exits(&o, 0);
    assert_eq!(o.stdout.len(), 3 * (4 * w) * (4 * h) * 3);

    // A frame cut short is an error that says so.
    let o = f.savl_with_stdin(&["upscale", "--raw", "12x6"], &frames[..w * h * 3 + 5]);
    exits(&o, 2);
    assert!(stderr(&o).contains("frame 1"), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), (4 * w) * (4 * h) * 3);
}

#[test]
fn inspect_writes_a_three_panel_map() {
    let f = Fixture::with_picture("a.png", 20, 10);
    let o = f.savl(&["inspect", "a.png", "--map", "map.png"]);
    exits(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("severity"));
    // Panels of 20×10 enlarged 8× (small inputs are enlarged for readability), 8-px gaps.
    let (w, h) = dims(&f.path("map.png"));
    assert_eq!(w, 3 * 160 + 2 * 8);
    assert!(h > 80);
    // The map never replaces its input.
    let o = f.savl(&["inspect", "a.png", "--map", "a.png", "--force"]);
    exits(&o, 2);
}

#[test]
fn raw_mode_treats_a_closed_stdout_as_success() {
    // `savl upscale --raw … | head -c 100`: far more output than a pipe buffer holds, and the
    // reader goes away after 100 bytes.
    use std::io::Read;
    let f = Fixture::new();
    let frames = vec![128u8; 200 * 12 * 6 * 3];
    let mut child = f
        .command(&["upscale", "--raw", "12x6"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = pipe.write_all(&frames);
    });
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // stdout is dropped (closed) here.
    let o = child.wait_with_output().unwrap();
    exits(&o, 0);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}
