//! `savl upscale --y4m`: a YUV4MPEG2 stream on stdin to a ×4 YUV4MPEG2 stream on stdout.
//!
//! ```text
//! ffmpeg -i in.mp4 -f yuv4mpegpipe - | savl upscale --y4m | ffmpeg -i - -c:v libx264 out.mp4
//! ```
//!
//! The stream header gives the frame size, rate, interlacing, pixel aspect and chroma, so there
//! is no size to type. Read: 8-bit 4:2:0 (`C420jpeg`, `C420`, `C420mpeg2`, `C420paldv`; no `C`
//! means `C420jpeg`) and 4:4:4 (`C444`). Written: 4:2:0 as `C420jpeg` (centre-sited chroma) or
//! 4:4:4 as `C444`, by `--y4m-out` (default: the input's). The range is the header's
//! `XCOLORRANGE=FULL|LIMITED` (ffmpeg's extension), else `--range` (default limited); y4m has no
//! field for the matrix, so it is `--matrix` (default BT.601, as ffmpeg assumes for y4m). The
//! output carries `XCOLORRANGE` when the input did or `--range` was given. Conversions follow
//! [`savl::yuv`]. Frame size, rate, interlacing and aspect are passed on (size ×4); other `X`
//! parameters are dropped (they may describe the input's chroma).

use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use image::RgbImage;
use savl::yuv::{self, Colour, Matrix, Range, Subsampling, YuvImage, YuvImageMut};
use savl_cli::io::DecodeLimits;

use super::model::ModelArgs;
use super::progress;
use super::{Outcome, Verbosity};

/// The y4m flags of `savl upscale`.
#[derive(Debug, clap::Args)]
pub struct Y4mArgs {
    /// YUV4MPEG2 video mode: read a y4m stream (4:2:0 or 4:4:4, 8-bit) from stdin, write the ×4
    /// y4m stream to stdout. The header gives the size and frame rate; see docs/cli.md.
    #[arg(long, conflicts_with_all = ["inputs", "output", "out_dir", "format", "force", "raw"])]
    pub y4m: bool,

    /// Chroma of the --y4m output: 420 or 444 [default: the input's].
    #[arg(long, value_name = "CHROMA", value_parser = parse_chroma)]
    pub y4m_out: Option<Subsampling>,

    /// Colour matrix of the --y4m stream, bt601 or bt709 (y4m has no field for it) [default:
    /// bt601].
    #[arg(long, value_name = "M", value_parser = parse_matrix)]
    pub matrix: Option<Matrix>,

    /// Range of a --y4m stream whose header has no XCOLORRANGE: limited or full [default:
    /// limited]. A header's XCOLORRANGE wins.
    #[arg(long, value_name = "R", value_parser = parse_range)]
    pub range: Option<Range>,
}

impl Y4mArgs {
    /// An error naming the first y4m-only flag given without `--y4m`.
    pub fn refuse_without_y4m(&self) -> Result<()> {
        let given = [
            ("--y4m-out", self.y4m_out.is_some()),
            ("--matrix", self.matrix.is_some()),
            ("--range", self.range.is_some()),
        ];
        match given.iter().find(|(_, g)| *g) {
            Some((flag, _)) if !self.y4m => bail!("{flag} applies to --y4m streams only"),
            _ => Ok(()),
        }
    }
}

fn parse_chroma(s: &str) -> Result<Subsampling, String> {
    match s {
        "420" | "4:2:0" | "yuv420p" => Ok(Subsampling::Yuv420),
        "444" | "4:4:4" | "yuv444p" => Ok(Subsampling::Yuv444),
        _ => Err(format!("expected 420 or 444, got {s:?}")),
    }
}

fn parse_matrix(s: &str) -> Result<Matrix, String> {
    s.parse()
}

fn parse_range(s: &str) -> Result<Range, String> {
    s.parse()
}

/// Longest header or frame line accepted, in bytes.
const MAX_LINE: u64 = 4096;

/// A YUV4MPEG2 stream header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// The `C` tag as written (`420jpeg`), if present.
    pub chroma_tag: Option<String>,
    /// Chroma of the frames (from the `C` tag; 4:2:0 without one).
    pub chroma: Subsampling,
    /// Frame rate `F` as written (`30000:1001`), if present.
    pub rate: Option<String>,
    /// Interlacing `I` (`p`, `t`, `b`, `m`), if present.
    pub interlace: Option<String>,
    /// Pixel aspect `A` as written, if present.
    pub aspect: Option<String>,
    /// `XCOLORRANGE`, if present.
    pub range: Option<Range>,
}

