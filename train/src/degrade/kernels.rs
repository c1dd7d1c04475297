//! Blur kernels of the Real-ESRGAN recipe (BasicSR `basicsr/data/degradations.py`): isotropic,
//! anisotropic, generalized and plateau Gaussians, the circular low-pass (sinc) kernel, the unit
//! pulse, and their random draw. All functions are pure; every kernel sums to 1.

use rand::Rng;
use std::f64::consts::PI;

/// A square, odd-sized 2-D kernel, row-major, centred at `(size/2, size/2)`.
///
/// The reference pads every kernel to 21×21 with zeros; convolving with the unpadded kernel is
/// the same operation, so the kernel is stored at its drawn size.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Side length (odd).
    pub size: usize,
    /// `size * size` weights, row-major (row = vertical offset).
    pub data: Vec<f32>,
}

/// Which family a kernel came from (recorded for the maps and for debugging).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// Isotropic Gaussian.
    Iso,
    /// Anisotropic (rotated) Gaussian.
    Aniso,
    /// Generalized Gaussian, isotropic.
    GeneralizedIso,
    /// Generalized Gaussian, anisotropic.
    GeneralizedAniso,
    /// Plateau, isotropic.
    PlateauIso,
    /// Plateau, anisotropic.
    PlateauAniso,
    /// Circular low-pass (sinc) kernel.
    Sinc,
    /// The identity.
    Pulse,
}

impl Kernel {
    /// The identity (a 1×1 unit pulse).
    pub fn pulse() -> Self {
        Self {
            size: 1,
            data: vec![1.0],
        }
    }

    /// Radius `size / 2`.
    pub fn radius(&self) -> usize {
        self.size / 2
    }

    /// True for the 1×1 identity.
    pub fn is_pulse(&self) -> bool {
        self.size == 1
    }

    /// Weight at row offset `dy`, column offset `dx` from the centre.
    pub fn at(&self, dy: isize, dx: isize) -> f32 {
        let r = self.radius() as isize;
        self.data[((dy + r) as usize) * self.size + (dx + r) as usize]
    }

    /// Sum of the weights.
    pub fn sum(&self) -> f64 {
        self.data.iter().map(|&v| v as f64).sum()
    }

    /// Second-moment matrix `[[Σk·x², Σk·xy], [Σk·xy, Σk·y²]]` (x = column offset).
    pub fn second_moments(&self) -> [[f64; 2]; 2] {
        let r = self.radius() as isize;
        let mut m = [[0.0; 2]; 2];
        for dy in -r..=r {
            for dx in -r..=r {
                let k = self.at(dy, dx) as f64;
                let (x, y) = (dx as f64, dy as f64);
                m[0][0] += k * x * x;
                m[0][1] += k * x * y;
                m[1][1] += k * y * y;
            }
        }
        m[1][0] = m[0][1];
        m
    }

    /// Equivalent std `sqrt(½ Σ k(i,j)(i² + j²))` in pixels, clamped at 0 (a sinc kernel can have
    /// a negative second moment). Equals σ for an isotropic Gaussian.
    pub fn equivalent_sigma(&self) -> f32 {
        let m = self.second_moments();
        (0.5 * (m[0][0] + m[1][1])).max(0.0).sqrt() as f32
    }
}

fn normalised(size: usize, mut data: Vec<f64>) -> Kernel {
    let s: f64 = data.iter().sum();
    for v in &mut data {
        *v /= s;
    }
    Kernel {
        size,
        data: data.into_iter().map(|v| v as f32).collect(),
    }
}

/// Quadratic form `gᵀ Σ⁻¹ g` on the centred grid, `Σ = R(θ) diag(σx², σy²) R(θ)ᵀ`; x is the
/// column offset, y the row offset.
fn quad_form(size: usize, sigma_x: f64, sigma_y: f64, theta: f64) -> Vec<f64> {
    assert!(size % 2 == 1, "kernel size must be odd");
    let (c, s) = (theta.cos(), theta.sin());
    // Σ⁻¹ = R diag(1/σx², 1/σy²) Rᵀ
    let (a, b) = (1.0 / (sigma_x * sigma_x), 1.0 / (sigma_y * sigma_y));
    let i00 = c * c * a + s * s * b;
    let i01 = c * s * (a - b);
    let i11 = s * s * a + c * c * b;
    let r = (size / 2) as isize;
    let mut q = Vec::with_capacity(size * size);
    for dy in -r..=r {
        for dx in -r..=r {
            let (x, y) = (dx as f64, dy as f64);
            q.push(i00 * x * x + 2.0 * i01 * x * y + i11 * y * y);
        }
    }
    q
}

