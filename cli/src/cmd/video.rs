//! `savl video IN OUT`: a video file to its ×4 video, through ffmpeg and ffprobe found on PATH.
//!
//! 1. `ffprobe` reads the first video stream of IN (not a cover picture): size, codec, pixel
//!    format, frame rate, colour tags, start time, and its packet count for the progress bar.
//! 2. One `ffmpeg` decodes it to rgb24 frames on a pipe, every decoded frame once
//!    (`-vsync passthrough`); savl upscales each frame.
//! 3. The frames go, `--segment` frames at a time, to an `ffmpeg` encoder writing
//!    `seg_NNNNNN.nut` in a work folder beside OUT (`.OUT.savl-video/`); a segment is renamed
//!    from `.part` when its encoder has finished, so a finished segment is whole.
//! 4. `ffmpeg`'s concat demuxer joins the segments, and the audio, subtitles, chapters and
//!    metadata of IN are copied beside them (stream copy: audio packets are bit-identical) into
//!    a temporary file in the work folder, renamed to OUT when complete; the work folder is then
//!    removed.
//!
//! Frames are written at IN's frame rate from IN's first video timestamp, so a constant-rate
//! input keeps its frame count, rate and timestamps (a variable-rate input is written at its
//! average rate). A video with a rotation tag is decoded upright (ffmpeg's autorotation) and
//! written upright without the tag. A run killed at any point leaves the work folder;
//! `--resume` checks that it was made for the same input and options, keeps its finished
//! segments, skips their frames in the decoded stream and goes on. Every frame is upscaled alone
//! with the same tile grid, so a resumed run's frames equal an uninterrupted run's.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use savl::Upscaler;
use savl_cli::io::RawFrameReader;

use super::model::ModelArgs;
use super::progress::say;
use super::{Outcome, Verbosity};

/// Upscale a video ×4 with ffmpeg: decode, upscale every frame, encode, copy audio and
/// subtitles.
///
/// Needs `ffmpeg` and `ffprobe` on PATH. OUT's extension picks the container. Without --codec
/// the encoder is IN's codec family (h264 → libx264, hevc → libx265, vp9 → libvpx-vp9, av1 →
/// libsvtav1 or libaom-av1, ffv1, mpeg4, …; libx264 otherwise), with IN's pixel format and
/// colour tags. Work goes to a folder beside OUT (`.OUT.savl-video/`), in segments; a killed run
/// continues with --resume. OUT is written under a temporary name and renamed when complete; it
/// is only replaced with --force, and IN never.
#[derive(Debug, clap::Args)]
pub struct VideoArgs {
    /// Input video (any file ffmpeg reads).
    #[arg(value_name = "IN")]
    input: PathBuf,

    /// Output video; the extension picks the container (.mp4, .mkv, .webm, .mov, …).
    #[arg(value_name = "OUT")]
    output: PathBuf,

    /// Video encoder, an ffmpeg encoder name (libx264, libx265, libvpx-vp9, libsvtav1, ffv1, …)
    /// [default: IN's codec family].
    #[arg(long, value_name = "ENCODER")]
    codec: Option<String>,

    /// Constant rate factor, for libx264, libx265, libvpx-vp9, libvpx, libaom-av1 and libsvtav1
    /// (lower is better and larger) [default: 18 for libx264, 20 for libx265, 30 for the others].
    #[arg(long, value_name = "N")]
    crf: Option<u32>,

    /// Encoder preset, for libx264 and libx265 (ultrafast … veryslow) [default: the encoder's].
    #[arg(long, value_name = "P")]
    preset: Option<String>,

    /// Output pixel format, an ffmpeg name (yuv420p, yuv444p, …) [default: IN's].
    #[arg(long, value_name = "FMT")]
    pix_fmt: Option<String>,

    /// Frames per segment: the unit of --resume (a killed run loses at most one segment's work).
    #[arg(long, value_name = "N", default_value_t = 240,
          value_parser = clap::value_parser!(u32).range(1..))]
    segment: u32,

    /// Continue a killed run from its last finished segment (the work folder beside OUT). It
    /// must have been made for the same input and options; without a work folder, starts anew.
    #[arg(long)]
    resume: bool,

    /// Replace OUT if it exists (IN is never replaced).
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    model: ModelArgs,
}

