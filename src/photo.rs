//! Pixel work around the network for photos as people have them: output sizes other than the
//! model's factor, grey and 16-bit pictures, and alpha.
//!
//! - **Output size** ([`Resize`], [`Resize::output_size`]): the model always runs at its native
//!   factor; a smaller factor (`--scale 2` on a ×4 model, `--width 1000`) is then reached by a
//!   [`DOWNSCALE_FILTER`] (Lanczos3) resize of the model's output. The filter was picked by
//!   PSNR-Y against ×2/×3 ground truth (docs/EVAL.md, "Any output scale").
//! - **Grey** ([`is_grey`], [`luma`]): a picture whose every pixel has R = G = B (or that has one
//!   colour channel) comes out grey: the model's RGB output is reduced to BT.601 luma.
//! - **Alpha** ([`fill_transparent`], [`upscale_alpha`]): the colour stored under fully
//!   transparent pixels is replaced, before the model sees it, by a push-pull fill from the
//!   nearest visible pixels, so it cannot bleed into visible edges; the alpha plane is upscaled
//!   separately (docs/EVAL.md, "Alpha").

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba32FImage};

/// The filter that takes the model's output down to a smaller factor: Lanczos3 (docs/EVAL.md,
/// "Any output scale", compares it with Catmull-Rom bicubic and triangle).
pub const DOWNSCALE_FILTER: FilterType = FilterType::Lanczos3;

/// The output size asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resize {
    /// The model's own factor.
    Native,
    /// A factor in (0, model factor].
    Scale(f64),
    /// Fit inside this width and/or height, aspect kept (`None`: no bound on that side).
    Fit {
        /// Largest output width.
        width: Option<u32>,
        /// Largest output height.
        height: Option<u32>,
    },
}

impl Resize {
    /// The output size for a `width × height` input and a model of factor `native`, and the
    /// real factor (output width over input width for `Fit`). A factor over `native`, or an
    /// empty output, is an error that says so.
    ///
    /// `Scale(s)` gives `round(width·s) × round(height·s)`; `Fit` takes the largest factor `f`
    /// with `round(width·f) ≤ W` and `round(height·f) ≤ H`, the bounded side landing exactly on
    /// its bound and the other rounded.
    pub fn output_size(
        &self,
        width: u32,
        height: u32,
        native: usize,
    ) -> Result<((u32, u32), f64), String> {
        let native_f = native as f64;
        let (w, h) = (f64::from(width), f64::from(height));
        let (size, factor) = match *self {
            Resize::Native => (
                (
                    width.saturating_mul(native as u32),
                    height.saturating_mul(native as u32),
                ),
                native_f,
            ),
            Resize::Scale(s) => {
                if !(s > 0.0 && s <= native_f) {
                    return Err(format!(
                        "--scale {s} is outside (0, {native}]: the model upscales ×{native} at most"
                    ));
                }
                (
                    (round_side(w * s, "width")?, round_side(h * s, "height")?),
                    s,
                )
            }
            Resize::Fit {
                width: bw,
                height: bh,
            } => {
                let fw = bw.map(|b| f64::from(b) / w);
                let fh = bh.map(|b| f64::from(b) / h);
                let (f, by_width) = match (fw, fh) {
                    (Some(a), Some(b)) => (a.min(b), a <= b),
                    (Some(a), None) => (a, true),
                    (None, Some(b)) => (b, false),
                    (None, None) => return Err("--width or --height is needed".into()),
                };
                if f > native_f + 1e-9 {
                    return Err(format!(
                        "{width}×{height} to fit {} needs ×{}, over the model's ×{native}",
                        match (bw, bh) {
                            (Some(a), Some(b)) => format!("{a}×{b}"),
                            (Some(a), None) => format!("width {a}"),
                            (None, Some(b)) => format!("height {b}"),
                            (None, None) => unreachable!(),
                        },
                        factor_label(f)
                    ));
                }
                let size = if by_width {
                    (bw.unwrap_or(0), round_side(h * f, "height")?)
                } else {
                    (round_side(w * f, "width")?, bh.unwrap_or(0))
                };
                if size.0 == 0 || size.1 == 0 {
                    return Err(format!("{width}×{height} fits in an empty output"));
                }
                (size, f64::from(size.0) / w)
            }
        };
        Ok((size, factor))
    }
}

