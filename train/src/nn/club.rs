//! CLUB upper bound on I(a; b) (Cheng et al., ICML 2020; `Linear95/CLUB`), for the
//! `--ablation club` variant: a = the sampled latent r(u), b = the content code z(u), per pixel.
//!
//! A Gaussian variational net `q(b | a) = N(μ(a), diag exp(logvar(a)))` is fitted by maximum
//! likelihood on positive pairs; the main model then minimises the CLUB estimate with `q` frozen.

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

/// The variational net: `μ(a)`: a → h/2 → ReLU → b; `logvar(a)`: a → h/2 → ReLU → b → tanh.
#[derive(Clone, Debug)]
pub struct ClubNet {
    mu1: Linear,
    mu2: Linear,
    lv1: Linear,
    lv2: Linear,
}

impl ClubNet {
    /// Builds the net for `a_dim`-dim inputs, `b_dim`-dim targets and hidden size `hidden`.
    pub fn new(a_dim: usize, b_dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        let h = (hidden / 2).max(1);
        Ok(Self {
            mu1: candle_nn::linear(a_dim, h, vb.pp("mu1"))?,
            mu2: candle_nn::linear(h, b_dim, vb.pp("mu2"))?,
            lv1: candle_nn::linear(a_dim, h, vb.pp("lv1"))?,
            lv2: candle_nn::linear(h, b_dim, vb.pp("lv2"))?,
        })
    }

    /// `(μ, logvar)` of `q(b | a)` for `a [N, a_dim]`, each `[N, b_dim]`.
    pub fn forward(&self, a: &Tensor) -> Result<(Tensor, Tensor)> {
        let mu = self.mu2.forward(&self.mu1.forward(a)?.relu()?)?;
        let lv = self.lv2.forward(&self.lv1.forward(a)?.relu()?)?.tanh()?;
        Ok((mu, lv))
    }

    /// Negative mean log-likelihood (without the constant) of positive pairs: the loss that fits
    /// `q`.
    pub fn nll(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (mu, lv) = self.forward(a)?;
        log_likelihood(&mu, &lv, b)?.mean_all()?.neg()
    }
}

/// `log q(b_i | a_i)` without the `−½ d log 2π` constant, per row: `[N]`.
pub fn log_likelihood(mu: &Tensor, logvar: &Tensor, b: &Tensor) -> Result<Tensor> {
    let sq = (mu - b)?.sqr()?;
    let t = ((sq / logvar.exp()?)? * -0.5)?;
    (t - (logvar * 0.5)?)?.sum(D::Minus1)
}

/// CLUBSample: `mean_i [log q(b_i | a_i) − log q(b_π(i) | a_i)]` for a permutation `perm`
/// (the `logvar` terms cancel).
pub fn club_sample(mu: &Tensor, logvar: &Tensor, b: &Tensor, perm: &Tensor) -> Result<Tensor> {
    let neg = b.index_select(perm, 0)?;
    let pos = log_likelihood(mu, logvar, b)?;
    let negl = log_likelihood(mu, logvar, &neg)?;
    (pos - negl)?.mean_all()
}

/// vCLUB: `(1/N) Σ_i log q(b_i | a_i) − (1/N²) Σ_i Σ_j log q(b_j | a_i)`, O(N²) memory.
pub fn club_full(mu: &Tensor, logvar: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (n, d) = mu.dims2()?;
    let pos = log_likelihood(mu, logvar, b)?.mean_all()?;
    // [N, 1, d] − [1, N, d] → [N(i), N(j), d]
    let diff = mu
        .reshape((n, 1, d))?
        .broadcast_sub(&b.reshape((1, n, d))?)?;
    let inv = (logvar.exp()?.recip()? * -0.5)?.reshape((n, 1, d))?;
    let t = diff.sqr()?.broadcast_mul(&inv)?.sum(D::Minus1)?; // [N, N]
    let t = t.broadcast_sub(&(logvar * 0.5)?.sum_keepdim(D::Minus1)?)?;
    pos - t.mean_all()?
}
