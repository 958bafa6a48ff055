//! `tokenizer.json` read with the `tokenizers` crate, after the checks that keep it from
//! panicking on a bad file: it `expect`s a decoder to be syntactically valid JSON and a
//! `Precompiled` normalizer to be well formed, and copies each BPE merge into a buffer as
//! long as the longest token, so a merge that makes no token indexes past it.

use std::str::FromStr;

use serde_json::Value;
use tokenizers::normalizers::Precompiled;

use crate::{Error, Result};

/// The tokenizer `text` describes; errors name `origin` (the file) and what is wrong.
pub(crate) fn parse(text: &str, origin: &str) -> Result<tokenizers::Tokenizer> {
    let invalid =
        |msg: String| Error::invalid(origin, format!("not a valid tokenizer.json: {msg}"));
    let doc: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    from_doc(&doc, text).map_err(invalid)
}

/// The tokenizer of `doc`, whose text is `text`, after the checks; errors are messages.
pub(crate) fn from_doc(
    doc: &Value,
    text: &str,
) -> std::result::Result<tokenizers::Tokenizer, String> {
    check_precompiled(&doc["normalizer"])?;
    check_merges(&doc["model"])?;
    tokenizers::Tokenizer::from_str(text).map_err(|e| e.to_string())
}

/// Every `Precompiled` normalizer in `v` (also inside a `Sequence`) must deserialize.
fn check_precompiled(v: &Value) -> std::result::Result<(), String> {
    match v {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Precompiled") => {
            serde_json::from_value::<Precompiled>(v.clone())
                .map(drop)
                .map_err(|e| format!("`normalizer` Precompiled: {e}"))
        }
        Value::Object(o) => o.values().try_for_each(check_precompiled),
        Value::Array(a) => a.iter().try_for_each(check_precompiled),
        _ => Ok(()),
    }
}

/// Every BPE merge of two tokens must make a token: the second without the model's
/// `continuing_subword_prefix`, appended to the first. Merges of unknown tokens, or not
/// written as two tokens, are left for the crate to report.
fn check_merges(model: &Value) -> std::result::Result<(), String> {
    let vocab = model.get("vocab").and_then(Value::as_object);
    let merges = model.get("merges").and_then(Value::as_array);
    let (Some(vocab), Some(merges)) = (vocab, merges) else {
        return Ok(());
    };
    let prefix = model
        .get("continuing_subword_prefix")
        .and_then(Value::as_str)
        .unwrap_or("");
    for (i, merge) in merges.iter().enumerate() {
        let Some((a, b)) = merge_pair(merge) else {
            continue;
        };
        if !vocab.contains_key(a) || !vocab.contains_key(b) {
            continue;
        }
        let merged = b.strip_prefix(prefix).map(|rest| format!("{a}{rest}"));
        if !merged.is_some_and(|m| vocab.contains_key(&m)) {
            return Err(format!(
                "`model.merges` {i}: {a:?} + {b:?} is not a token of the vocabulary"
            ));
        }
    }
    Ok(())
}

/// The two tokens of a merge, written `"a b"` or `["a", "b"]`.
fn merge_pair(merge: &Value) -> Option<(&str, &str)> {
    match merge {
        Value::String(s) => s.split_once(' ').filter(|(_, b)| !b.contains(' ')),
        Value::Array(pair) => match pair.as_slice() {
            [Value::String(a), Value::String(b)] => Some((a, b)),
            _ => None,
        },
        _ => None,
    }
}
