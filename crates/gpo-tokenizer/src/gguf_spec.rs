//! The tokenizer keys of a GGUF header, as llama.cpp writes them.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value as GgufValue;

use crate::{Error, Result};

/// Where errors about GGUF tokenizer keys point.
pub(crate) const ORIGIN: &str = "GGUF metadata";

/// The tokenizer keys of a GGUF header (`tokenizer.ggml.*`, `tokenizer.chat_template`).
///
/// Build it with [`GgufTokenizerSpec::from_metadata`] or by hand (it has a `Default`), then
/// turn it into a [`crate::Tokenizer`] with [`crate::Tokenizer::from_gguf_spec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GgufTokenizerSpec {
    /// `tokenizer.ggml.model`; gpo supports `gpt2` (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: how text is split before BPE (`smollm`, `gpt2`, `llama-bpe`, `qwen2`, ...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`, each "left right".
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id` (only its name reaches chat templates, as `unk_token`).
    pub unk_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`: whether `encode(.., add_special_tokens = true)` prepends BOS.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`: whether `encode(.., add_special_tokens = true)` appends EOS.
    pub add_eos: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

impl GgufTokenizerSpec {
    /// Reads the tokenizer keys from a GGUF header's metadata (as candle's reader returns it).
    ///
    /// Errors name the key that is missing or has the wrong type.
    pub fn from_metadata(md: &HashMap<String, GgufValue>) -> Result<Self> {
        let bad = |key: &str, what: &str| Error::invalid(ORIGIN, format!("`{key}`: {what}"));
        let string = |key: &str| -> Result<Option<String>> {
            md.get(key)
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|_| bad(key, "expected a string"))
                })
                .transpose()
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
        let id = |key: &str| -> Result<Option<u32>> {
            let Some(v) = md.get(key) else {
                return Ok(None);
            };
            let id = as_int(v).and_then(|x| u32::try_from(x).ok());
            id.map(Some)
                .ok_or_else(|| bad(key, "expected a non-negative integer token id"))
        };
        let flag = |key: &str| -> Result<Option<bool>> {
            md.get(key)
                .map(|v| v.to_bool().map_err(|_| bad(key, "expected a boolean")))
                .transpose()
        };
        let token_types = match md.get("tokenizer.ggml.token_type") {
            None => None,
            Some(v) => Some(
                v.to_vec()
                    .map_err(|_| bad("tokenizer.ggml.token_type", "expected an array"))?
                    .iter()
                    .map(|t| {
                        as_int(t)
                            .and_then(|x| i32::try_from(x).ok())
                            .ok_or_else(|| bad("tokenizer.ggml.token_type", "expected integers"))
                    })
                    .collect::<Result<Vec<i32>>>()?,
            ),
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        if tokens.is_empty() {
            return Err(bad(
                "tokenizer.ggml.tokens",
                "missing or empty; this GGUF file carries no tokenizer",
            ));
        }
        Ok(GgufTokenizerSpec {
            model: string("tokenizer.ggml.model")?
                .ok_or_else(|| bad("tokenizer.ggml.model", "missing"))?,
            pre: string("tokenizer.ggml.pre")?,
            tokens,
            merges: strings("tokenizer.ggml.merges")?,
            token_types,
            bos_id: id("tokenizer.ggml.bos_token_id")?,
            eos_id: id("tokenizer.ggml.eos_token_id")?,
            pad_id: id("tokenizer.ggml.padding_token_id")?,
            unk_id: id("tokenizer.ggml.unknown_token_id")?,
            add_bos: flag("tokenizer.ggml.add_bos_token")?,
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
            chat_template: string("tokenizer.chat_template")?,
        })
    }

    /// The token string of `id`, or an error naming `key` when `id` is past the vocabulary.
    pub(crate) fn token_of(&self, id: Option<u32>, key: &str) -> Result<Option<String>> {
        id.map(|i| {
            self.tokens.get(i as usize).cloned().ok_or_else(|| {
                Error::invalid(
                    ORIGIN,
                    format!(
                        "`{key}` = {i} is past the vocabulary ({} tokens)",
                        self.tokens.len()
                    ),
                )
            })
        })
        .transpose()
    }
}

/// Any GGUF integer; writers differ in the width they pick for ids and token types.
fn as_int(v: &GgufValue) -> Option<i64> {
    match v {
        GgufValue::U8(x) => Some(i64::from(*x)),
        GgufValue::I8(x) => Some(i64::from(*x)),
        GgufValue::U16(x) => Some(i64::from(*x)),
        GgufValue::I16(x) => Some(i64::from(*x)),
        GgufValue::U32(x) => Some(i64::from(*x)),
        GgufValue::I32(x) => Some(i64::from(*x)),
        GgufValue::U64(x) => i64::try_from(*x).ok(),
        GgufValue::I64(x) => Some(*x),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> HashMap<String, GgufValue> {
        let s = |x: &str| GgufValue::String(x.into());
        HashMap::from([
            ("tokenizer.ggml.model".into(), s("gpt2")),
            ("tokenizer.ggml.pre".into(), s("smollm")),
            (
                "tokenizer.ggml.tokens".into(),
                GgufValue::Array(vec![s("<s>"), s("a"), s("b"), s("ab")]),
            ),
            (
                "tokenizer.ggml.merges".into(),
                GgufValue::Array(vec![s("a b")]),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                GgufValue::Array(vec![
                    GgufValue::I32(3),
                    GgufValue::I32(1),
                    GgufValue::I32(1),
                    GgufValue::I32(1),
                ]),
            ),
            ("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(0)),
            (
                "tokenizer.ggml.add_bos_token".into(),
                GgufValue::Bool(false),
            ),
        ])
    }

    #[test]
    fn reads_every_key() {
        let spec = GgufTokenizerSpec::from_metadata(&metadata()).unwrap();
        assert_eq!(spec.model, "gpt2");
        assert_eq!(spec.pre.as_deref(), Some("smollm"));
        assert_eq!(spec.tokens, ["<s>", "a", "b", "ab"]);
        assert_eq!(spec.merges, ["a b"]);
        assert_eq!(spec.token_types, Some(vec![3, 1, 1, 1]));
        assert_eq!(
            (spec.eos_id, spec.bos_id, spec.pad_id),
            (Some(0), None, None)
        );
        assert_eq!(spec.add_bos, Some(false));
        assert_eq!(spec.chat_template, None);
    }

    #[test]
    fn missing_tokens_name_the_key() {
        let mut md = metadata();
        md.remove("tokenizer.ggml.tokens");
        let e = GgufTokenizerSpec::from_metadata(&md)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tokenizer.ggml.tokens`: missing"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let mut md = metadata();
        md.insert(
            "tokenizer.ggml.eos_token_id".into(),
            GgufValue::String("x".into()),
        );
        let e = GgufTokenizerSpec::from_metadata(&md)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tokenizer.ggml.eos_token_id`"), "{e}");
        let mut md = metadata();
        md.insert("tokenizer.ggml.model".into(), GgufValue::U32(1));
        let e = GgufTokenizerSpec::from_metadata(&md)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`tokenizer.ggml.model`: expected a string"),
            "{e}"
        );
    }
}
