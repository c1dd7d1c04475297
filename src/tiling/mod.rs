//! Tiling: the geometry here (pure numbers, no tensors) and the [`executor`] that runs a plan
//! of tiles through a model.
//!
//! The image is cut into tiles of at most `tile × tile` LR pixels that overlap by `halo` pixels
//! on every side that is not an image border. Tiles never hang over the image: a tile at the
//! right or bottom edge is shifted back inside, so every tile (except in images smaller than a
//! tile) has the same shape and one optimised plan serves the whole image. Because the network
//! zero-pads at the tile border exactly as it does at the image border, and every kept output
//! pixel is at least `halo ≥ receptive field` away from any other tile border, tiled output
//! equals whole-image output.

pub(crate) mod executor;

use crate::Error;

/// Tiling parameters, in LR (input) pixels.
///
/// Plain data with public fields; [`crate::UpscalerBuilder::build`] validates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TileConfig {
    /// Tile side in LR pixels, halo included (allowed: 16..=1024, and > 2·halo).
    pub tile: usize,
    /// Overlap on each inner side, in LR pixels; must be ≥ the model's receptive field radius
    /// for exact (seamless) output. `None`: from the model metadata, 16 for foreign models.
    pub halo: Option<usize>,
}

impl Default for TileConfig {
    fn default() -> Self {
        TileConfig {
            tile: DEFAULT_TILE,
            halo: None,
        }
    }
}

/// Default tile side (LR px): keeps a 4000×3000 JPEG → PNG run with 2 workers under the
/// 400 MB budget (the measurements behind the choice: `docs/PERF.md`, "Tiles").
pub const DEFAULT_TILE: usize = 160;
/// Smallest accepted tile side.
pub const MIN_TILE: usize = 16;
/// Largest accepted tile side.
pub const MAX_TILE: usize = 1024;

impl TileConfig {
    /// A config with the given tile side and the model's halo.
    pub fn new(tile: usize) -> TileConfig {
        TileConfig { tile, halo: None }
    }

    /// The same config with an explicit halo.
    pub fn with_halo(mut self, halo: usize) -> TileConfig {
        self.halo = Some(halo);
        self
    }

    /// Check the ranges for a resolved `halo`; the message states the allowed range.
    pub fn validate(&self, halo: usize) -> Result<(), Error> {
        if !(MIN_TILE..=MAX_TILE).contains(&self.tile) {
            return Err(Error::config(
                "tile",
                self.tile,
                format!("in {MIN_TILE}..={MAX_TILE}"),
            ));
        }
        if 2 * halo >= self.tile {
            return Err(Error::config(
                "halo",
                halo,
                format!("< tile/2 = {} (tile {})", self.tile.div_ceil(2), self.tile),
            ));
        }
        Ok(())
    }
}

/// How the threads are used for a plan with `cols` tiles per band: `(tile workers, intra-op)`.
/// With ≥ 2 tiles in a band and ≥ 2 threads, tiles run concurrently, each on one thread with its
/// own working set; otherwise one tile at a time, its matmuls on all the threads.
pub fn tile_workers(threads: usize, cols: usize) -> (usize, bool) {
    if threads > 1 && cols >= 2 {
        (threads.min(cols), false)
    } else {
        (1, threads > 1)
    }
}

/// The tile side for a `w × h` image under a memory budget: the largest side (the fewest tiles;
/// one tile when the image fits) for which
/// `working_set(tile height, tile width, tile workers) + one band of output rows`
/// (`min(tile, h)·scale` rows of `3·w·scale` bytes) is at most `budget` bytes, where
/// `working_set` gives what all the concurrent tile workers ([`tile_workers`]) hold together. Sides are tried
/// from the image's longer side (at most [`MAX_TILE`]) down in steps of 16; when none fits, the
/// smallest valid side (above `2·halo`, at least [`MIN_TILE`]) is returned: the budget steers the
/// choice, it does not refuse work.
pub fn tile_for_budget(
    w: usize,
    h: usize,
    scale: usize,
    halo: usize,
    threads: usize,
    budget: u64,
    mut working_set: impl FnMut(usize, usize, usize) -> u64,
) -> usize {
    let floor = MIN_TILE.max(2 * halo + 1);
    let top = w.max(h).clamp(floor, MAX_TILE);
    let mut t = top;
    loop {
        if let Ok(plan) = TilePlan::new(w.max(1), h.max(1), scale, TileConfig::new(t), halo) {
            let (th, tw) = plan.tile_shape();
            let (workers, _) = tile_workers(threads, plan.cols());
            let band = (t.min(h) as u64)
                .saturating_mul(scale as u64)
                .saturating_mul(w as u64 * scale as u64 * 3);
            let cost = working_set(th, tw, workers).saturating_add(band);
            if cost <= budget {
                return t;
            }
        }
        if t <= floor {
            return floor;
        }
        // Next candidate: the multiple of 16 below t (so 1000 → 992 → 976 …), not below floor.
        t = ((t - 1) / 16 * 16).max(floor);
    }
}

