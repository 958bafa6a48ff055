//! Turning a [`GgufTokenizerSpec`] into the `tokenizer.json` document Hugging Face would build.
//!
//! This follows transformers' GGUF converter (`integrations/gguf/gguf_tokenizer_mapping.py`)
//! with one deliberate difference: `pre = smollm` splits digits one by one before GPT-2's
//! regex, as SmolLM2's own `tokenizer.json` does (transformers drops that split; on SmolLM2's
//! vocabulary, which has no multi-digit tokens, both give the same ids).

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::gguf_spec::{GgufTokenizerSpec, ORIGIN};
use crate::{Error, Result};

/// Llama-3's split (llama.cpp `llama-bpe`), as its `tokenizer.json` writes it.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split: Llama-3's with single digits.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` values gpo understands, for error messages.
const SUPPORTED_PRE: &str = "smollm, gpt2, default, llama-bpe (llama3, llama-v3, smaug-bpe, falcon3, dbrx), qwen2 (deepseek-r1-qwen)";

/// GGUF `token_type` of control tokens such as `<|im_end|>`.
const CONTROL: i32 = 3;
/// GGUF `token_type` of user-defined tokens such as `<think>`.
const USER_DEFINED: i32 = 4;

/// Builds the `tokenizer.json` document equivalent to `spec`.
pub(crate) fn tokenizer_json(spec: &GgufTokenizerSpec) -> Result<Value> {
    if spec.model != "gpt2" {
        return Err(Error::invalid(
            ORIGIN,
            format!(
                "tokenizer.ggml.model `{}` is not supported; gpo reads byte-level BPE (`gpt2`) vocabularies",
                spec.model
            ),
        ));
    }
    if spec.tokens.is_empty() {
        return Err(Error::invalid(ORIGIN, "tokenizer.ggml.tokens is empty"));
    }
    let pre = pre_tokenizer(spec.pre.as_deref())?;
    let byte_chars = byte_to_char();
    let alphabet: HashSet<char> = byte_chars.iter().copied().collect();
    let in_alphabet = |tok: &str| tok.chars().all(|c| alphabet.contains(&c));

    // Every real token of a byte-level vocabulary is spelled in the byte alphabet; llama.cpp
    // writes a few (user-defined ones) as plain text, so respell those the way transformers does.
    let mut vocab = Map::with_capacity(spec.tokens.len());
    for (id, tok) in spec.tokens.iter().enumerate() {
        let key = if in_alphabet(tok) {
            tok.clone()
        } else {
            tok.bytes().map(|b| byte_chars[usize::from(b)]).collect()
        };
        vocab.insert(key, json!(id));
    }
    let added = added_tokens(spec, &vocab, &in_alphabet)?;
    let post = post_processor(spec)?;
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": post,
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

fn byte_level(add_prefix_space: bool, use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": true, "use_regex": use_regex})
}

/// The pre-tokenizer `tokenizer.ggml.pre` names.
fn pre_tokenizer(pre: Option<&str>) -> Result<Value> {
    let split_then_bytes = |re: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false},
            byte_level(false, false),
        ]})
    };
    Ok(match pre.unwrap_or("default") {
        "default" | "gpt2" | "gpt-2" => byte_level(false, true),
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level(false, true),
        ]}),
        "llama-bpe" | "llama3" | "llama-v3" | "smaug-bpe" | "falcon3" | "dbrx" => {
            split_then_bytes(LLAMA3_REGEX)
        }
        "qwen2" | "deepseek-r1-qwen" => split_then_bytes(QWEN2_REGEX),
        other => {
            return Err(Error::invalid(
                ORIGIN,
                format!(
                    "tokenizer.ggml.pre `{other}` is not supported (supported: {SUPPORTED_PRE})"
                ),
            ))
        }
    })
}

/// Control tokens become special added tokens and user-defined ones plain added tokens, so
/// both are matched whole in text as Hugging Face and llama.cpp do.
fn added_tokens(
    spec: &GgufTokenizerSpec,
    vocab: &Map<String, Value>,
    in_alphabet: &dyn Fn(&str) -> bool,
) -> Result<Vec<Value>> {
    let Some(types) = &spec.token_types else {
        return Ok(Vec::new());
    };
    if types.len() != spec.tokens.len() {
        return Err(Error::invalid(
            ORIGIN,
            format!(
                "tokenizer.ggml.token_type has {} entries for {} tokens in tokenizer.ggml.tokens",
                types.len(),
                spec.tokens.len()
            ),
        ));
    }
    let mut added = Vec::new();
    for (tok, ty) in spec.tokens.iter().zip(types) {
        // A control token spelled outside the byte alphabet is a llama.cpp mislabel
        // (transformers skips it too); a user-defined one must be a vocabulary entry.
        let special = match *ty {
            CONTROL if in_alphabet(tok) => true,
            USER_DEFINED if vocab.contains_key(tok) => false,
            _ => continue,
        };
        // The id is the vocabulary's: when two tokens share a spelling the later one wins,
        // as in a Python dict.
        let id = &vocab[tok.as_str()];
        added.push(
            json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": special}),
        );
    }
    Ok(added)
}

