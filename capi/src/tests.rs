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

/// Asserts an `Ok` status, with the last error in the message otherwise.
#[track_caller]
fn expect_ok(st: SavlStatus) {
    assert_eq!(st, SavlStatus::Ok, "{}", last_error());
}

/// A handle on the embedded model, one thread, 32-pixel tiles.
fn tiny_upscaler() -> *mut SavlUpscaler {
    let mut opts = savl_options_default();
    opts.threads = 1;
    opts.tile = 32;
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    expect_ok(unsafe { savl_upscaler_new(&opts, &mut up) });
    up
}

/// Frees a live handle with no call running on it; the free nulls the pointer.
fn free(mut up: *mut SavlUpscaler) {
    // SAFETY: callers pass a live handle that nothing else uses any more.
    unsafe { savl_upscaler_free(&mut up) };
    assert!(up.is_null());
}

/// `savl_upscaler_run` with the buffers' lengths taken from the slices.
fn run_packed(
    up: *const SavlUpscaler,
    src: &[u8],
    (w, h, src_stride): (u32, u32, usize),
    dst: &mut [u8],
    dst_stride: usize,
) -> SavlStatus {
    // SAFETY: the slices are valid for the lengths passed and cannot overlap (one is borrowed
    // mutably); `up` is live or NULL, which the function refuses.
    unsafe {
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
    }
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

    let up = tiny_upscaler();
    let src = [128u8; 8 * 6 * 3];
    let mut dst = vec![0u8; 10];
    let st = run_packed(up, &src, (8, 6, 24), &mut dst, 96);
    assert_eq!(st, SavlStatus::InvalidArgument);
    assert!(last_error().contains("dst_len"), "{}", last_error());
    // A stride shorter than a row.
    let st = run_packed(up, &src, (8, 6, 10), &mut dst, 96);
    assert_eq!(st, SavlStatus::InvalidArgument);
    free(up);
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
    let up = tiny_upscaler();
    let (mut ow, mut oh) = (0u32, 0u32);
    assert_eq!(
        // SAFETY: live handle, valid out-pointers.
        unsafe { savl_upscaler_output_size(up, w, h, &mut ow, &mut oh) },
        SavlStatus::Ok
    );
    assert_eq!((ow, oh), (w * 4, h * 4));
    let dst_stride = (ow * 3 + 7) as usize;
    let mut dst = vec![0x55u8; dst_stride * oh as usize];
    expect_ok(run_packed(
        up,
        &src,
        (w, h, src_stride),
        &mut dst,
        dst_stride,
    ));
    free(up);
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

/// Issue 16: an out-of-range status gave a wild pointer.
#[test]
fn status_str_of_any_integer_is_a_valid_string() {
    for st in [-1, 9, 1000, i32::MIN, i32::MAX] {
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
    expect_ok(st);
    free(up);
}

/// Issue 16: a missing model file gave `SAVL_STATUS_IO` where the header promises `MODEL`; the
/// message names the file.
#[test]
fn a_missing_model_file_is_status_model_naming_it() {
    let mut opts = savl_options_default();
    opts.model_path = c"/nonexistent/dir/model.onnx".as_ptr();
    let mut up: *mut SavlUpscaler = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    let st = unsafe { savl_upscaler_new(&opts, &mut up) };
    assert_eq!(st, SavlStatus::Model);
    assert!(up.is_null());
    assert!(
        last_error().contains("/nonexistent/dir/model.onnx"),
        "{}",
        last_error()
    );
}

/// Issue 16: `output_size(0, 0)` succeeded while `run` refuses an empty image.
#[test]
fn output_size_of_an_empty_image_is_invalid() {
    let up = tiny_upscaler();
    let (mut ow, mut oh) = (7u32, 7u32);
    for (w, h) in [(0, 0), (0, 5), (5, 0)] {
        // SAFETY: live handle, valid out-pointers.
        let st = unsafe { savl_upscaler_output_size(up, w, h, &mut ow, &mut oh) };
        assert_eq!(st, SavlStatus::InvalidArgument, "{w}x{h}");
    }
    assert_eq!((ow, oh), (7, 7));
    free(up);
}

/// Runs `run_once(handle)` here, then three times on each of four threads at once on the same
/// handle (passed as an address), and asserts every result equals the first.
fn same_on_four_threads<T: PartialEq + Send>(
    up: *mut SavlUpscaler,
    run_once: impl Fn(usize) -> T + Sync,
) {
    let handle = up as usize;
    let expected = run_once(handle);
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
}

/// Issue 16: the header said "one thread at a time"; the contract now is that one handle may
/// run on several threads at once. Four threads on one handle give the single-thread result.
#[test]
fn one_handle_runs_on_four_threads_at_once() {
    let up = tiny_upscaler();
    let (w, h) = (20u32, 13u32);
    let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
    let out_len = (w * h * 3 * 16) as usize;
    let run_once = |up: usize| {
        let mut dst = vec![0u8; out_len];
        // The handle stays live until every thread is joined.
        let st = run_packed(
            up as *const _,
            &src,
            (w, h, 3 * w as usize),
            &mut dst,
            12 * w as usize,
        );
        expect_ok(st);
        dst
    };
    same_on_four_threads(up, run_once);
    free(up);
}

// ---- savl_upscaler_run_image ----------------------------------------------------------------

/// RGB8 through `savl_upscaler_run` (the reference path), packed rows.
fn run_rgb(up: *const SavlUpscaler, rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut dst = vec![0u8; rgb.len() * 16];
    expect_ok(run_packed(
        up,
        rgb,
        (w, h, 3 * w as usize),
        &mut dst,
        12 * w as usize,
    ));
    dst
}

/// A one-plane image over `buf` with rows `stride` bytes apart.
fn packed_image(
    format: SavlPixelFormat,
    w: u32,
    h: u32,
    buf: &mut [u8],
    stride: usize,
) -> SavlImage {
    let mut img = savl_image_default();
    img.format = format;
    img.width = w;
    img.height = h;
    img.planes[0] = buf.as_mut_ptr();
    img.strides[0] = stride;
    img.lengths[0] = buf.len();
    img
}

/// A one-plane image over `buf` holding `h` packed rows (no padding).
fn packed(format: SavlPixelFormat, w: usize, h: usize, buf: &mut [u8]) -> SavlImage {
    let stride = buf.len() / h;
    packed_image(format, w as u32, h as u32, buf, stride)
}

/// A YUV 4:2:0 image over separate plane buffers (one for NV12/NV21's UV, two for I420's U, V).
fn yuv_image(
    format: SavlPixelFormat,
    w: u32,
    h: u32,
    planes: &mut [(Vec<u8>, usize)],
) -> SavlImage {
    let mut img = savl_image_default();
    img.format = format;
    img.width = w;
    img.height = h;
    for (i, (buf, stride)) in planes.iter_mut().enumerate() {
        img.planes[i] = buf.as_mut_ptr();
        img.strides[i] = *stride;
        img.lengths[i] = buf.len();
    }
    img
}

fn run_image(up: *const SavlUpscaler, src: &SavlImage, dst: &SavlImage) -> SavlStatus {
    // SAFETY: descriptors over live buffers of the lengths they state.
    unsafe { savl_upscaler_run_image(up, src, dst, None, ptr::null_mut()) }
}

/// Packed rows `3·w` wide out of a strided plane.
fn unpad(buf: &[u8], stride: usize, row: usize, h: usize) -> Vec<u8> {
    (0..h)
        .flat_map(|y| buf[y * stride..y * stride + row].to_vec())
        .collect()
}

fn pattern(w: u32, h: u32) -> Vec<u8> {
    (0..w * h * 3)
        .map(|i| ((i * 53 + (i / (3 * w)) * 29) % 256) as u8)
        .collect()
}

#[test]
fn packed_formats_in_equal_converting_to_rgb8_first() {
    let up = tiny_upscaler();
    let (w, h) = (14u32, 10u32);
    let rgb = pattern(w, h);
    let px = || rgb.chunks_exact(3);
    let grey: Vec<u8> = px().map(|p| p[1]).collect();
    let v16: Vec<u16> = rgb
        .iter()
        .enumerate()
        .map(|(i, &c)| (i32::from(c) * 257 + (i as i32 * 37) % 257 - 128).clamp(0, 65535) as u16)
        .collect();
    // (format, its bytes with 3 bytes of padding a row, bytes a pixel, the RGB8 it stands for)
    let cases: Vec<(SavlPixelFormat, Vec<u8>, usize, Vec<u8>)> = vec![
        (SavlPixelFormat::Rgb8, rgb.clone(), 3, rgb.clone()),
        (
            SavlPixelFormat::Bgr8,
            px().flat_map(|p| [p[2], p[1], p[0]]).collect(),
            3,
            rgb.clone(),
        ),
        (
            SavlPixelFormat::Rgba8,
            px().flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
            4,
            rgb.clone(),
        ),
        (
            SavlPixelFormat::Bgra8,
            px().flat_map(|p| [p[2], p[1], p[0], 255]).collect(),
            4,
            rgb.clone(),
        ),
        (
            SavlPixelFormat::Gray8,
            grey.clone(),
            1,
            grey.iter().flat_map(|&g| [g, g, g]).collect(),
        ),
        (
            SavlPixelFormat::Rgb16,
            v16.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            6,
            v16.iter()
                .map(|&v| (f64::from(v) / 257.0).round() as u8)
                .collect(),
        ),
    ];
    for (format, bytes, bpp, as_rgb) in cases {
        let row = bpp * w as usize;
        let stride = row + 3;
        let mut src = vec![0xEEu8; stride * h as usize];
        for y in 0..h as usize {
            src[y * stride..y * stride + row].copy_from_slice(&bytes[y * row..(y + 1) * row]);
        }
        let src_img = packed_image(format, w, h, &mut src, stride);
        let ostride = 12 * w as usize + 5;
        let mut out = vec![0x55u8; ostride * 4 * h as usize];
        let dst_img = packed_image(SavlPixelFormat::Rgb8, 4 * w, 4 * h, &mut out, ostride);
        let st = run_image(up, &src_img, &dst_img);
        assert_eq!(st, SavlStatus::Ok, "{format:?}: {}", last_error());
        let expected = run_rgb(up, &as_rgb, w, h);
        assert!(
            unpad(&out, ostride, 12 * w as usize, 4 * h as usize) == expected,
            "{format:?}"
        );
        for y in 0..4 * h as usize {
            assert!(out[y * ostride + 12 * w as usize..(y + 1) * ostride]
                .iter()
                .all(|&b| b == 0x55));
        }
    }
    free(up);
}

/// BT.601/709, limited/full, Y′CbCr → RGB in closed form, in f64 (independent of `savl::yuv`).
fn closed_form_rgb(y: u8, cb: u8, cr: u8, bt709: bool, full: bool) -> [f64; 3] {
    let (kr, kb) = if bt709 {
        (0.2126, 0.0722)
    } else {
        (0.299, 0.114)
    };
    let kg = 1.0 - kr - kb;
    let (yy, c) = if full {
        (f64::from(y), 1.0)
    } else {
        ((f64::from(y) - 16.0) * 255.0 / 219.0, 255.0 / 224.0)
    };
    let pb = (f64::from(cb) - 128.0) * c;
    let pr = (f64::from(cr) - 128.0) * c;
    let r = yy + 2.0 * (1.0 - kr) * pr;
    let b = yy + 2.0 * (1.0 - kb) * pb;
    let g = (yy - kr * r - kb * b) / kg;
    [r, g, b].map(|v| v.round().clamp(0.0, 255.0))
}

#[test]
fn yuv_formats_in_equal_converting_to_rgb8_first() {
    let up = tiny_upscaler();
    for (w, h) in [(14u32, 10u32), (13, 9)] {
        let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        let (wu, hu) = (w as usize, h as usize);
        let yp: Vec<u8> = (0..wu * hu).map(|i| (16 + (i * 37) % 220) as u8).collect();
        let up_: Vec<u8> = (0..cw * ch).map(|i| (40 + (i * 23) % 170) as u8).collect();
        let vp: Vec<u8> = (0..cw * ch).map(|i| (60 + (i * 41) % 150) as u8).collect();
        for (matrix, range) in [
            (SavlMatrix::Bt601, SavlRange::Limited),
            (SavlMatrix::Bt709, SavlRange::Full),
            (SavlMatrix::Bt709, SavlRange::Limited),
        ] {
            let colour = savl::yuv::Colour {
                matrix: if matrix == SavlMatrix::Bt709 {
                    savl::yuv::Matrix::Bt709
                } else {
                    savl::yuv::Matrix::Bt601
                },
                range: if range == SavlRange::Full {
                    savl::yuv::Range::Full
                } else {
                    savl::yuv::Range::Limited
                },
            };
            // The runtime's conversion, checked against the closed form (±1 for f32 rounding).
            let mut packed = yp.clone();
            packed.extend_from_slice(&up_);
            packed.extend_from_slice(&vp);
            let yuv =
                savl::yuv::YuvImage::packed(&packed, w, h, savl::yuv::Subsampling::Yuv420).unwrap();
            let mut as_rgb = vec![0u8; wu * hu * 3];
            savl::yuv::yuv_to_rgb(&yuv, colour, &mut as_rgb, 3 * wu).unwrap();
            for y in 0..hu {
                for x in 0..wu {
                    let c = (y / 2) * cw + x / 2;
                    let exact = closed_form_rgb(
                        yp[y * wu + x],
                        up_[c],
                        vp[c],
                        matrix == SavlMatrix::Bt709,
                        range == SavlRange::Full,
                    );
                    for k in 0..3 {
                        let got = f64::from(as_rgb[(y * wu + x) * 3 + k]);
                        assert!(
                            (got - exact[k]).abs() <= 1.0,
                            "{x},{y}: {got} vs {}",
                            exact[k]
                        );
                    }
                }
            }
            let expected = run_rgb(up, &as_rgb, w, h);
            // The same samples as NV12, NV21 and I420, with padded strides.
            let pad = |plane: &[u8], row: usize, rows: usize| -> (Vec<u8>, usize) {
                let stride = row + 7;
                let mut b = vec![0xEEu8; stride * rows];
                for r in 0..rows {
                    b[r * stride..r * stride + row].copy_from_slice(&plane[r * row..(r + 1) * row]);
                }
                (b, stride)
            };
            let uv: Vec<u8> = up_.iter().zip(&vp).flat_map(|(&u, &v)| [u, v]).collect();
            let vu: Vec<u8> = up_.iter().zip(&vp).flat_map(|(&u, &v)| [v, u]).collect();
            let layouts = [
                (
                    SavlPixelFormat::Nv12,
                    vec![pad(&yp, wu, hu), pad(&uv, 2 * cw, ch)],
                ),
                (
                    SavlPixelFormat::Nv21,
                    vec![pad(&yp, wu, hu), pad(&vu, 2 * cw, ch)],
                ),
                (
                    SavlPixelFormat::I420,
                    vec![pad(&yp, wu, hu), pad(&up_, cw, ch), pad(&vp, cw, ch)],
                ),
            ];
            for (format, mut planes) in layouts {
                let mut src = yuv_image(format, w, h, &mut planes);
                src.matrix = matrix;
                src.range = range;
                let mut out = vec![0u8; expected.len()];
                let dst = packed_image(SavlPixelFormat::Rgb8, 4 * w, 4 * h, &mut out, 12 * wu);
                expect_ok(run_image(up, &src, &dst));
                assert!(out == expected, "{format:?} {matrix:?} {range:?} {w}x{h}");
            }
        }
    }
    free(up);
}

#[test]
fn output_formats_follow_the_rgb8_output() {
    let up = tiny_upscaler();
    for (w, h) in [(14u32, 10u32), (11, 9)] {
        let (ow, oh) = (4 * w as usize, 4 * h as usize);
        let mut rgb = pattern(w, h);
        let src = packed_image(SavlPixelFormat::Rgb8, w, h, &mut rgb, 3 * w as usize);
        let expected = run_rgb(up, &pattern(w, h), w, h);
        let px = || expected.chunks_exact(3);
        let one_plane = |format: SavlPixelFormat, bpp: usize| -> Vec<u8> {
            let mut out = vec![0u8; ow * oh * bpp];
            let dst = packed_image(format, ow as u32, oh as u32, &mut out, ow * bpp);
            expect_ok(run_image(up, &src, &dst));
            out
        };
        let bgr: Vec<u8> = px().flat_map(|p| [p[2], p[1], p[0]]).collect();
        assert!(one_plane(SavlPixelFormat::Bgr8, 3) == bgr);
        let bgra: Vec<u8> = px().flat_map(|p| [p[2], p[1], p[0], 255]).collect();
        assert!(
            one_plane(SavlPixelFormat::Bgra8, 4) == bgra,
            "no alpha in: opaque out"
        );
        let grey: Vec<u8> = px()
            .map(|p| {
                (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
                    .round() as u8
            })
            .collect();
        let got = one_plane(SavlPixelFormat::Gray8, 1);
        assert!(got.iter().zip(&grey).all(|(&a, &b)| a.abs_diff(b) <= 1));
        let wide: Vec<u8> = expected
            .iter()
            .flat_map(|&v| (u16::from(v) * 257).to_ne_bytes())
            .collect();
        assert!(one_plane(SavlPixelFormat::Rgb16, 6) == wide);

        // NV12 with padded strides: equal to converting the RGB8 output, and back close to it.
        let (cw, ch) = (ow.div_ceil(2), oh.div_ceil(2));
        let mut planes = vec![
            (vec![0x55u8; (ow + 3) * oh], ow + 3),
            (vec![0x55u8; (2 * cw + 5) * ch], 2 * cw + 5),
        ];
        let dst = yuv_image(SavlPixelFormat::Nv12, ow as u32, oh as u32, &mut planes);
        expect_ok(run_image(up, &src, &dst));
        let y_plane = unpad(&planes[0].0, ow + 3, ow, oh);
        let uv_plane = unpad(&planes[1].0, 2 * cw + 5, 2 * cw, ch);
        let mut want = vec![0u8; ow * oh + 2 * cw * ch];
        {
            let mut img = savl::yuv::YuvImageMut::packed(
                &mut want,
                ow as u32,
                oh as u32,
                savl::yuv::Subsampling::Yuv420,
            )
            .unwrap();
            savl::yuv::rgb_to_yuv(&expected, 3 * ow, savl::yuv::Colour::default(), &mut img)
                .unwrap();
        }
        assert!(y_plane == want[..ow * oh]);
        let (u, v) = want[ow * oh..].split_at(cw * ch);
        let want_uv: Vec<u8> = u.iter().zip(v).flat_map(|(&u, &v)| [u, v]).collect();
        assert!(uv_plane == want_uv);
        // Luma in closed form (BT.601 limited).
        for (i, p) in px().enumerate() {
            let yv = 16.0
                + 219.0 / 255.0
                    * (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]));
            assert!((f64::from(y_plane[i]) - yv).abs() <= 0.51, "Y at {i}");
        }
        // Converted back to RGB: close to the RGB8 output (chroma is shared by 2×2 blocks).
        let mut back = vec![0u8; ow * oh * 3];
        let yuv = savl::yuv::YuvImage {
            width: ow as u32,
            height: oh as u32,
            subsampling: savl::yuv::Subsampling::Yuv420,
            y: savl::yuv::Plane {
                data: &y_plane,
                stride: ow,
            },
            chroma: savl::yuv::Chroma::Interleaved {
                uv: savl::yuv::Plane {
                    data: &uv_plane,
                    stride: 2 * cw,
                },
                order: savl::yuv::UvOrder::Uv,
            },
        };
        savl::yuv::yuv_to_rgb(&yuv, savl::yuv::Colour::default(), &mut back, 3 * ow).unwrap();
        let mad = back
            .iter()
            .zip(&expected)
            .map(|(&a, &b)| f64::from(a.abs_diff(b)))
            .sum::<f64>()
            / back.len() as f64;
        assert!(mad < 8.0, "mean abs difference after NV12 round trip {mad}");
        // Padding untouched.
        assert!(
            (0..oh).all(|y| planes[0].0[y * (ow + 3) + ow..(y + 1) * (ow + 3)]
                .iter()
                .all(|&b| b == 0x55))
        );
        // I420 and NV21 carry the same samples.
        let mut i420 = vec![
            (vec![0u8; ow * oh], ow),
            (vec![0u8; cw * ch], cw),
            (vec![0u8; cw * ch], cw),
        ];
        let dst = yuv_image(SavlPixelFormat::I420, ow as u32, oh as u32, &mut i420);
        expect_ok(run_image(up, &src, &dst));
        assert!(i420[0].0 == y_plane && i420[1].0 == u && i420[2].0 == v);
    }
    free(up);
}

#[test]
fn bgra_keeps_its_alpha_as_the_cli_does() {
    let up = tiny_upscaler();
    let (w, h) = (24u32, 16u32);
    // Left third clear (with junk colour under it), a soft middle third, right third opaque.
    let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
        let a = if x < 8 {
            0
        } else if x < 16 {
            (x * 29 + y * 7) as u8
        } else {
            255
        };
        image::Rgba([(x * 11) as u8, (y * 13) as u8, 200, a])
    });
    let mut bgra: Vec<u8> = rgba
        .pixels()
        .flat_map(|p| [p[2], p[1], p[0], p[3]])
        .collect();
    let src = packed_image(SavlPixelFormat::Bgra8, w, h, &mut bgra, 4 * w as usize);
    let (ow, oh) = (4 * w as usize, 4 * h as usize);
    let mut out = vec![0u8; ow * oh * 4];
    let dst = packed(SavlPixelFormat::Rgba8, ow, oh, &mut out);
    expect_ok(run_image(up, &src, &dst));
    for oy in 0..oh {
        for ox in 0..ow {
            let a = out[(oy * ow + ox) * 4 + 3];
            if ox < 4 * 7 {
                assert_eq!(a, 0, "clear stays clear at {ox},{oy}");
            }
            if ox >= 4 * 17 {
                assert_eq!(a, 255, "opaque stays opaque at {ox},{oy}");
            }
        }
    }
    // The CLI's path in Rust: fill under the clear pixels, model; alpha through the model.
    let rust = savl::Upscaler::builder()
        .threads(1)
        .tile(32)
        .build()
        .unwrap();
    let colour = rust
        .upscale(&savl::photo::fill_transparent_rgba8(&rgba))
        .unwrap();
    let alpha: Vec<f32> = rgba.pixels().map(|p| f32::from(p[3]) / 255.0).collect();
    let alpha = savl::photo::upscale_alpha_with(&alpha, w, h, ow as u32, oh as u32, |img| {
        rust.upscale(img).map_err(|e| e.to_string())
    })
    .unwrap();
    for (i, p) in out.chunks_exact(4).enumerate() {
        assert_eq!(&p[..3], &colour.as_raw()[i * 3..i * 3 + 3], "colour at {i}");
        assert_eq!(p[3], (alpha[i] * 255.0).round() as u8, "alpha at {i}");
    }
    // An output without alpha drops it (the filled colour).
    let mut rgb_out = vec![0u8; ow * oh * 3];
    let dst = packed(SavlPixelFormat::Rgb8, ow, oh, &mut rgb_out);
    expect_ok(run_image(up, &src, &dst));
    assert!(rgb_out == *colour.as_raw());
    free(up);
}

