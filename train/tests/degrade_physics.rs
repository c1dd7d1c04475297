//! Physics of the degradation pipeline: kernels, resampling, noise statistics, JPEG blockiness,
//! heterogeneity, determinism. Expected values are closed forms computed independently of the
//! code under test.

use savl_train::degrade::jpeg::{jpeg, quality_to_factor, MCU};
use savl_train::degrade::kernels::{self, bessel_j1, Kernel};
use savl_train::degrade::masks::{random_masks, MaskConfig, Masks};
use savl_train::degrade::plan::{
    FinalOrder, NoiseKind, NoiseParams, Plan, RegimeParams, SharedParams,
};
use savl_train::degrade::resize::{resize, ResizeMode};
use savl_train::degrade::usm::usm_sharpen;
use savl_train::degrade::{
    degrade, downscale_bicubic_aa, execute, rng_for, DegradeConfig, PairSampler,
};
use savl_train::PlanarImage;
use std::f64::consts::PI;

fn moments(k: &Kernel) -> [[f64; 2]; 2] {
    k.second_moments()
}

#[test]
fn every_drawn_kernel_sums_to_one() {
    let mut rng = rng_for(3, 0);
    for _ in 0..300 {
        for r in [kernels::KERNEL1, kernels::KERNEL2] {
            let (k, _) = kernels::random_kernel(&mut rng, &r);
            assert!((k.sum() - 1.0).abs() < 1e-5, "sum {}", k.sum());
            assert!(k.size % 2 == 1 && (7..=21).contains(&k.size));
        }
        let (k, _) = kernels::random_final_sinc(&mut rng, 0.8);
        assert!((k.sum() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn gaussian_second_moments_match_sigma() {
    // Isotropic: Σ k x² = Σ k y² = σ², Σ k xy = 0; equivalent σ = σ.
    let k = kernels::gaussian(21, 1.7, 1.7, 0.0);
    let m = moments(&k);
    assert!((m[0][0] - 1.7 * 1.7).abs() < 2e-3 * 2.89, "{m:?}");
    assert!((m[1][1] - 1.7 * 1.7).abs() < 2e-3 * 2.89);
    assert!(m[0][1].abs() < 1e-6);
    assert!((k.equivalent_sigma() - 1.7).abs() < 2e-3);
    // Anisotropic rotated: the moment matrix is R diag(σx², σy²) Rᵀ with x = column offset.
    let (sx, sy, th) = (2.5f64, 1.0f64, 0.6f64);
    let k = kernels::gaussian(21, sx, sy, th);
    let m = moments(&k);
    let (c, s) = (th.cos(), th.sin());
    let want = [
        [
            c * c * sx * sx + s * s * sy * sy,
            c * s * (sx * sx - sy * sy),
        ],
        [
            c * s * (sx * sx - sy * sy),
            s * s * sx * sx + c * c * sy * sy,
        ],
    ];
    for i in 0..2 {
        for j in 0..2 {
            assert!(
                (m[i][j] - want[i][j]).abs() < 0.01,
                "moment {i}{j}: {} vs {}",
                m[i][j],
                want[i][j]
            );
        }
    }
}

#[test]
fn generalized_gaussian_second_moment_matches_closed_form() {
    // For k ∝ exp(−½ (r/σ)^(2β)) in 2-D, E[r²] = 2^(1/β) Γ(2/β)/Γ(1/β) σ². β = 2: √2·Γ(1)/Γ(½) σ².
    let sigma = 2.0;
    let k = kernels::generalized_gaussian(21, sigma, sigma, 0.0, 2.0);
    let m = moments(&k);
    let want = 2f64.sqrt() / PI.sqrt() * sigma * sigma;
    assert!(
        ((m[0][0] + m[1][1]) - want).abs() < 0.01 * want,
        "{} vs {want}",
        m[0][0] + m[1][1]
    );
    // β = 1 is the plain Gaussian.
    let g = kernels::generalized_gaussian(15, 1.3, 0.8, 0.4, 1.0);
    let h = kernels::gaussian(15, 1.3, 0.8, 0.4);
    for (a, b) in g.data.iter().zip(&h.data) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn plateau_is_radial_and_flat_topped() {
    let k = kernels::plateau(21, 2.0, 2.0, 0.0, 2.0);
    assert!((k.sum() - 1.0).abs() < 1e-5);
    // 1/(1 + (r²/σ²)^β): at r = σ the value is half the centre value.
    assert!((k.at(0, 2) / k.at(0, 0) - 0.5).abs() < 1e-5);
    assert_eq!(k.at(3, 1), k.at(-1, -3));
}

#[test]
fn bessel_j1_matches_tabulated_values() {
    for (x, want) in [
        (1.0, 0.440_050_585_7),
        (5.0, -0.327_579_137_6),
        (10.0, 0.043_472_746_2),
        (0.1, 0.049_937_526),
    ] {
        assert!((bessel_j1(x) - want).abs() < 1e-6, "J1({x})");
    }
}

/// Frequency response of a kernel along the x axis at angular frequency `w`.
fn response_x(k: &Kernel, w: f64) -> f64 {
    let r = k.radius() as isize;
    let mut s = 0.0;
    for dy in -r..=r {
        for dx in -r..=r {
            s += k.at(dy, dx) as f64 * (w * dx as f64).cos();
        }
    }
    s
}

#[test]
fn sinc_kernel_is_a_low_pass_at_its_cutoff() {
    let wc = PI / 2.0;
    let k = kernels::sinc(21, wc);
    assert!((k.at(0, 0) as f64 / k.sum() - k.at(0, 0) as f64).abs() < 1e-6);
    assert!(
        (response_x(&k, 0.3 * wc) - 1.0).abs() < 0.1,
        "pass band {}",
        response_x(&k, 0.3 * wc)
    );
    assert!(
        response_x(&k, 1.6 * wc).abs() < 0.1,
        "stop band {}",
        response_x(&k, 1.6 * wc)
    );
    assert_eq!(Kernel::pulse().equivalent_sigma(), 0.0);
}

fn flat(v: f32, h: usize, w: usize) -> PlanarImage {
    PlanarImage::from_vec(3, h, w, vec![v; 3 * h * w])
}

fn ramp(h: usize, w: usize) -> PlanarImage {
    let mut img = PlanarImage::zeros(3, h, w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                img.data[(c * h + y) * w + x] =
                    0.1 + 0.6 * x as f32 / w as f32 + 0.2 * y as f32 / h as f32;
            }
        }
    }
    img
}

#[test]
fn resizes_keep_constants_and_linear_ramps() {
    let img = flat(0.3, 40, 36);
    for mode in [ResizeMode::Area, ResizeMode::Bilinear, ResizeMode::Bicubic] {
        for (oh, ow) in [(10, 9), (57, 50), (40, 36)] {
            let r = resize(&img, oh, ow, mode);
            assert!(r.data.iter().all(|&v| (v - 0.3).abs() < 1e-5), "{mode:?}");
        }
    }
    let z = downscale_bicubic_aa(&img, 4);
    assert_eq!((z.height, z.width), (10, 9));
    assert!(z.data.iter().all(|&v| (v - 0.3).abs() < 1e-5));
    // Area ÷4 is the mean of each 4×4 block: a ramp keeps its value at the block centres.
    let rmp = ramp(32, 32);
    let a = resize(&rmp, 8, 8, ResizeMode::Area);
    let want = 0.1 + 0.6 * 5.5 / 32.0 + 0.2 * 9.5 / 32.0; // block (2, 1): centre x = 5.5, y = 9.5
    assert!((a.at(0, 2, 1) - want).abs() < 1e-5);
}

#[test]
fn antialiased_downscale_removes_the_nyquist_pattern_that_plain_bilinear_keeps() {
    // One bright column in three: 1/3 cycle per HR px, far above the ÷4 output's Nyquist
    // frequency (1/8 cycle per HR px), so an antialiased result is ≈ the mean 1/3 everywhere.
    let (h, w) = (32, 64);
    let mut img = PlanarImage::zeros(3, h, w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                img.data[(c * h + y) * w + x] = if x % 3 == 0 { 1.0 } else { 0.0 };
            }
        }
    }
    let aa = downscale_bicubic_aa(&img, 4);
    let dev = |p: &PlanarImage| {
        p.plane(0)
            .iter()
            .map(|&v| (v - 1.0 / 3.0).abs())
            .fold(0.0f32, f32::max)
    };
    let nn = resize(&img, h / 4, w / 4, ResizeMode::Bilinear);
    assert!(dev(&aa) < 0.05, "antialiased deviation {}", dev(&aa));
    assert!(
        dev(&nn) > 0.2,
        "plain bilinear should alias, deviation {}",
        dev(&nn)
    );
}

#[test]
fn usm_keeps_flat_images_and_overshoots_at_edges() {
    let f = flat(0.4, 64, 64);
    let u = usm_sharpen(&f);
    assert!(u
        .data
        .iter()
        .zip(&f.data)
        .all(|(a, b)| (a - b).abs() < 1e-6));
    let mut step = flat(0.3, 64, 64);
    for c in 0..3 {
        for y in 0..64 {
            for x in 32..64 {
                step.data[(c * 64 + y) * 64 + x] = 0.7;
            }
        }
    }
    let u = usm_sharpen(&step);
    // Bright side overshoots, dark side undershoots, far away nothing changes much.
    assert!(u.at(0, 32, 32) > 0.72, "{}", u.at(0, 32, 32));
    assert!(u.at(0, 32, 31) < 0.28, "{}", u.at(0, 32, 31));
}

#[test]
fn masks_partition_unity_and_meet_the_area_floor() {
    let cfg = MaskConfig::default();
    for seed in 0..12 {
        let mut rng = rng_for(seed, 9);
        let m = random_masks(&mut rng, 2 + (seed as usize % 3), 96, 128, &cfg);
        assert!(m.k >= 1);
        for i in 0..96 * 128 {
            let s: f32 = (0..m.k).map(|k| m.weights[k][i]).sum();
            assert!((s - 1.0).abs() < 1e-5, "sum {s}");
            assert!((0..m.k).all(|k| m.weights[k][i] >= 0.0));
        }
        for k in 0..m.k {
            let frac = m.weights[k].iter().sum::<f32>() / (96.0 * 128.0);
            assert!(frac > 0.07, "regime {k} covers {frac}");
        }
        let lr = m.resized(24, 32);
        for i in 0..24 * 32 {
            let s: f32 = (0..lr.k).map(|k| lr.weights[k][i]).sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
    }
}

/// Left half regime 0, right half regime 1, hard edge.
fn halves(h: usize, w: usize) -> Masks {
    let left: Vec<f32> = (0..h * w)
        .map(|i| if i % w < w / 2 { 1.0 } else { 0.0 })
        .collect();
    let right = left.iter().map(|v| 1.0 - v).collect();
    Masks {
        k: 2,
        height: h,
        width: w,
        weights: vec![left, right],
    }
}

fn regime(noise1: NoiseParams, q: f32) -> RegimeParams {
    RegimeParams {
        kernel1: Kernel::pulse(),
        kind1: kernels::KernelKind::Pulse,
        noise1,
        q1: q,
        kernel2: Kernel::pulse(),
        kind2: kernels::KernelKind::Pulse,
        noise2: NoiseParams::NONE,
        q2: q,
        final_kernel: Kernel::pulse(),
        mild: false,
    }
}

/// Two regimes, identity blur, no random resize, area ÷scale, JPEG per the config.
fn pinned_plan(h: usize, w: usize, a: NoiseParams, b: NoiseParams, qa: f32, qb: f32) -> Plan {
    Plan {
        masks: halves(h, w),
        regimes: vec![regime(a, qa), regime(b, qb)],
        shared: SharedParams {
            resize1: (1.0, ResizeMode::Area),
            resize2: (1.0, ResizeMode::Area),
            final_mode: ResizeMode::Area,
            order: FinalOrder::ResizeSincJpeg,
        },
        drift: None,
        defocus: None,
        usm: false,
    }
}

fn no_jpeg() -> DegradeConfig {
    DegradeConfig {
        jpeg: false,
        ..DegradeConfig::default()
    }
}

/// Mean and std of plane 0..3 over LR columns `x0..x1`, rows `y0..y1`.
fn region_stats(img: &PlanarImage, x0: usize, x1: usize, y0: usize, y1: usize) -> (f64, f64) {
    let mut v = Vec::new();
    for c in 0..3 {
        for y in y0..y1 {
            for x in x0..x1 {
                v.push(img.at(c, y, x) as f64);
            }
        }
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (
        m,
        (v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / v.len() as f64).sqrt(),
    )
}

fn region_mean(map: &[f32], w: usize, x0: usize, x1: usize, y0: usize, y1: usize) -> f64 {
    let mut s = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            s += map[y * w + x] as f64;
        }
    }
    s / ((x1 - x0) * (y1 - y0)) as f64
}

#[test]
fn noise_std_on_flat_grey_matches_the_sigma_map_per_region() {
    // Stage-1 Gaussian σ = 6/255 left, 24/255 right; area ÷4 of iid noise divides σ by 4.
    let (h, w) = (256, 256);
    let hr = flat(0.5, h, w);
    let g = |s: f32, gray| NoiseParams {
        kind: NoiseKind::Gaussian(s / 255.0),
        gray,
    };
    let plan = pinned_plan(h, w, g(6.0, false), g(24.0, true), 90.0, 90.0);
    let pair = execute(&hr, &plan, &no_jpeg(), &mut rng_for(5, 0));
    let (lw, lh) = (64, 64);
    for (x0, x1, sigma) in [(4, 28, 6.0), (36, 60, 24.0)] {
        let (_, sd) = region_stats(&pair.lr, x0, x1, 4, lh - 4);
        let measured = sd * 255.0;
        let map = region_mean(&pair.maps.noise_sigma, lw, x0, x1, 4, lh - 4);
        let closed = sigma / 4.0;
        assert!(
            (measured - map).abs() < 0.15 * map,
            "measured {measured} vs map {map}"
        );
        assert!(
            (map - closed).abs() < 0.10 * closed,
            "map {map} vs σ/4 = {closed}"
        );
    }
    assert_eq!(pair.maps.regime[10 * lw + 5], 0);
    assert_eq!(pair.maps.regime[10 * lw + 50], 1);
}

#[test]
fn poisson_noise_on_flat_grey_has_the_recipe_std() {
    // One unique value → vals = 1: noise = s·(Poisson(0.5) − 0.5), std s·√0.5, then ÷4 by area.
    let (h, w) = (256, 256);
    let hr = flat(0.5, h, w);
    let p = |s| NoiseParams {
        kind: NoiseKind::Poisson(s),
        gray: false,
    };
    let plan = pinned_plan(h, w, p(0.02), p(0.06), 90.0, 90.0);
    let pair = execute(&hr, &plan, &no_jpeg(), &mut rng_for(6, 0));
    // 0.5 is not an 8-bit level; it is quantised to 128/255 before sampling.
    let q = 128.0 / 255.0f64;
    for (x0, x1, s) in [(4, 28, 0.02), (36, 60, 0.06)] {
        let (_, sd) = region_stats(&pair.lr, x0, x1, 4, 60);
        let closed = s * q.sqrt() / 4.0 * 255.0;
        let map = region_mean(&pair.maps.noise_sigma, 64, x0, x1, 4, 60);
        assert!(
            (sd * 255.0 - closed).abs() < 0.15 * closed,
            "measured {} vs {closed}",
            sd * 255.0
        );
        assert!(
            (map - closed).abs() < 0.15 * closed,
            "map {map} vs {closed}"
        );
    }
}

#[test]
fn grey_noise_is_correlated_across_channels_and_colour_noise_is_not() {
    let (h, w) = (128, 128);
    let hr = flat(0.5, h, w);
    let g = |gray| NoiseParams {
        kind: NoiseKind::Gaussian(20.0 / 255.0),
        gray,
    };
    let plan = pinned_plan(h, w, g(false), g(true), 90.0, 90.0);
    let pair = execute(&hr, &plan, &no_jpeg(), &mut rng_for(7, 0));
    let corr = |x0: usize, x1: usize| {
        let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
        for y in 0..32 {
            for x in x0..x1 {
                let a = pair.lr.at(0, y, x) as f64 - 0.5;
                let b = pair.lr.at(1, y, x) as f64 - 0.5;
                sab += a * b;
                saa += a * a;
                sbb += b * b;
            }
        }
        sab / (saa * sbb).sqrt()
    };
    assert!(corr(0, 15).abs() < 0.25, "colour {}", corr(0, 15));
    assert!(corr(17, 32) > 0.95, "grey {}", corr(17, 32));
}

/// Ratio of the mean absolute luma step across 8-px block boundaries to the mean step inside
/// blocks, over columns `x0..x1` (boundaries at multiples of 8).
fn blockiness(img: &PlanarImage, x0: usize, x1: usize) -> f64 {
    let (mut across, mut na, mut inside, mut ni) = (0.0, 0, 0.0, 0);
    for y in 0..img.height {
        for x in x0 + 1..x1 {
            let l = |x| 0.299 * img.at(0, y, x) + 0.587 * img.at(1, y, x) + 0.114 * img.at(2, y, x);
            let d = (l(x) - l(x - 1)).abs() as f64;
            if x % 8 == 0 {
                across += d;
                na += 1;
            } else {
                inside += d;
                ni += 1;
            }
        }
    }
    (across / na as f64) / (inside / ni as f64 + 1e-9)
}

#[test]
fn low_quality_mcus_are_blockier_than_high_quality_ones() {
    // Smooth 2-D content plus fine texture; left MCUs at q 30, right MCUs at q 95.
    let (h, w) = (64, 128);
    let mut img = PlanarImage::zeros(3, h, w);
    let mut rng = rng_for(11, 0);
    use rand::Rng;
    for y in 0..h {
        for x in 0..w {
            let base = 0.5 + 0.3 * ((x as f32 * 0.07).sin() * (y as f32 * 0.05).cos());
            let t: f32 = rng.random_range(-0.03..0.03);
            for c in 0..3 {
                img.data[(c * h + y) * w + x] = base + t + 0.05 * c as f32;
            }
        }
    }
    let (mh, mw) = (h / MCU, w / MCU);
    let factors: Vec<f32> = (0..mh * mw)
        .map(|i| quality_to_factor(if i % mw < mw / 2 { 30.0 } else { 95.0 }))
        .collect();
    let out = jpeg(&img, &factors);
    let low = blockiness(&out, 0, w / 2);
    let high = blockiness(&out, w / 2, w);
    assert!(low > 1.3 * high, "blockiness q30 {low} vs q95 {high}");
    // High quality stays close to the input, low quality does not.
    let err = |x0: usize, x1: usize| {
        let mut s = 0.0;
        for c in 0..3 {
            for y in 0..h {
                for x in x0..x1 {
                    s += (out.at(c, y, x) - img.at(c, y, x)).abs() as f64;
                }
            }
        }
        s / (3 * h * (x1 - x0)) as f64
    };
    assert!(err(w / 2, w) < err(0, w / 2));
    assert!(
        err(w / 2, w) * 255.0 < 3.0,
        "q95 mean error {}",
        err(w / 2, w) * 255.0
    );
}

#[test]
fn two_regimes_give_distinct_maps_and_distinct_lr_statistics() {
    let (h, w) = (128, 128);
    let hr = flat(0.5, h, w);
    let g = |s: f32| NoiseParams {
        kind: NoiseKind::Gaussian(s / 255.0),
        gray: false,
    };
    let plan = pinned_plan(h, w, g(2.0), g(28.0), 90.0, 35.0);
    let cfg = DegradeConfig::default();
    let pair = execute(&hr, &plan, &cfg, &mut rng_for(8, 0));
    let distinct = |v: &[u8]| {
        let mut s = v.to_vec();
        s.sort();
        s.dedup();
        s.len()
    };
    assert_eq!(distinct(&pair.maps.regime), 2);
    assert_eq!(distinct(&pair.maps.jpeg_q1), 2);
    assert_eq!(distinct(&pair.maps.jpeg_q2), 2);
    let left = region_mean(&pair.maps.noise_sigma, 32, 2, 14, 2, 30);
    let right = region_mean(&pair.maps.noise_sigma, 32, 18, 30, 2, 30);
    assert!(right > 5.0 * left, "map {left} vs {right}");
    let (_, sl) = region_stats(&pair.lr, 2, 14, 2, 30);
    let (_, sr) = region_stats(&pair.lr, 18, 30, 2, 30);
    assert!(sr > 3.0 * sl, "LR std {sl} vs {sr}");
}

#[test]
fn random_heterogeneous_draws_have_several_map_values() {
    let cfg = DegradeConfig {
        hetero_prob: 1.0,
        k_probs: [1.0, 0.0, 0.0],
        ..DegradeConfig::default()
    };
    let hr = ramp(128, 128);
    for seed in 0..4 {
        let pair = degrade(&hr, &cfg, seed);
        assert_eq!(pair.info.regimes, 2);
        let mut r = pair.maps.regime.clone();
        r.sort();
        r.dedup();
        assert_eq!(r.len(), 2, "seed {seed}");
        let ns = &pair.maps.noise_sigma;
        let (lo, hi) = ns
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi > lo, "seed {seed}");
    }
}

