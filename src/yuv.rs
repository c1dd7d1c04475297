//! 8-bit Y′CbCr ↔ RGB24 conversion for camera and video frames (y4m pipes, `savl video`, and
//! NV12/I420 camera buffers through the C ABI).
//!
//! # Contract
//!
//! - **Matrix** ([`Matrix`]): BT.601 (`Kr = 0.299, Kb = 0.114`) or BT.709
//!   (`Kr = 0.2126, Kb = 0.0722`), `Kg = 1 − Kr − Kb`. With R, G, B in 0..=255:
//!   `Y = Kr·R + Kg·G + Kb·B`, `Cb = (B − Y) / (2·(1 − Kb))`, `Cr = (R − Y) / (2·(1 − Kr))`.
//! - **Range** ([`Range`]): *limited* (studio, "tv", MPEG) stores `16 + Y·219/255` and
//!   `128 + C·224/255`; *full* (JPEG, "pc") stores `Y` and `128 + C`. Every stored value is rounded
//!   to the nearest integer and clamped to 0..=255; RGB from Y′CbCr likewise.
//! - **Chroma** ([`Subsampling`]): 4:4:4 has one chroma sample per pixel. 4:2:0 has one per 2×2
//!   block (⌈W/2⌉ × ⌈H/2⌉ samples), sited at the block's centre (JPEG/MPEG-1, y4m `C420jpeg`).
//!   Writing 4:2:0, each chroma sample is the mean of its block's (1, 2 or 4 at odd edges) exact
//!   per-pixel values, rounded once. Reading 4:2:0, each chroma sample serves its whole block
//!   (nearest neighbour, no interpolation; the same as ffmpeg's default unscaled conversion).
//!   MPEG-2 siting (left, y4m `C420mpeg2`) read this way is shifted by a quarter of an output
//!   pixel.
//! - **Layout**: each plane is a byte slice with a row stride (bytes from one row to the next,
//!   at least the row's length) so padded camera buffers are read in place. Chroma is either two
//!   planes (I420, I444, YV12 with the planes swapped) or one interleaved plane (NV12: U first,
//!   NV21: V first). RGB is packed `R, G, B` bytes with its own stride.
//!
//! Conversions of one pixel depend on that pixel (and its chroma block) only: no state across
//! rows or frames, so the same frame always converts to the same bytes.

/// The Y′CbCr colour matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matrix {
    /// ITU-R BT.601 (SD video, JPEG; the y4m and ffmpeg default).
    #[default]
    Bt601,
    /// ITU-R BT.709 (HD video).
    Bt709,
}

impl Matrix {
    /// `(Kr, Kb)`.
    pub fn coefficients(self) -> (f32, f32) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

savl_contract::named_enum!(Matrix, "colour matrix", {
    Bt601 => "bt601" | "601" | "smpte170m" | "bt470bg",
    Bt709 => "bt709" | "709",
});

/// The quantisation range of the stored samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    /// Y in 16..=235, Cb/Cr in 16..=240 ("tv"; the video default).
    #[default]
    Limited,
    /// Y, Cb, Cr in 0..=255 ("pc", JPEG).
    Full,
}

savl_contract::named_enum!(Range, "colour range", {
    Limited => "limited" | "tv" | "mpeg",
    Full => "full" | "pc" | "jpeg",
});

/// Matrix and range together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Colour {
    /// The colour matrix.
    pub matrix: Matrix,
    /// The sample range.
    pub range: Range,
}

/// Chroma resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsampling {
    /// One chroma sample per 2×2 block, centre sited.
    Yuv420,
    /// One chroma sample per pixel.
    Yuv444,
}

