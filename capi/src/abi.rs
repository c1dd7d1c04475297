//! The C functions: an opaque upscaler handle over [`savl::Upscaler`].
//!
//! The header `include/savl.h` is generated from this file by cbindgen (`cbindgen.toml`) and
//! committed; `tests/capi_header.rs` fails when it is stale.
//!
//! Contract, for every function:
//! * a [`SavlStatus`] comes back; on anything but `SAVL_STATUS_OK`, [`savl_last_error`] holds a
//!   message for the calling thread;
//! * null pointers, zero sizes, strides shorter than a row, sizes that overflow, overlapping
//!   buffers and buffers shorter than their stated length needs are checked and reported, never
//!   dereferenced (a length that is larger than the real buffer cannot be detected: it is the
//!   caller's promise);
//! * no panic crosses the boundary: it is caught and reported as `SAVL_STATUS_PANIC`;
//! * threads: a handle may be used by several threads at once (`savl_upscaler_run`,
//!   `savl_upscaler_run_image`, `savl_upscaler_output_size`); only [`savl_upscaler_free`] needs
//!   it to be idle. `src/tests.rs` and `tests/c/capi_test.c` run one handle from 4 threads at
//!   once.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use savl::{Error, Precision, Upscaler};

/// The version of the C ABI this header describes; [`savl_abi_version`] gives the library's.
/// Raised whenever a function, type or status is added or changed (1: `savl_upscaler_run`; 2:
/// `SavlImage`, `savl_upscaler_run_image`, progress and `SAVL_STATUS_CANCELLED`, versions).
/// A program built against this header should check `savl_abi_version() >= SAVL_ABI_VERSION`.
pub const SAVL_ABI_VERSION: u32 = 2;

/// Result of every savl C function.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavlStatus {
    /// Success.
    Ok = 0,
    /// A null pointer, a zero size, a stride shorter than a row, a size that overflows, a buffer
    /// too small, or overlapping buffers.
    InvalidArgument = 1,
    /// The model file is missing, corrupt, or not a savl model.
    Model = 2,
    /// The request is valid but unsupported (for example a precision the model lacks).
    Unsupported = 3,
    /// A resource limit would be exceeded.
    Limits = 4,
    /// An I/O error.
    Io = 5,
    /// Inference failed inside the engine.
    Runtime = 6,
    /// A panic inside the library was caught at the boundary (a bug: please report it).
    Panic = 7,
    /// The progress callback returned non-zero: the work stopped (see
    /// [`savl_upscaler_run_image`] for the state of the output buffer).
    Cancelled = 8,
}

/// Options for [`savl_upscaler_new`]; start from [`savl_options_default`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SavlOptions {
    /// Path of an ONNX model file (UTF-8, NUL-terminated), or NULL for the embedded default.
    pub model_path: *const c_char,
    /// `"auto"`, `"f32"`, `"f16"` or `"int8"`; NULL means `"auto"`.
    pub precision: *const c_char,
    /// Tile size in input pixels; 0 means the library default.
    pub tile: u32,
    /// Worker threads; 0 means the library default.
    pub threads: u32,
}

/// An upscaler: model, plans and worker state. Create with [`savl_upscaler_new`], release with
/// [`savl_upscaler_free`]. Thread-safe: several threads may call [`savl_upscaler_run`],
/// [`savl_upscaler_run_image`] and [`savl_upscaler_output_size`] on one handle at the same time
/// (the calls share the handle's cached plans; each runs on its own buffers, and each call's
/// progress callback runs on that call's thread only; the results equal those of the same
/// calls one after the other). [`savl_upscaler_free`] must not race with any other call on the handle. The buffers of one
/// call must not be written by the caller while the call runs.
pub struct SavlUpscaler {
    inner: Upscaler,
}

const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Upscaler>();
};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn status_of(e: &Error) -> SavlStatus {
    match e {
        Error::Model { .. } => SavlStatus::Model,
        Error::InvalidInput(_) | Error::InvalidConfig { .. } => SavlStatus::InvalidArgument,
        Error::Limits { .. } | Error::OutOfMemory { .. } => SavlStatus::Limits,
        Error::Unsupported(_) => SavlStatus::Unsupported,
        Error::Io { .. } => SavlStatus::Io,
        _ => SavlStatus::Runtime,
    }
}

/// Runs `f`, turning errors and panics into a status plus the thread's last-error message.
fn guard(f: impl FnOnce() -> Result<(), (SavlStatus, String)>) -> SavlStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_last_error("");
            SavlStatus::Ok
        }
        Ok(Err((status, msg))) => {
            set_last_error(&msg);
            status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "internal error (panic caught at the C boundary): {what}"
            ));
            SavlStatus::Panic
        }
    }
}

fn invalid(msg: impl Into<String>) -> (SavlStatus, String) {
    (SavlStatus::InvalidArgument, msg.into())
}

fn from_error(e: Error) -> (SavlStatus, String) {
    (status_of(&e), e.to_string())
}

/// # Safety
/// `p` is null or a valid NUL-terminated string.
unsafe fn opt_str<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, (SavlStatus, String)> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| invalid(format!("{what} is not valid UTF-8")))
}

