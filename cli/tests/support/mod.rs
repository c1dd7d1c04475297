//! What the `savl` binary's end-to-end tests share (each test file has `mod support;`): a
//! temporary folder with the tiny synthetic test model (`savl_contract::testmodel`) in it,
//! pictures in it, the binary run there on that model, and reading what it wrote.
#![allow(dead_code)] // each test file uses a part of it

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use image::DynamicImage;
use savl_contract::testmodel::TestModel;

/// The binary under test: `SAVL_TEST_BIN` if set (to run these tests against another build, such
/// as the one before a fix), else the one cargo built.
pub fn bin() -> String {
    std::env::var("SAVL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_savl").to_string())
}

/// The flags every run of the binary gets after its own: the tiny model, 32-pixel tiles, one
/// thread (so that every test runs in well under a second).
pub const MODEL_FLAGS: [&str; 6] = ["--model", "tiny.onnx", "--tile", "32", "-j", "1"];

/// A temporary folder with the tiny model in it as `tiny.onnx`.
pub struct Fixture {
    /// The folder, removed on drop.
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// With the default test model.
    pub fn new() -> Fixture {
        Fixture::with_model(TestModel::default())
    }

    /// With the model `m`.
    pub fn with_model(m: TestModel) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tiny.onnx"), m.onnx_bytes()).unwrap();
        Fixture { dir }
    }

    /// With the default test model, for a test that needs `tools` on PATH (CI installs them, see
    /// `.ci/run`); panics naming the first one missing.
    pub fn needing(tools: &[&str]) -> Fixture {
        for tool in tools {
            let found = Command::new(tool)
                .arg("-version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(found, "{tool} is not on PATH (CI installs it, see .ci/run)");
        }
        Fixture::new()
    }

    /// With the default test model and a `w × h` [`gradient`] picture `name`.
    pub fn with_picture(name: &str, w: u32, h: u32) -> Fixture {
        let f = Fixture::new();
        f.picture(name, w, h);
        f
    }

    /// `name` in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Saves `img` as `name` (format from the extension), making its parent folders.
    pub fn save(&self, name: &str, img: &DynamicImage) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(&path).unwrap();
        path
    }

    /// Writes a `w × h` [`gradient`] picture as `name`.
    pub fn picture(&self, name: &str, w: u32, h: u32) -> PathBuf {
        self.save(name, &DynamicImage::ImageRgb8(gradient(w, h)))
    }

    /// `savl ARGS… --model tiny.onnx --tile 32 -j 1` in the folder, stdin closed, stdout and
    /// stderr captured.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(self.dir.path())
            .args(args)
            .args(MODEL_FLAGS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `savl ARGS…` in the folder to the end, without [`Fixture::command`]'s model, tile
    /// and thread flags.
    pub fn savl_bare(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs [`Fixture::savl`], asserting it succeeds; the size of the picture it wrote to `out`.
    #[track_caller]
    pub fn dims_after(&self, args: &[&str], out: &str) -> (u32, u32) {
        ok(&self.savl(args));
        dims(&self.path(out))
    }

    /// For each `(args, out, size)`: `savl upscale INPUT ARGS…` succeeds and writes a picture
    /// of `size` to `out`.
    #[track_caller]
    pub fn assert_upscaled_sizes(&self, input: &str, cases: &[(&[&str], &str, (u32, u32))]) {
        for &(args, out, size) in cases {
            let args = [&["upscale", input][..], args].concat();
            assert_eq!(self.dims_after(&args, out), size, "{args:?}");
        }
    }

    /// Runs [`Fixture::command`] to the end.
    pub fn savl(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs [`Fixture::command`], asserting it exits with `code`; its stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        exits(&self.savl(args), code)
    }

    /// Runs [`Fixture::command`] with `input` on stdin.
    pub fn savl_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        with_stdin(self.command(args), input)
    }

    /// The hidden files (names starting with a dot) in the folder.
    pub fn hidden_files(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    /// Runs `ffmpeg -nostdin -hide_banner -loglevel error ARGS` in the folder; panics with its
    /// message if it fails; its stdout.
    pub fn ffmpeg(&self, args: &[&str]) -> Vec<u8> {
        self.ffmpeg_with_stdin(args, b"")
    }

    /// [`Fixture::ffmpeg`] with `input` on stdin (`-nostdin` does not stop `-i -` reading it).
    pub fn ffmpeg_with_stdin(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut cmd = Command::new("ffmpeg");
        cmd.current_dir(self.dir.path())
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = with_stdin(cmd, input);
        assert!(out.status.success(), "ffmpeg {args:?}: {}", stderr(&out));
        out.stdout
    }
}

impl Fixture {
    /// Packed rgb24 frames of `size` (`WxH`) through ffmpeg into `pix_fmt`, as `format`
    /// (`rawvideo`, `yuv4mpegpipe`).
    pub fn convert_rgb24(&self, rgb: &[u8], size: &str, pix_fmt: &str, format: &str) -> Vec<u8> {
        let input = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-i", "-"];
        let output = ["-pix_fmt", pix_fmt, "-f", format, "-"];
        self.ffmpeg_with_stdin(&[&input[..], &output[..]].concat(), rgb)
    }
}

/// Runs `cmd` to the end with `input` written to its stdin from another thread (so that a child
/// filling its stdout before reading all its input cannot deadlock).
pub fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let bytes = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The test picture: a smooth gradient with a different slope in each channel.
pub fn gradient(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 9) as u8, (y * 13) as u8, ((x + y) * 5) as u8])
    })
}

/// A run's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that a run succeeded, with its stderr otherwise.
#[track_caller]
pub fn ok(o: &Output) {
    assert!(o.status.success(), "{:?}\n{}", o.status, stderr(o));
}

/// The size of a picture file.
pub fn dims(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A picture file, decoded.
pub fn open(path: &Path) -> DynamicImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that a run exited with `code` (with its stderr in the message otherwise); its stderr.
#[track_caller]
pub fn exits(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    err
}

/// Asserts that `msg` contains every one of `needles`, showing `msg` when it does not.
#[track_caller]
pub fn assert_mentions(msg: &str, needles: &[&str]) {
    let missing: Vec<&str> = needles
        .iter()
        .copied()
        .filter(|n| !msg.contains(n))
        .collect();
    assert!(missing.is_empty(), "{missing:?} missing from: {msg}");
}
