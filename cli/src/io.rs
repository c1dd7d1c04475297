//! Image input and output for the savl runtime: decoding with a decoded-size limit, conversion
//! to RGB8, a streaming (bounded-memory) PNG writer, whole-image JPEG/WebP writers, and atomic,
//! non-clobbering output files.
//!
//! Everything here is independent of the network: the CLI (`savl upscale`, `savl inspect`) and
//! applications use it around [`savl::Upscaler`].
//!
//! # Input
//!
//! [`decode_path`] reads PNG, JPEG and WebP (the formats this build of `image` has). The header is
//! read first and the picture is refused *before* any pixel is decoded if it is over
//! [`DecodeLimits::max_pixels`] (default 100 MP): a hostile or mistaken 60 000 × 60 000 PNG costs a
//! few bytes of header, not 10 GB. Every error names the file. Before decoding, the file's
//! structure is checked ([`IoError::Malformed`]): a JPEG must reach its end-of-image marker and
//! hold at least one byte per 512 pixels it claims (so work is bounded by the data present), and a
//! WebP must be as long as its RIFF header says; the decoders would otherwise fill a truncated
//! picture with grey and report success. Metadata (ICC profiles, text) is read under a 16 MB cap,
//! and the decoded picture is allocated fallibly: a failed allocation is
//! [`IoError::OutOfMemory`], not an abort. An animated PNG or WebP gives its first frame;
//! [`decode_path_with_info`] says so.
//!
//! [`decode_picture_path`] / [`decode_picture_reader`] keep the picture as decoded (grey, alpha,
//! 16 bits; a palette PNG with tRNS as RGBA) with its ICC profile and EXIF block ([`Metadata`],
//! the EXIF orientation reset to 1 since the pixels are rotated), and [`write_picture`] writes
//! any of those colour types back with the metadata.
//!
//! Conversion to RGB8 (what the network takes, [`decode_path`]):
//! - **alpha is dropped**: the colour channels are kept as stored, the alpha channel is discarded
//!   (no compositing). Fully transparent areas therefore show whatever colour the file holds under
//!   them (often black). The output never has alpha.
//! - **16-bit** samples are scaled to 8 bits (`v >> 8`, rounded by `image`), **grey** is replicated
//!   to R = G = B, and float images are clamped to [0, 1].
//! - The EXIF **orientation** of JPEG/WebP/PNG files is applied, so the output looks the way
//!   photo viewers show the input.
//!
//! # Output
//!
//! - **PNG is the streaming format**: [`PngRowWriter`] takes rows in order (as
//!   `Upscaler::upscale_rows` produces them) and compresses them as they come, so a ×4 output of
//!   16000 × 12000 never exists in memory (576 MB as RGB8). Use PNG for big pictures.
//! - **JPEG and WebP need the whole picture** ([`write_image`]): the encoders take a complete
//!   buffer, so the full output is held in memory. WebP output is lossless (the only WebP encoder
//!   `image` has) and limited to 16383 px a side by the format; JPEG output is quality
//!   [`DEFAULT_JPEG_QUALITY`] unless told otherwise.
//! - [`AtomicOutput`] writes to a hidden temporary file in the destination folder and renames it
//!   over the destination only once everything is written and synced: a crash or an error never
//!   leaves a half-written output under the final name. Without `overwrite` it never replaces an
//!   existing file (checked up front and again, atomically, at the rename). With `overwrite` it
//!   replaces regular files only: a FIFO or character device is written into directly, a
//!   symbolic link, folder, block device or socket is refused ([`check_destination`]).
//!   [`remove_temp_files`] removes the temporary files of unfinished outputs (for signal
//!   handlers), and the temporary files of killed processes are swept by the next output of the
//!   same name in the same folder.
//! - [`is_same_file`] lets a caller refuse to write over one of its inputs (the CLI always does,
//!   even with `--force`).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Default decoded-size limit: 100 megapixels (e.g. 12 000 × 8 333).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Default quality of JPEG output (1–100).
pub const DEFAULT_JPEG_QUALITY: u8 = 92;

/// Resource limits applied while decoding an input picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Largest accepted `width × height` of an input, checked from the header before decoding.
    /// Default [`DEFAULT_MAX_PIXELS`] (100 MP). Raising it raises the memory a single input may
    /// take (about 3 bytes a pixel once decoded, up to 8 while decoding a 16-bit RGBA PNG), and the
    /// upscaling time (linear in pixels).
    pub max_pixels: u64,
    /// Largest number of bytes the decoded picture may take: the decoder's buffer (1 to 8 bytes
    /// a pixel by colour type and depth) plus the RGB8 copy made from it unless it already is
    /// RGB8. Checked from the header, before decoding. Default: no limit (`u64::MAX`).
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_alloc: u64::MAX,
        }
    }
}

impl DecodeLimits {
    /// A limit of `mp` megapixels (10⁶ pixels); fractions are allowed.
    pub fn megapixels(mp: f64) -> Self {
        DecodeLimits {
            max_pixels: (mp.max(0.0) * 1e6).round() as u64,
            ..DecodeLimits::default()
        }
    }

    /// These limits with [`max_alloc`](Self::max_alloc) set to `bytes`.
    pub fn with_max_alloc(self, bytes: u64) -> Self {
        DecodeLimits {
            max_alloc: bytes,
            ..self
        }
    }

    /// No decoded-size limit (trusted inputs only).
    pub fn none() -> Self {
        DecodeLimits {
            max_pixels: u64::MAX,
            max_alloc: u64::MAX,
        }
    }

    fn image_limits(&self, width: u32, height: u32) -> image::Limits {
        let mut limits = image::Limits::default();
        // The header passed the pixel check; let the decoder allocate what this size needs
        // (16-bit RGBA is the worst case: 8 bytes a pixel) plus some working room, and no more.
        let pixels = u64::from(width) * u64::from(height);
        let need = pixels.saturating_mul(8).saturating_add(64 << 20);
        limits.max_alloc = Some(need.max(512 << 20));
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        limits
    }
}

/// What went wrong reading or writing a picture; every variant names the file.
///
/// The message is complete (it includes the underlying error's text), so the underlying error is
/// not also exposed as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The bytes are not a picture this build can decode (unknown format, corrupt or truncated).
    #[error("{}: cannot decode: {cause}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: image::ImageError,
    },
    /// The picture is over the decoded-size limit.
    #[error(
        "{}: {width}×{height} is {:.1} MP, over the decoded-size limit of {:.1} MP",
        path.display(),
        (*width as f64) * (*height as f64) / 1e6,
        *limit as f64 / 1e6
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// The output file could not be created, written, synced or renamed into place.
    #[error("{}: cannot write: {cause}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The encoder refused the picture (e.g. too large for the format).
    #[error("{}: cannot encode: {message}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
    /// The output exists and overwriting was not allowed.
    #[error("{}: already exists (use --force to overwrite)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file's structure is wrong before any pixel is decoded: truncated, or a header that
    /// claims more pixels than the data can hold.
    #[error("{}: cannot decode: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The output path holds something that is never replaced: a symbolic link (not followed),
    /// a folder, a block device or a socket.
    #[error("{}: is {what}; savl never replaces it{hint}", path.display())]
    NotReplaceable {
        /// The path.
        path: PathBuf,
        /// What is there ("a symbolic link", "a folder", …).
        what: &'static str,
        /// How to proceed.
        hint: &'static str,
    },
    /// Decoding would take more memory than [`DecodeLimits::max_alloc`] allows.
    #[error(
        "{}: decoding {width}×{height} needs {:.0} MB, over the memory limit of {:.0} MB",
        path.display(),
        *bytes as f64 / 1e6,
        *limit as f64 / 1e6
    )]
    OverMemoryLimit {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes the decoded picture would take.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// Memory for the decoded picture could not be allocated.
    #[error(
        "{}: cannot allocate {:.0} MB to decode {width}×{height}",
        path.display(),
        *bytes as f64 / 1e6
    )]
    OutOfMemory {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes that could not be allocated.
        bytes: u64,
    },
}

impl IoError {
    /// [`IoError::Read`] of `path`.
    fn read(path: &Path, cause: std::io::Error) -> Self {
        IoError::Read {
            path: path.to_owned(),
            cause,
        }
    }

    /// [`IoError::Decode`] of `path`.
    fn decode(path: &Path, cause: image::ImageError) -> Self {
        IoError::Decode {
            path: path.to_owned(),
            cause,
        }
    }

    /// [`IoError::Write`] of `path`.
    fn write(path: &Path, cause: std::io::Error) -> Self {
        IoError::Write {
            path: path.to_owned(),
            cause,
        }
    }

