//! The loop around the trainer: checkpoints, the CSV log, probes and the progress bar.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::nn::Ablation;

use super::{data::*, trainer::*};

/// A summary of a run.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Losses of every step run, in order.
    pub losses: Vec<Losses>,
    /// Median seconds per step (compute only, data prefetched).
    pub median_step_s: f64,
    /// Median seconds spent waiting for data per step.
    pub median_wait_s: f64,
    /// Last checkpoint written.
    pub checkpoint: PathBuf,
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Keeps the header and the rows of steps `≤ step` of the CSV log at `path` (written to a
/// temporary file, then renamed); returns how many rows were dropped.
pub fn trim_log(path: &Path, step: usize) -> Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut kept = String::with_capacity(text.len());
    let mut dropped = 0;
    for (i, line) in text.lines().enumerate() {
        let row_step = line.split(',').next().and_then(|f| f.parse::<usize>().ok());
        match row_step {
            Some(s) if i > 0 && s > step => dropped += 1,
            _ => {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    if dropped > 0 {
        let tmp = path.with_extension("csv.tmp");
        std::fs::write(&tmp, kept).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    }
    Ok(dropped)
}

/// Runs `trainer` to `tc.steps`, writing `out/train.csv`, `out/ckpt-STEP.safetensors`,
/// `out/last.safetensors` and, at the end, `out/model.onnx` (EMA weights).
pub fn run(trainer: &mut Trainer, source: Arc<dyn PairSource>, out: &Path) -> Result<RunSummary> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tc = trainer.tc.clone();
    let start = trainer.step;
    if start >= tc.steps {
        bail!("the run is already at step {start} of {}", tc.steps);
    }
    let csv_path = out.join("train.csv");
    let fresh = start == 0 || !csv_path.exists();
    if !fresh {
        // A run stopped between checkpoints logged steps past the one it resumes from; those
        // steps run again, so their old rows go.
        let dropped = trim_log(&csv_path, start)?;
        if dropped > 0 && tc.progress {
            eprintln!(
                "{}: dropped {dropped} row(s) logged after step {start} (they run again)",
                csv_path.display()
            );
        }
    }
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(&csv_path)
        .with_context(|| format!("opening {}", csv_path.display()))?;
    if fresh {
        writeln!(
            csv,
            "step,lr,total,sr_l1,psnr,rec_l1,kl,club,beta,step_s,wait_s,samples_per_s,map_l1"
        )?;
    }
    let bar = if tc.progress {
        let b = indicatif::ProgressBar::new(tc.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            )
            .expect("template"),
        );
        b.set_position(start as u64);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let probes = match &tc.probe_set {
        Some(dir) if tc.model.ablation.has_estimator() => {
            let gen = crate::degrade::probe::ProbeConfig::default();
            let set = crate::probe::ProbeSet::load(dir, &gen)
                .with_context(|| format!("loading the probe set {}", dir.display()))?;
            Some((set, gen))
        }
        _ => None,
    };
    let mut checkpoints = 0usize;
    let rx = prefetch(source, &tc, start, tc.steps);
    let mut losses = Vec::new();
    let (mut step_times, mut waits) = (Vec::new(), Vec::new());
    let mut last_ckpt = out.join("last.safetensors");
    let run_start = Instant::now();
    while trainer.step < tc.steps {
        let t0 = Instant::now();
        let batch = rx.recv().context("the data thread stopped")??;
        let t1 = Instant::now();
        let l = trainer.train_step(&batch)?;
        let (wait, dt) = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
        waits.push(wait);
        step_times.push(dt);
        let done = trainer.step - start;
        let sps = done as f64 / run_start.elapsed().as_secs_f64();
        writeln!(
            csv,
            "{},{:.3e},{:.5},{:.5},{:.3},{:.5},{:.4},{:.4},{:.3e},{:.3},{:.3},{:.2},{:.5}",
            trainer.step,
            l.lr,
            l.total,
            l.sr,
            l.psnr,
            l.rec,
            l.kl,
            l.club,
            l.beta,
            dt,
            wait,
            sps * tc.batch as f64,
            l.map
        )?;
        bar.set_position(trainer.step as u64);
        bar.set_message(format!(
            "sr {:.4} psnr {:.2} rec {:.4} kl {:.3}{} β {:.1e} | {:.2} steps/s {:.1} samples/s",
            l.sr,
            l.psnr,
            l.rec,
            l.kl,
            if tc.model.ablation == Ablation::Club {
                format!(" club {:.3}", l.club)
            } else {
                String::new()
            },
            l.beta,
            sps,
            sps * tc.batch as f64
        ));
        losses.push(l);
        if trainer.step % tc.checkpoint_every.max(1) == 0 || trainer.step == tc.steps {
            csv.flush()?;
            let p = out.join(format!("ckpt-{:07}.safetensors", trainer.step));
            trainer.save(&p)?;
            std::fs::copy(&p, out.join("last.safetensors"))
                .context("copying the last checkpoint")?;
            last_ckpt = p;
            checkpoints += 1;
            if let Some((set, gen)) = &probes {
                if checkpoints % tc.probe_every.max(1) == 0 || trainer.step == tc.steps {
                    let row = probe_checkpoint(trainer, set, gen)?;
                    log_probe(&out.join("probes.csv"), trainer.step, &row)?;
                    bar.println(format!(
                        "step {}: probes noise {:.1} %, scene {:.1} %, ρ {:.3}",
                        trainer.step,
                        100.0 * row.noise_acc,
                        100.0 * row.scene_acc,
                        row.spearman.unwrap_or(f64::NAN)
                    ));
                }
            }
        }
    }
    bar.finish();
    if tc.model.ablation != Ablation::Oracle {
        crate::export::write_onnx(&trainer.ema_model()?, &out.join("model.onnx"))?;
    }
    Ok(RunSummary {
        losses,
        median_step_s: median(step_times),
        median_wait_s: median(waits),
        checkpoint: last_ckpt,
    })
}

/// The representation probes on the trainer's EMA model, exported and run through the runtime.
pub(super) fn probe_checkpoint(
    trainer: &Trainer,
    set: &crate::probe::ProbeSet,
    gen: &crate::degrade::probe::ProbeConfig,
) -> Result<crate::probe::ProbeRow> {
    let bytes = crate::export::to_onnx_bytes(&trainer.ema_model()?)?;
    let upscaler = savl::Upscaler::builder()
        .model_bytes(bytes)
        .threads(1)
        .build()
        .context("loading the exported checkpoint for the probes")?;
    let feats = crate::probe::Features::Model {
        label: format!("step {}", trainer.step),
        upscaler: Box::new(upscaler),
    };
    let cfg = crate::probe::ProbeRunConfig {
        gen: gen.clone(),
        ..Default::default()
    };
    crate::probe::run_probes(&feats, set, &cfg)
}

/// Appends a row to the probe log (header first when the file is new).
pub(super) fn log_probe(path: &Path, step: usize, row: &crate::probe::ProbeRow) -> Result<()> {
    let fresh = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if fresh {
        writeln!(f, "step,noise_acc,scene_acc,spearman")?;
    }
    writeln!(
        f,
        "{step},{:.4},{:.4},{:.4}",
        row.noise_acc,
        row.scene_acc,
        row.spearman.unwrap_or(f64::NAN)
    )?;
    Ok(())
}
