//! Where batches come from: pair sources, host batches and the prefetch thread.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};

use crate::degrade::{downscale_bicubic_aa, DegradedPair, PairSampler};

use super::config::*;

/// Where training pairs come from.
pub trait PairSource: Send + Sync + 'static {
    /// Pairs `first_index .. first_index + n` of stream `seed`, HR crops of `crop_hr` pixels;
    /// deterministic in the arguments.
    fn pairs(&self, n: usize, crop_hr: usize, seed: u64, first_index: u64) -> Vec<DegradedPair>;

    /// The same pairs, each with its twin (the same degradation on other content), or `None`
    /// when this source cannot make twins.
    fn twin_pairs(
        &self,
        _n: usize,
        _crop_hr: usize,
        _seed: u64,
        _first_index: u64,
    ) -> Option<Vec<(DegradedPair, DegradedPair)>> {
        None
    }
}

impl PairSource for PairSampler {
    fn pairs(&self, n: usize, crop_hr: usize, seed: u64, first_index: u64) -> Vec<DegradedPair> {
        self.batch(n, crop_hr, seed, first_index)
    }

    fn twin_pairs(
        &self,
        n: usize,
        crop_hr: usize,
        seed: u64,
        first_index: u64,
    ) -> Option<Vec<(DegradedPair, DegradedPair)>> {
        Some(self.twin_batch(n, crop_hr, seed, first_index))
    }
}

/// One batch in host memory, NCHW f32.
#[derive(Clone, Debug)]
pub struct HostBatch {
    /// Pairs.
    pub n: usize,
    /// LR rows.
    pub h: usize,
    /// LR columns.
    pub w: usize,
    /// Degraded LR `[n, 3, h, w]`.
    pub lr: Vec<f32>,
    /// HR target `[n, 3, 4h, 4w]`.
    pub hr: Vec<f32>,
    /// Content code z = bicubic↓(HR) `[n, 3, h, w]`.
    pub z: Vec<f32>,
    /// The twins' degraded LR `[n, 3, h, w]` (empty without twins).
    pub twin_lr: Vec<f32>,
    /// The twins' content codes `[n, 3, h, w]` (empty without twins).
    pub twin_z: Vec<f32>,
    /// The oracle's gate input from the ground-truth maps `[n, 4, h, w]` ([`oracle_guide`]).
    pub maps: Vec<f32>,
}

/// The oracle's gate input from a pair's ground-truth maps, `[4, h, w]` row-major: noise σ / 10
/// (σ in 1/255), blur σ (LR px), and (100 − q) / 50 for both JPEG steps.
pub fn oracle_guide(maps: &crate::degrade::DegradationMaps) -> Vec<f32> {
    let mut v = Vec::with_capacity(4 * maps.noise_sigma.len());
    v.extend(maps.noise_sigma.iter().map(|s| s / 10.0));
    v.extend_from_slice(&maps.blur_sigma);
    v.extend(maps.jpeg_q1.iter().map(|&q| (100.0 - q as f32) / 50.0));
    v.extend(maps.jpeg_q2.iter().map(|&q| (100.0 - q as f32) / 50.0));
    v
}

/// Stacks pairs into a batch and computes the content codes.
pub fn host_batch(pairs: &[DegradedPair], scale: usize) -> Result<HostBatch> {
    let first = pairs.first().context("empty batch")?;
    let (h, w) = (first.lr.height, first.lr.width);
    let mut b = HostBatch {
        n: pairs.len(),
        h,
        w,
        lr: Vec::new(),
        hr: Vec::new(),
        z: Vec::new(),
        twin_lr: Vec::new(),
        twin_z: Vec::new(),
        maps: Vec::new(),
    };
    for p in pairs {
        ensure!(
            p.lr.channels == 3 && p.lr.height == h && p.lr.width == w,
            "pair LR is {}×{}×{}, expected 3×{h}×{w}",
            p.lr.channels,
            p.lr.height,
            p.lr.width
        );
        ensure!(
            p.hr.channels == 3 && p.hr.height == h * scale && p.hr.width == w * scale,
            "pair HR is {}×{}×{}, expected 3×{}×{}",
            p.hr.channels,
            p.hr.height,
            p.hr.width,
            h * scale,
            w * scale
        );
        b.lr.extend_from_slice(&p.lr.data);
        b.hr.extend_from_slice(&p.hr.data);
        b.z.extend_from_slice(&downscale_bicubic_aa(&p.hr, scale).data);
        b.maps.extend(oracle_guide(&p.maps));
    }
    Ok(b)
}

/// [`host_batch`] of the first pairs, with their twins' LR and content codes.
pub fn host_twin_batch(pairs: &[(DegradedPair, DegradedPair)], scale: usize) -> Result<HostBatch> {
    let firsts: Vec<DegradedPair> = pairs.iter().map(|(a, _)| a.clone()).collect();
    let mut b = host_batch(&firsts, scale)?;
    for (a, t) in pairs {
        ensure!(
            t.lr.height == a.lr.height && t.lr.width == a.lr.width,
            "twin LR is {}×{}, its pair's {}×{}",
            t.lr.height,
            t.lr.width,
            a.lr.height,
            a.lr.width
        );
        b.twin_lr.extend_from_slice(&t.lr.data);
        b.twin_z
            .extend_from_slice(&downscale_bicubic_aa(&t.hr, scale).data);
    }
    Ok(b)
}

/// Builds the batches of steps `start..end` on a background thread, one ahead of the consumer.
pub fn prefetch(
    source: Arc<dyn PairSource>,
    tc: &TrainConfig,
    start: usize,
    end: usize,
) -> Receiver<Result<HostBatch>> {
    let (tx, rx) = sync_channel(1);
    let (n, crop, seed, scale) = (
        tc.batch,
        tc.lr_crop * tc.model.scale,
        tc.seed,
        tc.model.scale,
    );
    let twins = tc.needs_twins();
    std::thread::spawn(move || {
        for step in start..end {
            let first = (step * n) as u64;
            let batch = if twins {
                match source.twin_pairs(n, crop, seed, first) {
                    Some(p) => host_twin_batch(&p, scale),
                    None => Err(anyhow::anyhow!(
                        "--lm-target twin needs twin pairs, which this data source cannot make"
                    )),
                }
            } else {
                host_batch(&source.pairs(n, crop, seed, first), scale)
            };
            if tx.send(batch).is_err() {
                break;
            }
        }
    });
    rx
}