    /// [`IoError::Encode`] of `path`.
    fn encode(path: &Path, message: String) -> Self {
        IoError::Encode {
            path: path.to_owned(),
            message,
        }
    }

    /// [`IoError::Malformed`] of `path`.
    fn malformed(path: &Path, message: String) -> Self {
        IoError::Malformed {
            path: path.to_owned(),
            message,
        }
    }

    /// [`IoError::TooLarge`] of `path`: `width × height` over `limits.max_pixels`.
    fn too_large(path: &Path, width: u32, height: u32, limits: &DecodeLimits) -> Self {
        IoError::TooLarge {
            path: path.to_owned(),
            width,
            height,
            limit: limits.max_pixels,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            IoError::Read { path, .. }
            | IoError::Decode { path, .. }
            | IoError::TooLarge { path, .. }
            | IoError::Write { path, .. }
            | IoError::Encode { path, .. }
            | IoError::Exists { path }
            | IoError::Malformed { path, .. }
            | IoError::NotReplaceable { path, .. }
            | IoError::OverMemoryLimit { path, .. }
            | IoError::OutOfMemory { path, .. } => path,
        }
    }
}

/// A decoded picture and what the decoder left out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decoded {
    /// The picture as RGB8.
    pub image: RgbImage,
    /// The file is animated (APNG or animated WebP): `image` is its first frame only.
    pub animated: bool,
}

/// Reads and decodes the picture at `path` to RGB8 (see the module docs for the conversions),
/// refusing it before decoding if it is over `limits`.
pub fn decode_path(path: &Path, limits: &DecodeLimits) -> Result<RgbImage, IoError> {
    decode_path_with_info(path, limits).map(|d| d.image)
}

/// [`decode_path`], also telling whether the file was animated (only its first frame is
/// decoded).
pub fn decode_path_with_info(path: &Path, limits: &DecodeLimits) -> Result<Decoded, IoError> {
    let file = File::open(path).map_err(|cause| IoError::read(path, cause))?;
    decode_reader_with_info(BufReader::new(file), path, limits)
}

/// Decodes a picture from `reader` (format guessed from its first bytes) to RGB8; `name` is used
/// in error messages only.
pub fn decode_reader<R: BufRead + Seek>(
    reader: R,
    name: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, IoError> {
    decode_reader_with_info(reader, name, limits).map(|d| d.image)
}

/// [`decode_reader`], also telling whether the picture was animated.
///
/// # Errors
/// [`IoError::Malformed`] for a truncated JPEG or WebP, or a JPEG header claiming more pixels than
/// its data can hold (checked before decoding, see the module docs); [`IoError::TooLarge`] over
/// the limit; [`IoError::OutOfMemory`] when the decoded picture cannot be allocated;
/// [`IoError::Decode`] for anything the decoder refuses.
pub fn decode_reader_with_info<R: BufRead + Seek>(
    reader: R,
    name: &Path,
    limits: &DecodeLimits,
) -> Result<Decoded, IoError> {
    let pic = decode_picture_reader(reader, name, limits)?;
    Ok(Decoded {
        image: to_rgb8(pic.image),
        animated: pic.animated,
    })
}

/// What travels from an input picture to its output: the ICC colour profile and the EXIF block
/// (with its orientation already reset to 1 by [`decode_picture_reader`], which rotates the
/// pixels instead).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// The ICC profile's bytes, as embedded (PNG iCCP, JPEG APP2, WebP ICCP).
    pub icc: Option<Vec<u8>>,
    /// The EXIF block (TIFF header onwards, without JPEG's `Exif\0\0` prefix).
    pub exif: Option<Vec<u8>>,
}

impl Metadata {
    /// Metadata with these parts.
    pub fn new(icc: Option<Vec<u8>>, exif: Option<Vec<u8>>) -> Self {
        Metadata { icc, exif }
    }

    /// Whether there is nothing to carry.
    pub fn is_empty(&self) -> bool {
        self.icc.is_none() && self.exif.is_none()
    }
}

/// A decoded picture in its own colour type and depth, with its metadata.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Picture {
    /// The pixels, EXIF orientation applied (grey, alpha and 16-bit kept as decoded; a palette
    /// PNG with tRNS comes as RGBA).
    pub image: DynamicImage,
    /// ICC profile and EXIF (orientation reset to 1).
    pub metadata: Metadata,
    /// The file is animated (APNG or animated WebP): `image` is its first frame only.
    pub animated: bool,
}

/// [`decode_reader_with_info`] without the conversion to RGB8: the picture as decoded, with its
/// ICC profile and EXIF block (orientation reset to 1, the pixels being rotated here).
/// Same checks and errors as [`decode_reader_with_info`]; metadata that cannot be read is left
/// out, not an error.
pub fn decode_picture_reader<R: BufRead + Seek>(
    mut reader: R,
    name: &Path,
    limits: &DecodeLimits,
) -> Result<Picture, IoError> {
    let decode_err = |cause| IoError::decode(name, cause);
    let read_err = |cause| IoError::read(name, cause);
    let sniffed = crate::sniff::sniff(&mut reader)
        .map_err(read_err)?
        .map_err(|message| IoError::malformed(name, message))?;
    let mut reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(read_err)?;
    if reader.format().is_none() {
        return Err(decode_err(image::ImageError::Unsupported(
            image::error::UnsupportedError::from_format_and_kind(
                image::error::ImageFormatHint::Unknown,
                image::error::UnsupportedErrorKind::Format(image::error::ImageFormatHint::Unknown),
            ),
        )));
    }
    reader.limits(header_limits());
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(IoError::too_large(name, width, height, limits));
    }
    decoder
        .set_limits(limits.image_limits(width, height))
        .map_err(decode_err)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let exif = decoder.exif_metadata().ok().flatten().map(|mut e| {
        let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut e);
        e
    });
    // The decoded buffer, and the RGB8 copy made from it unless it already is RGB8, must fit:
    // checked with a fallible reservation, so that an allocation failure is an error, not an
    // abort.
    let rgb8 = pixels_u64(width, height).saturating_mul(3);
    let decoded = decoder.total_bytes();
    let need = if decoder.color_type() == image::ColorType::Rgb8 {
        decoded
    } else {
        decoded.saturating_add(rgb8)
    };
    if need > limits.max_alloc {
        return Err(IoError::OverMemoryLimit {
            path: name.to_owned(),
            width,
            height,
            bytes: need,
            limit: limits.max_alloc,
        });
    }
    let mut probe: Vec<u8> = Vec::new();
    if usize::try_from(need)
        .ok()
        .and_then(|n| probe.try_reserve_exact(n).ok())
        .is_none()
    {
        return Err(IoError::OutOfMemory {
            path: name.to_owned(),
            width,
            height,
            bytes: need,
        });
    }
    drop(probe);
    // A decoder bug must not take the process down (the CLI goes on with the next file): a
    // panic while decoding is this file's error.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        DynamicImage::from_decoder(decoder)
    }))
    .map_err(|payload| {
        IoError::malformed(
            name,
            format!(
                "the decoder failed on this file (a decoder bug: {})",
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into())
            ),
        )
    })?;
    let mut img = decoded.map_err(decode_err)?;
    img.apply_orientation(orientation);
    Ok(Picture {
        image: img,
        metadata: Metadata { icc, exif },
        animated: sniffed.animated,
    })
}

/// [`decode_picture_reader`] on the file at `path`.
pub fn decode_picture_path(path: &Path, limits: &DecodeLimits) -> Result<Picture, IoError> {
    let file = File::open(path).map_err(|cause| IoError::read(path, cause))?;
    decode_picture_reader(BufReader::new(file), path, limits)
}

fn pixels_u64(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height)
}

/// The allocation cap while reading headers and metadata (ICC profiles, text chunks), before the
/// picture's own size is known to be acceptable.
fn header_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(16 << 20);
    limits
}

/// Converts any decoded picture to RGB8: alpha dropped, 16-bit scaled, grey replicated. Free for
/// an RGB8 picture.
pub fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.into_rgb8(),
    }
}

/// Reads only the header of the picture at `path`: its `(width, height)` before orientation.
/// Metadata is read under the same small allocation cap as [`decode_path`]'s header.
pub fn dimensions(path: &Path) -> Result<(u32, u32), IoError> {
    let mut reader = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|cause| IoError::read(path, cause))?;
    reader.limits(header_limits());
    reader
        .into_dimensions()
        .map_err(|cause| IoError::decode(path, cause))
}

