//! The `savl` commands.
//!
//! Layering (style notes §5, §8.5): clap derive `Args` mirror the flags and only validate; each
//! subcommand's `Plan::from_args` resolves them (paths, formats, the loaded `Upscaler`); `run`
//! does the work. Only this binary uses `anyhow`; errors print as `savl: error: {:#}`.
//!
//! Exit codes: 0 everything succeeded (a closed stdout pipe counts as success), 1 some inputs
//! failed (each is listed at the end), 2 usage or fatal error (bad flags, unloadable model, or an
//! internal error: a panic is caught and reported, never left to exit with 101). Messages go to
//! stderr through [`note!`], which ignores a closed or full stderr: it never stops the work.
//!
//! SIGINT, SIGTERM and SIGHUP remove the temporary files of unfinished outputs, then end the
//! process by the same signal (see [`signals`]).

/// Writes a line to stderr. A closed or full stderr is ignored: messages must never stop the work
/// (`eprintln!` would panic).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod inspect;
mod map;
mod model;
mod progress;
mod raw;
mod upscale;
mod video;
mod y4m;

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
    Video(video::VideoArgs),
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
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // Help and version go to stdout, errors to stderr; either may be closed.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    signals::install();
    // A binary owns the process's allocator: tensor memory freed by one op is reused by the
    // next instead of being handed back and faulted in again.
    savl::tune_allocator();
    let verbosity = args.verbosity();
    let result = std::panic::catch_unwind(move || match args.command {
        Command::Upscale(a) => upscale::run_args(a, verbosity),
        Command::Inspect(a) => inspect::run_args(a, verbosity),
        Command::Video(a) => video::run_args(a, verbosity),
    });
    match result {
        Ok(Ok(Outcome::Ok)) => ExitCode::SUCCESS,
        Ok(Ok(Outcome::SomeFailed)) => ExitCode::from(1),
        Ok(Err(e)) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            note!("savl: error: {e:#}");
            ExitCode::from(2)
        }
        Err(_) => {
            note!("savl: error: internal error (a bug, please report it); outputs in progress were removed");
            ExitCode::from(2)
        }
    }
}

/// Signal handling: SIGINT, SIGTERM and SIGHUP remove unfinished outputs' temporary files.
pub mod signals {
    /// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and every thread started after it,
    /// and starts a thread that waits for them. On one, that thread removes the temporary files
    /// of unfinished outputs ([`savl_cli::io::remove_temp_files`]) and ends the process by the same
    /// signal with its default action (so a shell sees 130 for Ctrl-C). A signal ignored when
    /// savl started stays ignored. Call it first in `main`, before any thread is started.
    #[cfg(unix)]
    pub fn install() {
        // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask, sigwait,
        // signal and raise are called with valid signal numbers and pointers to live sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return;
            }
            let waiter = std::thread::Builder::new()
                .name("savl-signals".into())
                .spawn(move || {
                    let mut sig: libc::c_int = 0;
                    while libc::sigwait(&set, &mut sig) != 0 {}
                    savl_cli::io::remove_temp_files();
                    libc::signal(sig, libc::SIG_DFL);
                    let mut one: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut one);
                    libc::sigaddset(&mut one, sig);
                    libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                    libc::raise(sig);
                    std::process::exit(128 + sig);
                });
            if waiter.is_err() {
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            }
        }
    }

    /// Not on Unix: nothing is installed.
    #[cfg(not(unix))]
    pub fn install() {}
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
        _ => match cause.downcast_ref::<savl_cli::io::IoError>() {
            Some(savl_cli::io::IoError::Write { cause, .. }) => {
                cause.kind() == std::io::ErrorKind::BrokenPipe
            }
            _ => false,
        },
    }
}
