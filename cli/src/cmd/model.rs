//! Model flags shared by the subcommands, and building the `Upscaler` from them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use savl::{Precision, Upscaler};

use super::Verbosity;

/// Model, precision, tiling and threads.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// ONNX model file (default: the model embedded in this binary).
    #[arg(short, long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Numeric precision: auto, f32, f16 or int8. `auto` picks the one expected to run fastest
    /// on this CPU among those the model has (with `-m`, the named file and its siblings
    /// `NAME.onnx`, `NAME.f16.onnx`, `NAME.int8.onnx`, whichever was named); -v prints the
    /// choice and why. A precision the named file lacks is taken from its sibling, and a note
    /// names the file used.
    #[arg(short, long, value_name = "P", default_value = "auto")]
    pub precision: String,

    /// A fixed tile side in input pixels. By default each picture gets the largest tile (the
    /// fewest tiles, one when it fits) within --max-memory; -v prints the estimate.
    #[arg(long, value_name = "N")]
    pub tile: Option<usize>,

    /// Memory budget in MB for the tiles' working sets (one per thread running a tile) and one
    /// band of output rows; it sets the tile size when --tile is not given. The decoded picture
    /// counts against --limit-mem instead.
    #[arg(long, value_name = "MB", default_value_t = savl::DEFAULT_MAX_MEMORY as f64 / 1e6,
          value_parser = super::upscale::parse_megabytes)]
    pub max_memory: f64,

    /// Worker threads (default: the available cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,

    /// Denoising strength, 0 to 4: how much of the estimated degradation the model is told
    /// about. 1 is the model as trained, 0 treats the picture as clean; with the shipped model
    /// higher values give more fine detail.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub strength: f32,
}

impl ModelArgs {
    /// Loads the model and builds the upscaler; errors name the model file. `max_pixels` is the
    /// decoded-size limit, passed on so the runtime accepts what the decoder accepted.
    pub fn build(&self, max_pixels: u64, verbosity: Verbosity) -> Result<Upscaler> {
        let precision: Precision = self
            .precision
            .parse()
            .with_context(|| format!("invalid --precision {:?}", self.precision))?;
        let mut builder = Upscaler::builder()
            .precision(precision)
            .strength(self.strength)
            .max_input_pixels(max_pixels)
            .max_memory(super::upscale::megabytes(self.max_memory));
        if let Some(path) = &self.model {
            if !path.is_file() {
                // A clearer message than the loader's for the commonest mistake.
                let why = if path.exists() {
                    "not a file"
                } else {
                    "no such file"
                };
                anyhow::bail!("model {}: {why}", path.display());
            }
            builder = builder.model_path(path);
        }
        if let Some(tile) = self.tile {
            builder = builder.tile(tile);
        }
        if let Some(threads) = self.threads {
            builder = builder.threads(threads);
        }
        // The runtime's errors already name the model file (or `<embedded>`).
        let upscaler = builder.build()?;
        if let Some(path) = &self.model {
            if upscaler.model_name() != path.as_path() && verbosity > Verbosity::Quiet {
                if precision == Precision::Auto {
                    note!(
                        "savl: note: precision auto runs {} (the {} variant of {}: faster on \
                         this CPU; -v says why, --precision picks one)",
                        upscaler.model_name().display(),
                        upscaler.precision(),
                        path.display()
                    );
                } else {
                    note!(
                        "savl: note: {} has no {} weights; using {}",
                        path.display(),
                        upscaler.precision(),
                        upscaler.model_name().display()
                    );
                }
            }
        }
        if verbosity >= Verbosity::Verbose {
            note!("{}", upscaler.describe());
        }
        Ok(upscaler)
    }
}