/// Default options: embedded model, automatic precision, default tile and threads.
#[no_mangle]
pub extern "C" fn savl_options_default() -> SavlOptions {
    SavlOptions {
        model_path: std::ptr::null(),
        precision: std::ptr::null(),
        tile: 0,
        threads: 0,
    }
}

/// Creates an upscaler. On success `*out` holds a handle to release with [`savl_upscaler_free`];
/// on failure `*out` is set to NULL. A model file that is missing, unreadable, corrupt or not a
/// savl model gives `SAVL_STATUS_MODEL`.
///
/// # Safety
/// `options` is null (defaults) or points to a valid [`SavlOptions`] whose strings are null or
/// NUL-terminated; `out` is a valid pointer to a handle pointer.
#[no_mangle]
pub unsafe extern "C" fn savl_upscaler_new(
    options: *const SavlOptions,
    out: *mut *mut SavlUpscaler,
) -> SavlStatus {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: checked non-null above; the caller owns the slot.
        unsafe { *out = std::ptr::null_mut() };
        let opts = if options.is_null() {
            savl_options_default()
        } else {
            // SAFETY: non-null, so valid and aligned per the contract.
            unsafe { *options }
        };
        let mut b = Upscaler::builder();
        // SAFETY: strings are null or NUL-terminated per the contract.
        if let Some(path) = unsafe { opt_str(opts.model_path, "model_path")? } {
            b = b.model_path(path);
        }
        // SAFETY: as above.
        if let Some(p) = unsafe { opt_str(opts.precision, "precision")? } {
            let p: Precision = p.parse().map_err(|e| invalid(format!("precision: {e}")))?;
            b = b.precision(p);
        }
        if opts.tile != 0 {
            b = b.tile(opts.tile as usize);
        }
        if opts.threads != 0 {
            b = b.threads(opts.threads as usize);
        }
        let inner = b.build().map_err(|e| match e {
            Error::Io { .. } => (SavlStatus::Model, e.to_string()),
            e => from_error(e),
        })?;
        // SAFETY: checked non-null above.
        unsafe { *out = Box::into_raw(Box::new(SavlUpscaler { inner })) };
        Ok(())
    })
}

/// Output size for an input of `width × height`: `SAVL_STATUS_INVALID_ARGUMENT` for an empty
/// size (as [`savl_upscaler_run`] would give), `SAVL_STATUS_LIMITS` if it does not fit 32 bits.
///
/// # Safety
/// `upscaler` is a live handle; `out_width` and `out_height` are valid pointers.
#[no_mangle]
pub unsafe extern "C" fn savl_upscaler_output_size(
    upscaler: *const SavlUpscaler,
    width: u32,
    height: u32,
    out_width: *mut u32,
    out_height: *mut u32,
) -> SavlStatus {
    guard(|| {
        if upscaler.is_null() || out_width.is_null() || out_height.is_null() {
            return Err(invalid(
                "upscaler, out_width and out_height must not be NULL",
            ));
        }
        if width == 0 || height == 0 {
            return Err(invalid(format!("image size {width}x{height} is empty")));
        }
        // SAFETY: non-null, a live handle per the contract.
        let s = unsafe { &(*upscaler).inner }.scale() as u64;
        let (w, h) = (width as u64 * s, height as u64 * s);
        if w > u32::MAX as u64 || h > u32::MAX as u64 {
            return Err((
                SavlStatus::Limits,
                format!("output {w}x{h} does not fit in 32 bits"),
            ));
        }
        // SAFETY: non-null per the check above.
        unsafe {
            *out_width = w as u32;
            *out_height = h as u32;
        }
        Ok(())
    })
}