/// A rectangle `[x, x+w) × [y, y+h)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left.
    pub x: usize,
    /// Top.
    pub y: usize,
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl Rect {
    /// Right edge (exclusive).
    pub fn right(&self) -> usize {
        self.x + self.w
    }
    /// Bottom edge (exclusive).
    pub fn bottom(&self) -> usize {
        self.y + self.h
    }
    fn scaled(self, s: usize) -> Rect {
        Rect {
            x: self.x * s,
            y: self.y * s,
            w: self.w * s,
            h: self.h * s,
        }
    }
}

/// One tile: where to read, where the kept part goes, and which part of the tile output to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Index of the row band (see [`TilePlan::bands`]).
    pub band: usize,
    /// Index within the band.
    pub col: usize,
    /// Region of the LR image fed to the network (shape = [`TilePlan::tile_shape`]).
    pub src: Rect,
    /// Region of the HR output this tile writes (image coordinates, scaled).
    pub dst: Rect,
    /// Region of the tile's HR output that is kept (tile coordinates, scaled).
    pub crop: Rect,
}

/// One-dimensional segmentation of `n` pixels into tiles of `t` with halo `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Axis {
    n: usize,
    t: usize,
    h: usize,
}

impl Axis {
    fn new(n: usize, tile: usize, halo: usize) -> Axis {
        if n <= tile {
            Axis { n, t: n, h: 0 }
        } else {
            Axis {
                n,
                t: tile,
                h: halo,
            }
        }
    }
    fn core(&self) -> usize {
        self.t - 2 * self.h
    }
    fn count(&self) -> usize {
        if self.n == 0 {
            0
        } else if self.n <= self.t {
            1
        } else {
            1 + (self.n - self.t).div_ceil(self.core())
        }
    }
    /// (tile start, kept start, kept end) of segment `k`.
    fn segment(&self, k: usize) -> (usize, usize, usize) {
        let last = k + 1 == self.count();
        let c = self.core();
        let start = (k * c).min(self.n - self.t);
        let a = if k == 0 {
            0
        } else {
            (k - 1) * c + self.t - self.h
        };
        let b = if last {
            self.n
        } else {
            k * c + self.t - self.h
        };
        (start, a, b)
    }
}

/// The tiling of one image: pure geometry, `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePlan {
    width: usize,
    height: usize,
    scale: usize,
    xs: Axis,
    ys: Axis,
}

impl TilePlan {
    /// Plan the tiles of a `width × height` LR image upscaled by `scale`.
    ///
    /// `halo` is the resolved halo; the caller validates `cfg` against it first (see
    /// [`TileConfig::validate`]); an invalid config is an error here too.
    pub fn new(
        width: usize,
        height: usize,
        scale: usize,
        cfg: TileConfig,
        halo: usize,
    ) -> Result<TilePlan, Error> {
        cfg.validate(halo)?;
        if width == 0 || height == 0 {
            return Err(Error::InvalidInput(format!("empty image {width}×{height}")));
        }
        if scale == 0 {
            return Err(Error::config("scale", 0, "at least 1"));
        }
        Ok(TilePlan {
            width,
            height,
            scale,
            xs: Axis::new(width, cfg.tile, halo),
            ys: Axis::new(height, cfg.tile, halo),
        })
    }

