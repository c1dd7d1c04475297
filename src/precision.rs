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
    /// 16-bit float (fast only on aarch64 with FEAT_FP16).
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
    /// Native fp16 arithmetic (aarch64 FEAT_FP16).
    pub fp16: bool,
    /// f32 runs savl's Winograd 3×3 convs with AVX2 + FMA (x86-64; not turned off by
    /// `SAVL_DISABLE_WINOGRAD`), which makes f32 faster than tract's int8 convs there.
    pub fast_f32: bool,
    /// Short name of the instruction set tract dispatches on (for `describe`).
    pub isa: &'static str,
    /// Human-readable feature list.
    pub features: String,
}

impl CpuCaps {
    /// Probe the running CPU (through tract-linalg, honouring `TRACT_CPU_ISA`).
    pub fn detect() -> CpuCaps {
        use tract_linalg::isa::Isa;
        let set = tract_linalg::isa::native();
        let int8_dot = set.has(Isa::X86_64Avx512Vnni)
            || set.has(Isa::X86_64AvxVnni)
            || set.has(Isa::Aarch64DotProd);
        let fp16 = tract_linalg::has_fp16() && set.has(Isa::Aarch64Fp16);
        let fast_f32 = set.has(Isa::X86_64Avx2)
            && set.has(Isa::X86_64Fma)
            && crate::rewrites::winograd::enabled_by_env();
        CpuCaps {
            int8_dot,
            fp16,
            fast_f32,
            isa: set.nickname(),
            features: format!("{set:?}"),
        }
    }

    /// The precision `auto` resolves to among `available`, with the reason.
    ///
    /// Order of preference: f32 where it runs savl's Winograd convs with AVX2 + FMA (x86-64:
    /// faster than int8 there, even with VNNI), int8 where the CPU has fast int8 dot products,
    /// f16 where it has native fp16 arithmetic, f32 otherwise. Falls back to whatever the model
    /// has when f32 is missing.
    pub fn choose(&self, available: &[Precision]) -> (Precision, String) {
        let has = |p: Precision| available.contains(&p);
        if self.fast_f32 && has(Precision::F32) {
            return (
                Precision::F32,
                format!(
                    "f32 runs savl's Winograd convs with AVX2 + FMA, faster than int8 here ({})",
                    self.isa
                ),
            );
        }
        if self.int8_dot && has(Precision::Int8) {
            return (
                Precision::Int8,
                format!("CPU has fast int8 dot products ({})", self.isa),
            );
        }
        if self.fp16 && has(Precision::F16) {
            return (Precision::F16, "CPU has native fp16 arithmetic".into());
        }
        if has(Precision::F32) {
            let why = match (self.int8_dot, self.fp16) {
                (false, false) => "no fast int8 dot products and no native fp16 on this CPU",
                (true, _) => "CPU has fast int8 but the model has no int8 variant",
                (false, true) => "CPU has native fp16 but the model has no f16 variant",
            };
            return (Precision::F32, why.into());
        }
        let p = available.first().copied().unwrap_or(Precision::F32);
        (p, format!("the only precision the model has is {p}"))
    }
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
        let caps = |int8_dot, fp16| CpuCaps {
            int8_dot,
            fp16,
            fast_f32: false,
            isa: "x",
            features: String::new(),
        };
        let x86 = CpuCaps {
            fast_f32: true,
            ..caps(true, false)
        };
        assert_eq!(x86.choose(&all).0, Precision::F32);
        assert_eq!(x86.choose(&[Precision::Int8]).0, Precision::Int8);
        assert_eq!(caps(true, true).choose(&all).0, Precision::Int8);
        assert_eq!(caps(false, true).choose(&all).0, Precision::F16);
        assert_eq!(caps(false, false).choose(&all).0, Precision::F32);
        assert_eq!(
            caps(true, false).choose(&[Precision::F32]).0,
            Precision::F32
        );
        assert_eq!(
            caps(false, false).choose(&[Precision::Int8]).0,
            Precision::Int8
        );
    }
}