#[test]
fn blur_map_is_the_kernel_sigma_in_lr_pixels() {
    let (h, w) = (64, 64);
    let hr = flat(0.5, h, w);
    let mut plan = pinned_plan(h, w, NoiseParams::NONE, NoiseParams::NONE, 90.0, 90.0);
    plan.regimes[0].kernel1 = kernels::gaussian(21, 2.0, 2.0, 0.0);
    plan.regimes[1].kernel1 = kernels::gaussian(21, 3.0, 3.0, 0.0);
    plan.regimes[1].kernel2 = kernels::gaussian(21, 1.2, 1.2, 0.0);
    let pair = execute(&hr, &plan, &no_jpeg(), &mut rng_for(1, 0));
    let l = pair.maps.blur_sigma[8 * 16 + 2];
    let r = pair.maps.blur_sigma[8 * 16 + 13];
    assert!((l - 0.5).abs() < 0.01, "{l}");
    // Stage 2 runs on the HR grid here (no random resize), so σ₂ = 1.2 HR px.
    let want = ((3.0f32 / 4.0).powi(2) + (1.2f32 / 4.0).powi(2)).sqrt();
    assert!((r - want).abs() < 0.01, "{r} vs {want}");
    // A flat image stays flat under any blur.
    assert!(pair
        .lr
        .data
        .iter()
        .all(|&v| (v - 0.5).abs() <= 0.5 / 255.0 + 1e-6));
}