/// The `(width, height)` of the picture at `path` as it is shown: after its EXIF orientation
/// (a 90° rotation swaps the sides). Reads the header only, like [`dimensions`].
pub fn oriented_dimensions(path: &Path) -> Result<(u32, u32), IoError> {
    let file = File::open(path).map_err(|cause| IoError::read(path, cause))?;
    oriented_dimensions_reader(BufReader::new(file), path)
}

/// [`oriented_dimensions`] of a picture in memory or any seekable reader.
pub fn oriented_dimensions_reader<R: BufRead + Seek>(
    reader: R,
    name: &Path,
) -> Result<(u32, u32), IoError> {
    use image::metadata::Orientation::*;
    let mut reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|cause| IoError::read(name, cause))?;
    reader.limits(header_limits());
    let decode_err = |cause| IoError::decode(name, cause);
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (w, h) = decoder.dimensions();
    Ok(match decoder.orientation().unwrap_or(NoTransforms) {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (h, w),
        _ => (w, h),
    })
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputFormat {
    /// PNG, written row by row ([`PngRowWriter`]): bounded memory at any size.
    Png,
    /// Baseline JPEG at the given quality (1–100); needs the whole picture in memory.
    Jpeg {
        /// Quality 1–100.
        quality: u8,
    },
    /// Lossless WebP; needs the whole picture in memory; at most 16383 px a side.
    WebP,
    /// GIF (256 colours a frame, quantised by `image`'s NeuQuant); needs the whole picture in
    /// memory; at most 65535 px a side. Holds animations.
    Gif,
}

impl OutputFormat {
    /// JPEG at [`DEFAULT_JPEG_QUALITY`].
    pub const JPEG: OutputFormat = OutputFormat::Jpeg {
        quality: DEFAULT_JPEG_QUALITY,
    };

    /// The format of a file name's extension (`png`, `jpg`/`jpeg`, `webp`, any case), if known.
    pub fn from_path(path: &Path) -> Option<OutputFormat> {
        let ext = path.extension()?.to_str()?;
        ext.parse().ok()
    }

    /// The usual extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpg",
            OutputFormat::WebP => "webp",
            OutputFormat::Gif => "gif",
        }
    }

    /// Whether rows can be streamed to this format without holding the whole picture.
    pub fn is_streaming(&self) -> bool {
        matches!(self, OutputFormat::Png)
    }

    /// The largest side this format can store: PNG 2³¹−1, JPEG 65535, WebP 16383.
    pub fn max_side(&self) -> u32 {
        match self {
            OutputFormat::Png => i32::MAX as u32,
            OutputFormat::Jpeg { .. } => u16::MAX as u32,
            OutputFormat::WebP => 16383,
            OutputFormat::Gif => u16::MAX as u32,
        }
    }

    /// Checks that a `width × height` picture fits this format, so that a caller can refuse an
    /// output before computing it; `name` is used in the message.
    ///
    /// # Errors
    /// [`IoError::Encode`] naming the limit.
    pub fn check_size(&self, width: u32, height: u32, name: &Path) -> Result<(), IoError> {
        let max = self.max_side();
        if width == 0 || height == 0 || width > max || height > max {
            return Err(IoError::encode(
                name,
                format!(
                    "a {width}×{height} picture does not fit {}: {} is limited to {max} px a side",
                    self.extension(),
                    match self {
                        OutputFormat::Png => "PNG",
                        OutputFormat::Jpeg { .. } => "JPEG",
                        OutputFormat::WebP => "WebP",
                        OutputFormat::Gif => "GIF",
                    }
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(OutputFormat::Png),
            "jpg" | "jpeg" => Ok(OutputFormat::JPEG),
            "webp" => Ok(OutputFormat::WebP),
            "gif" => Ok(OutputFormat::Gif),
            other => Err(format!(
                "unknown output format {other:?} (expected png, jpg, webp or gif)"
            )),
        }
    }
}

/// Whether `path` has the extension of an input picture this build reads
/// (`png`, `jpg`, `jpeg`, `webp`, `gif`, any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .and_then(ImageFormat::from_extension)
        .is_some_and(|f| {
            matches!(
                f,
                ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif
            )
        })
}

/// An encoder's error for output `name`: an I/O failure is [`IoError::Write`], anything else
/// [`IoError::Encode`].
fn encode_error(name: &Path, e: image::ImageError) -> IoError {
    match e {
        image::ImageError::IoError(cause) => IoError::write(name, cause),
        other => IoError::encode(name, other.to_string()),
    }
}

/// Encodes a whole RGB8 picture to `out` in `format`; `name` is used in error messages.
///
/// # Errors
/// [`IoError::Encode`] if the picture is over the format's size limit (see
/// [`OutputFormat::check_size`]), [`IoError::Write`] if `out` fails.
pub fn write_image<W: Write>(
    img: &RgbImage,
    format: OutputFormat,
    out: W,
    name: &Path,
) -> Result<(), IoError> {
    let encode_err = |e| encode_error(name, e);
    format.check_size(img.width(), img.height(), name)?;
    match format {
        OutputFormat::Png => {
            let mut out = BufWriter::new(out);
            let mut encoder = png::Encoder::new(&mut out, img.width(), img.height());
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Fast);
            let mut writer = encoder.write_header().map_err(|e| png_err(e, name))?;
            writer
                .write_image_data(img.as_raw())
                .map_err(|e| png_err(e, name))?;
            writer.finish().map_err(|e| png_err(e, name))?;
            out.flush().map_err(|cause| IoError::write(name, cause))
        }
        OutputFormat::Jpeg { quality } => {
            let mut out = BufWriter::new(out);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .encode_image(img)
                .map_err(encode_err)?;
            out.flush().map_err(|cause| IoError::write(name, cause))
        }
        OutputFormat::Gif => write_picture(
            &DynamicImage::ImageRgb8(img.clone()),
            format,
            &Metadata::default(),
            out,
            name,
        ),
        OutputFormat::WebP => {
            let mut out = BufWriter::new(out);
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .encode(
                    img.as_raw(),
                    img.width(),
                    img.height(),
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(encode_err)?;
            out.flush().map_err(|cause| IoError::write(name, cause))
        }
    }
}

/// Encodes a whole picture of any colour type savl writes (grey, grey+alpha, RGB, RGBA, 8 or 16
/// bits) to `out` in `format`, with `metadata` (ICC profile as PNG iCCP, JPEG APP2 or WebP ICCP;
/// EXIF as PNG eXIf, JPEG APP1 or WebP EXIF); `name` is used in error messages.
///
/// JPEG and WebP hold 8 bits: 16-bit pictures are reduced (`v >> 8`, rounded); JPEG holds no
/// alpha: give it a flattened picture (an RGBA or grey+alpha picture is refused with
/// [`IoError::Encode`]).
///
/// # Errors
/// [`IoError::Encode`] over the format's size limit or for a colour type the format cannot
/// hold; [`IoError::Write`] if `out` fails.
pub fn write_picture<W: Write>(
    img: &DynamicImage,
    format: OutputFormat,
    metadata: &Metadata,
    out: W,
    name: &Path,
) -> Result<(), IoError> {
    use image::ExtendedColorType as E;
    format.check_size(img.width(), img.height(), name)?;
    let (w, h) = (img.width(), img.height());
    let refuse = |what: &str| IoError::encode(name, format!("{format} cannot hold {what}"));
    if let OutputFormat::Png = format {
        let (color, depth) = match img.color() {
            image::ColorType::L8 => (png::ColorType::Grayscale, png::BitDepth::Eight),
            image::ColorType::La8 => (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight),
            image::ColorType::Rgb8 => (png::ColorType::Rgb, png::BitDepth::Eight),
            image::ColorType::Rgba8 => (png::ColorType::Rgba, png::BitDepth::Eight),
            image::ColorType::L16 => (png::ColorType::Grayscale, png::BitDepth::Sixteen),
            image::ColorType::La16 => (png::ColorType::GrayscaleAlpha, png::BitDepth::Sixteen),
            image::ColorType::Rgb16 => (png::ColorType::Rgb, png::BitDepth::Sixteen),
            image::ColorType::Rgba16 => (png::ColorType::Rgba, png::BitDepth::Sixteen),
            other => return Err(refuse(&format!("{other:?}"))),
        };
        let bytes: std::borrow::Cow<[u8]> = if depth == png::BitDepth::Sixteen {
            // PNG stores 16-bit samples big-endian.
            let raw = img.as_bytes();
            let mut be = Vec::with_capacity(raw.len());
            for pair in raw.chunks_exact(2) {
                be.extend_from_slice(&u16::from_ne_bytes([pair[0], pair[1]]).to_be_bytes());
            }
            be.into()
        } else {
            img.as_bytes().into()
        };
        let mut out = BufWriter::new(out);
        let mut writer = png_encoder(&mut out, w, h, color, depth, metadata)
            .map_err(|e| png_err(e, name))?
            .write_header()
            .map_err(|e| png_err(e, name))?;
        writer
            .write_image_data(&bytes)
            .map_err(|e| png_err(e, name))?;
        writer.finish().map_err(|e| png_err(e, name))?;
        return out.flush().map_err(|cause| IoError::write(name, cause));
    }
    if let OutputFormat::Gif = format {
        let mut w =
            AnimationWriter::new(out, format, img.width(), img.height(), 1, metadata, name)?;
        w.write_frame(&img.to_rgba8(), (0, 1))?;
        return w.finish();
    }
    // JPEG and WebP: 8 bits.
    let eight: std::borrow::Cow<DynamicImage> = match img.color() {
        image::ColorType::L8
        | image::ColorType::La8
        | image::ColorType::Rgb8
        | image::ColorType::Rgba8 => std::borrow::Cow::Borrowed(img),
        image::ColorType::L16 => std::borrow::Cow::Owned(DynamicImage::ImageLuma8(img.to_luma8())),
        image::ColorType::La16 => {
            std::borrow::Cow::Owned(DynamicImage::ImageLumaA8(img.to_luma_alpha8()))
        }
        image::ColorType::Rgba16 | image::ColorType::Rgba32F => {
            std::borrow::Cow::Owned(DynamicImage::ImageRgba8(img.to_rgba8()))
        }
        _ => std::borrow::Cow::Owned(DynamicImage::ImageRgb8(img.to_rgb8())),
    };
    let color = match eight.color() {
        image::ColorType::L8 => E::L8,
        image::ColorType::La8 => E::La8,
        image::ColorType::Rgba8 => E::Rgba8,
        _ => E::Rgb8,
    };
    if matches!(format, OutputFormat::Jpeg { .. }) && matches!(color, E::La8 | E::Rgba8) {
        return Err(refuse("alpha (flatten the picture first)"));
    }
    encode_8bit(eight.as_bytes(), w, h, color, format, metadata, out, name)
}

/// A `png` encoder for a `width × height` picture of this colour type and depth, with the
/// metadata's iCCP and eXIf chunks, compression `Fast`.
fn png_encoder<'a, W: Write>(
    out: W,
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    metadata: &Metadata,
) -> Result<png::Encoder<'a, W>, png::EncodingError> {
    let mut info = png::Info::with_size(width, height);
    info.color_type = color;
    info.bit_depth = depth;
    info.icc_profile = metadata.icc.clone().map(std::borrow::Cow::Owned);
    info.exif_metadata = metadata.exif.clone().map(std::borrow::Cow::Owned);
    let mut encoder = png::Encoder::with_info(out, info)?;
    encoder.set_compression(png::Compression::Fast);
    Ok(encoder)
}

