//! JPEG round trip ported from BasicSR `DiffJPEG` (non-differentiable mode), extended to a
//! quality per 16×16 MCU (§3.6).
//!
//! Steps: pad to a multiple of 16 with zeros; RGB → YCbCr (JPEG matrix, +128 on chroma); 4:2:0
//! by 2×2 averaging; 8×8 DCT of `x − 128`; divide by the standard IJG table × `factor` (floats,
//! no rounding or clamping of the table), round; dequantise, IDCT, chroma upsampled by pixel
//! repetition, back to RGB, clamp to [0, 255], crop. Output values are not rounded to integers.

use super::masks::Masks;
use crate::image::PlanarImage;

/// MCU side in pixels (4:2:0).
pub const MCU: usize = 16;

/// IJG luminance table, row = vertical frequency. DiffJPEG stores it transposed (`.T`) and
/// indexes it as `[u = vertical][v = horizontal]`; [`jpeg`] reproduces that.
const Y_TABLE: [[f32; 8]; 8] = [
    [16., 11., 10., 16., 24., 40., 51., 61.],
    [12., 12., 14., 19., 26., 58., 60., 55.],
    [14., 13., 16., 24., 40., 57., 69., 56.],
    [14., 17., 22., 29., 51., 87., 80., 62.],
    [18., 22., 37., 56., 68., 109., 103., 77.],
    [24., 35., 55., 64., 81., 104., 113., 92.],
    [49., 64., 78., 87., 103., 121., 120., 101.],
    [72., 92., 95., 98., 112., 100., 103., 99.],
];

/// DiffJPEG's chroma table (99 everywhere except the low frequencies).
fn c_table() -> [[f32; 8]; 8] {
    let mut t = [[99.0f32; 8]; 8];
    let top = [
        [17., 18., 24., 47.],
        [18., 21., 26., 66.],
        [24., 26., 56., 99.],
        [47., 66., 99., 99.],
    ];
    for i in 0..4 {
        for j in 0..4 {
            t[i][j] = top[i][j];
        }
    }
    // DiffJPEG transposes this table too; it is symmetric.
    t
}

/// `factor = (q < 50 ? 5000/q : 200 − 2q) / 100` (DiffJPEG `quality_to_factor`).
pub fn quality_to_factor(q: f32) -> f32 {
    let f = if q < 50.0 {
        5000.0 / q
    } else {
        200.0 - 2.0 * q
    };
    f / 100.0
}

/// Orthonormal 8-point DCT-II matrix `M[u][x] = ½ c(u) cos((2x+1)uπ/16)`, `c(0) = 1/√2`.
fn dct_matrix() -> [[f32; 8]; 8] {
    let mut m = [[0.0f32; 8]; 8];
    for u in 0..8 {
        let c = if u == 0 {
            std::f64::consts::FRAC_1_SQRT_2
        } else {
            1.0
        };
        for x in 0..8 {
            m[u][x] =
                (0.5 * c * (((2 * x + 1) * u) as f64 * std::f64::consts::PI / 16.0).cos()) as f32;
        }
    }
    m
}

/// `M · B · Mᵀ` (forward) or `Mᵀ · B · M` (inverse) on an 8×8 block. Each product is formed
/// row by row (`out[i] = Σ_k c(i, k) · rows[k]`, k in order from 0), which vectorises.
#[inline(always)]
fn transform(b: &mut [[f32; 8]; 8], m: &[[f32; 8]; 8], inverse: bool) {
    #[inline(always)]
    fn rows_mul(c: impl Fn(usize, usize) -> f32, rows: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
        let mut out = [[0.0f32; 8]; 8];
        for (i, o) in out.iter_mut().enumerate() {
            for (k, r) in rows.iter().enumerate() {
                let cv = c(i, k);
                for j in 0..8 {
                    o[j] += cv * r[j];
                }
            }
        }
        out
    }
    if inverse {
        let t = rows_mul(|i, k| m[k][i], b);
        *b = rows_mul(|i, k| t[i][k], m);
    } else {
        let mut mt = [[0.0f32; 8]; 8];
        for (i, row) in m.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                mt[j][i] = v;
            }
        }
        let t = rows_mul(|i, k| m[i][k], b);
        *b = rows_mul(|i, k| t[i][k], &mt);
    }
}