    /// LR width.
    pub fn width(&self) -> usize {
        self.width
    }
    /// LR height.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Upscaling factor.
    pub fn scale(&self) -> usize {
        self.scale
    }
    /// `(height, width)` of every tile fed to the network (all tiles share it).
    pub fn tile_shape(&self) -> (usize, usize) {
        (self.ys.t, self.xs.t)
    }
    /// Number of tile columns.
    pub fn cols(&self) -> usize {
        self.xs.count()
    }
    /// Number of row bands (tile rows).
    pub fn bands(&self) -> usize {
        self.ys.count()
    }
    /// Total number of tiles.
    pub fn len(&self) -> usize {
        self.cols() * self.bands()
    }
    /// Always false for a valid plan (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// LR rows `[start, end)` whose output band `b` holds.
    pub fn band_rows(&self, b: usize) -> (usize, usize) {
        let (_, a, e) = self.ys.segment(b);
        (a, e)
    }
    /// The tile at band `b`, column `c` (`None` when out of range).
    pub fn tile(&self, b: usize, c: usize) -> Option<Tile> {
        if b >= self.bands() || c >= self.cols() {
            return None;
        }
        let (sy, ay, ey) = self.ys.segment(b);
        let (sx, ax, ex) = self.xs.segment(c);
        let src = Rect {
            x: sx,
            y: sy,
            w: self.xs.t,
            h: self.ys.t,
        };
        let dst = Rect {
            x: ax,
            y: ay,
            w: ex - ax,
            h: ey - ay,
        };
        let crop = Rect {
            x: ax - sx,
            y: ay - sy,
            w: ex - ax,
            h: ey - ay,
        };
        Some(Tile {
            band: b,
            col: c,
            src,
            dst: dst.scaled(self.scale),
            crop: crop.scaled(self.scale),
        })
    }
    /// The tiles of band `b`, left to right.
    pub fn band(&self, b: usize) -> impl Iterator<Item = Tile> + '_ {
        (0..if b < self.bands() { self.cols() } else { 0 }).filter_map(move |c| self.tile(b, c))
    }
    /// Every tile, band by band (row-major).
    pub fn iter(&self) -> TileIter {
        TileIter {
            plan: *self,
            next: 0,
        }
    }
    /// Fraction of network work spent on useful pixels (1.0 = no overlap overhead).
    pub fn efficiency(&self) -> f64 {
        let (th, tw) = self.tile_shape();
        (self.width * self.height) as f64 / (self.len() * th * tw) as f64
    }
}

/// Iterator over the tiles of a [`TilePlan`], band by band.
#[derive(Debug, Clone)]
pub struct TileIter {
    plan: TilePlan,
    next: usize,
}