/// Environment variable of the tests only: the process kills itself (SIGKILL, no clean-up) once
/// this many segments are finished, to test `--resume`.
const KILL_AFTER_ENV: &str = "SAVL_VIDEO_TEST_KILL_AFTER_SEGMENTS";

/// What ffprobe says of the input's video stream.
#[derive(Debug, Clone, Default)]
struct Probe {
    codec: String,
    width: u32,
    height: u32,
    pix_fmt: String,
    /// `N/D` as ffprobe prints it.
    rate: String,
    /// Packets of the stream (`-count_packets`), 0 when unknown.
    frames: u64,
    start_time: Option<f64>,
    color_range: Option<String>,
    color_space: Option<String>,
    color_primaries: Option<String>,
    color_transfer: Option<String>,
}

impl Probe {
    /// `codec WxH pix_fmt`, as the verbose note and the `--resume` fingerprint name the stream.
    fn stream(&self) -> String {
        format!(
            "{} {}x{} {}",
            self.codec, self.width, self.height, self.pix_fmt
        )
    }
}

/// Runs `savl video`.
pub fn run_args(args: VideoArgs, verbosity: Verbosity) -> Result<Outcome> {
    let start = Instant::now();
    let input = &args.input;
    let output = &args.output;
    match std::fs::metadata(input) {
        Ok(m) if m.is_file() => {}
        Ok(_) => bail!("{}: not a regular file", input.display()),
        Err(e) => bail!("{}: {e}", input.display()),
    }
    if input == output || savl_cli::io::is_same_file(input, output) {
        bail!(
            "{}: refusing to overwrite the input {}",
            output.display(),
            input.display()
        );
    }
    match std::fs::symlink_metadata(output) {
        Ok(m) if !m.is_file() => bail!(
            "{}: exists and is not a regular file (savl video writes a new file and renames it)",
            output.display()
        ),
        Ok(_) if !args.force => bail!(
            "{}: already exists (use --force to replace it)",
            output.display()
        ),
        _ => {}
    }
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty())
        .map(str::to_ascii_lowercase)
        .with_context(|| {
            format!(
                "{}: no extension to tell the container (use .mp4, .mkv, .webm, .mov, …)",
                output.display()
            )
        })?;
    let ffmpeg = Tools::find()?;
    // ffprobe, the encoder list, the decoder's start and the model's load overlap.
    let (probe, available, decoder, upscaler) = std::thread::scope(|s| {
        let probe = s.spawn(|| ffmpeg.probe(input, verbosity));
        let available = s.spawn(|| ffmpeg.encoders());
        let decoder = spawn_decoder(&ffmpeg, input, verbosity);
        let upscaler = args.model.build(u64::MAX, verbosity);
        (
            join_thread(probe.join()),
            join_thread(available.join()),
            decoder,
            upscaler,
        )
    });
    let probe = probe?;
    let mut decoder = decoder?;
    let upscaler = upscaler?;
    let available = available?;
    let scale = upscaler.scale() as u32;
    let (ow, oh) = (
        probe.width.checked_mul(scale).context("output too wide")?,
        probe.height.checked_mul(scale).context("output too tall")?,
    );
    let encoder = encoder_args(&args, &probe, &ext, &available, verbosity)?;

    let work = work_folder(output)?;
    let job = fingerprint(&args, &probe, &upscaler, &encoder)?;
    let done_segments = prepare_work(&work, &job, args.resume, output, verbosity)?;
    let skip = u64::from(args.segment) * done_segments as u64;
    if verbosity >= Verbosity::Verbose {
        note!(
            "video: {} at {} fps, {} frames -> {ow}x{oh}, encoder: {}",
            probe.stream(),
            probe.rate,
            probe.frames,
            encoder.join(" ")
        );
    }

    let stdout = decoder.child.stdout.take().context("decoder stdout")?;
    let mut frames_in = RawFrameReader::new(
        BufReader::with_capacity(1 << 20, stdout),
        probe.width,
        probe.height,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;

    let pb = bar(probe.frames, verbosity);
    pb.set_position(skip);
    let mut buf = Vec::new();
    let mut frame: u64 = 0;
    let read = |r: &mut RawFrameReader<_>, buf: &mut Vec<u8>, d: &mut Spawned| -> Result<bool> {
        match r.read_frame(buf) {
            Ok(more) => Ok(more),
            Err(e) => {
                let why = d.finish_error();
                bail!("{}: decoding failed: {e}{why}", input.display())
            }
        }
    };
    // Frames of each finished segment: `--segment` each, except a short last one.
    let mut seg_frames: Vec<u64> = vec![u64::from(args.segment); done_segments];
    while frame < skip {
        if !read(&mut frames_in, &mut buf, &mut decoder)? {
            // All frames were upscaled before the kill (it came while the segments were
            // joined): the last segment is the short one.
            let full = u64::from(args.segment) * (done_segments as u64 - 1);
            if frame <= full {
                bail!(
                    "{}: has {frame} frames, fewer than the {done_segments} finished segments of \
                     {} hold (remove the folder to start over)",
                    input.display(),
                    work.display()
                );
            }
            if let Some(last) = seg_frames.last_mut() {
                *last = frame - full;
            }
            break;
        }
        frame += 1;
    }
    let kill_after: Option<usize> = std::env::var(KILL_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let mut segment = done_segments;
    let mut finished_here = 0usize;
    let mut more = read(&mut frames_in, &mut buf, &mut decoder)?;
    while more {
        let part = work.join(format!("seg_{segment:06}.nut.part"));
        let mut enc = ffmpeg.command();
        enc.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
            .arg(format!("{ow}x{oh}"))
            .args(["-framerate", &probe.rate, "-i", "-"])
            .args(&encoder)
            .args(["-f", "nut", "-y"])
            .arg(&part);
        let mut encoder_proc = Spawned::new(enc, "the encoder", verbosity, false, true)?;
        let stdin = encoder_proc.child.stdin.take().context("encoder stdin")?;
        let mut sink = BufWriter::with_capacity(1 << 20, stdin);
        let mut in_segment = 0u32;
        let result = (|| -> Result<()> {
            while more && in_segment < args.segment {
                let img = RgbImage::from_raw(probe.width, probe.height, std::mem::take(&mut buf))
                    .context("frame buffer size")?;
                upscaler
                    .upscale_rows(&img, |_, rows| {
                        sink.write_all(rows)
                            .map_err(|e| savl::Error::Runtime(format!("the encoder: {e}")))
                    })
                    .with_context(|| format!("frame {frame}"))?;
                buf = img.into_raw();
                // Whole frames reach the encoder at once, as through `--raw`.
                sink.flush()
                    .map_err(|e| anyhow::anyhow!("the encoder: {e}"))?;
                frame += 1;
                in_segment += 1;
                pb.inc(1);
                more = read(&mut frames_in, &mut buf, &mut decoder)?;
            }
            sink.flush()
                .map_err(|e| anyhow::anyhow!("the encoder: {e}"))?;
            Ok(())
        })();
        drop(sink);
        if let Err(e) = result {
            let why = encoder_proc.finish_error();
            return Err(e.context(format!("{}: segment {segment}{why}", output.display())));
        }
        encoder_proc.wait_ok()?;
        let seg = work.join(format!("seg_{segment:06}.nut"));
        std::fs::rename(&part, &seg)
            .with_context(|| format!("cannot rename {} to {}", part.display(), seg.display()))?;
        seg_frames.push(u64::from(in_segment));
        segment += 1;
        finished_here += 1;
        if kill_after == Some(finished_here) {
            kill_self();
        }
    }
    decoder.wait_ok()?;
    pb.finish_and_clear();
    if frame == 0 {
        bail!("{}: no video frames decoded", input.display());
    }
    if probe.frames != 0 && frame != probe.frames && verbosity > Verbosity::Quiet {
        say(
            &pb,
            &format!(
                "savl: note: {} decoded to {frame} frames, its stream has {} packets",
                input.display(),
                probe.frames
            ),
        );
    }

    // Join the segments and copy the other streams of IN.
    let list = concat_list(&seg_frames, &probe.rate)?;
    let list_path = work.join("concat.txt");
    std::fs::write(&list_path, list)
        .with_context(|| format!("cannot write {}", list_path.display()))?;
    let tmp = work.join(format!("out.{ext}"));
    let _ = std::fs::remove_file(&tmp);
    let mut mux = ffmpeg.command();
    if let Some(t) = probe.start_time.filter(|t| t.is_finite() && *t != 0.0) {
        mux.args(["-itsoffset", &format!("{t}")]);
    }
    mux.args(["-f", "concat", "-safe", "0", "-i"])
        .arg(&list_path)
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v", "-map", "1:a?", "-map", "1:s?"])
        .args(["-map_metadata", "1", "-map_chapters", "1", "-c", "copy"]);
    if matches!(ext.as_str(), "mp4" | "m4v" | "mov") {
        mux.args(["-c:s", "mov_text"]);
    }
    mux.arg("-y").arg(&tmp);
    Spawned::new(mux, "the muxer", verbosity, false, false)?.wait_ok()?;
    commit(&tmp, output, args.force)?;
    if let Err(e) = std::fs::remove_dir_all(&work) {
        if verbosity > Verbosity::Quiet {
            note!("savl: warning: cannot remove {}: {e}", work.display());
        }
    }
    if verbosity > Verbosity::Quiet {
        note!(
            "savl: wrote {} ({ow}×{oh}, {frame} frames{}) in {:.1} s",
            output.display(),
            if done_segments > 0 {
                format!(", {} of them from the resumed run", skip.min(frame))
            } else {
                String::new()
            },
            start.elapsed().as_secs_f64()
        );
    }
    Ok(Outcome::Ok)
}

/// The concat demuxer's list: each segment with its exact duration (its frames at `rate`, `N/D`),
/// so that the joined timestamps are those of one stream (the demuxer's own estimate of a
/// file's duration is off by a frame in either direction with some encoders and containers).
/// Durations are in microseconds, cut from the exact running total so that they never drift.
fn concat_list(seg_frames: &[u64], rate: &str) -> Result<String> {
    let (num, den) = rate
        .split_once('/')
        .and_then(|(n, d)| Some((n.parse::<u128>().ok()?, d.parse::<u128>().ok()?)))
        .filter(|&(n, d)| n > 0 && d > 0)
        .with_context(|| format!("bad frame rate {rate}"))?;
    let us = |frames: u128| (frames * den * 1_000_000 + num / 2) / num;
    let mut list = String::new();
    let mut total: u128 = 0;
    for (k, &n) in seg_frames.iter().enumerate() {
        let d = us(total + u128::from(n)) - us(total);
        total += u128::from(n);
        let _ = writeln!(
            list,
            "file 'seg_{k:06}.nut'\nduration {}.{:06}",
            d / 1_000_000,
            d % 1_000_000
        );
    }
    Ok(list)
}

/// A helper thread's result; a panic in it is an error.
fn join_thread<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(anyhow::anyhow!("internal error: a helper thread panicked")))
}

