//! The trainer end to end on the real degradation pipeline (tiny preset, synthetic photos):
//! the loss falls for the full model and every ablation, resume is exact, and a checkpoint
//! exports to the same model the trainer holds.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use savl_train::degrade::{DegradeConfig, PairSampler};
use savl_train::nn::{Ablation, Config, Likelihood};
use savl_train::train::{
    host_batch, host_twin_batch, run, Checkpoint, HostBatch, LmTarget, PairSource, Stage,
    TrainConfig, Trainer,
};

fn photos() -> Vec<image::RgbImage> {
    (0..4u32)
        .map(|k| {
            image::RgbImage::from_fn(96, 96, |x, y| {
                let f = (k + 2) as f32;
                let r = 128.0 + 100.0 * ((x as f32 / f).sin() * (y as f32 / (f + 1.5)).cos());
                let g = if ((x / (4 + k)) + (y / (5 + k))) % 2 == 0 {
                    200.0
                } else {
                    40.0
                };
                let b = ((x * 3 + y * (k + 1)) % 256) as f32;
                image::Rgb([r as u8, g as u8, b as u8])
            })
        })
        .collect()
}

fn sampler() -> Arc<PairSampler> {
    Arc::new(PairSampler::from_images(photos(), DegradeConfig::default()))
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("savl-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn tiny(ablation: Ablation, steps: usize) -> TrainConfig {
    let mut tc = TrainConfig::new(Config::tiny().with_ablation(ablation));
    tc.steps = steps;
    tc.batch = 4;
    tc.lr_crop = 12;
    tc.lr = 4e-3;
    tc.lr_min = 4e-4;
    tc.warmup = 3;
    tc.kl_warmup = 10;
    tc.checkpoint_every = 1000;
    tc.progress = false;
    tc.seed = 7;
    tc
}

fn eval_batch(s: &PairSampler) -> HostBatch {
    host_batch(&s.pairs(8, 48, 12345, 0), 4).unwrap()
}

/// CI-sized runs: each variant trains 40 steps of batch 4 (12² LR crops) and its loss on a
/// held-out batch falls by at least 10 %.
#[test]
fn loss_falls_for_full_model_and_each_ablation() {
    let s = sampler();
    let held_out = eval_batch(&s);
    for ab in Ablation::ALL {
        let tc = tiny(ab, 40);
        let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
        let before = t.evaluate(&held_out).unwrap();
        let out = tmp_dir(&format!("falls-{ab}"));
        let summary = run(&mut t, s.clone(), &out).unwrap();
        let after = t.evaluate(&held_out).unwrap();
        assert_eq!(summary.losses.len(), 40);
        eprintln!(
            "{ab}: held-out sr L1 {:.4} -> {:.4}, rec {:.4} -> {:.4}, kl {:.3} -> {:.3}, club {:.3}",
            before.sr, after.sr, before.rec, after.rec, before.kl, after.kl, after.club
        );
        assert!(
            after.sr < 0.9 * before.sr,
            "{ab}: SR L1 {} -> {}",
            before.sr,
            after.sr
        );
        if ab.has_estimator() {
            assert!(
                after.rec < 0.9 * before.rec,
                "{ab}: rec {} -> {}",
                before.rec,
                after.rec
            );
        }
        // The oracle reads ground-truth maps, which the model-file contract has no input for.
        assert_eq!(out.join("model.onnx").exists(), ab != Ablation::Oracle);
        let csv = std::fs::read_to_string(out.join("train.csv")).unwrap();
        assert_eq!(csv.lines().count(), 41);
        let _ = std::fs::remove_dir_all(&out);
    }
}

fn all_weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> =
        t.vm.data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                )
            })
            .collect();
    v.extend(t.ema.iter().map(|(k, e)| {
        (
            format!("ema.{k}"),
            e.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        )
    }));
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Training 6 steps straight equals 3 steps, a checkpoint, a resume and 3 more steps.
#[test]
fn resume_is_exact() {
    let s = sampler();
    for ab in [Ablation::Full, Ablation::Club] {
        let mut straight = Trainer::new(tiny(ab, 6), &Device::Cpu).unwrap();
        let out_a = tmp_dir(&format!("straight-{ab}"));
        run(&mut straight, s.clone(), &out_a).unwrap();

        let out_b = tmp_dir(&format!("split-{ab}"));
        let mut first = Trainer::new(tiny(ab, 6), &Device::Cpu).unwrap();
        let src: Arc<dyn PairSource> = s.clone();
        // Stop after 3 steps: a run whose total is 3, then resume with the full length.
        let mut tc3 = tiny(ab, 6);
        tc3.checkpoint_every = 3;
        first.tc = tc3;
        for step in 0..3 {
            let b = host_batch(&s.pairs(4, 48, 7, (step * 4) as u64), 4).unwrap();
            first.train_step(&b).unwrap();
        }
        std::fs::create_dir_all(&out_b).unwrap();
        first.save(&out_b.join("last.safetensors")).unwrap();
        let mut resumed =
            Trainer::resume(tiny(ab, 6), &out_b.join("last.safetensors"), &Device::Cpu).unwrap();
        assert_eq!(resumed.step, 3);
        run(&mut resumed, src, &out_b).unwrap();
        let (a, b) = (all_weights(&straight), all_weights(&resumed));
        assert_eq!(a.len(), b.len());
        for ((na, va), (nb, vb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert_eq!(va, vb, "{ab}: {na} differs after resume");
        }
        let _ = std::fs::remove_dir_all(&out_a);
        let _ = std::fs::remove_dir_all(&out_b);
    }
}

/// An L1 checkpoint continues with the Laplace likelihood: every shared weight is carried over,
/// the new `dec.scale` head starts from its initialisation, the run trains it and refuses the
/// reverse switch.
#[test]
fn l1_checkpoint_resumes_with_laplace_likelihood() {
    let s = sampler();
    let out = tmp_dir("l1-to-laplace");
    std::fs::create_dir_all(&out).unwrap();
    let mut l1 = Trainer::new(tiny(Ablation::Full, 2), &Device::Cpu).unwrap();
    for step in 0..2 {
        let b = host_batch(&s.pairs(4, 48, 7, (step * 4) as u64), 4).unwrap();
        l1.train_step(&b).unwrap();
    }
    let ck = out.join("last.safetensors");
    l1.save(&ck).unwrap();

    let mut tc = tiny(Ablation::Full, 4);
    tc.model = tc.model.with_likelihood(Likelihood::Laplace);
    let mut lap = Trainer::resume(tc.clone(), &ck, &Device::Cpu).unwrap();
    assert_eq!(lap.step, 2);
    let (a, b) = (all_weights(&l1), all_weights(&lap));
    let scale: Vec<_> = b.iter().filter(|(n, _)| n.contains("dec.scale.")).collect();
    assert_eq!(
        scale.len(),
        4,
        "weight and bias of the scale head, and their EMA"
    );
    let shared: Vec<_> = b
        .iter()
        .filter(|(n, _)| !n.contains("dec.scale."))
        .collect();
    assert_eq!(shared.len(), a.len());
    for ((na, va), (nb, vb)) in a.iter().zip(shared) {
        assert_eq!(na, nb);
        assert_eq!(va, vb, "{na} not carried over");
    }
    let before = scale[1].1.clone();
    let b = host_batch(&s.pairs(4, 48, 7, 8), 4).unwrap();
    let l = lap.train_step(&b).unwrap();
    assert!(l.total.is_finite());
    let after = all_weights(&lap)
        .into_iter()
        .find(|(n, _)| n == &scale[1].0)
        .unwrap()
        .1;
    assert_ne!(before, after, "the scale head must be trained");

    // Laplace → L1 would drop a trained head: refused.
    let lap_ck = out.join("laplace.safetensors");
    lap.save(&lap_ck).unwrap();
    let err = Trainer::resume(tiny(Ablation::Full, 4), &lap_ck, &Device::Cpu)
        .err()
        .expect("laplace checkpoint must not resume as l1");
    assert!(format!("{err:#}").contains("likelihood"), "{err:#}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The checkpoint's EMA model (what `export` uses) equals the trainer's EMA model.
#[test]
fn checkpoint_round_trip() {
    let s = sampler();
    let mut t = Trainer::new(tiny(Ablation::Full, 2), &Device::Cpu).unwrap();
    let out = tmp_dir("roundtrip");
    let summary = run(&mut t, s, &out).unwrap();
    let ck = Checkpoint::load(&summary.checkpoint).unwrap();
    assert_eq!(ck.step, 2);
    assert_eq!(ck.cfg, t.tc.model);
    let (_, from_ck) = ck.model(true, &Device::Cpu).unwrap();
    let ema = t.ema_model().unwrap();
    let x = Tensor::rand(0f32, 1f32, (1, 3, 9, 7), &Device::Cpu).unwrap();
    let sr = |m: &savl_train::nn::Savl| {
        let sr = m.forward(&x).unwrap().sr;
        sr.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(sr(&from_ck), sr(&ema));
    let _ = std::fs::remove_dir_all(&out);
}

/// Resuming from an older checkpoint than the log's last row drops the rows that will run again.
#[test]
fn trim_log_drops_rows_after_the_resume_step() {
    let dir = tmp_dir("trim-log");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.csv");
    let rows = ["step,lr", "1,0.1", "2,0.2", "3,0.3", "4,0.4", "5,0.5"];
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    assert_eq!(savl_train::train::trim_log(&path, 3).unwrap(), 2);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "step,lr\n1,0.1\n2,0.2\n3,0.3\n"
    );
    assert_eq!(savl_train::train::trim_log(&path, 3).unwrap(), 0);
    assert!(savl_train::train::trim_log(&dir.join("missing.csv"), 3).is_err());
}

/// Weights of the variables whose names start with one of `prefixes`.
fn weights_of(t: &Trainer, prefixes: &[&str]) -> Vec<(String, Vec<f32>)> {
    all_weights(t)
        .into_iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)))
        .collect()
}

