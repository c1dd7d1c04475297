//! On-the-fly training pairs: HR photos kept in memory as 8-bit RGB, random crop + flip +
//! [`degrade`](super::degrade()), deterministic in `(seed, index)`.

use super::pipeline::execute_presharpened;
use super::usm::usm_sharpen;
use super::{degrade_presharpened, draw_plan, rng_for, DegradeConfig, DegradedPair};
use crate::image::PlanarImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// File extensions read as images (the `image` crate is built with png, jpeg, webp).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// An image file that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// The decoder's message.
    pub reason: String,
}

/// Why a folder of HR images could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DegradeError {
    /// The folder does not exist or is not a directory.
    #[error("input folder {0} does not exist or is not a directory")]
    MissingDir(PathBuf),
    /// The folder could not be listed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No readable image in the folder.
    #[error(
        "no readable image (png, jpg, jpeg, webp) in {path} ({skipped} unreadable file(s) skipped)"
    )]
    NoImages {
        /// The folder.
        path: PathBuf,
        /// How many image files failed to decode.
        skipped: usize,
    },
}

/// Image files of `dir` (by extension, case-insensitive), sorted by name.
///
/// # Errors
/// [`DegradeError::MissingDir`] if `dir` is not a directory, [`DegradeError::Io`] if it cannot be
/// listed.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DegradeError> {
    if !dir.is_dir() {
        return Err(DegradeError::MissingDir(dir.to_path_buf()));
    }
    let rd = std::fs::read_dir(dir).map_err(|source| DegradeError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Decodes `files` in parallel; returns the good ones (in order) and the skipped ones.
pub fn load_images(files: &[PathBuf]) -> (Vec<(PathBuf, image::RgbImage)>, Vec<SkippedFile>) {
    let results: Vec<Result<(PathBuf, image::RgbImage), SkippedFile>> = files
        .par_iter()
        .map(|p| match image::open(p) {
            Ok(img) => Ok((p.clone(), img.to_rgb8())),
            Err(e) => Err(SkippedFile {
                path: p.clone(),
                reason: e.to_string(),
            }),
        })
        .collect();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok(g) => good.push(g),
            Err(b) => bad.push(b),
        }
    }
    (good, bad)
}

/// A crop of `img` of `size × size` at `(x0, y0)`, optionally mirrored; coordinates outside the
/// image are reflected (reflect-101), so photos smaller than the crop are padded as in the recipe.
pub fn crop_rgb8(
    img: &image::RgbImage,
    x0: usize,
    y0: usize,
    size: usize,
    flip: bool,
) -> PlanarImage {
    use super::filter::reflect101;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let n = size * size;
    let mut out = PlanarImage::zeros(3, size, size);
    // Source column of each output column (reflected and flipped once per crop).
    let cols: Vec<usize> = (0..size)
        .map(|x| reflect101((x0 + if flip { size - 1 - x } else { x }) as isize, w))
        .collect();
    let (r, g) = out.data.split_at_mut(n);
    let (g, b) = g.split_at_mut(n);
    for y in 0..size {
        let row = &raw[reflect101((y0 + y) as isize, h) * w * 3..][..w * 3];
        for (x, &sx) in cols.iter().enumerate() {
            let p = &row[sx * 3..sx * 3 + 3];
            r[y * size + x] = p[0] as f32 / 255.0;
            g[y * size + x] = p[1] as f32 / 255.0;
            b[y * size + x] = p[2] as f32 / 255.0;
        }
    }
    out
}

/// One photo, USM-sharpened on first use when `cfg.usm` (whole photo, 8-bit result): the
/// per-sample work then skips the six 51-tap passes of the sharpening, about a fifth of the cost
/// of a pair, and loading stays fast. Compared with sharpening each crop, only pixels within
/// 50 px of a crop border differ (they see the real neighbourhood instead of a reflection), and
/// the target is rounded to 8 bit. The result does not depend on when or where it is computed.
struct Photo {
    raw: Mutex<Option<image::RgbImage>>,
    ready: OnceLock<image::RgbImage>,
}

impl Photo {
    fn new(img: image::RgbImage) -> Self {
        Self {
            raw: Mutex::new(Some(img)),
            ready: OnceLock::new(),
        }
    }

    fn get(&self, usm: bool) -> &image::RgbImage {
        self.ready.get_or_init(|| {
            let img = self
                .raw
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .expect("a photo is prepared once");
            if usm {
                usm_sharpen(&PlanarImage::from_rgb8(&img)).to_rgb8()
            } else {
                img
            }
        })
    }
}