/// Upscales an RGB8 image (`width × height`, rows `src_stride` bytes apart, in `src`, a buffer
/// of `src_len` bytes) into `dst`, a caller-provided buffer of `dst_len` bytes whose rows are
/// `dst_stride` bytes apart. The output is `scale·width × scale·height` (see
/// [`savl_upscaler_output_size`]); padding bytes between rows are left untouched.
///
/// `SAVL_STATUS_INVALID_ARGUMENT` if `src_len < src_stride·(height−1) + 3·width`, if `dst_len` is
/// short in the same way, if a stride is shorter than its row, if a size overflows, or if the
/// two buffers overlap.
///
/// # Safety
/// `upscaler` is a live handle; `src` points to `src_len` readable bytes; `dst` points to
/// `dst_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn savl_upscaler_run(
    upscaler: *const SavlUpscaler,
    src: *const u8,
    src_len: usize,
    width: u32,
    height: u32,
    src_stride: usize,
    dst: *mut u8,
    dst_stride: usize,
    dst_len: usize,
) -> SavlStatus {
    guard(|| {
        if upscaler.is_null() || src.is_null() || dst.is_null() {
            return Err(invalid("upscaler, src and dst must not be NULL"));
        }
        if width == 0 || height == 0 {
            return Err(invalid(format!("image size {width}x{height} is empty")));
        }
        let (w, h) = (width as usize, height as usize);
        let row = w.checked_mul(3).ok_or_else(|| invalid("width too large"))?;
        if src_stride < row {
            return Err(invalid(format!(
                "src_stride {src_stride} < 3*width = {row}"
            )));
        }
        let src_need = src_stride
            .checked_mul(h - 1)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| invalid(format!("src_stride {src_stride} × height overflows")))?;
        if src_len < src_need {
            return Err(invalid(format!(
                "src_len {src_len} < {src_need} bytes needed (src_stride·(height−1) + 3·width)"
            )));
        }
        // SAFETY: non-null, a live handle per the contract.
        let up = unsafe { &(*upscaler).inner };
        let s = up.scale();
        let out_row = row
            .checked_mul(s)
            .ok_or_else(|| invalid("output row size overflows"))?;
        if dst_stride < out_row {
            return Err(invalid(format!(
                "dst_stride {dst_stride} < 3*width*scale = {out_row}"
            )));
        }
        let need = dst_stride
            .checked_mul(h * s - 1)
            .and_then(|n| n.checked_add(out_row))
            .ok_or_else(|| invalid("output size overflows"))?;
        if dst_len < need {
            return Err(invalid(format!("dst_len {dst_len} < {need} bytes needed")));
        }
        let (s0, s1) = (src as usize, src as usize + src_need);
        let (d0, d1) = (dst as usize, (dst as usize).saturating_add(need));
        if s0 < d1 && d0 < s1 {
            return Err(invalid("src and dst overlap"));
        }
        // SAFETY: the caller guarantees `src_len` ≥ `src_need` readable bytes.
        let src = unsafe { std::slice::from_raw_parts(src, src_need) };
        let mut packed = Vec::new();
        packed.try_reserve_exact(row * h).map_err(|_| {
            (
                SavlStatus::Limits,
                format!("cannot allocate {} bytes for the input", row * h),
            )
        })?;
        for y in 0..h {
            packed.extend_from_slice(&src[y * src_stride..y * src_stride + row]);
        }
        let img = image::RgbImage::from_raw(width, height, packed)
            .ok_or_else(|| invalid("input buffer size mismatch"))?;
        // SAFETY: the caller guarantees `dst_len` ≥ `need` writable bytes; overlap with `src`
        // was refused above.
        let dst = unsafe { std::slice::from_raw_parts_mut(dst, need) };
        up.upscale_rows(&img, |first, rows| {
            for (i, r) in rows.chunks_exact(out_row).enumerate() {
                let y = first as usize + i;
                dst[y * dst_stride..y * dst_stride + out_row].copy_from_slice(r);
            }
            Ok(())
        })
        .map_err(from_error)
    })
}

/// Releases a handle and sets `*upscaler` to NULL. NULL or a NULL handle is a no-op.
///
/// # Safety
/// `upscaler` is null or points to a handle from [`savl_upscaler_new`] not yet freed.
#[no_mangle]
pub unsafe extern "C" fn savl_upscaler_free(upscaler: *mut *mut SavlUpscaler) {
    let _ = guard(|| {
        if !upscaler.is_null() {
            // SAFETY: per the contract the slot holds null or a live handle from Box::into_raw.
            unsafe {
                let h = *upscaler;
                if !h.is_null() {
                    drop(Box::from_raw(h));
                }
                *upscaler = std::ptr::null_mut();
            }
        }
        Ok(())
    });
}

/// The calling thread's message for the last failed call ("" after a success). The pointer
/// stays valid until the next savl call on this thread.
#[no_mangle]
pub extern "C" fn savl_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A static description of a status code; any value outside `SavlStatus` gives
/// `"unknown status"` (never NULL).
#[no_mangle]
pub extern "C" fn savl_status_str(status: c_int) -> *const c_char {
    let s: &'static CStr = match status {
        0 => c"ok",
        1 => c"invalid argument",
        2 => c"model error",
        3 => c"unsupported",
        4 => c"limit exceeded",
        5 => c"i/o error",
        6 => c"inference failed",
        7 => c"internal panic",
        8 => c"cancelled",
        _ => c"unknown status",
    };
    s.as_ptr()
}

/// For binding tests: panics inside the library's guard and returns what the caller would see
/// for a panic in the runtime (`SAVL_STATUS_PANIC`, with a message in [`savl_last_error`]).
#[no_mangle]
pub extern "C" fn savl_debug_trigger_panic() -> SavlStatus {
    guard(|| panic!("savl_debug_trigger_panic"))
}

/// The library's version (the `savl` crate version, e.g. `"0.1.0"`): a static NUL-terminated
/// string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn savl_version() -> *const c_char {
    const V: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    V.as_ptr()
}

/// The C ABI version of the library, to compare with the header's `SAVL_ABI_VERSION`.
#[no_mangle]
pub extern "C" fn savl_abi_version() -> u32 {
    SAVL_ABI_VERSION
}

