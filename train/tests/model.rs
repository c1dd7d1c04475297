//! The SAVL building blocks against independent computations: the fast conv against candle's
//! stock conv (values and gradients), the fused LeakyReLU, the KL and CLUB terms against
//! closed-form values, and the cost arithmetic of the presets.

use candle_core::{Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use savl_train::nn::club::{club_full, club_sample, log_likelihood};
use savl_train::nn::conv::{conv2d, conv2d_stock};
use savl_train::nn::savl::{kl_loss, kl_per_dim, laplace_nll, severity};
use savl_train::nn::{Ablation, Config, Savl};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Values and both gradients of the fast conv equal candle's stock conv2d.
fn check_conv(b: usize, cin: usize, cout: usize, h: usize, w: usize, k: usize, pad: usize) {
    let x = Var::from_tensor(&randn(&[b, cin, h, w], 1)).unwrap();
    let wt = Var::from_tensor(&(randn(&[cout, cin, k, k], 2) * 0.3).unwrap()).unwrap();
    let ho = h + 2 * pad + 1 - k;
    let wo = w + 2 * pad + 1 - k;
    let r = randn(&[b, cout, ho, wo], 3);
    let y_fast = conv2d(x.as_tensor(), wt.as_tensor(), pad).unwrap();
    let y_stock = conv2d_stock(x.as_tensor(), wt.as_tensor(), pad).unwrap();
    assert_eq!(y_fast.dims(), y_stock.dims());
    assert!(max_abs_diff(&y_fast, &y_stock) < 1e-4, "forward differs");
    let gf = (y_fast * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gs = (y_stock * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dx = max_abs_diff(gf.get(&x).unwrap(), gs.get(&x).unwrap());
    let dw = max_abs_diff(gf.get(&wt).unwrap(), gs.get(&wt).unwrap());
    assert!(
        dx < 1e-4,
        "input grad differs by {dx} (b{b} {cin}->{cout} {h}x{w} k{k} p{pad})"
    );
    assert!(
        dw < 1e-4,
        "weight grad differs by {dw} (b{b} {cin}->{cout} {h}x{w} k{k} p{pad})"
    );
}

#[test]
fn fast_conv_matches_stock_conv_and_gradients() {
    check_conv(2, 5, 7, 9, 11, 3, 1);
    check_conv(3, 4, 6, 8, 7, 3, 0);
    check_conv(1, 3, 8, 6, 5, 1, 0);
    check_conv(4, 17, 8, 5, 6, 1, 0);
    check_conv(2, 4, 3, 12, 10, 5, 2);
    check_conv(5, 8, 8, 16, 16, 3, 1);
}

#[test]
fn fused_leaky_relu_matches_candle() {
    let x = Var::from_tensor(&randn(&[2, 3, 5, 7], 4)).unwrap();
    let r = randn(&[2, 3, 5, 7], 5);
    let a = savl_train::nn::act::leaky_relu(x.as_tensor(), 0.1).unwrap();
    let b = candle_nn::ops::leaky_relu(x.as_tensor(), 0.1).unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-7);
    let ga = (a * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(max_abs_diff(ga.get(&x).unwrap(), gb.get(&x).unwrap()) < 1e-6);
}

#[test]
fn kl_matches_closed_form() {
    // One image, d = 2, two pixels.
    // pixel 0: μ = (1, 0), log σ² = (0, ln 2); pixel 1: μ = (0, −2), log σ² = (−1, 0).
    // KL_k(u) = ½ (μ² + σ² − log σ² − 1):
    //   dim 0: ½(1 + 1 − 0 − 1) = 0.5;        ½(0 + e⁻¹ + 1 − 1) = e⁻¹/2
    //   dim 1: ½(0 + 2 − ln 2 − 1) = (1 − ln 2)/2;  ½(4 + 1 − 0 − 1) = 2
    let mu = Tensor::from_vec(vec![1f32, 0., 0., -2.], (1, 2, 1, 2), &Device::Cpu).unwrap();
    let lv = Tensor::from_vec(vec![0f32, -1., 2f32.ln(), 0.], (1, 2, 1, 2), &Device::Cpu).unwrap();
    let e1 = (-1f32).exp();
    let k0 = (0.5 + e1 / 2.0) / 2.0;
    let k1 = ((1.0 - 2f32.ln()) / 2.0 + 2.0) / 2.0;
    let per = kl_per_dim(&mu, &lv).unwrap().to_vec1::<f32>().unwrap();
    assert!(
        (per[0] - k0).abs() < 1e-6 && (per[1] - k1).abs() < 1e-6,
        "{per:?} vs {k0}, {k1}"
    );
    let total = kl_loss(&mu, &lv, 0.0).unwrap().to_scalar::<f32>().unwrap();
    assert!((total - (k0 + k1)).abs() < 1e-6);
    // Free bits lift dim 0 (≈ 0.342) to 0.5 and leave dim 1 (≈ 1.077) alone.
    let fb = kl_loss(&mu, &lv, 0.5).unwrap().to_scalar::<f32>().unwrap();
    assert!((fb - (0.5 + k1)).abs() < 1e-6);
    // The prior itself has zero KL.
    let z = Tensor::zeros((2, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(
        kl_loss(&z, &z, 0.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .abs()
            < 1e-7
    );
}

/// `mean(|e|/b + log b)` by hand; for a fixed |e| it is smallest at b = |e| (where it equals
/// 1 + log|e|), so the scale head is pushed towards the local error level.
#[test]
fn laplace_nll_matches_closed_form() {
    let e = [0.02f32, 0.1, 0.5, 0.0];
    let logb = [-3.0f32, -2.0, 0.5, -7.0];
    let want: f32 = e
        .iter()
        .zip(&logb)
        .map(|(e, l)| e * (-l).exp() + l)
        .sum::<f32>()
        / 4.0;
    let t = |v: &[f32]| Tensor::from_slice(v, (1, 1, 2, 2), &Device::Cpu).unwrap();
    let got = laplace_nll(&t(&e), &t(&logb))
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let at = |l: f32| {
        laplace_nll(&t(&[0.05; 4]), &t(&[l; 4]))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let best = at(0.05f32.ln());
    assert!((best - (1.0 + 0.05f32.ln())).abs() < 1e-5);
    assert!(at(0.05f32.ln() - 0.3) > best && at(0.05f32.ln() + 0.3) > best);
}

#[test]
fn club_matches_closed_form() {
    let dev = Device::Cpu;
    // N = 2, d = 1: q(b | a_i) = N(μ_i, 1) with μ = (0, 1); b = (0, 1).
    // log q(b_j | a_i) (no constant) = −(μ_i − b_j)²/2: positives 0, cross terms −½.
    // vCLUB = mean(positives) − mean(all pairs) = 0 − (−1/4) = 1/4.
    // CLUBSample with π = (1, 0): mean(0 − (−½)) = ½.
    let mu = Tensor::from_vec(vec![0f32, 1.], (2, 1), &dev).unwrap();
    let lv = Tensor::zeros((2, 1), candle_core::DType::F32, &dev).unwrap();
    let b = Tensor::from_vec(vec![0f32, 1.], (2, 1), &dev).unwrap();
    let full = club_full(&mu, &lv, &b).unwrap().to_scalar::<f32>().unwrap();
    assert!((full - 0.25).abs() < 1e-6, "{full}");
    let perm = Tensor::from_vec(vec![1u32, 0], 2, &dev).unwrap();
    let s = club_sample(&mu, &lv, &b, &perm)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((s - 0.5).abs() < 1e-6, "{s}");

    // N = 3, d = 2 with unequal variances, against a direct double loop.
    let mu_v = [0.5f32, -1.0, 2.0, 0.0, -0.5, 1.5];
    let lv_v = [0.3f32, -0.2, 0.0, 0.7, -0.9, 0.1];
    let b_v = [1.0f32, 0.0, -1.0, 2.0, 0.5, 0.5];
    let ll = |i: usize, j: usize| -> f32 {
        (0..2)
            .map(|k| {
                let (m, l, x) = (mu_v[i * 2 + k], lv_v[i * 2 + k], b_v[j * 2 + k]);
                -(m - x) * (m - x) / (2.0 * l.exp()) - l / 2.0
            })
            .sum()
    };
    let pos: f32 = (0..3).map(|i| ll(i, i)).sum::<f32>() / 3.0;
    let all: f32 = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .map(|(i, j)| ll(i, j))
        .sum::<f32>()
        / 9.0;
    let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), (3, 2), &dev).unwrap();
    let full = club_full(&t(&mu_v), &t(&lv_v), &t(&b_v))
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((full - (pos - all)).abs() < 1e-5, "{full} vs {}", pos - all);
    let lls = log_likelihood(&t(&mu_v), &t(&lv_v), &t(&b_v))
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for i in 0..3 {
        assert!((lls[i] - ll(i, i)).abs() < 1e-5);
    }
    let perm = Tensor::from_vec(vec![2u32, 0, 1], 3, &dev).unwrap();
    let s = club_sample(&t(&mu_v), &t(&lv_v), &t(&b_v), &perm)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let want = [(0, 2), (1, 0), (2, 1)]
        .iter()
        .map(|&(i, j)| ll(i, i) - ll(i, j))
        .sum::<f32>()
        / 3.0;
    assert!((s - want).abs() < 1e-5, "{s} vs {want}");
}

#[test]
fn severity_uses_fixed_constants_and_clamps() {
    // log σ² = ln 2 everywhere over d = 2 → mean σ² = 2; (2 − 1) / 0.5 = 2.
    let lv = Tensor::full(2f32.ln(), (1, 2, 2, 3), &Device::Cpu).unwrap();
    let values = |mean: f32, std: f32| {
        let s = severity(&lv, mean, std).unwrap();
        s.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert!(values(1.0, 0.5).iter().all(|v| (v - 2.0).abs() < 1e-5));
    assert!(values(0.0, 0.1).iter().all(|v| *v == 3.0));
}

#[test]
fn preset_costs_and_receptive_field() {
    let lite = Config::lite();
    let macs = lite.macs_per_lr_pixel();
    // Method notes §11.3: lite-m ≈ 229.4 K (body) + 4.1 K (gates) + 20.3 K (estimator).
    assert!((250_000..=260_000).contains(&macs), "lite MACs {macs}");
    assert!(macs <= 350_000);
    let ng = lite.clone().with_ablation(Ablation::NoGuide);
    let r = ng.macs_per_lr_pixel() as f64 / macs as f64;
    assert!((0.95..=1.05).contains(&r), "noguide MAC ratio {r}");
    assert_eq!(ng.effective_body_convs(), 11);
    assert_eq!(lite.receptive_field(), 12);
    assert!(lite.receptive_field() <= 16, "the runtime halo is 16");
    assert!(Config::base().macs_per_lr_pixel() > macs);
}

#[test]
fn lite_forward_shapes() {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, candle_core::DType::F32, &Device::Cpu);
    let m = Savl::new(&Config::lite(), vb).unwrap();
    let y = randn(&[1, 3, 10, 12], 9).affine(0.5, 0.5).unwrap();
    let out = m.forward(&y).unwrap();
    assert_eq!(out.sr.dims(), &[1, 3, 40, 48]);
    assert_eq!(out.mu.unwrap().dims(), &[1, 16, 10, 12]);
    assert_eq!(out.severity.unwrap().dims(), &[1, 1, 10, 12]);
    let n_params: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
    assert!(n_params > 200_000 && n_params < 320_000, "{n_params}");
}

#[test]
fn fused_conv_bias_act_matches_stock_composition() {
    use savl_train::nn::conv::conv2d_bias_act;
    for (slope, k, pad) in [(Some(0.1), 3, 1), (None, 3, 1), (Some(0.2), 1, 0)] {
        let x = Var::from_tensor(&randn(&[3, 5, 8, 9], 11)).unwrap();
        let w = Var::from_tensor(&(randn(&[6, 5, k, k], 12) * 0.4).unwrap()).unwrap();
        let b = Var::from_tensor(&randn(&[6], 13)).unwrap();
        let r = randn(&[3, 6, 8, 9], 14);
        let fused =
            conv2d_bias_act(x.as_tensor(), w.as_tensor(), b.as_tensor(), pad, slope).unwrap();
        let y = conv2d_stock(x.as_tensor(), w.as_tensor(), pad)
            .unwrap()
            .broadcast_add(&b.as_tensor().reshape((1, 6, 1, 1)).unwrap())
            .unwrap();
        let stock = match slope {
            Some(s) => candle_nn::ops::leaky_relu(&y, s).unwrap(),
            None => y,
        };
        assert!(max_abs_diff(&fused, &stock) < 1e-4);
        let gf = (fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (stock * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            let d = max_abs_diff(gf.get(v).unwrap(), gs.get(v).unwrap());
            assert!(d < 1e-4, "gradient differs by {d} (slope {slope:?}, k {k})");
        }
    }
}
