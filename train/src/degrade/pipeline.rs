//! Execution of a [`Plan`]: the Real-ESRGAN second-order stage order (§1.3–1.6) with the
//! mask-driven blur, noise and JPEG of §3.4–3.6, and the LR ground-truth maps of §3.7.

use super::filter::{
    box_mean, conv_accumulate_fast, gaussian_blur_in, plan_separable, support_box, trimmed,
    SeparableKernel, SEPARABLE_TOL,
};
use super::jpeg::{jpeg, mcu_qualities, mcu_to_pixels};
use super::kernels::Kernel;
use super::masks::Masks;
use super::noise::{noise_field, NoiseMaps};
use super::plan::{defocus_levels, FinalOrder, NoiseKind, NoiseParams, Plan};
use super::resize::{resize, resize_masks, resize_nearest};
use super::usm::usm_sharpen;
use super::{DegradationInfo, DegradationMaps, DegradeConfig, DegradedPair};
use crate::image::PlanarImage;
use rand::Rng;

/// `Σ_k w_k(u)·(K_k ⊛ img)(u)` on every plane (§3.4 mode A). Identical kernels across regimes
/// are applied once without masks.
pub fn blend_conv(img: &PlanarImage, masks: &Masks, kernels: &[&Kernel]) -> PlanarImage {
    let (h, w) = (img.height, img.width);
    assert_eq!((masks.height, masks.width), (h, w), "masks on another grid");
    if kernels.iter().all(|k| k.is_pulse()) {
        return img.clone();
    }
    let uniform = kernels.windows(2).all(|p| p[0] == p[1]);
    // Trimming and factorising each move an output in [0, 1] by at most SEPARABLE_TOL / 2 and
    // SEPARABLE_TOL: together under half an 8-bit step.
    let trim: Vec<Kernel> = kernels
        .iter()
        .map(|k| trimmed(k, SEPARABLE_TOL / 2.0))
        .collect();
    let kernels: Vec<&Kernel> = trim.iter().collect();
    let seps: Vec<Option<SeparableKernel>> = kernels
        .iter()
        .take(if uniform { 1 } else { kernels.len() })
        .map(|k| plan_separable(k))
        .collect();
    let mut out = PlanarImage::zeros(img.channels, h, w);
    for c in 0..img.channels {
        let src = img.plane(c);
        let dst = out.plane_mut(c);
        if uniform {
            conv_accumulate_fast(src, h, w, kernels[0], seps[0].as_ref(), None, dst);
        } else {
            for (k, kern) in kernels.iter().enumerate() {
                conv_accumulate_fast(
                    src,
                    h,
                    w,
                    kern,
                    seps[k].as_ref(),
                    Some(&masks.weights[k]),
                    dst,
                );
            }
        }
    }
    out
}

/// Per-pixel variance `Σ_k w_k σ_eq(K_k)²` of the blended kernel (its second moment).
fn blur_variance(masks: &Masks, kernels: &[&Kernel]) -> Vec<f32> {
    let v: Vec<f32> = kernels
        .iter()
        .map(|k| k.equivalent_sigma().powi(2))
        .collect();
    masks.blend(&v)
}

