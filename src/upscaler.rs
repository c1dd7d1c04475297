//! The public entry point: [`Upscaler`] and its builder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use image::RgbImage;
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

use crate::model::{self, LoadOptions, LoadedModel, PlanKind, Source};
use crate::precision::CpuCaps;
use crate::tiling::{Rect, Tile, TileConfig, TilePlan, MAX_TILE, MIN_TILE};
use crate::{Error, Precision};

/// Halo used for models without `savl.receptive_field` metadata.
pub const DEFAULT_FOREIGN_HALO: usize = 16;
/// Largest accepted thread count.
pub const MAX_THREADS: usize = 256;
/// The most threads an upscaler uses when none is asked for.
pub const DEFAULT_MAX_THREADS: usize = 16;
/// Default cap on input pixels (64 MP).
pub const DEFAULT_MAX_INPUT_PIXELS: u64 = 64 * 1024 * 1024;

/// Builds an [`Upscaler`]; every setting is validated once, in [`UpscalerBuilder::build`].
#[derive(Debug, Clone)]
pub struct UpscalerBuilder {
    source: Source,
    precision: Precision,
    tiles: TileConfig,
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
            threads: None,
            fuse_modulation: true,
            direct_spatial: false,
            max_input_pixels: DEFAULT_MAX_INPUT_PIXELS,
            strength: 1.0,
        }
    }
}

impl UpscalerBuilder {
    /// Use the model file at `path` (memory-mapped). With [`Precision::Auto`] the file is used as
    /// is; an explicit precision the file lacks is looked for in `NAME.int8.onnx` /
    /// `NAME.f16.onnx` / `NAME.onnx` beside it, else it is an [`Error::Unsupported`].
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

    /// Tile side in LR pixels, halo included ([`MIN_TILE`]..=[`MAX_TILE`]; default
    /// [`DEFAULT_TILE`](crate::DEFAULT_TILE)).
    pub fn tile(mut self, tile: usize) -> Self {
        self.tiles.tile = tile;
        self
    }

    /// Tile overlap per side in LR pixels (default: the model's `savl.receptive_field`, or 16).
    /// Must be < tile/2; smaller than the receptive field makes tile seams visible.
    pub fn halo(mut self, halo: usize) -> Self {
        self.tiles.halo = Some(halo);
        self
    }

    /// Both tiling settings at once.
    pub fn tiles(mut self, tiles: TileConfig) -> Self {
        self.tiles = tiles;
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
        };
        let (model, why) = load_for(&self.source, self.precision, &caps, opts)?;

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
            precision: model.precision,
            model,
            why,
            caps,
            tiles: self.tiles,
            halo,
            halo_src,
            threads,
            executor,
            disable_direct_spatial: !self.direct_spatial,
            max_input_pixels: self.max_input_pixels,
        })
    }
}

fn unsupported_precision(label: &Path, wanted: Precision, has: &[Precision]) -> Error {
    let has: Vec<String> = has.iter().map(|p| p.to_string()).collect();
    Error::Unsupported(format!(
        "model {} has no {wanted} variant (available: {})",
        label.display(),
        has.join(", ")
    ))
}

/// Pick and load the model file for `wanted`; returns the model and why its precision was chosen.
fn load_for(
    source: &Source,
    wanted: Precision,
    caps: &CpuCaps,
    opts: LoadOptions,
) -> Result<(LoadedModel, String), Error> {
    match source {
        Source::Embedded => {
            let available = model::embedded_precisions();
            if available.is_empty() {
                return Err(Error::model(
                    "<embedded>",
                    "this build embeds no default model (models/savl-lite-x4.onnx was missing \
                     at build time); give a model path",
                    None,
                ));
            }
            let (p, why) = match wanted {
                Precision::Auto => {
                    let (p, why) = caps.choose(&available);
                    (p, format!("auto: {why}"))
                }
                p if available.contains(&p) => (p, "requested".to_string()),
                p => {
                    return Err(unsupported_precision(
                        Path::new("<embedded>"),
                        p,
                        &available,
                    ))
                }
            };
            Ok((LoadedModel::load(source, p, opts)?, why))
        }
        Source::Path(path) => {
            let proto = model::read_path(path)?;
            let fp = model::precision_of(&proto);
            if wanted == Precision::Auto || wanted == fp {
                let why = if wanted == Precision::Auto {
                    "auto: the model file as given".to_string()
                } else {
                    "requested".to_string()
                };
                return Ok((LoadedModel::from_proto(&proto, path.clone(), opts)?, why));
            }
            if let Some(sib) = model::sibling(path, wanted) {
                let proto = model::read_path(&sib)?;
                if model::precision_of(&proto) == wanted {
                    let why = format!("requested; {} is the {wanted} variant", sib.display());
                    return Ok((LoadedModel::from_proto(&proto, sib, opts)?, why));
                }
            }
            Err(unsupported_precision(path, wanted, &[fp]))
        }
        Source::Bytes(bytes) => {
            let label = PathBuf::from("<bytes>");
            let proto = model::decode(bytes, &label)?;
            let fp = model::precision_of(&proto);
            if wanted != Precision::Auto && wanted != fp {
                return Err(unsupported_precision(&label, wanted, &[fp]));
            }
            Ok((
                LoadedModel::from_proto(&proto, label, opts)?,
                "the model given as bytes".into(),
            ))
        }
    }
}