/// Bivariate Gaussian `∝ exp(−½ gᵀΣ⁻¹g)`, normalised. Isotropic when `σx = σy`, `θ = 0`.
pub fn gaussian(size: usize, sigma_x: f64, sigma_y: f64, theta: f64) -> Kernel {
    let q = quad_form(size, sigma_x, sigma_y, theta);
    normalised(size, q.into_iter().map(|v| (-0.5 * v).exp()).collect())
}

/// Generalized Gaussian `∝ exp(−½ (gᵀΣ⁻¹g)^β)`, normalised.
pub fn generalized_gaussian(
    size: usize,
    sigma_x: f64,
    sigma_y: f64,
    theta: f64,
    beta: f64,
) -> Kernel {
    let q = quad_form(size, sigma_x, sigma_y, theta);
    normalised(
        size,
        q.into_iter().map(|v| (-0.5 * v.powf(beta)).exp()).collect(),
    )
}

/// Plateau kernel `∝ 1 / (1 + (gᵀΣ⁻¹g)^β)`, normalised.
pub fn plateau(size: usize, sigma_x: f64, sigma_y: f64, theta: f64, beta: f64) -> Kernel {
    let q = quad_form(size, sigma_x, sigma_y, theta);
    normalised(
        size,
        q.into_iter().map(|v| 1.0 / (1.0 + v.powf(beta))).collect(),
    )
}

/// Circular low-pass kernel `ω_c J₁(ω_c ρ) / (2πρ)`, centre `ω_c² / 4π`, normalised
/// (BasicSR `circular_lowpass_kernel`).
pub fn sinc(size: usize, cutoff: f64) -> Kernel {
    assert!(size % 2 == 1, "kernel size must be odd");
    let r = (size / 2) as isize;
    let mut data = Vec::with_capacity(size * size);
    for dy in -r..=r {
        for dx in -r..=r {
            let rho = ((dx * dx + dy * dy) as f64).sqrt();
            data.push(if rho == 0.0 {
                cutoff * cutoff / (4.0 * PI)
            } else {
                cutoff * bessel_j1(cutoff * rho) / (2.0 * PI * rho)
            });
        }
    }
    normalised(size, data)
}

/// Bessel function of the first kind, order 1 (rational approximations of Numerical Recipes
/// `bessj1`, absolute error below 1e-7).
pub fn bessel_j1(x: f64) -> f64 {
    let ax = x.abs();
    if ax < 8.0 {
        let y = x * x;
        let n = x
            * (72362614232.0
                + y * (-7895059235.0
                    + y * (242396853.1
                        + y * (-2972611.439 + y * (15704.48260 + y * (-30.16036606))))));
        let d = 144725228442.0
            + y * (2300535178.0 + y * (18583304.74 + y * (99447.43394 + y * (376.9991397 + y))));
        n / d
    } else {
        let z = 8.0 / ax;
        let y = z * z;
        let xx = ax - 2.356194491;
        let p = 1.0
            + y * (0.183105e-2
                + y * (-0.3516396496e-4 + y * (0.2457520174e-5 + y * (-0.240337019e-6))));
        let q = 0.04687499995
            + y * (-0.2002690873e-3
                + y * (0.8449199096e-5 + y * (-0.88228987e-6 + y * 0.105787412e-6)));
        let v = (std::f64::consts::FRAC_2_PI / ax).sqrt() * (xx.cos() * p - z * xx.sin() * q);
        if x < 0.0 {
            -v
        } else {
            v
        }
    }
}

