//! Numeric precision of the model file, and the `auto` choice for this CPU.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Numeric precision of the network weights and arithmetic.
///
/// Parsed from and displayed as `auto`, `f32`, `f16`, `int8`. [`Precision::Auto`] is only a
/// request: an [`crate::Upscaler`] always reports the resolved precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// Pick the fastest precision this CPU runs natively among those the model has.
    #[default]
    Auto,
    /// 32-bit float.
    F32,
    /// 16-bit float (fast only on aarch64 with FEAT_FP16). There, with Winograd on, the f32
    /// file's 3×3 convs run as Winograd with their products in fp16
    /// ([`CpuCaps::fp16_winograd`]; `auto` picks it for savl models only); elsewhere, or
    /// without an f32 file, the f16 file runs in tract.
    F16,
    /// 8-bit integer (QOperator ONNX; fast with int8 dot-product instructions).
    Int8,
}

impl Precision {
    /// Every concrete precision (not `Auto`).
    pub const CONCRETE: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Int8];

    /// The lowercase name used on the command line and in model metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" => Ok(Precision::F16),
            "int8" | "i8" | "u8" | "q8" => Ok(Precision::Int8),
            other => Err(Error::config(
                "precision",
                format!("`{other}`"),
                "one of auto, f32, f16, int8",
            )),
        }
    }
}

/// What this CPU can do fast, as far as the precision choice is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuCaps {
    /// Fast int8 dot products (x86 AVX512-VNNI / AVX-VNNI, aarch64 dotprod).
    pub int8_dot: bool,
    /// Native fp16 arithmetic (aarch64 FEAT_FP16, as HWCAP reports it).
    pub fp16: bool,
    /// f32 files run savl's Winograd 3×3 convs (on unless `SAVL_DISABLE_WINOGRAD` is set).
    pub winograd: bool,
    /// x86-64 with AVX2 + FMA (the Winograd and GEMM kernels' fast path there).
    pub avx2_fma: bool,
    /// Short name of the instruction set tract dispatches on (for `describe`).
    pub isa: &'static str,
    /// Human-readable feature list.
    pub features: String,
}

/// Multiply-adds per output value per input channel of a 3×3 conv: 9 as tract runs it
/// (im2col + GEMM), 2.25 by savl's Winograd F(4×4, 3×3) (36 products for 16 outputs), in f32
/// or with fp16 products.
const DIRECT_MACS: f64 = 9.0;
const WINOGRAD_MACS: f64 = 2.25;

impl CpuCaps {
    /// Precision f16 runs the f32 file's Winograd convs with fp16 products: native fp16
    /// arithmetic and Winograd on.
    pub fn fp16_winograd(&self) -> bool {
        self.fp16 && self.winograd
    }

    /// Probe the running CPU (through tract-linalg, honouring `TRACT_CPU_ISA`).
    pub fn detect() -> CpuCaps {
        use tract_linalg::isa::Isa;
        let set = tract_linalg::isa::native();
        let int8_dot = set.has(Isa::X86_64Avx512Vnni)
            || set.has(Isa::X86_64AvxVnni)
            || set.has(Isa::Aarch64DotProd);
        // FEAT_FP16 as the OS reports it in HWCAP (what the `gemm` crate's fp16 kernels check;
        // QEMU user mode emulates it), unless `TRACT_CPU_ISA` took it out of tract's set (tract
        // probes /proc/cpuinfo, which QEMU user mode does not emulate).
        let fp16 = hwcap_fp16() && (set.has(Isa::Aarch64Fp16) || !tract_linalg::has_fp16());
        CpuCaps {
            int8_dot,
            fp16,
            winograd: crate::rewrites::winograd::enabled_by_env(),
            avx2_fma: set.has(Isa::X86_64Avx2) && set.has(Isa::X86_64Fma),
            isa: set.nickname(),
            features: format!("{set:?}"),
        }
    }

    /// Relative time of the 3×3 convs (which are almost all of a savl model's work) in
    /// `precision` on this CPU: multiply-adds per output (Winograd or direct) over the
    /// multiply-add throughput relative to f32. Throughputs are per 128-bit SIMD instruction:
    /// f32 FMA 4 lanes; fp16 FMA 8 lanes (native fp16 only, else tract converts in software, far
    /// slower); int8 dot product 16 products (SDOT / VNNI), or 8 widening multiply-adds
    /// without (the peaks in `docs/PERF.md`, "Precision choice"). With Winograd on, f32 and
    /// native fp16 both take Winograd's multiply-adds (fp16: [`CpuCaps::fp16_winograd`]); int8
    /// and software fp16 take the direct count (tract's convs). f32 on x86-64 without
    /// AVX2 + FMA counts as half speed. A cost proxy, not a measurement: it ranks, it does
    /// not time.
    pub fn conv_cost(&self, precision: Precision) -> f64 {
        match precision {
            Precision::F32 | Precision::Auto => {
                let macs = if self.winograd {
                    WINOGRAD_MACS
                } else {
                    DIRECT_MACS
                };
                let x86_slow = cfg!(target_arch = "x86_64") && !self.avx2_fma;
                macs * if x86_slow { 2.0 } else { 1.0 }
            }
            Precision::F16 if self.fp16_winograd() => WINOGRAD_MACS / 2.0,
            Precision::F16 if self.fp16 => DIRECT_MACS / 2.0,
            Precision::F16 => DIRECT_MACS * 16.0,
            Precision::Int8 if self.int8_dot => DIRECT_MACS / 4.0,
            Precision::Int8 => DIRECT_MACS / 2.0,
        }
    }

