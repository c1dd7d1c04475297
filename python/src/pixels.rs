//! Interleaved pixel buffers in and out of the model, the way `savl upscale` treats a PNG file at
//! the model's scale (`--depth auto`): the same calls to the runtime in the same order, so that
//! the output samples equal the CLI's byte for byte. No Python here.
//!
//! - An alpha channel that is opaque everywhere carries nothing: the colour is upscaled alone
//!   and the output alpha is opaque.
//! - Grey pictures (R = G = B at every pixel) come out grey: the luma of the model's output
//!   ([`photo::luma`]), in every colour channel.
//! - Transparent pixels' colour is filled from the visible ones before the model runs
//!   ([`photo::fill_transparent_rgba8`]); the alpha plane goes through the model on its own and
//!   is pinned where the input is flat ([`photo::FlatAlpha`]).
//! - 16-bit pictures are given to the model as 8 bits (the `image` crate's conversion) and come
//!   out as 16 bits quantised from the model's float output.

use image::{DynamicImage, ImageBuffer, Rgb, RgbImage, Rgba};
use savl::{photo, Error, Upscaler};

/// The samples of an interleaved `height × width × channels` picture.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// 8 bits a sample.
    U8(Vec<u8>),
    /// 16 bits a sample.
    U16(Vec<u16>),
}

/// An interleaved RGB (3 channels) or RGBA (4 channels) picture, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 3 (RGB) or 4 (RGBA, straight alpha).
    pub channels: usize,
    /// `height · width · channels` samples.
    pub samples: Samples,
}

impl Pixels {
    /// The picture as an `image` picture; `Err` names what does not fit (a sample count that
    /// is not `height · width · channels`, or a channel count other than 3 or 4).
    pub fn into_dynamic(self) -> Result<DynamicImage, String> {
        let (w, h, c) = (self.width, self.height, self.channels);
        let short = || format!("{h}×{w}×{c} samples expected");
        Ok(match (self.samples, c) {
            (Samples::U8(v), 3) => {
                DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, v).ok_or_else(short)?)
            }
            (Samples::U8(v), 4) => DynamicImage::ImageRgba8(
                ImageBuffer::<Rgba<u8>, _>::from_raw(w, h, v).ok_or_else(short)?,
            ),
            (Samples::U16(v), 3) => DynamicImage::ImageRgb16(
                ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, v).ok_or_else(short)?,
            ),
            (Samples::U16(v), 4) => DynamicImage::ImageRgba16(
                ImageBuffer::<Rgba<u16>, _>::from_raw(w, h, v).ok_or_else(short)?,
            ),
            (_, c) => return Err(format!("{c} channels: 3 (RGB) or 4 (RGBA) expected")),
        })
    }
}

