//! Regression tests for issue 16 (hostile input, interrupted runs, closed pipes): each test
//! fails on the code before the fix. The `savl` binary runs on tiny pictures and the tiny
//! synthetic test model, as in `tests/cli.rs`.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use savl_contract::keys;
use savl_contract::onnx_proto::pb;
use savl_contract::testmodel::TestModel;

mod support;
use support::{assert_mentions, bin, exits, stderr, Fixture};

impl Fixture {
    /// Hidden temporary files left in the folder.
    fn temps(&self) -> Vec<String> {
        let mut names = self.hidden_files();
        names.retain(|n| n.ends_with(".tmp"));
        names
    }
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success());
}

// ---- 1. --force and non-regular outputs ----

#[test]
fn force_writes_into_a_fifo_and_keeps_it_a_fifo() {
    let f = Fixture::with_picture("in.png", 10, 6);
    let fifo = f.path("pipe.png");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        })
    };
    let o = f.savl(&["upscale", "in.png", "-o", "pipe.png", "--force"]);
    exits(&o, 0);
    // Checked before joining: a replaced FIFO would leave the reader blocked for ever.
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    let bytes = reader.join().unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (40, 24));
    assert!(f.temps().is_empty(), "{:?}", f.temps());
}

#[test]
fn force_refuses_a_symlink_and_says_so() {
    let f = Fixture::with_picture("in.png", 8, 8);
    std::fs::write(f.path("target.png"), b"precious").unwrap();
    std::os::unix::fs::symlink("target.png", f.path("link.png")).unwrap();
    let err = f.fails(&["upscale", "in.png", "-o", "link.png", "--force"], 1);
    assert_mentions(&err, &["link.png", "symbolic link", "not follow"]);
    assert!(f
        .path("link.png")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(f.path("target.png")).unwrap(), b"precious");
}

/// The case was `-o /dev/null --force` as root, which turned `/dev/null` into a PNG. The
/// test makes its own null device node in its folder (needs root for `mknod`; skipped otherwise),
/// so that a regression can only damage a file of its own.
#[test]
fn force_to_a_device_node_writes_into_it_and_never_replaces_it() {
    let f = Fixture::with_picture("in.png", 8, 8);
    let dev = f.path("null.png");
    let made = Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mknod needs root");
        return;
    }
    let o = f.savl(&["upscale", "in.png", "-o", "null.png", "--force"]);
    exits(&o, 0);
    assert!(dev.symlink_metadata().unwrap().file_type().is_char_device());
    assert!(f.temps().is_empty());
}

// ---- 2. truncated and forged JPEGs ----

fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 3) as u8, ((x ^ y) * 5) as u8])
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}

#[test]
fn truncated_jpegs_fail_at_every_cut() {
    let f = Fixture::new();
    let full = jpeg_bytes(64, 48);
    let n = full.len();
    for (name, cut) in [
        ("half.jpg", n / 2),
        ("ninety.jpg", n * 9 / 10),
        ("ninety-nine.jpg", n * 99 / 100),
        ("two-short.jpg", n - 2),
        ("one-short.jpg", n - 1),
    ] {
        std::fs::write(f.path(name), &full[..cut]).unwrap();
        let o = f.savl(&["upscale", name]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert_mentions(&err, &[name, "truncated"]);
        assert!(f.temps().is_empty());
    }
    std::fs::write(f.path("whole.jpg"), &full).unwrap();
    let o = f.savl(&["upscale", "whole.jpg"]);
    exits(&o, 0);
}

#[test]
fn a_small_jpeg_claiming_100_megapixels_is_refused_before_any_work() {
    let f = Fixture::new();
    let mut bytes = jpeg_bytes(16, 16);
    // Patch the frame header (SOF0: FF C0, length, precision, height, width) to 9999×10000.
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&10000u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&9999u16.to_be_bytes());
    std::fs::write(f.path("forged.jpg"), &bytes).unwrap();
    let t = Instant::now();
    let err = f.fails(&["upscale", "forged.jpg"], 1);
    assert_mentions(&err, &["forged.jpg", "9999×10000"]);
    assert!(t.elapsed() < Duration::from_secs(20));
    assert!(!f.path("forged_x4.png").exists());
    assert!(f.temps().is_empty());
}

