//! The dtype a model computes in: f32 (the default; gpo's CPU kernels are f32), or bf16 / f16
//! for GPUs, where they halve memory and use the tensor cores.

use std::fmt;
use std::str::FromStr;

use candle_core::DType;

use crate::{Error, Result};

/// A compute dtype named on the command line (`--dtype`) or in a config file (`dtype`).
///
/// Weights are converted to it at load; RoPE tables are computed in f32 and stored in it;
/// log-probs, sampling and losses read f32 copies of the logits. LoRA adapters and value
/// heads take it too; the optimiser (gpo-optim's AdamW) keeps an f32 master copy of each
/// trainable tensor and f32 moments, so updates below half an ulp of the dtype accumulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl Precision {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            _ => Err(Error::InvalidArgument(format!(
                "unknown dtype {s:?}: expected f32, bf16 or f16"
            ))),
        }
    }
}

crate::text_serde::serde_as_text!(Precision);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips_and_others_are_refused() {
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
        assert_eq!(Precision::Bf16.dtype(), DType::BF16);
        let e = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("expected f32, bf16 or f16"), "{e}");
    }
}