fn round_side(v: f64, what: &str) -> Result<u32, String> {
    let r = v.round();
    if r < 1.0 || r > f64::from(u32::MAX) {
        return Err(format!("the output {what} would be {r}"));
    }
    Ok(r as u32)
}

/// A factor as output names and messages show it: at most two decimals, no trailing zeros
/// (`4`, `2`, `1.5`, `2.67`).
pub fn factor_label(f: f64) -> String {
    let s = format!("{f:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Resizes an RGB8 picture with [`DOWNSCALE_FILTER`]; the picture itself when the size is
/// already right.
pub fn resize_rgb8(img: RgbImage, width: u32, height: u32) -> RgbImage {
    if img.dimensions() == (width, height) {
        return img;
    }
    image::imageops::resize(&img, width, height, DOWNSCALE_FILTER)
}

/// Resizes a float RGB picture (values in [0, 1], not clamped) with [`DOWNSCALE_FILTER`].
pub fn resize_rgb32f(
    img: ImageBuffer<Rgb<f32>, Vec<f32>>,
    width: u32,
    height: u32,
) -> ImageBuffer<Rgb<f32>, Vec<f32>> {
    if img.dimensions() == (width, height) {
        return img;
    }
    image::imageops::resize(&img, width, height, DOWNSCALE_FILTER)
}

/// One output sample's taps: the first input index and the normalised weights.
#[derive(Debug, Clone)]
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// Lanczos3 taps for resampling `len_in` samples to `len_out`, as `image`'s `resize` computes
/// them (support widened by the reduction ratio when shrinking, weights normalised).
fn lanczos3_taps(len_in: usize, len_out: usize) -> Vec<Taps> {
    fn sinc(t: f32) -> f32 {
        if t == 0.0 {
            1.0
        } else {
            let a = t * std::f32::consts::PI;
            a.sin() / a
        }
    }
    let kernel = |x: f32| {
        if x.abs() < 3.0 {
            sinc(x) * sinc(x / 3.0)
        } else {
            0.0
        }
    };
    let ratio = len_in as f32 / len_out as f32;
    let sratio = ratio.max(1.0);
    let support = 3.0 * sratio;
    (0..len_out)
        .map(|o| {
            let centre = (o as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, len_in as i64 - 1) as usize;
            let right =
                ((centre + support).ceil() as i64).clamp(left as i64 + 1, len_in as i64) as usize;
            let centre = centre - 0.5;
            let mut weights: Vec<f32> = (left..right)
                .map(|i| kernel((i as f32 - centre) / sratio))
                .collect();
            let sum: f32 = weights.iter().sum();
            for w in &mut weights {
                *w /= sum;
            }
            Taps {
                first: left,
                weights,
            }
        })
        .collect()
}

/// A Lanczos3 resize of an RGB8 picture fed as bands of whole rows, top to bottom, that hands
/// out finished output rows as soon as the input rows they need have come: memory is a window
/// of horizontally resized rows (about `6 × in_h / out_h` of them), never the whole picture.
/// Output values are within one level of `image::imageops::resize(…, Lanczos3)` (same taps;
/// the passes run in the other order).
#[derive(Debug)]
pub struct RowResizer {
    in_w: usize,
    out_w: usize,
    out_h: usize,
    htaps: Vec<Taps>,
    vtaps: Vec<Taps>,
    /// Horizontally resized input rows, from input row `window_first` on.
    window: std::collections::VecDeque<Vec<f32>>,
    window_first: usize,
    rows_in: usize,
    rows_out: usize,
    out_row: Vec<u8>,
}

impl RowResizer {
    /// A resizer from `in_w × in_h` to `out_w × out_h` (all non-zero).
    pub fn new(in_w: u32, in_h: u32, out_w: u32, out_h: u32) -> RowResizer {
        let (in_w, in_h, out_w, out_h) =
            (in_w as usize, in_h as usize, out_w as usize, out_h as usize);
        RowResizer {
            in_w,
            out_w,
            out_h,
            htaps: lanczos3_taps(in_w, out_w),
            vtaps: lanczos3_taps(in_h, out_h),
            window: std::collections::VecDeque::new(),
            window_first: 0,
            rows_in: 0,
            rows_out: 0,
            out_row: vec![0; out_w * 3],
        }
    }

    /// Output rows handed out so far.
    pub fn rows_out(&self) -> usize {
        self.rows_out
    }

    /// Takes whole input rows (a multiple of `3 · in_w` bytes) and calls `emit` with each output
    /// row (`3 · out_w` bytes) that can be finished, in order. An error from `emit` stops and is
    /// returned.
    pub fn push_rows<E>(
        &mut self,
        rows: &[u8],
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for row in rows.chunks_exact(self.in_w * 3) {
            let mut h = vec![0f32; self.out_w * 3];
            for (o, t) in self.htaps.iter().enumerate() {
                let mut acc = [0f32; 3];
                for (k, w) in t.weights.iter().enumerate() {
                    let p = &row[(t.first + k) * 3..(t.first + k) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += f32::from(p[c]) * w;
                    }
                }
                h[o * 3..o * 3 + 3].copy_from_slice(&acc);
            }
            self.window.push_back(h);
            self.rows_in += 1;
            while self.rows_out < self.out_h {
                let t = &self.vtaps[self.rows_out];
                if t.first + t.weights.len() > self.rows_in {
                    break;
                }
                // Rows before this output's first tap are never needed again (taps only move
                // down).
                while self.window_first < t.first {
                    self.window.pop_front();
                    self.window_first += 1;
                }
                for x in 0..self.out_w * 3 {
                    let mut acc = 0f32;
                    for (k, w) in t.weights.iter().enumerate() {
                        acc += self.window[t.first + k - self.window_first][x] * w;
                    }
                    self.out_row[x] = acc.round().clamp(0.0, 255.0) as u8;
                }
                emit(&self.out_row)?;
                self.rows_out += 1;
            }
        }
        Ok(())
    }
}

/// Whether the picture is grey: one colour channel (L, LA), or R = G = B at every pixel.
pub fn is_grey(img: &DynamicImage) -> bool {
    match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_) => true,
        DynamicImage::ImageRgb8(i) => i.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        DynamicImage::ImageRgba8(i) => i.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        DynamicImage::ImageRgb16(i) => i.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        DynamicImage::ImageRgba16(i) => i.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        DynamicImage::ImageRgb32F(i) => i.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        DynamicImage::ImageRgba32F(i) => i.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        _ => false,
    }
}

