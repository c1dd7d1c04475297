//! `savl-train export` (to be written).

/// Arguments of `savl-train export`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("savl-train export: not implemented yet")
}
