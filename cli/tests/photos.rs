//! Issue 17: photos as people have them: any output scale, batch work (recursive, resumable,
//! sharded, summary, quality, stdin/stdout), grey and 16-bit, alpha, ICC profiles and EXIF. The
//! binary end to end on the tiny synthetic model (`savl_contract::testmodel`).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use image::{ColorType, DynamicImage, ImageDecoder, ImageReader};

mod support;
use support::{assert_mentions, dims, exits, gradient, ok, open, stderr, Fixture};

/// (ICC profile, EXIF) of a picture file, read back by `image`'s decoders.
fn metadata(path: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut d = ImageReader::open(path)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    (d.icc_profile().unwrap(), d.exif_metadata().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Any output scale

/// A factor (the name says it), or a width and/or height (the aspect is kept and the name says
/// the real factor; both: fit inside).
#[test]
fn a_scale_width_or_height_gives_that_size_and_name() {
    let f = Fixture::with_picture("p.png", 100, 80);
    f.picture("w.png", 300, 200);
    f.assert_upscaled_sizes(
        "p.png",
        &[
            (&["--scale", "2"], "p_x2.png", (200, 160)),
            (&["-s", "1.5", "--format", "jpg"], "p_x1.5.jpg", (150, 120)),
            (&["-s", "3"], "p_x3.png", (300, 240)),
        ],
    );
    f.assert_upscaled_sizes(
        "w.png",
        &[
            // 200 · 1000/300 = 666.7
            (&["--width", "1000"], "w_x3.33.png", (1000, 667)),
            (&["--height", "500", "-o", "h.png"], "h.png", (750, 500)),
            (
                &["--width", "900", "--height", "500", "-o", "b.png"],
                "b.png",
                (750, 500),
            ),
        ],
    );
}

#[test]
fn a_factor_over_the_models_is_refused() {
    let f = Fixture::with_picture("p.png", 100, 80);
    let o = f.savl(&["upscale", "p.png", "--scale", "5"]);
    exits(&o, 2);
    assert!(stderr(&o).contains("×4"), "{}", stderr(&o));
    let o = f.savl(&["upscale", "p.png", "--width", "1000"]);
    exits(&o, 1);
    let err = stderr(&o);
    assert_mentions(&err, &["p.png", "×10"]);
    assert!(!f.path("p_x10.png").exists());
}

// ---------------------------------------------------------------------------------------------
// Batch work

#[test]
fn recursive_mirrors_the_tree_under_out_dir() {
    let f = Fixture::with_picture("in/a.png", 20, 16);
    f.picture("in/sub/b.jpg", 20, 16);
    f.picture("in/sub/deeper/c.webp", 20, 16);
    ok(&f.savl(&["upscale", "-r", "in", "--out-dir", "out"]));
    for p in [
        "out/a_x4.png",
        "out/sub/b_x4.png",
        "out/sub/deeper/c_x4.png",
    ] {
        assert_eq!(dims(&f.path(p)), (80, 64), "{p}");
    }
    // Without -r, subfolders are not walked.
    ok(&f.savl(&["upscale", "in", "--out-dir", "flat"]));
    assert!(f.path("flat/a_x4.png").is_file());
    assert!(!f.path("flat/sub").exists() && !f.path("flat/b_x4.png").exists());
    // The output folder inside the input folder is not walked, and outputs are not inputs.
    ok(&f.savl(&["upscale", "-r", "in", "--out-dir", "in/up"]));
    assert!(f.path("in/up/sub/deeper/c_x4.png").is_file());
    assert!(!f.path("in/up/up").exists());
}

fn inode_and_mtime(p: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap();
    (m.ino(), m.modified().unwrap())
}

/// A batch killed midway (SIGKILL, no clean-up) and run again with --skip-existing finishes the
/// rest and leaves the finished outputs alone (same inode, same mtime).
#[test]
fn a_killed_batch_resumes_with_skip_existing() {
    let f = Fixture::new();
    let n = 24;
    for i in 0..n {
        f.picture(&format!("in/p{i:02}.png"), 96, 96);
    }
    let mut child = f
        .command(&["upscale", "in", "--out-dir", "out"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let outs: Vec<PathBuf> = (0..n)
        .map(|i| f.path(&format!("out/p{i:02}_x4.png")))
        .collect();
    let t = std::time::Instant::now();
    while !outs[1].exists() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished: Vec<(PathBuf, (u64, std::time::SystemTime))> = outs
        .iter()
        .filter(|p| p.exists())
        .map(|p| (p.clone(), inode_and_mtime(p)))
        .collect();
    assert!(
        finished.len() >= 2 && finished.len() < n,
        "the kill came at {} of {n}",
        finished.len()
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = f.savl(&["upscale", "in", "--out-dir", "out", "--skip-existing"]);
    ok(&o);
    let err = stderr(&o);
    let summary = format!("{} done, {} skipped", n - finished.len(), finished.len());
    assert!(err.contains(&summary), "{summary:?} not in {err}");
    for (p, before) in &finished {
        assert_eq!(inode_and_mtime(p), *before, "{} was redone", p.display());
    }
    for p in &outs {
        assert_eq!(dims(p), (384, 384));
    }
    // No temporary file is left in the output folder (the killed run's one was swept).
    let hidden: Vec<_> = std::fs::read_dir(f.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn three_shards_write_every_output_exactly_once() {
    let f = Fixture::new();
    let mut expected = Vec::new();
    for i in 0..12 {
        let sub = if i % 2 == 0 { "in" } else { "in/s" };
        f.picture(&format!("{sub}/q{i}.png"), 8, 8);
        expected.push(format!("{}/q{i}_x4.png", sub.replace("in", "out")));
    }
    let mut total_done = 0;
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let o = f.savl(&["upscale", "-r", "in", "--out-dir", "out", "--shard", &shard]);
        // A second shard writing an output the first wrote would fail ("already exists").
        ok(&o);
        let err = stderr(&o);
        let done: usize = err
            .split(" done")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .or_else(|| err.contains("savl: wrote").then_some(1))
            .unwrap_or(0);
        total_done += done;
    }
    assert_eq!(total_done, 12);
    for e in &expected {
        assert!(f.path(e).is_file(), "{e}");
    }
    let o = f.savl(&["upscale", "-r", "in", "--out-dir", "out", "--shard", "4/3"]);
    exits(&o, 2);
}

#[test]
fn the_summary_counts_done_skipped_and_failed_with_reasons() {
    let f = Fixture::with_picture("in/a.png", 8, 8);
    f.picture("in/b.png", 8, 8);
    std::fs::write(f.path("in/c.png"), b"not a png").unwrap();
    std::fs::create_dir_all(f.path("out")).unwrap();
    std::fs::write(f.path("out/b_x4.png"), b"finished before").unwrap();
    let o = f.savl(&["upscale", "in", "--out-dir", "out", "--skip-existing"]);
    exits(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("1 done, 1 skipped (output exists), 1 failed, of 3 inputs in"),
        "{err}"
    );
    assert_mentions(&err, &["c.png", "cannot decode"]);
    assert_eq!(
        std::fs::read(f.path("out/b_x4.png")).unwrap(),
        b"finished before"
    );
}

#[test]
fn quality_sets_the_jpeg_quality_and_webp_refuses_it() {
    let f = Fixture::new();
    // Noise, so that the quality shows in the file size.
    let noise = image::RgbImage::from_fn(64, 64, |x, y| {
        let v = ((x * 7919 + y * 104729) % 251) as u8;
        image::Rgb([v, v.wrapping_mul(3), v ^ 0x55])
    });
    f.save("n.png", &DynamicImage::ImageRgb8(noise));
    ok(&f.savl(&["upscale", "n.png", "-o", "lo.jpg", "--quality", "20"]));
    ok(&f.savl(&["upscale", "n.png", "-o", "hi.jpg", "--quality", "98"]));
    let (lo, hi) = (
        std::fs::metadata(f.path("lo.jpg")).unwrap().len(),
        std::fs::metadata(f.path("hi.jpg")).unwrap().len(),
    );
    assert!(lo * 2 < hi, "q20 {lo} bytes, q98 {hi} bytes");
    let o = f.savl(&["upscale", "n.png", "-o", "x.webp", "--quality", "80"]);
    exits(&o, 2);
    assert!(stderr(&o).contains("lossless"), "{}", stderr(&o));
    let o = f.savl(&["upscale", "n.png", "--quality", "0"]);
    exits(&o, 2);
}

#[test]
fn stdin_to_stdout() {
    let f = Fixture::new();
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(gradient(20, 12))
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let o = f.savl_with_stdin(&["upscale", "-", "-o", "-", "--scale", "2"], &png);
    ok(&o);
    let out = image::load_from_memory(&o.stdout).unwrap();
    assert_eq!((out.width(), out.height()), (40, 24));
    let o = f.savl_with_stdin(&["upscale", "-", "-o", "-", "-f", "jpg"], &png);
    ok(&o);
    assert_eq!(&o.stdout[..2], &[0xff, 0xd8]);
    // stdin into a file.
    let o = f.savl_with_stdin(&["upscale", "-", "-o", "s.png"], &png);
    ok(&o);
    assert_eq!(dims(&f.path("s.png")), (80, 48));
    // Garbage on stdin: an error naming stdin.
    let o = f.savl_with_stdin(&["upscale", "-", "-o", "-"], b"garbage");
    exits(&o, 1);
    assert!(stderr(&o).contains("stdin"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    // stdin needs -o.
    let o = f.savl_with_stdin(&["upscale", "-"], &png);
    exits(&o, 2);
}

// ---------------------------------------------------------------------------------------------
// Grey and 16-bit

#[test]
fn grey_in_grey_out() {
    let f = Fixture::new();
    let grey = image::GrayImage::from_fn(24, 16, |x, y| image::Luma([(x * 10 + y * 3) as u8]));
    f.save("g.png", &DynamicImage::ImageLuma8(grey.clone()));
    ok(&f.savl(&["upscale", "g.png"]));
    let out = open(&f.path("g_x4.png"));
    assert_eq!(out.color(), ColorType::L8);
    assert_eq!((out.width(), out.height()), (96, 64));
    // An RGB file whose channels are equal is grey too; to JPEG and WebP as well.
    let rgb_grey = DynamicImage::ImageLuma8(grey).to_rgb8();
    f.save("e.png", &DynamicImage::ImageRgb8(rgb_grey));
    for fmt in ["png", "jpg", "webp"] {
        let out_name = format!("e_out.{fmt}");
        ok(&f.savl(&["upscale", "e.png", "-o", &out_name, "--scale", "3"]));
        let rgb = open(&f.path(&out_name)).to_rgb8();
        let worst = rgb
            .pixels()
            .map(|p| p[0].abs_diff(p[1]).max(p[1].abs_diff(p[2])))
            .max()
            .unwrap();
        assert_eq!(worst, 0, "{fmt}: channels differ by up to {worst}");
    }
    // The tiny model's plain RGB output of the same picture is not grey: the grey output is
    // the conversion's doing, not the model's.
    ok(&f.savl(&["upscale", "e.png", "-o", "c.png", "--scale", "3"]));
    let rgb = open(&f.path("c.png"));
    assert_eq!(rgb.color(), ColorType::L8);
    let colour = f.picture("tint.png", 24, 16);
    ok(&f.savl(&["upscale", colour.to_str().unwrap()]));
    assert_eq!(open(&f.path("tint_x4.png")).color(), ColorType::Rgb8);
}

#[test]
fn sixteen_bit_in_sixteen_bit_out() {
    let f = Fixture::new();
    let img16 = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(20, 12, |x, y| {
        image::Rgb([(x * 3000) as u16, (y * 5000) as u16, 40000])
    });
    f.save("d.png", &DynamicImage::ImageRgb16(img16));
    ok(&f.savl(&["upscale", "d.png"]));
    let out = open(&f.path("d_x4.png"));
    assert_eq!(out.color(), ColorType::Rgb16);
    assert_eq!((out.width(), out.height()), (80, 48));
    // Quantised from the float output: not 8-bit values widened (v·257).
    let widened = out
        .to_rgb16()
        .pixels()
        .flat_map(|p| p.0)
        .filter(|v| v % 257 == 0)
        .count();
    assert!(
        widened < 80 * 48 * 3 / 10,
        "{widened} samples look widened from 8 bits"
    );
    ok(&f.savl(&["upscale", "d.png", "--depth", "8", "-o", "d8.png"]));
    assert_eq!(open(&f.path("d8.png")).color(), ColorType::Rgb8);
    // 8-bit in, --depth 16 out; grey 16 stays grey 16.
    f.picture("e.png", 10, 10);
    ok(&f.savl(&["upscale", "e.png", "--depth", "16", "-s", "2"]));
    assert_eq!(open(&f.path("e_x2.png")).color(), ColorType::Rgb16);
    let g16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(10, 10, |x, _| {
        image::Luma([(x * 6000) as u16])
    });
    f.save("g16.png", &DynamicImage::ImageLuma16(g16));
    ok(&f.savl(&["upscale", "g16.png"]));
    assert_eq!(open(&f.path("g16_x4.png")).color(), ColorType::L16);
    // 16 bits need PNG.
    let o = f.savl(&["upscale", "d.png", "--depth", "16", "-o", "d.jpg"]);
    exits(&o, 2);
}

// ---------------------------------------------------------------------------------------------
// Alpha

/// 64×32: left half opaque blue-grey, right half fully transparent storing `hidden`.
fn half_transparent(hidden: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgba8(image::RgbaImage::from_fn(64, 32, |x, y| {
        if x < 32 {
            image::Rgba([80, 120 + (y as u8), 200, 255])
        } else {
            image::Rgba([hidden[0], hidden[1], hidden[2], 0])
        }
    }))
}

#[test]
fn transparent_red_stays_hidden_and_does_not_fringe_the_edge() {
    let f = Fixture::new();
    f.save("red.png", &half_transparent([255, 0, 0]));
    f.save("blue.png", &half_transparent([80, 120, 200]));
    ok(&f.savl(&["upscale", "red.png"]));
    ok(&f.savl(&["upscale", "blue.png"]));
    let red = open(&f.path("red_x4.png"));
    assert_eq!(red.color(), ColorType::Rgba8);
    let red = red.to_rgba8();
    let blue = open(&f.path("blue_x4.png")).to_rgba8();
    assert_eq!(red.dimensions(), (256, 128));
    // The transparent half stays transparent (away from the edge's few output pixels of
    // upscaled alpha), the visible half opaque.
    for (x, y, p) in red.enumerate_pixels() {
        if x >= 128 + 8 {
            assert!(p[3] <= 2, "alpha {} at {x},{y}", p[3]);
        }
        if x < 128 - 8 {
            assert!(p[3] >= 253, "alpha {} at {x},{y}", p[3]);
        }
    }
    // No red fringe: in the visible half, the picture storing red under its transparent half
    // gives the same colours as the one storing the visible colour there; and the boundary
    // columns stay near the visible colour (measured: the max channel deviation).
    let mut max_dev = 0u8;
    let mut max_red_vs_blue = 0u8;
    for y in 0..128 {
        for x in 0..128 {
            let (r, b) = (red.get_pixel(x, y), blue.get_pixel(x, y));
            if r[3] == 0 {
                continue;
            }
            for c in 0..3 {
                max_red_vs_blue = max_red_vs_blue.max(r[c].abs_diff(b[c]));
            }
            if x >= 128 - 8 {
                let src = [80u8, 120 + (y / 4) as u8, 200];
                for c in 0..3 {
                    max_dev = max_dev.max(r[c].abs_diff(src[c]));
                }
            }
        }
    }
    assert_eq!(
        max_red_vs_blue, 0,
        "the hidden colour reached visible pixels"
    );
    println!("max channel deviation in the 8 output columns left of the edge: {max_dev}");
    assert!(max_dev < 40, "max channel deviation at the edge {max_dev}");
    // Red at the edge: R never rises towards 255.
    let worst_r = (0..128)
        .flat_map(|y| (120..128).map(move |x| (x, y)))
        .map(|(x, y)| red.get_pixel(x, y)[0])
        .max()
        .unwrap();
    assert!(worst_r < 80 + 40, "R up to {worst_r} at the edge");
}

#[test]
fn grey_alpha_and_palette_trns_keep_alpha_and_jpeg_flattens_once() {
    let f = Fixture::new();
    let la = image::GrayAlphaImage::from_fn(16, 16, |x, _| {
        image::LumaA([100, if x < 8 { 255 } else { 0 }])
    });
    f.save("la.png", &DynamicImage::ImageLumaA8(la));
    ok(&f.savl(&["upscale", "la.png"]));
    assert_eq!(open(&f.path("la_x4.png")).color(), ColorType::La8);
    // A palette PNG with tRNS: two colours, the second fully transparent.
    let mut pal = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut pal, 16, 16);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![10, 200, 30, 255, 0, 0]);
        enc.set_trns(vec![255, 0]);
        let mut w = enc.write_header().unwrap();
        let idx: Vec<u8> = (0..256).map(|i| u8::from(i % 16 >= 8)).collect();
        w.write_image_data(&idx).unwrap();
    }
    std::fs::write(f.path("pal.png"), &pal).unwrap();
    ok(&f.savl(&["upscale", "pal.png"]));
    let out = open(&f.path("pal_x4.png"));
    assert_eq!(out.color(), ColorType::Rgba8);
    let out = out.to_rgba8();
    // Interiors exactly opaque / clear (the tiny model's colours are random, its alpha is not
    // trusted inside flat areas).
    assert_eq!(out.get_pixel(2, 2)[3], 255);
    assert_eq!(out.get_pixel(60, 2)[3], 0);
    // JPEG: flattened onto the background, said once for the batch.
    std::fs::create_dir_all(f.path("two")).unwrap();
    std::fs::copy(f.path("la.png"), f.path("two/a.png")).unwrap();
    std::fs::copy(f.path("pal.png"), f.path("two/b.png")).unwrap();
    let o = f.savl(&["upscale", "two", "-f", "jpg", "--background", "#000000"]);
    ok(&o);
    let err = stderr(&o);
    assert_eq!(err.matches("flattened").count(), 1, "{err}");
    let b = open(&f.path("two/b_x4.jpg")).to_rgb8();
    let p = b.get_pixel(60, 30);
    assert!(
        p.0.iter().all(|&v| v < 12),
        "transparent → black background: {p:?}"
    );
    ok(&f.savl(&["upscale", "pal.png", "-o", "w.jpg"]));
    let p = *open(&f.path("w.jpg")).to_rgb8().get_pixel(60, 30);
    assert!(
        p.0.iter().all(|&v| v > 243),
        "transparent → white by default: {p:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Colour profiles and EXIF

/// A small but well-formed ICC v4 display profile header and tag table ("Display P3 (test)"
/// description, P3 primaries as rXYZ/gXYZ/bXYZ): bytes to carry, not to interpret.
fn p3_like_icc() -> Vec<u8> {
    fn s15(v: f64) -> [u8; 4] {
        ((v * 65536.0).round() as i32).to_be_bytes()
    }
    let mut tags: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    let mut desc = b"mluc\0\0\0\0".to_vec();
    let text: Vec<u8> = "Display P3 (test)"
        .encode_utf16()
        .flat_map(|c| c.to_be_bytes())
        .collect();
    desc.extend(1u32.to_be_bytes());
    desc.extend(12u32.to_be_bytes());
    desc.extend(b"enUS");
    desc.extend((text.len() as u32).to_be_bytes());
    desc.extend(28u32.to_be_bytes());
    desc.extend(&text);
    tags.push((*b"desc", desc));
    for (sig, xyz) in [
        (b"rXYZ", [0.5151, 0.2412, -0.0011]),
        (b"gXYZ", [0.2920, 0.6922, 0.0419]),
        (b"bXYZ", [0.1571, 0.0666, 0.7841]),
        (b"wtpt", [0.9642, 1.0, 0.8249]),
    ] {
        let mut t = b"XYZ \0\0\0\0".to_vec();
        for v in xyz {
            t.extend(s15(v));
        }
        tags.push((*sig, t));
    }
    let table_len = 4 + 12 * tags.len();
    let mut offset = 128 + table_len;
    let mut table = (tags.len() as u32).to_be_bytes().to_vec();
    let mut data = Vec::new();
    for (sig, t) in &tags {
        while (offset + data.len()) % 4 != 0 {
            data.push(0);
        }
        table.extend(sig);
        table.extend(((offset + data.len()) as u32).to_be_bytes());
        table.extend((t.len() as u32).to_be_bytes());
        data.extend(t);
    }
    let _ = &mut offset;
    let size = 128 + table.len() + data.len();
    let mut h = vec![0u8; 128];
    h[0..4].copy_from_slice(&(size as u32).to_be_bytes());
    h[8..12].copy_from_slice(&[4, 0x40, 0, 0]);
    h[12..16].copy_from_slice(b"mntr");
    h[16..20].copy_from_slice(b"RGB ");
    h[20..24].copy_from_slice(b"XYZ ");
    h[36..40].copy_from_slice(b"acsp");
    h[68..80].copy_from_slice(&[0, 0, 0xf6, 0xd6, 0, 1, 0, 0, 0, 0, 0xd3, 0x2d]);
    [h, table, data].concat()
}

/// A little-endian TIFF/EXIF block: Orientation `orientation`, Make "savl-test-camera",
/// Software "issue17".
fn exif_block(orientation: u16) -> Vec<u8> {
    let make = b"savl-test-camera\0";
    let soft = b"issue17\0";
    let n = 3u16;
    let ifd_len = 2 + 12 * n as usize + 4;
    let data_at = 8 + ifd_len;
    let mut e = b"II*\0".to_vec();
    e.extend(8u32.to_le_bytes());
    e.extend(n.to_le_bytes());
    // Make (0x010F), ASCII
    e.extend(0x010Fu16.to_le_bytes());
    e.extend(2u16.to_le_bytes());
    e.extend((make.len() as u32).to_le_bytes());
    e.extend((data_at as u32).to_le_bytes());
    // Orientation (0x0112), SHORT
    e.extend(0x0112u16.to_le_bytes());
    e.extend(3u16.to_le_bytes());
    e.extend(1u32.to_le_bytes());
    e.extend(orientation.to_le_bytes());
    e.extend([0, 0]);
    // Software (0x0131), ASCII
    e.extend(0x0131u16.to_le_bytes());
    e.extend(2u16.to_le_bytes());
    e.extend((soft.len() as u32).to_le_bytes());
    e.extend(((data_at + make.len()) as u32).to_le_bytes());
    e.extend(0u32.to_le_bytes());
    e.extend(make);
    e.extend(soft);
    e
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn png_and_jpeg_keep_the_icc_profile_bytes() {
    use image::ImageEncoder;
    let f = Fixture::new();
    let icc = p3_like_icc();
    let img = gradient(24, 16);
    // PNG with iCCP.
    let mut png_bytes = Vec::new();
    {
        let mut enc = image::codecs::png::PngEncoder::new(&mut png_bytes);
        enc.set_icc_profile(icc.clone()).unwrap();
        enc.write_image(img.as_raw(), 24, 16, image::ExtendedColorType::Rgb8)
            .unwrap();
    }
    std::fs::write(f.path("p3.png"), &png_bytes).unwrap();
    // JPEG with APP2.
    let mut jpg_bytes = Vec::new();
    {
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg_bytes, 95);
        enc.set_icc_profile(icc.clone()).unwrap();
        enc.write_image(img.as_raw(), 24, 16, image::ExtendedColorType::Rgb8)
            .unwrap();
    }
    std::fs::write(f.path("p3.jpg"), &jpg_bytes).unwrap();
    assert_eq!(metadata(&f.path("p3.png")).0.as_deref(), Some(&icc[..]));
    assert_eq!(metadata(&f.path("p3.jpg")).0.as_deref(), Some(&icc[..]));
    for (input, out) in [
        ("p3.png", "a.png"),  // streamed PNG
        ("p3.png", "b.jpg"),  // JPEG APP2
        ("p3.jpg", "c.png"),  // from JPEG
        ("p3.jpg", "d.webp"), // WebP ICCP
    ] {
        ok(&f.savl(&["upscale", input, "-o", out]));
        assert_eq!(
            metadata(&f.path(out)).0.as_deref(),
            Some(&icc[..]),
            "{input} -> {out}"
        );
    }
    // The non-streamed PNG path too (a scale).
    ok(&f.savl(&["upscale", "p3.png", "-s", "2", "-o", "e.png"]));
    assert_eq!(metadata(&f.path("e.png")).0.as_deref(), Some(&icc[..]));
    // Independent of image's decoder: the PNG holds an iCCP chunk.
    assert!(find(&std::fs::read(f.path("a.png")).unwrap(), b"iCCP"));
    ok(&f.savl(&["upscale", "p3.png", "-o", "s.png", "--strip-metadata"]));
    assert_eq!(metadata(&f.path("s.png")), (None, None));
}

#[test]
fn exif_survives_with_orientation_1_and_pixels_rotated() {
    use image::ImageEncoder;
    let f = Fixture::new();
    // 40×24 stored, orientation 6 (rotate 90° clockwise to view): shown 24×40.
    let img = gradient(40, 24);
    let mut jpg = Vec::new();
    {
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 95);
        enc.set_exif_metadata(exif_block(6)).unwrap();
        enc.write_image(img.as_raw(), 40, 24, image::ExtendedColorType::Rgb8)
            .unwrap();
    }
    std::fs::write(f.path("cam.jpg"), &jpg).unwrap();
    for out in ["cam.png", "cam_out.jpg", "cam.webp"] {
        ok(&f.savl(&["upscale", "cam.jpg", "-o", out]));
        assert_eq!(dims(&f.path(out)), (96, 160), "{out}: pixels rotated");
        let exif = metadata(&f.path(out))
            .1
            .unwrap_or_else(|| panic!("{out}: no EXIF"));
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&exif),
            Some(image::metadata::Orientation::NoTransforms),
            "{out}"
        );
        assert!(
            find(&exif, b"savl-test-camera") && find(&exif, b"issue17"),
            "{out}"
        );
        // The only change is the orientation's value.
        let mut expected = exif_block(6);
        let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut expected);
        assert_eq!(exif, expected, "{out}");
    }
    // --width counts the shown (rotated) width.
    assert_eq!(
        f.dims_after(&["upscale", "cam.jpg", "--width", "48"], "cam_x2.png"),
        (48, 80)
    );
    ok(&f.savl(&["upscale", "cam.jpg", "-o", "bare.png", "--strip-metadata"]));
    assert_eq!(metadata(&f.path("bare.png")), (None, None));
}

// ---------------------------------------------------------------------------------------------
// Animated inputs

/// Frames of an animated file: (count, size of the first, delays in ms).
fn frames_of(path: &Path) -> (usize, (u32, u32), Vec<(u32, u32)>) {
    use image::AnimationDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let frames: Vec<image::Frame> = if path.extension().unwrap() == "gif" {
        image::codecs::gif::GifDecoder::new(file)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
    } else {
        image::codecs::png::PngDecoder::new(file)
            .unwrap()
            .apng()
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
    };
    let size = frames[0].buffer().dimensions();
    let delays = frames.iter().map(|f| f.delay().numer_denom_ms()).collect();
    (frames.len(), size, delays)
}

fn write_apng(path: &Path) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut enc = png::Encoder::new(file, 8, 6);
    enc.set_color(png::ColorType::Rgb);
    enc.set_animated(3, 0).unwrap();
    let mut w = enc.write_header().unwrap();
    for i in 0..3u8 {
        w.set_frame_delay(u16::from(i + 1) * 100, 1000).unwrap();
        w.write_image_data(&[i * 80; 8 * 6 * 3]).unwrap();
    }
    w.finish().unwrap();
}

fn write_gif(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = image::codecs::gif::GifEncoder::new(file);
    for i in 0..4u8 {
        let img =
            image::RgbaImage::from_fn(10, 8, |x, _| image::Rgba([i * 60, (x * 20) as u8, 90, 255]));
        enc.encode_frame(image::Frame::from_parts(
            img,
            0,
            0,
            image::Delay::from_numer_denom_ms(70, 1),
        ))
        .unwrap();
    }
}

#[test]
fn every_frame_of_an_apng_is_upscaled_into_an_apng() {
    let f = Fixture::new();
    write_apng(&f.path("a.png"));
    let o = f.savl(&["upscale", "a.png"]);
    ok(&o);
    assert!(stderr(&o).contains("3 frames"), "{}", stderr(&o));
    let (n, size, delays) = frames_of(&f.path("a_x4.png"));
    assert_eq!((n, size), (3, (32, 24)));
    let ms: Vec<f64> = delays
        .iter()
        .map(|(a, b)| f64::from(*a) / f64::from(*b))
        .collect();
    assert_eq!(ms, vec![100.0, 200.0, 300.0]);
    // Frames differ as the input's do (0, 80, 160 grey): not the first one repeated.
    {
        use image::AnimationDecoder;
        let file = std::io::BufReader::new(std::fs::File::open(f.path("a_x4.png")).unwrap());
        let means: Vec<f64> = image::codecs::png::PngDecoder::new(file)
            .unwrap()
            .apng()
            .unwrap()
            .into_frames()
            .map(|fr| {
                let b = fr.unwrap().into_buffer();
                b.pixels().map(|p| f64::from(p[1])).sum::<f64>() / f64::from(32 * 24)
            })
            .collect();
        assert!(
            means[0] + 40.0 < means[1] && means[1] + 40.0 < means[2],
            "{means:?}"
        );
    }
    ok(&f.savl(&["upscale", "a.png", "-s", "2", "-f", "gif"]));
    let (n, size, _) = frames_of(&f.path("a_x2.gif"));
    assert_eq!((n, size), (3, (16, 12)));
}

#[test]
fn every_frame_of_a_gif_is_upscaled_and_stills_cannot_hold_animations() {
    let f = Fixture::new();
    write_gif(&f.path("g.gif"));
    ok(&f.savl(&["upscale", "g.gif", "-f", "gif"]));
    let (n, size, delays) = frames_of(&f.path("g_x4.gif"));
    assert_eq!((n, size), (4, (40, 32)));
    assert!(delays.iter().all(|(a, b)| a / b == 70), "{delays:?}");
    // Default PNG: an APNG of every frame, whose frames differ like the input's.
    ok(&f.savl(&["upscale", "g.gif"]));
    let (n, _, _) = frames_of(&f.path("g_x4.png"));
    assert_eq!(n, 4);
    // JPEG and WebP hold no animation: a clear error naming the file, nothing written.
    for fmt in ["jpg", "webp"] {
        let o = f.savl(&["upscale", "g.gif", "-f", fmt]);
        exits(&o, 1);
        let err = stderr(&o);
        assert_mentions(&err, &["g.gif", "animated", "-f gif"]);
        assert!(!f.path(&format!("g_x4.{fmt}")).exists());
    }
    // GIF inputs are found in folders.
    std::fs::create_dir_all(f.path("d")).unwrap();
    std::fs::copy(f.path("g.gif"), f.path("d/g.gif")).unwrap();
    ok(&f.savl(&["upscale", "d", "-f", "gif"]));
    assert!(f.path("d/g_x4.gif").is_file());
}

/// An animated WebP built by hand: VP8X + ANIM + one ANMF per frame, each frame a lossless VP8L
/// bitstream from `image`'s (still) WebP encoder.
fn write_animated_webp(path: &Path, frames: &[image::RgbImage], ms: u32) {
    fn chunk(tag: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = tag.to_vec();
        c.extend((data.len() as u32).to_le_bytes());
        c.extend(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let (w, h) = frames[0].dimensions();
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend(u24(w - 1));
    vp8x.extend(u24(h - 1));
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for f in frames {
        let mut still = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut still)
            .encode(f.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        let mut anmf = [u24(0), u24(0), u24(w - 1), u24(h - 1), u24(ms)].concat();
        anmf.push(0b10); // no blending, no disposal
        anmf.extend(&still[12..]); // the VP8L chunk
        body.extend(chunk(b"ANMF", &anmf));
    }
    let mut file = b"RIFF".to_vec();
    file.extend((body.len() as u32).to_le_bytes());
    file.extend(body);
    std::fs::write(path, file).unwrap();
}

#[test]
fn every_frame_of_an_animated_webp_is_upscaled_into_an_apng() {
    let f = Fixture::new();
    let frames: Vec<image::RgbImage> = (0..3u8)
        .map(|i| image::RgbImage::from_pixel(6, 4, image::Rgb([i * 100, 50, 200 - i * 60])))
        .collect();
    write_animated_webp(&f.path("w.webp"), &frames, 120);
    // The file is a real animated WebP for `image`'s decoder.
    {
        use image::AnimationDecoder;
        let file = std::io::BufReader::new(std::fs::File::open(f.path("w.webp")).unwrap());
        let n = image::codecs::webp::WebPDecoder::new(file)
            .unwrap()
            .into_frames()
            .count();
        assert_eq!(n, 3);
    }
    let o = f.savl(&["upscale", "w.webp"]);
    ok(&o);
    assert!(stderr(&o).contains("3 frames"), "{}", stderr(&o));
    let (n, size, delays) = frames_of(&f.path("w_x4.png"));
    assert_eq!((n, size), (3, (24, 16)));
    assert!(delays.iter().all(|(a, b)| a / b == 120), "{delays:?}");
    let o = f.savl(&["upscale", "w.webp", "-f", "webp"]);
    exits(&o, 1);
    assert!(
        stderr(&o).contains("cannot hold an animation"),
        "{}",
        stderr(&o)
    );
}

/// Transparency into PNG streams (alpha pass to a temporary file, then colour); into a format
/// that holds the whole picture (WebP here), or beyond what the fill needs, it counts against
/// --limit-mem and fails, named, before any work. A fully opaque alpha channel is dropped.
#[test]
fn transparency_counts_against_the_memory_limit_and_opaque_alpha_streams() {
    let f = Fixture::new();
    let rgba = |side: u32, a: u8| {
        DynamicImage::ImageRgba8(image::RgbaImage::from_fn(side, side, |x, _| {
            image::Rgba([(x % 256) as u8, 90, 40, if x < side / 2 { 255 } else { a }])
        }))
    };
    f.save("t.png", &rgba(200, 0));
    f.save("o.png", &rgba(200, 255));
    f.save("big.png", &rgba(400, 0));
    // Streamed: fits 4 MB.
    ok(&f.savl(&["upscale", "t.png", "--limit-mem", "4"]));
    let out = open(&f.path("t_x4.png"));
    assert_eq!(out.color(), ColorType::Rgba8);
    let out = out.to_rgba8();
    assert_eq!(out.get_pixel(10, 10)[3], 255);
    assert_eq!(out.get_pixel(790, 10)[3], 0);
    // The same into WebP is held whole: over 4 MB.
    for (args, name) in [
        (
            vec!["upscale", "t.png", "-f", "webp", "--limit-mem", "4"],
            "t.png",
        ),
        (vec!["upscale", "big.png", "--limit-mem", "4"], "big.png"),
    ] {
        let o = f.savl(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_mentions(&err, &[name, "with transparency", "--limit-mem"]);
    }
    assert!(!f.path("t_x4.webp").exists() && !f.path("big_x4.png").exists());
    ok(&f.savl(&["upscale", "o.png", "--limit-mem", "4"]));
    assert_eq!(open(&f.path("o_x4.png")).color(), ColorType::Rgb8);
    ok(&f.savl(&["upscale", "t.png", "-f", "webp", "--limit-mem", "40"]));
    assert_eq!(open(&f.path("t_x4.webp")).color(), ColorType::Rgba8);
}

/// The streamed RGBA PNG and the whole-picture RGBA WebP (lossless) of one transparent picture
/// are the same pixels, at the model's factor and at ×3.
#[test]
fn streamed_and_whole_transparent_outputs_agree() {
    let f = Fixture::new();
    f.save(
        "t.png",
        &DynamicImage::ImageRgba8(image::RgbaImage::from_fn(40, 30, |x, y| {
            let a = if (x as i32 - 20).pow(2) + (y as i32 - 15).pow(2) < 120 {
                255
            } else if x < 8 {
                128
            } else {
                0
            };
            image::Rgba([(x * 6) as u8, (y * 8) as u8, 200, a])
        })),
    );
    for scale in ["4", "3"] {
        let png = format!("s{scale}.png");
        let webp = format!("s{scale}.webp");
        ok(&f.savl(&["upscale", "t.png", "-s", scale, "-o", &png]));
        ok(&f.savl(&["upscale", "t.png", "-s", scale, "-o", &webp]));
        let (a, b) = (
            open(&f.path(&png)).to_rgba8(),
            open(&f.path(&webp)).to_rgba8(),
        );
        assert_eq!(a.dimensions(), b.dimensions());
        assert!(a == b, "×{scale}: the streamed and whole outputs differ");
    }
}