impl Subsampling {
    /// Chroma plane size, in samples, for a `width × height` picture.
    pub fn chroma_size(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Subsampling::Yuv420 => (width.div_ceil(2), height.div_ceil(2)),
            Subsampling::Yuv444 => (width, height),
        }
    }

    /// The luma length, the per-plane chroma length and the chroma row width of a packed frame
    /// (Y, then U, then V) of `len` bytes; [`YuvError`] unless `len` is exactly
    /// [`Subsampling::frame_len`].
    fn packed_plane_lens(
        self,
        width: u32,
        height: u32,
        len: usize,
    ) -> Result<(usize, usize, u32), YuvError> {
        let need = self.frame_len(width, height);
        if len != need {
            return Err(YuvError::new(format!(
                "a {width}x{height} frame holds {need} bytes, got {len}"
            )));
        }
        let (cw, ch) = self.chroma_size(width, height);
        Ok((
            width as usize * height as usize,
            cw as usize * ch as usize,
            cw,
        ))
    }

    /// Bytes of a tightly packed planar frame (Y, then U, then V).
    pub fn frame_len(self, width: u32, height: u32) -> usize {
        let (cw, ch) = self.chroma_size(width, height);
        width as usize * height as usize + 2 * cw as usize * ch as usize
    }
}

/// A read-only plane: `data` with `stride` bytes from one row to the next.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The samples, row after row.
    pub data: &'a [u8],
    /// Bytes from the start of one row to the next.
    pub stride: usize,
}

/// A writable plane.
#[derive(Debug)]
pub struct PlaneMut<'a> {
    /// The samples, row after row.
    pub data: &'a mut [u8],
    /// Bytes from the start of one row to the next.
    pub stride: usize,
}

/// Order of the samples in an interleaved chroma plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvOrder {
    /// U (Cb) first: NV12, NV24.
    Uv,
    /// V (Cr) first: NV21, NV42.
    Vu,
}

/// Chroma planes: `P` is [`Plane`] to read them ([`Chroma`]), [`PlaneMut`] to write them
/// ([`ChromaMut`]).
#[derive(Debug, Clone, Copy)]
pub enum ChromaPlanes<P> {
    /// Separate U (Cb) and V (Cr) planes (I420, I444).
    Planar {
        /// Cb.
        u: P,
        /// Cr.
        v: P,
    },
    /// One plane of sample pairs (NV12, NV21).
    Interleaved {
        /// The pairs.
        uv: P,
        /// Which comes first.
        order: UvOrder,
    },
}

/// Read-only chroma planes.
pub type Chroma<'a> = ChromaPlanes<Plane<'a>>;

/// Writable chroma planes.
pub type ChromaMut<'a> = ChromaPlanes<PlaneMut<'a>>;

/// A Y′CbCr picture to read.
#[derive(Debug, Clone, Copy)]
pub struct YuvImage<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Chroma resolution.
    pub subsampling: Subsampling,
    /// Luma.
    pub y: Plane<'a>,
    /// Chroma.
    pub chroma: Chroma<'a>,
}

/// A Y′CbCr picture to write.
#[derive(Debug)]
pub struct YuvImageMut<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Chroma resolution.
    pub subsampling: Subsampling,
    /// Luma.
    pub y: PlaneMut<'a>,
    /// Chroma.
    pub chroma: ChromaMut<'a>,
}

impl<'a> YuvImage<'a> {
    /// A tightly packed planar frame (Y, U, V one after the other, as in y4m and ffmpeg's
    /// `yuv420p`/`yuv444p` rawvideo).
    ///
    /// # Errors
    /// [`YuvError`] if `data` is not exactly [`Subsampling::frame_len`] bytes.
    pub fn packed(
        data: &'a [u8],
        width: u32,
        height: u32,
        subsampling: Subsampling,
    ) -> Result<Self, YuvError> {
        let (ylen, clen, cw) = subsampling.packed_plane_lens(width, height, data.len())?;
        let (y, rest) = data.split_at(ylen);
        let (u, v) = rest.split_at(clen);
        Ok(YuvImage {
            width,
            height,
            subsampling,
            y: Plane {
                data: y,
                stride: width as usize,
            },
            chroma: Chroma::Planar {
                u: Plane {
                    data: u,
                    stride: cw as usize,
                },
                v: Plane {
                    data: v,
                    stride: cw as usize,
                },
            },
        })
    }
}

