//! `savl-train probe`: the representation probes of the paper's Table 1 on the frozen μ of each
//! model (protocol in [`crate::probe`]).

use crate::cmd::eval::append_md;
use crate::degrade::probe::ProbeConfig;
use crate::probe::{
    parse_model_arg, probe_markdown, run_probes, Features, ProbeRunConfig, ProbeSet, Unmeasured,
};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Arguments of `savl-train probe`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Models, comma-separated, each `LABEL=PATH` or a path. A missing file or a model
    /// without `mu`/`severity` outputs gives a "not measured" row.
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// Why a model is missing, `LABEL=REASON` (repeatable); shown in its row.
    #[arg(long)]
    pub why: Vec<String>,
    /// Folder of HR photos (disjoint from training).
    #[arg(long, default_value = "../shared/data/eval/set14")]
    pub set: PathBuf,
    /// Seed of the maps, noise and splits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Degraded copies of each photo for the noise probe.
    #[arg(long, default_value_t = 2)]
    pub repeats: usize,
    /// Side of the constant-label cells, LR px (a multiple of 16).
    #[arg(long, default_value_t = 32)]
    pub cell: usize,
    /// Gradient-descent steps of the logistic probes.
    #[arg(long, default_value_t = 1500)]
    pub iters: usize,
    /// Leave out the control row (LR patch mean and std instead of μ).
    #[arg(long)]
    pub no_control: bool,
    /// Worker threads per model.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Append the table (with the command) to this Markdown file.
    #[arg(long)]
    pub out_md: Option<PathBuf>,
}

/// Runs the subcommand.
///
/// # Errors
/// Bad arguments, unreadable images or models, a model without μ, or a failed write.
pub fn run(args: Args) -> Result<()> {
    let gen = ProbeConfig {
        cell: args.cell,
        ..ProbeConfig::default()
    };
    anyhow::ensure!(
        args.cell > 0 && args.cell % 16 == 0,
        "--cell must be a multiple of 16"
    );
    let cfg = ProbeRunConfig {
        gen: gen.clone(),
        seed: args.seed,
        repeats: args.repeats.max(1),
        fit: crate::probe::FitOptions {
            iters: args.iters,
            ..Default::default()
        },
        ..Default::default()
    };
    let set = ProbeSet::load(&args.set, &gen)?;
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    let reason = |label: &str| {
        args.why
            .iter()
            .filter_map(|w| w.split_once('='))
            .find(|(l, _)| *l == label)
            .map(|(_, r)| r.to_string())
    };
    let mut sources = Vec::new();
    for m in &args.models {
        let (label, path) = parse_model_arg(m);
        if !path.exists() {
            let why =
                reason(&label).unwrap_or_else(|| format!("{} does not exist", path.display()));
            missing.push(Unmeasured { label, reason: why });
            continue;
        }
        let upscaler = savl::Upscaler::builder()
            .model_path(&path)
            .threads(args.threads)
            .build()
            .with_context(|| format!("loading {}", path.display()))?;
        if !upscaler.has_estimate() {
            missing.push(Unmeasured {
                label,
                reason: format!("{} has no μ/severity outputs", path.display()),
            });
            continue;
        }
        let label = match reason(&label) {
            Some(r) => format!("{label} ({r})"),
            None => label,
        };
        sources.push(Features::Model {
            label,
            upscaler: Box::new(upscaler),
        });
    }
    if !args.no_control {
        sources.push(Features::PixelStats);
    }
    for s in &sources {
        eprintln!("probing {} …", s.label());
        rows.push(run_probes(s, &set, &cfg)?);
    }
    let table = probe_markdown(&rows, &missing);
    let n = rows.first().map_or((0, 0), |r| r.n_test);
    let header = format!(
        "Probe set: {} ({} photos), §3.8 generator, cells {} LR px, seed {}; held-out patches: {} (noise), {} (scene).\n\n",
        args.set.display(),
        set.images.len(),
        args.cell,
        args.seed,
        n.0,
        n.1
    );
    print!("{header}{table}");
    if let Some(p) = &args.out_md {
        let cmdline = std::env::args().collect::<Vec<_>>().join(" ");
        append_md(p, &format!("Command: `{cmdline}`\n\n{header}{table}\n"))?;
    }
    Ok(())
}
