//! `savl-train degrade` (to be written).

/// Arguments of `savl-train degrade`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("savl-train degrade: not implemented yet")
}
