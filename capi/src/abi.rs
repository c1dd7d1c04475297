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
//!   `savl_upscaler_output_size`); only [`savl_upscaler_free`] needs it to be idle.
//!   `src/tests.rs` and `tests/c/capi_test.c` run one handle from 4 threads at once.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use savl::{Error, Precision, Upscaler};

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
/// [`savl_upscaler_free`]. Thread-safe: several threads may call [`savl_upscaler_run`] and
/// [`savl_upscaler_output_size`] on one handle at the same time (the calls share the handle's
/// cached plans; each runs on its own buffers). [`savl_upscaler_free`] must not race with any
/// other call on the handle.
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
