//! Pixel shuffle (depth to space, PyTorch's channel order) with an optional nearest-upsampled
//! skip added in the same pass, LR rows in blocks on the pool.

use tract_linalg::multithread::Executor;
use tract_onnx::prelude::TractResult;
use tract_onnx::tract_core::internal::ensure;

use super::try_for_each_slice_block;

/// Output elements per block of work handed to one thread (rounded to whole LR rows).
const BLOCK: usize = 16 * 1024;

/// The geometry of one shuffle: `planes` output planes (N·C), each built from `r²` input planes
/// of `h × w`; the output planes are `h·r × w·r`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shuffle {
    /// Output planes, N·C.
    pub planes: usize,
    /// The upscale factor.
    pub r: usize,
    /// Input rows.
    pub h: usize,
    /// Input columns.
    pub w: usize,
}

impl Shuffle {
    /// Elements of the input (`planes·r²·h·w`), and of the output: the same count.
    pub fn len(&self) -> usize {
        self.planes * self.r * self.r * self.h * self.w
    }

    /// Whether there is nothing to shuffle.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `out[p, y·r + i, x·r + j] = input[p·r² + i·r + j, y, x] + base[p, y, x]` (without the base
/// term when `base` is `None`): ONNX `DepthToSpace` in CRD mode (PyTorch `pixel_shuffle`),
/// plus a nearest ×r upsample of `base` added to it. Each sum is the one f32 addition the
/// unfused ops make, so the result is bit-identical to them. With a multi-thread `executor`,
/// blocks of LR rows run on its pool.
pub fn pixel_shuffle(
    input: &[f32],
    base: Option<&[f32]>,
    out: &mut [f32],
    g: Shuffle,
    executor: &Executor,
) -> TractResult<()> {
    let Shuffle { planes, r, h, w } = g;
    ensure!(r > 0, "pixel shuffle by 0");
    ensure!(input.len() == g.len() && out.len() == g.len());
    ensure!(base.is_none_or(|b| b.len() == planes * h * w));
    if g.is_empty() {
        return Ok(());
    }
    // One LR row of one plane makes `r` output rows of `w·r`.
    let row_out = r * r * w;
    let rows_per_block = (BLOCK / row_out).max(1);
    try_for_each_slice_block(out, rows_per_block * row_out, executor, |start, block| {
        let first = start / row_out;
        for (k, rows) in block.chunks_exact_mut(row_out).enumerate() {
            let (p, y) = ((first + k) / h, (first + k) % h);
            let b = base.map(|b| &b[(p * h + y) * w..][..w]);
            for (i, orow) in rows.chunks_exact_mut(w * r).enumerate() {
                for j in 0..r {
                    let src = &input[((p * r * r + i * r + j) * h + y) * w..][..w];
                    let dst = orow[j..].iter_mut().step_by(r);
                    match b {
                        Some(b) => {
                            for ((o, s), b) in dst.zip(src).zip(b) {
                                *o = *s + *b;
                            }
                        }
                        None => {
                            for (o, s) in dst.zip(src) {
                                *o = *s;
                            }
                        }
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

    /// The definition, index by index.
    fn naive(input: &[f32], base: Option<&[f32]>, g: Shuffle) -> Vec<f32> {
        let Shuffle { planes, r, h, w } = g;
        let (oh, ow) = (h * r, w * r);
        let mut out = vec![0f32; g.len()];
        for p in 0..planes {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (y, i, x, j) = (oy / r, oy % r, ox / r, ox % r);
                    let v = input[((p * r * r + i * r + j) * h + y) * w + x];
                    let b = base.map_or(0.0, |b| b[(p * h + y) * w + x]);
                    out[(p * oh + oy) * ow + ox] = if base.is_some() { v + b } else { v };
                }
            }
        }
        out
    }

    /// With and without a base, factors 1 to 4, shapes that end mid-block, on one thread and on
    /// a pool: bit for bit the definition.
    #[test]
    fn equals_the_definition_on_any_pool() {
        for (planes, r, h, w) in [
            (3, 4, 5, 7),
            (1, 2, 1, 1),
            (2, 3, 9, 4),
            (3, 4, 70, 33),
            (1, 1, 3, 3),
        ] {
            let g = Shuffle { planes, r, h, w };
            let input: Vec<f32> = (0..g.len()).map(|i| (i as f32 * 0.37).sin()).collect();
            let base: Vec<f32> = (0..planes * h * w)
                .map(|i| (i as f32 * 0.11).cos())
                .collect();
            for b in [None, Some(&base[..])] {
                let want = naive(&input, b, g);
                for ex in [Executor::SingleThread, Executor::multithread(3)] {
                    let mut got = vec![f32::NAN; g.len()];
                    pixel_shuffle(&input, b, &mut got, g, &ex).unwrap();
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{g:?} base {}",
                        b.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let g = Shuffle {
            planes: 1,
            r: 2,
            h: 2,
            w: 2,
        };
        let mut out = vec![0f32; 16];
        assert!(pixel_shuffle(&[0.0; 15], None, &mut out, g, &Executor::SingleThread).is_err());
        assert!(pixel_shuffle(
            &[0.0; 16],
            Some(&[0.0; 3]),
            &mut out,
            g,
            &Executor::SingleThread
        )
        .is_err());
    }
}
