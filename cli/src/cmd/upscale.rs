//! `savl upscale`: files and folders to ×4 pictures, or raw frames from stdin to stdout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use image::RgbImage;
use indicatif::ProgressBar;
use savl::Upscaler;
use savl_cli::io::{self, AtomicOutput, DecodeLimits, OutputFormat, PngRowWriter};

use super::model::ModelArgs;
use super::progress::{self, say};
use super::{raw, y4m, Outcome, Verbosity};

/// Suffix added to the input's name to make the output's, for a model of scale `scale`:
/// `_x4` for savl's ×4 models.
pub fn suffix(scale: usize) -> String {
    format!("_x{scale}")
}

/// Upscale pictures ×4 (PNG, JPEG, WebP in; PNG, JPEG, WebP out).
///
/// Without -o or --out-dir, each output is written beside its input as `NAME_x4.png` (`_x2` for
/// a ×2 model). Outputs are written to a temporary file and renamed when complete; an existing
/// output is only replaced with --force, and an input is never overwritten. With --force, a FIFO
/// or device at the output path is written into (never replaced) and a symbolic link is refused.
/// A batch goes on past a bad file and lists the failures at the end (exit code 1).
#[derive(Debug, clap::Args)]
pub struct UpscaleArgs {
    /// Input pictures or folders. A folder contributes its .png/.jpg/.jpeg/.webp files (not its
    /// subfolders), except names ending in `_x4` (savl's own outputs); a picture name there that
    /// is not a regular file (a FIFO, a dangling link) is listed as a failure.
    #[arg(value_name = "IN", required_unless_present_any = ["raw", "y4m"])]
    inputs: Vec<PathBuf>,

    /// Output file, for a single input picture.
    #[arg(short, long, value_name = "OUT", conflicts_with = "out_dir")]
    output: Option<PathBuf>,

    /// Folder for the outputs (created if missing); each is named `NAME_x4.EXT`.
    #[arg(short = 'd', long, value_name = "DIR")]
    out_dir: Option<PathBuf>,

    /// Output format: png, jpg or webp [default: -o's extension, else png]. PNG is written row
    /// by row in bounded memory; jpg and webp (lossless) hold the whole output in memory.
    #[arg(short, long, value_name = "FMT")]
    format: Option<OutputFormat>,

    /// Replace outputs that already exist (inputs are never overwritten, even with --force). A
    /// FIFO or character device at the output path is written into, never replaced; a symbolic
    /// link is refused, not followed.
    #[arg(long)]
    force: bool,

    /// Raw video mode: read rgb24 frames of WIDTHxHEIGHT from stdin, write ×4 rgb24 frames to
    /// stdout. For ffmpeg pipes; see docs/cli.md.
    #[arg(long, value_name = "WxH", value_parser = parse_size,
          conflicts_with_all = ["inputs", "output", "out_dir", "format", "force"])]
    raw: Option<(u32, u32)>,

    /// Decoded-size limit in megapixels: larger inputs are refused before they are decoded.
    #[arg(long, value_name = "MP", default_value_t = 100.0, value_parser = parse_megapixels,
          allow_negative_numbers = true)]
    limit_mp: f64,

    /// Memory limit in MB for what depends on the picture: its decoded pixels (with the RGB
    /// copy) plus one band of output rows. Checked from the header, before decoding. The model's
    /// own working set comes on top (about 160 MB at the default tile with 2 threads); JPEG and
    /// WebP outputs also hold the whole output (48 bytes per input pixel).
    #[arg(long, value_name = "MB", default_value_t = DEFAULT_LIMIT_MEM_MB,
          value_parser = parse_megabytes, allow_negative_numbers = true)]
    limit_mem: f64,

    #[command(flatten)]
    y4m: y4m::Y4mArgs,

    #[command(flatten)]
    model: ModelArgs,
}

/// Default of `--limit-mem`, in MB: with the model's working set at the default tile and 2
/// threads, `savl upscale` to PNG stays under 400 MB for any input.
pub const DEFAULT_LIMIT_MEM_MB: f64 = 200.0;

/// Parses a positive number of megabytes (`inf` for no limit).
pub fn parse_megabytes(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(mb) if mb > 0.0 => Ok(mb),
        _ => Err(format!(
            "expected a positive number of megabytes, got {s:?}"
        )),
    }
}

/// Megabytes to bytes, saturating (`inf` gives `u64::MAX`).
pub fn megabytes(mb: f64) -> u64 {
    (mb * 1e6).min(u64::MAX as f64) as u64
}

/// Parses a positive number of megapixels (`inf` for no limit).
pub fn parse_megapixels(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(mp) if mp > 0.0 => Ok(mp),
        _ => Err(format!(
            "expected a positive number of megapixels, got {s:?}"
        )),
    }
}

