//! Representation probes (`savl-method.md` §8, the paper's Table 1) on the frozen degradation
//! code μ of an ONNX model, run through the `savl` runtime.
//!
//! Data: the exact-label probe generator ([`crate::degrade::probe`]) applied to a folder of
//! photos (by default Set14, which is disjoint from the training photos). Features: μ averaged
//! over each 8×8 LR patch (patches lie inside one constant-label cell by construction).
//!
//! * **Noise-level accuracy** (5 classes, chance 20 %): a multinomial logistic regression
//!   ([`LogisticProbe`], plain full-batch gradient descent on standardised features) trained on
//!   the patches of two thirds of the images and scored on the patches of the held-out third
//!   (every third image), so no test content is seen in training.
//! * **Scene-ID accuracy** (2 classes, chance 50 %, lower = less content in μ): images are taken
//!   in pairs, cropped to a common size and degraded with *identical* maps and noise seed; the
//!   classifier predicts which photo a patch came from. Patch positions are split at random into
//!   halves, so train and test hold both scenes at the same positions with the same degradation.
//!   The figure is the accuracy over all pairs' held-out patches.
//! * **Spearman ρ** between the model's severity map and the ground-truth σ_n map, per LR pixel,
//!   pooled over the noise-probe images (ties get average ranks).
//!
//! A control row uses hand-made statistics of each LR patch instead of μ (mean, std and
//! high-pass RMS per channel): what a trivial estimator gets from the same data.

use crate::degrade::probe::{probe_degrade, ProbeConfig, ProbeMaps};
use crate::degrade::rng_for;
use crate::image::PlanarImage;
use rand::seq::SliceRandom;
use std::path::PathBuf;

/// Options of [`LogisticProbe::fit`].
#[derive(Clone, Copy, Debug)]
pub struct FitOptions {
    /// Gradient-descent steps (full batch).
    pub iters: usize,
    /// Step size.
    pub lr: f64,
    /// L2 penalty on the weights (not the biases).
    pub l2: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            iters: 1500,
            lr: 0.5,
            l2: 1e-4,
        }
    }
}

/// A multinomial logistic regression on standardised features.
#[derive(Clone, Debug)]
pub struct LogisticProbe {
    /// Feature dimension.
    pub dim: usize,
    /// Number of classes.
    pub classes: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `classes × (dim + 1)`, bias last.
    weights: Vec<f64>,
}

impl LogisticProbe {
    /// Fits on `x` (row-major `n × dim`) and labels `y` in `0..classes` by gradient descent on
    /// the mean cross-entropy plus `l2/2 · |W|²`.
    ///
    /// # Panics
    /// If the shapes disagree, `x` is empty, or a label is out of range.
    pub fn fit(x: &[f32], y: &[usize], dim: usize, classes: usize, opt: FitOptions) -> Self {
        let n = y.len();
        assert!(n > 0 && dim > 0 && classes > 1, "empty probe data");
        assert_eq!(x.len(), n * dim, "feature matrix shape");
        assert!(y.iter().all(|&c| c < classes), "label out of range");
        let mut mean = vec![0.0; dim];
        for r in x.chunks_exact(dim) {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0; dim];
        for r in x.chunks_exact(dim) {
            for j in 0..dim {
                var[j] += (r[j] as f64 - mean[j]).powi(2);
            }
        }
        let scale: Vec<f64> = var
            .iter()
            .map(|v| {
                let s = (v / n as f64).sqrt();
                if s > 1e-12 {
                    1.0 / s
                } else {
                    0.0
                }
            })
            .collect();
        let mut p = Self {
            dim,
            classes,
            mean,
            scale,
            weights: vec![0.0; classes * (dim + 1)],
        };
        let z: Vec<f64> = x.chunks_exact(dim).flat_map(|r| p.standardise(r)).collect();
        let stride = dim + 1;
        let mut grad = vec![0.0; p.weights.len()];
        let mut prob = vec![0.0; classes];
        for _ in 0..opt.iters {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for (i, &yi) in y.iter().enumerate() {
                let zi = &z[i * dim..(i + 1) * dim];
                p.softmax_std(zi, &mut prob);
                for c in 0..classes {
                    let e = prob[c] - if c == yi { 1.0 } else { 0.0 };
                    let g = &mut grad[c * stride..(c + 1) * stride];
                    for j in 0..dim {
                        g[j] += e * zi[j];
                    }
                    g[dim] += e;
                }
            }
            for c in 0..classes {
                for j in 0..stride {
                    let k = c * stride + j;
                    let reg = if j < dim { opt.l2 * p.weights[k] } else { 0.0 };
                    p.weights[k] -= opt.lr * (grad[k] / n as f64 + reg);
                }
            }
        }
        p
    }

