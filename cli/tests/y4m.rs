//! `savl upscale --y4m` against the `--raw` pipe through ffmpeg, and `savl::yuv` against
//! ffmpeg's own rgb24 ↔ yuv444p conversion (an independent implementation). Needs ffmpeg on PATH
//! (CI installs it: `.ci/run`).
#![cfg(unix)]

use savl::yuv::{self, Colour, Matrix, Range, Subsampling, YuvImage, YuvImageMut};

mod support;
use support::{ok, stderr, Fixture};

impl Fixture {
    /// A 32×24, 6-frame testsrc2 clip, lossless (ffv1) in `pix_fmt`.
    fn clip(&self, name: &str, pix_fmt: &str) {
        self.ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=12",
            "-frames:v",
            "6",
            "-c:v",
            "ffv1",
            "-pix_fmt",
            pix_fmt,
            "-y",
            name,
        ]);
    }

    /// The ×4 rgb24 frames of `clip` through `--raw`.
    fn raw_path(&self, clip: &str) -> Vec<u8> {
        let rgb = self.ffmpeg(&["-i", clip, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        let out = self.savl_with_stdin(&["upscale", "--raw", "32x24"], &rgb);
        ok(&out);
        out.stdout
    }

    /// The ×4 frames of `clip` through `--y4m` (`extra` flags), decoded to rgb24 by ffmpeg;
    /// with the y4m header savl wrote.
    fn y4m_path(&self, y4m_in: &[u8], extra: &[&str]) -> (Vec<u8>, String) {
        let out = self.savl_with_stdin(&[&["upscale", "--y4m"][..], extra].concat(), y4m_in);
        ok(&out);
        let header = String::from_utf8_lossy(
            &out.stdout[..out.stdout.iter().position(|&b| b == b'\n').unwrap()],
        )
        .into_owned();
        (self.y4m_to_rgb24(&out.stdout), header)
    }

    /// A 6-frame `pix_fmt` clip through the `--raw` path and, as YUV4MPEG2, through `--y4m`:
    /// (the raw path's frames, the clip as y4m, the y4m path's frames, its header).
    fn both_paths(&self, pix_fmt: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>, String) {
        self.clip("clip.mkv", pix_fmt);
        let raw = self.raw_path("clip.mkv");
        let y4m = self.ffmpeg(&["-i", "clip.mkv", "-f", "yuv4mpegpipe", "-"]);
        let (ours, header) = self.y4m_path(&y4m, &[]);
        (raw, y4m, ours, header)
    }

    /// A YUV4MPEG2 stream decoded to packed rgb24 frames by ffmpeg.
    fn y4m_to_rgb24(&self, y4m: &[u8]) -> Vec<u8> {
        let args = [
            "-f",
            "yuv4mpegpipe",
            "-i",
            "-",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ];
        self.ffmpeg_with_stdin(&args, y4m)
    }
}

/// (largest, mean) absolute difference.
fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let mut worst = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        worst = worst.max(d);
        sum += u64::from(d);
    }
    (worst, sum as f64 / a.len() as f64)
}

#[test]
fn y4m_444_round_trip_equals_the_raw_path_within_the_conversion_tolerance() {
    let f = Fixture::needing(&["ffmpeg"]);
    let (raw, _, ours, header) = f.both_paths("yuv444p");
    assert!(header.starts_with("YUV4MPEG2 W128 H96 F12:1 "), "{header}");
    assert!(header.contains(" C444"), "{header}");
    assert_eq!(ours.len(), 128 * 96 * 3 * 6);
    let (worst, mean) = diff(&ours, &raw);
    eprintln!("4:4:4 y4m vs raw: max {worst}, mean {mean:.3}");
    // The stated tolerance of the y4m path against the raw one: two more 8-bit Y'CbCr
    // quantisations (input and output), through the model: at most 8 levels, 1 on average.
    assert!(worst <= 8 && mean <= 1.0, "max {worst}, mean {mean}");
}

