//! `tokenizer.json` read with the `tokenizers` crate, after the checks that keep its
//! deserializers from panicking: they `expect` a decoder to be syntactically valid JSON and a
//! `Precompiled` normalizer to be well formed, and abort on a bad file otherwise.

use std::str::FromStr;

use serde_json::Value;
use tokenizers::normalizers::Precompiled;

use crate::{Error, Result};

/// The tokenizer `text` describes; errors name `origin` (the file) and what is wrong.
pub(crate) fn parse(text: &str, origin: &str) -> Result<tokenizers::Tokenizer> {
    let invalid =
        |msg: String| Error::invalid(origin, format!("not a valid tokenizer.json: {msg}"));
    let doc: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    check_precompiled(&doc["normalizer"]).map_err(invalid)?;
    tokenizers::Tokenizer::from_str(text).map_err(|e| invalid(e.to_string()))
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
