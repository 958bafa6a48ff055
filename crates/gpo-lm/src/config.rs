//! Model hyper-parameters, read from a Hugging Face `config.json` or a GGUF header.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The decoder architectures gpo implements. All are pre-norm decoders with GQA, RoPE,
/// RMSNorm and a SwiGLU MLP; they differ in biases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Llama 2/3, SmolLM, SmolLM2: no biases.
    Llama,
    /// Qwen2 / Qwen2.5: biases on the q, k and v projections.
    Qwen2,
}

impl Architecture {
    /// Whether the q, k and v projections carry a bias.
    pub fn qkv_bias(self) -> bool {
        matches!(self, Architecture::Qwen2)
    }

    /// The `model_type` / GGUF `general.architecture` string of this architecture.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// Parses a `model_type` or `general.architecture` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "llama" | "smollm" | "smollm2" | "mistral" => Some(Architecture::Llama),
            "qwen2" => Some(Architecture::Qwen2),
            _ => None,
        }
    }
}

/// Runtime hyper-parameters of a decoder (field names follow Hugging Face `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// Which architecture the weights belong to.
    pub architecture: Architecture,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA when fewer than the query heads).
    pub num_key_value_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// Longest sequence the model was trained for.
    pub max_position_embeddings: usize,
    /// Whether the LM head shares the token embedding.
    pub tie_word_embeddings: bool,
}

/// Longest context gpo builds a RoPE table for: 2^20 positions (Llama-family models use at
/// most 2^17 today; the table is built whole, 2 x positions x head_dim / 2 floats).
pub const MAX_POSITIONS: usize = 1 << 20;

impl LmConfig {
    /// Checks the invariants the model code relies on; `origin` names the file in errors.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::unsupported(origin, msg));
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return bad("num_attention_heads and num_key_value_heads must be positive".into());
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        let widths = [self.num_attention_heads, self.num_key_value_heads]
            .map(|heads| heads.checked_mul(self.head_dim));
        if widths.contains(&None) {
            return bad(format!(
                "num_attention_heads ({}) times head_dim ({}) overflows",
                self.num_attention_heads, self.head_dim
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be positive and even for RoPE",
                self.head_dim
            ));
        }
        if self.vocab_size == 0
            || self.hidden_size == 0
            || self.num_hidden_layers == 0
            || self.intermediate_size == 0
        {
            return bad(
                "vocab_size, hidden_size, intermediate_size and num_hidden_layers must be \
                 positive"
                    .into(),
            );
        }
        if self.max_position_embeddings == 0 || self.max_position_embeddings > MAX_POSITIONS {
            return bad(format!(
                "max_position_embeddings {} must be in 1..={MAX_POSITIONS} (the RoPE table \
                 holds every position)",
                self.max_position_embeddings
            ));
        }
        Ok(())
    }

    /// Query heads per key/value head.
    pub fn gqa_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// A tiny random-initialisable configuration, for tests and examples.
    pub fn tiny(architecture: Architecture) -> Self {
        LmConfig {
            architecture,
            vocab_size: 64,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 8,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 128,
            tie_word_embeddings: true,
        }
    }
}

/// The subset of Hugging Face `config.json` gpo reads. Unknown keys are ignored on purpose:
/// real config files carry dozens of keys that do not change the forward pass.
#[derive(Debug, Deserialize)]
pub(crate) struct HfConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    rope_scaling: Option<serde_json::Value>,
    hidden_act: Option<String>,
    attention_bias: Option<bool>,
}

impl HfConfig {
    /// Reads and validates `config.json`.
    pub(crate) fn read(path: &Path) -> Result<LmConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let raw: HfConfig = serde_json::from_str(&text).map_err(|e| Error::Json {
            path: path.into(),
            source: e,
        })?;
        raw.into_config(path)
    }

    fn into_config(self, path: &Path) -> Result<LmConfig> {
        let name = self
            .model_type
            .clone()
            .or_else(|| self.architectures.as_ref().and_then(|a| a.first().cloned()))
            .unwrap_or_default();
        let key = name.to_ascii_lowercase();
        let key = key.trim_end_matches("forcausallm");
        let architecture = Architecture::parse(key).ok_or_else(|| {
            Error::unsupported(
                path,
                format!("model_type `{name}` is not supported (supported: llama, smollm2, qwen2)"),
            )
        })?;
        if let Some(scaling) = self.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            return Err(Error::unsupported(
                path,
                format!("rope_scaling {scaling} is not supported; only plain RoPE is"),
            ));
        }
        if let Some(act) = self.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(Error::unsupported(
                path,
                format!("hidden_act `{act}`: only silu is supported"),
            ));
        }
        if self.attention_bias == Some(true) && architecture == Architecture::Llama {
            return Err(Error::unsupported(
                path,
                "attention_bias = true is not supported for llama",
            ));
        }
        let heads = self.num_attention_heads;
        let cfg = LmConfig {
            architecture,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(heads),
            head_dim: self
                .head_dim
                .unwrap_or(self.hidden_size.checked_div(heads).unwrap_or(0)),
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: self.rope_theta.unwrap_or(10_000.0),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(2048),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
        };
        cfg.validate(path)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_would_panic_later_are_errors() {
        let ok = LmConfig::tiny(Architecture::Llama);
        ok.validate(Path::new("config.json")).unwrap();
        for (cfg, says) in [
            (
                LmConfig {
                    head_dim: 0,
                    ..ok.clone()
                },
                "head_dim 0",
            ),
            (
                LmConfig {
                    intermediate_size: 0,
                    ..ok.clone()
                },
                "intermediate_size",
            ),
            (
                LmConfig {
                    max_position_embeddings: 1 << 58,
                    ..ok.clone()
                },
                "max_position_embeddings",
            ),
            (
                LmConfig {
                    max_position_embeddings: 0,
                    ..ok.clone()
                },
                "max_position_embeddings",
            ),
            (
                LmConfig {
                    head_dim: 1 << 62,
                    ..ok.clone()
                },
                "times head_dim (4611686018427387904) overflows",
            ),
        ] {
            let err = cfg
                .validate(Path::new("config.json"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says) && err.contains("config.json"), "{err}");
        }
    }
}