/// HR photos in memory (8-bit RGB, USM-sharpened once on first use when `cfg.usm`) and the
/// degradation config; hands out deterministic pairs.
pub struct PairSampler {
    images: Vec<Photo>,
    paths: Vec<PathBuf>,
    cfg: DegradeConfig,
}

impl PairSampler {
    /// Loads every image of `dir` (png, jpg, jpeg, webp; other files are ignored). Unreadable or
    /// corrupt images are skipped and returned with their file name.
    ///
    /// # Errors
    /// Missing folder, unlistable folder, or no readable image.
    pub fn from_dir(
        dir: &Path,
        cfg: DegradeConfig,
    ) -> Result<(Self, Vec<SkippedFile>), DegradeError> {
        let files = list_images(dir)?;
        let (good, bad) = load_images(&files);
        if good.is_empty() {
            return Err(DegradeError::NoImages {
                path: dir.to_path_buf(),
                skipped: bad.len(),
            });
        }
        let (paths, images): (Vec<PathBuf>, Vec<image::RgbImage>) = good.into_iter().unzip();
        let images = images.into_iter().map(Photo::new).collect();
        Ok((Self { images, paths, cfg }, bad))
    }

    /// A sampler over images already in memory.
    ///
    /// # Panics
    /// If `images` is empty.
    pub fn from_images(images: Vec<image::RgbImage>, cfg: DegradeConfig) -> Self {
        assert!(!images.is_empty(), "PairSampler needs at least one image");
        let paths = (0..images.len())
            .map(|i| PathBuf::from(format!("image{i}")))
            .collect();
        let images = images.into_iter().map(Photo::new).collect();
        Self { images, paths, cfg }
    }

    /// Prepares (USM-sharpens) every photo now, in parallel, instead of on first use; call it
    /// before timing or when the first batches must not be slow.
    pub fn prepare_all(&self) {
        self.images.par_iter().for_each(|p| {
            p.get(self.cfg.usm);
        });
    }

    /// Number of HR photos.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when there is no photo (never, for a constructed sampler).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Paths of the photos, in index order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The config.
    pub fn config(&self) -> &DegradeConfig {
        &self.cfg
    }

    /// Pair number `index` of stream `seed`: picks a photo uniformly, a uniform `crop_hr` crop
    /// (reflect-padded when the photo is smaller), a horizontal flip with p 0.5, and degrades it
    /// ([`degrade_presharpened`]: the photo was sharpened once, on its first use), with
    /// [`DegradeConfig::clean`] instead for a fraction `clean_prob` of the pairs.
    /// Deterministic in `(seed, index)`, whatever thread runs it.
    ///
    /// # Panics
    /// If `crop_hr` is not a positive multiple of the scale.
    pub fn sample(&self, crop_hr: usize, seed: u64, index: u64) -> DegradedPair {
        self.draw(crop_hr, seed, index, false).0
    }

    /// Pair number `index` of stream `seed` (exactly [`sample`](Self::sample)) and its twin:
    /// the same drawn degradation plan (regimes, masks, kernels, noise σ maps, JPEG qualities,
    /// final order, clean or not) executed on a crop of another photo (another crop of the same
    /// photo when there is only one), with fresh noise realisations. Only the degradation is
    /// shared, so a code inferred from the first LR that helps reconstruct the second carries
    /// degradation, not content (ReDSR's cross-reconstruction).
    ///
    /// # Panics
    /// As [`sample`](Self::sample).
    pub fn sample_twin(
        &self,
        crop_hr: usize,
        seed: u64,
        index: u64,
    ) -> (DegradedPair, DegradedPair) {
        let (a, b) = self.draw(crop_hr, seed, index, true);
        (a, b.expect("a twin was asked for"))
    }

    fn draw(
        &self,
        crop_hr: usize,
        seed: u64,
        index: u64,
        twin: bool,
    ) -> (DegradedPair, Option<DegradedPair>) {
        let s = self.cfg.scale;
        assert!(
            crop_hr >= s && crop_hr % s == 0,
            "crop_hr {crop_hr} must be a positive multiple of the scale {s}"
        );
        let mut rng = rng_for(seed, index);
        let first = rng.random_range(0..self.images.len());
        let crop = self.random_crop(&mut rng, first, crop_hr);
        let deg_seed = rng.random();
        let cfg = if self.cfg.clean_prob > 0.0 && rng.random::<f64>() < self.cfg.clean_prob {
            self.cfg.clean()
        } else {
            self.cfg.clone()
        };
        let pair = degrade_presharpened(&crop, &cfg, deg_seed);
        if !twin {
            return (pair, None);
        }
        // Drawn after everything the first pair uses, so the first pair is the same with or
        // without its twin.
        let n = self.images.len();
        let other = if n > 1 {
            (first + rng.random_range(1..n)) % n
        } else {
            first
        };
        let crop2 = self.random_crop(&mut rng, other, crop_hr);
        let plan = draw_plan(&mut rng_for(deg_seed, 0), crop2.height, crop2.width, &cfg);
        let twin = execute_presharpened(&crop2, &plan, &cfg, &mut rng_for(deg_seed, 1));
        (pair, Some(twin))
    }