/// Ranges of one kernel draw (kernel 1 and kernel 2 differ only in σ; a "mild" regime narrows σ
/// and forbids sinc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelRanges {
    /// Probability of a sinc kernel instead of a mixed Gaussian-family kernel.
    pub sinc_prob: f64,
    /// Range of σx, σy.
    pub sigma: (f64, f64),
}

/// Kernel 1 of Real-ESRGAN: sinc p 0.1, σ ∈ U(0.2, 3).
pub const KERNEL1: KernelRanges = KernelRanges {
    sinc_prob: 0.1,
    sigma: (0.2, 3.0),
};
/// Kernel 2 of Real-ESRGAN: sinc p 0.1, σ ∈ U(0.2, 1.5).
pub const KERNEL2: KernelRanges = KernelRanges {
    sinc_prob: 0.1,
    sigma: (0.2, 1.5),
};

/// Size uniform over {7, 9, …, 21}.
fn random_size<R: Rng>(rng: &mut R) -> usize {
    2 * rng.random_range(3..=10) + 1
}

/// Sinc cutoff: U(π/3, π) for size < 13, else U(π/5, π).
fn random_cutoff<R: Rng>(rng: &mut R, size: usize) -> f64 {
    if size < 13 {
        rng.random_range(PI / 3.0..PI)
    } else {
        rng.random_range(PI / 5.0..PI)
    }
}

/// One Real-ESRGAN kernel draw: size {7..21}; sinc with `sinc_prob`, else the mixed family with
/// probabilities iso 0.45, aniso 0.25, generalized iso 0.12 / aniso 0.03, plateau iso 0.12 /
/// aniso 0.03; θ ∈ U(−π, π); generalized β: p 0.5 U(0.5, 1) else U(1, 4); plateau β: p 0.5 1
/// else U(1, 2).
pub fn random_kernel<R: Rng>(rng: &mut R, ranges: &KernelRanges) -> (Kernel, KernelKind) {
    let size = random_size(rng);
    if rng.random::<f64>() < ranges.sinc_prob {
        let wc = random_cutoff(rng, size);
        return (sinc(size, wc), KernelKind::Sinc);
    }
    let u: f64 = rng.random();
    let kind = if u < 0.45 {
        KernelKind::Iso
    } else if u < 0.70 {
        KernelKind::Aniso
    } else if u < 0.82 {
        KernelKind::GeneralizedIso
    } else if u < 0.85 {
        KernelKind::GeneralizedAniso
    } else if u < 0.97 {
        KernelKind::PlateauIso
    } else {
        KernelKind::PlateauAniso
    };
    let (lo, hi) = ranges.sigma;
    let sx = rng.random_range(lo..=hi);
    let iso = matches!(
        kind,
        KernelKind::Iso | KernelKind::GeneralizedIso | KernelKind::PlateauIso
    );
    let (sy, theta) = if iso {
        (sx, 0.0)
    } else {
        (rng.random_range(lo..=hi), rng.random_range(-PI..PI))
    };
    let k = match kind {
        KernelKind::Iso | KernelKind::Aniso => gaussian(size, sx, sy, theta),
        KernelKind::GeneralizedIso | KernelKind::GeneralizedAniso => {
            let beta = if rng.random::<f64>() < 0.5 {
                rng.random_range(0.5..1.0)
            } else {
                rng.random_range(1.0..4.0)
            };
            generalized_gaussian(size, sx, sy, theta, beta)
        }
        _ => {
            let beta = if rng.random::<f64>() < 0.5 {
                1.0
            } else {
                rng.random_range(1.0..2.0)
            };
            plateau(size, sx, sy, theta, beta)
        }
    };
    (k, kind)
}

/// The final-stage kernel: with `prob` (0.8) a sinc of size {7..21}, ω_c ∈ U(π/3, π); otherwise
/// the pulse.
pub fn random_final_sinc<R: Rng>(rng: &mut R, prob: f64) -> (Kernel, KernelKind) {
    if rng.random::<f64>() < prob {
        let size = random_size(rng);
        let wc = rng.random_range(PI / 3.0..PI);
        (sinc(size, wc), KernelKind::Sinc)
    } else {
        (Kernel::pulse(), KernelKind::Pulse)
    }
}
