//! The inputs the conv bench (`benches/conv.rs`) and the ad-hoc timings
//! (`tests/model_timing.rs`, which includes this file) measure on, so that both time the same
//! work.
#![allow(dead_code)] // each includer uses a part of it

use candle_core::{Device, Tensor, Var};
use savl_train::train::HostBatch;

/// A tensor of uniform values in [−1, 1) from `seed`.
pub fn rand(shape: &[usize], seed: u64) -> Tensor {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>(),
        shape,
        &Device::Cpu,
    )
    .unwrap()
}

/// The 3×3 conv case, b16, 48 → 48 channels, 48×48: input, weights, and the tensor the output
/// is multiplied by before the sum that is differentiated.
pub fn conv_case() -> (usize, Var, Var, Tensor) {
    let (b, ch, hw) = (16, 48, 48);
    let x = Var::from_tensor(&rand(&[b, ch, hw, hw], 1)).unwrap();
    let w = Var::from_tensor(&(rand(&[ch, ch, 3, 3], 2) * 0.1).unwrap()).unwrap();
    let r = rand(&[b, ch, hw, hw], 3);
    (b, x, w, r)
}

/// A fixed batch of `n` random `h × h` LR crops in [0, 1) and their ×4 HR targets (no twins,
/// oracle maps zero), for one training step.
pub fn step_batch(n: usize, h: usize) -> HostBatch {
    let pixels = |shape: &[usize], seed| {
        rand(shape, seed)
            .affine(0.5, 0.5)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let lr = pixels(&[n, 3, h, h], 4);
    let hr = pixels(&[n, 3, 4 * h, 4 * h], 5);
    HostBatch {
        n,
        h,
        w: h,
        z: lr.clone(),
        maps: vec![0.0; n * savl_train::nn::ORACLE_MAPS * h * h],
        lr,
        hr,
        twin_lr: Vec::new(),
        twin_z: Vec::new(),
    }
}