/// Parses `WIDTHxHEIGHT` (`x`, `X` or `×`).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected WIDTHxHEIGHT such as 640x360, got {s:?}");
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(format!("frame size {w}x{h} is empty"));
    }
    Ok((w, h))
}

/// One input and where its output goes, or why it cannot be done.
#[derive(Debug)]
struct Job {
    input: PathBuf,
    output: Result<PathBuf, String>,
}

/// The resolved command: jobs, format, limits (the model is loaded by [`run`]).
#[derive(Debug)]
pub struct Plan {
    jobs: Vec<Job>,
    format: OutputFormat,
    force: bool,
    limits: DecodeLimits,
    limit_mem: u64,
    verbosity: Verbosity,
}

/// Runs `savl upscale`.
pub fn run_args(args: UpscaleArgs, verbosity: Verbosity) -> Result<Outcome> {
    let limits = DecodeLimits::megapixels(args.limit_mp);
    if args.y4m.y4m {
        let mem = megabytes(args.limit_mem);
        return y4m::run(&args.y4m, &args.model, limits, mem, verbosity);
    }
    args.y4m.refuse_without_y4m()?;
    if let Some(size) = args.raw {
        return raw::run(
            size,
            &args.model,
            limits,
            megabytes(args.limit_mem),
            verbosity,
        );
    }
    // The model first: a bad --model is reported before anything else (exit 2), and its scale
    // names the outputs.
    let upscaler = args.model.build(limits.max_pixels, verbosity)?;
    let plan = Plan::from_args(&args, upscaler.scale(), limits, verbosity)?;
    run(plan, &upscaler)
}

impl Plan {
    /// Expands folders, picks the format and each output path (`NAME_x{scale}.EXT`), and marks
    /// the jobs that must not run (output is an input, output exists without --force or cannot be
    /// replaced, two inputs with one output, an input that is not a regular file).
    pub fn from_args(
        args: &UpscaleArgs,
        scale: usize,
        limits: DecodeLimits,
        verbosity: Verbosity,
    ) -> Result<Plan> {
        let suffix = suffix(scale);
        let mut jobs: Vec<Job> = Vec::new();
        let mut any_folder = false;
        for input in &args.inputs {
            if input.is_dir() {
                any_folder = true;
                let found = list_folder(input, &suffix)?;
                if found.is_empty() && verbosity > Verbosity::Quiet {
                    note!("savl: warning: no pictures in folder {}", input.display());
                }
                jobs.extend(found.into_iter().map(|(p, problem)| Job {
                    output: match problem {
                        None => Ok(PathBuf::new()),
                        Some(why) => Err(format!("{}: skipped: {why}", p.display())),
                    },
                    input: p,
                }));
            } else if input.exists() {
                jobs.push(Job {
                    input: input.clone(),
                    output: Ok(PathBuf::new()),
                });
            } else {
                jobs.push(Job {
                    input: input.clone(),
                    output: Err(format!("{}: no such file or folder", input.display())),
                });
            }
        }
        if jobs.is_empty() {
            bail!("no pictures to upscale (folders hold no .png, .jpg or .webp files)");
        }

        let ext_format = args
            .output
            .as_deref()
            .map(|o| (o, OutputFormat::from_path(o)));
        let format = match (args.format, ext_format) {
            (Some(f), Some((o, Some(e)))) if e.extension() != f.extension() => bail!(
                "--format {f} does not match the extension of {} (drop one of them)",
                o.display()
            ),
            (Some(f), _) => f,
            (None, Some((_, Some(e)))) => e,
            (None, Some((o, None))) => bail!(
                "cannot tell the format of {} from its extension: use .png, .jpg or .webp, \
                 or --format",
                o.display()
            ),
            (None, None) => OutputFormat::Png,
        };

        if let Some(o) = &args.output {
            if jobs.len() != 1 || any_folder {
                bail!(
                    "-o {} names one output, but there are {} inputs: use --out-dir DIR",
                    o.display(),
                    jobs.len()
                );
            }
        }
        if let Some(dir) = &args.out_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        }

        let inputs: Vec<PathBuf> = jobs.iter().map(|j| j.input.clone()).collect();
        let mut taken: Vec<(PathBuf, PathBuf)> = Vec::new();
        for job in &mut jobs {
            if job.output.is_err() {
                continue;
            }
            let name = output_name(&job.input, &suffix, format);
            let out = match (&args.output, &args.out_dir) {
                (Some(o), _) => o.clone(),
                (None, Some(dir)) => dir.join(name),
                (None, None) => job.input.parent().unwrap_or(Path::new("")).join(name),
            };
            job.output = check_output(&job.input, &out, &inputs, &taken, args.force);
            taken.push((out, job.input.clone()));
        }
        Ok(Plan {
            jobs,
            format,
            force: args.force,
            limits,
            limit_mem: megabytes(args.limit_mem),
            verbosity,
        })
    }
}