/// Degradation maps at LR resolution, from the model's `mu` and `severity` outputs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DegradationEstimate {
    /// LR width.
    pub width: usize,
    /// LR height.
    pub height: usize,
    /// Dimension `d` of the degradation code.
    pub dim: usize,
    /// Posterior mean of the degradation code, planar `d × height × width`.
    pub mu: Vec<f32>,
    /// Standardised severity `s(u)` in [−3, 3], `height × width`.
    pub severity: Vec<f32>,
}

/// A loaded model with its plans, ready to upscale images. `Send + Sync`; plans are cached per
/// tile shape.
pub struct Upscaler {
    model: LoadedModel,
    precision: Precision,
    why: String,
    caps: CpuCaps,
    tiles: TileConfig,
    halo: usize,
    halo_src: &'static str,
    threads: usize,
    executor: Option<Executor>,
    disable_direct_spatial: bool,
    max_input_pixels: u64,
}

impl std::fmt::Debug for Upscaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upscaler")
            .field("model", &self.model.label)
            .field("precision", &self.precision)
            .field("tile", &self.tiles.tile)
            .field("halo", &self.halo)
            .field("threads", &self.threads)
            .finish()
    }
}

/// How the threads are used for one image.
#[derive(Debug, Clone, Copy)]
struct Workers {
    /// Tiles run concurrently, each by its own state over a shared single-thread plan.
    tile_workers: usize,
    /// Whether each plan runs its matmuls on the multithread executor.
    intra_op: bool,
}

impl Upscaler {
    /// A builder using the embedded default model.
    pub fn builder() -> UpscalerBuilder {
        UpscalerBuilder::default()
    }

    /// Precisions of the default model embedded in this build (empty if none was embedded).
    pub fn embedded_precisions() -> Vec<Precision> {
        model::embedded_precisions()
    }

    /// Upscaling factor of the model (4 for savl models).
    pub fn scale(&self) -> usize {
        self.model.scale
    }

    /// Bytes of the band buffer that [`Upscaler::upscale_rows`] holds for a `width × height`
    /// input: `min(tile, height)·scale` output rows of `3·width·scale` bytes. With the decoded
    /// input, this is the memory that depends on the picture; the model's own working set
    /// depends on the tile size and threads only.
    pub fn band_bytes(&self, width: u32, height: u32) -> u64 {
        let s = self.model.scale as u64;
        let rows = (self.tiles.tile as u64).min(u64::from(height)) * s;
        rows.saturating_mul(u64::from(width) * s * 3)
    }

    /// The model in use: its file (a sibling of the one given when the requested precision came
    /// from there), `<embedded:NAME>` or `<bytes>`.
    pub fn model_name(&self) -> &Path {
        &self.model.label
    }

    /// The precision in use (resolved, never `Auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Tile side in LR pixels.
    pub fn tile(&self) -> usize {
        self.tiles.tile
    }

    /// Tile overlap per side in LR pixels.
    pub fn halo(&self) -> usize {
        self.halo
    }

    /// Thread count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether the model has degradation outputs (`mu`, `severity`) for [`Upscaler::estimate`].
    pub fn has_estimate(&self) -> bool {
        self.model.mu.is_some() && self.model.severity.is_some()
    }