/// Starts the decoder: every frame of IN's first video stream once, rgb24 on its stdout.
fn spawn_decoder(tools: &Tools, input: &Path, verbosity: Verbosity) -> Result<Spawned> {
    let mut decode = tools.command();
    decode
        .arg("-i")
        .arg(input)
        .args([
            "-map",
            "0:V:0",
            "-an",
            "-sn",
            "-dn",
            "-vsync",
            "passthrough",
        ])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    Spawned::new(decode, "the decoder", verbosity, true, false)
}

/// Ends the process at once, as a power cut or `kill -9` would (tests of `--resume` only).
fn kill_self() -> ! {
    // SAFETY: raise with a valid signal number.
    unsafe {
        libc::raise(libc::SIGKILL);
    }
    std::process::abort()
}

/// Renames the finished temporary file to OUT: without `force`, fails if OUT appeared
/// meanwhile (a hard link never replaces; where links are not supported, a checked rename).
fn commit(tmp: &Path, output: &Path, force: bool) -> Result<()> {
    let fail = |e: std::io::Error| anyhow::anyhow!("{}: cannot write: {e}", output.display());
    if force {
        return std::fs::rename(tmp, output).map_err(fail);
    }
    match std::fs::hard_link(tmp, output) {
        Ok(()) => {
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{}: appeared while the video was made; the result is kept in {} (use --force)",
            output.display(),
            tmp.display()
        ),
        Err(_) if !output.exists() => std::fs::rename(tmp, output).map_err(fail),
        Err(e) => Err(fail(e)),
    }
}