// ---- 3. closed or full stdout/stderr ----

#[test]
fn inspect_into_a_closed_stdout_ends_quietly_with_status_0() {
    let f = Fixture::with_picture("in.png", 16, 16);
    let mut child = f.command(&["inspect", "in.png"]).spawn().unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = exits(&o, 0);
    assert!(!err.contains("panicked"), "{err}");
}

fn batch_fixture() -> Fixture {
    let f = Fixture::with_picture("a.png", 9, 7);
    std::fs::write(f.path("b.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    f.picture("c.png", 9, 7);
    f
}

#[test]
fn a_closed_stderr_never_stops_a_batch() {
    let f = batch_fixture();
    let mut child = f
        .command(&["upscale", "a.png", "b.png", "c.png", "-v"])
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(f.path("a_x4.png").is_file() && f.path("c_x4.png").is_file());
}

#[test]
fn a_full_stderr_never_stops_a_batch() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let f = batch_fixture();
    let status = f
        .command(&["upscale", "a.png", "b.png", "c.png", "-v"])
        .stderr(std::fs::OpenOptions::new().write(true).open(full).unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(f.path("a_x4.png").is_file() && f.path("c_x4.png").is_file());
}

// ---- 5. signals and stale temporary files ----

/// Starts an upscale slow enough to be interrupted, and waits for its temporary file.
fn start_slow_run(f: &Fixture) -> Child {
    if !f.path("big.png").exists() {
        f.picture("big.png", 900, 700);
    }
    let child = f.command(&["upscale", "big.png"]).spawn().unwrap();
    let t = Instant::now();
    while f.temps().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(60), "no temporary file");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn kill(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigint_sigterm_sighup_remove_the_temporary_file() {
    let f = Fixture::new();
    for (sig, num) in [("INT", 2), ("TERM", 15), ("HUP", 1)] {
        let mut child = start_slow_run(&f);
        kill(&child, sig);
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(num), "SIG{sig}: {status:?}");
        assert!(f.temps().is_empty(), "SIG{sig} left {:?}", f.temps());
        assert!(!f.path("big_x4.png").exists());
    }
}

#[test]
fn the_next_run_sweeps_what_a_killed_run_left() {
    let f = Fixture::new();
    let mut child = start_slow_run(&f);
    kill(&child, "KILL");
    child.wait().unwrap();
    assert_eq!(f.temps().len(), 1, "SIGKILL cannot be caught");
    // Another output in the same folder does not touch it (not its own).
    f.picture("small.png", 8, 8);
    let o = f.savl(&["upscale", "small.png"]);
    exits(&o, 0);
    assert_eq!(f.temps().len(), 1);
    let o = f.savl(&["upscale", "big.png"]);
    exits(&o, 0);
    assert!(f.temps().is_empty(), "{:?}", f.temps());
}

// ---- 6. names ----

#[test]
fn output_names_up_to_255_bytes_work() {
    let f = Fixture::new();
    for len in [244, 250, 255] {
        // NAME_x4.png of `len` bytes.
        let stem = "n".repeat(len - "_x4.png".len());
        let input = format!("{stem}.png");
        f.picture(&input, 8, 8);
        let o = f.savl(&["upscale", &input]);
        assert_eq!(o.status.code(), Some(0), "{len}: {}", stderr(&o));
        assert!(f.path(&format!("{stem}_x4.png")).is_file());
    }
    assert!(f.temps().is_empty());
}

#[test]
fn a_x2_model_names_its_outputs_x2() {
    let f = Fixture::with_model(TestModel {
        scale: 2,
        ..TestModel::default()
    });
    f.picture("p.png", 10, 6);
    let o = f.savl(&["upscale", "p.png"]);
    exits(&o, 0);
    assert_eq!(
        image::image_dimensions(f.path("p_x2.png")).unwrap(),
        (20, 12)
    );
    assert!(!f.path("p_x4.png").exists());
}

// ---- 7. memory and format limits ----

#[test]
fn webp_and_jpeg_size_limits_are_checked_before_upscaling() {
    let f = Fixture::with_picture("wide.png", 4100, 2);
    for (out, limit) in [("o.webp", "16383"), ("o.jpg", "65535")] {
        let args: &[&str] = if out == "o.jpg" {
            // 16400 × 4 = 65600 > 65535.
            f.picture("wider.png", 16400, 1);
            &["upscale", "wider.png", "-o", out]
        } else {
            &["upscale", "wide.png", "-o", out]
        };
        let err = exits(&f.savl(args), 1);
        assert_mentions(&err, &[out, limit]);
        assert!(!f.path(out).exists());
        assert!(f.temps().is_empty());
    }
}

/// Peak RSS of a command in kB, from GNU time; `None` without /usr/bin/time.
fn peak_rss_kb(cmd: &mut Command) -> Option<(Output, u64)> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let mut timed = Command::new(time);
    timed
        .args(["-f", "PEAK_RSS_KB=%M", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(cmd.get_current_dir().unwrap());
    let o = timed.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let kb = err
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KB="))
        .and_then(|v| v.trim().parse().ok())?;
    Some((o, kb))
}

/// A PNG with an iCCP chunk whose profile inflates to `inflated` zero bytes.
fn iccp_bomb(inflated: usize) -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([90, 90, 90]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..inflated >> 20 {
        z.write_all(&zeros).unwrap();
    }
    let mut data = b"bomb\0\0".to_vec();
    data.extend(z.finish().unwrap());
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut crc = flate2::Crc::new();
    crc.update(b"iCCP");
    crc.update(&data);
    chunk.extend(b"iCCP");
    chunk.extend(&data);
    chunk.extend(crc.sum().to_be_bytes());
    // After the signature and IHDR (8 + 25 bytes).
    png.splice(33..33, chunk);
    png
}

#[test]
fn an_iccp_bomb_stays_within_the_memory_budget() {
    let f = Fixture::new();
    std::fs::write(f.path("bomb.png"), iccp_bomb(1 << 30)).unwrap();
    let mut cmd = f.command(&["upscale", "bomb.png"]);
    let Some((o, kb)) = peak_rss_kb(&mut cmd) else {
        eprintln!("skipped: no /usr/bin/time");
        return;
    };
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", stderr(&o));
    assert!(kb < 400_000, "peak RSS {kb} kB");
}

/// A PNG of `w × h` zero pixels, a small file that decodes to a lot.
fn write_zero_png(path: &Path, w: u32, h: u32, color: png::ColorType) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut enc = png::Encoder::new(file, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().unwrap().into_stream_writer().unwrap();
    let row = vec![0u8; w as usize * color.samples()];
    for _ in 0..h {
        writer.write_all(&row).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn a_failed_allocation_with_a_raised_limit_is_an_error_not_an_abort() {
    let f = Fixture::new();
    // 20000 × 20000 RGB: 1.2 GB decoded, from a PNG of about 1 MB.
    let path = f.path("huge.png");
    write_zero_png(&path, 20000, 20000, png::ColorType::Rgb);
    let o = Command::new("sh")
        .current_dir(f.dir.path())
        .arg("-c")
        .arg(format!(
            "ulimit -v 1000000 && exec {} upscale huge.png --limit-mp 1000 --limit-mem inf \
             --model tiny.onnx -j 1",
            bin()
        ))
        .output()
        .unwrap();
    let err = exits(&o, 1);
    assert_mentions(&err, &["huge.png", "cannot allocate"]);
    assert!(f.temps().is_empty());
}

/// A 100 MP picture of zeros is a few hundred KB; decoding it takes 300 MB (400 MB as RGBA),
/// which with one band of output rows and the model went over the 400 MB budget. `--limit-mem`
/// refuses it from its header.
#[test]
fn a_small_file_that_decodes_to_100_mp_is_refused_by_the_memory_limit() {
    let f = Fixture::new();
    let path = f.path("zeros.png");
    write_zero_png(&path, 10000, 10000, png::ColorType::Rgba);
    assert!(std::fs::metadata(&path).unwrap().len() < 2_000_000);
    let err = f.fails(&["upscale", "zeros.png"], 1);
    assert_mentions(&err, &["zeros.png", "needs 700 MB", "--limit-mem 200"]);
    // A wide picture's band of output rows counts too.
    f.picture("strip.png", 30000, 40);
    let err = f.fails(&["upscale", "strip.png", "--limit-mem", "40"], 1);
    assert_mentions(&err, &["strip.png", "band of output rows"]);
}

// ---- 8. quieter defects ----

fn model_with(edit: impl FnOnce(&mut pb::ModelProto)) -> Vec<u8> {
    use prost::Message;
    let bytes = TestModel::default().onnx_bytes();
    let mut m = pb::ModelProto::decode(&bytes[..]).unwrap();
    edit(&mut m);
    m.encode_to_vec()
}

fn set_meta(m: &mut pb::ModelProto, key: &str, value: &str) {
    for p in &mut m.metadata_props {
        if p.key == key {
            p.value = value.into();
        }
    }
}

#[test]
fn invalid_model_metadata_is_refused_at_load() {
    let f = Fixture::with_picture("p.png", 8, 8);
    for (key, value) in [(keys::SCALE, "abc"), (keys::RECEPTIVE_FIELD, "-5")] {
        std::fs::write(f.path("bad.onnx"), model_with(|m| set_meta(m, key, value))).unwrap();
        let err = exits(
            &f.savl_bare(&["upscale", "p.png", "--model", "bad.onnx"]),
            2,
        );
        assert_mentions(&err, &["bad.onnx", key]);
    }
}

/// Rewires the `sr` output through an extra node `op(sr, extra…)`.
fn rewire_sr(m: &mut pb::ModelProto, op: &str, extra_inputs: &[&str], inits: Vec<pb::TensorProto>) {
    let g = m.graph.as_mut().unwrap();
    let ident = g.node.iter_mut().find(|n| n.output == ["sr"]).unwrap();
    let orig = ident.input[0].clone();
    ident.input[0] = "rewired".into();
    let mut inputs = vec![orig];
    inputs.extend(extra_inputs.iter().map(|s| s.to_string()));
    g.node.push(pb::NodeProto {
        name: "rewire".into(),
        op_type: op.into(),
        input: inputs,
        output: vec!["rewired".into()],
        attribute: if op == "Concat" {
            vec![savl_contract::onnx_proto::attr_i("axis", 1)]
        } else {
            vec![]
        },
        ..Default::default()
    });
    g.initializer.extend(inits);
}

#[test]
fn a_model_without_three_output_channels_is_refused_at_load() {
    let f = Fixture::with_picture("p.png", 8, 8);
    let six = model_with(|m| {
        let g = m.graph.as_mut().unwrap();
        let orig = g.node.iter().find(|n| n.output == ["sr"]).unwrap().input[0].clone();
        rewire_sr(m, "Concat", &[orig.as_str()], vec![]);
    });
    std::fs::write(f.path("six.onnx"), six).unwrap();
    let err = exits(
        &f.savl_bare(&["upscale", "p.png", "--model", "six.onnx"]),
        2,
    );
    assert_mentions(&err, &["six.onnx", "[1,3,"]);
}

#[test]
fn a_model_that_outputs_nan_fails_instead_of_writing_black() {
    let f = Fixture::with_picture("p.png", 8, 8);
    let nan = model_with(|m| {
        let t = savl_contract::onnx_proto::tensor_f32("nan", &[], &[f32::NAN]);
        rewire_sr(m, "Mul", &["nan"], vec![t]);
    });
    std::fs::write(f.path("nan.onnx"), nan).unwrap();
    let err = exits(
        &f.savl_bare(&["upscale", "p.png", "--model", "nan.onnx", "-j", "1"]),
        1,
    );
    assert_mentions(&err, &["p.png", "NaN"]);
    assert!(!f.path("p_x4.png").exists());
}

#[test]
fn a_precision_taken_from_a_sibling_file_is_announced() {
    let f = Fixture::with_picture("p.png", 8, 8);
    let int8_labelled = model_with(|m| set_meta(m, keys::PRECISION, "int8"));
    std::fs::write(f.path("m.int8.onnx"), int8_labelled).unwrap();
    std::fs::copy(f.path("tiny.onnx"), f.path("m.onnx")).unwrap();
    let err = exits(
        &f.savl_bare(&[
            "upscale",
            "p.png",
            "-m",
            "m.int8.onnx",
            "-p",
            "f32",
            "-j",
            "1",
        ]),
        0,
    );
    assert_mentions(&err, &["m.int8.onnx", "using m.onnx"]);
}

#[test]
fn a_batch_collision_names_the_input_that_was_skipped() {
    let f = Fixture::with_picture("a.png", 8, 8);
    f.picture("a.jpg", 8, 8);
    let err = f.fails(&["upscale", "a.jpg", "a.png"], 1);
    assert_mentions(&err, &["a.png: skipped", "already written by a.jpg"]);
}

#[test]
fn dangling_links_and_fifos_in_a_folder_are_listed() {
    let f = Fixture::new();
    std::fs::create_dir(f.path("in")).unwrap();
    f.picture("in/good.png", 8, 8);
    std::os::unix::fs::symlink("nowhere.png", f.path("in/dangling.png")).unwrap();
    mkfifo(&f.path("in/pipe.png"));
    let err = f.fails(&["upscale", "in", "--out-dir", "out"], 1);
    assert!(err.contains("2 of 3 inputs failed"), "{err}");
    assert_mentions(&err, &["dangling.png", "dangling symbolic link"]);
    assert_mentions(&err, &["pipe.png", "not a regular file"]);
    assert!(f.path("out/good_x4.png").is_file());
}

#[test]
fn an_animated_png_is_announced() {
    let f = Fixture::new();
    let path = f.path("anim.png");
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut enc = png::Encoder::new(file, 8, 8);
        enc.set_color(png::ColorType::Rgb);
        enc.set_animated(3, 0).unwrap();
        let mut w = enc.write_header().unwrap();
        for i in 0..3u8 {
            w.write_image_data(&[i * 80; 8 * 8 * 3]).unwrap();
        }
        w.finish().unwrap();
    }
    let err = f.fails(&["upscale", "anim.png"], 0);
    assert_mentions(&err, &["anim.png", "animated"]);
}

#[test]
fn a_negative_limit_gets_the_real_message() {
    let f = Fixture::with_picture("p.png", 8, 8);
    let err = f.fails(&["upscale", "p.png", "--limit-mp", "-5"], 2);
    assert!(err.contains("positive number of megapixels"), "{err}");
}

/// Found by fuzzing: a JPEG on which the decoder (zune-jpeg) panics. The file fails with a
/// message naming it; the batch goes on.
#[test]
fn a_decoder_panic_fails_only_that_file() {
    let f = Fixture::new();
    let seed = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("fuzz/corpus/decode_image/zune_idct_panic_0.jpg");
    std::fs::copy(seed, f.path("bad.jpg")).unwrap();
    f.picture("good.png", 8, 8);
    let err = f.fails(&["upscale", "bad.jpg", "good.png"], 1);
    assert_mentions(&err, &["bad.jpg", "decoder"]);
    assert!(f.path("good_x4.png").is_file());
}

/// A model whose `Resize` declares an absurd factor is refused with an error naming the node,
/// before the graph is simplified (which plans each axis at the output length).
#[test]
fn a_model_with_an_absurd_resize_factor_is_refused() {
    use prost::Message;
    let bytes = TestModel::default().onnx_bytes();
    for factor in [2.0f32.powi(31), f32::INFINITY, f32::NAN, 65.0] {
        let mut model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.as_mut().unwrap();
        let resize = graph.node.iter().find(|n| n.op_type == "Resize").unwrap();
        let scales = resize.input[2].clone();
        let init = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == scales)
            .unwrap();
        init.raw_data = [1.0f32, 1.0, factor, factor]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let err = savl::Upscaler::builder()
            .model_bytes(model.encode_to_vec())
            .threads(1)
            .build()
            .err()
            .unwrap_or_else(|| panic!("factor {factor} accepted"));
        let msg = err.to_string();
        // A NaN scale already fails typing; the others reach the factor check.
        let named = factor.is_nan() || (msg.contains("Resize") && msg.contains("scale"));
        assert!(msg.starts_with("model") && named, "factor {factor}: {msg}");
    }
}