/// JPEG or WebP from 8-bit samples, with metadata.
fn encode_8bit<W: Write>(
    bytes: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
    format: OutputFormat,
    metadata: &Metadata,
    out: W,
    name: &Path,
) -> Result<(), IoError> {
    let mut out = BufWriter::new(out);
    let pixels = (bytes, width, height, color);
    match format {
        OutputFormat::Jpeg { quality } => {
            let q = quality.clamp(1, 100);
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q);
            encode_with_metadata(enc, pixels, metadata, name)?
        }
        OutputFormat::WebP => {
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            encode_with_metadata(enc, pixels, metadata, name)?
        }
        OutputFormat::Png | OutputFormat::Gif => unreachable!("written by write_picture"),
    }
    out.flush().map_err(|cause| IoError::write(name, cause))
}

/// Writes the `width × height` samples `bytes` through `enc`, after the ICC profile and EXIF of
/// `metadata`.
fn encode_with_metadata(
    mut enc: impl image::ImageEncoder,
    (bytes, width, height, color): (&[u8], u32, u32, image::ExtendedColorType),
    metadata: &Metadata,
    name: &Path,
) -> Result<(), IoError> {
    let meta_err = |e: image::error::UnsupportedError| IoError::encode(name, e.to_string());
    if let Some(icc) = &metadata.icc {
        enc.set_icc_profile(icc.clone()).map_err(meta_err)?;
    }
    if let Some(exif) = &metadata.exif {
        enc.set_exif_metadata(exif.clone()).map_err(meta_err)?;
    }
    enc.write_image(bytes, width, height, color)
        .map_err(|e| encode_error(name, e))
}

/// One frame of an animation: the whole canvas as RGBA8 (the decoder has composited it), and
/// how long it shows, as a fraction `(numerator, denominator)` of milliseconds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Frame {
    /// The composited canvas.
    pub image: image::RgbaImage,
    /// Display time in ms, as numerator and denominator.
    pub delay_ms: (u32, u32),
}

/// Every frame of an animated picture, with the file's metadata.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Animation {
    /// The frames, in order.
    pub frames: Vec<Frame>,
    /// ICC profile and EXIF of the file.
    pub metadata: Metadata,
}

/// A decoded input: a still picture, or every frame of an animation.
#[derive(Debug, Clone)]
pub enum Input {
    /// A still picture (an animated file with one frame is a still).
    Still(Picture),
    /// An animation of two or more frames (GIF, APNG, animated WebP).
    Animated(Animation),
}

/// Decodes a still picture ([`decode_picture_reader`]) or, for a GIF, an APNG or an animated
/// WebP, every frame. The frames together must fit [`DecodeLimits::max_alloc`] (4 bytes a pixel
/// a frame), checked as they are decoded; each frame's size is checked against
/// [`DecodeLimits::max_pixels`] from the header. A decoder panic is this file's
/// [`IoError::Malformed`].
pub fn decode_input_reader<R: BufRead + Seek>(
    mut reader: R,
    name: &Path,
    limits: &DecodeLimits,
) -> Result<Input, IoError> {
    let read_err = |cause| IoError::read(name, cause);
    let start = reader.stream_position().map_err(read_err)?;
    let mut magic = [0u8; 6];
    let got = reader.read(&mut magic).map_err(read_err)?;
    reader
        .seek(std::io::SeekFrom::Start(start))
        .map_err(read_err)?;
    let gif = got >= 6 && (&magic == b"GIF87a" || &magic == b"GIF89a");
    let animated = gif
        || crate::sniff::sniff(&mut reader)
            .map_err(read_err)?
            .is_ok_and(|s| s.animated);
    if !animated {
        return decode_picture_reader(reader, name, limits).map(Input::Still);
    }
    let anim = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_frames(reader, name, limits, gif)
    }))
    .map_err(|_| {
        IoError::malformed(
            name,
            "the decoder failed on this file (a decoder bug)".into(),
        )
    })??;
    if anim.frames.len() == 1 {
        let frame = anim.frames.into_iter().next().expect("one frame");
        return Ok(Input::Still(Picture {
            image: DynamicImage::ImageRgba8(frame.image),
            metadata: anim.metadata,
            animated: false,
        }));
    }
    Ok(Input::Animated(anim))
}

/// [`decode_input_reader`] on the file at `path`.
pub fn decode_input_path(path: &Path, limits: &DecodeLimits) -> Result<Input, IoError> {
    let file = File::open(path).map_err(|cause| IoError::read(path, cause))?;
    decode_input_reader(BufReader::new(file), path, limits)
}