impl Header {
    /// Parses a header line (without its newline). `name` names the stream in errors.
    pub fn parse(line: &[u8], name: &str) -> Result<Header> {
        let line = std::str::from_utf8(line)
            .map_err(|_| anyhow::anyhow!("{name}: the y4m header is not ASCII text"))?;
        let mut tokens = line.split(' ').filter(|t| !t.is_empty());
        if tokens.next() != Some("YUV4MPEG2") {
            bail!(
                "{name}: not a YUV4MPEG2 stream (it must start with \"YUV4MPEG2 \"; make one \
                 with ffmpeg -f yuv4mpegpipe)"
            );
        }
        let (mut width, mut height) = (None, None);
        let mut h = Header {
            width: 0,
            height: 0,
            rate: None,
            interlace: None,
            aspect: None,
            chroma: Subsampling::Yuv420,
            chroma_tag: None,
            range: None,
        };
        for t in tokens {
            let (tag, value) = t.split_at(1);
            let number = |what: &str| -> Result<u32> {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| anyhow::anyhow!("{name}: bad y4m {what} {t:?}"))
            };
            match tag {
                "W" => width = Some(number("width")?),
                "H" => height = Some(number("height")?),
                "F" => h.rate = Some(ratio(value).map_err(|_| bad(name, "frame rate", t))?),
                "A" => h.aspect = Some(ratio(value).map_err(|_| bad(name, "pixel aspect", t))?),
                "I" => h.interlace = Some(value.to_string()),
                "C" => {
                    h.chroma = match value {
                        "420jpeg" | "420" | "420mpeg2" | "420paldv" => Subsampling::Yuv420,
                        "444" => Subsampling::Yuv444,
                        other => bail!(
                            "{name}: y4m colour space C{other} is not supported: savl reads 8-bit \
                             4:2:0 (C420jpeg, C420, C420mpeg2, C420paldv) and 4:4:4 (C444); \
                             convert with ffmpeg -pix_fmt yuv420p"
                        ),
                    };
                    h.chroma_tag = Some(value.to_string());
                }
                "X" => {
                    if let Some(r) = value.strip_prefix("COLORRANGE=") {
                        h.range = Some(match r.to_ascii_uppercase().as_str() {
                            "FULL" => Range::Full,
                            "LIMITED" => Range::Limited,
                            _ => bail!(
                                "{name}: bad y4m {t:?} (expected XCOLORRANGE=FULL or LIMITED)"
                            ),
                        });
                    }
                }
                _ => bail!("{name}: unknown y4m header field {t:?}"),
            }
        }
        h.width = width.ok_or_else(|| anyhow::anyhow!("{name}: the y4m header has no width W"))?;
        h.height =
            height.ok_or_else(|| anyhow::anyhow!("{name}: the y4m header has no height H"))?;
        Ok(h)
    }

    /// Bytes of one frame's planes.
    pub fn frame_len(&self) -> usize {
        self.chroma.frame_len(self.width, self.height)
    }

    /// The header line (with its newline) of the ×`scale` stream with `chroma`, carrying `range`
    /// as `XCOLORRANGE` when given.
    pub fn scaled(&self, scale: u32, chroma: Subsampling, range: Option<Range>) -> Result<String> {
        let (w, h) = (
            self.width.checked_mul(scale).context("output too wide")?,
            self.height.checked_mul(scale).context("output too tall")?,
        );
        let mut line = format!("YUV4MPEG2 W{w} H{h}");
        if let Some(f) = &self.rate {
            line += &format!(" F{f}");
        }
        if let Some(i) = &self.interlace {
            line += &format!(" I{i}");
        }
        if let Some(a) = &self.aspect {
            line += &format!(" A{a}");
        }
        line += match chroma {
            Subsampling::Yuv420 => " C420jpeg",
            Subsampling::Yuv444 => " C444",
        };
        match range {
            Some(Range::Full) => line += " XCOLORRANGE=FULL",
            Some(Range::Limited) => line += " XCOLORRANGE=LIMITED",
            None => {}
        }
        line.push('\n');
        Ok(line)
    }
}

fn bad(name: &str, what: &str, token: &str) -> anyhow::Error {
    anyhow::anyhow!("{name}: bad y4m {what} {token:?} (expected N:D)")
}

/// Checks `N:D` and returns it as written.
fn ratio(value: &str) -> Result<String, ()> {
    let (n, d) = value.split_once(':').ok_or(())?;
    n.parse::<u32>().map_err(|_| ())?;
    d.parse::<u32>().map_err(|_| ())?;
    Ok(value.to_string())
}

