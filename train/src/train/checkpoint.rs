//! Checkpoints: weights, EMA, optimiser moments, step and config in one safetensors file.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::nn::{Config, Likelihood, Savl};

use super::optim::*;

/// An f32 tensor in host memory, as `safetensors` 0.4 wants it.
pub(super) struct F32View {
    pub(super) shape: Vec<usize>,
    pub(super) bytes: Vec<u8>,
}

impl F32View {
    pub(super) fn new(t: &Tensor) -> Result<Self> {
        let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        Ok(Self {
            shape: t.dims().to_vec(),
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
    }
}

impl safetensors::View for F32View {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model sizes.
    pub cfg: Config,
    /// Optimiser steps done.
    pub step: usize,
    /// Every tensor in the file.
    pub tensors: HashMap<String, Tensor>,
    /// The safetensors metadata.
    pub meta: HashMap<String, String>,
}

impl Checkpoint {
    /// Reads a checkpoint written by [`Trainer::save`](super::Trainer::save).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, st_meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        let meta: HashMap<String, String> = st_meta.metadata().clone().unwrap_or_default();
        let cfg = config_from_meta(&meta)
            .with_context(|| format!("{}: no model config", path.display()))?;
        let step = meta
            .get("step")
            .and_then(|s| s.parse().ok())
            .context("checkpoint without a step")?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        Ok(Self {
            cfg,
            step,
            tensors,
            meta,
        })
    }

    pub(super) fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .with_context(|| format!("checkpoint lacks {name}"))
    }

    /// The model, from the EMA weights (`ema = true`) or the raw ones.
    pub fn model(&self, ema: bool, dev: &Device) -> Result<(VarMap, Savl)> {
        let prefix = if ema { "ema." } else { "" };
        let vm = VarMap::new();
        let m = Savl::new(&self.cfg, VarBuilder::from_varmap(&vm, DType::F32, dev))?;
        for (name, var) in sorted_vars(&vm) {
            var.set(&self.tensor(&format!("{prefix}{name}"))?.to_device(dev)?)?;
        }
        Ok((vm, m))
    }
}

pub(super) fn config_to_meta(c: &Config) -> HashMap<String, String> {
    let kv = [
        ("preset", c.preset.clone()),
        ("scale", c.scale.to_string()),
        ("channels", c.channels.to_string()),
        ("body_convs", c.body_convs.to_string()),
        ("gate_every", c.gate_every.to_string()),
        ("est_channels", c.est_channels.to_string()),
        ("est_convs", c.est_convs.to_string()),
        ("latent", c.latent.to_string()),
        ("dec_channels", c.dec_channels.to_string()),
        ("dec_convs", c.dec_convs.to_string()),
        ("leaky_slope", c.leaky_slope.to_string()),
        ("logvar_min", c.logvar_range.0.to_string()),
        ("logvar_max", c.logvar_range.1.to_string()),
        ("ablation", c.ablation.name().to_string()),
        ("likelihood", c.likelihood.name().to_string()),
    ];
    kv.into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect()
}

pub(super) fn config_from_meta(m: &HashMap<String, String>) -> Result<Config> {
    let get = |k: &str| {
        m.get(&format!("model.{k}"))
            .with_context(|| format!("metadata lacks model.{k}"))
    };
    pub(super) fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T> {
        v.parse()
            .map_err(|_| anyhow::anyhow!("metadata model.{k} = {v:?} is not a number"))
    }
    Ok(Config {
        preset: get("preset")?.clone(),
        scale: num("scale", get("scale")?)?,
        channels: num("channels", get("channels")?)?,
        body_convs: num("body_convs", get("body_convs")?)?,
        gate_every: num("gate_every", get("gate_every")?)?,
        est_channels: num("est_channels", get("est_channels")?)?,
        est_convs: num("est_convs", get("est_convs")?)?,
        latent: num("latent", get("latent")?)?,
        dec_channels: num("dec_channels", get("dec_channels")?)?,
        dec_convs: num("dec_convs", get("dec_convs")?)?,
        leaky_slope: num("leaky_slope", get("leaky_slope")?)?,
        logvar_range: (
            num("logvar_min", get("logvar_min")?)?,
            num("logvar_max", get("logvar_max")?)?,
        ),
        ablation: get("ablation")?.parse().map_err(anyhow::Error::msg)?,
        // Checkpoints from before the Laplace likelihood existed are L1.
        likelihood: match m.get("model.likelihood") {
            Some(v) => v.parse().map_err(anyhow::Error::msg)?,
            None => Likelihood::L1,
        },
    })
}