/// BT.601 luma of linear-in-code RGB values, `0.299 R + 0.587 G + 0.114 B`, in the values'
/// own range.
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// The luma plane of an RGB8 picture, rounded to 8 bits (R = G = B gives that value exactly).
pub fn luma8(img: &RgbImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let data = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    GrayImage::from_raw(w, h, data).expect("one byte a pixel")
}

/// Whether the picture has an alpha channel whose values are not all opaque.
pub fn has_alpha(img: &DynamicImage) -> bool {
    match img {
        DynamicImage::ImageLumaA8(i) => i.pixels().any(|p| p[1] != u8::MAX),
        DynamicImage::ImageRgba8(i) => i.pixels().any(|p| p[3] != u8::MAX),
        DynamicImage::ImageLumaA16(i) => i.pixels().any(|p| p[1] != u16::MAX),
        DynamicImage::ImageRgba16(i) => i.pixels().any(|p| p[3] != u16::MAX),
        DynamicImage::ImageRgba32F(i) => i.pixels().any(|p| p[3] < 1.0),
        _ => false,
    }
}

/// The alpha plane of a picture in [0, 1] (all ones without alpha), row-major.
pub fn alpha_plane(img: &DynamicImage) -> Vec<f32> {
    img.to_rgba32f().pixels().map(|p| p[3]).collect()
}

/// A `w × h` alpha plane in [0, 1] as the grey RGB8 picture the model upscales for it (each
/// value rounded to 8 bits in all three channels); `None` when the plane is not `w·h` long.
pub fn alpha_as_rgb8(alpha: &[f32], w: u32, h: u32) -> Option<RgbImage> {
    let rgb: Vec<u8> = alpha
        .iter()
        .flat_map(|&v| {
            let v = (v * 255.0).round().clamp(0.0, 255.0) as u8;
            [v, v, v]
        })
        .collect();
    RgbImage::from_raw(w, h, rgb)
}

