//! The `savl` command line (feature `cli`).
//!
//! Layering (style notes §5, §8.5): clap derive `Args` mirror the flags and only validate; each
//! subcommand's `Plan::from_args` resolves them (paths, formats, the loaded `Upscaler`); `run`
//! does the work. Only this binary uses `anyhow`; errors print as `savl: error: {:#}`.
//!
//! Exit codes: 0 everything succeeded (a closed stdout pipe counts as success), 1 some inputs
//! failed (each is listed at the end), 2 usage or fatal error (bad flags, unloadable model).

mod inspect;
mod map;
mod model;
mod progress;
mod raw;
mod upscale;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Degradation-aware ×4 super-resolution for photos and video frames.
///
/// `savl upscale photo.jpg` writes `photo_x4.png` beside it, with the model embedded in this
/// binary. `savl inspect photo.jpg --map map.png` shows where the picture is degraded.
#[derive(Debug, Parser)]
#[command(name = "savl", version, propagate_version = true, max_term_width = 100)]
pub struct Args {
    /// More output on stderr: the model, precision choice and why, tiles, threads, and a line
    /// per file.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// No progress bar and no summary; only errors go to stderr.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Upscale(upscale::UpscaleArgs),
    Inspect(inspect::InspectArgs),
}

/// How chatty to be on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Progress bar (on a terminal), failures, a one-line summary.
    Normal,
    /// `-v`: also the model description and a line per file.
    Verbose,
}

impl Args {
    fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// What a successful run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every input succeeded.
    Ok,
    /// Some inputs failed; they were listed.
    SomeFailed,
}

/// Parses the command line, runs it and maps the result to an exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let verbosity = args.verbosity();
    let result = match args.command {
        Command::Upscale(a) => upscale::run_args(a, verbosity),
        Command::Inspect(a) => inspect::run_args(a, verbosity),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("savl: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether the error comes from writing to a closed pipe (`savl … | head`): not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(is_broken_pipe_cause)
}

fn is_broken_pipe_cause(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return io.kind() == std::io::ErrorKind::BrokenPipe;
    }
    match cause.downcast_ref::<savl::Error>() {
        Some(savl::Error::Io { source, .. }) => source.kind() == std::io::ErrorKind::BrokenPipe,
        Some(savl::Error::Sink(inner)) => is_broken_pipe_cause(inner.as_ref()),
        _ => match cause.downcast_ref::<savl::io::IoError>() {
            Some(savl::io::IoError::Write { cause, .. }) => {
                cause.kind() == std::io::ErrorKind::BrokenPipe
            }
            _ => false,
        },
    }
}