/// `x.round_ties_even()` without a libm call, for every `x`: adding and subtracting 2²³ rounds
/// `|x| < 2²³` to an integer in the default rounding mode (ties to even); larger floats are
/// integers already. Branch-free, so the quantisation loop vectorises on any x86-64.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const TWO23: f32 = 8_388_608.0;
    let a = x.abs();
    let r = if a < TWO23 { (a + TWO23) - TWO23 } else { a };
    r.copysign(x)
}

/// Quantise/dequantise one level-shifted 8×8 block in place.
#[inline(always)]
fn code_block(b: &mut [[f32; 8]; 8], table: &[[f32; 8]; 8], factor: f32, m: &[[f32; 8]; 8]) {
    transform(b, m, false);
    for u in 0..8 {
        for v in 0..8 {
            // DiffJPEG's table is the IJG table transposed: entry [u][v] = IJG[v][u].
            let q = table[v][u] * factor;
            b[u][v] = round_even(b[u][v] / q) * q;
        }
    }
    transform(b, m, true);
}

/// JPEG round trip of a 3-plane image in [0, 1] (clamped first) with one `factor` per MCU,
/// `factors[my * mcu_cols + mx]`, `mcu_cols = ⌈w/16⌉`.
///
/// # Panics
/// If `img` does not have 3 planes or `factors` has the wrong length.
pub fn jpeg(img: &PlanarImage, factors: &[f32]) -> PlanarImage {
    assert_eq!(img.channels, 3, "jpeg wants RGB");
    let (h, w) = (img.height, img.width);
    let (mh, mw) = (h.div_ceil(MCU), w.div_ceil(MCU));
    assert_eq!(factors.len(), mh * mw, "one factor per MCU");
    let (ph, pw) = (mh * MCU, mw * MCU);
    let mut ycc = [
        vec![0.0f32; ph * pw],
        vec![0.0f32; ph * pw],
        vec![0.0f32; ph * pw],
    ];
    // Pixels outside the image (up to the MCU grid) stay 0, as the reference pads with zeros.
    let (rp, gp, bp) = (img.plane(0), img.plane(1), img.plane(2));
    for y in 0..h {
        let (r, g, b) = (
            &rp[y * w..(y + 1) * w],
            &gp[y * w..(y + 1) * w],
            &bp[y * w..(y + 1) * w],
        );
        for x in 0..w {
            let c = |v: f32| v.clamp(0.0, 1.0) * 255.0;
            let (r, g, b) = (c(r[x]), c(g[x]), c(b[x]));
            let i = y * pw + x;
            ycc[0][i] = 0.299 * r + 0.587 * g + 0.114 * b;
            ycc[1][i] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0;
            ycc[2][i] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0;
        }
        for x in w..pw {
            ycc[1][y * pw + x] = 128.0;
            ycc[2][y * pw + x] = 128.0;
        }
    }
    for y in h..ph {
        ycc[1][y * pw..(y + 1) * pw].fill(128.0);
        ycc[2][y * pw..(y + 1) * pw].fill(128.0);
    }
    let (ch, cw) = (ph / 2, pw / 2);
    let mut chroma = [vec![0.0f32; ch * cw], vec![0.0f32; ch * cw]];
    for (k, cplane) in chroma.iter_mut().enumerate() {
        let src = &ycc[k + 1];
        for y in 0..ch {
            for x in 0..cw {
                let s = src[2 * y * pw + 2 * x]
                    + src[2 * y * pw + 2 * x + 1]
                    + src[(2 * y + 1) * pw + 2 * x]
                    + src[(2 * y + 1) * pw + 2 * x + 1];
                cplane[y * cw + x] = s / 4.0;
            }
        }
    }
    let m = dct_matrix();
    let ct = c_table();
    let run_blocks = |plane: &mut [f32],
                      pw: usize,
                      by0: usize,
                      bx0: usize,
                      nb: usize,
                      table: &[[f32; 8]; 8],
                      f: f32| {
        for by in by0..by0 + nb {
            for bx in bx0..bx0 + nb {
                let mut b = [[0.0f32; 8]; 8];
                for i in 0..8 {
                    for j in 0..8 {
                        b[i][j] = plane[(by * 8 + i) * pw + bx * 8 + j] - 128.0;
                    }
                }
                code_block(&mut b, table, f, &m);
                for i in 0..8 {
                    for j in 0..8 {
                        plane[(by * 8 + i) * pw + bx * 8 + j] = b[i][j] + 128.0;
                    }
                }
            }
        }
    };
    let [luma, _, _] = &mut ycc;
    for my in 0..mh {
        for mx in 0..mw {
            let f = factors[my * mw + mx];
            run_blocks(luma, pw, 2 * my, 2 * mx, 2, &Y_TABLE, f);
            for cp in chroma.iter_mut() {
                run_blocks(cp, cw, my, mx, 1, &ct, f);
            }
        }
    }
    let mut out = PlanarImage::zeros(3, h, w);
    let n = h * w;
    for y in 0..h {
        for x in 0..w {
            let yy = luma[y * pw + x];
            let cb = chroma[0][(y / 2) * cw + x / 2] - 128.0;
            let cr = chroma[1][(y / 2) * cw + x / 2] - 128.0;
            let rgb = [
                yy + 1.402 * cr,
                yy - 0.344136 * cb - 0.714136 * cr,
                yy + 1.772 * cb,
            ];
            for (c, v) in rgb.iter().enumerate() {
                out.data[c * n + y * w + x] = v.clamp(0.0, 255.0) / 255.0;
            }
        }
    }
    out
}

