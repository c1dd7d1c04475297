//! The gate `x · sigmoid(g)` in one pass, chunk by chunk, blocks of chunks on the pool.

use tract_linalg::multithread::Executor;
use tract_onnx::prelude::TractResult;
use tract_onnx::tract_core::internal::ensure;

use super::try_for_each_slice_block;

/// Elements per chunk: small enough for the gate chunk to stay in L1.
const CHUNK: usize = 1024;

/// Elements per block of work handed to one thread.
const BLOCK: usize = 16 * CHUNK;

/// `x[i] *= sigmoid(g[i])`, chunk by chunk, with tract's own sigmoid kernel (so the result is
/// bit-identical to the unfused Sigmoid → Mul); with a multi-thread `executor`, blocks of
/// 16 384 elements run on its pool.
pub fn sigmoid_mul(
    x: &mut [f32],
    g: &[f32],
    sig: &dyn tract_linalg::element_wise::ElementWise<f32>,
    executor: &Executor,
) -> TractResult<()> {
    sigmoid_mul_into(x, None, g, sig, executor)
}

/// [`sigmoid_mul`] into `out`: `out[i] = x[i] · sigmoid(g[i])`, or `out[i] *= sigmoid(g[i])`
/// when `x` is `None`.
pub fn sigmoid_mul_into(
    out: &mut [f32],
    x: Option<&[f32]>,
    g: &[f32],
    sig: &dyn tract_linalg::element_wise::ElementWise<f32>,
    executor: &Executor,
) -> TractResult<()> {
    ensure!(out.len() == g.len() && x.is_none_or(|x| x.len() == g.len()));
    try_for_each_slice_block(out, BLOCK, executor, |start, ob| {
        let mut buf = [0f32; CHUNK];
        let gb = &g[start..start + ob.len()];
        for (c, (oc, gc)) in ob.chunks_mut(CHUNK).zip(gb.chunks(CHUNK)).enumerate() {
            let s = &mut buf[..gc.len()];
            s.copy_from_slice(gc);
            sig.run(s)?;
            match x {
                Some(x) => {
                    let xc = &x[start + c * CHUNK..][..oc.len()];
                    for ((o, xv), sv) in oc.iter_mut().zip(xc).zip(s.iter()) {
                        *o = *xv * *sv;
                    }
                }
                None => {
                    for (o, sv) in oc.iter_mut().zip(s.iter()) {
                        *o *= *sv;
                    }
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_linalg::routines::Func;

    /// In place and into a new buffer, on one thread and on a pool, over lengths that end mid-chunk and mid-block, the result is
    /// bit for bit tract's sigmoid of `g` times `x`, element by element.
    #[test]
    fn equals_sigmoid_then_multiply_on_any_pool() {
        let sig = Func::Sigmoid.ew_f32().unwrap();
        for n in [1, CHUNK - 1, BLOCK, 3 * BLOCK + 517] {
            let x: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 0.03).collect();
            let g: Vec<f32> = (0..n).map(|i| ((i % 89) as f32 - 44.0) * 0.05).collect();
            let mut s = g.clone();
            sig.run(&mut s).unwrap();
            let want: Vec<f32> = x.iter().zip(&s).map(|(a, b)| a * b).collect();
            for ex in [Executor::SingleThread, Executor::multithread(3)] {
                let mut got = x.clone();
                sigmoid_mul(&mut got, &g, &*sig, &ex).unwrap();
                let mut into = vec![f32::NAN; n];
                sigmoid_mul_into(&mut into, Some(&x), &g, &*sig, &ex).unwrap();
                for got in [got, into] {
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "n = {n}"
                    );
                }
            }
        }
    }
}
