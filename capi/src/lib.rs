//! The savl C ABI: `libsavl.a` and `libsavl.so`, declared by `include/savl.h`.
//!
//! A C program upscales a packed RGB8 buffer in four calls (a full program is
//! `examples/c/upscale.c`):
//!
//! ```c
//! #include "savl.h"
//! SavlOptions opts = savl_options_default();          /* embedded model, auto precision */
//! SavlUpscaler *up = NULL;
//! if (savl_upscaler_new(&opts, &up) != SAVL_STATUS_OK) puts(savl_last_error());
//! uint32_t ow, oh;
//! savl_upscaler_output_size(up, w, h, &ow, &oh);
//! savl_upscaler_run(up, src, src_len, w, h, w * 3, dst, ow * 3, (size_t)ow * oh * 3);
//! savl_upscaler_free(up);
//! ```
//!
//! Camera buffers (NV12, NV21, I420, BGRA8, …, with per-plane strides and lengths) go through
//! `savl_upscaler_run_image` with an optional progress callback that can cancel; a full program
//! is `examples/c/camera_nv12.c`.
//!
//! The contract of every function is in [`abi`]'s documentation and the header.
#![deny(missing_docs)]

pub mod abi;
pub use abi::*;

#[cfg(test)]
mod tests;