#[test]
fn same_seed_same_pair_and_batch_equals_samples() {
    let hr = ramp(64, 64);
    let cfg = DegradeConfig::default();
    let a = degrade(&hr, &cfg, 42);
    let b = degrade(&hr, &cfg, 42);
    assert_eq!(a.lr, b.lr);
    assert_eq!(a.maps, b.maps);
    let c = degrade(&hr, &cfg, 43);
    assert_ne!(a.lr, c.lr);
    let photos: Vec<image::RgbImage> = (0..3)
        .map(|i| {
            image::RgbImage::from_fn(90 + 10 * i, 70, |x, y| {
                image::Rgb([(x * 3) as u8, (y * 2) as u8, (i * 60) as u8])
            })
        })
        .collect();
    let s = PairSampler::from_images(photos, cfg);
    let batch = s.batch(4, 64, 9, 100);
    for (i, p) in batch.iter().enumerate() {
        let q = s.sample(64, 9, 100 + i as u64);
        assert_eq!(p.lr, q.lr);
        assert_eq!(p.hr, q.hr);
        assert_eq!(p.maps, q.maps);
    }
    assert_eq!(batch[0].lr.height, 16);
}

#[test]
fn scale_two_gives_half_size_lr() {
    let cfg = DegradeConfig {
        scale: 2,
        ..DegradeConfig::default()
    };
    let pair = degrade(&ramp(48, 64), &cfg, 1);
    assert_eq!((pair.lr.height, pair.lr.width), (24, 32));
    assert_eq!(pair.maps.blur_sigma.len(), 24 * 32);
}