/// Per-MCU quality on an `h × w` grid: each MCU takes the quality of the regime with the largest
/// mean mask weight over the MCU (hard assignment). Returns `(factors, qualities)` per MCU.
pub fn mcu_qualities(masks: &Masks, quality: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (h, w) = (masks.height, masks.width);
    let (mh, mw) = (h.div_ceil(MCU), w.div_ceil(MCU));
    let mut q = Vec::with_capacity(mh * mw);
    for my in 0..mh {
        for mx in 0..mw {
            let mut best = (0usize, f32::NEG_INFINITY);
            for (k, plane) in masks.weights.iter().enumerate() {
                let mut s = 0.0;
                for y in my * MCU..((my + 1) * MCU).min(h) {
                    s += plane[y * w + mx * MCU..(y * w + ((mx + 1) * MCU).min(w))]
                        .iter()
                        .sum::<f32>();
                }
                if s > best.1 {
                    best = (k, s);
                }
            }
            q.push(quality[best.0]);
        }
    }
    (q.iter().map(|&v| quality_to_factor(v)).collect(), q)
}

/// Expands per-MCU values to a per-pixel `h × w` plane.
pub fn mcu_to_pixels<T: Copy>(per_mcu: &[T], h: usize, w: usize) -> Vec<T> {
    let mw = w.div_ceil(MCU);
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        let row = &per_mcu[(y / MCU) * mw..(y / MCU + 1) * mw];
        out.extend((0..w).map(|x| row[x / MCU]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_even_equals_round_ties_even() {
        let mut xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.25).collect();
        xs.extend([
            0.5,
            1.5,
            2.5,
            -0.5,
            -2.5,
            4_194_303.5,
            5e6 + 0.5,
            -7e7,
            1e-8,
            0.49999997,
        ]);
        for x in xs {
            let (a, b) = (round_even(x), x.round_ties_even());
            assert!(a.to_bits() == b.to_bits(), "{x}: {a} vs {b}");
        }
    }

    /// `Σₖ a(i, k) · b(k, j)` for every `i, j`, summed in the order of `k`.
    fn matmul8(a: impl Fn(usize, usize) -> f32, b: impl Fn(usize, usize) -> f32) -> [[f32; 8]; 8] {
        let mut out = [[0.0f32; 8]; 8];
        for (i, row) in out.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..8).fold(0.0, |s, k| s + a(i, k) * b(k, j));
            }
        }
        out
    }

    /// The row-wise products equal the plain triple loops (same order of additions).
    #[test]
    fn transform_matches_triple_loop() {
        let m = dct_matrix();
        let mut b = [[0.0f32; 8]; 8];
        for (i, row) in b.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = ((i * 37 + j * 11) % 255) as f32 - 128.0;
            }
        }
        let mut mt = m;
        for (i, row) in mt.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = m[j][i];
            }
        }
        for inverse in [false, true] {
            // Forward: M·B·Mᵀ; inverse: Mᵀ·B·M.
            let (left, right) = if inverse { (mt, m) } else { (m, mt) };
            let t = matmul8(|i, k| left[i][k], |k, j| b[k][j]);
            let want = matmul8(|i, k| t[i][k], |k, j| right[k][j]);
            let mut got = b;
            transform(&mut got, &m, inverse);
            assert_eq!(got, want, "inverse = {inverse}");
        }
    }
}