/// Replaces the colour of fully transparent pixels (alpha 0) by a push-pull fill from the
/// visible ones: a pyramid of alpha-weighted 2×2 averages is built up to one pixel, then each
/// transparent pixel takes the colour of the coarsest level's bilinear interpolation that has
/// weight there. Visible pixels (alpha > 0) keep their colour exactly. Without any visible
/// pixel, the colour becomes black. Returns the RGB picture (alpha dropped) to give the model.
pub fn fill_transparent(img: &Rgba32FImage) -> ImageBuffer<Rgb<f32>, Vec<f32>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    // Level 0: colour premultiplied by a visibility weight (1 where alpha > 0).
    let mut levels: Vec<(usize, usize, Vec<[f32; 4]>)> = Vec::new();
    let base: Vec<[f32; 4]> = img
        .pixels()
        .map(|p| {
            if p[3] > 0.0 {
                [p[0], p[1], p[2], 1.0]
            } else {
                [0.0; 4]
            }
        })
        .collect();
    levels.push((w, h, base));
    pull_to_one_pixel(&mut levels);
    // Push: a level's pixels without full weight take the rest of their colour from the level
    // above: what the level has is normalised, then the coarse colour blended in for the rest.
    push_down(&mut levels, |p, c| {
        let wgt = p[3];
        let k = if wgt > 0.0 { 1.0 / wgt } else { 0.0 };
        let rest = 1.0 - wgt.min(1.0);
        for i in 0..3 {
            let own = p[i] * k;
            p[i] = own * wgt.min(1.0) + c[i] * rest;
        }
        p[3] = 1.0;
    });
    let (_, _, top) = &levels[0];
    let mut out = ImageBuffer::<Rgb<f32>, Vec<f32>>::new(w as u32, h as u32);
    for (i, (px, src)) in out.pixels_mut().zip(img.pixels()).enumerate() {
        *px = if src[3] > 0.0 {
            Rgb([src[0], src[1], src[2]])
        } else {
            let t = top[i];
            Rgb([t[0], t[1], t[2]])
        };
    }
    out
}

/// Pull levels of a push-pull pyramid: appends [`pull_level`]s until the last is one pixel.
fn pull_to_one_pixel(levels: &mut Vec<(usize, usize, Vec<[f32; 4]>)>) {
    while let Some((lw, lh, prev)) = levels.last().filter(|(lw, lh, _)| *lw > 1 || *lh > 1) {
        let next = pull_level(*lw, *lh, prev);
        levels.push(next);
    }
}

/// Push from the coarsest level down: each pixel of a level without full weight (`p[3] < 1`)
/// gets `fill(p, c)` with `c` the level above's normalised colour, bilinearly sampled there.
fn push_down(levels: &mut [(usize, usize, Vec<[f32; 4]>)], fill: impl Fn(&mut [f32; 4], [f32; 3])) {
    for l in (0..levels.len().saturating_sub(1)).rev() {
        let (cw, ch, coarse) = {
            let (cw, ch, c) = &levels[l + 1];
            (*cw, *ch, c.clone())
        };
        let (fw, fh, fine) = &mut levels[l];
        for y in 0..*fh {
            for x in 0..*fw {
                let p = &mut fine[y * *fw + x];
                if p[3] >= 1.0 {
                    continue;
                }
                let c = sample_normalised(
                    &coarse,
                    cw,
                    ch,
                    (x as f32 + 0.5) / 2.0,
                    (y as f32 + 0.5) / 2.0,
                );
                fill(p, [c[0], c[1], c[2]]);
            }
        }
    }
}