#[test]
fn y4m_420_round_trip_equals_the_raw_path_within_the_chroma_tolerance() {
    let f = Fixture::needing(&["ffmpeg"]);
    let (raw, y4m, ours, header) = f.both_paths("yuv420p");
    assert!(header.contains(" C420jpeg"), "{header}");
    // The raw path's frames with their chroma halved by ffmpeg (rgb24 → yuv420p → rgb24), as
    // the 4:2:0 output's is.
    let raw420 = f.convert_rgb24(&raw, "128x96", "yuv420p", "yuv4mpegpipe");
    let raw420 = f.y4m_to_rgb24(&raw420);
    let (worst, mean) = diff(&ours, &raw420);
    eprintln!("4:2:0 y4m vs raw then 4:2:0: max {worst}, mean {mean:.3}");
    assert!(mean <= 2.5, "max {worst}, mean {mean}");
    let (worst_full, mean_full) = diff(&ours, &raw);
    eprintln!("4:2:0 y4m vs raw: max {worst_full}, mean {mean_full:.3}");
    // 4:4:4 out of a 4:2:0 input keeps the output's colour resolution: the input's chroma is
    // read as ffmpeg reads it for the raw path.
    let (ours444, header) = f.y4m_path(&y4m, &["--y4m-out", "444"]);
    assert!(header.contains(" C444"), "{header}");
    let (worst444, mean444) = diff(&ours444, &raw);
    eprintln!("4:2:0 in, 4:4:4 out vs raw: max {worst444}, mean {mean444:.3}");
    assert!(
        worst444 <= 8 && mean444 <= 1.0,
        "max {worst444}, mean {mean444}"
    );
}

#[test]
fn the_header_range_is_honoured_and_passed_on() {
    let f = Fixture::needing(&["ffmpeg"]);
    f.clip("clip.mkv", "yuv444p");
    let raw = f.raw_path("clip.mkv");
    let full = f.ffmpeg(&[
        "-i",
        "clip.mkv",
        "-vf",
        "scale=out_range=pc",
        "-color_range",
        "pc",
        "-pix_fmt",
        "yuv444p",
        "-f",
        "yuv4mpegpipe",
        "-",
    ]);
    let first_line = String::from_utf8_lossy(&full[..80]).into_owned();
    assert!(first_line.contains("XCOLORRANGE=FULL"), "{first_line}");
    let (ours, header) = f.y4m_path(&full, &[]);
    assert!(header.ends_with(" XCOLORRANGE=FULL"), "{header}");
    let (worst, mean) = diff(&ours, &raw);
    eprintln!("full range y4m vs raw: max {worst}, mean {mean:.3}");
    assert!(worst <= 8 && mean <= 1.0, "max {worst}, mean {mean}");

    // The same stream without its XCOLORRANGE is read as limited range: visibly wrong, so the
    // header was what made it right.
    let tag = b" XCOLORRANGE=FULL";
    let at = full.windows(tag.len()).position(|w| w == tag).unwrap();
    let stripped = [&full[..at], &full[at + tag.len()..]].concat();
    assert_eq!(stripped.len(), full.len() - " XCOLORRANGE=FULL".len());
    let (wrong, header) = f.y4m_path(&stripped, &[]);
    assert!(!header.contains("XCOLORRANGE"), "{header}");
    let (_, wrong_mean) = diff(&wrong, &raw);
    assert!(wrong_mean > 4.0, "mean {wrong_mean}");
    // … and --range full, for such a stream, fixes it.
    let (fixed, header) = f.y4m_path(&stripped, &["--range", "full"]);
    assert!(header.ends_with(" XCOLORRANGE=FULL"), "{header}");
    let (_, fixed_mean) = diff(&fixed, &raw);
    assert!(fixed_mean <= 1.0, "mean {fixed_mean}");
}