/// `.NAME.savl-video` beside `output`.
fn work_folder(output: &Path) -> Result<PathBuf> {
    let name = output
        .file_name()
        .with_context(|| format!("{}: not a file name", output.display()))?;
    let mut folder = OsString::from(".");
    folder.push(name);
    folder.push(".savl-video");
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(dir.join(folder))
}

/// What a work folder is for: a resumed run must match it line for line.
fn fingerprint(
    args: &VideoArgs,
    probe: &Probe,
    upscaler: &Upscaler,
    encoder: &[String],
) -> Result<String> {
    let input = std::fs::canonicalize(&args.input)
        .with_context(|| format!("{}: cannot resolve", args.input.display()))?;
    let meta = std::fs::metadata(&input)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!(
        "savl video {}\ninput {}\nbytes {} modified {modified}\nstream {} {} {}\n\
         model {} {} tile {} strength {}\nsegment {}\nencoder {}\n",
        env!("CARGO_PKG_VERSION"),
        input.display(),
        meta.len(),
        probe.stream(),
        probe.rate,
        probe.frames,
        upscaler.model_name().display(),
        upscaler.precision(),
        upscaler.tile_for(probe.width as usize, probe.height as usize),
        args.model.strength,
        args.segment,
        encoder.join(" ")
    ))
}

