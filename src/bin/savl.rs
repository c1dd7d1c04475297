//! The `savl` command line: `savl upscale`, `savl inspect`. See `savl --help` and `docs/cli.md`.
//!
//! The code lives in `src/cli/` (clap `Args` → `Plan::from_args` → `run`); this file only
//! returns its exit code: 0 success, 1 some inputs failed, 2 usage or fatal error.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
