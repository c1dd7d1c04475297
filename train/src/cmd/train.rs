//! `savl-train train` (to be written).

/// Arguments of `savl-train train`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("savl-train train: not implemented yet")
}