#[test]
fn every_descriptor_error_names_the_plane() {
    let up = tiny_upscaler();
    let (w, h) = (8u32, 6u32);
    let mut planes = vec![(vec![100u8; 8 * 6], 8usize), (vec![128u8; 8 * 3], 8usize)];
    let good = yuv_image(SavlPixelFormat::Nv12, w, h, &mut planes);
    let mut out = vec![0u8; 32 * 24 * 3];
    let good_dst = packed_image(SavlPixelFormat::Rgb8, 32, 24, &mut out, 96);
    let check = |src: SavlImage, dst: SavlImage, want: &[&str]| {
        assert_eq!(
            run_image(up, &src, &dst),
            SavlStatus::InvalidArgument,
            "{want:?}"
        );
        let e = last_error();
        for w in want {
            assert!(e.contains(w), "{e:?} lacks {w:?}");
        }
    };
    let mut s = good;
    s.planes[1] = ptr::null_mut();
    check(s, good_dst, &["src plane 1 (UV)", "NULL"]);
    let mut s = good;
    s.strides[0] = 7;
    check(
        s,
        good_dst,
        &["src plane 0 (Y)", "stride 7", "shorter than a row of 8"],
    );
    let mut s = good;
    s.lengths[1] = 23;
    check(
        s,
        good_dst,
        &["src plane 1 (UV)", "length 23", "24 bytes needed"],
    );
    let mut s = good;
    s.strides[1] = usize::MAX / 2;
    check(s, good_dst, &["src plane 1 (UV)", "overflows"]);
    let mut s = good;
    s.width = u32::MAX;
    s.height = u32::MAX;
    s.strides[0] = u32::MAX as usize;
    check(s, good_dst, &["src plane 0 (Y)"]);
    let mut s = good;
    s.width = 0;
    check(s, good_dst, &["src", "empty"]);
    let mut d = good_dst;
    d.lengths[0] -= 1;
    check(good, d, &["dst plane 0 (packed)", "length"]);
    let mut d = good_dst;
    d.strides[0] = 95;
    check(good, d, &["dst plane 0 (packed)", "stride 95"]);
    let mut d = good_dst;
    d.width = 31;
    check(good, d, &["dst", "31x24", "32x24"]);
    let mut d = good_dst;
    d.planes[0] = planes[0].0.as_mut_ptr();
    d.lengths[0] = 96 * 24;
    check(good, d, &["dst plane 0 overlaps src plane 0"]);
    let mut d = yuv_image(
        SavlPixelFormat::I420,
        32,
        24,
        &mut [
            (vec![0u8; 32 * 24 * 2], 32),
            (vec![0u8; 16 * 12], 16),
            (vec![0u8; 16 * 12], 16),
        ],
    );
    d.planes[2] = d.planes[1];
    check(good, d, &["dst planes 1 and 2 overlap"]);
    // Unknown enum values from C, written as raw integers.
    for (offset, what) in [
        (0usize, "unknown pixel format 42"),
        (12, "unknown matrix 42"),
        (16, "unknown range 42"),
    ] {
        let mut s = good;
        // SAFETY: the enum fields are C ints at these offsets of the repr(C) struct.
        unsafe {
            (&mut s as *mut SavlImage)
                .cast::<u8>()
                .add(offset)
                .cast::<u32>()
                .write(42)
        };
        check(s, good_dst, &["src", what]);
    }
    assert_eq!(std::mem::offset_of!(SavlImage, matrix), 12);
    assert_eq!(std::mem::offset_of!(SavlImage, range), 16);
    // SAFETY: null descriptors are refused before use.
    let st = unsafe { savl_upscaler_run_image(up, ptr::null(), &good_dst, None, ptr::null_mut()) };
    assert_eq!(st, SavlStatus::InvalidArgument);
    expect_ok(run_image(up, &good, &good_dst));
    free(up);
}