/// Reads one line of at most [`MAX_LINE`] bytes without its newline; `None` at a clean end of
/// the stream.
fn read_line<R: BufRead>(input: &mut R, what: &str, name: &str) -> Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = input
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .with_context(|| format!("cannot read {name}"))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if n as u64 == MAX_LINE {
            bail!("{name}: the y4m {what} is longer than {MAX_LINE} bytes");
        }
        bail!("{name}: the stream ended inside the y4m {what}");
    }
    line.pop();
    Ok(Some(line))
}

/// Reads y4m frames: the header, then each frame's planes.
#[derive(Debug)]
pub struct Reader<R> {
    input: R,
    name: String,
    header: Header,
    frames: u64,
}

impl<R: BufRead> Reader<R> {
    /// Reads and parses the stream header. `name` names the stream in errors (`stdin`).
    pub fn new(mut input: R, name: &str) -> Result<Self> {
        let line = read_line(&mut input, "stream header", name)?
            .ok_or_else(|| anyhow::anyhow!("{name}: empty input (expected a y4m stream)"))?;
        let header = Header::parse(&line, name)?;
        Ok(Reader {
            input,
            name: name.to_string(),
            header,
            frames: 0,
        })
    }

    /// The stream header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads the next frame's planes into `buf`; `Ok(false)` at the end of the stream.
    ///
    /// # Errors
    /// A frame that does not start with `FRAME`, or a stream that ends inside a frame, names
    /// the frame.
    pub fn read_frame(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let what = format!("header of frame {}", self.frames);
        let Some(line) = read_line(&mut self.input, &what, &self.name)? else {
            return Ok(false);
        };
        if !(line == b"FRAME" || line.starts_with(b"FRAME ")) {
            bail!(
                "{}: frame {} does not start with FRAME (is the header's size right?)",
                self.name,
                self.frames
            );
        }
        buf.resize(self.header.frame_len(), 0);
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => bail!(
                    "{}: the stream ended inside frame {}: {got} of {} bytes",
                    self.name,
                    self.frames,
                    buf.len()
                ),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.name)),
            }
        }
        self.frames += 1;
        Ok(true)
    }
}

/// Runs y4m mode on stdin/stdout.
pub fn run(
    args: &Y4mArgs,
    model: &ModelArgs,
    limits: DecodeLimits,
    limit_mem: u64,
    verbosity: Verbosity,
) -> Result<Outcome> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("--y4m writes a video stream to stdout: pipe it to a program or a file");
    }
    let mut input = Reader::new(
        BufReader::with_capacity(1 << 20, std::io::stdin().lock()),
        "stdin",
    )?;
    let header = input.header().clone();
    let (w, h) = (header.width, header.height);
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        bail!(
            "stdin: a {w}x{h} y4m stream is over the size limit of {:.1} MP (raise --limit-mp)",
            limits.max_pixels as f64 / 1e6
        );
    }
    let upscaler = model.build(limits.max_pixels, verbosity)?;
    let s = upscaler.scale() as u32;
    let (ow, oh) = (w * s, h * s);
    let out_chroma = args.y4m_out.unwrap_or(header.chroma);
    // Input planes and RGB, the RGB output frame and its planes, one band.
    let need = (header.frame_len() as u64 + 3 * u64::from(w) * u64::from(h))
        .saturating_add(3 * u64::from(ow) * u64::from(oh))
        .saturating_add(out_chroma.frame_len(ow, oh) as u64)
        .saturating_add(upscaler.band_bytes(w, h));
    super::raw::check_memory("--y4m", (w, h), "the frames", need, limit_mem)?;
    let colour = Colour {
        matrix: args.matrix.unwrap_or_default(),
        range: header.range.or(args.range).unwrap_or_default(),
    };
    let out_range = header.range.or(args.range);
    if verbosity >= Verbosity::Verbose {
        note!(
            "y4m: {w}x{h} {} in, {ow}x{oh} {} out, {} {} range{}",
            chroma_name(header.chroma),
            chroma_name(out_chroma),
            colour.matrix,
            colour.range,
            if header.range.is_some() {
                " (from the header)"
            } else {
                ""
            }
        );
    }
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let write_err = |e: std::io::Error| anyhow::Error::new(e).context("cannot write stdout");
    out.write_all(header.scaled(s, out_chroma, out_range)?.as_bytes())
        .map_err(write_err)?;
    let mut count = progress::FrameCount::start(verbosity);
    let mut planes = Vec::new();
    let mut rgb = vec![0u8; 3 * w as usize * h as usize];
    let mut hr: Vec<u8> = Vec::new();
    let mut yuv_out = vec![0u8; out_chroma.frame_len(ow, oh)];
    while input.read_frame(&mut planes)? {
        let src = YuvImage::packed(&planes, w, h, header.chroma)?;
        yuv::yuv_to_rgb(&src, colour, &mut rgb, 3 * w as usize)?;
        let img = RgbImage::from_raw(w, h, std::mem::take(&mut rgb)).context("frame size")?;
        hr.clear();
        upscaler
            .upscale_rows(&img, |_, rows| {
                hr.extend_from_slice(rows);
                Ok(())
            })
            .with_context(|| format!("frame {}", count.frames))?;
        rgb = img.into_raw();
        let mut dst = YuvImageMut::packed(&mut yuv_out, ow, oh, out_chroma)?;
        yuv::rgb_to_yuv(&hr, 3 * ow as usize, colour, &mut dst)?;
        out.write_all(b"FRAME\n").map_err(write_err)?;
        out.write_all(&yuv_out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        count.inc();
    }
    count.finish("y4m");
    Ok(Outcome::Ok)
}