    fn random_crop(&self, rng: &mut ChaCha8Rng, photo: usize, crop_hr: usize) -> PlanarImage {
        let img = self.images[photo].get(self.cfg.usm);
        let (w, h) = (img.width() as usize, img.height() as usize);
        let x0 = rng.random_range(0..=w.saturating_sub(crop_hr));
        let y0 = rng.random_range(0..=h.saturating_sub(crop_hr));
        let flip = rng.random::<bool>();
        crop_rgb8(img, x0, y0, crop_hr, flip)
    }

    /// Twin pairs `first_index .. first_index + n` of stream `seed`
    /// ([`sample_twin`](Self::sample_twin)), in parallel.
    pub fn twin_batch(
        &self,
        n: usize,
        crop_hr: usize,
        seed: u64,
        first_index: u64,
    ) -> Vec<(DegradedPair, DegradedPair)> {
        (0..n as u64)
            .into_par_iter()
            .map(|i| self.sample_twin(crop_hr, seed, first_index + i))
            .collect()
    }

    /// Pairs `first_index .. first_index + n` of stream `seed`, computed in parallel (rayon);
    /// identical to calling [`sample`](Self::sample) on each index.
    pub fn batch(
        &self,
        n: usize,
        crop_hr: usize,
        seed: u64,
        first_index: u64,
    ) -> Vec<DegradedPair> {
        (0..n as u64)
            .into_par_iter()
            .map(|i| self.sample(crop_hr, seed, first_index + i))
            .collect()
    }