fn decode_frames<R: BufRead + Seek>(
    reader: R,
    name: &Path,
    limits: &DecodeLimits,
    gif: bool,
) -> Result<Animation, IoError> {
    use image::AnimationDecoder;
    let decode_err = |cause| IoError::decode(name, cause);
    let check = |w: u32, h: u32| {
        if pixels_u64(w, h) > limits.max_pixels {
            return Err(IoError::too_large(name, w, h, limits));
        }
        Ok(())
    };
    let mut metadata = Metadata::default();
    let frames: image::Frames = if gif {
        let mut d = image::codecs::gif::GifDecoder::new(reader).map_err(decode_err)?;
        let (w, h) = d.dimensions();
        check(w, h)?;
        d.set_limits(limits.image_limits(w, h))
            .map_err(decode_err)?;
        d.into_frames()
    } else {
        let mut r = ImageReader::new(reader)
            .with_guessed_format()
            .map_err(|cause| IoError::read(name, cause))?;
        r.limits(header_limits());
        let format = r.format();
        let inner = r.into_inner();
        match format {
            Some(ImageFormat::Png) => {
                let mut d = image::codecs::png::PngDecoder::with_limits(inner, header_limits())
                    .map_err(decode_err)?;
                let (w, h) = d.dimensions();
                check(w, h)?;
                metadata.icc = d.icc_profile().ok().flatten();
                metadata.exif = d.exif_metadata().ok().flatten();
                d.set_limits(limits.image_limits(w, h))
                    .map_err(decode_err)?;
                d.apng().map_err(decode_err)?.into_frames()
            }
            _ => {
                let mut d = image::codecs::webp::WebPDecoder::new(inner).map_err(decode_err)?;
                let (w, h) = d.dimensions();
                check(w, h)?;
                metadata.icc = d.icc_profile().ok().flatten();
                metadata.exif = d.exif_metadata().ok().flatten();
                d.set_limits(limits.image_limits(w, h))
                    .map_err(decode_err)?;
                d.into_frames()
            }
        }
    };
    if let Some(e) = metadata.exif.as_mut() {
        let _ = image::metadata::Orientation::remove_from_exif_chunk(e);
    }
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for frame in frames {
        let frame = frame.map_err(decode_err)?;
        let delay_ms = frame.delay().numer_denom_ms();
        let image = frame.into_buffer();
        bytes = bytes.saturating_add(pixels_u64(image.width(), image.height()) * 4);
        if bytes > limits.max_alloc {
            return Err(IoError::OverMemoryLimit {
                path: name.to_owned(),
                width: image.width(),
                height: image.height(),
                bytes,
                limit: limits.max_alloc,
            });
        }
        out.push(Frame { image, delay_ms });
    }
    if out.is_empty() {
        return Err(IoError::malformed(
            name,
            "an animation without frames".into(),
        ));
    }
    Ok(Animation {
        frames: out,
        metadata,
    })
}

/// Writes an animation frame by frame (memory: one frame): APNG for [`OutputFormat::Png`]
/// (RGBA8, lossless, the metadata's iCCP and eXIf), GIF for [`OutputFormat::Gif`] (each frame
/// quantised to 256 colours, no metadata: GIF has no ICC or EXIF block in `image`). Both loop
/// forever. Other formats hold no animation: [`IoError::Encode`].
pub struct AnimationWriter<W: Write> {
    inner: AnimInner<BufWriter<Latch<W>>>,
    latch: Arc<Mutex<Option<std::io::Error>>>,
    name: PathBuf,
    frames_left: u32,
    animated: bool,
}

enum AnimInner<W: Write> {
    Png(png::Writer<W>),
    Gif(Box<image::codecs::gif::GifEncoder<W>>),
}

impl<W: Write> fmt::Debug for AnimationWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnimationWriter")
            .field("name", &self.name)
            .field("frames_left", &self.frames_left)
            .finish_non_exhaustive()
    }
}

impl<W: Write> AnimationWriter<W> {
    /// Starts an animation of `frames` frames of `width × height` in `format`.
    pub fn new(
        out: W,
        format: OutputFormat,
        width: u32,
        height: u32,
        frames: u32,
        metadata: &Metadata,
        name: &Path,
    ) -> Result<Self, IoError> {
        format.check_size(width, height, name)?;
        let latch = Arc::new(Mutex::new(None));
        let out = BufWriter::new(Latch {
            inner: out,
            error: Arc::clone(&latch),
        });
        let inner = match format {
            OutputFormat::Png => {
                let mut enc = png_encoder(
                    out,
                    width,
                    height,
                    png::ColorType::Rgba,
                    png::BitDepth::Eight,
                    metadata,
                )
                .map_err(|e| png_err(e, name))?;
                if frames > 1 {
                    enc.set_animated(frames, 0).map_err(|e| png_err(e, name))?;
                }
                AnimInner::Png(enc.write_header().map_err(|e| png_err(e, name))?)
            }
            OutputFormat::Gif => {
                let mut enc = image::codecs::gif::GifEncoder::new_with_speed(out, 10);
                enc.set_repeat(image::codecs::gif::Repeat::Infinite)
                    .map_err(|e| IoError::encode(name, e.to_string()))?;
                AnimInner::Gif(Box::new(enc))
            }
            other => {
                return Err(IoError::encode(
                    name,
                    format!("{other} cannot hold an animation (use png for APNG, or gif)"),
                ))
            }
        };
        Ok(AnimationWriter {
            inner,
            latch,
            name: name.to_owned(),
            frames_left: frames,
            animated: frames > 1,
        })
    }

    /// Appends a frame shown for `delay_ms` (numerator, denominator) milliseconds.
    pub fn write_frame(
        &mut self,
        frame: &image::RgbaImage,
        delay_ms: (u32, u32),
    ) -> Result<(), IoError> {
        if self.frames_left == 0 {
            return Err(IoError::encode(
                &self.name,
                "more frames than announced".into(),
            ));
        }
        match &mut self.inner {
            AnimInner::Png(w) => {
                let ms = (f64::from(delay_ms.0) / f64::from(delay_ms.1.max(1)))
                    .round()
                    .clamp(0.0, f64::from(u16::MAX)) as u16;
                // A one-frame output is a plain PNG: no frame control to set.
                if self.animated {
                    w.set_frame_delay(ms, 1000)
                        .map_err(|e| png_err(e, &self.name))?;
                }
                w.write_image_data(frame.as_raw())
                    .map_err(|e| png_err(e, &self.name))?;
            }
            AnimInner::Gif(enc) => {
                let delay = image::Delay::from_numer_denom_ms(delay_ms.0, delay_ms.1.max(1));
                enc.encode_frame(image::Frame::from_parts(frame.clone(), 0, 0, delay))
                    .map_err(|e| encode_error(&self.name, e))?;
            }
        }
        self.frames_left -= 1;
        Ok(())
    }

    /// Checks that every announced frame came, then ends the file and flushes it.
    pub fn finish(self) -> Result<(), IoError> {
        none_missing(&self.name, u64::from(self.frames_left), "frames")?;
        let name = self.name;
        // Ending the file (IEND, the GIF trailer) and flushing happen as the encoders drop:
        // their write errors come back through the latch.
        match self.inner {
            AnimInner::Png(w) => w.finish().map_err(|e| png_err(e, &name))?,
            AnimInner::Gif(enc) => drop(enc),
        }
        latched(&self.latch, name)
    }
}

/// A PNG encoder fed row by row: memory is a few rows whatever the picture's size.
///
/// Rows are RGB8, `width * 3` bytes each, top to bottom; any number of whole rows per
/// [`write_rows`](Self::write_rows) call. [`finish`](Self::finish) checks that exactly `height`
/// rows came and writes the end of the file. The writer is owned (`'static`, a limitation of
/// `png`'s stream writer): pass a `File` (for an [`AtomicOutput`], [`AtomicOutput::writer`]), not a
/// borrow. Compression is `png`'s `Fast` (fdeflate) with
/// adaptive filtering: close to the default level's size at several times the speed.
pub struct PngRowWriter<W: Write + 'static> {
    stream: png::StreamWriter<'static, BufWriter<Latch<W>>>,
    latch: Arc<Mutex<Option<std::io::Error>>>,
    row_bytes: usize,
    rows_left: u64,
    name: PathBuf,
}