/// Readies the work folder; returns how many segments are finished and kept.
fn prepare_work(
    work: &Path,
    job: &str,
    resume: bool,
    output: &Path,
    verbosity: Verbosity,
) -> Result<usize> {
    let job_path = work.join("job.txt");
    if work.exists() {
        if !work.is_dir() {
            bail!("{}: exists and is not a folder", work.display());
        }
        let segments = finished_segments(work)?;
        let old = std::fs::read_to_string(&job_path).unwrap_or_default();
        if resume && old == job {
            // Unfinished files of the killed run go; finished segments stay.
            for e in std::fs::read_dir(work)?.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let keep = name == "job.txt" || segment_index(&name).is_some_and(|k| k < segments);
                if !keep {
                    std::fs::remove_file(e.path()).with_context(|| {
                        format!(
                            "cannot remove {} (left by the killed run)",
                            e.path().display()
                        )
                    })?;
                }
            }
            if verbosity > Verbosity::Quiet {
                note!(
                    "savl: resuming {} from {}: {segments} finished segments kept",
                    output.display(),
                    work.display()
                );
            }
            return Ok(segments);
        }
        if resume {
            bail!(
                "{}: this work folder was made for another input or other options (its job.txt \
                 differs); remove it to start over",
                work.display()
            );
        }
        if segments > 0 {
            bail!(
                "{}: an interrupted run left {segments} finished segments here: add --resume to \
                 continue it, or remove the folder to start over",
                work.display()
            );
        }
        std::fs::remove_dir_all(work)
            .with_context(|| format!("cannot remove {}", work.display()))?;
    } else if resume && verbosity > Verbosity::Quiet {
        note!(
            "savl: nothing to resume for {} (no {}); starting anew",
            output.display(),
            work.display()
        );
    }
    std::fs::create_dir(work).with_context(|| format!("cannot create {}", work.display()))?;
    std::fs::write(&job_path, job)
        .with_context(|| format!("cannot write {}", job_path.display()))?;
    Ok(0)
}

/// `k` for `seg_k.nut` (6 digits).
fn segment_index(name: &str) -> Option<usize> {
    let k = name.strip_prefix("seg_")?.strip_suffix(".nut")?;
    if k.len() != 6 || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    k.parse().ok()
}

/// How many segments `seg_000000.nut`, `seg_000001.nut`, … exist without a gap.
fn finished_segments(work: &Path) -> Result<usize> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(work).with_context(|| format!("cannot read {}", work.display()))? {
        let e = e.with_context(|| format!("cannot read {}", work.display()))?;
        if let Some(k) = e.file_name().to_str().and_then(segment_index) {
            found.push(k);
        }
    }
    found.sort_unstable();
    Ok(found
        .iter()
        .enumerate()
        .take_while(|(i, k)| i == *k)
        .count())
}

