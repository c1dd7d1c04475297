//! The tile executor: runs a [`TilePlan`] band by band through the model's cached plan, tiles of
//! a band spread over worker threads (each with its own tract state), and quantises the kept
//! part of every tile into the output.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use image::RgbImage;
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

use super::{tile_workers, Rect, Tile, TileConfig, TilePlan};
use crate::model::PlanKind;
use crate::upscaler::Upscaler;
use crate::Error;

impl Upscaler {
    /// What every tiled run of a `w × h` input needs: the tile geometry, the optimised plan for
    /// its tile shape (cached) and one tract state per tile worker.
    pub(crate) fn tiled_run(
        &self,
        w: usize,
        h: usize,
        scale: usize,
        kind: PlanKind,
    ) -> Result<(TilePlan, Arc<TypedSimplePlan>, Vec<TypedSimpleState>), Error> {
        let tiles = TileConfig {
            tile: self.tile_for(w, h),
            ..self.tiles
        };
        let plan = TilePlan::new(w, h, scale, tiles, self.halo)?;
        let (tile_workers, intra_op) = tile_workers(self.threads, plan.cols());
        let (th, tw) = plan.tile_shape();
        let exec = if intra_op {
            self.executor.as_ref()
        } else {
            None
        };
        let tplan = self
            .model
            .plan(th, tw, kind, exec, self.disable_direct_spatial)?;
        let states = (0..tile_workers)
            .map(|_| TypedSimpleState::new(&tplan).map_err(Error::runtime))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((plan, tplan, states))
    }

    /// Run every tile of band `b`, spreading them over the states, and call `done` per tile.
    pub(crate) fn run_band<D>(
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
    pub(crate) fn tile_input(&self, img: &RgbImage, src: Rect) -> Result<TValue, Error> {
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

/// Quantise the kept part of one SR tile output into the band buffer. With a multi-thread
/// `pool` (tiles run one at a time, each on the whole pool) the rows are converted in parallel
/// straight into the band; otherwise into a private buffer first, so that parallel tile workers
/// hold the band's lock only to copy.
pub(crate) fn write_sr_crop(
    tile: &Tile,
    outs: TVec<TValue>,
    band_y0: usize,
    out_w: usize,
    band: &Mutex<&mut [u8]>,
    pool: Option<&Executor>,
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
    if c.w == 0 || c.h == 0 {
        return Ok(());
    }
    let (oh, ow) = (shape[2], shape[3]);
    let plane = oh * ow;
    // Row `y` of the crop into `dst` (`3·c.w` bytes).
    let convert = |y: usize, dst: &mut [u8]| -> Result<(), Error> {
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
        for (x, px) in dst.chunks_exact_mut(3).enumerate() {
            px[0] = quantize(r[x]);
            px[1] = quantize(g[x]);
            px[2] = quantize(b[x]);
        }
        Ok(())
    };
    let row_bytes = out_w * 3;
    let (x0, x1) = (d.x * 3, (d.x + c.w) * 3);
    if let Some(Executor::MultiThread(pool)) = pool {
        use rayon::prelude::*;
        let mut band = band.lock().map_err(Error::runtime)?;
        let start = (d.y - band_y0) * row_bytes;
        let rows = &mut band[start..start + c.h * row_bytes];
        return pool.install(|| {
            rows.par_chunks_mut(row_bytes)
                .with_min_len(8)
                .enumerate()
                .try_for_each(|(y, row)| convert(y, &mut row[x0..x1]))
        });
    }
    let mut rows = vec![0u8; c.w * c.h * 3];
    for (y, dst) in rows.chunks_exact_mut(c.w * 3).enumerate() {
        convert(y, dst)?;
    }
    let mut band = band.lock().map_err(Error::runtime)?;
    for (y, src) in rows.chunks_exact(c.w * 3).enumerate() {
        let off = (d.y - band_y0 + y) * row_bytes;
        band[off + x0..off + x1].copy_from_slice(src);
    }
    Ok(())
}

/// [0, 1] float to u8 with rounding; out-of-range values clamp (non-finite values are refused
/// before this).
#[inline]
fn quantize(v: f32) -> u8 {
    (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}
