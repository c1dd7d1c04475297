//! Probe harness: logistic regression, Spearman, and the exact-label generator.

use savl_train::degrade::probe::{probe_degrade, ProbeConfig, ProbeMaps};
use savl_train::probe::{
    average_ranks, pixel_stats_patches, pool_patches, spearman, FitOptions, LogisticProbe,
};
use savl_train::PlanarImage;

/// xorshift in [0, 1).
fn rng(s: &mut u64) -> f32 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s >> 40) as f32 / (1u64 << 24) as f32
}

fn gauss(s: &mut u64) -> f32 {
    let (u, v) = (rng(s).max(1e-7), rng(s));
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `n` points per class around 3 well-separated centres in 4-d.
fn blobs(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let centres = [
        [3.0, 0.0, 0.0, 1.0],
        [0.0, 3.0, 0.0, -1.0],
        [0.0, 0.0, 3.0, 0.0],
    ];
    let mut s = seed;
    let (mut x, mut y) = (vec![], vec![]);
    for i in 0..n * 3 {
        let c = i % 3;
        for j in 0..4 {
            x.push(centres[c][j] + 0.7 * gauss(&mut s));
        }
        y.push(c);
    }
    (x, y)
}

#[test]
fn logistic_probe_separates_blobs_and_is_at_chance_on_shuffled_labels() {
    let (xtr, ytr) = blobs(200, 1);
    let (xte, yte) = blobs(200, 2);
    let p = LogisticProbe::fit(&xtr, &ytr, 4, 3, FitOptions::default());
    let acc = p.accuracy(&xte, &yte);
    assert!(acc > 0.97, "separable accuracy {acc}");

    // Labels unrelated to the features: held-out accuracy near 1/3.
    let mut s = 99u64;
    let shuffled: Vec<usize> = ytr
        .iter()
        .map(|_| (rng(&mut s) * 3.0) as usize % 3)
        .collect();
    let test_labels: Vec<usize> = yte
        .iter()
        .map(|_| (rng(&mut s) * 3.0) as usize % 3)
        .collect();
    let p = LogisticProbe::fit(&xtr, &shuffled, 4, 3, FitOptions::default());
    let acc = p.accuracy(&xte, &test_labels);
    assert!((acc - 1.0 / 3.0).abs() < 0.07, "shuffled accuracy {acc}");
}

#[test]
fn spearman_matches_a_hand_computation() {
    // Ranks with ties: a = [10, 20, 20, 40] → [1, 2.5, 2.5, 4]; b = [1, 3, 2, 4] → [1, 3, 2, 4].
    let a = [10.0, 20.0, 20.0, 40.0];
    let b = [1.0, 3.0, 2.0, 4.0];
    assert_eq!(average_ranks(&a), vec![1.0, 2.5, 2.5, 4.0]);
    // Pearson of the ranks: mean 2.5 both; dev a = [-1.5, 0, 0, 1.5], b = [-1.5, 0.5, -0.5, 1.5];
    // cov = 2.25 + 2.25 = 4.5; var a = 4.5, var b = 2.25 + 0.25 + 0.25 + 2.25 = 5.
    let expected = 4.5 / (4.5f64 * 5.0).sqrt();
    assert!((spearman(&a, &b) - expected).abs() < 1e-12);
    // Monotone transform → 1; reversed → −1.
    let c = [1.0, 2.0, 5.0, 9.0, 11.0];
    let d: Vec<f64> = c.iter().map(|v: &f64| v.powi(3)).collect();
    assert!((spearman(&c, &d) - 1.0).abs() < 1e-12);
    let r: Vec<f64> = c.iter().map(|v| -v).collect();
    assert!((spearman(&c, &r) + 1.0).abs() < 1e-12);
}

#[test]
fn pooling_averages_full_patches() {
    // 2 channels, 4×6, patch 2 → 2×3 grid; channel 1 = 10 × channel 0.
    let (h, w) = (4, 6);
    let mut planes = vec![0f32; 2 * h * w];
    for i in 0..h * w {
        planes[i] = i as f32;
        planes[h * w + i] = 10.0 * i as f32;
    }
    let (f, ph, pw) = pool_patches(&planes, 2, h, w, 2);
    assert_eq!((ph, pw), (2, 3));
    // Patch (0, 0): pixels 0, 1, 6, 7 → mean 3.5.
    assert_eq!(&f[0..2], &[3.5, 35.0]);
    // Patch (1, 2): pixels 16, 17, 22, 23 → 19.5.
    assert_eq!(&f[10..12], &[19.5, 195.0]);
}

#[test]
fn probe_generator_labels_are_exact_and_recoverable_on_a_flat_image() {
    let cfg = ProbeConfig {
        jpeg_q: (95, 95),
        ..ProbeConfig::default()
    };
    let hr = PlanarImage::from_vec(3, 512, 512, vec![0.5; 3 * 512 * 512]);
    let maps = ProbeMaps::draw(128, 128, &cfg, 3);
    let s = probe_degrade(&hr, &maps, &cfg, 4);
    // Labels are constant over each 8×8 patch and match the per-cell draw.
    for y in 0..128 {
        for x in 0..128 {
            let l = s.noise_level[y * 128 + x];
            assert_eq!(l, maps.noise_idx[maps.cell_of(y, x)]);
            assert_eq!(s.noise_sigma[y * 128 + x], cfg.noise_levels[l as usize]);
        }
    }
    // On a flat grey image the patch std grows with σ_n (4:2:0 JPEG halves the chroma part of
    // the colour noise, so it is below σ_n), and a linear probe on patch statistics recovers the
    // level on a second, independently drawn image.
    let (f, _, pw) = pixel_stats_patches(&s.lr, 8);
    let label = |s: &savl_train::degrade::probe::ProbeSample, k: usize| {
        s.noise_level[(k / pw) * 8 * 128 + (k % pw) * 8] as usize
    };
    let mut mean_std = [(0.0f32, 0usize); 5];
    for k in 0..f.len() / 9 {
        let e = &mut mean_std[label(&s, k)];
        e.0 += f[k * 9 + 3] * 255.0;
        e.1 += 1;
    }
    let ms: Vec<f32> = mean_std
        .iter()
        .map(|(a, n)| a / (*n).max(1) as f32)
        .collect();
    assert!(
        ms.windows(2).all(|w| w[1] > w[0]),
        "patch std by level {ms:?}"
    );
    assert!(ms[4] > 0.5 * 30.0 && ms[4] < 30.0, "{ms:?}");
    let ytr: Vec<usize> = (0..f.len() / 9).map(|k| label(&s, k)).collect();
    let probe = LogisticProbe::fit(&f, &ytr, 9, 5, FitOptions::default());
    let maps_b = ProbeMaps::draw(128, 128, &cfg, 5);
    let sb = probe_degrade(&hr, &maps_b, &cfg, 6);
    let (fb, _, _) = pixel_stats_patches(&sb.lr, 8);
    let yb: Vec<usize> = (0..fb.len() / 9).map(|k| label(&sb, k)).collect();
    let acc = probe.accuracy(&fb, &yb);
    assert!(acc > 0.8, "flat-image noise probe accuracy {acc}");
    // Same maps and seed on a second scene: identical noise field where nothing clips.
    let hr2 = PlanarImage::from_vec(3, 512, 512, vec![0.45; 3 * 512 * 512]);
    let s2 = probe_degrade(&hr2, &maps, &cfg, 4);
    assert_eq!(s.noise_level, s2.noise_level);
}