impl Iterator for TileIter {
    type Item = Tile;
    fn next(&mut self) -> Option<Tile> {
        if self.next >= self.plan.len() {
            return None;
        }
        let cols = self.plan.cols();
        let t = self.plan.tile(self.next / cols, self.next % cols)?;
        self.next += 1;
        Some(t)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.plan.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for TileIter {}

impl IntoIterator for TilePlan {
    type Item = Tile;
    type IntoIter = TileIter;
    fn into_iter(self) -> TileIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The cost `tile_for_budget` is documented to bound, computed here from the plan.
    fn budget_cost(
        w: usize,
        h: usize,
        scale: usize,
        halo: usize,
        threads: usize,
        t: usize,
        per_px: u64,
    ) -> u64 {
        let plan = TilePlan::new(w, h, scale, TileConfig::new(t), halo).unwrap();
        let (th, tw) = plan.tile_shape();
        let workers = if threads > 1 && plan.cols() >= 2 {
            threads.min(plan.cols())
        } else {
            1
        };
        workers as u64 * per_px * (th * tw) as u64 + (t.min(h) * scale * w * scale * 3) as u64
    }

    proptest! {
        #[test]
        fn tile_for_budget_is_the_largest_side_that_fits(
            w in 1usize..2500, h in 1usize..2500, halo in 0usize..20, threads in 1usize..5,
            per_px in 100u64..2000, budget in 1u64..400_000_000,
        ) {
            let scale = 4;
            let t = tile_for_budget(w, h, scale, halo, threads, budget, |th, tw, n| n as u64 * per_px * (th * tw) as u64);
            let floor = MIN_TILE.max(2 * halo + 1);
            prop_assert!((floor..=MAX_TILE).contains(&t));
            let fits = |t: usize| budget_cost(w, h, scale, halo, threads, t, per_px) <= budget;
            // Either it fits, or nothing does and it is the floor.
            prop_assert!(fits(t) || t == floor);
            // Every larger candidate (the longer side, then multiples of 16 down) does not fit.
            let top = w.max(h).clamp(floor, MAX_TILE);
            let mut c = top;
            while c > t {
                prop_assert!(!fits(c), "side {c} > chosen {t} fits the budget");
                c = ((c - 1) / 16 * 16).max(floor);
            }
        }

        #[test]
        fn tile_for_budget_gives_one_tile_when_the_image_fits(
            w in 1usize..1000, h in 1usize..1000, threads in 1usize..5,
        ) {
            let t = tile_for_budget(w, h, 4, 8, threads, u64::MAX, |th, tw, n| n as u64 * 1000 * (th * tw) as u64);
            let plan = TilePlan::new(w, h, 4, TileConfig::new(t), 8).unwrap();
            prop_assert_eq!(plan.len(), 1);
        }
    }

    #[test]
    fn tile_for_budget_shrinks_with_the_budget() {
        let side = |budget| {
            tile_for_budget(4000, 3000, 4, 12, 2, budget, |th, tw, n| {
                n as u64 * 1300 * (th * tw) as u64
            })
        };
        let (a, b, c) = (side(100_000_000), side(200_000_000), side(400_000_000));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(side(1), MIN_TILE.max(25));
    }

    #[test]
    fn tile_workers_use_tiles_only_with_two_columns() {
        assert_eq!(tile_workers(1, 5), (1, false));
        assert_eq!(tile_workers(4, 1), (1, true));
        assert_eq!(tile_workers(4, 2), (2, false));
        assert_eq!(tile_workers(2, 9), (2, false));
    }

    fn check(w: usize, h: usize, tile: usize, halo: usize, scale: usize) {
        let plan = TilePlan::new(w, h, scale, TileConfig::new(tile), halo).unwrap();
        let (ow, oh) = (w * scale, h * scale);
        let mut cover = vec![0u8; ow * oh];
        let (th, tw) = plan.tile_shape();
        assert!(th <= tile && tw <= tile);
        assert_eq!(plan.iter().len(), plan.len());
        assert!(plan.tile(plan.bands(), 0).is_none() && plan.tile(0, plan.cols()).is_none());
        for t in plan.iter() {
            assert_eq!((t.src.h, t.src.w), (th, tw));
            assert!(
                t.src.right() <= w && t.src.bottom() <= h,
                "tile inside image"
            );
            assert!(t.crop.right() <= tw * scale && t.crop.bottom() <= th * scale);
            assert_eq!((t.crop.w, t.crop.h), (t.dst.w, t.dst.h));
            assert_eq!(t.dst.x, t.src.x * scale + t.crop.x);
            assert_eq!(t.dst.y, t.src.y * scale + t.crop.y);
            // Kept pixels are ≥ halo from every tile side that is not an image side.
            let (l, tp) = (t.crop.x / scale, t.crop.y / scale);
            let r = tw - (t.crop.right() / scale);
            let b = th - (t.crop.bottom() / scale);
            assert!(t.src.x == 0 || l >= halo);
            assert!(t.src.y == 0 || tp >= halo);
            assert!(t.src.right() == w || r >= halo);
            assert!(t.src.bottom() == h || b >= halo);
            for y in t.dst.y..t.dst.bottom() {
                for x in t.dst.x..t.dst.right() {
                    cover[y * ow + x] += 1;
                }
            }
        }
        assert!(
            cover.iter().all(|&c| c == 1),
            "every output pixel exactly once"
        );
        // Bands partition the rows in order.
        let mut next = 0;
        for b in 0..plan.bands() {
            let (s, e) = plan.band_rows(b);
            assert_eq!(s, next);
            assert!(e > s);
            next = e;
        }
        assert_eq!(next, h);
    }

    #[test]
    fn small_cases() {
        check(1, 1, 16, 4, 4);
        check(17, 16, 16, 4, 2);
        check(100, 37, 32, 8, 4);
        check(257, 255, 256, 16, 1);
        check(33, 33, 32, 15, 1);
    }

    #[test]
    fn invalid_config_is_error() {
        assert!(TilePlan::new(10, 10, 4, TileConfig::new(32), 16).is_err());
        assert!(TilePlan::new(10, 10, 4, TileConfig::new(8), 1).is_err());
        assert!(TilePlan::new(0, 10, 4, TileConfig::new(32), 4).is_err());
        let msg = TileConfig::new(64).validate(40).unwrap_err().to_string();
        assert!(msg.contains("halo 40 must be < tile/2 = 32"), "{msg}");
    }

    proptest! {
        #[test]
        fn covers_exactly_once(w in 1usize..300, h in 1usize..300, tile in 16usize..128,
                               halo_frac in 0.0f64..0.49, scale in 1usize..5) {
            let halo = ((tile as f64) * halo_frac) as usize;
            prop_assume!(2 * halo < tile);
            check(w, h, tile, halo, scale);
        }
    }
}
