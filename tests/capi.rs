//! The C ABI called from Rust exactly as C would: statuses, last-error messages, strides, and
//! panics coming back as `SavlStatus::Panic` instead of aborting.
#![cfg(feature = "capi")]

use std::ffi::CStr;
use std::ptr;

use savl::capi::*;

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
    let st =
        unsafe { savl_upscaler_run(up, src.as_ptr(), 8, 6, 24, dst.as_mut_ptr(), 96, dst.len()) };
    assert_eq!(st, SavlStatus::InvalidArgument);
    assert!(last_error().contains("dst_len"), "{}", last_error());
    // SAFETY: as above; a stride shorter than a row.
    let st =
        unsafe { savl_upscaler_run(up, src.as_ptr(), 8, 6, 10, dst.as_mut_ptr(), 96, dst.len()) };
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
    // SAFETY: live handle, valid out-pointers.
    assert_eq!(
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