/// BOS/EOS added by `encode(.., add_special_tokens = true)` when the file asks for them.
fn post_processor(spec: &GgufTokenizerSpec) -> Result<Value> {
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut special = Map::new();
    let mut piece = |id: Option<u32>, key: &str| -> Result<Option<Value>> {
        let Some(tok) = spec.token_of(id, key)? else {
            return Err(Error::invalid(
                ORIGIN,
                format!("`{key}` is missing, but the file asks for it to be added"),
            ));
        };
        special.insert(
            tok.clone(),
            json!({"id": tok, "ids": [id], "tokens": [tok]}),
        );
        Ok(Some(json!({"SpecialToken": {"id": tok, "type_id": 0}})))
    };
    let bos = match spec.add_bos {
        Some(true) => piece(spec.bos_id, "tokenizer.ggml.bos_token_id")?,
        _ => None,
    };
    let eos = match spec.add_eos {
        Some(true) => piece(spec.eos_id, "tokenizer.ggml.eos_token_id")?,
        _ => None,
    };
    let seq = |name: &str, type_id: u32| json!({"Sequence": {"id": name, "type_id": type_id}});
    single.extend(bos.clone());
    single.push(seq("A", 0));
    single.extend(eos.clone());
    pair.extend(bos);
    pair.push(seq("A", 0));
    pair.extend(eos.clone());
    pair.push(seq("B", 1));
    pair.extend(eos);
    Ok(
        json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special}),
    )
}

/// GPT-2's byte-to-character table (`bytes_to_unicode`): printable bytes stand for themselves,
/// the rest are moved to U+0100 and up.
fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_gpt2() {
        let t = byte_to_char();
        // bytes_to_unicode(): space -> 'Ġ' (U+0120), newline -> 'Ċ' (U+010A), 'a' -> 'a'.
        assert_eq!(
            (t[b' ' as usize], t[b'\n' as usize], t[b'a' as usize]),
            ('Ġ', 'Ċ', 'a')
        );
        assert_eq!(t.iter().collect::<HashSet<_>>().len(), 256);
    }

    #[test]
    fn unknown_pre_is_named() {
        let e = pre_tokenizer(Some("mystery")).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer.ggml.pre `mystery` is not supported"),
            "{e}"
        );
    }

    #[test]
    fn plain_text_tokens_are_respelled_and_user_defined_kept_whole() {
        let spec = GgufTokenizerSpec {
            model: "gpt2".into(),
            tokens: vec!["<c>".into(), "a b".into(), "<u>".into()],
            token_types: Some(vec![CONTROL, USER_DEFINED, USER_DEFINED]),
            ..Default::default()
        };
        let doc = tokenizer_json(&spec).unwrap();
        assert_eq!(doc["model"]["vocab"]["aĠb"], 1);
        let added: Vec<(String, bool)> = doc["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["content"].as_str().unwrap().to_string(),
                    t["special"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            added,
            [("<c>".to_string(), true), ("<u>".to_string(), false)]
        );
    }

    #[test]
    fn token_type_length_mismatch_is_named() {
        let spec = GgufTokenizerSpec {
            model: "gpt2".into(),
            tokens: vec!["a".into(), "b".into()],
            token_types: Some(vec![1]),
            ..Default::default()
        };
        let e = tokenizer_json(&spec).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer.ggml.token_type has 1 entries for 2 tokens"),
            "{e}"
        );
    }

    #[test]
    fn add_bos_without_bos_id_is_named() {
        let spec = GgufTokenizerSpec {
            model: "gpt2".into(),
            tokens: vec!["a".into()],
            add_bos: Some(true),
            ..Default::default()
        };
        let e = tokenizer_json(&spec).unwrap_err().to_string();
        assert!(
            e.contains("`tokenizer.ggml.bos_token_id` is missing"),
            "{e}"
        );
    }
}