#[test]
fn separable_convolution_matches_direct_convolution() {
    use savl_train::degrade::filter::{
        conv_accumulate, plan_separable, sep_conv_accumulate, SEPARABLE_TOL,
    };
    let (h, w) = (40, 48);
    let img = ramp(h, w);
    let mut plane = img.plane(0).to_vec();
    let mut rng = rng_for(21, 0);
    use rand::Rng;
    plane
        .iter_mut()
        .for_each(|v| *v = (*v + rng.random_range(-0.2f32..0.2)).clamp(0.0, 1.0));
    let weight: Vec<f32> = (0..h * w)
        .map(|i| if (i / w) > 10 && i % w < 30 { 0.7 } else { 0.0 })
        .collect();
    let mut used = 0;
    for _ in 0..60 {
        let (k, _) = kernels::random_kernel(&mut rng, &kernels::KERNEL1);
        let Some(sep) = plan_separable(&k) else {
            continue;
        };
        used += 1;
        for wt in [None, Some(&weight[..])] {
            let (mut a, mut b) = (vec![0.0; h * w], vec![0.0; h * w]);
            conv_accumulate(&plane, h, w, &k, wt, &mut a);
            sep_conv_accumulate(&plane, h, w, &sep, wt, &mut b);
            let err = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err as f64 <= SEPARABLE_TOL + 1e-5,
                "max error {err} for a size-{} kernel",
                k.size
            );
        }
    }
    assert!(used > 20, "most kernels should factor ({used}/60)");
}

