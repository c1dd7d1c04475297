//! Files of the `degrade` subcommand: LR and HR as 8-bit PNG, the maps as safetensors.
//!
//! # Map file format
//!
//! One `NAME.safetensors` per pair (read it with `safetensors`, candle
//! `candle_core::safetensors::load`, or Python `safetensors.numpy.load_file`). All tensors are
//! `[h, w]` at LR resolution, row-major:
//!
//! | tensor | dtype | meaning |
//! |---|---|---|
//! | `noise_sigma` | F32 | effective noise std at LR, in 1/255 |
//! | `blur_sigma` | F32 | combined blur width, LR px |
//! | `gauss_frac` | F32 | Gaussian share of the stage-1 noise |
//! | `gray_frac` | F32 | grey share of the stage-1 noise |
//! | `jpeg_q1`, `jpeg_q2` | U8 | quality of each JPEG step (100 = JPEG off) |
//! | `regime` | U8 | dominant regime index |
//! | `noise_bin` | U8 | class 0..=4 of `noise_sigma` |
//!
//! The header metadata holds one key, `savl`, whose value is a JSON object of scalars:
//! `source` (input file name), `seed`, `stream`, `crop` (`[x, y, size]` or null for the whole
//! image), `scale`, `regimes` (K), `usm`, `resize1` / `resize2` (`[factor, mode]`), `final_mode`,
//! `order` (`resize-sinc-jpeg` or `jpeg-resize-sinc`), `defocus`, `drift` (amplitude or null).
//! Files are written to a temporary name and renamed, so a reader never sees a partial file.

use super::{DegradationInfo, DegradationMaps, FinalOrder};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through `path.tmp` + rename.
///
/// # Errors
/// Any I/O error, with the path in the message.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// PNG bytes of an 8-bit RGB image.
///
/// # Errors
/// Encoder failure.
pub fn png_bytes(img: &image::RgbImage) -> image::ImageResult<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)?;
    Ok(buf.into_inner())
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Scalars that identify where a pair came from.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// Input file name.
    pub source: String,
    /// Global seed.
    pub seed: u64,
    /// Per-pair stream (derived from the file name and the crop number).
    pub stream: u64,
    /// `(x, y, size)` of the HR crop, or `None` for the whole image.
    pub crop: Option<(usize, usize, usize)>,
    /// Scale factor.
    pub scale: usize,
}

/// The JSON object stored under the `savl` metadata key (keys in a fixed order).
pub fn scalars_json(info: &DegradationInfo, prov: &Provenance) -> String {
    let crop = prov
        .crop
        .map_or("null".to_string(), |(x, y, s)| format!("[{x}, {y}, {s}]"));
    let order = match info.order {
        FinalOrder::ResizeSincJpeg => "resize-sinc-jpeg",
        FinalOrder::JpegResizeSinc => "jpeg-resize-sinc",
    };
    let drift = info.drift.map_or("null".to_string(), |a| format!("{a:.6}"));
    format!(
        "{{\"source\": {}, \"seed\": {}, \"stream\": {}, \"crop\": {crop}, \"scale\": {}, \"regimes\": {}, \"usm\": {}, \"resize1\": [{:.6}, \"{}\"], \"resize2\": [{:.6}, \"{}\"], \"final_mode\": \"{}\", \"order\": \"{order}\", \"defocus\": {}, \"drift\": {drift}}}",
        json_str(&prov.source),
        prov.seed,
        prov.stream,
        prov.scale,
        info.regimes,
        info.usm,
        info.resize1.0,
        info.resize1.1.name(),
        info.resize2.0,
        info.resize2.1.name(),
        info.final_mode.name(),
        info.defocus,
    )
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialises the maps (format above).
///
/// # Errors
/// A safetensors error (only on inconsistent shapes, which [`DegradationMaps`] rules out).
pub fn maps_bytes(
    maps: &DegradationMaps,
    scalars_json: &str,
) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let shape = vec![maps.height, maps.width];
    let f32s: Vec<(&str, Vec<u8>)> = vec![
        ("noise_sigma", f32_bytes(&maps.noise_sigma)),
        ("blur_sigma", f32_bytes(&maps.blur_sigma)),
        ("gauss_frac", f32_bytes(&maps.gauss_frac)),
        ("gray_frac", f32_bytes(&maps.gray_frac)),
    ];
    let u8s: Vec<(&str, &[u8])> = vec![
        ("jpeg_q1", &maps.jpeg_q1),
        ("jpeg_q2", &maps.jpeg_q2),
        ("regime", &maps.regime),
        ("noise_bin", &maps.noise_bin),
    ];
    let mut views = Vec::new();
    for (name, b) in &f32s {
        views.push((*name, TensorView::new(Dtype::F32, shape.clone(), b)?));
    }
    for (name, b) in &u8s {
        views.push((*name, TensorView::new(Dtype::U8, shape.clone(), b)?));
    }
    let meta: HashMap<String, String> =
        HashMap::from([("savl".to_string(), scalars_json.to_string())]);
    safetensors::tensor::serialize(views, &Some(meta))
}
