//! `savl upscale --raw WxH`: rgb24 frames on stdin to ×4 rgb24 frames on stdout.
//!
//! ```text
//! ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - \
//!   | savl upscale --raw 640x360 \
//!   | ffmpeg -f rawvideo -pix_fmt rgb24 -s 2560x1440 -r 30 -i - out.mp4
//! ```
//!
//! Each output frame is written band by band as the runtime finishes its rows, and flushed when
//! complete, so memory is one input frame plus one band. The input must end on a frame boundary.

use std::io::{BufWriter, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use image::RgbImage;
use savl_cli::io::{DecodeLimits, RawFrameReader};

use super::model::ModelArgs;
use super::progress;
use super::{Outcome, Verbosity};

/// Runs raw mode on stdin/stdout.
pub fn run(
    (w, h): (u32, u32),
    model: &ModelArgs,
    limits: DecodeLimits,
    limit_mem: u64,
    verbosity: Verbosity,
) -> Result<Outcome> {
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        bail!(
            "--raw {w}x{h} is over the size limit of {:.1} MP (raise --limit-mp)",
            limits.max_pixels as f64 / 1e6
        );
    }
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("--raw writes binary frames to stdout: pipe it to a program or a file");
    }
    let upscaler = model.build(limits.max_pixels, verbosity)?;
    let need = (u64::from(w) * u64::from(h) * 3).saturating_add(upscaler.band_bytes(w, h));
    check_memory("--raw", (w, h), "a frame", need, limit_mem)?;
    let s = upscaler.scale() as u32;
    if verbosity >= Verbosity::Verbose {
        note!(
            "raw: {w}x{h} rgb24 in, {}x{} rgb24 out",
            u64::from(w) * u64::from(s),
            u64::from(h) * u64::from(s)
        );
    }
    let mut input = RawFrameReader::new(std::io::stdin().lock(), w, h)?;
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut count = progress::FrameCount::start(verbosity);
    let mut buf = Vec::new();
    loop {
        let more = input.read_frame(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                anyhow::anyhow!("{e}")
            } else {
                anyhow::Error::new(e).context("cannot read stdin")
            }
        })?;
        if !more {
            break;
        }
        let img = RgbImage::from_raw(w, h, buf).context("frame buffer size")?;
        upscaler
            .upscale_rows(&img, |_, rows| {
                out.write_all(rows).map_err(|source| savl::Error::Io {
                    path: "<stdout>".into(),
                    source,
                })
            })
            .with_context(|| format!("frame {}", count.frames))?;
        out.flush().context("cannot write stdout")?;
        buf = img.into_raw();
        count.inc();
    }
    count.finish("raw");
    Ok(Outcome::Ok)
}

/// Refuses a frame pipe (`flag` `--raw` or `--y4m`, frames of `w × h`) whose memory `need` in
/// bytes, for `what` and one band of output rows, is over `--limit-mem`.
pub(super) fn check_memory(
    flag: &str,
    (w, h): (u32, u32),
    what: &str,
    need: u64,
    limit_mem: u64,
) -> Result<()> {
    if need > limit_mem {
        bail!(
            "{flag} {w}x{h} needs {:.0} MB for {what} and one band of output rows, over \
             --limit-mem {:.0} MB",
            need as f64 / 1e6,
            limit_mem as f64 / 1e6
        );
    }
    Ok(())
}