#[test]
fn trimming_drops_only_negligible_rings() {
    use savl_train::degrade::filter::trimmed;
    let k = kernels::gaussian(21, 1.0, 1.0, 0.0);
    let t = trimmed(&k, 1e-3);
    assert!(t.size < 11, "σ = 1 needs no 21-tap support, got {}", t.size);
    assert!((1.0 - t.sum()) <= 1e-3 && t.sum() <= 1.0 + 1e-6);
    assert_eq!(t.at(0, 0), k.at(0, 0));
    assert_eq!(trimmed(&kernels::gaussian(9, 3.0, 3.0, 0.0), 1e-3).size, 9);
}

#[test]
fn poisson_tables_have_the_right_mean_and_variance() {
    use savl_train::degrade::noise::poisson_cdf;
    for lambda in [0.3, 4.0, 37.5, 200.0] {
        let cdf = poisson_cdf(lambda);
        assert!((cdf.last().unwrap() - 1.0).abs() < 1e-9);
        let pmf: Vec<f64> = (0..cdf.len())
            .map(|k| cdf[k] - if k == 0 { 0.0 } else { cdf[k - 1] })
            .collect();
        let mean: f64 = pmf.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
        let var: f64 = pmf
            .iter()
            .enumerate()
            .map(|(k, p)| (k as f64 - mean).powi(2) * p)
            .sum();
        assert!(
            (mean - lambda).abs() < 1e-6 * lambda.max(1.0),
            "mean {mean} vs {lambda}"
        );
        assert!(
            (var - lambda).abs() < 1e-6 * lambda.max(1.0),
            "var {var} vs {lambda}"
        );
    }
}

