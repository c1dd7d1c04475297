//! Fuzz targets of savl: each takes arbitrary bytes and must return without panicking, aborting
//! or allocating without bound. Driven by the coverage-guided AFL binaries in `src/bin/`
//! (`scripts/fuzz.sh` for long runs) and by the smoke run in `tests/fuzz_smoke.rs` (seed corpora
//! in `corpus/<target>/`, plus mutations, within `cargo test`).
//!
//! ```
//! for (name, target) in savl_fuzz::TARGETS {
//!     target(b"");
//!     assert!(!name.is_empty());
//! }
//! ```
#![deny(missing_docs)]

/// The C ABI, compiled into this crate from its source: the `savl-capi` package builds only
/// the static and shared libraries, which Rust code cannot link.
#[path = "../../capi/src/abi.rs"]
#[allow(missing_docs)]
mod capi;

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use savl::{Upscaler, MIN_TILE};
use savl_cli::io::{self, DecodeLimits, RawFrameReader};

/// A fuzz target: any bytes in, returns normally.
pub type Target = fn(&[u8]);

/// The fuzz targets by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: [(&str, Target); 4] = [
    ("decode_image", decode_image),
    ("load_model", load_model),
    ("raw_frames", raw_frames),
    ("capi_args", capi_args),
];

/// Image decoding under limits (1 MP, 64 MB): any bytes, any format.
pub fn decode_image(data: &[u8]) {
    let limits = DecodeLimits::megapixels(1.0).with_max_alloc(64 << 20);
    if let Ok(d) = io::decode_reader_with_info(Cursor::new(data), Path::new("fuzz"), &limits) {
        assert!(u64::from(d.image.width()) * u64::from(d.image.height()) <= 1_000_000);
    }
}

/// Model loading: ONNX bytes → `Upscaler` (1 thread, smallest tile, inputs up to 64 pixels).
pub fn load_model(data: &[u8]) {
    let built = Upscaler::builder()
        .model_bytes(data.to_vec())
        .threads(1)
        .tile(MIN_TILE)
        .max_input_pixels(64)
        .build();
    if let Ok(up) = built {
        assert!((1..=16).contains(&up.scale()));
    }
}

/// The `--raw` frame reader: the first two bytes are the frame's width and height (1–16), the
/// rest is the stream.
pub fn raw_frames(data: &[u8]) {
    let [w, h, rest @ ..] = data else {
        return;
    };
    let (w, h) = (u32::from(w % 16) + 1, u32::from(h % 16) + 1);
    let Ok(mut reader) = RawFrameReader::new(rest, w, h) else {
        return;
    };
    let mut buf = Vec::new();
    let mut whole = 0usize;
    loop {
        match reader.read_frame(&mut buf) {
            Ok(true) => {
                assert_eq!(buf.len(), reader.frame_len());
                whole += 1;
            }
            Ok(false) => {
                assert_eq!(rest.len(), whole * reader.frame_len());
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
                assert_eq!(rest.len() / reader.frame_len(), whole);
                break;
            }
        }
    }
}

