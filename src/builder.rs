//! [`UpscalerBuilder`]: every setting of an [`Upscaler`], with defaults, validated once in
//! [`UpscalerBuilder::build`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_linalg::multithread::Executor;

use crate::model::{self, LoadOptions, Source};
use crate::precision::CpuCaps;
use crate::tiling::{TileConfig, MAX_TILE, MIN_TILE};
use crate::upscaler::Upscaler;
use crate::{Error, Precision};

/// Halo used for models without `savl.receptive_field` metadata.
pub const DEFAULT_FOREIGN_HALO: usize = 16;
/// Largest accepted thread count.
pub const MAX_THREADS: usize = 256;
/// The most threads an upscaler uses when none is asked for.
pub const DEFAULT_MAX_THREADS: usize = 16;
/// Default cap on input pixels (64 MP).
pub const DEFAULT_MAX_INPUT_PIXELS: u64 = 64 * 1024 * 1024;
/// Default memory budget for the tiles' working set and one band of output rows, in bytes
/// ([`UpscalerBuilder::max_memory`]).
pub const DEFAULT_MAX_MEMORY: u64 = 200_000_000;

/// Builds an [`Upscaler`]; every setting is validated once, in [`UpscalerBuilder::build`].
#[derive(Debug, Clone)]
pub struct UpscalerBuilder {
    source: Source,
    precision: Precision,
    tiles: TileConfig,
    tile_auto: bool,
    max_memory: u64,
    threads: Option<usize>,
    fuse_modulation: bool,
    direct_spatial: bool,
    max_input_pixels: u64,
    strength: f32,
}

impl Default for UpscalerBuilder {
    fn default() -> Self {
        UpscalerBuilder {
            source: Source::Embedded,
            precision: Precision::Auto,
            tiles: TileConfig::default(),
            tile_auto: true,
            max_memory: DEFAULT_MAX_MEMORY,
            threads: None,
            fuse_modulation: true,
            direct_spatial: false,
            max_input_pixels: DEFAULT_MAX_INPUT_PIXELS,
            strength: 1.0,
        }
    }
}

impl UpscalerBuilder {
    /// Use the model file at `path`. Its precision variants are `NAME.onnx`, `NAME.f16.onnx` and
    /// `NAME.int8.onnx` beside each other: with [`Precision::Auto`] the one that runs fastest on
    /// this CPU ([`crate::CpuCaps::choose`]) among the named file and its readable siblings is
    /// used, whichever was named; an explicit precision the file lacks is taken from its
    /// sibling, else it is an [`Error::Unsupported`].
    pub fn model_path(mut self, path: impl AsRef<Path>) -> Self {
        self.source = Source::Path(path.as_ref().to_path_buf());
        self
    }