    /// Multi-line human-readable description: model, precision and why, CPU, tiling, threads
    /// (for `savl -v`).
    pub fn describe(&self) -> String {
        let m = &self.model;
        let mut s = String::new();
        s.push_str(&format!(
            "model: {} (×{}, preset {}, file precision {}, receptive field {})\n",
            m.label.display(),
            m.scale,
            m.meta.preset.as_deref().unwrap_or("-"),
            m.precision,
            m.meta
                .receptive_field
                .map(|r| r.to_string())
                .unwrap_or_else(|| "unknown".into()),
        ));
        s.push_str(&format!("precision: {} ({})\n", self.precision, self.why));
        s.push_str(&format!(
            "cpu: {} [{}]; fast int8 dot: {}; native fp16: {}; Winograd f32 (AVX2+FMA): {}\n",
            self.caps.isa,
            self.caps.features,
            if self.caps.int8_dot { "yes" } else { "no" },
            if self.caps.fp16 { "yes" } else { "no" },
            if self.caps.fast_f32 { "yes" } else { "no" },
        ));
        s.push_str(&format!(
            "tiles: {}×{} LR px, halo {} ({})\n",
            self.tiles.tile, self.tiles.tile, self.halo, self.halo_src
        ));
        s.push_str(&format!(
            "threads: {} (tiles in parallel when a band has ≥ 2 tiles, else multithreaded matmuls)\n",
            self.threads
        ));
        s.push_str(&format!(
            "engine: tract 0.23; fused modulation blocks: {}; Winograd 3×3 convs: {}; pointwise 1×1 rewrites: {}; DirectSpatialConv {}",
            m.fused,
            m.winograd,
            m.pointwise,
            if self.disable_direct_spatial {
                "disabled"
            } else {
                "allowed"
            }
        ));
        s
    }