/// The tiny synthetic model's upscaler, built once for [`capi_args`].
fn tiny_handle() -> &'static crate::capi::SavlUpscaler {
    static HANDLE: OnceLock<usize> = OnceLock::new();
    let addr = *HANDLE.get_or_init(|| {
        let model = savl_contract::testmodel::TestModel::default().onnx_bytes();
        let dir = std::env::temp_dir().join(format!("savl-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("tiny.onnx");
        std::fs::write(&path, model).expect("write the tiny model");
        let path = std::ffi::CString::new(path.to_string_lossy().as_bytes()).expect("path");
        let mut opts = crate::capi::savl_options_default();
        opts.model_path = path.as_ptr();
        opts.threads = 1;
        opts.tile = 32;
        let mut up = std::ptr::null_mut();
        // SAFETY: valid options (the path outlives the call) and out-pointer.
        let st = unsafe { crate::capi::savl_upscaler_new(&opts, &mut up) };
        assert_eq!(st, crate::capi::SavlStatus::Ok);
        up as usize
    });
    // SAFETY: the handle is never freed; it lives for the process.
    unsafe { &*(addr as *const crate::capi::SavlUpscaler) }
}

/// The C ABI's argument checks: sizes, strides and buffer lengths from the bytes (buffers of at
/// most 64 KiB are really allocated with the lengths passed), on a tiny model. The call may fail
/// with any status but `SAVL_STATUS_PANIC`, and must never touch memory outside the buffers.
pub fn capi_args(data: &[u8]) {
    use crate::capi::{savl_status_str, savl_upscaler_output_size, savl_upscaler_run, SavlStatus};
    let mut words = data
        .chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .chain(std::iter::repeat(0));
    let mut next = || words.next().unwrap_or(0);
    let width = (next() % 24) as u32;
    let height = (next() % 24) as u32;
    let pick = |v: u64, natural: usize| -> usize {
        match v % 4 {
            0 => natural,
            1 => natural.saturating_add((v >> 8) as usize % 64),
            2 => (v >> 2) as usize,
            _ => natural.saturating_sub((v >> 8) as usize % 64),
        }
    };
    let src_stride = pick(next(), width as usize * 3);
    let dst_stride = pick(next(), width as usize * 12);
    let src_len = pick(next(), src_stride.saturating_mul(height as usize)).min(1 << 16);
    let dst_len = pick(next(), dst_stride.saturating_mul(height as usize * 4)).min(1 << 16);
    let overlap = next() % 8 == 0;
    let status_probe = next() as i32;

    let up = tiny_handle();
    let (mut ow, mut oh) = (0u32, 0u32);
    // SAFETY: a live handle and valid out-pointers.
    let st = unsafe { savl_upscaler_output_size(up, width, height, &mut ow, &mut oh) };
    assert_ne!(st, SavlStatus::Panic);
    // SAFETY: any integer gives a static NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(savl_status_str(status_probe)) };
    assert!(!s.to_bytes().is_empty());

    let src: Vec<u8> = (0..src_len).map(|i| (i * 31) as u8).collect();
    let st = if overlap {
        let mut both = vec![0u8; src_len.max(dst_len) + 16];
        let p = both.as_mut_ptr();
        // SAFETY: both views lie within `both`, with the lengths passed.
        unsafe {
            savl_upscaler_run(
                up,
                p,
                src_len,
                width,
                height,
                src_stride,
                p.add(16.min(both.len())),
                dst_stride,
                dst_len.min(both.len().saturating_sub(16)),
            )
        }
    } else {
        let mut dst = vec![0u8; dst_len];
        // SAFETY: each buffer is valid for the length passed.
        unsafe {
            savl_upscaler_run(
                up,
                src.as_ptr(),
                src_len,
                width,
                height,
                src_stride,
                dst.as_mut_ptr(),
                dst_stride,
                dst_len,
            )
        }
    };
    assert_ne!(st, SavlStatus::Panic);
    capi_image_args(&mut next, up);
}

/// [`capi_args`] for `savl_upscaler_run_image`: any format, matrix and range pair, any plane
/// strides and lengths (planes really allocated with the lengths passed, at most 64 KiB).
fn capi_image_args(next: &mut dyn FnMut() -> u64, up: &crate::capi::SavlUpscaler) {
    use crate::capi::{
        savl_image_default, savl_upscaler_run_image, SavlMatrix, SavlPixelFormat, SavlRange,
        SavlStatus,
    };
    const FORMATS: [(SavlPixelFormat, [usize; 3]); 9] = [
        (SavlPixelFormat::Rgb8, [3, 0, 0]),
        (SavlPixelFormat::Bgr8, [3, 0, 0]),
        (SavlPixelFormat::Rgba8, [4, 0, 0]),
        (SavlPixelFormat::Bgra8, [4, 0, 0]),
        (SavlPixelFormat::Gray8, [1, 0, 0]),
        (SavlPixelFormat::Nv12, [1, 1, 0]),
        (SavlPixelFormat::Nv21, [1, 1, 0]),
        (SavlPixelFormat::I420, [1, 1, 1]),
        (SavlPixelFormat::Rgb16, [6, 0, 0]),
    ];
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut image = |w: u32, h: u32, next: &mut dyn FnMut() -> u64| {
        let (format, bpp) = FORMATS[(next() % 9) as usize];
        let mut img = savl_image_default();
        img.format = format;
        img.width = w;
        img.height = h;
        img.matrix = if next() % 2 == 0 {
            SavlMatrix::Bt601
        } else {
            SavlMatrix::Bt709
        };
        img.range = if next() % 2 == 0 {
            SavlRange::Limited
        } else {
            SavlRange::Full
        };
        for (i, &b) in bpp.iter().enumerate().filter(|(_, &b)| b > 0) {
            let natural = if i == 0 {
                b * w as usize
            } else {
                w.div_ceil(2) as usize * if bpp[2] == 0 { 2 } else { 1 }
            };
            let v = next();
            img.strides[i] = match v % 3 {
                0 => natural,
                1 => natural.saturating_add((v >> 8) as usize % 8),
                _ => (v >> 2) as usize,
            };
            let rows = if i == 0 {
                h as usize
            } else {
                h.div_ceil(2) as usize
            };
            let len = img.strides[i].saturating_mul(rows).min(1 << 16);
            let len = if next() % 4 == 0 {
                len.saturating_sub(1)
            } else {
                len
            };
            let mut buf = vec![7u8; len];
            img.planes[i] = if next() % 16 == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr()
            };
            img.lengths[i] = len;
            bufs.push(buf);
        }
        img
    };
    let (w, h) = ((next() % 12) as u32, (next() % 12) as u32);
    let src = image(w, h, next);
    let dst = image(w * 4, h * 4, next);
    // SAFETY: a live handle; every plane pointer is null or valid for the length passed.
    let st = unsafe { savl_upscaler_run_image(up, &src, &dst, None, std::ptr::null_mut()) };
    assert_ne!(st, SavlStatus::Panic);
}