/// ffmpeg's rgb24 → yuv444p and back, with exact rounding, for one matrix and range.
fn ffmpeg_convert(
    f: &Fixture,
    rgb: &[u8],
    w: u32,
    h: u32,
    m: Matrix,
    r: Range,
) -> (Vec<u8>, Vec<u8>) {
    let size = format!("{w}x{h}");
    let matrix = m.to_string();
    let range = if r == Range::Full { "pc" } else { "tv" };
    // One exact swscale conversion of packed frames, `from` → `to`, with `scale` filter options.
    let convert = |from: &str, to: &str, scale: &str, input: &[u8]| {
        let flags = "accurate_rnd+bitexact+full_chroma_int";
        let filter = format!("scale={scale}");
        let input_args = ["-f", "rawvideo", "-pix_fmt", from, "-s", &size, "-i", "-"];
        let output_args = ["-pix_fmt", to, "-f", "rawvideo", "-"];
        let args = [
            &input_args[..],
            &["-sws_flags", flags, "-vf", &filter],
            &output_args,
        ]
        .concat();
        f.ffmpeg_with_stdin(&args, input)
    };
    let out_opts = format!("out_color_matrix={matrix}:out_range={range}");
    let to_yuv = convert("rgb24", "yuv444p", &out_opts, rgb);
    let in_opts = format!("in_color_matrix={matrix}:in_range={range}");
    let to_rgb = convert("yuv444p", "rgb24", &in_opts, &to_yuv);
    (to_yuv, to_rgb)
}

#[test]
fn conversions_agree_with_ffmpeg_for_both_matrices_and_ranges() {
    let f = Fixture::needing(&["ffmpeg"]);
    let (w, h) = (64u32, 48u32);
    // Every byte value in every channel, in a scrambled order.
    let rgb: Vec<u8> = (0..w * h * 3)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for m in [Matrix::Bt601, Matrix::Bt709] {
        for r in [Range::Limited, Range::Full] {
            let c = Colour {
                matrix: m,
                range: r,
            };
            let (their_yuv, their_rgb) = ffmpeg_convert(&f, &rgb, w, h, m, r);
            let mut our_yuv = vec![0u8; Subsampling::Yuv444.frame_len(w, h)];
            yuv::rgb_to_yuv(
                &rgb,
                3 * w as usize,
                c,
                &mut YuvImageMut::packed(&mut our_yuv, w, h, Subsampling::Yuv444).unwrap(),
            )
            .unwrap();
            let (worst, mean) = diff(&our_yuv, &their_yuv);
            eprintln!("{m} {r} rgb->yuv vs ffmpeg: max {worst}, mean {mean:.4}");
            assert!(worst <= 1, "{m} {r} rgb->yuv: max {worst}");
            // From ffmpeg's Y'CbCr back to RGB.
            let mut our_rgb = vec![0u8; rgb.len()];
            let img = YuvImage::packed(&their_yuv, w, h, Subsampling::Yuv444).unwrap();
            yuv::yuv_to_rgb(&img, c, &mut our_rgb, 3 * w as usize).unwrap();
            let (worst, mean) = diff(&our_rgb, &their_rgb);
            eprintln!("{m} {r} yuv->rgb vs ffmpeg: max {worst}, mean {mean:.4}");
            assert!(worst <= 1, "{m} {r} yuv->rgb: max {worst}");
        }
    }
}

#[test]
fn bad_y4m_input_is_a_clear_error() {
    let f = Fixture::needing(&["ffmpeg"]);
    let cases: [(&[u8], &str); 4] = [
        (b"not a stream\n", "stdin: not a YUV4MPEG2 stream"),
        (
            b"YUV4MPEG2 W4 H4 F25:1 C420p10\nFRAME\n",
            "C420p10 is not supported",
        ),
        (
            b"YUV4MPEG2 W4 H4 F25:1\nFRAME\n0123",
            "stdin: the stream ended inside frame 0: 4 of 24 bytes",
        ),
        (b"", "stdin: empty input"),
    ];
    for (input, want) in cases {
        let out = f.savl_with_stdin(&["upscale", "--y4m"], input);
        assert_eq!(out.status.code(), Some(2), "{want}");
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
    }
    // Flags that only make sense with --y4m need it.
    let out = f.savl_with_stdin(&["upscale", "x.png", "--y4m-out", "444"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--y4m"), "{}", stderr(&out));
}