    fn check_input(&self, img: &RgbImage) -> Result<(usize, usize), Error> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(Error::InvalidInput(format!("empty image {w}×{h}")));
        }
        if (w as u64) * (h as u64) > self.max_input_pixels {
            return Err(Error::limits(
                format!("input {w}×{h}"),
                (w as u64) * (h as u64),
                self.max_input_pixels,
                "pixels",
            ));
        }
        let s = self.model.scale as u64;
        if (w as u64) * s > u32::MAX as u64 || (h as u64) * s > u32::MAX as u64 {
            return Err(Error::limits(
                format!("output side of {w}×{h} ×{s}"),
                (w.max(h) as u64) * s,
                u64::from(u32::MAX),
                "pixels",
            ));
        }
        Ok((w, h))
    }

    fn workers(&self, plan: &TilePlan) -> Workers {
        if self.threads > 1 && plan.cols() >= 2 {
            Workers {
                tile_workers: self.threads.min(plan.cols()),
                intra_op: false,
            }
        } else {
            Workers {
                tile_workers: 1,
                intra_op: self.threads > 1,
            }
        }
    }

    /// Upscale a whole image in memory.
    pub fn upscale(&self, img: &RgbImage) -> Result<RgbImage, Error> {
        let (w, h) = self.check_input(img)?;
        let s = self.model.scale;
        let (ow, oh) = (w * s, h * s);
        let len = ow
            .checked_mul(oh)
            .and_then(|n| n.checked_mul(3))
            .ok_or_else(|| {
                Error::limits(
                    format!("output {ow}×{oh}"),
                    (ow as u64) * (oh as u64) * 3,
                    usize::MAX as u64,
                    "bytes",
                )
            })?;
        let mut buf: Vec<u8> = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| Error::out_of_memory(format!("a {ow}×{oh} output"), len))?;
        buf.resize(len, 0);
        let row = ow * 3;
        self.upscale_rows(img, |y, rows| {
            let start = y as usize * row;
            buf[start..start + rows.len()].copy_from_slice(rows);
            Ok(())
        })?;
        RgbImage::from_raw(ow as u32, oh as u32, buf)
            .ok_or_else(|| Error::runtime("output buffer size mismatch"))
    }

    /// Upscale, handing out the output as bands of finished rows, top to bottom.
    ///
    /// `sink(first_row, rows)` receives RGB8 rows of `width·scale` pixels (`rows.len()` is a
    /// multiple of `3·width·scale`); bands arrive in order and never overlap. Memory stays
    /// bounded by one band (about `tile·scale` output rows), never the whole output. An error
    /// returned by the sink stops the work and is returned unchanged.
    pub fn upscale_rows<F>(&self, img: &RgbImage, mut sink: F) -> Result<(), Error>
    where
        F: FnMut(u32, &[u8]) -> Result<(), Error>,
    {
        let (w, h) = self.check_input(img)?;
        let s = self.model.scale;
        let (plan, _, mut states) = self.tiled_run(w, h, s, PlanKind::Sr)?;
        let row_bytes = w * s * 3;
        let mut band = Vec::new();
        for b in 0..plan.bands() {
            let (r0, r1) = plan.band_rows(b);
            let len = (r1 - r0) * s * row_bytes;
            band.clear();
            if band.try_reserve_exact(len).is_err() {
                return Err(Error::out_of_memory(
                    format!("a band of {} output rows", (r1 - r0) * s),
                    len,
                ));
            }
            band.resize(len, 0u8);
            let band_mx = Mutex::new(&mut band[..]);
            self.run_band(&plan, b, img, &mut states, |tile, outs| {
                write_sr_crop(tile, outs, r0 * s, w * s, &band_mx)
            })?;
            sink((r0 * s) as u32, &band)?;
        }
        Ok(())
    }

    /// Per-op time of one `h × w` tile (SR plan), one line per op kind, slowest first.
    #[doc(hidden)]
    pub fn profile(&self, h: usize, w: usize, multithread: bool) -> Result<String, Error> {
        use std::collections::HashMap;
        use std::time::Instant;
        use tract_onnx::tract_core::plan::eval;
        let exec = if multithread {
            self.executor.as_ref()
        } else {
            None
        };
        let plan = self
            .model
            .plan(h, w, PlanKind::Sr, exec, self.disable_direct_spatial)?;
        let mut state = TypedSimpleState::new(&plan).map_err(Error::runtime)?;
        let img = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([100, 120, 140]));
        let x = self.tile_input(&img, Rect { x: 0, y: 0, w, h })?;
        state.run(tvec!(x.clone())).map_err(Error::runtime)?;
        let mut per_op: HashMap<String, (f64, usize)> = HashMap::new();
        let t0 = Instant::now();
        state
            .run_plan_with_eval(tvec!(x), |ctx, st, node, inputs| {
                let t = Instant::now();
                let r = eval(ctx, st, node, inputs);
                let e = per_op.entry(node.op().name().to_string()).or_default();
                e.0 += t.elapsed().as_secs_f64() * 1e3;
                e.1 += 1;
                r
            })
            .map_err(Error::runtime)?;
        let total = t0.elapsed().as_secs_f64() * 1e3;
        let mut rows: Vec<_> = per_op.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let mut out = format!("{w}×{h} tile: {total:.1} ms\n");
        for (op, (ms, n)) in rows {
            out.push_str(&format!("  {ms:8.2} ms  {n:3}×  {op}\n"));
        }
        Ok(out)
    }

    /// Tiled SR output as planar f32 `[3, H·s, W·s]`, before quantisation (tests the seams).
    #[doc(hidden)]
    pub fn upscale_planar_f32(&self, img: &RgbImage) -> Result<Vec<f32>, Error> {
        let (w, h) = self.check_input(img)?;
        let s = self.model.scale;
        let (plan, _, mut states) = self.tiled_run(w, h, s, PlanKind::Sr)?;
        let (ow, oh) = (w * s, h * s);
        let out = Mutex::new(vec![0f32; 3 * ow * oh]);
        for b in 0..plan.bands() {
            self.run_band(&plan, b, img, &mut states, |tile, outs| {
                let t = outs.first().ok_or_else(|| Error::runtime("no output"))?;
                let t = t.cast_to::<f32>().map_err(Error::runtime)?;
                let v = t.try_as_plain_ram().map_err(Error::runtime)?;
                let shape = v.shape().to_vec();
                let data = v.as_slice::<f32>().map_err(Error::runtime)?;
                let (c, d) = (tile.crop, tile.dst);
                if shape.len() != 4
                    || shape[1] != 3
                    || shape[2] < c.bottom()
                    || shape[3] < c.right()
                {
                    return Err(Error::runtime(format!("unexpected output shape {shape:?}")));
                }
                let (th4, tw4) = (shape[2], shape[3]);
                let mut o = out.lock().map_err(Error::runtime)?;
                for ch in 0..3 {
                    for y in 0..c.h {
                        let src = ch * th4 * tw4 + (c.y + y) * tw4 + c.x;
                        let dst = ch * ow * oh + (d.y + y) * ow + d.x;
                        o[dst..dst + c.w].copy_from_slice(&data[src..src + c.w]);
                    }
                }
                Ok(())
            })?;
        }
        out.into_inner().map_err(Error::runtime)
    }

    /// Degradation maps (μ and severity) at LR resolution, tiled like [`Upscaler::upscale`].
    /// [`Error::Unsupported`] when the model has no such outputs (peer models).
    pub fn estimate(&self, img: &RgbImage) -> Result<DegradationEstimate, Error> {
        if !self.has_estimate() {
            return Err(self.model.no_estimate());
        }
        let (w, h) = self.check_input(img)?;
        let (plan, tplan, mut states) = self.tiled_run(w, h, 1, PlanKind::Estimate)?;
        let dim = tplan
            .model()
            .output_fact(0)
            .ok()
            .and_then(|f| {
                f.shape
                    .as_concrete()
                    .map(|s| s.get(1).copied().unwrap_or(0))
            })
            .filter(|d| *d > 0)
            .ok_or_else(|| Error::Unsupported("mu output has no concrete channel count".into()))?;
        let n = w * h;
        let total = n.saturating_mul(dim + 1);
        if total > (1usize << 28) {
            return Err(Error::limits(
                format!("degradation maps of {w}×{h}×{}", dim + 1),
                total as u64 * 4,
                1 << 30,
                "bytes",
            ));
        }
        let maps = Mutex::new((vec![0f32; dim * n], vec![0f32; n]));
        for b in 0..plan.bands() {
            self.run_band(&plan, b, img, &mut states, |tile, outs| {
                let mu = outs
                    .first()
                    .ok_or_else(|| Error::runtime("missing mu output"))?;
                let sev = outs
                    .get(1)
                    .ok_or_else(|| Error::runtime("missing severity output"))?;
                let mu = mu.cast_to::<f32>().map_err(Error::runtime)?;
                let sev = sev.cast_to::<f32>().map_err(Error::runtime)?;
                let mu = mu
                    .try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>())
                    .map_err(Error::runtime)?;
                let sev = sev
                    .try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>())
                    .map_err(Error::runtime)?;
                let (th, tw) = (tile.src.h, tile.src.w);
                if mu.len() != dim * th * tw || sev.len() != th * tw {
                    return Err(Error::runtime("degradation output shape mismatch"));
                }
                let mut g = maps.lock().map_err(Error::runtime)?;
                let (gmu, gsev) = &mut *g;
                let (c, d) = (tile.crop, tile.dst);
                for y in 0..c.h {
                    let src = (c.y + y) * tw + c.x;
                    let dst = (d.y + y) * w + d.x;
                    gsev[dst..dst + c.w].copy_from_slice(&sev[src..src + c.w]);
                    for k in 0..dim {
                        let s0 = k * th * tw + src;
                        let d0 = k * n + dst;
                        gmu[d0..d0 + c.w].copy_from_slice(&mu[s0..s0 + c.w]);
                    }
                }
                Ok(())
            })?;
        }
        let (mu, severity) = maps.into_inner().map_err(Error::runtime)?;
        Ok(DegradationEstimate {
            width: w,
            height: h,
            dim,
            mu,
            severity,
        })
    }

    /// Run every tile of band `b`, spreading them over the states, and call `done` per tile.
    /// What every tiled run of a `w × h` input needs: the tile geometry, the optimised plan for
    /// its tile shape (cached) and one tract state per tile worker.
    fn tiled_run(
        &self,
        w: usize,
        h: usize,
        scale: usize,
        kind: PlanKind,
    ) -> Result<(TilePlan, Arc<TypedSimplePlan>, Vec<TypedSimpleState>), Error> {
        let plan = TilePlan::new(w, h, scale, self.tiles, self.halo)?;
        let workers = self.workers(&plan);
        let (th, tw) = plan.tile_shape();
        let exec = if workers.intra_op {
            self.executor.as_ref()
        } else {
            None
        };
        let tplan = self
            .model
            .plan(th, tw, kind, exec, self.disable_direct_spatial)?;
        let states = (0..workers.tile_workers)
            .map(|_| TypedSimpleState::new(&tplan).map_err(Error::runtime))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((plan, tplan, states))
    }

    fn run_band<D>(
        &self,
        plan: &TilePlan,
        b: usize,
        img: &RgbImage,
        states: &mut [TypedSimpleState],
        done: D,
    ) -> Result<(), Error>
    where
        D: Fn(&Tile, TVec<TValue>) -> Result<(), Error> + Sync,
    {
        let next = AtomicUsize::new(0);
        let cols = plan.cols();
        let work = |state: &mut TypedSimpleState| -> Result<(), Error> {
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= cols {
                    return Ok(());
                }
                let tile = plan
                    .tile(b, c)
                    .ok_or_else(|| Error::runtime("tile out of range"))?;
                let input = self.tile_input(img, tile.src)?;
                let outs = state.run(tvec!(input)).map_err(Error::runtime)?;
                if let Err(e) = done(&tile, outs) {
                    next.store(cols, Ordering::Relaxed);
                    return Err(e);
                }
            }
        };
        match states {
            [] => Err(Error::runtime("no worker state")),
            [only] => work(only),
            [first, rest @ ..] => std::thread::scope(|scope| {
                let handles: Vec<_> = rest.iter_mut().map(|st| scope.spawn(|| work(st))).collect();
                let mut result = work(first);
                for h in handles {
                    let r = h
                        .join()
                        .unwrap_or_else(|_| Err(Error::runtime("worker panicked")));
                    if result.is_ok() {
                        result = r;
                    }
                }
                result
            }),
        }
    }

    /// The LR region `src` as a `[1, 3, h, w]` tensor in [0, 1].
    fn tile_input(&self, img: &RgbImage, src: Rect) -> Result<TValue, Error> {
        let (w, h) = (src.w, src.h);
        let mut data = vec![0f32; 3 * w * h];
        let iw = img.width() as usize;
        let raw = img.as_raw();
        let (r, rest) = data.split_at_mut(w * h);
        let (g, bl) = rest.split_at_mut(w * h);
        for y in 0..h {
            let row = &raw[((src.y + y) * iw + src.x) * 3..((src.y + y) * iw + src.x + w) * 3];
            let o = y * w;
            for (x, px) in row.chunks_exact(3).enumerate() {
                r[o + x] = px[0] as f32 * (1.0 / 255.0);
                g[o + x] = px[1] as f32 * (1.0 / 255.0);
                bl[o + x] = px[2] as f32 * (1.0 / 255.0);
            }
        }
        let t = tract_ndarray::Array4::from_shape_vec((1, 3, h, w), data)
            .map_err(Error::runtime)?
            .into_tensor();
        let t = if self.model.input_dt == f16::datum_type() {
            t.cast_to::<f16>().map_err(Error::runtime)?.into_owned()
        } else {
            t
        };
        Ok(t.into_tvalue())
    }
}

