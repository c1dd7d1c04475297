//! `savl upscale`: files and folders (or one picture on stdin) to pictures at the model's factor
//! or any smaller one, keeping grey, 16 bits, alpha, the ICC profile and EXIF; or raw frames from
//! stdin to stdout.

use std::cell::Cell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use image::{DynamicImage, RgbImage};
use indicatif::ProgressBar;
use savl::photo::{self, Resize};
use savl::Upscaler;
use savl_cli::io::{self, AtomicOutput, DecodeLimits, Metadata, OutputFormat, PngRowWriter};

use super::model::ModelArgs;
use super::progress::{self, say};
use super::{raw, y4m, Outcome, Verbosity};

/// Suffix added to the input's name to make the output's, for an output factor `factor`:
/// `_x4` for savl's ×4 models at their own factor, `_x2`, `_x1.5` for `--scale`.
pub fn suffix(factor: f64) -> String {
    format!("_x{}", photo::factor_label(factor))
}

/// Upscale pictures ×4 or less (PNG, JPEG, WebP, GIF in and out; animations too).
///
/// Without -o or --out-dir, each output is written beside its input as `NAME_x4.png` (`_x2` for
/// a ×2 model or --scale 2). Outputs are written to a temporary file and renamed when complete; an existing
/// output is only replaced with --force, and an input is never overwritten. With --force, a FIFO
/// or device at the output path is written into (never replaced) and a symbolic link is refused.
/// A batch goes on past a bad file and lists the failures at the end (exit code 1).
#[derive(Debug, clap::Args)]
pub struct UpscaleArgs {
    /// Input pictures or folders, or `-` for one picture on stdin (needs -o). A folder
    /// contributes its .png/.jpg/.jpeg/.webp/.gif files (subfolders too with -r), except names ending
    /// in `_x` and a factor such as `_x4` (savl's own outputs); a picture name there that is not
    /// a regular file (a FIFO, a dangling link) is listed as a failure.
    #[arg(value_name = "IN", required_unless_present_any = ["raw", "y4m"])]
    inputs: Vec<PathBuf>,

    /// Output file, for a single input picture; `-` writes the encoded picture to stdout.
    #[arg(short, long, value_name = "OUT", conflicts_with = "out_dir")]
    output: Option<PathBuf>,

    /// Folder for the outputs (created if missing); each is named `NAME_x4.EXT`.
    #[arg(short = 'd', long, value_name = "DIR")]
    out_dir: Option<PathBuf>,

    /// Output format: png, jpg, webp or gif [default: -o's extension, else png]. RGB pictures at
    /// the model's factor are written to PNG row by row in bounded memory; everything else holds
    /// the whole output in memory. Animated inputs need png (APNG) or gif.
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
          conflicts_with_all = ["inputs", "output", "out_dir", "format", "force", "scale", "width",
                                "height", "recursive", "skip_existing", "shard", "quality"])]
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

    /// Output factor, at most the model's (e.g. 2, 3, 1.5). The model runs at its own factor,
    /// then a Lanczos3 resize reaches this one; outputs are named `NAME_x2.EXT`.
    #[arg(short, long, value_name = "F", value_parser = parse_factor,
          conflicts_with_all = ["width", "height"])]
    scale: Option<f64>,

    /// Output width in pixels, aspect kept (with --height: fit inside both). Outputs are named
    /// after the real factor (`NAME_x2.5.EXT`).
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
    width: Option<u32>,

    /// Output height in pixels, aspect kept (with --width: fit inside both).
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
    height: Option<u32>,

    /// Walk folders recursively; with --out-dir, the folder tree is mirrored under it.
    #[arg(short, long)]
    recursive: bool,

    /// Leave inputs whose output already exists alone (counted as skipped): a killed batch run
    /// again resumes where it stopped. Outputs are only ever complete (temporary file, then
    /// rename), so an existing one is finished.
    #[arg(long, conflicts_with = "force")]
    skip_existing: bool,

    /// Process only shard K of N (1 ≤ K ≤ N): the inputs whose relative path hashes to K, so N
    /// machines given 1/N … N/N share a folder with no coordination, each input exactly once.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(u32, u32)>,

    /// JPEG quality, 1 to 100 [default: 92]. (WebP output is lossless.)
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,

    /// Output bit depth: auto (16 for 16-bit inputs, else 8), 8 or 16. 16-bit outputs are
    /// quantised from the model's float output; only PNG holds 16 bits.
    #[arg(long, value_name = "D", default_value = "auto")]
    depth: Depth,

    /// Colour that transparent pictures are flattened onto for formats without alpha (JPEG):
    /// white, black, or #RRGGBB.
    #[arg(long, value_name = "COLOUR", default_value = "white", value_parser = parse_colour)]
    background: [u8; 3],

    /// Write neither the input's ICC colour profile nor its EXIF block into the output.
    #[arg(long)]
    strip_metadata: bool,

    #[command(flatten)]
    y4m: y4m::Y4mArgs,

    #[command(flatten)]
    model: ModelArgs,
}

/// `--depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Depth {
    /// 16 bits for 16-bit inputs, else 8.
    Auto,
    /// 8 bits a sample.
    #[value(name = "8")]
    Eight,
    /// 16 bits a sample (PNG only).
    #[value(name = "16")]
    Sixteen,
}

/// Parses an output factor: a positive number.
pub fn parse_factor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!(
            "expected a positive factor such as 2 or 1.5, got {s:?}"
        )),
    }
}

