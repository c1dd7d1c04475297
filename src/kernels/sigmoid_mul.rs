//! The gate `x · sigmoid(g)` in one pass, chunk by chunk.

use tract_onnx::prelude::TractResult;
use tract_onnx::tract_core::internal::ensure;

/// Elements per chunk: small enough for the gate chunk to stay in L1.
const CHUNK: usize = 1024;

/// `x[i] *= sigmoid(g[i])`, chunk by chunk, with tract's own sigmoid kernel (so the result is
/// bit-identical to the unfused Sigmoid → Mul).
pub fn sigmoid_mul(
    x: &mut [f32],
    g: &[f32],
    sig: &dyn tract_linalg::element_wise::ElementWise<f32>,
) -> TractResult<()> {
    ensure!(x.len() == g.len());
    let mut buf = [0f32; CHUNK];
    for (xc, gc) in x.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
        let b = &mut buf[..gc.len()];
        b.copy_from_slice(gc);
        sig.run(b)?;
        for (xv, s) in xc.iter_mut().zip(b.iter()) {
            *xv *= *s;
        }
    }
    Ok(())
}