/// Quantise the kept part of one SR tile output into the band buffer.
fn write_sr_crop(
    tile: &Tile,
    outs: TVec<TValue>,
    band_y0: usize,
    out_w: usize,
    band: &Mutex<&mut [u8]>,
) -> Result<(), Error> {
    let out = outs
        .first()
        .ok_or_else(|| Error::runtime("model produced no output"))?;
    let out = out.cast_to::<f32>().map_err(Error::runtime)?;
    let view = out.try_as_plain_ram().map_err(Error::runtime)?;
    let shape = view.shape().to_vec();
    let data = view.as_slice::<f32>().map_err(Error::runtime)?;
    let (c, d) = (tile.crop, tile.dst);
    if shape.len() != 4 || shape[1] != 3 || shape[2] < c.bottom() || shape[3] < c.right() {
        return Err(Error::runtime(format!("unexpected output shape {shape:?}")));
    }
    let (oh, ow) = (shape[2], shape[3]);
    let plane = oh * ow;
    let mut rows = vec![0u8; c.w * c.h * 3];
    for y in 0..c.h {
        let src = (c.y + y) * ow + c.x;
        let r = &data[src..src + c.w];
        let g = &data[plane + src..plane + src + c.w];
        let b = &data[2 * plane + src..2 * plane + src + c.w];
        if !r.iter().chain(g).chain(b).all(|v| v.is_finite()) {
            return Err(Error::Runtime(format!(
                "the model produced NaN or infinite values (output rows {}–{}, columns {}–{})",
                d.y,
                d.y + c.h,
                d.x,
                d.x + c.w
            )));
        }
        let dst = &mut rows[y * c.w * 3..(y + 1) * c.w * 3];
        for (x, px) in dst.chunks_exact_mut(3).enumerate() {
            px[0] = quantize(r[x]);
            px[1] = quantize(g[x]);
            px[2] = quantize(b[x]);
        }
    }
    let mut band = band.lock().map_err(Error::runtime)?;
    for y in 0..c.h {
        let off = ((d.y - band_y0 + y) * out_w + d.x) * 3;
        band[off..off + c.w * 3].copy_from_slice(&rows[y * c.w * 3..(y + 1) * c.w * 3]);
    }
    Ok(())
}

/// [0, 1] float to u8 with rounding; out-of-range values clamp (non-finite values are refused
/// before this).
#[inline]
fn quantize(v: f32) -> u8 {
    (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}
