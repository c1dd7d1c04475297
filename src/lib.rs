//! savl: degradation-aware ×4 super-resolution for the edge, run by tract.
//!
//! ```
//! use savl::{Upscaler, Precision};
//!
//! # fn main() -> Result<(), savl::Error> {
//! // The default model is embedded in the library; no file is needed.
//! let upscaler = Upscaler::builder().precision(Precision::Auto).threads(1).build()?;
//! let lr = image::RgbImage::from_pixel(12, 10, image::Rgb([120, 80, 40]));
//! let sr = upscaler.upscale(&lr)?;
//! assert_eq!(sr.dimensions(), (12 * 4, 10 * 4));
//!
//! // Streaming form: bands of finished rows, in order, never the whole output at once.
//! let mut rows_seen = 0;
//! upscaler.upscale_rows(&lr, |first_row, rows| {
//!     assert_eq!(first_row as usize, rows_seen);
//!     rows_seen += rows.len() / (3 * 12 * 4);
//!     Ok(())
//! })?;
//! assert_eq!(rows_seen, 10 * 4);
//! # Ok(())
//! # }
//! ```
//!
//! Models follow the ONNX contract in `ARCHITECTURE.md`: input `lr` `[1,3,H,W]` in [0, 1],
//! output `sr` `[1,3,4H,4W]`, optional `mu` and `severity` maps; metadata `savl.scale`,
//! `savl.receptive_field` (the tile halo), `savl.precision`.
//!
//! Large images are cut into overlapping tiles (see [`TileConfig`], [`TilePlan`]) whose output is
//! identical to whole-image inference when the halo covers the receptive field.
#![deny(missing_docs)]

mod builder;
mod error;
#[doc(hidden)]
pub mod kernels;
mod model;
#[doc(hidden)]
pub mod ops;
mod precision;
#[doc(hidden)]
pub mod rewrites;
#[doc(hidden)]
pub mod testing;
mod tiling;
mod upscaler;

pub mod photo;
pub mod yuv;

pub use builder::{
    UpscalerBuilder, DEFAULT_FOREIGN_HALO, DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_THREADS, MAX_THREADS,
};
pub use error::{Error, Result};
pub use precision::{CpuCaps, Precision};
pub use rewrites::strength;
pub use tiling::{
    tile_for_budget, tile_workers, Rect, Tile, TileConfig, TileIter, TilePlan, DEFAULT_TILE,
    MAX_TILE, MIN_TILE,
};
pub use upscaler::{DegradationEstimate, Upscaler};

/// Keep freed tensor memory in the process instead of handing it back to the kernel after
/// every run (glibc only; a no-op elsewhere). tract allocates multi-MB intermediates per conv;
/// with glibc's defaults each run re-faults them (tens of thousands of page faults per tile).
/// Process-wide: call it from a binary, not from a library. Returns whether it took effect.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes glibc malloc tunables; both values are in range
        // (the mmap threshold is capped at 32 MiB on 64-bit glibc).
        unsafe {
            let a = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
            let b = mallopt(M_TRIM_THRESHOLD, i32::MAX);
            a == 1 && b == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