impl<W: Write + 'static> fmt::Debug for PngRowWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PngRowWriter")
            .field("row_bytes", &self.row_bytes)
            .field("rows_left", &self.rows_left)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<W: Write + 'static> PngRowWriter<W> {
    /// Writes the PNG header of a `width × height` RGB8 picture to `out`; `name` is used in error
    /// messages.
    pub fn new(out: W, width: u32, height: u32, name: &Path) -> Result<Self, IoError> {
        Self::with_metadata(out, width, height, name, &Metadata::default())
    }

    /// [`new`](Self::new), with the metadata's ICC profile (iCCP) and EXIF (eXIf) written in the
    /// header.
    pub fn with_metadata(
        out: W,
        width: u32,
        height: u32,
        name: &Path,
        metadata: &Metadata,
    ) -> Result<Self, IoError> {
        Self::with_colour(out, width, height, name, metadata, 3)
    }

    /// [`with_metadata`](Self::with_metadata) for 8-bit rows of `channels` samples a pixel:
    /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA (`width · channels` bytes a row).
    pub fn with_colour(
        out: W,
        width: u32,
        height: u32,
        name: &Path,
        metadata: &Metadata,
        channels: u8,
    ) -> Result<Self, IoError> {
        let channels = if (1..=4).contains(&channels) {
            channels
        } else {
            3
        };
        let latch = Arc::new(Mutex::new(None));
        let out = Latch {
            inner: out,
            error: Arc::clone(&latch),
        };
        let encoder = png_encoder(
            BufWriter::with_capacity(1 << 16, out),
            width,
            height,
            match channels {
                1 => png::ColorType::Grayscale,
                2 => png::ColorType::GrayscaleAlpha,
                4 => png::ColorType::Rgba,
                _ => png::ColorType::Rgb,
            },
            png::BitDepth::Eight,
            metadata,
        )
        .map_err(|e| png_err(e, name))?;
        let writer = encoder.write_header().map_err(|e| png_err(e, name))?;
        let stream = writer
            .into_stream_writer_with_size(1 << 16)
            .map_err(|e| png_err(e, name))?;
        Ok(PngRowWriter {
            stream,
            latch,
            row_bytes: width as usize * usize::from(channels),
            rows_left: u64::from(height),
            name: name.to_owned(),
        })
    }

    /// Appends whole rows (a multiple of `width * 3` bytes).
    pub fn write_rows(&mut self, rows: &[u8]) -> Result<(), IoError> {
        if self.row_bytes == 0 || rows.len() % self.row_bytes != 0 {
            return Err(IoError::encode(
                &self.name,
                format!(
                    "{} bytes is not a whole number of {}-byte rows",
                    rows.len(),
                    self.row_bytes
                ),
            ));
        }
        let n = (rows.len() / self.row_bytes) as u64;
        if n > self.rows_left {
            return Err(IoError::encode(
                &self.name,
                format!("{n} rows given, only {} left", self.rows_left),
            ));
        }
        self.stream
            .write_all(rows)
            .map_err(|cause| IoError::write(&self.name, cause))?;
        self.rows_left -= n;
        Ok(())
    }

    /// Rows still expected.
    pub fn rows_left(&self) -> u64 {
        self.rows_left
    }

    /// Checks that every row came, then writes the end of the file and flushes it.
    pub fn finish(self) -> Result<(), IoError> {
        none_missing(&self.name, self.rows_left, "rows")?;
        let name = self.name;
        // `finish` flushes the compressed data; dropping the stream then writes IEND into the
        // `BufWriter`, whose own drop flushes it. Those last writes report errors only through
        // the latch, checked here.
        self.stream.finish().map_err(|e| png_err(e, &name))?;
        latched(&self.latch, name)
    }
}

/// At the end of a streamed output: [`IoError::Encode`] ("`{left} {what} missing`") unless every
/// announced frame or row came.
fn none_missing(name: &Path, left: u64, what: &str) -> Result<(), IoError> {
    match left {
        0 => Ok(()),
        _ => Err(IoError::encode(name, format!("{left} {what} missing"))),
    }
}

/// The write error that `latch` kept while an encoder dropped its writer, as [`IoError::Write`].
fn latched(latch: &Mutex<Option<std::io::Error>>, name: PathBuf) -> Result<(), IoError> {
    match latch.lock().map(|mut e| e.take()).unwrap_or(None) {
        Some(cause) => Err(IoError::Write { path: name, cause }),
        None => Ok(()),
    }
}

/// Passes writes through and keeps the first error, so that errors of writes made while
/// `png` drops its writer are not lost.
struct Latch<W> {
    inner: W,
    error: Arc<Mutex<Option<std::io::Error>>>,
}

impl<W: Write> Latch<W> {
    fn keep<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            if let Ok(mut slot) = self.error.lock() {
                if slot.is_none() && e.kind() != std::io::ErrorKind::Interrupted {
                    *slot = Some(std::io::Error::new(e.kind(), e.to_string()));
                }
            }
        }
        r
    }
}

impl<W: Write> Write for Latch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.keep(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.keep(r)
    }
}

fn png_err(e: png::EncodingError, name: &Path) -> IoError {
    match e {
        png::EncodingError::IoError(cause) => IoError::write(name, cause),
        other => IoError::encode(name, other.to_string()),
    }
}

/// What sits at an output path, and what [`AtomicOutput`] does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Destination {
    /// Nothing: the output is created (temporary file, then rename).
    Absent,
    /// A regular file: replaced atomically (temporary file, then rename), only with `overwrite`.
    Regular,
    /// A FIFO or a character device (`/dev/null`, a terminal): written into directly, as `cp`
    /// does, only with `overwrite`; never replaced.
    Stream,
}

/// Says what is at `dest` and whether an output may go there.
///
/// # Errors
/// [`IoError::Exists`] if something is there and `overwrite` is false;
/// [`IoError::NotReplaceable`] for a symbolic link (never followed nor replaced, even with
/// `overwrite`), a folder, a block device or a socket.
pub fn check_destination(dest: &Path, overwrite: bool) -> Result<Destination, IoError> {
    let meta = match dest.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Destination::Absent),
        Err(cause) => return Err(IoError::write(dest, cause)),
    };
    if !overwrite {
        return Err(IoError::Exists {
            path: dest.to_owned(),
        });
    }
    let refuse = |what, hint| {
        Err(IoError::NotReplaceable {
            path: dest.to_owned(),
            what,
            hint,
        })
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return refuse(
            "a symbolic link",
            " and does not follow it (name the link's target as the output instead)",
        );
    }
    if ft.is_dir() {
        return refuse("a folder", "");
    }
    if ft.is_file() {
        return Ok(Destination::Regular);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() || ft.is_char_device() {
            return Ok(Destination::Stream);
        }
        if ft.is_block_device() {
            return refuse("a block device", "");
        }
        if ft.is_socket() {
            return refuse("a socket", "");
        }
    }
    refuse("not a regular file", "")
}

/// Longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// Temporary files of this process not yet committed or dropped, for [`remove_temp_files`].
static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Temporary files of processes that no longer run, in one folder: (hash of the output name they
/// were for, path).
type StaleFiles = Vec<(u64, PathBuf)>;

/// Stale temporary files found per folder, listed once per process and folder.
static STALE: Mutex<Vec<(PathBuf, StaleFiles)>> = Mutex::new(Vec::new());

/// Removes the temporary files of every [`AtomicOutput`] of this process that is neither
/// committed nor dropped; returns how many were removed. For a signal handler's thread (it locks
/// a mutex: not async-signal-safe), just before the process ends.
///
/// The registry stays locked afterwards, so no new temporary file can be created by another
/// thread before the process ends: call it only on the way out.
pub fn remove_temp_files() -> usize {
    let live = LIVE_TEMPS.lock().unwrap_or_else(|p| p.into_inner());
    let removed = live
        .iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count();
    std::mem::forget(live);
    removed
}

fn unregister(path: &Path) {
    if let Ok(mut l) = LIVE_TEMPS.lock() {
        l.retain(|p| p != path);
    }
}

/// FNV-1a, 64 bits: a stable hash of an output name, carried by its temporary files.
fn name_hash(name: &std::ffi::OsStr) -> u64 {
    name.as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The temporary-name prefix for output `file_name`: `.NAME.HASH.PID.` with NAME cut so that
/// the whole temporary name (prefix, 6 random characters, `.tmp`) fits in [`NAME_MAX`] bytes.
fn temp_prefix(file_name: &std::ffi::OsStr) -> std::ffi::OsString {
    let tail = format!(".{:016x}.{}.", name_hash(file_name), std::process::id());
    let room = NAME_MAX - 1 - tail.len() - 6 - ".tmp".len();
    let mut prefix = std::ffi::OsString::from(".");
    match file_name.to_str() {
        Some(s) => {
            let mut cut = s.len().min(room);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            prefix.push(&s[..cut]);
        }
        None => {
            let bytes = file_name.as_encoded_bytes();
            let cut = bytes.len().min(room);
            prefix.push(String::from_utf8_lossy(&bytes[..cut]).as_ref());
        }
    }
    prefix.push(tail);
    prefix
}

/// Parses a temporary name `.NAME.HASH.PID.XXXXXX.tmp` into (hash, pid).
fn parse_temp_name(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(4, '.');
    let rand = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let hash = parts.next()?;
    parts.next()?;
    if rand.len() != 6 || hash.len() != 16 {
        return None;
    }
    Some((u64::from_str_radix(hash, 16).ok()?, pid))
}

/// Whether process `pid` still runs (`true` when it cannot be told).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc/self");
    if !proc_root.exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes temporary files in `dir` left for output `file_name` by savl processes that no longer
/// run (killed before they could clean up). The folder is listed once per process.
fn sweep_stale(dir: &Path, file_name: &std::ffi::OsStr) {
    let Ok(mut stale) = STALE.lock() else {
        return;
    };
    let key = dir.to_owned();
    if !stale.iter().any(|(d, _)| *d == key) {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some((hash, pid)) = name.to_str().and_then(parse_temp_name) else {
                    continue;
                };
                if !process_alive(pid) && e.file_type().is_ok_and(|t| t.is_file()) {
                    found.push((hash, e.path()));
                }
            }
        }
        stale.push((key.clone(), found));
    }
    let hash = name_hash(file_name);
    if let Some((_, found)) = stale.iter_mut().find(|(d, _)| *d == key) {
        found.retain(|(h, p)| {
            if *h == hash {
                let _ = std::fs::remove_file(p);
                false
            } else {
                true
            }
        });
    }
}

