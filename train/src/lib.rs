//! Training side of savl: heterogeneous degradation synthesis, the SAVL model in candle,
//! the trainer and ONNX export.
//!
//! # Training and export
//!
//! ```text
//! savl-train train --data ../shared/data/train --preset lite --steps 20000 --out runs/lite-a
//! savl-train train --data ../shared/data/train --preset lite --steps 20000 --out runs/lite-a --resume
//! savl-train export runs/lite-a/last.safetensors -o models/savl-lite-x4.onnx      # EMA weights
//! ```
//!
//! Ablations: `--ablation noguide|deterministic|club` (same seed ⇒ same data order). The run
//! folder holds `train.csv` (every loss term, lr, step time, samples/s), `ckpt-STEP.safetensors`
//! (weights, EMA, AdamW moments, step and config in the metadata), `last.safetensors` and, at the
//! end, `model.onnx`.
//!
//! # Throughput
//!
//! Criterion medians on the shared 2-core VM (AMD EPYC, AVX-512 double-pumped), 2026-11-26
//! 15:07–15:09 UTC, the background training runs paused, the session-start binary (commit
//! 3c7fc3f) and the current one run alternately:
//!
//! ```text
//! cargo bench -p savl-train --profile dev --bench conv -- --warm-up-time 2 --measurement-time 8
//! ```
//!
//! | b16, 48 → 48 ch, 48×48, 3×3 | stock candle `conv2d` | [`nn::conv`], 3c7fc3f | [`nn::conv`], now |
//! |---|---|---|---|
//! | forward | 44.2 ms | 24.2–26.4 ms | **9.8–10.0 ms** |
//! | forward + backward | 249.9 ms | 84.5–141.3 ms | **37.4–38.3 ms** (6.7× stock) |
//! | `lite` training step (b16, 48² LR crops, AdamW; full SAVL incl. decoder) | — | 1.50–1.52 s | **0.81–0.82 s** |
//!
//! Against the PyTorch anchor (`tract-candle.md` §15, measured on this VM: 38.6 ms conv
//! fwd+bwd, 370 ms per step of the `lite` SR net): our conv forward + backward is now level
//! with PyTorch's (0.97–0.99×). The anchor's net is the SR net alone (head, 10 body convs at
//! 48 ch, gates, tail, ×4 shuffle; ≈ 0.25 M parameters), which the bench's
//! `lite_sr_net_step_b16_48x48` group runs with the same batch (gates fed a fixed guide map, L1,
//! candle-nn's AdamW): **548–565 ms in three runs at 15:45–15:48 UTC, 1.48–1.53× PyTorch's
//! 370 ms, within the 2× target** (577–668 ms in five earlier runs, before the one-pass LeakyReLU
//! below). The full SAVL step adds the estimator and the LM decoder (≈ 1.25× the multiply-adds
//! per pixel) and took 768–835 ms in the same three runs (2.1–2.3× the anchor). The gradients
//! equal the stock path within 1e-4
//! (`tests/model.rs`). What made the difference this round:
//!
//! - `savl::tune_allocator()` in the trainer's `main` (and the bench): glibc otherwise maps and
//!   unmaps every multi-MB activation, and the page faults and TLB shootdowns of those cost
//!   more than half of a conv forward + backward (90–100 ms → 40 ms on its own);
//! - the dev profile compiles candle, gemm and this crate without debug assertions (the
//!   standard library's UB checks in their hot loops cost 1.5 s → 0.9 s per step);
//! - per-thread im2col buffers instead of a fresh zero-filled one per convolution;
//! - LeakyReLU forward and gradient in one pass from input to output, without copying first
//!   (full step 819–929 → 768–835 ms, SR-net step 604–680 → 548–565 ms, alternating runs).
//!
//! Tried and dropped (no change within the noise): gemm's AVX-512 kernels (`x86-v4`: the
//! EPYC runs 512-bit FMAs at half rate; by our count the AVX2 kernel already runs near its FMA
//! peak), and an
//! im2row layout or a transposed product for the weight gradient (to spare the GEMM's repack).
//! Where the step goes now (perf): GEMM microkernels ≈ 45 % (≈ 94 GFLOP/s per core, the
//! FMA peak), the GEMM's operand packing ≈ 15 % (weight gradient), copies and zeroing ≈ 10 %,
//! candle's elementwise ops and its backprop thread ≈ 15 %, the LeakyReLU grad 4 %, im2col 3 %.

pub mod cmd;
pub mod degrade;
pub mod eval;
pub mod export;
pub mod image;
pub mod nn;
pub mod probe;
pub mod train;

pub use image::PlanarImage;