    /// The precision `auto` resolves to among `available`, with the reason: the lowest
    /// [`CpuCaps::conv_cost`]; on a tie the more exact one (f32, then f16, then int8).
    pub fn choose(&self, available: &[Precision]) -> (Precision, String) {
        let order = [Precision::F32, Precision::F16, Precision::Int8];
        let mut best: Option<(Precision, f64)> = None;
        for p in order.into_iter().filter(|p| available.contains(p)) {
            let c = self.conv_cost(p);
            if best.is_none_or(|(_, b)| c < b) {
                best = Some((p, c));
            }
        }
        let Some((p, cost)) = best else {
            return (Precision::F32, "the model lists no precision; f32".into());
        };
        let others: Vec<String> = order
            .into_iter()
            .filter(|q| *q != p && available.contains(q))
            .map(|q| format!("{q} {:.2}", self.conv_cost(q)))
            .collect();
        let how = match p {
            Precision::F32 if self.winograd => "f32 runs savl's Winograd 3×3 convs",
            Precision::F32 => "f32 runs tract's im2col convs",
            Precision::F16 if self.fp16_winograd() => {
                "f16 runs savl's Winograd 3×3 convs with native fp16 products"
            }
            Precision::F16 if self.fp16 => "native fp16 arithmetic",
            Precision::F16 => "fp16 in software (the only variant)",
            Precision::Int8 if self.int8_dot => "int8 dot products",
            _ => "int8 widening multiply-adds",
        };
        let why = if others.is_empty() {
            format!(
                "{how}; the only precision the model has is {p} ({})",
                self.isa
            )
        } else {
            format!(
                "{how}: conv cost {cost:.2} per output and channel vs {} ({})",
                others.join(", "),
                self.isa
            )
        };
        (p, why)
    }
}

/// Whether the OS reports FEAT_FP16 (aarch64 HWCAP); false on other architectures.
fn hwcap_fp16() -> bool {
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("fp16");
    #[cfg(not(target_arch = "aarch64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for p in [
            Precision::Auto,
            Precision::F32,
            Precision::F16,
            Precision::Int8,
        ] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        assert!("f64".parse::<Precision>().is_err());
    }

    #[test]
    fn auto_choice() {
        let all = [Precision::F32, Precision::F16, Precision::Int8];
        let caps = |int8_dot, fp16, winograd, avx2_fma| CpuCaps {
            int8_dot,
            fp16,
            winograd,
            avx2_fma,
            isa: "x",
            features: String::new(),
        };
        // Winograd f32 (2.25 MACs at f32 rate) is never slower than int8 dot (9 at 4×); on a
        // tie the exact one wins. With native fp16, Winograd with fp16 products (2.25 at 2×)
        // beats both.
        for dot in [false, true] {
            assert_eq!(caps(dot, false, true, true).choose(&all).0, Precision::F32);
            let fp16 = caps(dot, true, true, true);
            assert!(fp16.fp16_winograd());
            assert_eq!(fp16.conv_cost(Precision::F16), 2.25 / 2.0);
            assert_eq!(fp16.choose(&all).0, Precision::F16);
            assert_eq!(
                fp16.choose(&[Precision::F32, Precision::Int8]).0,
                Precision::F32
            );
        }
        // The Pi 4 (A72: no fp16, no dot product) and the Pi 5 (A76: both).
        let a72 = caps(false, false, true, true);
        assert_eq!(a72.choose(&all).0, Precision::F32);
        let a76 = caps(true, true, true, true);
        assert_eq!(a76.choose(&all).0, Precision::F16);
        assert!(a76.choose(&all).1.contains("fp16 products"));
        // Winograd off: f16 is tract's f16 graph, not fp16 Winograd.
        assert!(!caps(true, true, false, true).fp16_winograd());
        // Without Winograd: int8 dot beats fp16, fp16 beats f32, widening int8 beats f32.
        assert_eq!(
            caps(true, true, false, true).choose(&all).0,
            Precision::Int8
        );
        assert_eq!(
            caps(false, true, false, true)
                .choose(&[Precision::F32, Precision::F16])
                .0,
            Precision::F16
        );
        assert_eq!(
            caps(false, false, false, true)
                .choose(&[Precision::F32, Precision::F16])
                .0,
            Precision::F32
        );
        // Software fp16 is never chosen over anything else.
        let no_fp16 = caps(false, false, true, true);
        assert_eq!(
            no_fp16.choose(&[Precision::F16, Precision::Int8]).0,
            Precision::Int8
        );
        assert_eq!(no_fp16.choose(&[Precision::F16]).0, Precision::F16);
        assert!(no_fp16.conv_cost(Precision::F16) > 10.0 * no_fp16.conv_cost(Precision::F32));
        assert_eq!(no_fp16.choose(&[Precision::Int8]).0, Precision::Int8);
    }
}