/// [`fill_transparent`] on an 8-bit picture, straight to the RGB8 picture the model takes, in
/// less memory: the picture itself is the pyramid's finest level (about 9 bytes an input pixel
/// besides the input, against about 45 for the float version). Same colours within one level.
pub fn fill_transparent_rgba8(img: &image::RgbaImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let base = |x: usize, y: usize| -> [f32; 4] {
        let p = &src[(y * w + x) * 4..(y * w + x) * 4 + 4];
        if p[3] > 0 {
            [
                f32::from(p[0]) / 255.0,
                f32::from(p[1]) / 255.0,
                f32::from(p[2]) / 255.0,
                1.0,
            ]
        } else {
            [0.0; 4]
        }
    };
    // Levels 1 and up (level 0 is the picture).
    let mut levels: Vec<(usize, usize, Vec<[f32; 4]>)> = Vec::new();
    if w > 1 || h > 1 {
        let (nw, nh) = (w.div_ceil(2), h.div_ceil(2));
        let mut next = vec![[0f32; 4]; nw * nh];
        for y in 0..h {
            for x in 0..w {
                let p = base(x, y);
                let q = &mut next[(y / 2) * nw + x / 2];
                for c in 0..4 {
                    q[c] += p[c];
                }
            }
        }
        levels.push((nw, nh, next));
    }
    pull_to_one_pixel(&mut levels);
    push_down(&mut levels, |p, c| *p = [c[0], c[1], c[2], 1.0]);
    let q = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        let i = (y * w + x) * 4;
        if src[i + 3] > 0 {
            return Rgb([src[i], src[i + 1], src[i + 2]]);
        }
        match levels.first() {
            Some((cw, ch, l1)) => {
                let c =
                    sample_normalised(l1, *cw, *ch, (x as f32 + 0.5) / 2.0, (y as f32 + 0.5) / 2.0);
                Rgb([q(c[0]), q(c[1]), q(c[2])])
            }
            None => Rgb([0, 0, 0]),
        }
    })
}

/// Bilinear sample at (x, y) in pixel units (centres at +0.5) of a level whose weighted colours
/// are normalised (colour / weight; weightless pixels count as absent).
fn sample_normalised(level: &[[f32; 4]], w: usize, h: usize, x: f32, y: f32) -> [f32; 3] {
    let fx = (x - 0.5).clamp(0.0, (w - 1) as f32);
    let fy = (y - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let mut acc = [0f32; 3];
    let mut total = 0f32;
    for (xx, yy, k) in [
        (x0, y0, (1.0 - ax) * (1.0 - ay)),
        (x1, y0, ax * (1.0 - ay)),
        (x0, y1, (1.0 - ax) * ay),
        (x1, y1, ax * ay),
    ] {
        let p = level[yy * w + xx];
        if p[3] <= 0.0 || k <= 0.0 {
            continue;
        }
        for i in 0..3 {
            acc[i] += k * p[i] / p[3];
        }
        total += k;
    }
    if total > 0.0 {
        acc.map(|v| v / total)
    } else {
        acc
    }
}

/// How the alpha plane is upscaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlphaMethod {
    /// The model itself, on the alpha plane replicated to three channels (the mean of its three
    /// outputs is the alpha), then resized like the colour.
    Model,
    /// Catmull-Rom bicubic resize.
    Bicubic,
    /// Nearest-neighbour enlargement, then a 3×3 box smoothing at the output size.
    NearestSmooth,
}

/// Upscales an alpha plane (`width × height`, values in [0, 1]) to `out_w × out_h` by a
/// non-model method, values clamped to [0, 1]. [`AlphaMethod::Model`] is the caller's work (it
/// needs the network); here it is refused with `None`.
pub fn upscale_alpha(
    alpha: &[f32],
    width: u32,
    height: u32,
    out_w: u32,
    out_h: u32,
    method: AlphaMethod,
) -> Option<Vec<f32>> {
    let plane = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(width, height, alpha.to_vec())?;
    let out = match method {
        AlphaMethod::Model => return None,
        AlphaMethod::Bicubic => {
            image::imageops::resize(&plane, out_w, out_h, FilterType::CatmullRom).into_raw()
        }
        AlphaMethod::NearestSmooth => {
            let big = image::imageops::resize(&plane, out_w, out_h, FilterType::Nearest);
            box3(big.as_raw(), out_w as usize, out_h as usize)
        }
    };
    let mut out: Vec<f32> = out.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    pin_flat_alpha(&mut out, alpha, width, height, out_w, out_h);
    Some(out)
}

/// Where the input's alpha is flat around a pixel (its 3×3 input neighbourhood is all fully
/// transparent or all fully opaque), the upscaled alpha is set to exactly that value: interiors
/// stay exactly clear or opaque whatever the upscaler's ripple, only edges get new values.
pub fn pin_flat_alpha(
    out: &mut [f32],
    alpha: &[f32],
    width: u32,
    height: u32,
    out_w: u32,
    out_h: u32,
) {
    let flat = FlatAlpha::new(alpha, width, height);
    for (oy, row) in out.chunks_exact_mut(out_w as usize).enumerate() {
        flat.pin_row(row, oy, out_h as usize);
    }
}