/// An output file written under a temporary name in the destination's folder and renamed into
/// place by [`commit`](Self::commit). Dropped without `commit`, the temporary file is removed and
/// the destination is untouched.
///
/// - The temporary name is `.NAME.HASH.PID.XXXXXX.tmp`, with NAME shortened so that it fits in 255
///   bytes whatever the output name's length.
/// - [`remove_temp_files`] removes the temporary files of a process on a signal; temporary files
///   left by a killed process (whose PID no longer runs, as `/proc` tells; where there is no
///   `/proc`, nothing is swept) are removed by the next [`AtomicOutput::create`] for the same
///   output name in that folder.
/// - A FIFO or character device at the destination ([`Destination::Stream`]) is written into
///   directly with `overwrite`, never replaced; a symbolic link is refused (see
///   [`check_destination`]).
#[derive(Debug)]
pub struct AtomicOutput {
    target: Target,
    dest: PathBuf,
    overwrite: bool,
}

#[derive(Debug)]
enum Target {
    Temp(tempfile::NamedTempFile),
    Direct(File),
    Done,
}

impl AtomicOutput {
    /// Creates the temporary file next to `dest` (or opens `dest` for writing if it is a FIFO or a
    /// character device and `overwrite` is set).
    ///
    /// # Errors
    /// Those of [`check_destination`]; [`IoError::Write`] if the file cannot be created.
    pub fn create(dest: &Path, overwrite: bool) -> Result<Self, IoError> {
        let write_err = |cause| IoError::write(dest, cause);
        if check_destination(dest, overwrite)? == Destination::Stream {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(dest)
                .map_err(write_err)?;
            return Ok(AtomicOutput {
                target: Target::Direct(file),
                dest: dest.to_owned(),
                overwrite,
            });
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file_name = dest
            .file_name()
            .ok_or_else(|| write_err(std::io::Error::other("not a file name")))?;
        sweep_stale(dir, file_name);
        let prefix = temp_prefix(file_name);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp").rand_bytes(6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Like a plain `File::create`: 0666 less the umask (tempfile's default is 0600).
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        // Created and registered under the lock that `remove_temp_files` takes, so a signal
        // arriving in between cannot leave the file behind.
        let tmp = {
            let mut live = LIVE_TEMPS.lock().unwrap_or_else(|p| p.into_inner());
            let tmp = builder.tempfile_in(dir).map_err(write_err)?;
            live.push(tmp.path().to_owned());
            tmp
        };
        Ok(AtomicOutput {
            target: Target::Temp(tmp),
            dest: dest.to_owned(),
            overwrite,
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary file's path (`None` when writing into a FIFO or device directly).
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.target {
            Target::Temp(t) => Some(t.path()),
            _ => None,
        }
    }

    /// The file to write to (unbuffered: wrap it in a `BufWriter` or use [`write_image`], which
    /// buffers). Seekable unless the destination is a FIFO or device.
    pub fn file(&mut self) -> &mut File {
        match &mut self.target {
            Target::Temp(t) => t.as_file_mut(),
            Target::Direct(f) => f,
            Target::Done => unreachable!("AtomicOutput used after commit"),
        }
    }

    /// An owned handle on the file (a duplicate descriptor), for writers that must own theirs,
    /// such as [`PngRowWriter`].
    pub fn writer(&self) -> Result<File, IoError> {
        let file = match &self.target {
            Target::Temp(t) => t.as_file(),
            Target::Direct(f) => f,
            Target::Done => unreachable!("AtomicOutput used after commit"),
        };
        file.try_clone()
            .map_err(|cause| IoError::write(&self.dest, cause))
    }

    /// Syncs the temporary file and renames it to the destination. Without `overwrite` the rename
    /// fails (atomically) if the destination appeared meanwhile. A FIFO or device destination was
    /// written directly: nothing is renamed.
    pub fn commit(mut self) -> Result<(), IoError> {
        let dest = self.dest.clone();
        let write_err = |cause| IoError::write(&dest, cause);
        let tmp = match std::mem::replace(&mut self.target, Target::Done) {
            Target::Temp(t) => t,
            Target::Direct(_) | Target::Done => return Ok(()),
        };
        let tmp_path = tmp.path().to_owned();
        let result = (|| {
            tmp.as_file().sync_all().map_err(write_err)?;
            if self.overwrite {
                // The destination may have become a link or a FIFO since `create`.
                if check_destination(&dest, true)? == Destination::Stream {
                    return Err(IoError::NotReplaceable {
                        path: dest.clone(),
                        what: "a FIFO or device created while the output was written",
                        hint: "",
                    });
                }
                tmp.persist(&dest).map_err(|e| write_err(e.error))?;
            } else {
                tmp.persist_noclobber(&dest).map_err(|e| {
                    if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                        IoError::Exists { path: dest.clone() }
                    } else {
                        write_err(e.error)
                    }
                })?;
            }
            Ok(())
        })();
        unregister(&tmp_path);
        result
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if let Target::Temp(t) = &self.target {
            unregister(t.path());
        }
    }
}

/// Reads raw RGB24 frames of a fixed size from a stream (`savl upscale --raw`): whole frames, or
/// an error naming the frame when the stream ends inside one.
#[derive(Debug)]
pub struct RawFrameReader<R> {
    input: R,
    width: u32,
    height: u32,
    frame_len: usize,
    frames: u64,
}

impl<R: std::io::Read> RawFrameReader<R> {
    /// Frames of `width × height` RGB24 pixels from `input`.
    ///
    /// # Errors
    /// An empty size, or a frame too large to address, is `InvalidInput`.
    pub fn new(input: R, width: u32, height: u32) -> std::io::Result<Self> {
        let frame_len = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(3))
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("frame size {width}x{height} is empty or too large"),
                )
            })?;
        Ok(RawFrameReader {
            input,
            width,
            height,
            frame_len,
            frames: 0,
        })
    }

    /// Bytes in one frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Reads the next frame into `buf` (resized to [`frame_len`](Self::frame_len)); `Ok(false)`
    /// at the end of the stream.
    ///
    /// # Errors
    /// The stream's read errors, and `UnexpectedEof` naming the frame and the bytes it had when
    /// the stream ends inside a frame.
    pub fn read_frame(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        buf.resize(self.frame_len, 0);
        let mut got = 0;
        while got < self.frame_len {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            return Ok(false);
        }
        if got < self.frame_len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "stdin ended inside frame {}: {got} of {} bytes (is the size {}x{} and the \
                     pixel format rgb24?)",
                    self.frames, self.frame_len, self.width, self.height
                ),
            ));
        }
        self.frames += 1;
        Ok(true)
    }
}

