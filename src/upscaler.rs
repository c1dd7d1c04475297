//! The public entry point: [`Upscaler`], a loaded model ready to upscale images.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use image::RgbImage;
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

use crate::builder::UpscalerBuilder;
use crate::model::{self, LoadedModel, PlanKind};
use crate::precision::CpuCaps;
use crate::tiling::executor::write_sr_crop;
use crate::tiling::{tile_for_budget, Rect, TileConfig};
use crate::{Error, Precision};

/// Degradation maps at LR resolution, from the model's `mu` and `severity` outputs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DegradationEstimate {
    /// LR width.
    pub width: usize,
    /// LR height.
    pub height: usize,
    /// Posterior mean of the degradation code, planar `d × height × width`.
    pub mu: Vec<f32>,
    /// Standardised severity `s(u)` in [−3, 3], `height × width`.
    pub severity: Vec<f32>,
    /// Dimension `d` of the degradation code.
    pub dim: usize,
}

/// What the tile workers of a run hold, from the graph's activation estimate for one tile
/// ([`Upscaler::tile_working_set`]): × 1.5 for one worker (tract's scratch and the allocator's
/// slack), × 3 per worker when several run at once (their allocations interleave in the heap).
/// Both factors are measured peak RSS over the estimate (`docs/PERF.md`, "Tiles").
fn working_set(per_tile: u64, workers: usize) -> u64 {
    if workers <= 1 {
        per_tile.saturating_mul(3) / 2
    } else {
        per_tile.saturating_mul(3).saturating_mul(workers as u64)
    }
}

/// A loaded model with its plans, ready to upscale images. `Send + Sync`; plans are cached per
/// tile shape.
pub struct Upscaler {
    pub(crate) model: LoadedModel,
    pub(crate) precision: Precision,
    pub(crate) why: String,
    pub(crate) caps: CpuCaps,
    pub(crate) tiles: TileConfig,
    /// The tile side is chosen per image from `max_memory` (no fixed tile was set).
    pub(crate) tile_auto: bool,
    pub(crate) max_memory: u64,
    /// Chosen tile sides per input size (`tile_auto` only).
    pub(crate) tile_cache: Mutex<HashMap<(usize, usize), usize>>,
    pub(crate) halo: usize,
    pub(crate) halo_src: &'static str,
    pub(crate) threads: usize,
    pub(crate) executor: Option<Executor>,
    pub(crate) disable_direct_spatial: bool,
    pub(crate) max_input_pixels: u64,
}

impl std::fmt::Debug for Upscaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upscaler")
            .field("model", &self.model.label)
            .field("precision", &self.precision)
            .field("tile", &self.tile())
            .field("halo", &self.halo)
            .field("threads", &self.threads)
            .finish()
    }
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
        let tile = self.tile_for(width as usize, height as usize);
        let rows = (tile as u64).min(u64::from(height)) * s;
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
    pub fn tile(&self) -> Option<usize> {
        (!self.tile_auto).then_some(self.tiles.tile)
    }

    /// The memory budget the tile side is chosen under ([`UpscalerBuilder::max_memory`]).
    pub fn max_memory(&self) -> u64 {
        self.max_memory
    }

    /// The tile side used for a `width × height` input: the fixed one, or the largest whose
    /// working set (times the concurrent tile workers) plus one band of output rows fits
    /// [`Upscaler::max_memory`] ([`crate::tile_for_budget`]).
    pub fn tile_for(&self, width: usize, height: usize) -> usize {
        if !self.tile_auto {
            return self.tiles.tile;
        }
        let key = (width, height);
        if let Some(&t) = self
            .tile_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            .as_ref()
        {
            return t;
        }
        let t = tile_for_budget(
            width,
            height,
            self.model.scale,
            self.halo,
            self.threads,
            self.max_memory,
            |th, tw, workers| {
                self.model
                    .activation_bytes(th, tw)
                    .map_or(u64::MAX, |b| working_set(b, workers))
            },
        );
        if let Ok(mut c) = self.tile_cache.lock() {
            if c.len() >= 64 {
                c.clear();
            }
            c.insert(key, t);
        }
        t
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
            "cpu: {} [{}]; fast int8 dot: {}; native fp16: {}; Winograd f32: {}; AVX2+FMA: {}\n",
            self.caps.isa,
            self.caps.features,
            if self.caps.int8_dot { "yes" } else { "no" },
            if self.caps.fp16 { "yes" } else { "no" },
            if self.caps.winograd { "yes" } else { "no" },
            if self.caps.avx2_fma { "yes" } else { "no" },
        ));
        let tiles = match self.tile() {
            Some(t) => format!("{t}×{t} LR px (fixed)"),
            None => format!(
                "per image, the largest within {:.0} MB of working set and output band \
                 (estimated {:.1} MB for one 256×256 tile, 3× the graph's estimate per tile when tiles run in parallel)",
                self.max_memory as f64 / 1e6,
                self.tile_working_set(256, 256)
                    .map_or(f64::NAN, |b| working_set(b, 1) as f64 / 1e6)
            ),
        };
        s.push_str(&format!(
            "tiles: {tiles}, halo {} ({})\n",
            self.halo, self.halo_src
        ));
        s.push_str(&format!(
            "threads: {} (tiles in parallel when a band has ≥ 2 tiles, else multithreaded matmuls)\n",
            self.threads
        ));
        s.push_str(&format!(
            "engine: tract 0.23; fused modulation blocks: {}; Winograd 3×3 convs: {}{}; pointwise 1×1 rewrites: {}; pixel shuffles: {}; element-wise trees: {}; DirectSpatialConv {}",
            m.fused,
            m.winograd,
            if m.fp16_winograd {
                " (fp16 products)"
            } else {
                ""
            },
            m.pointwise,
            m.shuffles,
            m.elementwise,
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
        // One tile worker: tiles run one at a time, each on the whole pool.
        let pool = if states.len() == 1 {
            self.executor.as_ref()
        } else {
            None
        };
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
                write_sr_crop(tile, outs, r0 * s, w * s, &band_mx, pool)
            })?;
            sink((r0 * s) as u32, &band)?;
        }
        Ok(())
    }

    /// Estimated peak bytes of the activations one `h × w` LR tile holds while it runs (see
    /// [`UpscalerBuilder::max_memory`]); each concurrent tile worker holds its own.
    pub fn tile_working_set(&self, h: usize, w: usize) -> Result<u64, Error> {
        self.model.activation_bytes(h, w)
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
}