    /// Use an ONNX model held in memory.
    pub fn model_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.source = Source::Bytes(Arc::from(bytes.into()));
        self
    }

    /// Use the default model embedded in the binary (the default).
    pub fn embedded_model(mut self) -> Self {
        self.source = Source::Embedded;
        self
    }

    /// Numeric precision (default [`Precision::Auto`]).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// A fixed tile side in LR pixels, halo included ([`MIN_TILE`]..=[`MAX_TILE`]). Without it
    /// the side is chosen per image from [`UpscalerBuilder::max_memory`]
    /// ([`Upscaler::tile_for`]).
    pub fn tile(mut self, tile: usize) -> Self {
        self.tiles.tile = tile;
        self.tile_auto = false;
        self
    }

    /// Memory budget in bytes for what a run holds besides the model and the caller's images:
    /// the tiles' working sets (one per concurrent tile worker, estimated from the graph) and
    /// one band of output rows. Default [`DEFAULT_MAX_MEMORY`]. Without a fixed
    /// [`UpscalerBuilder::tile`], each image gets the largest tile (the fewest tiles, one when
    /// the image fits) within it; with a fixed tile it is not used.
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = bytes;
        self
    }

    /// Tile overlap per side in LR pixels (default: the model's `savl.receptive_field`, or 16).
    /// Must be < tile/2; smaller than the receptive field makes tile seams visible.
    pub fn halo(mut self, halo: usize) -> Self {
        self.tiles.halo = Some(halo);
        self
    }

    /// Both tiling settings at once (a fixed tile side, as [`UpscalerBuilder::tile`]).
    pub fn tiles(mut self, tiles: TileConfig) -> Self {
        self.tiles = tiles;
        self.tile_auto = false;
        self
    }

    /// Worker threads (1..=[`MAX_THREADS`]; default: the number of CPUs, at most
    /// [`DEFAULT_MAX_THREADS`]).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Largest accepted input, in pixels (default 64 MP). Larger images are an
    /// [`Error::Limits`].
    pub fn max_input_pixels(mut self, pixels: u64) -> Self {
        self.max_input_pixels = pixels;
        self
    }

    /// Denoising strength in `0..=4` (default 1, the model as trained): how much of the
    /// estimated degradation code the SR net is told about ([`crate::strength`]); the output
    /// moves monotonically with it. Needs a savl model with `savl.clean_code` metadata; other
    /// models are an [`Error::Unsupported`] for any value but 1.
    pub fn strength(mut self, strength: f32) -> Self {
        self.strength = strength;
        self
    }

    /// Fuse `x · sigmoid(g)` modulation blocks into one pass (default on). For tests and benches.
    #[doc(hidden)]
    pub fn fused_modulation(mut self, on: bool) -> Self {
        self.fuse_modulation = on;
        self
    }

    /// Let tract pick its DirectSpatialConv path (default off: slower than im2col on x86,
    /// `docs/PERF.md`).
    #[doc(hidden)]
    pub fn direct_spatial(mut self, on: bool) -> Self {
        self.direct_spatial = on;
        self
    }

    /// Load the model, resolve the precision, validate the settings.
    pub fn build(self) -> Result<Upscaler, Error> {
        // tract can panic on a malformed graph; that is the model's error, not a crash.
        let label = match &self.source {
            Source::Path(p) => p.clone(),
            Source::Bytes(_) => PathBuf::from("<bytes>"),
            Source::Embedded => PathBuf::from("<embedded>"),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.build_inner()))
            .unwrap_or_else(|payload| {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                Err(Error::model(
                    label,
                    format!("the engine failed on this model (an engine bug: {what})"),
                    None,
                ))
            })
    }

    fn build_inner(self) -> Result<Upscaler, Error> {
        let threads = match self.threads {
            Some(t) if (1..=MAX_THREADS).contains(&t) => t,
            Some(t) => return Err(Error::config("threads", t, format!("in 1..={MAX_THREADS}"))),
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(DEFAULT_MAX_THREADS),
        };
        if !(MIN_TILE..=MAX_TILE).contains(&self.tiles.tile) {
            return Err(Error::config(
                "tile",
                self.tiles.tile,
                format!("in {MIN_TILE}..={MAX_TILE}"),
            ));
        }
        if self.max_memory == 0 {
            return Err(Error::config("max_memory", 0, "at least 1 byte"));
        }
        if self.max_input_pixels == 0 {
            return Err(Error::config("max_input_pixels", 0, "at least 1"));
        }
        if !(0.0..=crate::strength::MAX_STRENGTH).contains(&self.strength) {
            return Err(Error::config(
                "strength",
                self.strength,
                format!("in 0..={}", crate::strength::MAX_STRENGTH),
            ));
        }
        let caps = CpuCaps::detect();
        let opts = LoadOptions {
            fuse_modulation: self.fuse_modulation,
            strength: self.strength,
            fp16_winograd: false,
        };
        let (model, why) = model::load_for(&self.source, self.precision, &caps, opts)?;

        let (halo, halo_src) = match (self.tiles.halo, model.meta.receptive_field) {
            (Some(h), _) => (h, "set by caller"),
            (None, Some(rf)) => (rf, "model savl.receptive_field"),
            (None, None) => (
                DEFAULT_FOREIGN_HALO,
                "default for models without savl metadata",
            ),
        };
        self.tiles.validate(halo)?;

        let executor = (threads > 1).then(|| Executor::multithread_with_name(threads, "savl"));
        Ok(Upscaler {
            precision: model.run_precision(),
            model,
            why,
            caps,
            tiles: self.tiles,
            tile_auto: self.tile_auto,
            max_memory: self.max_memory,
            tile_cache: Default::default(),
            halo,
            halo_src,
            threads,
            executor,
            disable_direct_spatial: !self.direct_spatial,
            max_input_pixels: self.max_input_pixels,
        })
    }
}