/// `NAME{suffix}.EXT` for input `…/NAME.anything`.
fn output_name(input: &Path, suffix: &str, format: OutputFormat) -> PathBuf {
    let stem = input.file_stem().unwrap_or(input.as_os_str());
    let mut name = stem.to_os_string();
    name.push(suffix);
    name.push(".");
    name.push(format.extension());
    PathBuf::from(name)
}

fn check_output(
    input: &Path,
    out: &Path,
    inputs: &[PathBuf],
    taken: &[(PathBuf, PathBuf)],
    force: bool,
) -> Result<PathBuf, String> {
    if let Some(input) = inputs
        .iter()
        .find(|i| *i == out || io::is_same_file(i, out))
    {
        return Err(format!(
            "{}: refusing to overwrite the input {}",
            out.display(),
            input.display()
        ));
    }
    if let Some((_, other)) = taken
        .iter()
        .find(|(t, _)| t == out || io::is_same_file(t, out))
    {
        return Err(format!(
            "{}: skipped: its output {} is already written by {}",
            input.display(),
            out.display(),
            other.display()
        ));
    }
    io::check_destination(out, force).map_err(|e| e.to_string())?;
    Ok(out.to_owned())
}

/// The pictures directly in `dir` (by extension), sorted by name, without savl's own outputs
/// (names ending in `suffix`). An entry with a picture's extension that is not a regular file
/// (a FIFO, a device, a dangling symbolic link) comes with the reason it cannot be read;
/// subfolders are left out.
fn list_folder(dir: &Path, suffix: &str) -> Result<Vec<(PathBuf, Option<String>)>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("cannot read folder {}", dir.display()))?
            .path();
        let is_output = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.ends_with(suffix));
        if !io::has_image_extension(&path) || is_output || path.is_dir() {
            continue;
        }
        if path.is_file() {
            found.push((path, None));
            continue;
        }
        let why = match path.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                "a dangling symbolic link (its target does not exist)".to_string()
            }
            Ok(_) => "not a regular file (a FIFO, device or socket)".to_string(),
            Err(e) => format!("cannot read: {e}"),
        };
        found.push((path, Some(why)));
    }
    found.sort();
    Ok(found)
}

/// Runs the plan with the loaded model: upscales each job, lists failures.
pub fn run(plan: Plan, upscaler: &Upscaler) -> Result<Outcome> {
    let start = Instant::now();
    let total: u64 = plan
        .jobs
        .iter()
        .filter(|j| j.output.is_ok())
        .filter_map(|j| io::dimensions(&j.input).ok())
        .map(|(w, h)| u64::from(w) * u64::from(h))
        .sum();
    let pb = progress::bar(total, plan.verbosity);

    let mut failures: Vec<String> = Vec::new();
    let mut done: Vec<(PathBuf, (u32, u32))> = Vec::new();
    for job in &plan.jobs {
        let result = match &job.output {
            Err(why) => Err(why.clone()),
            Ok(out) => {
                pb.set_message(job.input.display().to_string());
                let t = Instant::now();
                upscale_one(upscaler, &job.input, out, &plan, &pb)
                    .map(|size| {
                        if plan.verbosity >= Verbosity::Verbose {
                            say(
                                &pb,
                                &format!(
                                    "{} -> {} ({}×{}) in {:.2} s",
                                    job.input.display(),
                                    out.display(),
                                    size.0,
                                    size.1,
                                    t.elapsed().as_secs_f64()
                                ),
                            );
                        }
                        done.push((out.clone(), size));
                    })
                    .map_err(|e| with_name(&job.input, &format!("{e:#}")))
            }
        };
        if let Err(msg) = result {
            say(&pb, &format!("savl: {msg}"));
            failures.push(msg);
        }
    }
    pb.finish_and_clear();

    let n = plan.jobs.len();
    if plan.verbosity > Verbosity::Quiet && !done.is_empty() {
        let secs = start.elapsed().as_secs_f64();
        if n == 1 {
            let (out, (w, h)) = &done[0];
            note!("savl: wrote {} ({w}×{h}) in {secs:.1} s", out.display());
        } else {
            note!(
                "savl: upscaled {} of {n} pictures in {secs:.1} s",
                done.len()
            );
        }
    }
    if failures.is_empty() {
        return Ok(Outcome::Ok);
    }
    if n > 1 {
        note!("savl: {} of {n} inputs failed:", failures.len());
        for f in &failures {
            note!("  {f}");
        }
    }
    Ok(Outcome::SomeFailed)
}