    /// Quintile edges of `noise_sigma` over every LR pixel of `n` pairs (stream `seed`): the
    /// calibration behind [`DegradeConfig::noise_bin_edges`](super::DegradeConfig).
    pub fn noise_quintiles(&self, n: usize, crop_hr: usize, seed: u64) -> [f32; 4] {
        let mut v: Vec<f32> = self
            .batch(n, crop_hr, seed, 0)
            .iter()
            .flat_map(|p| p.maps.noise_sigma.iter().copied())
            .collect();
        v.sort_by(f32::total_cmp);
        std::array::from_fn(|i| v[(v.len() * (i + 1) / 5).min(v.len().saturating_sub(1))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Crops inside the photo (straight copy) and crossing its border (reflect-101) both equal
    /// per-pixel lookups, with and without the flip.
    #[test]
    fn crop_matches_pixel_lookup() {
        let img = image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 5) as u8, (y * 7) as u8, ((x * y) % 251) as u8])
        });
        for (x0, y0, size) in [(3usize, 2usize, 16usize), (30, 20, 16), (0, 0, 30)] {
            for flip in [false, true] {
                let c = crop_rgb8(&img, x0, y0, size, flip);
                for y in 0..size {
                    for x in 0..size {
                        let xx = if flip { size - 1 - x } else { x };
                        let sx = super::super::filter::reflect101((x0 + xx) as isize, 40);
                        let sy = super::super::filter::reflect101((y0 + y) as isize, 30);
                        let p = img.get_pixel(sx as u32, sy as u32);
                        for ch in 0..3 {
                            assert_eq!(c.at(ch, y, x), p.0[ch] as f32 / 255.0);
                        }
                    }
                }
            }
        }
    }

    /// A textured photo for the sampler tests.
    fn photo() -> image::RgbImage {
        image::RgbImage::from_fn(160, 128, |x, y| {
            let v = |a: f32| (127.5 + 100.0 * a.sin()) as u8;
            image::Rgb([
                v(x as f32 * 0.11 + y as f32 * 0.05),
                v(x as f32 * 0.07 - y as f32 * 0.13),
                v((x * y) as f32 * 0.003),
            ])
        })
    }

    /// With `clean_prob` the degraded pairs are byte-identical to the recipe's (the draw comes
    /// last), the clean ones carry no noise and their LR is a plain downscale of the target
    /// (within 8-bit rounding and the resize kernels' differences: compared with a 4×4 box mean),
    /// and their share is close to `clean_prob`.
    #[test]
    fn clean_pairs_are_a_plain_downscale_and_keep_the_other_pairs() {
        let plain = DegradeConfig {
            usm: false,
            ..DegradeConfig::default()
        };
        let mixed = DegradeConfig {
            clean_prob: 0.4,
            ..plain.clone()
        };
        let a = PairSampler::from_images(vec![photo()], plain);
        let b = PairSampler::from_images(vec![photo()], mixed);
        let n = 120;
        let mut clean = 0;
        for i in 0..n {
            let (pa, pb) = (a.sample(32, 7, i), b.sample(32, 7, i));
            if pb.maps.noise_sigma.iter().all(|&s| s == 0.0) {
                clean += 1;
                assert!(pa.maps.noise_sigma.iter().any(|&s| s > 0.0));
                assert_eq!(pb.hr.data, pa.hr.data);
                let (h, w) = (pb.lr.height, pb.lr.width);
                let mut se = 0.0f64;
                for c in 0..3 {
                    for y in 0..h {
                        for x in 0..w {
                            let mut m = 0.0;
                            for dy in 0..4 {
                                for dx in 0..4 {
                                    m += pb.hr.at(c, 4 * y + dy, 4 * x + dx) / 16.0;
                                }
                            }
                            se += ((pb.lr.at(c, y, x) - m) as f64).powi(2);
                        }
                    }
                }
                let psnr = -10.0 * (se / (3 * h * w) as f64).log10();
                assert!(
                    psnr > 30.0,
                    "pair {i}: clean LR {psnr:.1} dB from the box mean"
                );
            } else {
                assert_eq!(pb.lr.data, pa.lr.data, "pair {i} changed");
            }
        }
        let share = clean as f64 / n as f64;
        assert!((0.25..0.55).contains(&share), "clean share {share}");
    }

    /// A twin shares the first pair's degradation and nothing else: the first pair equals
    /// `sample`'s, the twin's maps (noise σ, blur σ, JPEG qualities, regimes) equal the first
    /// pair's, its content comes from the other photo, and its noise is a fresh realisation
    /// (the same plan run on the same crop again gives the same maps and another LR).
    #[test]
    fn twins_share_the_degradation_not_the_content() {
        let cfg = DegradeConfig {
            usm: false,
            ..DegradeConfig::default()
        };
        let flat = image::RgbImage::from_pixel(160, 128, image::Rgb([128, 128, 128]));
        let s = PairSampler::from_images(vec![photo(), flat], cfg.clone());
        let mut noisy_twins = 0;
        for i in 0..12 {
            let (a, b) = s.sample_twin(64, 3, i);
            let plain = s.sample(64, 3, i);
            assert_eq!(a.lr.data, plain.lr.data, "pair {i}: the first pair changed");
            assert_eq!(a.hr.data, plain.hr.data);
            assert_eq!(a.maps.jpeg_q1, b.maps.jpeg_q1, "pair {i}");
            assert_eq!(a.maps.jpeg_q2, b.maps.jpeg_q2, "pair {i}");
            assert_eq!(a.maps.regime, b.maps.regime, "pair {i}");
            assert_eq!(a.maps.blur_sigma, b.maps.blur_sigma, "pair {i}");
            // The noise map is measured on the LR and Poisson noise scales with the signal, so
            // twins share where noise is, not its values.
            let noisy = |v: &[f32]| v.iter().map(|&s| s > 0.0).collect::<Vec<_>>();
            assert_eq!(
                noisy(&a.maps.noise_sigma),
                noisy(&b.maps.noise_sigma),
                "pair {i}"
            );
            assert_ne!(
                a.hr.data, b.hr.data,
                "pair {i}: the twin has the same content"
            );
            // One HR is the flat photo: the twin's content is the other one.
            let flat = |v: &[f32]| v.iter().all(|&x| (x - v[0]).abs() < 1e-3);
            let (flat_a, flat_b) = (flat(&a.hr.data), flat(&b.hr.data));
            assert!(flat_a != flat_b, "pair {i}: both crops from one photo");
            if a.maps.noise_sigma.iter().any(|&v| v > 0.5) {
                noisy_twins += 1;
                let plan = draw_plan(&mut rng_for(0, 0), 64, 64, &cfg);
                let hr = if flat_b { &b.hr } else { &a.hr };
                let r1 = execute_presharpened(hr, &plan, &cfg, &mut rng_for(1, 1));
                let r2 = execute_presharpened(hr, &plan, &cfg, &mut rng_for(1, 2));
                if r1.maps.noise_sigma.iter().any(|&v| v > 0.5) {
                    assert_ne!(r1.lr.data, r2.lr.data, "the noise was not redrawn");
                }
            }
        }
        assert!(noisy_twins > 0, "no noisy pair in 12");
    }
}