/// The encoder options: codec, quality, pixel format, colour conversion and tags.
fn encoder_args(
    args: &VideoArgs,
    probe: &Probe,
    ext: &str,
    available: &[String],
    verbosity: Verbosity,
) -> Result<Vec<String>> {
    let has = |e: &str| available.iter().any(|a| a == e);
    let codec = match &args.codec {
        Some(c) => {
            if !has(c) {
                bail!("ffmpeg has no video encoder {c:?} (`ffmpeg -encoders` lists them)");
            }
            c.clone()
        }
        None => {
            let family: &[&str] = match probe.codec.as_str() {
                _ if ext == "webm" => &["libvpx-vp9", "libvpx"],
                "h264" => &["libx264"],
                "hevc" => &["libx265"],
                "vp9" => &["libvpx-vp9"],
                "vp8" => &["libvpx"],
                "av1" => &["libsvtav1", "libaom-av1"],
                "mpeg4" => &["mpeg4"],
                "mpeg2video" => &["mpeg2video"],
                "mjpeg" => &["mjpeg"],
                "ffv1" => &["ffv1"],
                "prores" => &["prores_ks"],
                "utvideo" => &["utvideo"],
                "huffyuv" => &["huffyuv"],
                _ => &[],
            };
            match family.iter().chain(&["libx264", "mpeg4"]).find(|e| has(e)) {
                Some(e) => {
                    if !family.contains(e) && verbosity > Verbosity::Quiet {
                        note!(
                            "savl: note: no encoder of {}'s codec {} in this ffmpeg; using {e}",
                            args.input.display(),
                            probe.codec
                        );
                    }
                    e.to_string()
                }
                None => {
                    bail!("this ffmpeg has neither libx264 nor mpeg4: name an encoder with --codec")
                }
            }
        }
    };
    let mut out = vec!["-c:v".to_string(), codec.clone()];
    let default_crf = match codec.as_str() {
        "libx264" => Some(18),
        "libx265" => Some(20),
        "libvpx-vp9" | "libvpx" | "libaom-av1" | "libsvtav1" => Some(30),
        _ => None,
    };
    match (args.crf, default_crf) {
        (Some(_), None) => bail!(
            "--crf applies to libx264, libx265, libvpx-vp9, libvpx, libaom-av1 and libsvtav1, \
             not {codec}"
        ),
        (crf, Some(d)) => {
            out.extend(["-crf".into(), crf.unwrap_or(d).to_string()]);
            if codec.starts_with("libvpx") || codec == "libaom-av1" {
                out.extend(["-b:v".into(), "0".into()]);
            }
        }
        (None, None) => {}
    }
    if let Some(p) = &args.preset {
        if !matches!(codec.as_str(), "libx264" | "libx265") {
            bail!("--preset applies to libx264 and libx265, not {codec}");
        }
        out.extend(["-preset".into(), p.clone()]);
    }
    let pix_fmt = args
        .pix_fmt
        .clone()
        .unwrap_or_else(|| probe.pix_fmt.clone());
    out.extend(["-pix_fmt".into(), pix_fmt]);
    // rgb24 → Y'CbCr with IN's matrix and range (swscale's default is BT.601 limited).
    let mut scale = Vec::new();
    if let Some(m @ ("bt709" | "fcc" | "bt470bg" | "smpte170m" | "smpte240m" | "bt2020nc")) =
        probe.color_space.as_deref()
    {
        let m = if m == "bt2020nc" { "bt2020" } else { m };
        scale.push(format!("out_color_matrix={m}"));
    }
    match probe.color_range.as_deref() {
        Some("pc") => scale.push("out_range=pc".into()),
        Some("tv") => scale.push("out_range=tv".into()),
        _ => {}
    }
    if !scale.is_empty() {
        out.extend(["-vf".into(), format!("scale={}", scale.join(":"))]);
    }
    for (flag, value) in [
        ("-color_range", &probe.color_range),
        ("-colorspace", &probe.color_space),
        ("-color_primaries", &probe.color_primaries),
        ("-color_trc", &probe.color_transfer),
    ] {
        if let Some(v) = value {
            out.extend([flag.to_string(), v.clone()]);
        }
    }
    Ok(out)
}

/// ffmpeg and ffprobe as found on PATH.
#[derive(Debug)]
struct Tools {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools> {
        let ffmpeg = which("ffmpeg");
        let ffprobe = which("ffprobe");
        match (ffmpeg, ffprobe) {
            (Some(ffmpeg), Some(ffprobe)) => Ok(Tools { ffmpeg, ffprobe }),
            (a, b) => {
                let missing: Vec<&str> = [("ffmpeg", a.is_none()), ("ffprobe", b.is_none())]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
                bail!(
                    "savl video runs ffmpeg and ffprobe: {} on PATH (install ffmpeg, e.g. \
                     `apt-get install ffmpeg`)",
                    match missing.as_slice() {
                        [one] => format!("{one} was not found"),
                        _ => "neither was found".to_string(),
                    }
                )
            }
        }
    }