fn chroma_name(c: Subsampling) -> &'static str {
    match c {
        Subsampling::Yuv420 => "4:2:0",
        Subsampling::Yuv444 => "4:4:4",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_headers_parse() {
        let h = Header::parse(
            b"YUV4MPEG2 W320 H180 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=FULL",
            "stdin",
        )
        .unwrap();
        assert_eq!((h.width, h.height), (320, 180));
        assert_eq!(h.rate.as_deref(), Some("30000:1001"));
        assert_eq!(h.chroma, Subsampling::Yuv420);
        assert_eq!(h.range, Some(Range::Full));
        assert_eq!(h.frame_len(), 320 * 180 * 3 / 2);
        assert_eq!(
            h.scaled(4, Subsampling::Yuv444, h.range).unwrap(),
            "YUV4MPEG2 W1280 H720 F30000:1001 Ip A1:1 C444 XCOLORRANGE=FULL\n"
        );
        for c in ["420", "420mpeg2", "420paldv"] {
            let line = format!("YUV4MPEG2 W3 H3 C{c}");
            let h = Header::parse(line.as_bytes(), "stdin").unwrap();
            assert_eq!(h.frame_len(), 9 + 2 * 4);
        }
        let h = Header::parse(b"YUV4MPEG2 W2 H2 C444", "stdin").unwrap();
        assert_eq!(
            (h.chroma, h.range, h.rate),
            (Subsampling::Yuv444, None, None)
        );
    }

    #[test]
    fn bad_headers_say_what_is_wrong() {
        let cases: [(&[u8], &str); 7] = [
            (b"YUV4MPEG W2 H2", "not a YUV4MPEG2 stream"),
            (b"YUV4MPEG2 H2", "no width"),
            (b"YUV4MPEG2 W2 H0", "bad y4m height"),
            (b"YUV4MPEG2 W2 H2 C420p10", "C420p10 is not supported"),
            (b"YUV4MPEG2 W2 H2 Cmono", "Cmono is not supported"),
            (b"YUV4MPEG2 W2 H2 F30", "bad y4m frame rate"),
            (
                b"YUV4MPEG2 W2 H2 XCOLORRANGE=HALF",
                "XCOLORRANGE=FULL or LIMITED",
            ),
        ];
        for (line, want) in cases {
            let e = format!("{:#}", Header::parse(line, "stdin").unwrap_err());
            assert!(e.starts_with("stdin: ") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn frames_are_read_whole_or_the_error_names_the_frame() {
        let mut stream = b"YUV4MPEG2 W2 H2 C420jpeg\n".to_vec();
        stream.extend_from_slice(b"FRAME\n123456FRAME Ixyz\nabcdef");
        let mut r = Reader::new(&stream[..], "stdin").unwrap();
        let mut buf = Vec::new();
        assert!(r.read_frame(&mut buf).unwrap());
        assert_eq!(buf, b"123456");
        assert!(r.read_frame(&mut buf).unwrap());
        assert_eq!(buf, b"abcdef");
        assert!(!r.read_frame(&mut buf).unwrap());

        let mut cut = b"YUV4MPEG2 W2 H2\nFRAME\n1234".to_vec();
        let e = Reader::new(&cut[..], "stdin")
            .unwrap()
            .read_frame(&mut buf)
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("ended inside frame 0: 4 of 6"),
            "{e:#}"
        );
        cut = b"YUV4MPEG2 W2 H2\nFRAME\n123456FRA".to_vec();
        let mut r = Reader::new(&cut[..], "stdin").unwrap();
        assert!(r.read_frame(&mut buf).unwrap());
        let e = r.read_frame(&mut buf).unwrap_err();
        assert!(format!("{e:#}").contains("header of frame 1"), "{e:#}");
        let e = Reader::new(&b""[..], "stdin").unwrap_err();
        assert!(format!("{e:#}").contains("empty input"), "{e:#}");
    }
}