/// Recomputes the `noise_bin` calibration (slow: 1000 pairs). Run with
/// `cargo test -p savl-train --test degrade_physics -- --ignored calibrate --nocapture`.
#[test]
#[ignore]
fn calibrate_noise_bins_on_the_training_photos() {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/train"
    ));
    let (s, _) = PairSampler::from_dir(dir, DegradeConfig::default()).unwrap();
    let q = s.noise_quintiles(1000, 256, 0xCA11B);
    println!(
        "noise_bin_edges: {q:?} (configured {:?})",
        DegradeConfig::default().noise_bin_edges
    );
    for (a, b) in q.iter().zip(DegradeConfig::default().noise_bin_edges) {
        assert!((a - b).abs() < 0.02 * b, "calibration moved: {q:?}");
    }
}

#[test]
fn noise_bins_split_pixels_by_the_configured_edges() {
    let pair = degrade(&ramp(64, 64), &DegradeConfig::default(), 77);
    let e = DegradeConfig::default().noise_bin_edges;
    for (&s, &b) in pair.maps.noise_sigma.iter().zip(&pair.maps.noise_bin) {
        let want = e.iter().filter(|&&x| s >= x).count() as u8;
        assert_eq!(b, want);
    }
}

#[test]
fn sharpening_a_whole_photo_equals_sharpening_the_crop_away_from_its_border() {
    // The sampler sharpens photos once at load; USM only looks 2 × 25 px away, so a crop's
    // interior must match sharpening the crop itself.
    let (h, w) = (160, 170);
    let mut rng = rng_for(31, 0);
    use rand::Rng;
    let img = PlanarImage::from_vec(
        3,
        h,
        w,
        (0..3 * h * w)
            .map(|_| rng.random_range(0.2f32..0.8))
            .collect(),
    );
    let whole = usm_sharpen(&img);
    let (x0, y0, s) = (10, 20, 130);
    let part = usm_sharpen(&img.crop(x0, y0, s, s));
    let m = 50;
    for c in 0..3 {
        for y in m..s - m {
            for x in m..s - m {
                assert!((whole.at(c, y0 + y, x0 + x) - part.at(c, y, x)).abs() < 1e-5);
            }
        }
    }
}
