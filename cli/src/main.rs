//! The `savl` command line: `savl upscale`, `savl inspect`. See `savl --help` and `docs/cli.md`.
//!
//! The commands live in `src/cmd/` (clap `Args` → `Plan::from_args` → `run`); this file only
//! returns their exit code: 0 success, 1 some inputs failed, 2 usage or fatal error.

mod cmd;

fn main() -> std::process::ExitCode {
    cmd::main()
}
