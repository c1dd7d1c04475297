//! Error budgets as code: what each scheme must achieve against the f32 model.

/// Accuracy a quantized model must keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Scheme name (`int8`, `f16`), as in `savl.precision`.
    pub scheme: &'static str,
    /// Minimum PSNR (dB, peak 1) of the quantized `sr` output against the f32 model's.
    pub min_psnr_vs_f32: f64,
    /// Maximum PSNR-Y loss (dB) against HR images, when HR images are given.
    pub max_psnr_y_loss: f64,
    /// Maximum relative RMSE of the stored weights (`rms(w − ŵ) / rms(w)`) over the quantized convs.
    pub max_weight_rel_rmse: f64,
}

/// int8 (QOperator, per-channel weights, per-tensor u8 activations).
pub const INT8: Budget = Budget {
    scheme: "int8",
    min_psnr_vs_f32: 40.0,
    max_psnr_y_loss: 0.15,
    max_weight_rel_rmse: 0.02,
};

/// fp16 weights and activations.
pub const FP16: Budget = Budget {
    scheme: "f16",
    min_psnr_vs_f32: 55.0,
    max_psnr_y_loss: 0.02,
    max_weight_rel_rmse: 1e-3,
};

/// The budget for a `savl.precision` value.
pub fn for_precision(p: &str) -> Option<Budget> {
    match p {
        "int8" => Some(INT8),
        "f16" => Some(FP16),
        _ => None,
    }
}
