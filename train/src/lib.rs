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
//! All figures from one criterion run on the shared 2-core machine while it carried a load
//! average of ≈ 13 (four other engineers building and testing), so absolute times are inflated
//! several-fold against an idle machine; the ratios are the meaningful part. Criterion medians:
//!
//! ```text
//! cargo bench -p savl-train --profile dev --bench conv -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! | conv3x3, b16, 48→48 ch, 48×48 | stock candle `conv2d` | [`nn::conv`] (GEMM fwd, custom bwd) | speed-up |
//! |---|---|---|---|
//! | forward | 294 ms | 124 ms | 2.4× |
//! | forward + backward | 3.49 s | 0.588 s | **5.9×** |
//! | `lite` training step (b16, 48² LR crops, AdamW; full SAVL incl. decoder) | — | 7.39 s (2.2 samples/s) | |
//!
//! The step costs ≈ 12.6 conv fwd+bwd of the table in the same run: the convolutions dominate.
//! CPU time, which the load inflates less than wall time (`cargo test -p savl-train --test
//! model_timing -- --ignored --nocapture`, load ≈ 13): stock conv fwd+bwd 2024 ms CPU, ours
//! 298 ms CPU (6.8×). At a lighter load (≈ 5) the same test gave ours 40 ms forward / 159 ms
//! forward+backward wall against stock 92 ms / 1727 ms (10.9×).
//!
//! Against the PyTorch anchor (`tract-candle.md` §15: 38.6 ms conv fwd+bwd, 370 ms per `lite`
//! step on an idle machine) this is not yet within 2×: extrapolated to an idle machine the
//! step is ≈ 1.2–1.5 s (≈ 3.5×). The gradients equal the stock path within 1e-4
//! (`tests/model.rs`). Remaining costs: im2col done twice per conv (forward and weight grad),
//! the f32 AVX2 GEMM kernel (no AVX-512 on stable `gemm`), and candle's elementwise ops around
//! the convs (gates, pixel shuffle, L1).

pub mod cmd;
pub mod degrade;
pub mod eval;
pub mod export;
pub mod image;
pub mod nn;
pub mod probe;
pub mod train;

pub use image::PlanarImage;