const SR_PARTS: [&str; 4] = ["head.", "body.", "gate.", "tail."];
const ESTIMATOR_PARTS: [&str; 2] = ["est.", "dec."];

/// Stage 0 trains the estimator and decoder alone (the SR net's weights stay bit-identical) and
/// its twin reconstruction loss falls; stage B trains the SR net alone (estimator, decoder and
/// severity statistics stay bit-identical).
#[test]
fn stages_train_only_their_parts() {
    let s = sampler();
    let held_out = host_twin_batch(&s.twin_pairs(8, 48, 12345, 0).unwrap(), 4).unwrap();

    let mut tc = tiny(Ablation::Full, 30);
    tc.stage = Stage::Zero;
    tc.lm_target = LmTarget::Twin;
    let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
    let (sr0, est0) = (weights_of(&t, &SR_PARTS), weights_of(&t, &ESTIMATOR_PARTS));
    let before = t.evaluate(&held_out).unwrap();
    let out = tmp_dir("stage0");
    run(&mut t, s.clone(), &out).unwrap();
    let after = t.evaluate(&held_out).unwrap();
    assert_eq!(weights_of(&t, &SR_PARTS), sr0, "stage 0 moved the SR net");
    assert_ne!(weights_of(&t, &ESTIMATOR_PARTS), est0);
    assert_eq!((before.sr, after.sr), (0.0, 0.0), "stage 0 ran the SR net");
    assert!(
        after.rec < 0.9 * before.rec,
        "twin rec {} -> {}",
        before.rec,
        after.rec
    );
    let ckpt = out.join("last.safetensors");

    let mut tc = tiny(Ablation::Full, 10);
    tc.stage = Stage::B;
    let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
    let fresh = t.init_from(&ckpt, false).unwrap();
    assert!(fresh.is_empty(), "{fresh:?}");
    let est = weights_of(&t, &["est.", "dec.", "sev."]);
    let sr = weights_of(&t, &SR_PARTS);
    run(&mut t, s.clone(), &tmp_dir("stageb")).unwrap();
    assert_eq!(
        weights_of(&t, &["est.", "dec.", "sev."]),
        est,
        "stage B moved the estimator"
    );
    assert_ne!(weights_of(&t, &SR_PARTS), sr);
    let _ = std::fs::remove_dir_all(&out);
}