    fn standardise(&self, r: &[f32]) -> Vec<f64> {
        r.iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(v, (m, s))| (*v as f64 - m) * s)
            .collect()
    }

    fn softmax_std(&self, z: &[f64], out: &mut [f64]) {
        let stride = self.dim + 1;
        let mut mx = f64::NEG_INFINITY;
        for c in 0..self.classes {
            let w = &self.weights[c * stride..(c + 1) * stride];
            let s = w[self.dim] + w[..self.dim].iter().zip(z).map(|(a, b)| a * b).sum::<f64>();
            out[c] = s;
            mx = mx.max(s);
        }
        let mut tot = 0.0;
        for o in out.iter_mut() {
            *o = (*o - mx).exp();
            tot += *o;
        }
        out.iter_mut().for_each(|o| *o /= tot);
    }

    /// The most probable class of one feature row.
    pub fn predict(&self, row: &[f32]) -> usize {
        let mut prob = vec![0.0; self.classes];
        self.softmax_std(&self.standardise(row), &mut prob);
        (0..self.classes)
            .max_by(|&a, &b| prob[a].total_cmp(&prob[b]))
            .unwrap_or(0)
    }

    /// Fraction of rows of `x` whose prediction equals `y`.
    pub fn accuracy(&self, x: &[f32], y: &[usize]) -> f64 {
        if y.is_empty() {
            return f64::NAN;
        }
        let hits = x
            .chunks_exact(self.dim)
            .zip(y)
            .filter(|(r, &c)| self.predict(r) == c)
            .count();
        hits as f64 / y.len() as f64
    }
}