/// Upscales `img` (RGB8, RGBA8, RGB16 or RGBA16) by the model's scale into a picture of the
/// same channel count and sample type, as `savl upscale IN.png -o OUT.png` does (see the module
/// documentation); other colour types are given to the model as RGB8 and come back as RGB8.
pub fn upscale(up: &Upscaler, img: DynamicImage) -> Result<Pixels, Error> {
    let s = up.scale() as u32;
    let (w, h) = (img.width(), img.height());
    let (ow, oh) = match (w.checked_mul(s), h.checked_mul(s)) {
        (Some(ow), Some(oh)) => (ow, oh),
        _ => {
            return Err(Error::Limits {
                what: format!("output side of {w}×{h} ×{s}"),
                requested: u64::from(w.max(h)) * u64::from(s),
                limit: u64::from(u32::MAX),
                unit: "pixels",
            })
        }
    };
    let out_channels = if img.color().has_alpha() { 4 } else { 3 };
    let in16 = matches!(
        img.color(),
        image::ColorType::Rgb16 | image::ColorType::Rgba16
    );
    // An alpha channel that is opaque everywhere is dropped (and opaque in the output).
    let img = if img.color().has_alpha() && !photo::has_alpha(&img) {
        match img {
            DynamicImage::ImageRgba16(_) => DynamicImage::ImageRgb16(img.to_rgb16()),
            other => DynamicImage::ImageRgb8(other.to_rgb8()),
        }
    } else {
        img
    };
    let grey = photo::is_grey(&img);
    let translucent = photo::has_alpha(&img);
    let alpha_lr = translucent.then(|| photo::alpha_plane(&img));
    let rgb_in = if translucent {
        photo::fill_transparent_rgba8(&img.to_rgba8())
    } else {
        match img {
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => other.into_rgb8(),
        }
    };
    let n = ow as usize * oh as usize;
    // The output buffer is allocated fallibly: OutOfMemory rather than an abort.
    let len = n.saturating_mul(out_channels);
    let oom = |bytes: usize| Error::OutOfMemory {
        what: format!("a {ow}×{oh} output"),
        bytes: bytes as u64,
    };

    if !in16 {
        // The CLI's streamed 8-bit PNG: model rows as they are, or their luma; alpha rows from
        // the model's pass over the alpha plane, averaged, pinned and rounded.
        let colour = up.upscale(&rgb_in)?;
        drop(rgb_in);
        let alpha8 = match &alpha_lr {
            Some(a) => Some(alpha_pass_8(up, a, w, h, ow, oh)?),
            None => None,
        };
        let mut out: Vec<u8> = Vec::new();
        out.try_reserve_exact(len).map_err(|_| oom(len))?;
        for (i, p) in colour.as_raw().chunks_exact(3).enumerate() {
            if grey {
                let l = photo::luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
                    .round()
                    .clamp(0.0, 255.0) as u8;
                out.extend_from_slice(&[l, l, l]);
            } else {
                out.extend_from_slice(p);
            }
            if out_channels == 4 {
                out.push(alpha8.as_ref().map_or(u8::MAX, |a| a[i]));
            }
        }
        return Ok(Pixels {
            width: ow,
            height: oh,
            channels: out_channels,
            samples: Samples::U8(out),
        });
    }

    // The CLI's 16-bit PNG: the model's float output, quantised to 16 bits; alpha upscaled by
    // the model (photo::upscale_alpha_with) and quantised the same way.
    let alpha = match &alpha_lr {
        Some(a) => Some(
            photo::upscale_alpha_with(a, w, h, ow, oh, |rgb| {
                up.upscale(rgb).map_err(|e| e.to_string())
            })
            .map_err(Error::Runtime)?,
        ),
        None => None,
    };
    let planar = up.upscale_planar_f32(&rgb_in)?;
    drop(rgb_in);
    if planar.len() != 3 * n {
        return Err(Error::Runtime("short output from the upscaler".into()));
    }
    let q = |x: f32| (x * 65535.0).round().clamp(0.0, 65535.0) as u16;
    let mut out: Vec<u16> = Vec::new();
    out.try_reserve_exact(len).map_err(|_| oom(len * 2))?;
    for i in 0..n {
        let c = [planar[i], planar[n + i], planar[2 * n + i]];
        if grey {
            let l = q(photo::luma(c[0], c[1], c[2]));
            out.extend_from_slice(&[l, l, l]);
        } else {
            out.extend(c.map(q));
        }
        if out_channels == 4 {
            out.push(alpha.as_ref().map_or(u16::MAX, |a| q(a[i])));
        }
    }
    Ok(Pixels {
        width: ow,
        height: oh,
        channels: out_channels,
        samples: Samples::U16(out),
    })
}

/// The alpha plane at the output size, one byte a pixel, as the CLI's streamed PNG computes it:
/// the plane rounded to 8 bits and replicated to RGB, upscaled by the model, the mean of the
/// three channels pinned where the input is flat, rounded.
fn alpha_pass_8(
    up: &Upscaler,
    alpha: &[f32],
    w: u32,
    h: u32,
    ow: u32,
    oh: u32,
) -> Result<Vec<u8>, Error> {
    let flat = photo::FlatAlpha::new(alpha, w, h);
    let rgb = photo::alpha_as_rgb8(alpha, w, h)
        .ok_or_else(|| Error::Runtime("alpha plane size".into()))?;
    let big = up.upscale(&rgb)?;
    let (ow, oh) = (ow as usize, oh as usize);
    let mut out = Vec::with_capacity(ow * oh);
    let mut rowf = vec![0f32; ow];
    for (oy, line) in big.as_raw().chunks_exact(ow * 3).enumerate() {
        for (v, p) in rowf.iter_mut().zip(line.chunks_exact(3)) {
            *v = (f32::from(p[0]) + f32::from(p[1]) + f32::from(p[2])) / 765.0;
        }
        flat.pin_row(&mut rowf, oy, oh);
        out.extend(
            rowf.iter()
                .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8),
        );
    }
    Ok(out)
}

/// The picture the CLI's `savl inspect` gives the model: RGB8 (16 bits reduced by the `image`
/// crate's conversion, alpha dropped).
pub fn inspect_input(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.into_rgb8(),
    }
}