impl<'a> YuvImageMut<'a> {
    /// A tightly packed planar frame to write (see [`YuvImage::packed`]).
    ///
    /// # Errors
    /// [`YuvError`] if `data` is not exactly [`Subsampling::frame_len`] bytes.
    pub fn packed(
        data: &'a mut [u8],
        width: u32,
        height: u32,
        subsampling: Subsampling,
    ) -> Result<Self, YuvError> {
        let (ylen, clen, cw) = subsampling.packed_plane_lens(width, height, data.len())?;
        let (y, rest) = data.split_at_mut(ylen);
        let (u, v) = rest.split_at_mut(clen);
        Ok(YuvImageMut {
            width,
            height,
            subsampling,
            y: PlaneMut {
                data: y,
                stride: width as usize,
            },
            chroma: ChromaMut::Planar {
                u: PlaneMut {
                    data: u,
                    stride: cw as usize,
                },
                v: PlaneMut {
                    data: v,
                    stride: cw as usize,
                },
            },
        })
    }
}

/// A plane or buffer too short for the picture size, or a stride shorter than a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YuvError(String);

impl YuvError {
    fn new(msg: String) -> Self {
        YuvError(msg)
    }
}

/// Checks that a plane of `rows` rows of `row_bytes` bytes fits `len` bytes with `stride`.
fn check_plane(
    name: &str,
    len: usize,
    stride: usize,
    row_bytes: usize,
    rows: usize,
) -> Result<(), YuvError> {
    if rows == 0 || row_bytes == 0 {
        return Ok(());
    }
    if stride < row_bytes {
        return Err(YuvError::new(format!(
            "{name} plane: stride {stride} is shorter than a row of {row_bytes} bytes"
        )));
    }
    let need = (rows - 1)
        .checked_mul(stride)
        .and_then(|n| n.checked_add(row_bytes));
    match need {
        Some(need) if need <= len => Ok(()),
        Some(need) => Err(YuvError::new(format!(
            "{name} plane: {len} bytes, {need} needed for {rows} rows of {row_bytes} bytes at \
             stride {stride}"
        ))),
        None => Err(YuvError::new(format!("{name} plane: size overflows"))),
    }
}

/// The forward and inverse transforms for one [`Colour`], in the stored sample scale.
#[derive(Debug, Clone, Copy)]
struct Coeffs {
    kr: f32,
    kg: f32,
    kb: f32,
    /// Stored luma = `y_off + y_scale · Y`.
    y_off: f32,
    y_scale: f32,
    /// Stored chroma = `128 + c_scale · C`.
    c_scale: f32,
}

impl Coeffs {
    fn new(colour: Colour) -> Coeffs {
        let (kr, kb) = colour.matrix.coefficients();
        let (y_off, y_scale, c_scale) = match colour.range {
            Range::Limited => (16.0, 219.0 / 255.0, 224.0 / 255.0),
            Range::Full => (0.0, 1.0, 1.0),
        };
        Coeffs {
            kr,
            kg: 1.0 - kr - kb,
            kb,
            y_off,
            y_scale,
            c_scale,
        }
    }

    /// Unrounded stored (Y, Cb, Cr) of one RGB pixel.
    #[inline]
    fn forward(&self, r: f32, g: f32, b: f32) -> (f32, f32, f32) {
        let y = self.kr * r + self.kg * g + self.kb * b;
        let cb = (b - y) / (2.0 * (1.0 - self.kb));
        let cr = (r - y) / (2.0 * (1.0 - self.kr));
        (
            self.y_off + self.y_scale * y,
            128.0 + self.c_scale * cb,
            128.0 + self.c_scale * cr,
        )
    }

    /// Rounded, clamped RGB of stored samples.
    #[inline]
    fn inverse(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = (f32::from(y) - self.y_off) / self.y_scale;
        let cb = (f32::from(cb) - 128.0) / self.c_scale;
        let cr = (f32::from(cr) - 128.0) / self.c_scale;
        let r = y + 2.0 * (1.0 - self.kr) * cr;
        let b = y + 2.0 * (1.0 - self.kb) * cb;
        let g = (y - self.kr * r - self.kb * b) / self.kg;
        [to_u8(r), to_u8(g), to_u8(b)]
    }
}

#[inline]
fn to_u8(x: f32) -> u8 {
    (x + 0.5).floor().clamp(0.0, 255.0) as u8
}

fn check_chroma(
    chroma_len: &[(&str, usize, usize)],
    interleaved: bool,
    cw: usize,
    ch: usize,
) -> Result<(), YuvError> {
    let row = if interleaved { 2 * cw } else { cw };
    for &(name, len, stride) in chroma_len {
        check_plane(name, len, stride, row, ch)?;
    }
    Ok(())
}