    /// `ffmpeg -nostdin -hide_banner -loglevel error`.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.ffmpeg);
        c.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        c
    }

    fn encoders(&self) -> Result<Vec<String>> {
        let out = Command::new(&self.ffmpeg)
            .args(["-hide_banner", "-encoders"])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.ffmpeg.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut t = l.split_whitespace();
                let flags = t.next()?;
                let name = t.next()?;
                (flags.len() == 6 && flags.starts_with('V')).then(|| name.to_string())
            })
            .collect())
    }

    fn probe(&self, input: &Path, verbosity: Verbosity) -> Result<Probe> {
        let mut cmd = Command::new(&self.ffprobe);
        cmd.args(["-v", "error", "-select_streams", "V:0", "-count_packets"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,pix_fmt,r_frame_rate,avg_frame_rate,\
                 nb_read_packets,start_time,color_range,color_space,color_primaries,\
                 color_transfer:stream_side_data=rotation:stream_tags=rotate",
                "-of",
                "default=noprint_wrappers=1",
            ])
            .arg(input)
            .stdin(Stdio::null());
        if verbosity >= Verbosity::Verbose {
            note!("savl: {}", shell_line(&cmd));
        }
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {}", self.ffprobe.display()))?;
        if !out.status.success() {
            bail!(
                "{}: ffprobe cannot read it: {}",
                input.display(),
                last_lines(&String::from_utf8_lossy(&out.stderr))
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut p = Probe::default();
        let (mut avg, mut r) = (String::new(), String::new());
        let mut rotation: i64 = 0;
        let known =
            |v: &str| (!v.is_empty() && v != "unknown" && v != "N/A").then(|| v.to_string());
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k {
                "codec_name" => p.codec = v.to_string(),
                "width" => p.width = v.parse().unwrap_or(0),
                "height" => p.height = v.parse().unwrap_or(0),
                "pix_fmt" => p.pix_fmt = v.to_string(),
                "r_frame_rate" => r = v.to_string(),
                "avg_frame_rate" => avg = v.to_string(),
                "nb_read_packets" => p.frames = v.parse().unwrap_or(0),
                "start_time" => p.start_time = v.parse().ok(),
                "color_range" => p.color_range = known(v),
                "color_space" => p.color_space = known(v),
                "color_primaries" => p.color_primaries = known(v),
                "color_transfer" => p.color_transfer = known(v),
                "rotation" | "TAG:rotate" => {
                    rotation = v.parse::<f64>().map(|r| r.round() as i64).unwrap_or(0)
                }
                _ => {}
            }
        }
        if p.codec.is_empty() {
            bail!("{}: no video stream", input.display());
        }
        if p.width == 0 || p.height == 0 {
            bail!(
                "{}: ffprobe gives no frame size for its {} video stream",
                input.display(),
                p.codec
            );
        }
        // ffmpeg turns frames upright on decoding (its autorotation): a quarter turn swaps the
        // decoded frame's sides, and the output is written upright, without the tag.
        if rotation.rem_euclid(180) == 90 {
            std::mem::swap(&mut p.width, &mut p.height);
        }
        let valid = |f: &str| {
            f.split_once('/')
                .and_then(|(n, d)| Some((n.parse::<u64>().ok()?, d.parse::<u64>().ok()?)))
                .is_some_and(|(n, d)| n > 0 && d > 0)
        };
        p.rate = if valid(&avg) {
            avg
        } else if valid(&r) {
            r
        } else {
            bail!(
                "{}: ffprobe gives no frame rate for its video stream",
                input.display()
            )
        };
        if p.pix_fmt.is_empty() || p.pix_fmt == "unknown" {
            p.pix_fmt = "yuv420p".into();
        }
        Ok(p)
    }
}

/// The first executable `name` in PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// A command line as one shell-quoted line, for `-v`.
fn shell_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last few lines of a child's stderr, for an error message.
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(6)..];
    if tail.is_empty() {
        "(no message)".to_string()
    } else {
        tail.join("; ")
    }
}

/// A running ffmpeg whose stderr is collected for error messages.
struct Spawned {
    child: Child,
    what: &'static str,
    stderr: Option<JoinHandle<String>>,
}