struct Progress {
    calls: Vec<(u32, u32)>,
    cancel_after: Option<usize>,
}

unsafe extern "C" fn on_progress(
    user: *mut std::ffi::c_void,
    done: u32,
    total: u32,
) -> std::ffi::c_int {
    // SAFETY: every caller passes a live `Progress` as `user`.
    let p = unsafe { &mut *user.cast::<Progress>() };
    p.calls.push((done, total));
    std::ffi::c_int::from(p.cancel_after.is_some_and(|n| p.calls.len() > n))
}

fn run_with_progress(
    up: *const SavlUpscaler,
    src: &SavlImage,
    dst: &SavlImage,
    cancel_after: Option<usize>,
) -> (SavlStatus, Vec<(u32, u32)>) {
    let mut p = Progress {
        calls: Vec::new(),
        cancel_after,
    };
    // SAFETY: descriptors over live buffers; `p` outlives the call.
    let st = unsafe {
        savl_upscaler_run_image(
            up,
            src,
            dst,
            Some(on_progress),
            (&mut p as *mut Progress).cast(),
        )
    };
    (st, p.calls)
}

#[test]
fn progress_counts_rows_and_cancel_stops_with_cancelled() {
    let up = tiny_upscaler();
    let (w, h) = (16u32, 80u32);
    let (ow, oh) = (64usize, 320usize);
    let mut rgb = pattern(w, h);
    let src = packed_image(SavlPixelFormat::Rgb8, w, h, &mut rgb, 48);
    let mut out = vec![0x55u8; ow * oh * 3];
    let dst = packed(SavlPixelFormat::Rgb8, ow, oh, &mut out);
    let (st, calls) = run_with_progress(up, &src, &dst, None);
    expect_ok(st);
    assert!(
        calls.len() >= 3,
        "one call to start and one a band: {calls:?}"
    );
    assert_eq!(calls[0], (0, oh as u32));
    assert_eq!(*calls.last().unwrap(), (oh as u32, oh as u32));
    assert!(
        calls
            .windows(2)
            .all(|p| p[0].0 < p[1].0 && p[1].1 == oh as u32),
        "{calls:?}"
    );
    let full = out.clone();

    // Cancel after the first band: CANCELLED, the callback not called again, the rows after
    // that band untouched.
    out.fill(0x55);
    let dst = packed(SavlPixelFormat::Rgb8, ow, oh, &mut out);
    let (st, cancelled) = run_with_progress(up, &src, &dst, Some(1));
    assert_eq!(st, SavlStatus::Cancelled);
    assert!(last_error().contains("cancelled"), "{}", last_error());
    assert_eq!(cancelled, calls[..2]);
    let band = calls[1].0 as usize;
    assert!(out[..band * ow * 3] == full[..band * ow * 3]);
    assert!(out[band * ow * 3..].iter().all(|&b| b == 0x55));
    // Cancel at the first call: nothing written.
    out.fill(0x55);
    let dst = packed(SavlPixelFormat::Rgb8, ow, oh, &mut out);
    let (st, c) = run_with_progress(up, &src, &dst, Some(0));
    assert_eq!((st, c.len()), (SavlStatus::Cancelled, 1));
    assert!(out.iter().all(|&b| b == 0x55));
    assert_eq!(
        // SAFETY: savl_status_str returns a static NUL-terminated string for any value.
        unsafe { CStr::from_ptr(savl_status_str(8)) }
            .to_str()
            .unwrap(),
        "cancelled"
    );

    // With alpha through the model, two passes: the total is twice the output height, and a
    // cancel in the alpha pass leaves dst untouched.
    let mut rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| [i as u8, 9, 99, if i % 16 < 8 { 0 } else { 255 }])
        .collect();
    let src = packed_image(SavlPixelFormat::Rgba8, w, h, &mut rgba, 64);
    let mut out4 = vec![0x55u8; ow * oh * 4];
    let dst = packed(SavlPixelFormat::Rgba8, ow, oh, &mut out4);
    let (st, calls) = run_with_progress(up, &src, &dst, None);
    expect_ok(st);
    assert_eq!(*calls.last().unwrap(), (2 * oh as u32, 2 * oh as u32));
    out4.fill(0x55);
    let dst = packed(SavlPixelFormat::Rgba8, ow, oh, &mut out4);
    let (st, _) = run_with_progress(up, &src, &dst, Some(1));
    assert_eq!(st, SavlStatus::Cancelled);
    assert!(out4.iter().all(|&b| b == 0x55));
    free(up);
}

#[test]
fn one_handle_runs_images_on_four_threads_at_once() {
    let up = tiny_upscaler();
    let (w, h) = (20u32, 14u32);
    let (ow, oh) = (80usize, 56usize);
    let yp: Vec<u8> = (0..w * h).map(|i| (i * 37 % 219 + 16) as u8).collect();
    let uv: Vec<u8> = (0..w * h / 2).map(|i| (i * 11 % 200 + 28) as u8).collect();
    let run_once = |up: usize| -> (Vec<u8>, usize) {
        let mut planes = vec![(yp.clone(), w as usize), (uv.clone(), w as usize)];
        let src = yuv_image(SavlPixelFormat::Nv12, w, h, &mut planes);
        let mut out = vec![0u8; ow * oh * 3];
        let dst = packed(SavlPixelFormat::Rgb8, ow, oh, &mut out);
        let (st, calls) = run_with_progress(up as *const SavlUpscaler, &src, &dst, None);
        expect_ok(st);
        (out, calls.len())
    };
    // Each call has its own progress and the same pixels.
    same_on_four_threads(up, run_once);
    free(up);
}

#[test]
fn versions() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(savl_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(savl_abi_version(), SAVL_ABI_VERSION);
}
