//! The BERT configuration, field names as in Hugging Face `config.json`.

use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// The part of a BERT `config.json` that inference needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every layer.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; `hidden_size` must be a multiple of it.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Rows of the position-embedding table: the longest input the model accepts.
    pub max_position_embeddings: usize,
    /// Rows of the token-type (segment) table.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward block; only `"gelu"` (the erf form) is supported.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_hidden_act() -> String {
    "gelu".to_string()
}

impl BertConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!("not a BERT config.json: {e}"),
        })?;
        cfg.validate().map_err(|message| Error::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "`hidden_size` {} is not a multiple of `num_attention_heads` {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("vocab_size", self.vocab_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return Err(format!("`{name}` must be positive"));
            }
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "`hidden_act` {:?} is not supported; only \"gelu\" (erf form) is",
                self.hidden_act
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_heads_that_do_not_divide_the_width() {
        let cfg: BertConfig = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":10,"num_hidden_layers":1,"num_attention_heads":3,
                "intermediate_size":4,"max_position_embeddings":8}"#,
        )
        .expect("parse");
        assert!(cfg.validate().unwrap_err().contains("num_attention_heads"));
    }

    #[test]
    fn rejects_other_activations() {
        let cfg: BertConfig = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":12,"num_hidden_layers":1,"num_attention_heads":3,
                "intermediate_size":4,"max_position_embeddings":8,"hidden_act":"relu"}"#,
        )
        .expect("parse");
        assert!(cfg.validate().unwrap_err().contains("relu"));
    }

    #[test]
    fn rejects_zero_sizes() {
        let cfg: BertConfig = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":0,"num_hidden_layers":1,"num_attention_heads":3,
                "intermediate_size":4,"max_position_embeddings":8}"#,
        )
        .expect("parse");
        assert!(cfg
            .validate()
            .unwrap_err()
            .contains("`hidden_size` must be positive"));
    }
}