impl Spawned {
    fn new(
        mut cmd: Command,
        what: &'static str,
        verbosity: Verbosity,
        stdout: bool,
        stdin: bool,
    ) -> Result<Spawned> {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // savl blocks SIGINT, SIGTERM and SIGHUP in its threads (see `signals`); ffmpeg must
            // get them, so the mask is cleared in the child.
            // SAFETY: only async-signal-safe calls (sigemptyset, pthread_sigmask) between fork
            // and exec, on a set on the child's stack.
            unsafe {
                cmd.pre_exec(|| {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
        }
        if verbosity >= Verbosity::Verbose {
            note!("savl: {}", shell_line(&cmd));
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", cmd.get_program().to_string_lossy()))?;
        let mut err = child.stderr.take();
        let stderr = std::thread::Builder::new()
            .name("savl-ffmpeg-stderr".into())
            .spawn(move || {
                let mut s = String::new();
                if let Some(e) = err.as_mut() {
                    let _ = e.read_to_string(&mut s);
                }
                s
            })
            .ok();
        Ok(Spawned {
            child,
            what,
            stderr,
        })
    }

    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Waits; an error with ffmpeg's message unless it ended with status 0.
    fn wait_ok(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.what))?;
        let err = self.stderr_text();
        if !status.success() {
            bail!(
                "ffmpeg ({}) failed ({status}): {}",
                self.what,
                last_lines(&err)
            );
        }
        Ok(())
    }

    /// After a failed pipe: stops the child and returns `: ffmpeg (what) said: …` if it said
    /// something.
    fn finish_error(&mut self) -> String {
        drop(self.child.stdin.take());
        drop(self.child.stdout.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let err = self.stderr_text();
        if err.trim().is_empty() {
            String::new()
        } else {
            format!(": ffmpeg ({}) said: {}", self.what, last_lines(&err))
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A bar of `total` frames with frames/s and ETA (a counter when the total is unknown), hidden
/// when stderr is not a terminal or with `-q`.
fn bar(total: u64, verbosity: Verbosity) -> ProgressBar {
    use std::io::IsTerminal;
    if verbosity == Verbosity::Quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let known = total > 0;
    let pb = ProgressBar::with_draw_target(known.then_some(total), ProgressDrawTarget::stderr());
    let template = if known {
        "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} frames, {per_sec}, eta {eta}"
    } else {
        "{spinner} [{elapsed_precise}] {pos} frames, {per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_and_gaps() {
        assert_eq!(segment_index("seg_000012.nut"), Some(12));
        assert_eq!(segment_index("seg_000012.nut.part"), None);
        assert_eq!(segment_index("seg_12.nut"), None);
        let dir = tempfile::tempdir().unwrap();
        for k in [0, 1, 3] {
            std::fs::write(dir.path().join(format!("seg_{k:06}.nut")), b"x").unwrap();
        }
        assert_eq!(finished_segments(dir.path()).unwrap(), 2);
    }

    #[test]
    fn concat_durations_add_up_exactly() {
        let list = concat_list(&[5, 5, 2], "12/1").unwrap();
        assert_eq!(
            list,
            "file 'seg_000000.nut'\nduration 0.416667\nfile 'seg_000001.nut'\nduration \
             0.416666\nfile 'seg_000002.nut'\nduration 0.166667\n"
        );
        // 30000/1001: 240 frames are 8.008 s exactly.
        assert!(concat_list(&[240], "30000/1001")
            .unwrap()
            .contains("duration 8.008000"));
        assert!(concat_list(&[1], "0/0").is_err());
    }

    #[test]
    fn work_folder_is_hidden_beside_the_output() {
        assert_eq!(
            work_folder(Path::new("a/b/out.mp4")).unwrap(),
            PathBuf::from("a/b/.out.mp4.savl-video")
        );
        assert_eq!(
            work_folder(Path::new("out.mkv")).unwrap(),
            PathBuf::from("./.out.mkv.savl-video")
        );
    }

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let mut c = Command::new("ffmpeg");
        c.args(["-i", "my clip.mp4", "-vf", "scale=out_range=pc", "it's"]);
        assert_eq!(
            shell_line(&c),
            r"ffmpeg -i 'my clip.mp4' -vf scale=out_range=pc 'it'\''s'"
        );
    }
}