/// Parses `K/N` with 1 ≤ K ≤ N.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected K/N with 1 <= K <= N, such as 2/8, got {s:?}");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: u32 = k.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Parses a colour: `white`, `black`, `#RRGGBB` or `RRGGBB`.
pub fn parse_colour(s: &str) -> Result<[u8; 3], String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "white" => return Ok([255; 3]),
        "black" => return Ok([0; 3]),
        _ => {}
    }
    let hex = s.trim().trim_start_matches('#');
    let bad = || format!("expected white, black or #RRGGBB, got {s:?}");
    if hex.len() != 6 || !hex.is_ascii() {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

/// The shard (0-based, below `n`) of an input by its relative path: FNV-1a of the path's bytes
/// with `/` separators, modulo `n`. Depends on nothing but the path, so every machine agrees.
pub fn shard_of(rel: &Path, n: u32) -> u32 {
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % u64::from(n)) as u32
}

/// Whether a file stem looks like a savl output: it ends in `_x` and a factor (`_x4`, `_x2`,
/// `_x1.5`).
fn is_output_stem(stem: &str) -> bool {
    stem.rsplit_once("_x").is_some_and(|(_, f)| {
        !f.is_empty()
            && f.chars().all(|c| c.is_ascii_digit() || c == '.')
            && f.parse::<f64>().is_ok_and(|v| v > 0.0)
    })
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

/// What becomes of one input.
#[derive(Debug)]
enum State {
    /// Upscale it into this output (`-` for stdout).
    Run(PathBuf),
    /// Its output exists and `--skip-existing` is on.
    Skip(PathBuf),
    /// It cannot be done, and why (the message names the file).
    Fail(String),
}

/// One input (`-` for stdin), its path relative to the folder it was found in (the path as
/// given for a file named on the command line), and what becomes of it.
#[derive(Debug)]
struct Job {
    input: PathBuf,
    rel: PathBuf,
    state: State,
}

/// The resolved command: jobs, format, sizes, limits (the model is loaded by [`run`]).
#[derive(Debug)]
pub struct Plan {
    jobs: Vec<Job>,
    format: OutputFormat,
    force: bool,
    limits: DecodeLimits,
    limit_mem: u64,
    verbosity: Verbosity,
    resize: Resize,
    depth: Depth,
    background: [u8; 3],
    strip_metadata: bool,
    /// Outputs mirror the input tree (`-r` with `--out-dir`): their folders are created.
    mirror: bool,
    /// The note that JPEG flattens transparent pictures was given.
    flatten_said: Cell<bool>,
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

fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

impl Plan {
    /// Expands folders (recursively with `-r`), keeps this `--shard`'s inputs, picks the format
    /// and each output path (`NAME_x{factor}.EXT`, mirrored under `--out-dir` with `-r`), and
    /// marks the jobs that must not run (output is an input, output exists without --force or
    /// cannot be replaced, two inputs with one output, an input that is not a regular file) or
    /// are skipped (`--skip-existing`).
    pub fn from_args(
        args: &UpscaleArgs,
        scale: usize,
        limits: DecodeLimits,
        verbosity: Verbosity,
    ) -> Result<Plan> {
        let resize = match (args.scale, args.width, args.height) {
            (Some(f), _, _) => {
                if f > scale as f64 {
                    bail!("--scale {f} is over the model's factor ×{scale}: savl upscales ×{scale} at most");
                }
                Resize::Scale(f)
            }
            (None, None, None) => Resize::Native,
            (None, width, height) => Resize::Fit { width, height },
        };
        let out_dir_canon = args.out_dir.as_ref().and_then(|d| d.canonicalize().ok());
        let stdin = args.inputs.iter().any(|i| is_stdio(i));
        if stdin && args.inputs.len() > 1 {
            bail!("- (stdin) must be the only input");
        }
        if stdin && args.output.is_none() {
            bail!("reading a picture from stdin needs -o OUT (or -o - for stdout)");
        }
        let mut jobs: Vec<Job> = Vec::new();
        let mut any_folder = false;
        for input in &args.inputs {
            if is_stdio(input) {
                jobs.push(Job {
                    input: input.clone(),
                    rel: input.clone(),
                    state: State::Run(PathBuf::new()),
                });
            } else if input.is_dir() {
                any_folder = true;
                let mut found = Vec::new();
                list_folder(
                    input,
                    Path::new(""),
                    args.recursive,
                    out_dir_canon.as_deref(),
                    &mut found,
                )?;
                found.sort();
                if found.is_empty() && verbosity > Verbosity::Quiet {
                    note!("savl: warning: no pictures in folder {}", input.display());
                }
                jobs.extend(found.into_iter().map(|(rel, problem)| {
                    let p = input.join(&rel);
                    Job {
                        state: match problem {
                            None => State::Run(PathBuf::new()),
                            Some(why) => State::Fail(format!("{}: skipped: {why}", p.display())),
                        },
                        input: p,
                        rel,
                    }
                }));
            } else if input.exists() {
                jobs.push(Job {
                    input: input.clone(),
                    rel: input
                        .file_name()
                        .map(PathBuf::from)
                        .unwrap_or_else(|| input.clone()),
                    state: State::Run(PathBuf::new()),
                });
            } else {
                jobs.push(Job {
                    input: input.clone(),
                    rel: input.clone(),
                    state: State::Fail(format!("{}: no such file or folder", input.display())),
                });
            }
        }
        if jobs.is_empty() {
            bail!("no pictures to upscale (folders hold no .png, .jpg, .webp or .gif files)");
        }
        if let Some((k, n)) = args.shard {
            jobs = select_shard(jobs, k, n);
        }

        let to_stdout = args.output.as_deref().is_some_and(is_stdio);
        let ext_format = args
            .output
            .as_deref()
            .filter(|o| !is_stdio(o))
            .map(|o| (o, OutputFormat::from_path(o)));
        let format = match (args.format, ext_format) {
            (Some(f), Some((o, Some(e)))) if e.extension() != f.extension() => bail!(
                "--format {f} does not match the extension of {} (drop one of them)",
                o.display()
            ),
            (Some(f), _) => f,
            (None, Some((_, Some(e)))) => e,
            (None, Some((o, None))) => bail!(
                "cannot tell the format of {} from its extension: use .png, .jpg, .webp or \
                 .gif, or --format",
                o.display()
            ),
            (None, None) => OutputFormat::Png,
        };
        let format = match (format, args.quality) {
            (f, None) => f,
            (OutputFormat::Jpeg { .. }, Some(q)) => OutputFormat::Jpeg { quality: q },
            (f, Some(_)) => {
                bail!("--quality applies to JPEG output; {f} output is lossless in this build")
            }
        };
        if args.depth == Depth::Sixteen && format != OutputFormat::Png {
            bail!("--depth 16 needs PNG output: {format} holds 8 bits");
        }

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
            if matches!(job.state, State::Fail(_)) {
                continue;
            }
            if to_stdout {
                job.state = State::Run(PathBuf::from("-"));
                continue;
            }
            let factor = match resize {
                Resize::Native => scale as f64,
                Resize::Scale(f) => f,
                Resize::Fit { .. } if is_stdio(&job.input) => scale as f64,
                Resize::Fit { .. } => {
                    let size = io::oriented_dimensions(&job.input)
                        .map_err(|e| e.to_string())
                        .and_then(|(w, h)| {
                            resize
                                .output_size(w, h, scale)
                                .map_err(|e| format!("{}: {e}", job.input.display()))
                        });
                    match size {
                        Ok((_, f)) => f,
                        Err(e) => {
                            job.state = State::Fail(e);
                            continue;
                        }
                    }
                }
            };
            let suffix = suffix(factor);
            let name = output_name(&job.input, &suffix, format);
            let out = match (&args.output, &args.out_dir) {
                (Some(o), _) => o.clone(),
                (None, Some(dir)) if args.recursive => dir
                    .join(job.rel.parent().unwrap_or(Path::new("")))
                    .join(name),
                (None, Some(dir)) => dir.join(name),
                (None, None) => job.input.parent().unwrap_or(Path::new("")).join(name),
            };
            job.state = if args.skip_existing && out.symlink_metadata().is_ok() {
                State::Skip(out.clone())
            } else {
                match check_output(&job.input, &out, &inputs, &taken, args.force) {
                    Ok(o) => State::Run(o),
                    Err(e) => State::Fail(e),
                }
            };
            taken.push((out, job.input.clone()));
        }
        Ok(Plan {
            jobs,
            format,
            force: args.force,
            limits,
            limit_mem: megabytes(args.limit_mem),
            verbosity,
            resize,
            depth: args.depth,
            background: args.background,
            strip_metadata: args.strip_metadata,
            mirror: args.recursive && args.out_dir.is_some(),
            flatten_said: Cell::new(false),
        })
    }
}

/// The jobs of shard `k` of `n` (1-based), in their order.
fn select_shard(jobs: Vec<Job>, k: u32, n: u32) -> Vec<Job> {
    jobs.into_iter()
        .filter(|j| shard_of(&j.rel, n) == k - 1)
        .collect()
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

/// Adds to `found` the pictures in `root/rel` (by extension) as paths relative to `root`, with
/// subfolders walked when `recursive` (never through symbolic links, never into `skip`, the
/// output folder), without savl's own outputs (stems ending in `_x` and a factor). An entry with
/// a picture's extension that is not a regular file (a FIFO, a device, a dangling symbolic link)
/// comes with the reason it cannot be read.
fn list_folder(
    root: &Path,
    rel: &Path,
    recursive: bool,
    skip: Option<&Path>,
    found: &mut Vec<(PathBuf, Option<String>)>,
) -> Result<()> {
    let dir = root.join(rel);
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read folder {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read folder {}", dir.display()))?;
        let path = entry.path();
        let sub = rel.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let is_out = skip.is_some_and(|s| path.canonicalize().is_ok_and(|p| p == s));
            if recursive && !is_out {
                list_folder(root, &sub, recursive, skip, found)?;
            }
            continue;
        }
        let is_output = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(is_output_stem);
        if !io::has_image_extension(&path) || is_output || path.is_dir() {
            continue;
        }
        if path.is_file() {
            found.push((sub, None));
            continue;
        }
        let why = match path.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                "a dangling symbolic link (its target does not exist)".to_string()
            }
            Ok(_) => "not a regular file (a FIFO, device or socket)".to_string(),
            Err(e) => format!("cannot read: {e}"),
        };
        found.push((sub, Some(why)));
    }
    Ok(())
}