/// Prefixes `msg` with the input's name unless it already names it.
fn with_name(input: &Path, msg: &str) -> String {
    let name = input.display().to_string();
    if msg.contains(&name) {
        msg.to_string()
    } else {
        format!("{name}: {msg}")
    }
}

/// Decodes, upscales and writes one picture; returns the output size.
fn upscale_one(
    upscaler: &Upscaler,
    input: &Path,
    output: &Path,
    plan: &Plan,
    pb: &ProgressBar,
) -> Result<(u32, u32)> {
    let limits = memory_limits(upscaler, input, plan)?;
    let decoded = io::decode_path_with_info(input, &limits).map_err(|e| match e {
        io::IoError::OverMemoryLimit { .. } => anyhow::anyhow!(
            "{e} (what --limit-mem {:.0} MB leaves after one band of output rows)",
            plan.limit_mem as f64 / 1e6
        ),
        e => e.into(),
    })?;
    if decoded.animated && plan.verbosity > Verbosity::Quiet {
        say(
            pb,
            &format!(
                "savl: warning: {} is animated; only its first frame is upscaled",
                input.display()
            ),
        );
    }
    let img = decoded.image;
    let s = upscaler.scale() as u32;
    let (w, h) = img.dimensions();
    let (ow, oh) = (
        w.checked_mul(s).context("output too wide")?,
        h.checked_mul(s).context("output too tall")?,
    );
    // Before any work: JPEG and WebP cannot hold every size.
    plan.format.check_size(ow, oh, output)?;
    let lr_px_per_byte = 3 * u64::from(s) * u64::from(s);
    let mut out = AtomicOutput::create(output, plan.force)?;
    if plan.format.is_streaming() {
        let mut png = PngRowWriter::new(out.writer()?, ow, oh, output)?;
        upscaler.upscale_rows(&img, |_, rows| {
            png.write_rows(rows)
                .map_err(|e| savl::Error::Sink(Box::new(e)))?;
            pb.inc(rows.len() as u64 / lr_px_per_byte);
            Ok(())
        })?;
        png.finish()?;
    } else {
        let len = (ow as usize)
            .checked_mul(oh as usize)
            .and_then(|n| n.checked_mul(3))
            .context("output too large")?;
        let mut buf: Vec<u8> = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| anyhow::anyhow!("cannot allocate {len} bytes for a {ow}×{oh} output"))?;
        upscaler.upscale_rows(&img, |first_row, rows| {
            let start = first_row as usize * ow as usize * 3;
            if buf.len() != start {
                return Err(savl::Error::Runtime(format!(
                    "rows out of order: {first_row} after {} rows",
                    buf.len() / (ow as usize * 3)
                )));
            }
            buf.extend_from_slice(rows);
            pb.inc(rows.len() as u64 / lr_px_per_byte);
            Ok(())
        })?;
        let hr = RgbImage::from_raw(ow, oh, buf).context("short output from the upscaler")?;
        io::write_image(&hr, plan.format, out.file(), output)?;
    }
    out.commit()?;
    Ok((ow, oh))
}

/// The decode limits for `input` under `--limit-mem`: what one band of output rows leaves of it
/// (the band is sized from the header, for either orientation).
fn memory_limits(upscaler: &Upscaler, input: &Path, plan: &Plan) -> Result<DecodeLimits> {
    let Ok((w, h)) = io::dimensions(input) else {
        // The decoder reports what is wrong with the header.
        return Ok(plan.limits.with_max_alloc(plan.limit_mem));
    };
    if u64::from(w) * u64::from(h) > plan.limits.max_pixels {
        return Ok(plan.limits);
    }
    let band = upscaler.band_bytes(w, h).max(upscaler.band_bytes(h, w));
    if band >= plan.limit_mem {
        bail!(
            "a {w}×{h} picture needs {:.0} MB for one band of output rows, over --limit-mem {:.0}              MB (raise it, or lower --tile)",
            band as f64 / 1e6,
            plan.limit_mem as f64 / 1e6
        );
    }
    Ok(plan.limits.with_max_alloc(plan.limit_mem - band))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("640x360"), Ok((640, 360)));
        assert_eq!(parse_size("8×2"), Ok((8, 2)));
        assert!(parse_size("640").is_err());
        assert!(parse_size("0x5").is_err());
    }

    #[test]
    fn output_names() {
        assert_eq!(
            output_name(Path::new("a/b/photo.jpeg"), &suffix(4), OutputFormat::Png),
            PathBuf::from("photo_x4.png")
        );
        assert_eq!(
            output_name(Path::new("x.y.png"), &suffix(2), OutputFormat::WebP),
            PathBuf::from("x.y_x2.webp")
        );
    }
}
