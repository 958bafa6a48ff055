//! Building a Hugging Face `tokenizer.json` from a GGUF file's tokenizer metadata.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value as GgufValue;
use serde_json::{json, Value};

use crate::{Error, Result};

/// The tokenizer keys of a GGUF header (`tokenizer.ggml.*`, `tokenizer.chat_template`).
#[derive(Debug, Clone, Default)]
pub struct GgufTokenizerSpec {
    /// `tokenizer.ggml.model`; gpo supports `gpt2` (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: how text is split before BPE (`smollm`, `gpt2`, `llama-bpe`, `qwen2`, ...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`, each "left right".
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`: 1 normal, 3 control, 4 user-defined, ...
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad_id: Option<u32>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

impl GgufTokenizerSpec {
    /// Reads the tokenizer keys from a GGUF header's metadata (as candle's reader returns it).
    pub fn from_metadata(md: &HashMap<String, GgufValue>) -> Result<Self> {
        let bad =
            |key: &str, what: &str| Error::invalid("GGUF metadata", format!("`{key}`: {what}"));
        let string = |key: &str| -> Result<String> {
            md.get(key)
                .ok_or_else(|| bad(key, "missing"))?
                .to_string()
                .cloned()
                .map_err(|_| bad(key, "expected a string"))
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            let Some(v) = md.get(key) else {
                return Ok(Vec::new());
            };
            let items = v.to_vec().map_err(|_| bad(key, "expected an array"))?;
            items
                .iter()
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|_| bad(key, "expected an array of strings"))
                })
                .collect()
        };
        let id = |key: &str| -> Option<u32> {
            let v = md.get(key)?;
            v.to_u32()
                .ok()
                .or_else(|| v.to_i32().ok().and_then(|x| u32::try_from(x).ok()))
        };
        let token_types = match md.get("tokenizer.ggml.token_type") {
            None => None,
            Some(v) => Some(
                v.to_vec()
                    .map_err(|_| bad("tokenizer.ggml.token_type", "expected an array"))?
                    .iter()
                    .map(|t| {
                        t.to_i32()
                            .map_err(|_| bad("tokenizer.ggml.token_type", "expected i32 values"))
                    })
                    .collect::<Result<Vec<i32>>>()?,
            ),
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        if tokens.is_empty() {
            return Err(bad("tokenizer.ggml.tokens", "missing or empty"));
        }
        Ok(GgufTokenizerSpec {
            model: string("tokenizer.ggml.model")?,
            pre: md
                .get("tokenizer.ggml.pre")
                .and_then(|v| v.to_string().ok().cloned()),
            tokens,
            merges: strings("tokenizer.ggml.merges")?,
            token_types,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            pad_id: id("tokenizer.ggml.padding_token_id"),
            chat_template: md
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok().cloned()),
        })
    }
}

/// GPT-2's pre-tokenizer regex is built into `ByteLevel(use_regex = true)`; these are the
/// others llama.cpp names, as their Hugging Face tokenizers write them.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Builds the `tokenizer.json` document equivalent to `spec`.
pub(crate) fn tokenizer_json(spec: &GgufTokenizerSpec) -> Result<Value> {
    let origin = "GGUF metadata";
    if spec.model != "gpt2" {
        return Err(Error::invalid(origin, format!("tokenizer.ggml.model `{}` is not supported; gpo reads byte-level BPE (`gpt2`) vocabularies", spec.model)));
    }
    if spec.tokens.is_empty() {
        return Err(Error::invalid(origin, "tokenizer.ggml.tokens is empty"));
    }
    let byte_level = |prefix: bool, regex: bool| json!({"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    let pre = match spec.pre.as_deref().unwrap_or("default") {
        "default" | "gpt2" | "gpt-2" => byte_level(false, true),
        "smollm" => {
            json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(false, true)]})
        }
        "llama-bpe" | "llama3" | "llama-v3" | "smaug-bpe" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(false, false)]})
        }
        "qwen2" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(false, false)]})
        }
        other => {
            return Err(Error::invalid(origin, format!("tokenizer.ggml.pre `{other}` is not supported (supported: smollm, gpt2, default, llama-bpe, qwen2)")));
        }
    };
    let mut vocab = serde_json::Map::with_capacity(spec.tokens.len());
    for (id, tok) in spec.tokens.iter().enumerate() {
        vocab.insert(tok.clone(), json!(id));
    }
    let mut added = Vec::new();
    if let Some(types) = &spec.token_types {
        if types.len() != spec.tokens.len() {
            return Err(Error::invalid(
                origin,
                format!(
                    "tokenizer.ggml.token_type has {} entries for {} tokens",
                    types.len(),
                    spec.tokens.len()
                ),
            ));
        }
        for (id, (tok, ty)) in spec.tokens.iter().zip(types).enumerate() {
            // 3 = control, 4 = user-defined: matched whole in text, like HF added tokens.
            if *ty == 3 || *ty == 4 {
                added.push(json!({"id": id, "content": tok, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": *ty == 3}));
            }
        }
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": null,
        "decoder": byte_level(true, true),
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": spec.merges,
        }
    }))
}