/// Whether `a` and `b` name the same existing file (same device and inode on Unix, so hard
/// links and symlinks count; canonical paths elsewhere). `false` if either does not exist.
pub fn is_same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(ma), Ok(mb)) => ma.dev() == mb.dev() && ma.ino() == mb.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        match (a.canonicalize(), b.canonicalize()) {
            (Ok(ca), Ok(cb)) => ca == cb,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, (x ^ y) as u8])
        })
    }

    /// A `w × h` [`gradient`] as a PNG file's bytes.
    fn gradient_png(w: u32, h: u32) -> Vec<u8> {
        let mut buf = Vec::new();
        write_image(&gradient(w, h), OutputFormat::Png, &mut buf, Path::new("x")).unwrap();
        buf
    }

    #[test]
    fn png_rows_round_trip() {
        let img = gradient(37, 23);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.png");
        let out = AtomicOutput::create(&path, false).unwrap();
        let mut w = PngRowWriter::new(out.writer().unwrap(), 37, 23, &path).unwrap();
        for band in img.as_raw().chunks(37 * 3 * 5) {
            w.write_rows(band).unwrap();
        }
        w.finish().unwrap();
        out.commit().unwrap();
        let back = decode_path(&path, &DecodeLimits::default()).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn png_rows_missing_is_an_error() {
        let mut w = PngRowWriter::new(Vec::new(), 4, 4, Path::new("m.png")).unwrap();
        w.write_rows(&[0; 4 * 3 * 2]).unwrap();
        assert!(w.write_rows(&[0; 5]).is_err());
        let err = w.finish().unwrap_err().to_string();
        assert!(
            err.contains("m.png") && err.contains("2 rows missing"),
            "{err}"
        );
    }

    #[test]
    fn limit_refuses_before_decoding() {
        let buf = gradient_png(100, 100);
        let err = decode_reader(
            Cursor::new(&buf),
            Path::new("big.png"),
            &DecodeLimits::megapixels(0.005),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            IoError::TooLarge {
                width: 100,
                height: 100,
                ..
            }
        ));
        assert!(err.to_string().starts_with("big.png: 100×100"), "{err}");
    }

    #[test]
    fn garbage_and_truncated_name_the_file() {
        let err = decode_reader(
            Cursor::new(b"not a picture at all".to_vec()),
            Path::new("junk.png"),
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("junk.png: "), "{err}");

        let buf = gradient_png(64, 64);
        let half = &buf[..buf.len() / 2];
        let err = decode_reader(
            Cursor::new(half),
            Path::new("cut.png"),
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("cut.png: "), "{err}");
    }

    /// Issue 16: a truncated JPEG decoded "successfully" with a grey-filled remainder.
    #[test]
    fn truncated_pictures_fail_in_every_format() {
        let img = gradient(64, 48);
        for format in [OutputFormat::Png, OutputFormat::JPEG, OutputFormat::WebP] {
            let mut buf = Cursor::new(Vec::new());
            write_image(&img, format, &mut buf, Path::new("x")).unwrap();
            let full = buf.into_inner();
            let n = full.len();
            let mut cuts = vec![n / 2, n * 9 / 10];
            if format != OutputFormat::Png {
                // A PNG cut inside IEND has every pixel; JPEG and WebP must still fail.
                cuts.extend([n * 99 / 100, n - 2, n - 1]);
            }
            for cut in cuts {
                let r = decode_reader(
                    Cursor::new(&full[..cut]),
                    Path::new("cut"),
                    &DecodeLimits::default(),
                );
                assert!(r.is_err(), "{format} cut at {cut} of {n} decoded");
            }
            let whole = decode_reader(Cursor::new(&full), Path::new("x"), &DecodeLimits::default());
            assert_eq!(whole.unwrap().dimensions(), (64, 48), "{format}");
        }
    }

    /// Found by fuzzing (`decode_image`): zune-jpeg's AVX2 IDCT panics on these malformed
    /// frame headers. The file fails; the process goes on. (Other IDCTs, as on aarch64, decode
    /// them: there only the absence of a panic is checked.)
    #[test]
    fn a_decoder_panic_is_the_files_error() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_image");
        #[cfg(target_arch = "x86_64")]
        let avx2_idct = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2_idct = false;
        for i in 0..3 {
            let path = dir.join(format!("zune_idct_panic_{i}.jpg"));
            assert!(path.is_file(), "{}", path.display());
            let r = std::panic::catch_unwind(|| decode_path(&path, &DecodeLimits::default()));
            let decoded = r.expect("the panic crossed decode_path");
            if avx2_idct {
                let err = decoded.unwrap_err();
                assert!(err.to_string().contains("zune_idct_panic"), "{err}");
            }
        }
    }

    #[test]
    fn temporary_names_fit_and_parse_back() {
        let long = "é".repeat(127);
        for name in ["a.png", long.as_str()] {
            let prefix = temp_prefix(std::ffi::OsStr::new(name));
            let full = format!("{}abcdef.tmp", prefix.to_str().unwrap());
            assert!(full.len() <= NAME_MAX, "{}", full.len());
            let (hash, pid) = parse_temp_name(&full).unwrap();
            assert_eq!(hash, name_hash(std::ffi::OsStr::new(name)));
            assert_eq!(pid, std::process::id());
        }
        assert_eq!(parse_temp_name(".a.png.tmp"), None);
    }

    #[test]
    fn rgba_grey_and_16_bit_become_rgb8() {
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            3,
            2,
            image::Rgba([10, 20, 30, 0]),
        ));
        assert_eq!(to_rgb8(rgba).get_pixel(1, 1).0, [10, 20, 30]);
        let grey16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            2,
            2,
            image::Luma([0xffffu16]),
        ));
        assert_eq!(to_rgb8(grey16).get_pixel(0, 0).0, [255, 255, 255]);
    }

    #[test]
    fn jpeg_and_webp_encode() {
        let img = gradient(16, 8);
        for format in [OutputFormat::JPEG, OutputFormat::WebP] {
            let mut buf = Cursor::new(Vec::new());
            write_image(&img, format, &mut buf, Path::new("o")).unwrap();
            let back = decode_reader(
                Cursor::new(buf.get_ref()),
                Path::new("o"),
                &DecodeLimits::default(),
            )
            .unwrap();
            assert_eq!(back.dimensions(), (16, 8));
        }
    }

    /// Every colour type savl writes comes back sample for sample from PNG (16-bit samples are
    /// big-endian in the file), with the metadata's bytes.
    #[test]
    fn write_picture_round_trips_every_colour_type_with_metadata() {
        let v16 = |x: u32, y: u32, c: u32| ((x * 7919 + y * 104_729 + c * 31_337) % 65_536) as u16;
        let v8 = |x: u32, y: u32, c: u32| (v16(x, y, c) >> 3) as u8;
        let pics = [
            DynamicImage::ImageLuma8(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::Luma([v8(x, y, 0)])
            })),
            DynamicImage::ImageLumaA8(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::LumaA([v8(x, y, 0), v8(x, y, 1)])
            })),
            DynamicImage::ImageRgba8(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::Rgba([v8(x, y, 0), v8(x, y, 1), v8(x, y, 2), v8(x, y, 3)])
            })),
            DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::Luma([v16(x, y, 0)])
            })),
            DynamicImage::ImageLumaA16(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::LumaA([v16(x, y, 0), v16(x, y, 1)])
            })),
            DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::Rgb([v16(x, y, 0), v16(x, y, 1), v16(x, y, 2)])
            })),
            DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(5, 3, |x, y| {
                image::Rgba([v16(x, y, 0), v16(x, y, 1), v16(x, y, 2), v16(x, y, 3)])
            })),
        ];
        let meta = Metadata::new(Some(b"icc bytes".to_vec()), Some(b"MM\0*exif".to_vec()));
        for pic in pics {
            let mut buf = Vec::new();
            write_picture(&pic, OutputFormat::Png, &meta, &mut buf, Path::new("x")).unwrap();
            let back =
                decode_picture_reader(Cursor::new(&buf), Path::new("x"), &DecodeLimits::default())
                    .unwrap();
            assert_eq!(back.image, pic, "{:?}", pic.color());
            assert_eq!(back.metadata.icc.as_deref(), Some(&b"icc bytes"[..]));
            assert_eq!(back.metadata.exif.as_deref(), Some(&b"MM\0*exif"[..]));
        }
        // JPEG holds no alpha: refused, not silently dropped.
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::new(4, 4));
        let err = write_picture(&rgba, OutputFormat::JPEG, &meta, Vec::new(), Path::new("j"))
            .unwrap_err();
        assert!(err.to_string().contains("alpha"), "{err}");
    }

    #[test]
    fn formats_parse() {
        assert_eq!("JPEG".parse::<OutputFormat>(), Ok(OutputFormat::JPEG));
        assert_eq!(
            OutputFormat::from_path(Path::new("a/b.WebP")),
            Some(OutputFormat::WebP)
        );
        assert_eq!(OutputFormat::from_path(Path::new("a/b.tiff")), None);
        assert!(has_image_extension(Path::new("x.JPG")));
        assert!(!has_image_extension(Path::new("x.txt")));
    }

    #[test]
    fn atomic_output_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.png");
        std::fs::write(&dest, b"old").unwrap();
        assert!(matches!(
            AtomicOutput::create(&dest, false),
            Err(IoError::Exists { .. })
        ));
        // Appears between create and commit: still not clobbered.
        let other = dir.path().join("late.png");
        let mut out = AtomicOutput::create(&other, false).unwrap();
        out.file().write_all(b"new").unwrap();
        std::fs::write(&other, b"first").unwrap();
        assert!(matches!(out.commit(), Err(IoError::Exists { .. })));
        assert_eq!(std::fs::read(&other).unwrap(), b"first");
        // With overwrite.
        let mut out = AtomicOutput::create(&dest, true).unwrap();
        out.file().write_all(b"new").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        // Dropped without commit: no temporary file left.
        let out = AtomicOutput::create(&dir.path().join("gone.png"), false).unwrap();
        drop(out);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(is_same_file(&dest, &dir.path().join(".").join("out.png")));
        assert!(!is_same_file(&dest, &other));
    }
}