/// Pixel layout of a [`SavlImage`]. Plane 0 is the only plane of the packed formats.
///
/// | format | planes | bytes in a row of plane 0, 1, 2 | rows of plane 0, 1, 2 |
/// |---|---|---|---|
/// | `RGB8`, `BGR8` | 1 | `3·w` | `h` |
/// | `RGBA8`, `BGRA8` | 1 | `4·w` (straight, not premultiplied, alpha) | `h` |
/// | `GRAY8` | 1 | `w` | `h` |
/// | `RGB16` | 1 | `6·w` (three native-endian `uint16_t`, 0..=65535) | `h` |
/// | `NV12`, `NV21` | 2 | `w`; `2·⌈w/2⌉` (U, V pairs; V, U for NV21) | `h`; `⌈h/2⌉` |
/// | `I420` | 3 | `w`; `⌈w/2⌉`; `⌈w/2⌉` (Y, U, V) | `h`; `⌈h/2⌉`; `⌈h/2⌉` |
///
/// The YUV formats are 8-bit Y′CbCr 4:2:0 with centre-sited chroma, in the matrix and range of
/// the image's `matrix` and `range` fields (see [`SavlMatrix`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavlPixelFormat {
    /// Packed R, G, B bytes.
    Rgb8 = 0,
    /// Packed B, G, R bytes.
    Bgr8 = 1,
    /// Packed R, G, B, A bytes.
    Rgba8 = 2,
    /// Packed B, G, R, A bytes (the usual desktop camera and screen-capture layout).
    Bgra8 = 3,
    /// One grey byte a pixel.
    Gray8 = 4,
    /// Y plane, then one plane of interleaved U, V (Cb, Cr) bytes.
    Nv12 = 5,
    /// Y plane, then one plane of interleaved V, U (Cr, Cb) bytes (Android camera default).
    Nv21 = 6,
    /// Y, U and V planes.
    I420 = 7,
    /// Packed R, G, B native-endian 16-bit samples.
    Rgb16 = 8,
}

/// The Y′CbCr matrix of a YUV [`SavlImage`] (ignored for the other formats).
///
/// With R, G, B in 0..=255: `Y = Kr·R + (1−Kr−Kb)·G + Kb·B`, `Cb = (B − Y) / (2·(1 − Kb))`,
/// `Cr = (R − Y) / (2·(1 − Kr))`; BT.601: `Kr = 0.299, Kb = 0.114`; BT.709: `Kr = 0.2126,
/// Kb = 0.0722`. Stored values are rounded to the nearest integer and clamped to 0..=255, RGB
/// from Y′CbCr likewise (the runtime's `savl::yuv` module). Writing 4:2:0, each chroma sample is
/// the mean of its 2×2 block's exact values; reading, each chroma sample serves its whole block.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavlMatrix {
    /// ITU-R BT.601 (the default: a zeroed field).
    Bt601 = 0,
    /// ITU-R BT.709.
    Bt709 = 1,
}

/// The sample range of a YUV [`SavlImage`] (ignored for the other formats).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavlRange {
    /// Limited ("tv"): stored `Y' = 16 + 219·Y/255`, `C' = 128 + 224·C/255` (the default: a
    /// zeroed field).
    Limited = 0,
    /// Full ("pc", JPEG): stored `Y' = Y`, `C' = 128 + C`.
    Full = 1,
}

/// An image in caller memory: format, size, and up to three planes, each a pointer, a stride
/// (bytes from one row to the next, at least the row's bytes) and a length (bytes readable or
/// writable from the pointer). Planes the format does not use are ignored. Start from
/// [`savl_image_default`] (or a zeroed struct: RGB8, BT.601, limited range) and fill in what
/// the format needs (see [`SavlPixelFormat`]).
///
/// Checked by [`savl_upscaler_run_image`] before anything is read or written: the format, matrix
/// and range values are known ones; the size is not empty; every used plane pointer is non-NULL;
/// every stride is at least its row; `stride·(rows−1) + row` does not overflow and is at most
/// the plane's length; no plane of the output overlaps another plane of the output or any plane
/// of the input. A failed check is `SAVL_STATUS_INVALID_ARGUMENT` with a message naming the
/// image (`src`/`dst`), the plane (index and name, e.g. `plane 1 (UV)`) and the reason.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SavlImage {
    /// The pixel layout.
    pub format: SavlPixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Y′CbCr matrix of the YUV formats.
    pub matrix: SavlMatrix,
    /// Y′CbCr range of the YUV formats.
    pub range: SavlRange,
    /// Plane pointers (written through for the output; only read for the input).
    pub planes: [*mut u8; 3],
    /// Bytes from the start of one row of each plane to the next.
    pub strides: [usize; 3],
    /// Bytes available at each plane pointer.
    pub lengths: [usize; 3],
}

/// Progress of [`savl_upscaler_run_image`]: `done` of `total` output rows finished (see there).
/// Return 0 to go on, non-zero to cancel.
pub type SavlProgressFn =
    Option<unsafe extern "C" fn(user: *mut c_void, done: u32, total: u32) -> c_int>;

/// A [`SavlImage`] with no planes: RGB8, 0×0, BT.601, limited range.
#[no_mangle]
pub extern "C" fn savl_image_default() -> SavlImage {
    SavlImage {
        format: SavlPixelFormat::Rgb8,
        width: 0,
        height: 0,
        matrix: SavlMatrix::Bt601,
        range: SavlRange::Limited,
        planes: [std::ptr::null_mut(); 3],
        strides: [0; 3],
        lengths: [0; 3],
    }
}

/// The enum fields of a [`SavlImage`] read as integers, so that an unknown value from C is an
/// error rather than an invalid Rust enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Rgb8,
    Bgr8,
    Rgba8,
    Bgra8,
    Gray8,
    Nv12,
    Nv21,
    I420,
    Rgb16,
}