/// Where an alpha plane is flat (see [`pin_flat_alpha`]), for pinning output rows one at a time.
#[derive(Debug, Clone)]
pub struct FlatAlpha {
    w: usize,
    h: usize,
    /// Per input pixel: 0 all clear around, 1 all opaque around, 2 mixed.
    flat: Vec<u8>,
}

impl FlatAlpha {
    /// The flat areas of a `width × height` alpha plane (values in [0, 1]).
    pub fn new(alpha: &[f32], width: u32, height: u32) -> FlatAlpha {
        let (w, h) = (width as usize, height as usize);
        let mut flat = vec![2u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
                for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let a = alpha[yy * w + xx];
                        lo = lo.min(a);
                        hi = hi.max(a);
                    }
                }
                if hi <= 0.0 {
                    flat[y * w + x] = 0;
                } else if lo >= 1.0 {
                    flat[y * w + x] = 1;
                }
            }
        }
        FlatAlpha { w, h, flat }
    }

    /// Pins output row `oy` (of `out_h` rows; `row.len()` is the output width).
    pub fn pin_row(&self, row: &mut [f32], oy: usize, out_h: usize) {
        let ow = row.len();
        let y = ((oy * self.h) / out_h).min(self.h - 1);
        for (ox, v) in row.iter_mut().enumerate() {
            let x = ((ox * self.w) / ow).min(self.w - 1);
            match self.flat[y * self.w + x] {
                0 => *v = 0.0,
                1 => *v = 1.0,
                _ => {}
            }
        }
    }
}

/// How savl upscales alpha planes (measured in docs/EVAL.md, "Alpha").
pub const ALPHA_METHOD: AlphaMethod = AlphaMethod::Model;

/// [`AlphaMethod::Model`]: the alpha plane (values in [0, 1]) replicated to three 8-bit
/// channels, upscaled by `run` (the network), averaged back to one plane, resized to
/// `out_w × out_h` with [`DOWNSCALE_FILTER`] and clamped to [0, 1].
pub fn upscale_alpha_with<F>(
    alpha: &[f32],
    width: u32,
    height: u32,
    out_w: u32,
    out_h: u32,
    run: F,
) -> Result<Vec<f32>, String>
where
    F: FnOnce(&RgbImage) -> Result<RgbImage, String>,
{
    let rgb = alpha_as_rgb8(alpha, width, height).ok_or("alpha plane size")?;
    let up = run(&rgb)?;
    let (bw, bh) = up.dimensions();
    let mean: Vec<f32> = up
        .as_raw()
        .chunks_exact(3)
        .map(|p| (f32::from(p[0]) + f32::from(p[1]) + f32::from(p[2])) / (3.0 * 255.0))
        .collect();
    let plane = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(bw, bh, mean).ok_or("model output")?;
    let plane = if (bw, bh) == (out_w, out_h) {
        plane
    } else {
        image::imageops::resize(&plane, out_w, out_h, DOWNSCALE_FILTER)
    };
    let mut out: Vec<f32> = plane
        .into_raw()
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    pin_flat_alpha(&mut out, alpha, width, height, out_w, out_h);
    Ok(out)
}

fn box3(p: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; p.len()];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0f32;
            let mut n = 0f32;
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    s += p[yy * w + xx];
                    n += 1.0;
                }
            }
            out[y * w + x] = s / n;
        }
    }
    out
}

/// Composites straight-alpha RGB (values in [0, 1]) over an opaque `background` (RGB8):
/// `c·a + bg·(1 − a)`.
pub fn flatten(rgb: [f32; 3], alpha: f32, background: [u8; 3]) -> [f32; 3] {
    let a = alpha.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| rgb[i] * a + f32::from(background[i]) / 255.0 * (1.0 - a))
}