/// Converts `src` to packed RGB24 in `dst` (`3 · width` bytes a row, `dst_stride` apart).
///
/// # Errors
/// [`YuvError`] when a plane or `dst` is too short for the size and strides.
pub fn yuv_to_rgb(
    src: &YuvImage<'_>,
    colour: Colour,
    dst: &mut [u8],
    dst_stride: usize,
) -> Result<(), YuvError> {
    let (w, h) = (src.width as usize, src.height as usize);
    let (cw, ch) = src.subsampling.chroma_size(src.width, src.height);
    let (cw, ch) = (cw as usize, ch as usize);
    check_plane("Y", src.y.data.len(), src.y.stride, w, h)?;
    check_plane("RGB", dst.len(), dst_stride, 3 * w, h)?;
    let (u_plane, v_plane, step, u_off, v_off) = match src.chroma {
        Chroma::Planar { u, v } => {
            check_chroma(
                &[("U", u.data.len(), u.stride), ("V", v.data.len(), v.stride)],
                false,
                cw,
                ch,
            )?;
            (u, v, 1, 0, 0)
        }
        Chroma::Interleaved { uv, order } => {
            check_chroma(&[("UV", uv.data.len(), uv.stride)], true, cw, ch)?;
            let (uo, vo) = match order {
                UvOrder::Uv => (0, 1),
                UvOrder::Vu => (1, 0),
            };
            (uv, uv, 2, uo, vo)
        }
    };
    let c = Coeffs::new(colour);
    let shift = usize::from(src.subsampling == Subsampling::Yuv420);
    for row in 0..h {
        let yrow = &src.y.data[row * src.y.stride..][..w];
        let crow = row >> shift;
        let urow = &u_plane.data[crow * u_plane.stride..];
        let vrow = &v_plane.data[crow * v_plane.stride..];
        let out = &mut dst[row * dst_stride..][..3 * w];
        for (x, (px, &yv)) in out.chunks_exact_mut(3).zip(yrow).enumerate() {
            let cx = x >> shift;
            let rgb = c.inverse(yv, urow[cx * step + u_off], vrow[cx * step + v_off]);
            px.copy_from_slice(&rgb);
        }
    }
    Ok(())
}