/// Ranks (1-based) with ties given their average rank.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; NaN when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "pearson: lengths");
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman rank correlation (Pearson on average ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Means of `planes` (`d × h × w`) over each full `p × p` patch, row-major over the patch grid:
/// `(features n × d, patch grid rows, patch grid cols)`.
pub fn pool_patches(
    planes: &[f32],
    d: usize,
    h: usize,
    w: usize,
    p: usize,
) -> (Vec<f32>, usize, usize) {
    assert_eq!(planes.len(), d * h * w, "pool_patches: shape");
    let (ph, pw) = (h / p, w / p);
    let mut out = vec![0f32; ph * pw * d];
    let inv = 1.0 / (p * p) as f32;
    for c in 0..d {
        let plane = &planes[c * h * w..(c + 1) * h * w];
        for py in 0..ph {
            for px in 0..pw {
                let mut s = 0.0f32;
                for y in py * p..(py + 1) * p {
                    s += plane[y * w + px * p..y * w + (px + 1) * p]
                        .iter()
                        .sum::<f32>();
                }
                out[(py * pw + px) * d + c] = s * inv;
            }
        }
    }
    (out, ph, pw)
}

/// Number of control features per patch: [`pixel_stats_patches`].
pub const CONTROL_DIM: usize = 9;

/// The control features of each full `p × p` patch: per channel the mean, the std, and the RMS of
/// the high-pass residual `x − box3(x)` (a crude noise estimator), 9 features.
pub fn pixel_stats_patches(img: &PlanarImage, p: usize) -> (Vec<f32>, usize, usize) {
    let (h, w) = (img.height, img.width);
    let sq: Vec<f32> = img.data.iter().map(|v| v * v).collect();
    let mut hp2 = Vec::with_capacity(img.data.len());
    for c in 0..3 {
        let plane = img.plane(c);
        let lo = crate::degrade::filter::box_mean(plane, h, w, 1);
        hp2.extend(plane.iter().zip(&lo).map(|(a, b)| (a - b) * (a - b)));
    }
    let (m, ph, pw) = pool_patches(&img.data, 3, h, w, p);
    let (m2, _, _) = pool_patches(&sq, 3, h, w, p);
    let (r2, _, _) = pool_patches(&hp2, 3, h, w, p);
    let mut out = Vec::with_capacity(ph * pw * CONTROL_DIM);
    for i in 0..ph * pw {
        for c in 0..3 {
            out.push(m[i * 3 + c]);
        }
        for c in 0..3 {
            let v = (m2[i * 3 + c] - m[i * 3 + c].powi(2)).max(0.0);
            out.push(v.sqrt());
        }
        for c in 0..3 {
            out.push(r2[i * 3 + c].sqrt());
        }
    }
    (out, ph, pw)
}

/// Where the probe features come from.
pub enum Features {
    /// μ (and severity) of a model run through the `savl` runtime.
    Model {
        /// Row label.
        label: String,
        /// The loaded model.
        upscaler: Box<savl::Upscaler>,
    },
    /// Hand-made patch statistics (no model), [`pixel_stats_patches`].
    PixelStats,
}

impl Features {
    /// Row label.
    pub fn label(&self) -> String {
        match self {
            Features::Model { label, .. } => label.clone(),
            Features::PixelStats => "control: LR patch mean, std, high-pass RMS (no model)".into(),
        }
    }

    /// Pooled features `n × dim` of an LR image and, for a model, its severity map.
    fn extract(
        &self,
        lr: &PlanarImage,
        p: usize,
    ) -> anyhow::Result<(Vec<f32>, usize, Option<Vec<f32>>)> {
        match self {
            Features::PixelStats => Ok((pixel_stats_patches(lr, p).0, CONTROL_DIM, None)),
            Features::Model { upscaler, .. } => {
                let est = upscaler.estimate(&lr.to_rgb8())?;
                let (f, _, _) = pool_patches(&est.mu, est.dim, est.height, est.width, p);
                Ok((f, est.dim, Some(est.severity)))
            }
        }
    }
}

/// Settings of a probe run.
#[derive(Clone, Debug)]
pub struct ProbeRunConfig {
    /// The generator's knobs.
    pub gen: ProbeConfig,
    /// Pooling patch side, LR px (divides `gen.cell`).
    pub patch: usize,
    /// Seed of the maps, noise and splits.
    pub seed: u64,
    /// Degraded copies of each image for the noise probe (different maps and noise).
    pub repeats: usize,
    /// Classifier options.
    pub fit: FitOptions,
}

impl Default for ProbeRunConfig {
    fn default() -> Self {
        Self {
            gen: ProbeConfig::default(),
            patch: 8,
            seed: 0,
            repeats: 2,
            fit: FitOptions::default(),
        }
    }
}

/// One row of the probe table.
#[derive(Clone, Debug)]
pub struct ProbeRow {
    /// Model or control.
    pub label: String,
    /// Held-out noise-level accuracy (0..1).
    pub noise_acc: f64,
    /// Held-out scene-ID accuracy (0..1).
    pub scene_acc: f64,
    /// Spearman ρ(severity, σ_n); `None` without a severity output.
    pub spearman: Option<f64>,
    /// Test patches of the noise probe / of the scene probe.
    pub n_test: (usize, usize),
}

/// HR photos of the probe set, as loaded and modcropped.
pub struct ProbeSet {
    /// `(name, HR)`.
    pub images: Vec<(String, PlanarImage)>,
}

impl ProbeSet {
    /// Loads every image of `dir` (sorted by name), cropped at the top-left to a multiple of
    /// `scale · 16` px (whole JPEG MCUs and 8×8 patches at LR; edge cells may be partial).
    pub fn load(dir: &std::path::Path, cfg: &ProbeConfig) -> anyhow::Result<Self> {
        let m = cfg.scale * 16;
        let mut images = Vec::new();
        for p in crate::degrade::sampler::list_images(dir)? {
            let img = PlanarImage::load(&p)?;
            let (h, w) = (img.height / m * m, img.width / m * m);
            if h == 0 || w == 0 {
                continue;
            }
            images.push((file_name(&p), img.crop(0, 0, w, h)));
        }
        anyhow::ensure!(images.len() >= 3, "the probe set needs at least 3 images");
        Ok(Self { images })
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Centre crop of `img` to `h × w`.
fn centre(img: &PlanarImage, h: usize, w: usize) -> PlanarImage {
    img.crop((img.width - w) / 2, (img.height - h) / 2, w, h)
}

/// Runs the three probes for one feature source.
///
/// # Errors
/// When the model cannot produce μ (no `mu` output) or fails on an image.
pub fn run_probes(
    feats: &Features,
    set: &ProbeSet,
    cfg: &ProbeRunConfig,
) -> anyhow::Result<ProbeRow> {
    let p = cfg.patch;
    anyhow::ensure!(
        p > 0 && cfg.gen.cell % p == 0,
        "patch must divide the cell size"
    );
    // Noise-level probe and Spearman.
    let (mut xtr, mut ytr, mut xte, mut yte) = (vec![], vec![], vec![], vec![]);
    let (mut sev_all, mut sig_all) = (vec![], vec![]);
    let mut dim = 0;
    for (i, (_, hr)) in set.images.iter().enumerate() {
        for r in 0..cfg.repeats {
            let s = cfg.seed ^ ((i as u64) << 8 | r as u64).wrapping_mul(0x9E37_79B9);
            let (h, w) = (hr.height / cfg.gen.scale, hr.width / cfg.gen.scale);
            let maps = ProbeMaps::draw(h, w, &cfg.gen, s);
            let sample = probe_degrade(hr, &maps, &cfg.gen, s);
            let (f, d, sev) = feats.extract(&sample.lr, p)?;
            dim = d;
            let pw = w / p;
            let labels: Vec<usize> = (0..f.len() / d)
                .map(|k| sample.noise_level[(k / pw) * p * w + (k % pw) * p] as usize)
                .collect();
            if i % 3 == 2 {
                xte.extend_from_slice(&f);
                yte.extend(labels);
            } else {
                xtr.extend_from_slice(&f);
                ytr.extend(labels);
            }
            if let Some(sev) = sev {
                sev_all.extend(sev.iter().map(|&v| v as f64));
                sig_all.extend(sample.noise_sigma.iter().map(|&v| v as f64));
            }
        }
    }
    let probe = LogisticProbe::fit(&xtr, &ytr, dim, 5, cfg.fit);
    let noise_acc = probe.accuracy(&xte, &yte);
    let spearman = (!sev_all.is_empty()).then(|| spearman(&sev_all, &sig_all));

    // Scene-ID probe: pairs (0,1), (2,3), … with identical maps and noise seed.
    let (mut hits, mut total) = (0usize, 0usize);
    let m = cfg.gen.scale * 16;
    for (k, pair) in set.images.chunks_exact(2).enumerate() {
        let (a, b) = (&pair[0].1, &pair[1].1);
        let (h, w) = (a.height.min(b.height) / m * m, a.width.min(b.width) / m * m);
        let (a, b) = (centre(a, h, w), centre(b, h, w));
        let s = cfg.seed ^ (0x5CE7E ^ k as u64).wrapping_mul(0x2545_F491);
        let maps = ProbeMaps::draw(h / cfg.gen.scale, w / cfg.gen.scale, &cfg.gen, s);
        let fa = feats.extract(&probe_degrade(&a, &maps, &cfg.gen, s).lr, p)?;
        let fb = feats.extract(&probe_degrade(&b, &maps, &cfg.gen, s).lr, p)?;
        let d = fa.1;
        let n = fa.0.len() / d;
        let mut pos: Vec<usize> = (0..n).collect();
        pos.shuffle(&mut rng_for(s, 0x5917));
        let (tr, te) = pos.split_at(n / 2);
        let gather = |idx: &[usize]| {
            let mut x = Vec::with_capacity(idx.len() * 2 * d);
            let mut y = Vec::with_capacity(idx.len() * 2);
            for &i in idx {
                x.extend_from_slice(&fa.0[i * d..(i + 1) * d]);
                y.push(0);
                x.extend_from_slice(&fb.0[i * d..(i + 1) * d]);
                y.push(1);
            }
            (x, y)
        };
        let (xa, ya) = gather(tr);
        let (xb, yb) = gather(te);
        let clf = LogisticProbe::fit(&xa, &ya, d, 2, cfg.fit);
        let acc = clf.accuracy(&xb, &yb);
        hits += (acc * yb.len() as f64).round() as usize;
        total += yb.len();
    }
    Ok(ProbeRow {
        label: feats.label(),
        noise_acc,
        scene_acc: hits as f64 / total.max(1) as f64,
        spearman,
        n_test: (yte.len(), total),
    })
}

/// A model listed for the probe table that could not be measured, and why.
#[derive(Clone, Debug)]
pub struct Unmeasured {
    /// Row label.
    pub label: String,
    /// Why.
    pub reason: String,
}

/// The probe table as Markdown, with the paper's reference row first.
pub fn probe_markdown(rows: &[ProbeRow], missing: &[Unmeasured]) -> String {
    let mut s = String::from(
        "| features | noise-level acc ↑ (5 bins, chance 20 %) | scene-ID acc ↓ (2 scenes, chance 50 %) | Spearman ρ(severity, σ_n) ↑ |\n|---|---|---|---|\n",
    );
    s.push_str("| paper, full SAVL (Table 1) | 94.80 % | 49.97 % | — |\n");
    s.push_str("| paper, w/o SAVL (deterministic) | 81.48 % | 94.04 % | — |\n");
    s.push_str("| paper, w/o SAVL + CLUB | 20.00 % | 36.44 % | — |\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.2} % | {:.2} % | {} |\n",
            r.label,
            100.0 * r.noise_acc,
            100.0 * r.scene_acc,
            r.spearman.map_or("n/a".into(), |v| format!("{v:.3}"))
        ));
    }
    for m in missing {
        s.push_str(&format!(
            "| {} | not measured | not measured | {} |\n",
            m.label, m.reason
        ));
    }
    s
}

/// A model argument: `LABEL=PATH` or a bare path (label = file stem).
pub fn parse_model_arg(s: &str) -> (String, PathBuf) {
    match s.split_once('=') {
        Some((l, p)) => (l.to_string(), PathBuf::from(p)),
        None => {
            let p = PathBuf::from(s);
            (file_name(&p), p)
        }
    }
}