/// Mode-B defocus: per pixel, linear interpolation between the two neighbouring levels of a
/// Gaussian blur stack. Returns the image and the per-pixel variance of the blended kernel.
fn defocus_blur(img: &PlanarImage, sigma: &[f32]) -> (PlanarImage, Vec<f32>) {
    let (h, w) = (img.height, img.width);
    let lv = defocus_levels();
    let locate = |s: f32| -> (usize, f32) {
        let s = s.clamp(lv[0], lv[7]);
        let i = (0..7).find(|&i| s <= lv[i + 1]).unwrap_or(6);
        (i, (s - lv[i]) / (lv[i + 1] - lv[i]))
    };
    let pos: Vec<(usize, f32)> = sigma.iter().map(|&s| locate(s)).collect();
    let lo = pos.iter().map(|p| p.0).min().unwrap_or(0);
    let hi = pos.iter().map(|p| p.0 + 1).max().unwrap_or(1);
    let var: Vec<f32> = pos
        .iter()
        .map(|&(i, t)| (1.0 - t) * lv[i] * lv[i] + t * lv[i + 1] * lv[i + 1])
        .collect();
    // Each level is blurred only inside the bounding box of the pixels that blend it.
    let boxes: Vec<((usize, usize), (usize, usize))> = (lo..=hi)
        .map(|l| support_box(h, w, |j| pos[j].0 == l || pos[j].0 + 1 == l).unwrap_or_default())
        .collect();
    let mut out = PlanarImage::zeros(img.channels, h, w);
    for c in 0..img.channels {
        let levels: Vec<Vec<f32>> = (lo..=hi)
            .zip(&boxes)
            .map(|(l, &(rows, cols))| {
                gaussian_blur_in(img.plane(c), h, w, lv[l] as f64, rows, cols)
            })
            .collect();
        let dst = out.plane_mut(c);
        for (j, &(i, t)) in pos.iter().enumerate() {
            dst[j] = (1.0 - t) * levels[i - lo][j] + t * levels[i + 1 - lo][j];
        }
    }
    (out, var)
}

/// Per-pixel noise parameters from the regimes' noise on the masks' grid, with drift.
fn noise_maps(masks: &Masks, params: &[NoiseParams], drift: Option<(&[f32], f32)>) -> NoiseMaps {
    let per_regime = |f: fn(&NoiseParams) -> f32| -> Vec<f32> { params.iter().map(f).collect() };
    let g = per_regime(|p| match p.kind {
        NoiseKind::Gaussian(s) => s,
        _ => 0.0,
    });
    let p = per_regime(|p| match p.kind {
        NoiseKind::Poisson(s) => s,
        _ => 0.0,
    });
    let gray = per_regime(|p| if p.gray { 1.0 } else { 0.0 });
    let mut m = NoiseMaps {
        gauss_sigma: masks.blend(&g),
        poisson_scale: masks.blend(&p),
        gray: masks.blend(&gray),
    };
    if let Some((field, a)) = drift {
        for (i, &gv) in field.iter().enumerate() {
            let f = (1.0 + a * gv).max(0.0);
            m.gauss_sigma[i] *= f;
            m.poisson_scale[i] *= f;
        }
    }
    m.gray.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    m
}

fn add_clip(x: &mut PlanarImage, n: &PlanarImage) {
    x.data
        .iter_mut()
        .zip(&n.data)
        .for_each(|(v, &d)| *v = (*v + d).clamp(0.0, 1.0));
}

/// One plane holding, at pixel `(x, y)`, channel `(x + y) mod 3` of the 3-plane noise `n`.
/// Pushed through the linear stages instead of all three planes, its local mean square has the
/// same expectation as the 3-channel one (each channel is equally represented in any window
/// and the noise is independent across pixels) at a third of the filtering cost.
fn interleave_channels(n: &PlanarImage) -> PlanarImage {
    let (h, w) = (n.height, n.width);
    let mut out = PlanarImage::zeros(1, h, w);
    for y in 0..h {
        let o = &mut out.data[y * w..(y + 1) * w];
        for c in 0..3 {
            // Columns x with (x + y) mod 3 = c.
            let src = &n.plane(c)[y * w..(y + 1) * w];
            for x in ((c + 3 - y % 3) % 3..w).step_by(3) {
                o[x] = src[x];
            }
        }
    }
    out
}

fn add(x: &mut PlanarImage, n: &PlanarImage) {
    x.data.iter_mut().zip(&n.data).for_each(|(v, &d)| *v += d);
}

/// Runs `plan` on `hr` (3 planes, sides multiples of `cfg.scale`), drawing the noise from `rng`.
///
/// # Panics
/// If `hr` is not RGB, or a side is not a positive multiple of `cfg.scale`.
pub fn execute<R: Rng>(
    hr: &PlanarImage,
    plan: &Plan,
    cfg: &DegradeConfig,
    rng: &mut R,
) -> DegradedPair {
    execute_with(hr, plan, cfg, rng, true)
}

