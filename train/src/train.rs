//! The trainer (being written): checkpoints.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::nn::{Config, Savl};

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model sizes.
    pub cfg: Config,
    /// Optimiser steps done.
    pub step: usize,
    /// Every tensor in the file.
    pub tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads a checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        anyhow::bail!("{}: checkpoint loading not implemented yet", path.display())
    }

    /// The model, from the EMA weights (`ema = true`) or the raw ones.
    pub fn model(&self, ema: bool, dev: &Device) -> Result<(VarMap, Savl)> {
        let prefix = if ema { "ema." } else { "" };
        let vm = VarMap::new();
        let m = Savl::new(&self.cfg, VarBuilder::from_varmap(&vm, DType::F32, dev))?;
        for (name, var) in vm.data().lock().expect("varmap lock").iter() {
            let t = self
                .tensors
                .get(&format!("{prefix}{name}"))
                .with_context(|| format!("checkpoint lacks {prefix}{name}"))?;
            var.set(t)?;
        }
        Ok((vm, m))
    }
}
