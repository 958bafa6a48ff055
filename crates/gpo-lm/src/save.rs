//! Atomic writes of checkpoints: temp file in the same directory, then rename.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use crate::model::CausalLm;
use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: a crash leaves the old file or the new one, never a
/// partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    gpo_fs::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// `dir` with `suffix` appended to its file name (`ckpt` -> `ckpt.partial`).
pub fn sibling_path(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Puts the finished directory `tmp` in the place of `dir`: the old `dir` moves to
/// `dir.old` first and is deleted only after `tmp` has been renamed, so a crash at any point
/// leaves one whole directory under `dir` or, between the renames, under `dir.old`
/// ([`existing_dir`] finds it).
pub fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let old = sibling_path(dir, ".old");
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::rename(tmp, dir).map_err(|e| Error::io(tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// Where a directory written by [`replace_dir`] is: `dir`, else `dir.old` (a crash between
/// the two renames), else `None`.
pub fn existing_dir(dir: &Path) -> Option<PathBuf> {
    if dir.exists() {
        return Some(dir.to_path_buf());
    }
    let old = sibling_path(dir, ".old");
    old.exists().then_some(old)
}

/// Serialises `tensors` as safetensors at `path`, atomically.
pub fn write_safetensors_atomic(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            Ok((
                n.clone(),
                t.to_device(&candle_core::Device::Cpu)?.contiguous()?,
            ))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(&str, &Tensor)> = cpu.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let bytes = safetensors::tensor::serialize(views, None)
        .map_err(|e| Error::bad(path, format!("cannot serialise safetensors: {e}")))?;
    write_atomic(path, &bytes)
}

impl CausalLm {
    /// Every base weight under its Hugging Face name (adapters not merged).
    pub fn named_weights(&self) -> HashMap<String, Tensor> {
        let mut m = HashMap::new();
        m.insert(
            "model.embed_tokens.weight".to_string(),
            self.embed_tokens.detach(),
        );
        m.insert("model.norm.weight".to_string(), self.norm.detach());
        if let Some(h) = &self.lm_head {
            m.insert("lm_head.weight".to_string(), h.detach());
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{i}");
            m.insert(
                format!("{p}.input_layernorm.weight"),
                b.input_layernorm.detach(),
            );
            m.insert(
                format!("{p}.post_attention_layernorm.weight"),
                b.post_attention_layernorm.detach(),
            );
            for (name, l) in b.linears() {
                m.insert(format!("{p}.{name}.weight"), l.weight.detach());
                if let Some(bias) = &l.bias {
                    m.insert(format!("{p}.{name}.bias"), bias.detach());
                }
            }
        }
        m
    }

    /// Saves the full weights as a Hugging Face directory: `config.json` and
    /// `model.safetensors` (tokenizer files are the caller's to copy).
    pub fn save_hf(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_safetensors_atomic(&self.named_weights(), &dir.join("model.safetensors"))?;
        let c = &self.cfg;
        let arch = match c.architecture {
            crate::Architecture::Llama => "LlamaForCausalLM",
            crate::Architecture::Qwen2 => "Qwen2ForCausalLM",
        };
        let json = serde_json::json!({
            "architectures": [arch],
            "model_type": c.architecture.as_str(),
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.num_key_value_heads,
            "head_dim": c.head_dim,
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "max_position_embeddings": c.max_position_embeddings,
            "tie_word_embeddings": c.tie_word_embeddings,
            "hidden_act": "silu",
            "torch_dtype": "float32",
        });
        let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Json {
            path: dir.join("config.json"),
            source: e,
        })?;
        write_atomic(&dir.join("config.json"), text.as_bytes())
    }
}