/// A checked image: format, size, colour and each used plane's (pointer, stride, bytes needed).
struct Checked {
    fmt: Fmt,
    w: usize,
    h: usize,
    colour: savl::yuv::Colour,
    planes: Vec<(*mut u8, usize, usize)>,
}

/// # Safety
/// `img` is a valid pointer to a [`SavlImage`] (its enum fields may hold any integer).
unsafe fn check_image(
    img: *const SavlImage,
    which: &str,
    size: Option<(usize, usize)>,
) -> Result<Checked, (SavlStatus, String)> {
    // SAFETY: the enum fields are C ints (`repr(C)` enums); read as u32 so any value is valid.
    let (format, matrix, range) = unsafe {
        (
            std::ptr::addr_of!((*img).format).cast::<u32>().read(),
            std::ptr::addr_of!((*img).matrix).cast::<u32>().read(),
            std::ptr::addr_of!((*img).range).cast::<u32>().read(),
        )
    };
    // SAFETY: plain data fields of a valid struct.
    let (width, height, ptrs, strides, lengths) = unsafe {
        (
            (*img).width,
            (*img).height,
            (*img).planes,
            (*img).strides,
            (*img).lengths,
        )
    };
    let fmt = match format {
        0 => Fmt::Rgb8,
        1 => Fmt::Bgr8,
        2 => Fmt::Rgba8,
        3 => Fmt::Bgra8,
        4 => Fmt::Gray8,
        5 => Fmt::Nv12,
        6 => Fmt::Nv21,
        7 => Fmt::I420,
        8 => Fmt::Rgb16,
        v => return Err(invalid(format!("{which}: unknown pixel format {v}"))),
    };
    let matrix = match matrix {
        0 => savl::yuv::Matrix::Bt601,
        1 => savl::yuv::Matrix::Bt709,
        v => return Err(invalid(format!("{which}: unknown matrix {v}"))),
    };
    let range = match range {
        0 => savl::yuv::Range::Limited,
        1 => savl::yuv::Range::Full,
        v => return Err(invalid(format!("{which}: unknown range {v}"))),
    };
    if width == 0 || height == 0 {
        return Err(invalid(format!(
            "{which}: image size {width}x{height} is empty"
        )));
    }
    let (w, h) = (width as usize, height as usize);
    if let Some((ew, eh)) = size {
        if (w, h) != (ew, eh) {
            return Err(invalid(format!(
                "{which}: size {w}x{h}, but the output of this input is {ew}x{eh}"
            )));
        }
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mul = |a: usize, b: usize, what: &str| {
        a.checked_mul(b)
            .ok_or_else(|| invalid(format!("{which}: {what} overflows")))
    };
    let specs: Vec<(&str, usize, usize)> = match fmt {
        Fmt::Rgb8 | Fmt::Bgr8 => vec![("packed", mul(w, 3, "row size")?, h)],
        Fmt::Rgba8 | Fmt::Bgra8 => vec![("packed", mul(w, 4, "row size")?, h)],
        Fmt::Gray8 => vec![("packed", w, h)],
        Fmt::Rgb16 => vec![("packed", mul(w, 6, "row size")?, h)],
        Fmt::Nv12 | Fmt::Nv21 => vec![("Y", w, h), ("UV", 2 * cw, ch)],
        Fmt::I420 => vec![("Y", w, h), ("U", cw, ch), ("V", cw, ch)],
    };
    let mut planes = Vec::with_capacity(specs.len());
    for (i, (name, row, rows)) in specs.into_iter().enumerate() {
        let (p, stride, len) = (ptrs[i], strides[i], lengths[i]);
        let plane = format!("{which} plane {i} ({name})");
        if p.is_null() {
            return Err(invalid(format!("{plane}: pointer is NULL")));
        }
        if stride < row {
            return Err(invalid(format!(
                "{plane}: stride {stride} is shorter than a row of {row} bytes"
            )));
        }
        let need = stride
            .checked_mul(rows - 1)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| {
                invalid(format!(
                    "{plane}: stride {stride} × {rows} rows overflows the address space"
                ))
            })?;
        if len < need {
            return Err(invalid(format!(
                "{plane}: length {len} is shorter than the {need} bytes needed \
                 (stride·(rows−1) + row = {stride}·{} + {row})",
                rows - 1
            )));
        }
        if (p as usize).checked_add(need).is_none() {
            return Err(invalid(format!("{plane}: pointer + length overflows")));
        }
        planes.push((p, stride, need));
    }
    Ok(Checked {
        fmt,
        w,
        h,
        colour: savl::yuv::Colour { matrix, range },
        planes,
    })
}

/// An input as the model takes it: RGB8, and the alpha plane in [0, 1] when it has one.
type Decoded = (image::RgbImage, Option<Vec<f32>>);

/// Writes one output pixel from its RGB8 value and its index (for the alpha plane).
type PixelWriter<'a> = dyn Fn(&[u8], usize, &mut [u8]) + 'a;

