//! The C ABI called from Rust exactly as C would: statuses, last-error messages, strides, and
//! panics coming back as `SavlStatus::Panic` instead of aborting.

use std::ffi::CStr;
use std::ptr;

use crate::*;

fn last_error() -> String {
    // SAFETY: savl_last_error returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(savl_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_panic_inside_the_library_comes_back_as_a_status() {
    let st = savl_debug_trigger_panic();
    assert_eq!(st, SavlStatus::Panic);
    assert!(last_error().contains("panic"), "{}", last_error());
}

#[test]
fn null_pointers_and_short_buffers_are_rejected() {
    // SAFETY: null out-pointer is exactly what is being tested; the function must not write.
    let st = unsafe { savl_upscaler_new(ptr::null(), ptr::null_mut()) };
    assert_eq!(st, SavlStatus::InvalidArgument);
    assert!(last_error().contains("NULL"));

    let mut opts = savl_options_default();
    opts.threads = 1;
    opts.tile = 32;
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { savl_upscaler_new(&opts, &mut up) }, SavlStatus::Ok);
    let src = [128u8; 8 * 6 * 3];
    let mut dst = vec![0u8; 10];
    // SAFETY: the buffers are valid for the lengths passed.
    let st = unsafe {
        savl_upscaler_run(
            up,
            src.as_ptr(),
            src.len(),
            8,
            6,
            24,
            dst.as_mut_ptr(),
            96,
            dst.len(),
        )
    };
    assert_eq!(st, SavlStatus::InvalidArgument);
    assert!(last_error().contains("dst_len"), "{}", last_error());
    // SAFETY: as above; a stride shorter than a row.
    let st = unsafe {
        savl_upscaler_run(
            up,
            src.as_ptr(),
            src.len(),
            8,
            6,
            10,
            dst.as_mut_ptr(),
            96,
            dst.len(),
        )
    };
    assert_eq!(st, SavlStatus::InvalidArgument);
    // SAFETY: `up` is live; free nulls it.
    unsafe { savl_upscaler_free(&mut up) };
    assert!(up.is_null());
}

#[test]
fn a_missing_model_file_is_an_error_naming_it() {
    let mut opts = savl_options_default();
    opts.model_path = c"/nonexistent/model.onnx".as_ptr();
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    let st = unsafe { savl_upscaler_new(&opts, &mut up) };
    assert!(matches!(st, SavlStatus::Io | SavlStatus::Model), "{st:?}");
    assert!(up.is_null());
    assert!(
        last_error().contains("/nonexistent/model.onnx"),
        "{}",
        last_error()
    );
}

#[test]
fn strided_run_equals_the_rust_api() {
    let (w, h) = (13u32, 9u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 19) as u8, (y * 27) as u8, ((x + y) * 11) as u8])
    });
    let expected = savl::Upscaler::builder()
        .threads(1)
        .tile(32)
        .build()
        .unwrap()
        .upscale(&img)
        .unwrap();

    // Padded rows on both sides: 5 bytes of junk after each input row, 7 after each output row.
    let src_stride = (w * 3 + 5) as usize;
    let mut src = vec![0xAAu8; src_stride * h as usize];
    for y in 0..h as usize {
        src[y * src_stride..y * src_stride + (w * 3) as usize]
            .copy_from_slice(&img.as_raw()[y * (w * 3) as usize..(y + 1) * (w * 3) as usize]);
    }
    let mut opts = savl_options_default();
    opts.threads = 1;
    opts.tile = 32;
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { savl_upscaler_new(&opts, &mut up) }, SavlStatus::Ok);
    let (mut ow, mut oh) = (0u32, 0u32);
    assert_eq!(
        // SAFETY: live handle, valid out-pointers.
        unsafe { savl_upscaler_output_size(up, w, h, &mut ow, &mut oh) },
        SavlStatus::Ok
    );
    assert_eq!((ow, oh), (w * 4, h * 4));
    let dst_stride = (ow * 3 + 7) as usize;
    let mut dst = vec![0x55u8; dst_stride * oh as usize];
    // SAFETY: the buffers are valid for the lengths passed and do not overlap.
    let st = unsafe {
        savl_upscaler_run(
            up,
            src.as_ptr(),
            src.len(),
            w,
            h,
            src_stride,
            dst.as_mut_ptr(),
            dst_stride,
            dst.len(),
        )
    };
    assert_eq!(st, SavlStatus::Ok, "{}", last_error());
    // SAFETY: live handle.
    unsafe { savl_upscaler_free(&mut up) };
    for y in 0..oh as usize {
        let row = &dst[y * dst_stride..y * dst_stride + (ow * 3) as usize];
        assert_eq!(
            row,
            &expected.as_raw()[y * (ow * 3) as usize..(y + 1) * (ow * 3) as usize]
        );
        assert!(
            dst[y * dst_stride + (ow * 3) as usize..(y + 1) * dst_stride]
                .iter()
                .all(|&b| b == 0x55)
        );
    }
}

fn tiny_upscaler() -> *mut SavlUpscaler {
    let mut opts = savl_options_default();
    opts.threads = 1;
    opts.tile = 32;
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { savl_upscaler_new(&opts, &mut up) }, SavlStatus::Ok);
    up
}