/// Runs the plan with the loaded model: upscales each job, then sums up (done, skipped, failed
/// with reasons, time).
pub fn run(plan: Plan, upscaler: &Upscaler) -> Result<Outcome> {
    let start = Instant::now();
    let total: u64 = plan
        .jobs
        .iter()
        .filter(|j| matches!(j.state, State::Run(_)) && !is_stdio(&j.input))
        .filter_map(|j| io::dimensions(&j.input).ok())
        .map(|(w, h)| u64::from(w) * u64::from(h))
        .sum();
    let pb = progress::bar(total, plan.verbosity);

    let mut failures: Vec<String> = Vec::new();
    let mut done: Vec<(PathBuf, (u32, u32))> = Vec::new();
    let mut skipped = 0usize;
    for job in &plan.jobs {
        let result = match &job.state {
            State::Fail(why) => Err(why.clone()),
            State::Skip(out) => {
                skipped += 1;
                if plan.verbosity >= Verbosity::Verbose {
                    say(
                        &pb,
                        &format!("{}: skipped: {} exists", job.input.display(), out.display()),
                    );
                }
                Ok(())
            }
            State::Run(out) => {
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
    let secs = start.elapsed().as_secs_f64();
    if plan.verbosity > Verbosity::Quiet {
        if n == 1 && done.len() == 1 {
            let (out, (w, h)) = &done[0];
            note!("savl: wrote {} ({w}×{h}) in {secs:.1} s", out.display());
        } else if n > 1 || skipped > 0 {
            note!(
                "savl: {} done, {skipped} skipped (output exists), {} failed, of {n} inputs in \
                 {secs:.1} s",
                done.len(),
                failures.len()
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

/// Largest picture file read from stdin.
const MAX_STDIN_BYTES: u64 = 1 << 31;

/// Decodes, upscales and writes one picture; returns the output size.
///
/// RGB into a PNG file is streamed band by band, through a [`photo::RowResizer`] for factors
/// below the model's. Everything else (grey, alpha, 16 bits, JPEG/WebP/GIF, stdout) holds the
/// output picture: the model's output at the asked size, reduced to luma for grey inputs, given
/// its alpha plane, flattened onto `--background` for JPEG, then encoded with the input's
/// metadata.
fn upscale_one(
    upscaler: &Upscaler,
    input: &Path,
    output: &Path,
    plan: &Plan,
    pb: &ProgressBar,
) -> Result<(u32, u32)> {
    let limit_err = |e: io::IoError| match e {
        io::IoError::OverMemoryLimit { .. } => anyhow::anyhow!(
            "{e} (what --limit-mem {:.0} MB leaves after one band of output rows)",
            plan.limit_mem as f64 / 1e6
        ),
        e => e.into(),
    };
    let pic = if is_stdio(input) {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_STDIN_BYTES)
            .read_to_end(&mut bytes)
            .context("stdin: cannot read")?;
        io::decode_input_reader(
            std::io::Cursor::new(bytes),
            Path::new("stdin"),
            &plan.limits.with_max_alloc(plan.limit_mem),
        )
        .map_err(limit_err)?
    } else {
        let limits = memory_limits(upscaler, input, plan)?;
        io::decode_input_path(input, &limits).map_err(limit_err)?
    };
    let pic = match pic {
        io::Input::Still(p) => p,
        io::Input::Animated(anim) => {
            return upscale_animation(upscaler, input, output, anim, plan, pb)
        }
    };
    let metadata = if plan.strip_metadata {
        Metadata::default()
    } else {
        pic.metadata.clone()
    };
    let img = pic.image;
    let (w, h) = (img.width(), img.height());
    if plan.verbosity >= Verbosity::Verbose && upscaler.tile().is_none() {
        let t = upscaler.tile_for(w as usize, h as usize);
        say(
            pb,
            &format!(
                "{}: {w}×{h}, tile {t} (the largest within --max-memory {:.0} MB)",
                input.display(),
                upscaler.max_memory() as f64 / 1e6
            ),
        );
    }
    let ((ow, oh), _) = plan
        .resize
        .output_size(w, h, upscaler.scale())
        .map_err(|e| anyhow::anyhow!(e))?;
    // Before any work: JPEG and WebP cannot hold every size.
    plan.format.check_size(ow, oh, output)?;
    // An alpha channel that is opaque everywhere carries nothing: dropped, so that the picture
    // streams like any RGB or grey one.
    let img = if img.color().has_alpha() && !photo::has_alpha(&img) {
        match img {
            DynamicImage::ImageLumaA8(_) => DynamicImage::ImageLuma8(img.to_luma8()),
            DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLuma16(img.to_luma16()),
            DynamicImage::ImageRgba16(_) => DynamicImage::ImageRgb16(img.to_rgb16()),
            DynamicImage::ImageRgba32F(_) => DynamicImage::ImageRgb32F(img.to_rgb32f()),
            other => DynamicImage::ImageRgb8(other.to_rgb8()),
        }
    } else {
        img
    };
    let grey = photo::is_grey(&img);
    let in16 = matches!(
        img.color(),
        image::ColorType::L16
            | image::ColorType::La16
            | image::ColorType::Rgb16
            | image::ColorType::Rgba16
            | image::ColorType::Rgb32F
            | image::ColorType::Rgba32F
    );
    let out16 = plan.format == OutputFormat::Png
        && match plan.depth {
            Depth::Auto => in16,
            Depth::Eight => false,
            Depth::Sixteen => true,
        };
    let stdout = is_stdio(output);
    if plan.mirror {
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        }
    }

    if !out16 && plan.format.is_streaming() && !stdout {
        stream_png(upscaler, img, (ow, oh), grey, output, &metadata, plan, pb)?;
        return Ok((ow, oh));
    }

    let hr = render(upscaler, img, (ow, oh), grey, out16, plan, pb)?;
    if stdout {
        let mut buf = Vec::new();
        io::write_picture(&hr, plan.format, &metadata, &mut buf, Path::new("stdout"))?;
        write_stdout(&buf)?;
    } else {
        let mut out = AtomicOutput::create(output, plan.force)?;
        io::write_picture(&hr, plan.format, &metadata, out.file(), output)?;
        out.commit()?;
    }
    Ok((ow, oh))
}

/// Writes a whole encoded output to stdout and flushes it.
fn write_stdout(buf: &[u8]) -> Result<()> {
    let mut so = std::io::stdout().lock();
    so.write_all(buf).context("stdout: cannot write")?;
    so.flush().context("stdout: cannot write")
}

/// Streams an 8-bit PNG (RGB, grey, RGBA or grey + alpha) band by band, through a
/// [`photo::RowResizer`] when the size is not the model's. A picture with transparent pixels
/// takes two model passes: its alpha plane first (model-upscaled, resized, pinned where flat),
/// one byte an output pixel into an anonymous temporary file, then its colour (transparent
/// pixels filled by [`photo::fill_transparent_rgba8`]), each output row joined with its alpha
/// row from the file. Memory: the input, its filled copy and a window of rows; the disk holds
/// the alpha plane (one byte an output pixel) until the output is written.
fn stream_png(
    upscaler: &Upscaler,
    img: DynamicImage,
    (ow, oh): (u32, u32),
    grey: bool,
    output: &Path,
    metadata: &Metadata,
    plan: &Plan,
    pb: &ProgressBar,
) -> Result<()> {
    use std::io::{BufReader, BufWriter, Seek};
    let s = upscaler.scale() as u32;
    let (w, h) = (img.width(), img.height());
    let native = (ow, oh) == (w * s, h * s);
    let alpha = img.color().has_alpha();
    let in_px = u64::from(w) * u64::from(h);
    if alpha {
        // Alpha plane (f32 and its replicated RGB copy), the flat map, the RGBA8 copy and the
        // filled picture with its pyramid.
        let need = in_px * 28;
        if need > plan.limit_mem {
            bail!(
                "a {w}×{h} picture with transparency needs about {:.0} MB besides its pixels \
                 (alpha plane, colour fill), over --limit-mem {:.0} MB: raise --limit-mem",
                need as f64 / 1e6,
                plan.limit_mem as f64 / 1e6
            );
        }
    }
    let lr_px_per_byte = 3 * u64::from(s) * u64::from(s);
    let (ow_, oh_) = (ow as usize, oh as usize);
    // Pass 1: the alpha plane, one byte an output pixel, into a temporary file.
    let mut alpha_rows = None;
    if alpha {
        let a = photo::alpha_plane(&img);
        let flat = photo::FlatAlpha::new(&a, w, h);
        let rgb = photo::alpha_as_rgb8(&a, w, h).context("alpha plane size")?;
        drop(a);
        let file =
            tempfile::tempfile().context("cannot create a temporary file for the alpha plane")?;
        let mut file = BufWriter::new(file);
        let mut resizer = (!native).then(|| photo::RowResizer::new(w * s, h * s, ow, oh));
        let mut oy = 0usize;
        let mut rowf = vec![0f32; ow_];
        let mut row8 = vec![0u8; ow_];
        upscaler.upscale_rows(&rgb, |_, rows| {
            let mut put = |r: &[u8]| -> Result<(), savl::Error> {
                for line in r.chunks_exact(ow_ * 3) {
                    for (v, p) in rowf.iter_mut().zip(line.chunks_exact(3)) {
                        *v = (f32::from(p[0]) + f32::from(p[1]) + f32::from(p[2])) / 765.0;
                    }
                    flat.pin_row(&mut rowf, oy, oh_);
                    for (o, v) in row8.iter_mut().zip(&rowf) {
                        *o = (v * 255.0).round().clamp(0.0, 255.0) as u8;
                    }
                    file.write_all(&row8)
                        .map_err(|e| savl::Error::Sink(Box::new(e)))?;
                    oy += 1;
                }
                Ok(())
            };
            match &mut resizer {
                None => put(rows),
                Some(rz) => rz.push_rows(rows, put),
            }
        })?;
        let mut file = file
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write the alpha plane's temporary file")?;
        file.rewind()
            .context("cannot read the alpha plane's temporary file")?;
        alpha_rows = Some(BufReader::new(file));
    }
    // Pass 2: the colour, joined with the alpha rows.
    let rgb_in = if alpha {
        photo::fill_transparent_rgba8(&img.to_rgba8())
    } else {
        io::to_rgb8(img)
    };
    let channels: u8 = match (grey, alpha) {
        (true, false) => 1,
        (true, true) => 2,
        (false, false) => 3,
        (false, true) => 4,
    };
    let out = AtomicOutput::create(output, plan.force)?;
    let mut png = PngRowWriter::with_colour(out.writer()?, ow, oh, output, metadata, channels)?;
    let mut resizer = (!native).then(|| photo::RowResizer::new(w * s, h * s, ow, oh));
    let mut line_out: Vec<u8> = Vec::with_capacity(ow_ * 4);
    let mut arow = vec![0u8; ow_];
    upscaler.upscale_rows(&rgb_in, |_, rows| {
        pb.inc(rows.len() as u64 / lr_px_per_byte);
        let mut put = |r: &[u8]| -> Result<(), savl::Error> {
            if !grey && !alpha {
                return png
                    .write_rows(r)
                    .map_err(|e| savl::Error::Sink(Box::new(e)));
            }
            for line in r.chunks_exact(ow_ * 3) {
                if let Some(ar) = &mut alpha_rows {
                    ar.read_exact(&mut arow)
                        .map_err(|e| savl::Error::Sink(Box::new(e)))?;
                }
                line_out.clear();
                for (x, p) in line.chunks_exact(3).enumerate() {
                    if grey {
                        line_out.push(
                            photo::luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
                                .round()
                                .clamp(0.0, 255.0) as u8,
                        );
                    } else {
                        line_out.extend_from_slice(p);
                    }
                    if alpha {
                        line_out.push(arow[x]);
                    }
                }
                png.write_rows(&line_out)
                    .map_err(|e| savl::Error::Sink(Box::new(e)))?;
            }
            Ok(())
        };
        match &mut resizer {
            None => put(rows),
            Some(rz) => rz.push_rows(rows, put),
        }
    })?;
    png.finish()?;
    out.commit()?;
    Ok(())
}

/// Upscales every frame of an animation into an animated output (APNG for PNG, GIF), frame by
/// frame (memory: the decoded frames and one output frame); JPEG and WebP are refused, naming
/// the file, before any work.
fn upscale_animation(
    upscaler: &Upscaler,
    input: &Path,
    output: &Path,
    anim: io::Animation,
    plan: &Plan,
    pb: &ProgressBar,
) -> Result<(u32, u32)> {
    let n = anim.frames.len();
    if !matches!(plan.format, OutputFormat::Png | OutputFormat::Gif) {
        bail!(
            "{} is animated ({n} frames): {} output cannot hold an animation; use -f png \
             (APNG) or -f gif",
            input.display(),
            plan.format
        );
    }
    let (w, h) = anim.frames[0].image.dimensions();
    let ((ow, oh), _) = plan
        .resize
        .output_size(w, h, upscaler.scale())
        .map_err(|e| anyhow::anyhow!(e))?;
    plan.format.check_size(ow, oh, output)?;
    if plan.verbosity > Verbosity::Quiet {
        say(
            pb,
            &format!(
                "savl: {} is animated: {n} frames, all upscaled into {}",
                input.display(),
                if plan.format == OutputFormat::Png {
                    "an APNG"
                } else {
                    "a GIF"
                }
            ),
        );
    }
    let metadata = if plan.strip_metadata {
        Metadata::default()
    } else {
        anim.metadata
    };
    let frames = u32::try_from(n).context("too many frames")?;
    let mut buf: Vec<u8> = Vec::new();
    let mut out = if is_stdio(output) {
        None
    } else {
        if plan.mirror {
            if let Some(dir) = output.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create output folder {}", dir.display()))?;
            }
        }
        Some(AtomicOutput::create(output, plan.force)?)
    };
    {
        let sink: Box<dyn Write> = match &mut out {
            Some(o) => Box::new(o.file()),
            None => Box::new(&mut buf),
        };
        let mut writer =
            io::AnimationWriter::new(sink, plan.format, ow, oh, frames, &metadata, output)?;
        for (i, frame) in anim.frames.into_iter().enumerate() {
            let hr = render(
                upscaler,
                DynamicImage::ImageRgba8(frame.image),
                (ow, oh),
                false,
                false,
                plan,
                pb,
            )
            .with_context(|| format!("frame {i}"))?;
            writer.write_frame(&hr.to_rgba8(), frame.delay_ms)?;
        }
        writer.finish()?;
    }
    match out {
        Some(o) => o.commit()?,
        None => write_stdout(&buf)?,
    }
    Ok((ow, oh))
}

/// The whole output picture: colour by the model (transparent pixels' colour filled first),
/// resized to `size`, grey as luma, alpha upscaled on its own, flattened for JPEG; 8 or 16 bits.
fn render(
    upscaler: &Upscaler,
    img: DynamicImage,
    (ow, oh): (u32, u32),
    grey: bool,
    out16: bool,
    plan: &Plan,
    pb: &ProgressBar,
) -> Result<DynamicImage> {
    let (w, h) = (img.width(), img.height());
    let alpha_channel = img.color().has_alpha();
    let translucent = photo::has_alpha(&img);
    // Transparency and 16 bits are not streamed: what they hold counts against --limit-mem.
    if translucent || out16 {
        let s = upscaler.scale() as u64;
        let in_px = u64::from(w) * u64::from(h);
        let out_px = u64::from(ow) * u64::from(oh);
        let mut need = 0u64;
        if translucent {
            // RGBA8 copy, fill pyramid, filled picture, alpha planes; at the output size the
            // picture, its colour, the alpha pass and two alpha planes.
            need += in_px * 28 + out_px * 18;
        }
        if out16 {
            // The model's float output (twice while interleaved), its resize, the output.
            need += in_px * s * s * 24 + out_px * 20;
        }
        if need > plan.limit_mem {
            bail!(
                "a {w}×{h} picture {} needs about {:.0} MB to upscale to {ow}×{oh} (held whole, \
                 not streamed), over --limit-mem {:.0} MB: raise --limit-mem{}",
                match (translucent, out16) {
                    (true, true) => "with transparency at 16 bits",
                    (true, false) => "with transparency",
                    _ => "at 16 bits",
                },
                need as f64 / 1e6,
                plan.limit_mem as f64 / 1e6,
                if out16 { ", or use --depth 8" } else { "" }
            );
        }
    }
    let alpha_lr = alpha_channel.then(|| photo::alpha_plane(&img));
    let rgb_in: RgbImage = if translucent {
        photo::fill_transparent_rgba8(&img.to_rgba8())
    } else {
        io::to_rgb8(img)
    };
    let flatten = alpha_channel && matches!(plan.format, OutputFormat::Jpeg { .. });
    if flatten && !plan.flatten_said.replace(true) && plan.verbosity > Verbosity::Quiet {
        note!(
            "savl: note: JPEG holds no alpha: transparent pictures are flattened onto #{:02x}{:02x}{:02x} (--background)",
            plan.background[0],
            plan.background[1],
            plan.background[2]
        );
    }
    let alpha = match (&alpha_lr, translucent) {
        (Some(a), true) => Some(upscale_alpha(upscaler, a, w, h, ow, oh)?),
        (Some(_), false) => Some(vec![1.0; ow as usize * oh as usize]),
        (None, _) => None,
    };
    // Plain RGB8: no per-pixel work.
    if !grey && alpha.is_none() && !out16 {
        return Ok(DynamicImage::ImageRgb8(upscale_to(
            upscaler,
            &rgb_in,
            (ow, oh),
            Some(pb),
        )?));
    }
    let colour: Box<dyn Fn(usize) -> [f32; 3]> = if out16 {
        let planar = upscaler.upscale_planar_f32(&rgb_in)?;
        pb.inc(u64::from(w) * u64::from(h));
        let (bw, bh) = (w as usize * upscaler.scale(), h as usize * upscaler.scale());
        let n = bw * bh;
        let inter: Vec<f32> = (0..n)
            .flat_map(|i| [planar[i], planar[n + i], planar[2 * n + i]])
            .collect();
        drop(planar);
        let big =
            image::ImageBuffer::<image::Rgb<f32>, Vec<f32>>::from_raw(bw as u32, bh as u32, inter)
                .context("short output from the upscaler")?;
        let small = photo::resize_rgb32f(big, ow, oh);
        Box::new(move |i| {
            let p = small.as_raw();
            [p[3 * i], p[3 * i + 1], p[3 * i + 2]]
        })
    } else {
        let small = upscale_to(upscaler, &rgb_in, (ow, oh), Some(pb))?;
        Box::new(move |i| {
            let p = small.as_raw();
            [0, 1, 2].map(|c| f32::from(p[3 * i + c]) / 255.0)
        })
    };
    let n = ow as usize * oh as usize;
    let keep_alpha = alpha.is_some() && !flatten;
    let channels = match (grey, keep_alpha) {
        (true, false) => 1,
        (true, true) => 2,
        (false, false) => 3,
        (false, true) => 4,
    };
    // One pass per output pixel into the final sample type, allocated fallibly.
    let samples = |c: [f32; 3], a: f32| {
        let (c, a) = if flatten {
            (photo::flatten(c, a, plan.background), 1.0)
        } else {
            (c, a)
        };
        let mut v = [0f32; 4];
        let mut k = 0;
        if grey {
            v[0] = photo::luma(c[0], c[1], c[2]);
            k = 1;
        } else {
            v[..3].copy_from_slice(&c);
            k += 3;
        }
        if keep_alpha {
            v[k] = a;
        }
        v
    };
    let pixel = |i: usize| samples(colour(i), alpha.as_ref().map_or(1.0, |a| a[i]));
    let len = n.checked_mul(channels).context("output too large")?;
    let too_big =
        |bytes: usize| anyhow::anyhow!("cannot allocate {bytes} bytes for a {ow}×{oh} output");
    let bad = || anyhow::anyhow!("internal error: output buffer size");
    if out16 {
        let buf = quantised(len, channels, &pixel, |x| {
            (x * 65535.0).round().clamp(0.0, 65535.0) as u16
        })
        .map_err(|_| too_big(len * 2))?;
        Ok(match channels {
            1 => DynamicImage::ImageLuma16(
                image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?,
            ),
            2 => DynamicImage::ImageLumaA16(
                image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?,
            ),
            3 => {
                DynamicImage::ImageRgb16(image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?)
            }
            _ => DynamicImage::ImageRgba16(
                image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?,
            ),
        })
    } else {
        let buf = quantised(len, channels, &pixel, |x| {
            (x * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .map_err(|_| too_big(len))?;
        Ok(match channels {
            1 => {
                DynamicImage::ImageLuma8(image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?)
            }
            2 => DynamicImage::ImageLumaA8(
                image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?,
            ),
            3 => {
                DynamicImage::ImageRgb8(image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?)
            }
            _ => {
                DynamicImage::ImageRgba8(image::ImageBuffer::from_raw(ow, oh, buf).ok_or_else(bad)?)
            }
        })
    }
}

/// The `len` samples of an output of `channels` samples a pixel, pixel `i` from `pixel(i)`, each
/// quantised by `q`, in a buffer allocated fallibly.
fn quantised<T>(
    len: usize,
    channels: usize,
    pixel: &dyn Fn(usize) -> [f32; 4],
    q: impl Fn(f32) -> T,
) -> Result<Vec<T>, std::collections::TryReserveError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)?;
    for i in 0..len / channels {
        buf.extend(pixel(i)[..channels].iter().map(|&x| q(x)));
    }
    Ok(buf)
}

/// The model's output of `img` resized to `ow × oh` ([`photo::RowResizer`], fed band by band:
/// memory is the output and a window of rows, never the model's full-size output), allocated
/// fallibly. Counts the input's pixels on `pb`.
fn upscale_to(
    upscaler: &Upscaler,
    img: &RgbImage,
    (ow, oh): (u32, u32),
    pb: Option<&ProgressBar>,
) -> Result<RgbImage> {
    let s = upscaler.scale() as u32;
    let (w, h) = img.dimensions();
    let len = (ow as usize)
        .checked_mul(oh as usize)
        .and_then(|n| n.checked_mul(3))
        .context("output too large")?;
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| anyhow::anyhow!("cannot allocate {len} bytes for a {ow}×{oh} output"))?;
    let lr_px_per_byte = 3 * u64::from(s) * u64::from(s);
    let native = (ow, oh) == (w * s, h * s);
    let mut resizer = (!native).then(|| photo::RowResizer::new(w * s, h * s, ow, oh));
    upscaler.upscale_rows(img, |_, rows| {
        if let Some(pb) = pb {
            pb.inc(rows.len() as u64 / lr_px_per_byte);
        }
        match &mut resizer {
            None => buf.extend_from_slice(rows),
            Some(rz) => rz.push_rows(rows, |r| {
                buf.extend_from_slice(r);
                Ok::<(), savl::Error>(())
            })?,
        }
        Ok(())
    })?;
    RgbImage::from_raw(ow, oh, buf).context("short output from the upscaler")
}

/// The alpha plane at the output size, by [`photo::ALPHA_METHOD`].
fn upscale_alpha(
    upscaler: &Upscaler,
    alpha: &[f32],
    w: u32,
    h: u32,
    ow: u32,
    oh: u32,
) -> Result<Vec<f32>> {
    if let Some(a) = photo::upscale_alpha(alpha, w, h, ow, oh, photo::ALPHA_METHOD) {
        return Ok(a);
    }
    photo::upscale_alpha_with(alpha, w, h, ow, oh, |rgb| {
        upscale_to(upscaler, rgb, (ow, oh), None).map_err(|e| format!("{e:#}"))
    })
    .map_err(|e| anyhow::anyhow!(e))
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
            "a {w}×{h} picture needs {:.0} MB for one band of output rows, over --limit-mem {:.0} \
             MB (raise it, or lower --tile)",
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
    fn shards_colours_and_output_stems_parse() {
        assert_eq!(parse_shard("2/8"), Ok((2, 8)));
        assert!(parse_shard("0/3").is_err() && parse_shard("4/3").is_err());
        assert!(parse_shard("1").is_err());
        assert_eq!(parse_colour("#ff8000"), Ok([255, 128, 0]));
        assert_eq!(parse_colour("white"), Ok([255; 3]));
        assert!(parse_colour("#ff80").is_err());
        assert!(is_output_stem("a_x4") && is_output_stem("a_x1.5"));
        assert!(!is_output_stem("a_x") && !is_output_stem("max") && !is_output_stem("a_xy"));
    }

    fn job(rel: &str) -> Job {
        Job {
            input: PathBuf::from(rel),
            rel: PathBuf::from(rel),
            state: State::Run(PathBuf::new()),
        }
    }

    proptest::proptest! {
        /// Over any set of relative paths, shards 1/3, 2/3 and 3/3 together hold every input
        /// exactly once, each in the original order.
        #[test]
        fn three_shards_cover_every_input_exactly_once(
            names in proptest::collection::btree_set("[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,2}\\.png", 0..60)
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let mut seen: Vec<String> = Vec::new();
            for k in 1..=3 {
                let shard = select_shard(names.iter().map(|n| job(n)).collect(), k, 3);
                let got: Vec<String> =
                    shard.iter().map(|j| j.rel.to_string_lossy().into_owned()).collect();
                let mut sorted = got.clone();
                sorted.sort();
                proptest::prop_assert_eq!(&got, &sorted);
                seen.extend(got);
            }
            seen.sort();
            proptest::prop_assert_eq!(seen, names);
        }
    }

    #[test]
    fn shards_depend_on_the_relative_path_only_and_spread() {
        // A stable function of the path: the same on every machine and every run.
        assert_eq!(
            shard_of(Path::new("a/b.png"), 3),
            shard_of(Path::new("a/b.png"), 3)
        );
        let counts = (0..300).fold([0usize; 3], |mut c, i| {
            c[shard_of(Path::new(&format!("d/img{i:04}.jpg")), 3) as usize] += 1;
            c
        });
        assert!(
            counts.iter().all(|&c| (70..=130).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn output_names() {
        assert_eq!(
            output_name(Path::new("a/b/photo.jpeg"), &suffix(4.0), OutputFormat::Png),
            PathBuf::from("photo_x4.png")
        );
        assert_eq!(
            output_name(Path::new("x.y.png"), &suffix(2.0), OutputFormat::WebP),
            PathBuf::from("x.y_x2.webp")
        );
    }
}