/// Reads a checked input image as RGB8 plus, for the alpha formats when some pixel is not fully
/// opaque, its alpha plane (the colour under fully transparent pixels filled from the visible
/// ones, as the CLI does).
///
/// # Safety
/// Every plane of `src` is readable for its checked length.
unsafe fn read_input(src: &Checked) -> Result<Decoded, (SavlStatus, String)> {
    let (w, h) = (src.w, src.h);
    let plane = |i: usize| -> savl::yuv::Plane<'_> {
        let (p, stride, need) = src.planes[i];
        // SAFETY: the caller guarantees `need` readable bytes (checked against its length).
        let data = unsafe { std::slice::from_raw_parts(p.cast_const(), need) };
        savl::yuv::Plane { data, stride }
    };
    let alloc = |n: usize| -> Result<Vec<u8>, (SavlStatus, String)> {
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| {
            (
                SavlStatus::Limits,
                format!("cannot allocate {n} bytes for the input"),
            )
        })?;
        Ok(v)
    };
    let n = w
        .checked_mul(h)
        .and_then(|n| n.checked_mul(3))
        .ok_or_else(|| invalid("src: image size overflows"))?;
    let mut rgb = alloc(n)?;
    let mut alpha = None;
    let p0 = plane(0);
    let rows = || (0..h).map(|y| &p0.data[y * p0.stride..]);
    match src.fmt {
        Fmt::Rgb8 => rows().for_each(|r| rgb.extend_from_slice(&r[..3 * w])),
        Fmt::Bgr8 => rows().for_each(|r| {
            r[..3 * w]
                .chunks_exact(3)
                .for_each(|p| rgb.extend_from_slice(&[p[2], p[1], p[0]]))
        }),
        Fmt::Gray8 => rows().for_each(|r| r[..w].iter().for_each(|&v| rgb.extend([v, v, v]))),
        Fmt::Rgb16 => rows().for_each(|r| {
            r[..6 * w].chunks_exact(2).for_each(|b| {
                let v = u32::from(u16::from_ne_bytes([b[0], b[1]]));
                rgb.push(((v * 255 + 32767) / 65535) as u8)
            })
        }),
        Fmt::Rgba8 | Fmt::Bgra8 => {
            let mut rgba = alloc(w * h * 4)?;
            let bgr = src.fmt == Fmt::Bgra8;
            rows().for_each(|r| {
                r[..4 * w].chunks_exact(4).for_each(|p| {
                    rgba.extend_from_slice(&if bgr {
                        [p[2], p[1], p[0], p[3]]
                    } else {
                        [p[0], p[1], p[2], p[3]]
                    })
                })
            });
            if rgba.chunks_exact(4).all(|p| p[3] == 255) {
                rgba.chunks_exact(4)
                    .for_each(|p| rgb.extend_from_slice(&p[..3]));
            } else {
                let rgba = image::RgbaImage::from_raw(w as u32, h as u32, rgba)
                    .ok_or_else(|| invalid("src: buffer size mismatch"))?;
                alpha = Some(
                    rgba.as_raw()
                        .chunks_exact(4)
                        .map(|p| f32::from(p[3]) / 255.0)
                        .collect(),
                );
                rgb = savl::photo::fill_transparent_rgba8(&rgba).into_raw();
            }
        }
        Fmt::Nv12 | Fmt::Nv21 | Fmt::I420 => {
            let chroma = match src.fmt {
                Fmt::I420 => savl::yuv::Chroma::Planar {
                    u: plane(1),
                    v: plane(2),
                },
                f => savl::yuv::Chroma::Interleaved {
                    uv: plane(1),
                    order: if f == Fmt::Nv12 {
                        savl::yuv::UvOrder::Uv
                    } else {
                        savl::yuv::UvOrder::Vu
                    },
                },
            };
            let yuv = savl::yuv::YuvImage {
                width: w as u32,
                height: h as u32,
                subsampling: savl::yuv::Subsampling::Yuv420,
                y: p0,
                chroma,
            };
            rgb.resize(n, 0);
            savl::yuv::yuv_to_rgb(&yuv, src.colour, &mut rgb, 3 * w)
                .map_err(|e| invalid(format!("src: {e}")))?;
        }
    }
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| invalid("src: buffer size mismatch"))?;
    Ok((img, alpha))
}