/// Converts packed RGB24 `src` (`3 · width` bytes a row, `src_stride` apart) to `dst`; see the
/// module documentation for the rounding and the 4:2:0 averaging.
///
/// # Errors
/// [`YuvError`] when `src` or a plane of `dst` is too short for the size and strides.
pub fn rgb_to_yuv(
    src: &[u8],
    src_stride: usize,
    colour: Colour,
    dst: &mut YuvImageMut<'_>,
) -> Result<(), YuvError> {
    let (w, h) = (dst.width as usize, dst.height as usize);
    let (cw, ch) = dst.subsampling.chroma_size(dst.width, dst.height);
    let (cw, ch) = (cw as usize, ch as usize);
    check_plane("RGB", src.len(), src_stride, 3 * w, h)?;
    check_plane("Y", dst.y.data.len(), dst.y.stride, w, h)?;
    match &dst.chroma {
        ChromaMut::Planar { u, v } => check_chroma(
            &[("U", u.data.len(), u.stride), ("V", v.data.len(), v.stride)],
            false,
            cw,
            ch,
        )?,
        ChromaMut::Interleaved { uv, .. } => {
            check_chroma(&[("UV", uv.data.len(), uv.stride)], true, cw, ch)?
        }
    }
    let c = Coeffs::new(colour);
    let shift = usize::from(dst.subsampling == Subsampling::Yuv420);
    let block = 1usize << shift;
    // Chroma sums of one row of blocks, and how many pixels each holds.
    let mut sums: Vec<(f32, f32, u32)> = vec![(0.0, 0.0, 0); cw];
    for crow in 0..ch {
        sums.iter_mut().for_each(|s| *s = (0.0, 0.0, 0));
        for row in crow * block..((crow + 1) * block).min(h) {
            let rgb = &src[row * src_stride..][..3 * w];
            let yrow = &mut dst.y.data[row * dst.y.stride..][..w];
            for (x, (px, yv)) in rgb.chunks_exact(3).zip(yrow.iter_mut()).enumerate() {
                let (y, cb, cr) = c.forward(f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
                *yv = to_u8(y);
                let s = &mut sums[x >> shift];
                s.0 += cb;
                s.1 += cr;
                s.2 += 1;
            }
        }
        let put = |(cb, cr, n): (f32, f32, u32)| (to_u8(cb / n as f32), to_u8(cr / n as f32));
        match &mut dst.chroma {
            ChromaMut::Planar { u, v } => {
                let urow = &mut u.data[crow * u.stride..][..cw];
                let vrow = &mut v.data[crow * v.stride..][..cw];
                for ((s, uo), vo) in sums.iter().zip(urow).zip(vrow) {
                    (*uo, *vo) = put(*s);
                }
            }
            ChromaMut::Interleaved { uv, order } => {
                let row = &mut uv.data[crow * uv.stride..][..2 * cw];
                for (s, pair) in sums.iter().zip(row.chunks_exact_mut(2)) {
                    let (cb, cr) = put(*s);
                    match order {
                        UvOrder::Uv => pair.copy_from_slice(&[cb, cr]),
                        UvOrder::Vu => pair.copy_from_slice(&[cr, cb]),
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour(matrix: Matrix, range: Range) -> Colour {
        Colour { matrix, range }
    }

    /// rgb → yuv444 of one pixel through the public API.
    fn one(rgb: [u8; 3], c: Colour) -> [u8; 3] {
        let mut out = [0u8; 3];
        let mut img = YuvImageMut::packed(&mut out, 1, 1, Subsampling::Yuv444).unwrap();
        rgb_to_yuv(&rgb, 3, c, &mut img).unwrap();
        out
    }

    #[test]
    fn reference_colours_match_the_standards_tables() {
        let lim601 = colour(Matrix::Bt601, Range::Limited);
        let lim709 = colour(Matrix::Bt709, Range::Limited);
        let full601 = colour(Matrix::Bt601, Range::Full);
        // Black, white and the primaries as published for 8-bit BT.601 / BT.709 studio range.
        assert_eq!(one([0, 0, 0], lim601), [16, 128, 128]);
        assert_eq!(one([255, 255, 255], lim601), [235, 128, 128]);
        assert_eq!(one([255, 0, 0], lim601), [81, 90, 240]);
        assert_eq!(one([0, 255, 0], lim601), [145, 54, 34]);
        assert_eq!(one([0, 0, 255], lim601), [41, 240, 110]);
        assert_eq!(one([255, 0, 0], lim709), [63, 102, 240]);
        assert_eq!(one([0, 255, 0], lim709), [173, 42, 26]);
        assert_eq!(one([0, 0, 255], lim709), [32, 240, 118]);
        // JPEG (JFIF) full range.
        assert_eq!(one([255, 255, 255], full601), [255, 128, 128]);
        assert_eq!(one([255, 0, 0], full601), [76, 85, 255]);
    }

    /// The classic integer BT.601 studio-range formulas (Keith Jack, "Video Demystified"; the
    /// fixed-point form in libyuv's and many cameras' converters): an independent computation.
    fn jack_601(r: i32, g: i32, b: i32) -> [i32; 3] {
        [
            ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16,
            ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128,
            ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128,
        ]
    }

    #[test]
    fn bt601_limited_agrees_with_the_fixed_point_closed_form_within_one() {
        let c = colour(Matrix::Bt601, Range::Limited);
        let mut worst = 0;
        for r in (0..256).step_by(15) {
            for g in (0..256).step_by(17) {
                for b in (0..256).step_by(5) {
                    let ours = one([r as u8, g as u8, b as u8], c);
                    let theirs = jack_601(r, g, b);
                    for k in 0..3 {
                        worst = worst.max((i32::from(ours[k]) - theirs[k]).abs());
                    }
                }
            }
        }
        assert!(worst <= 1, "worst difference {worst}");
    }

    #[test]
    fn inverse_matches_the_closed_form_in_f64() {
        for &m in &[Matrix::Bt601, Matrix::Bt709] {
            for &r in &[Range::Limited, Range::Full] {
                let c = colour(m, r);
                let (kr, kb) = match m {
                    Matrix::Bt601 => (0.299f64, 0.114f64),
                    Matrix::Bt709 => (0.2126, 0.0722),
                };
                let kg = 1.0 - kr - kb;
                for y in (0..=255u8).step_by(7) {
                    for cb in (0..=255u8).step_by(11) {
                        for cr in (0..=255u8).step_by(13) {
                            let src = [y, cb, cr];
                            let img = YuvImage::packed(&src, 1, 1, Subsampling::Yuv444).unwrap();
                            let mut rgb = [0u8; 3];
                            yuv_to_rgb(&img, c, &mut rgb, 3).unwrap();
                            let (yy, pb, pr) = match r {
                                Range::Limited => (
                                    (f64::from(y) - 16.0) * 255.0 / 219.0,
                                    (f64::from(cb) - 128.0) * 255.0 / 224.0,
                                    (f64::from(cr) - 128.0) * 255.0 / 224.0,
                                ),
                                Range::Full => {
                                    (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0)
                                }
                            };
                            let rr = yy + 2.0 * (1.0 - kr) * pr;
                            let bb = yy + 2.0 * (1.0 - kb) * pb;
                            let gg = yy
                                - 2.0 * kb * (1.0 - kb) / kg * pb
                                - 2.0 * kr * (1.0 - kr) / kg * pr;
                            for (got, want) in rgb.iter().zip([rr, gg, bb]) {
                                let want = want.round().clamp(0.0, 255.0);
                                assert!(
                                    (f64::from(*got) - want).abs() <= 1.0,
                                    "{m} {r} {src:?}: {rgb:?} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rgb_survives_a_444_round_trip_within_the_quantisation_step() {
        for &m in &[Matrix::Bt601, Matrix::Bt709] {
            for &r in &[Range::Limited, Range::Full] {
                let c = colour(m, r);
                let (w, h) = (64u32, 48u32);
                let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
                let mut yuv = vec![0u8; Subsampling::Yuv444.frame_len(w, h)];
                rgb_to_yuv(
                    &rgb,
                    3 * w as usize,
                    c,
                    &mut YuvImageMut::packed(&mut yuv, w, h, Subsampling::Yuv444).unwrap(),
                )
                .unwrap();
                let mut back = vec![0u8; rgb.len()];
                let img = YuvImage::packed(&yuv, w, h, Subsampling::Yuv444).unwrap();
                yuv_to_rgb(&img, c, &mut back, 3 * w as usize).unwrap();
                // Out-of-gamut combinations cannot occur (every RGB maps into the cube), so the
                // error is the quantisation: at most 2 levels limited range, 1 full range (the
                // sum of the half-steps of three samples through the inverse matrix).
                let worst = rgb
                    .iter()
                    .zip(&back)
                    .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
                    .max()
                    .unwrap();
                let bound = if r == Range::Limited { 3 } else { 2 };
                assert!(worst <= bound, "{m} {r}: worst {worst}");
            }
        }
    }

    #[test]
    fn chroma_420_is_the_block_mean_and_is_read_back_per_block() {
        let c = colour(Matrix::Bt601, Range::Full);
        // 3×3: blocks of 4, 2, 2 and 1 pixels at the odd edges.
        let (w, h) = (3u32, 3u32);
        let rgb: Vec<u8> = (0..27).map(|i| (i * 29 % 256) as u8).collect();
        let mut yuv = vec![0u8; Subsampling::Yuv420.frame_len(w, h)];
        assert_eq!(yuv.len(), 9 + 2 * 4);
        rgb_to_yuv(
            &rgb,
            9,
            c,
            &mut YuvImageMut::packed(&mut yuv, w, h, Subsampling::Yuv420).unwrap(),
        )
        .unwrap();
        let cb = |p: &[u8]| {
            let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            128.0 + (b - y) / 1.772
        };
        let blocks: [&[(usize, usize)]; 4] = [
            &[(0, 0), (1, 0), (0, 1), (1, 1)],
            &[(2, 0), (2, 1)],
            &[(0, 2), (1, 2)],
            &[(2, 2)],
        ];
        for (k, block) in blocks.iter().enumerate() {
            let mean = block
                .iter()
                .map(|&(x, y)| cb(&rgb[(y * 3 + x) * 3..][..3]))
                .sum::<f64>()
                / block.len() as f64;
            assert!(
                (f64::from(yuv[9 + k]) - mean.round()).abs() <= 1.0,
                "block {k}: {} vs {mean}",
                yuv[9 + k]
            );
        }
        // Reading back: pixels of one block share their chroma.
        let mut back = vec![0u8; 27];
        let img = YuvImage::packed(&yuv, w, h, Subsampling::Yuv420).unwrap();
        yuv_to_rgb(&img, c, &mut back, 9).unwrap();
        let mut single = [0u8; 3];
        let one = [yuv[4], yuv[9], yuv[13]]; // pixel (1, 1): luma 4, block 0's chroma
        yuv_to_rgb(
            &YuvImage::packed(&one, 1, 1, Subsampling::Yuv444).unwrap(),
            c,
            &mut single,
            3,
        )
        .unwrap();
        assert_eq!(&back[12..15], &single);
    }

    #[test]
    fn nv12_with_padded_strides_equals_packed_i420() {
        let (w, h) = (6u32, 4u32);
        let c = Colour::default();
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 53 % 256) as u8).collect();
        let mut i420 = vec![0u8; Subsampling::Yuv420.frame_len(w, h)];
        rgb_to_yuv(
            &rgb,
            18,
            c,
            &mut YuvImageMut::packed(&mut i420, w, h, Subsampling::Yuv420).unwrap(),
        )
        .unwrap();
        // NV12 with 8-byte luma and chroma strides, written and read.
        let mut y = vec![0u8; 8 * 4];
        let mut uv = vec![0u8; 8 * 2];
        rgb_to_yuv(
            &rgb,
            18,
            c,
            &mut YuvImageMut {
                width: w,
                height: h,
                subsampling: Subsampling::Yuv420,
                y: PlaneMut {
                    data: &mut y,
                    stride: 8,
                },
                chroma: ChromaMut::Interleaved {
                    uv: PlaneMut {
                        data: &mut uv,
                        stride: 8,
                    },
                    order: UvOrder::Uv,
                },
            },
        )
        .unwrap();
        for row in 0..4 {
            assert_eq!(&y[row * 8..row * 8 + 6], &i420[row * 6..row * 6 + 6]);
        }
        for row in 0..2 {
            for x in 0..3 {
                assert_eq!(uv[row * 8 + 2 * x], i420[24 + row * 3 + x]);
                assert_eq!(uv[row * 8 + 2 * x + 1], i420[30 + row * 3 + x]);
            }
        }
        let nv12 = YuvImage {
            width: w,
            height: h,
            subsampling: Subsampling::Yuv420,
            y: Plane {
                data: &y,
                stride: 8,
            },
            chroma: Chroma::Interleaved {
                uv: Plane {
                    data: &uv,
                    stride: 8,
                },
                order: UvOrder::Uv,
            },
        };
        let mut a = vec![0u8; rgb.len()];
        let mut b = vec![0u8; rgb.len()];
        yuv_to_rgb(&nv12, c, &mut a, 18).unwrap();
        let packed = YuvImage::packed(&i420, w, h, Subsampling::Yuv420).unwrap();
        yuv_to_rgb(&packed, c, &mut b, 18).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn short_planes_and_strides_are_errors_not_panics() {
        let y = [0u8; 10];
        let img = YuvImage {
            width: 4,
            height: 4,
            subsampling: Subsampling::Yuv420,
            y: Plane {
                data: &y,
                stride: 4,
            },
            chroma: Chroma::Planar {
                u: Plane {
                    data: &y,
                    stride: 2,
                },
                v: Plane {
                    data: &y,
                    stride: 2,
                },
            },
        };
        let mut rgb = [0u8; 48];
        let e = yuv_to_rgb(&img, Colour::default(), &mut rgb, 12).unwrap_err();
        assert!(e.to_string().contains("Y plane"), "{e}");
        let y = [0u8; 16];
        let img = YuvImage {
            y: Plane {
                data: &y,
                stride: 3,
            },
            ..img
        };
        let e = yuv_to_rgb(&img, Colour::default(), &mut rgb, 12).unwrap_err();
        assert!(e.to_string().contains("stride 3"), "{e}");
        assert!(YuvImage::packed(&y, 4, 4, Subsampling::Yuv420).is_err());
    }
}
