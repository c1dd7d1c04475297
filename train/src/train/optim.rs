//! AdamW with its moments exposed, for exact checkpoints.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;

use super::config::*;

/// AdamW with its moments exposed (for checkpoints).
pub(crate) struct AdamW {
    pub(super) vars: Vec<(String, Var, Tensor, Tensor)>,
    pub(super) beta1: f64,
    pub(super) beta2: f64,
    pub(super) eps: f64,
    pub(super) weight_decay: f64,
}

impl AdamW {
    pub(super) fn new(
        vars: Vec<(String, Var)>,
        tc: &TrainConfig,
        weight_decay: f64,
    ) -> Result<Self> {
        let vars = vars
            .into_iter()
            .map(|(n, v)| {
                let z = v.zeros_like()?;
                Ok((n, v, z.clone(), z))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            beta1: tc.beta1,
            beta2: tc.beta2,
            eps: tc.eps,
            weight_decay,
        })
    }

    /// One update; `t` is the 1-based step number for the bias correction.
    pub(super) fn step(&mut self, grads: &GradStore, lr: f64, t: usize) -> Result<()> {
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(t as i32);
        let c2 = 1.0 - b2.powi(t as i32);
        for (_, var, m, v) in self.vars.iter_mut() {
            let Some(g) = grads.get(var) else { continue };
            // candle's stock backward ops (the CUDA path) can return a gradient that is still
            // tracked (its graph reaches the step's activations); the moments must not hold it,
            // or every step's activations stay alive through the chain m_t → m_{t-1} → …
            let g = &g.detach();
            *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let upd = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + self.eps)?)?;
            let w = (var.as_tensor() * (1.0 - lr * self.weight_decay))?;
            var.set(&(w - (upd * lr)?)?)?;
        }
        Ok(())
    }

    pub(super) fn save_into(&self, prefix: &str, out: &mut HashMap<String, Tensor>) {
        for (n, _, m, v) in &self.vars {
            out.insert(format!("{prefix}.m.{n}"), m.clone());
            out.insert(format!("{prefix}.v.{n}"), v.clone());
        }
    }

    /// Loads the moments of every variable except those `keep_fresh` names (left at zero).
    pub(super) fn load_from(
        &mut self,
        prefix: &str,
        t: &HashMap<String, Tensor>,
        keep_fresh: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        for (n, _, m, v) in self.vars.iter_mut() {
            if keep_fresh(n) {
                continue;
            }
            *m = t
                .get(&format!("{prefix}.m.{n}"))
                .with_context(|| format!("checkpoint lacks {prefix}.m.{n}"))?
                .clone();
            *v = t
                .get(&format!("{prefix}.v.{n}"))
                .with_context(|| format!("checkpoint lacks {prefix}.v.{n}"))?
                .clone();
        }
        Ok(())
    }
}

pub(crate) fn sorted_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = vm
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