/// Writes output rows `first..first + rows.len()/(3·w)` (RGB8, `3·w` bytes a row) to `dst` in
/// its format; `alpha` is the output alpha plane (row-major, `w` bytes a row), or `None` for
/// opaque. For the 4:2:0 formats `first` and the row count are even, except for a last band.
///
/// # Safety
/// Every plane of `dst` is writable for its checked length, and no other reference to it lives.
unsafe fn write_rows(
    dst: &Checked,
    first: usize,
    rows: &[u8],
    alpha: Option<&[u8]>,
) -> Result<(), Error> {
    let w = dst.w;
    let n = rows.len() / (3 * w);
    let plane = |i: usize| -> (&mut [u8], usize) {
        let (p, stride, need) = dst.planes[i];
        // SAFETY: the caller guarantees `need` writable, unaliased bytes.
        (unsafe { std::slice::from_raw_parts_mut(p, need) }, stride)
    };
    let packed = |bpp: usize, px: &PixelWriter<'_>| {
        let (data, stride) = plane(0);
        for (i, r) in rows.chunks_exact(3 * w).enumerate() {
            let y = first + i;
            let out = &mut data[y * stride..y * stride + bpp * w];
            for (x, (o, p)) in out.chunks_exact_mut(bpp).zip(r.chunks_exact(3)).enumerate() {
                px(p, y * w + x, o);
            }
        }
    };
    let a = |i: usize| alpha.map_or(255, |a| a[i]);
    match dst.fmt {
        Fmt::Rgb8 => packed(3, &|p, _, o| o.copy_from_slice(p)),
        Fmt::Bgr8 => packed(3, &|p, _, o| o.copy_from_slice(&[p[2], p[1], p[0]])),
        Fmt::Rgba8 => packed(4, &|p, i, o| o.copy_from_slice(&[p[0], p[1], p[2], a(i)])),
        Fmt::Bgra8 => packed(4, &|p, i, o| o.copy_from_slice(&[p[2], p[1], p[0], a(i)])),
        Fmt::Gray8 => packed(1, &|p, _, o| {
            let l = savl::photo::luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            o[0] = l.round().clamp(0.0, 255.0) as u8
        }),
        Fmt::Rgb16 => packed(6, &|p, _, o| {
            for c in 0..3 {
                o[2 * c..2 * c + 2].copy_from_slice(&(u16::from(p[c]) * 257).to_ne_bytes());
            }
        }),
        Fmt::Nv12 | Fmt::Nv21 | Fmt::I420 => {
            let (y, ys) = plane(0);
            let y = savl::yuv::PlaneMut {
                data: &mut y[first * ys..],
                stride: ys,
            };
            let sub = |i: usize| {
                let (d, s) = plane(i);
                savl::yuv::PlaneMut {
                    data: &mut d[first / 2 * s..],
                    stride: s,
                }
            };
            let chroma = match dst.fmt {
                Fmt::I420 => savl::yuv::ChromaMut::Planar {
                    u: sub(1),
                    v: sub(2),
                },
                f => savl::yuv::ChromaMut::Interleaved {
                    uv: sub(1),
                    order: if f == Fmt::Nv12 {
                        savl::yuv::UvOrder::Uv
                    } else {
                        savl::yuv::UvOrder::Vu
                    },
                },
            };
            let mut img = savl::yuv::YuvImageMut {
                width: w as u32,
                height: n as u32,
                subsampling: savl::yuv::Subsampling::Yuv420,
                y,
                chroma,
            };
            savl::yuv::rgb_to_yuv(rows, 3 * w, dst.colour, &mut img)
                .map_err(|e| Error::InvalidInput(format!("dst: {e}")))?;
        }
    }
    Ok(())
}

/// The half-open byte range of each plane.
fn spans(img: &Checked) -> impl Iterator<Item = (usize, (usize, usize))> + '_ {
    img.planes
        .iter()
        .enumerate()
        .map(|(i, &(p, _, need))| (i, (p as usize, p as usize + need)))
}