/// With `sr_grad_to_estimator` off and no LM or KL term, a step leaves the estimator as it was;
/// with it on, the SR loss moves the estimator.
#[test]
fn sr_gradient_reaches_the_estimator_only_when_asked() {
    let s = sampler();
    let batch = host_batch(&s.pairs(4, 48, 9, 0), 4).unwrap();
    for on in [false, true] {
        let mut tc = tiny(Ablation::Full, 5);
        tc.rec_weight = 0.0;
        tc.kl_weight = 0.0;
        tc.weight_decay = 0.0;
        tc.sr_grad_to_estimator = on;
        let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
        let est = weights_of(&t, &["est."]);
        t.train_step(&batch).unwrap();
        assert_eq!(
            weights_of(&t, &["est."]) != est,
            on,
            "sr_grad_to_estimator {on}"
        );
    }
}

/// The twin batch's LM target is the twin's LR, not the pair's own: the same weights give
/// different reconstruction errors for the two targets.
#[test]
fn twin_target_is_the_twins_lr() {
    let s = sampler();
    let pairs = s.twin_pairs(4, 48, 3, 0).unwrap();
    let b = host_twin_batch(&pairs, 4).unwrap();
    assert_eq!(b.twin_lr.len(), b.lr.len());
    assert_ne!(b.twin_lr, b.lr);
    let plain = host_batch(&pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), 4).unwrap();
    assert_eq!(plain.lr, b.lr);
    let mut l = Vec::new();
    for target in [LmTarget::SelfCrop, LmTarget::Twin] {
        let mut tc = tiny(Ablation::Full, 5);
        tc.lm_target = target;
        let mut t = Trainer::new(tc, &Device::Cpu).unwrap();
        l.push(t.evaluate(&b).unwrap().rec);
    }
    assert_ne!(l[0], l[1]);
}
