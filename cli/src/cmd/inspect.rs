//! `savl inspect`: the model's estimate of how a picture is degraded, as numbers and a map.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use savl_cli::io::{self, AtomicOutput, DecodeLimits, OutputFormat};

use super::map::{self, Maps};
use super::model::ModelArgs;
use super::{Outcome, Verbosity};

/// Estimate where and how strongly a picture is degraded.
///
/// Prints severity statistics on stdout. With --map, also writes a picture of three panels
/// side by side: left the input; middle the severity heatmap (turbo colours, dark blue = clean
/// s = −3 … dark red = strongly degraded s = +3, scale strip underneath); right the degradation
/// code μ as colour (its first three principal components as R, G, B: similar colour = similar
/// kind of degradation).
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The picture to inspect.
    #[arg(value_name = "IN")]
    input: PathBuf,

    /// Write the map picture here (.png, .jpg or .webp).
    #[arg(long, value_name = "OUT.png")]
    map: Option<PathBuf>,

    /// Replace the map file if it exists.
    #[arg(long)]
    force: bool,

    /// Decoded-size limit in megapixels: larger inputs are refused before they are decoded.
    #[arg(long, value_name = "MP", default_value_t = 100.0,
          value_parser = super::upscale::parse_megapixels, allow_negative_numbers = true)]
    limit_mp: f64,

    /// Memory limit in MB for the decoded picture (with its RGB copy), checked before decoding.
    #[arg(long, value_name = "MB", default_value_t = super::upscale::DEFAULT_LIMIT_MEM_MB,
          value_parser = super::upscale::parse_megabytes, allow_negative_numbers = true)]
    limit_mem: f64,

    #[command(flatten)]
    model: ModelArgs,
}

/// The resolved command.
#[derive(Debug)]
pub struct Plan {
    input: PathBuf,
    map: Option<(PathBuf, OutputFormat)>,
    force: bool,
    limits: DecodeLimits,
    verbosity: Verbosity,
}

impl Plan {
    /// Checks the map path (format from its extension, never an input, not existing without
    /// --force).
    pub fn from_args(args: &InspectArgs, verbosity: Verbosity) -> Result<Plan> {
        let map = match &args.map {
            None => None,
            Some(path) => {
                let Some(format) = OutputFormat::from_path(path) else {
                    bail!(
                        "cannot tell the format of {} from its extension: use .png, .jpg or .webp",
                        path.display()
                    );
                };
                if *path == args.input || io::is_same_file(path, &args.input) {
                    bail!("{}: refusing to overwrite the input", path.display());
                }
                io::check_destination(path, args.force)?;
                Some((path.clone(), format))
            }
        };
        Ok(Plan {
            input: args.input.clone(),
            map,
            force: args.force,
            limits: DecodeLimits::megapixels(args.limit_mp)
                .with_max_alloc(super::upscale::megabytes(args.limit_mem)),
            verbosity,
        })
    }
}

/// Runs `savl inspect`.
pub fn run_args(args: InspectArgs, verbosity: Verbosity) -> Result<Outcome> {
    let plan = Plan::from_args(&args, verbosity)?;
    let upscaler = args.model.build(plan.limits.max_pixels, plan.verbosity)?;
    run(plan, &upscaler)
}

/// Decodes, estimates, prints the statistics and writes the map. A closed stdout comes back as
/// a broken-pipe error (a quiet success for `main`).
pub fn run(plan: Plan, upscaler: &savl::Upscaler) -> Result<Outcome> {
    let img = match io::decode_path(&plan.input, &plan.limits) {
        Ok(img) => img,
        Err(e) => {
            note!("savl: {e}");
            return Ok(Outcome::SomeFailed);
        }
    };
    let est = match upscaler.estimate(&img) {
        Ok(est) => est,
        // A model without degradation outputs is a fatal (model) problem, not a bad input.
        Err(e @ savl::Error::Unsupported(_)) => return Err(e.into()),
        Err(e) => {
            note!("savl: {}: {e}", plan.input.display());
            return Ok(Outcome::SomeFailed);
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}: {}×{}, degradation code of {} dimensions",
        plan.input.display(),
        img.width(),
        img.height(),
        est.dim
    )?;
    if let Some((mean, median, p90, max, above)) = map::severity_stats(&est.severity) {
        writeln!(
            stdout,
            "severity (-3 clean .. +3 severe): mean {mean:.2}, median {median:.2}, \
             p90 {p90:.2}, max {max:.2}; {:.1}% of pixels above 1",
            100.0 * above
        )?;
    }
    stdout.flush()?;
    drop(stdout);
    if let Some((path, format)) = &plan.map {
        let picture = map::render(&img, Maps::from(&est));
        let mut out = AtomicOutput::create(path, plan.force)?;
        io::write_image(&picture, *format, out.file(), path)?;
        out.commit()?;
        if plan.verbosity > Verbosity::Quiet {
            note!(
                "savl: wrote {} (left: input, middle: severity, right: μ as colour)",
                path.display()
            );
        }
    }
    Ok(Outcome::Ok)
}