/// Like [`execute`], for an `hr` that is already USM-sharpened when `plan.usm` (the sampler
/// sharpens whole photos once at load time); `hr` is used as the target as is.
///
/// # Panics
/// As [`execute`].
pub fn execute_presharpened<R: Rng>(
    hr: &PlanarImage,
    plan: &Plan,
    cfg: &DegradeConfig,
    rng: &mut R,
) -> DegradedPair {
    execute_with(hr, plan, cfg, rng, false)
}

fn execute_with<R: Rng>(
    hr_in: &PlanarImage,
    plan: &Plan,
    cfg: &DegradeConfig,
    rng: &mut R,
    sharpen: bool,
) -> DegradedPair {
    let s = cfg.scale;
    let (hh, hw) = (hr_in.height, hr_in.width);
    assert_eq!(hr_in.channels, 3, "degrade wants RGB");
    assert!(
        s > 0 && hh >= s && hw >= s && hh % s == 0 && hw % s == 0,
        "HR sides must be multiples of the scale"
    );
    let (lh, lw) = (hh / s, hw / s);
    let hr = if plan.usm && sharpen {
        usm_sharpen(hr_in)
    } else {
        hr_in.clone()
    };
    let m0 = &plan.masks;
    let reg = &plan.regimes;
    // The size of a resize by `f` (at least one pixel a side).
    let scaled = |(h, w): (usize, usize), f: f64| {
        (
            ((h as f64 * f) as usize).max(1),
            ((w as f64 * f) as usize).max(1),
        )
    };
    // The regimes' `noise` on the grid `(h, w)` of masks `m`, with the drift field resized there.
    let noise_on = |m: &Masks, (h, w): (usize, usize), noise: Vec<NoiseParams>| {
        let drift = plan
            .drift
            .as_ref()
            .map(|(g, a)| (resize_masks(g, hh, hw, h, w), *a));
        noise_maps(m, &noise, drift.as_ref().map(|(g, a)| (&g[..], *a)))
    };

    // Stage 1 blur, at HR.
    let k1: Vec<&Kernel> = reg.iter().map(|r| &r.kernel1).collect();
    let (mut x, var1_hr) = match &plan.defocus {
        Some(d) => defocus_blur(&hr, &d.sigma),
        None => (blend_conv(&hr, m0, &k1), blur_variance(m0, &k1)),
    };

    // Resize 1 (scale_factor relative to HR).
    let (s1, mode1) = plan.shared.resize1;
    let (h1, w1) = scaled((hh, hw), s1);
    x = resize(&x, h1, w1, mode1);
    let m1 = m0.resized(h1, w1);

    // Noise 1.
    let nm1 = noise_on(&m1, (h1, w1), reg.iter().map(|r| r.noise1).collect());
    let n1 = noise_field(rng, &x, &nm1);
    add_clip(&mut x, &n1);
    let mut nf = interleave_channels(&n1);

    // JPEG 1.
    let q1: Vec<f32> = reg.iter().map(|r| r.q1).collect();
    let q1_px = if cfg.jpeg {
        let (f, q) = mcu_qualities(&m1, &q1);
        x = jpeg(&x, &f);
        mcu_to_pixels(&q, h1, w1)
    } else {
        vec![100.0; h1 * w1]
    };

    // Stage 2 blur, on grid 1.
    let k2: Vec<&Kernel> = reg.iter().map(|r| &r.kernel2).collect();
    x = blend_conv(&x, &m1, &k2);
    nf = blend_conv(&nf, &m1, &k2);
    let var2_g1 = blur_variance(&m1, &k2);

    // Resize 2 (relative to the LR size).
    let (s2, mode2) = plan.shared.resize2;
    let (h2, w2) = scaled((lh, lw), s2);
    x = resize(&x, h2, w2, mode2);
    nf = resize(&nf, h2, w2, mode2);
    let m2 = m0.resized(h2, w2);

    // Noise 2.
    let nm2 = noise_on(&m2, (h2, w2), reg.iter().map(|r| r.noise2).collect());
    let n2 = noise_field(rng, &x, &nm2);
    add_clip(&mut x, &n2);
    add(&mut nf, &interleave_channels(&n2));

    // Final stage.
    let ml = m0.resized(lh, lw);
    let kf: Vec<&Kernel> = reg.iter().map(|r| &r.final_kernel).collect();
    let q2: Vec<f32> = reg.iter().map(|r| r.q2).collect();
    let mode_f = plan.shared.final_mode;
    let q2_lr = match plan.shared.order {
        FinalOrder::ResizeSincJpeg => {
            x = blend_conv(&resize(&x, lh, lw, mode_f), &ml, &kf);
            nf = blend_conv(&resize(&nf, lh, lw, mode_f), &ml, &kf);
            if cfg.jpeg {
                let (f, q) = mcu_qualities(&ml, &q2);
                x = jpeg(&x, &f);
                mcu_to_pixels(&q, lh, lw)
            } else {
                vec![100.0; lh * lw]
            }
        }
        FinalOrder::JpegResizeSinc => {
            let q = if cfg.jpeg {
                let (f, q) = mcu_qualities(&m2, &q2);
                x = jpeg(&x, &f);
                resize_nearest(&mcu_to_pixels(&q, h2, w2), h2, w2, lh, lw)
            } else {
                vec![100.0; lh * lw]
            };
            x = blend_conv(&resize(&x, lh, lw, mode_f), &ml, &kf);
            nf = blend_conv(&resize(&nf, lh, lw, mode_f), &ml, &kf);
            q
        }
    };
    x.data
        .iter_mut()
        .for_each(|v| *v = (v.clamp(0.0, 1.0) * 255.0).round() / 255.0);

    // Maps at LR.
    let n_lr = lh * lw;
    let sq: Vec<f32> = nf.data.iter().map(|&v| v * v).collect();
    let noise_sigma: Vec<f32> = box_mean(&sq, lh, lw, 3)
        .into_iter()
        .map(|v| v.max(0.0).sqrt() * 255.0)
        .collect();
    let var1 = resize_masks(&var1_hr, hh, hw, lh, lw);
    let var2 = resize_masks(&var2_g1, h1, w1, lh, lw);
    let varf = blur_variance(&ml, &kf);
    let g1_px = hh as f32 / h1 as f32; // HR px per grid-1 px
    let sf = s as f32;
    let blur_sigma = (0..n_lr)
        .map(|i| {
            (var1[i] / (sf * sf) + var2[i] * (g1_px / sf).powi(2) + varf[i])
                .max(0.0)
                .sqrt()
        })
        .collect();
    let to_u8 = |v: Vec<f32>| {
        v.into_iter()
            .map(|q| q.round().clamp(0.0, 255.0) as u8)
            .collect::<Vec<u8>>()
    };
    let jpeg_q1 = to_u8(resize_nearest(&q1_px, h1, w1, lh, lw));
    let jpeg_q2 = to_u8(q2_lr);
    let noise_bin = noise_sigma
        .iter()
        .map(|&v| cfg.noise_bin_edges.iter().filter(|&&e| v >= e).count() as u8)
        .collect();
    let nm1_lr_g: Vec<f32> = {
        let g: Vec<f32> = reg
            .iter()
            .map(|r| matches!(r.noise1.kind, NoiseKind::Gaussian(_)) as u8 as f32)
            .collect();
        ml.blend(&g)
    };
    let gray_frac = ml.blend(
        &reg.iter()
            .map(|r| r.noise1.gray as u8 as f32)
            .collect::<Vec<_>>(),
    );
    let maps = DegradationMaps {
        height: lh,
        width: lw,
        noise_sigma,
        blur_sigma,
        jpeg_q1,
        jpeg_q2,
        regime: ml.argmax(),
        noise_bin,
        gauss_frac: nm1_lr_g,
        gray_frac,
    };
    let info = DegradationInfo {
        regimes: plan.masks.k,
        usm: plan.usm,
        resize1: plan.shared.resize1,
        resize2: plan.shared.resize2,
        final_mode: plan.shared.final_mode,
        order: plan.shared.order,
        defocus: plan.defocus.is_some(),
        drift: plan.drift.as_ref().map(|d| d.1),
    };
    DegradedPair {
        lr: x,
        hr,
        maps,
        info,
    }
}