/// One pull step of a push-pull pyramid: each cell of the half-size level (sides rounded up)
/// sums the premultiplied colour and weight `[r, g, b, w]` of its 2×2 block of `prev`.
fn pull_level(lw: usize, lh: usize, prev: &[[f32; 4]]) -> (usize, usize, Vec<[f32; 4]>) {
    let (nw, nh) = (lw.div_ceil(2), lh.div_ceil(2));
    let mut next = vec![[0f32; 4]; nw * nh];
    for y in 0..lh {
        for x in 0..lw {
            let p = prev[y * lw + x];
            let q = &mut next[(y / 2) * nw + x / 2];
            for c in 0..4 {
                q[c] += p[c];
            }
        }
    }
    (nw, nh, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_scale_and_fit() {
        let s = |r: Resize, w, h| r.output_size(w, h, 4).map(|x| x.0);
        assert_eq!(s(Resize::Scale(2.0), 100, 80), Ok((200, 160)));
        assert_eq!(s(Resize::Scale(1.5), 101, 80), Ok((152, 120)));
        assert_eq!(s(Resize::Native, 100, 80), Ok((400, 320)));
        assert!(s(Resize::Scale(4.5), 100, 80).is_err());
        assert!(s(Resize::Scale(0.0), 100, 80).is_err());
        let fit = |w, h| Resize::Fit {
            width: w,
            height: h,
        };
        assert_eq!(s(fit(Some(1000), None), 400, 300), Ok((1000, 750)));
        assert_eq!(s(fit(None, Some(600)), 400, 300), Ok((800, 600)));
        // Both: the tighter bound wins, the other side rounded.
        assert_eq!(s(fit(Some(1000), Some(600)), 400, 300), Ok((800, 600)));
        assert_eq!(s(fit(Some(1000), None), 333, 250), Ok((1000, 751)));
        let err = s(fit(Some(2000), None), 400, 300).unwrap_err();
        assert!(err.contains("×5") && err.contains("×4"), "{err}");
        let (_, f) = fit(Some(1000), None).output_size(400, 300, 4).unwrap();
        assert_eq!(factor_label(f), "2.5");
    }

    /// The streaming resizer against `image`'s whole-picture Lanczos3 (an independent
    /// implementation): within one level everywhere, fed in uneven bands.
    #[test]
    fn row_resizer_matches_image_lanczos3() {
        let img = RgbImage::from_fn(97, 61, |x, y| {
            let v = ((x * 37 + y * 91) % 256) as u8;
            Rgb([
                v,
                ((x * x + y) % 256) as u8,
                if (x / 7 + y / 5) % 2 == 0 { 255 } else { 0 },
            ])
        });
        for (ow, oh) in [(48, 30), (65, 41), (33, 20), (97, 31), (150, 90)] {
            let want = image::imageops::resize(&img, ow, oh, FilterType::Lanczos3);
            let mut r = RowResizer::new(97, 61, ow, oh);
            let mut got: Vec<u8> = Vec::new();
            let row = 97 * 3;
            let mut start = 0;
            for band in [1usize, 7, 13, 2, 38] {
                let end = (start + band).min(61);
                r.push_rows(&img.as_raw()[start * row..end * row], |o| {
                    got.extend_from_slice(o);
                    Ok::<(), ()>(())
                })
                .unwrap();
                start = end;
            }
            assert_eq!(r.rows_out(), oh as usize, "{ow}×{oh}");
            let worst = got
                .iter()
                .zip(want.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(
                worst <= 1,
                "{ow}×{oh}: up to {worst} levels from image's resize"
            );
        }
    }

    #[test]
    fn factor_labels() {
        assert_eq!(factor_label(4.0), "4");
        assert_eq!(factor_label(1.5), "1.5");
        assert_eq!(factor_label(8.0 / 3.0), "2.67");
        assert_eq!(factor_label(2.999), "3");
    }

    #[test]
    fn grey_detection_and_luma() {
        let grey = RgbImage::from_fn(4, 3, |x, y| {
            let v = (x * 40 + y) as u8;
            Rgb([v, v, v])
        });
        assert!(is_grey(&DynamicImage::ImageRgb8(grey.clone())));
        assert_eq!(
            luma8(&grey).as_raw(),
            &DynamicImage::ImageRgb8(grey.clone()).to_luma8().into_raw()
        );
        let mut tinted = grey;
        tinted.put_pixel(3, 2, Rgb([1, 2, 1]));
        assert!(!is_grey(&DynamicImage::ImageRgb8(tinted)));
        // BT.601 weights: independent closed form.
        let one = RgbImage::from_pixel(1, 1, Rgb([200, 100, 50]));
        assert_eq!(
            luma8(&one).get_pixel(0, 0)[0],
            (0.299f64 * 200.0 + 0.587 * 100.0 + 0.114 * 50.0).round() as u8
        );
    }

    #[test]
    fn fill_keeps_visible_pixels_and_replaces_hidden_colour() {
        // Left half visible blue-ish gradient, right half transparent red.
        let img = Rgba32FImage::from_fn(16, 8, |x, y| {
            if x < 8 {
                image::Rgba([0.1, 0.2 + y as f32 * 0.05, 0.9, 1.0])
            } else {
                image::Rgba([1.0, 0.0, 0.0, 0.0])
            }
        });
        let filled = fill_transparent(&img);
        for (x, y, p) in filled.enumerate_pixels() {
            let s = img.get_pixel(x, y);
            if x < 8 {
                assert_eq!(p.0, [s[0], s[1], s[2]]);
            } else {
                // The fill is a blend of visible colours: never the hidden red.
                assert!(p[0] <= 0.1 + 1e-5, "red {} at {x},{y}", p[0]);
                assert!((p[2] - 0.9).abs() < 1e-5, "{p:?}");
                assert!(p[1] >= 0.2 - 1e-5 && p[1] <= 0.55 + 1e-5, "{p:?}");
            }
        }
        // The column next to the edge follows the edge's colour from row to row (its green
        // rises with y as the visible edge's does), not one flat average.
        let near: Vec<f32> = (0..8).map(|y| filled.get_pixel(8, y)[1]).collect();
        assert!(near.windows(2).all(|w| w[1] >= w[0] - 1e-6), "{near:?}");
        assert!(near[7] - near[0] > 0.05, "{near:?}");
        // Nothing visible: black.
        let none = Rgba32FImage::from_pixel(3, 3, image::Rgba([1.0, 0.0, 0.0, 0.0]));
        assert!(fill_transparent(&none).pixels().all(|p| p.0 == [0.0; 3]));
    }

    /// The 8-bit fill gives the float fill's colours (rounded) on a picture with holes,
    /// stripes and a fully transparent corner.
    #[test]
    fn the_rgba8_fill_matches_the_float_fill() {
        let img = image::RgbaImage::from_fn(37, 23, |x, y| {
            let hidden = (x > 20 && y < 12) || (x + y) % 7 == 0 || x == 3;
            image::Rgba([
                (x * 7) as u8,
                (y * 11) as u8,
                ((x * y) % 256) as u8,
                if hidden { 0 } else { 200 },
            ])
        });
        let float = DynamicImage::ImageRgb32F(fill_transparent(
            &DynamicImage::ImageRgba8(img.clone()).to_rgba32f(),
        ))
        .to_rgb8();
        let eight = fill_transparent_rgba8(&img);
        let worst = float
            .as_raw()
            .iter()
            .zip(eight.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 1, "{worst}");
        let one = image::RgbaImage::from_pixel(1, 1, image::Rgba([9, 9, 9, 0]));
        assert_eq!(fill_transparent_rgba8(&one).get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn alpha_methods_keep_range_and_size() {
        let a: Vec<f32> = (0..16).map(|i| if i % 4 < 2 { 1.0 } else { 0.0 }).collect();
        for m in [AlphaMethod::Bicubic, AlphaMethod::NearestSmooth] {
            let up = upscale_alpha(&a, 4, 4, 16, 16, m).unwrap();
            assert_eq!(up.len(), 256);
            assert!(up.iter().all(|v| (0.0..=1.0).contains(v)));
            // Far from the edge the plane is exactly what it was.
            assert_eq!(up[16 * 8], 1.0, "{m:?}");
            assert_eq!(up[16 * 8 + 15], 0.0, "{m:?}");
        }
        assert!(upscale_alpha(&a, 4, 4, 16, 16, AlphaMethod::Model).is_none());
    }

    #[test]
    fn flatten_is_the_over_operator() {
        assert_eq!(flatten([0.0, 0.0, 0.0], 0.0, [255, 255, 255]), [1.0; 3]);
        assert_eq!(
            flatten([0.2, 0.4, 0.6], 1.0, [255, 255, 255]),
            [0.2, 0.4, 0.6]
        );
        let h = flatten([0.0, 0.0, 0.0], 0.5, [255, 0, 255]);
        assert_eq!(h, [0.5, 0.0, 0.5]);
    }
}