/// Upscales `src` into `dst`, converting between pixel formats on the way (see
/// [`SavlPixelFormat`]; any input format to any output format). `dst` must be exactly the
/// output size ([`savl_upscaler_output_size`] of `src`'s size); padding bytes between rows are
/// left untouched.
///
/// Colour goes through the model as RGB8: the YUV formats are converted per `matrix`/`range`
/// (BT.601 limited by default); `GRAY8` is replicated to three channels in, and BT.601 luma
/// (`0.299·R + 0.587·G + 0.114·B`, rounded) out; `RGB16` is rounded to 8 bits in
/// (`round(v·255/65535)`) and widened out (`v·257`). Alpha (`RGBA8`, `BGRA8` in): when every
/// pixel is opaque the output alpha is 255; otherwise, as the `savl` CLI does, the colour
/// under fully transparent pixels is filled from the nearest visible ones before the model
/// sees it, and the alpha plane itself is upscaled by the model (replicated to three channels,
/// averaged back), with areas fully transparent or fully opaque around a pixel kept exactly 0
/// or 255. An output without alpha drops it; an output with alpha from an input without gets
/// 255.
///
/// `progress`, when not NULL, is called with `user` on the calling thread, first with
/// `done = 0` and then after each band of output rows, with `done` of `total` rows finished:
/// `total` is the output height, twice that when the alpha plane goes through the model (the
/// alpha pass comes first). The last call has `done == total`. Returning non-zero from any
/// call (the last one included) gives `SAVL_STATUS_CANCELLED` and no further work or calls:
/// the output bands finished before it may already have been written to `dst` and the rest
/// is untouched, so the contents of `dst` must be treated as unspecified (a cancel at the first
/// call, `done = 0`, writes nothing; in the alpha pass, nothing is written either).
///
/// Errors: `SAVL_STATUS_INVALID_ARGUMENT` for a NULL pointer or any failed check of
/// [`SavlImage`] (the message names the image, the plane and the reason), or a `dst` size
/// other than the output size; the statuses of [`savl_upscaler_run`] otherwise.
///
/// # Safety
/// `upscaler` is a live handle; `src` and `dst` point to valid [`SavlImage`]s whose used planes
/// are readable (`src`) or writable (`dst`) for their stated lengths; `progress`, when not
/// NULL, is safe to call with `user`.
#[no_mangle]
pub unsafe extern "C" fn savl_upscaler_run_image(
    upscaler: *const SavlUpscaler,
    src: *const SavlImage,
    dst: *const SavlImage,
    progress: SavlProgressFn,
    user: *mut c_void,
) -> SavlStatus {
    guard(|| {
        if upscaler.is_null() || src.is_null() || dst.is_null() {
            return Err(invalid("upscaler, src and dst must not be NULL"));
        }
        // SAFETY: non-null, a live handle per the contract.
        let up = unsafe { &(*upscaler).inner };
        let s = up.scale();
        // SAFETY: a valid descriptor per the contract.
        let src = unsafe { check_image(src, "src", None)? };
        let (ow, oh) = match (src.w.checked_mul(s), src.h.checked_mul(s)) {
            (Some(w), Some(h)) if w <= u32::MAX as usize && h <= u32::MAX as usize => (w, h),
            _ => {
                return Err((
                    SavlStatus::Limits,
                    format!("output of {}x{} does not fit in 32 bits", src.w, src.h),
                ))
            }
        };
        // SAFETY: as above.
        let dst = unsafe { check_image(dst, "dst", Some((ow, oh)))? };
        for (i, a) in spans(&dst) {
            for (j, b) in spans(&dst).filter(|&(j, _)| j > i) {
                if a.0 < b.1 && b.0 < a.1 {
                    return Err(invalid(format!("dst planes {i} and {j} overlap")));
                }
            }
            for (j, b) in spans(&src) {
                if a.0 < b.1 && b.0 < a.1 {
                    return Err(invalid(format!("dst plane {i} overlaps src plane {j}")));
                }
            }
        }
        // SAFETY: the planes are readable for their checked lengths per the contract.
        let (rgb, alpha) = unsafe { read_input(&src)? };
        let out_alpha = matches!(dst.fmt, Fmt::Rgba8 | Fmt::Bgra8);
        let passes = if alpha.is_some() && out_alpha { 2 } else { 1 };
        let total = u32::try_from(oh * passes).unwrap_or(u32::MAX);
        let mut done = 0u32;
        let mut cancelled = false;
        let mut tick = |rows: usize| -> Result<(), Error> {
            done = done.saturating_add(rows as u32).min(total);
            if let Some(f) = progress {
                // SAFETY: callable with `user` per the contract.
                if unsafe { f(user, done, total) } != 0 {
                    cancelled = true;
                    return Err(Error::InvalidInput(
                        "cancelled by the progress callback".into(),
                    ));
                }
            }
            Ok(())
        };
        let cancel_msg = |done: u32| {
            (
                SavlStatus::Cancelled,
                format!("cancelled by the progress callback after {done} of {total} rows"),
            )
        };
        if tick(0).is_err() {
            return Err(cancel_msg(0));
        }
        let alpha8: Option<Vec<u8>> = match (&alpha, out_alpha) {
            (Some(a), true) => {
                let mut err = None;
                let plane = savl::photo::upscale_alpha_with(
                    a,
                    src.w as u32,
                    src.h as u32,
                    ow as u32,
                    oh as u32,
                    |img| {
                        let mut out = Vec::new();
                        let r = up.upscale_rows(img, |_, rows| {
                            out.extend_from_slice(rows);
                            tick(rows.len() / (3 * ow))
                        });
                        match r {
                            Ok(()) => image::RgbImage::from_raw(ow as u32, oh as u32, out)
                                .ok_or_else(|| "alpha output size".to_string()),
                            Err(e) => {
                                let m = e.to_string();
                                err = Some(e);
                                Err(m)
                            }
                        }
                    },
                );
                match (plane, err) {
                    (Ok(p), _) => Some(
                        p.iter()
                            .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
                            .collect(),
                    ),
                    (Err(_), Some(_)) if cancelled => return Err(cancel_msg(done)),
                    (Err(_), Some(e)) => return Err(from_error(e)),
                    (Err(m), None) => return Err((SavlStatus::Runtime, m)),
                }
            }
            _ => None,
        };
        let row = 3 * ow;
        // 4:2:0 output converts pairs of rows: an odd band's last row waits for the next.
        let yuv_out = matches!(dst.fmt, Fmt::Nv12 | Fmt::Nv21 | Fmt::I420);
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_first = 0usize;
        let r = up.upscale_rows(&rgb, |first, rows| {
            let first = first as usize;
            let n = rows.len() / row;
            if yuv_out {
                if pending.is_empty() {
                    pending_first = first;
                }
                pending.extend_from_slice(rows);
                let whole = pending.len() / row;
                let even = if pending_first + whole == oh {
                    whole
                } else {
                    whole & !1
                };
                if even > 0 {
                    // SAFETY: dst planes are writable for their checked lengths, unaliased.
                    unsafe { write_rows(&dst, pending_first, &pending[..even * row], None)? };
                    pending.drain(..even * row);
                    pending_first += even;
                }
            } else {
                // SAFETY: as above.
                unsafe { write_rows(&dst, first, rows, alpha8.as_deref())? };
            }
            tick(n)
        });
        match r {
            Ok(()) => Ok(()),
            Err(_) if cancelled => Err(cancel_msg(done)),
            Err(e) => Err(from_error(e)),
        }
    })
}
