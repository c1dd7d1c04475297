//! The `savl-train` command: degradation synthesis, training, export, evaluation and probes.
//! See `savl-train --help` and the crate docs of `savl_train`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use savl_train::cmd;

/// Training side of savl: degradation synthesis, training, export, evaluation.
#[derive(Parser, Debug)]
#[command(name = "savl-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Synthesise degraded LR/HR pairs with per-pixel ground-truth maps.
    Degrade(cmd::degrade::Args),
    /// Train a SAVL model.
    Train(cmd::train::Args),
    /// Export a checkpoint's inference path to ONNX.
    Export(cmd::export::Args),
    /// PSNR-Y, SSIM-Y and SSIMULACRA 2 of savl, bicubic and the peers on degraded HR sets.
    Eval(cmd::eval::Args),
    /// The same crop from every method side by side, as one labelled PNG.
    Compare(cmd::compare::Args),
    /// Representation probes on the frozen degradation code (noise level, scene ID, Spearman).
    Probe(cmd::probe::Args),
    /// Store the code the model gives on clean photos (`savl.clean_code`, for `--strength`).
    CleanCode(cmd::clean_code::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Training allocates and frees the same multi-MB activations every step: keep them in the
    // heap instead of an mmap/munmap (page faults, TLB shootdowns) per tensor.
    savl::tune_allocator();
    let result = match cli.command {
        Command::Degrade(a) => cmd::degrade::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Probe(a) => cmd::probe::run(a),
        Command::CleanCode(a) => cmd::clean_code::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("savl-train: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