/// Issue 16: an out-of-range status gave a wild pointer.
#[test]
fn status_str_of_any_integer_is_a_valid_string() {
    for st in [-1, 8, 1000, i32::MIN, i32::MAX] {
        // SAFETY: savl_status_str returns a static NUL-terminated string for any value.
        let s = unsafe { CStr::from_ptr(savl_status_str(st)) };
        assert_eq!(s.to_str().unwrap(), "unknown status");
    }
    // SAFETY: as above.
    let ok = unsafe { CStr::from_ptr(savl_status_str(SavlStatus::Model as i32)) };
    assert_eq!(ok.to_str().unwrap(), "model error");
}

/// Issue 16: a huge `src_stride` overflowed (panic or segfault), and a short source buffer was
/// read out of bounds for want of a length.
#[test]
fn overflowing_stride_short_source_and_overlap_are_rejected() {
    let up = tiny_upscaler();
    let src = [128u8; 8 * 6 * 3];
    let mut dst = vec![0u8; 32 * 24 * 3];
    let run = |src: *const u8, src_len: usize, stride: usize, dst: *mut u8, dst_len: usize| {
        // SAFETY: every call passes buffers valid for the lengths given (the checks under test
        // must refuse before reading anything else).
        unsafe { savl_upscaler_run(up, src, src_len, 8, 6, stride, dst, 96, dst_len) }
    };
    for stride in [1usize << 63, usize::MAX, usize::MAX / 5 + 1] {
        let st = run(src.as_ptr(), src.len(), stride, dst.as_mut_ptr(), dst.len());
        assert_eq!(st, SavlStatus::InvalidArgument, "stride {stride}");
        let e = last_error();
        assert!(e.contains("overflows") || e.contains("src_len"), "{e}");
    }
    let st = run(src.as_ptr(), src.len() - 1, 24, dst.as_mut_ptr(), dst.len());
    assert_eq!(st, SavlStatus::InvalidArgument);
    assert!(last_error().contains("src_len"), "{}", last_error());
    // A stride with padding needs `stride·(h−1) + 3w` bytes, more than the packed 144.
    let st = run(src.as_ptr(), src.len(), 30, dst.as_mut_ptr(), dst.len());
    assert_eq!(st, SavlStatus::InvalidArgument);
    // dst overlapping src.
    let mut both = vec![0u8; 32 * 24 * 3 + 200];
    let p = both.as_mut_ptr();
    let st = run(p, 144, 24, p.wrapping_add(100), 32 * 24 * 3);
    assert_eq!(st, SavlStatus::InvalidArgument);
    assert!(last_error().contains("overlap"), "{}", last_error());
    let st = run(src.as_ptr(), src.len(), 24, dst.as_mut_ptr(), dst.len());
    assert_eq!(st, SavlStatus::Ok, "{}", last_error());
    let mut up = up;
    // SAFETY: live handle.
    unsafe { savl_upscaler_free(&mut up) };
}

/// Issue 16: a missing model file gave `SAVL_STATUS_IO` where the header promises `MODEL`.
#[test]
fn missing_model_is_status_model() {
    let mut opts = savl_options_default();
    opts.model_path = c"/nonexistent/dir/model.onnx".as_ptr();
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    let st = unsafe { savl_upscaler_new(&opts, &mut up) };
    assert_eq!(st, SavlStatus::Model);
    assert!(up.is_null());
}

/// Issue 16: `output_size(0, 0)` succeeded while `run` refuses an empty image.
#[test]
fn output_size_of_an_empty_image_is_invalid() {
    let mut up = tiny_upscaler();
    let (mut ow, mut oh) = (7u32, 7u32);
    for (w, h) in [(0, 0), (0, 5), (5, 0)] {
        // SAFETY: live handle, valid out-pointers.
        let st = unsafe { savl_upscaler_output_size(up, w, h, &mut ow, &mut oh) };
        assert_eq!(st, SavlStatus::InvalidArgument, "{w}x{h}");
    }
    assert_eq!((ow, oh), (7, 7));
    // SAFETY: live handle.
    unsafe { savl_upscaler_free(&mut up) };
}

/// Issue 16: the header said "one thread at a time"; the contract now is that one handle may
/// run on several threads at once. Four threads on one handle give the single-thread result.
#[test]
fn one_handle_runs_on_four_threads_at_once() {
    let mut up = tiny_upscaler();
    let (w, h) = (20u32, 13u32);
    let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
    let out_len = (w * h * 3 * 16) as usize;
    let run_once = |up: usize| {
        let mut dst = vec![0u8; out_len];
        // SAFETY: the handle stays live until every thread is joined; buffers are valid.
        let st = unsafe {
            savl_upscaler_run(
                up as *const SavlUpscaler,
                src.as_ptr(),
                src.len(),
                w,
                h,
                (w * 3) as usize,
                dst.as_mut_ptr(),
                (w * 12) as usize,
                dst.len(),
            )
        };
        assert_eq!(st, SavlStatus::Ok, "{}", last_error());
        dst
    };
    let expected = run_once(up as usize);
    let handle = up as usize;
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..3).map(|_| run_once(handle)).collect::<Vec<_>>()))
            .collect();
        for t in threads {
            for out in t.join().unwrap() {
                assert!(out == expected);
            }
        }
    });
    // SAFETY: live handle, no call running.
    unsafe { savl_upscaler_free(&mut up) };
}
