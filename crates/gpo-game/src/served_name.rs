//! The name of a model behind an OpenAI-compatible server: `server:MODEL@URL`.

use crate::{Error, Result};

/// The prefix of a served policy's name (`crate::chat_policy::PolicySpec::Served`).
pub const SERVED_PREFIX: &str = "server:";

/// `(model, url)` of a `server:MODEL@URL` name; `None` for a name without the prefix.
pub fn parse_served(name: &str) -> Option<Result<(String, String)>> {
    let rest = name.strip_prefix(SERVED_PREFIX)?;
    Some(match rest.split_once('@') {
        Some((model, url)) if !model.is_empty() && !url.is_empty() => {
            Ok((model.to_string(), url.to_string()))
        }
        _ => Err(Error::Data(format!(
            "policy `{name}`: a served policy is named server:MODEL@URL, e.g. \
             server:llama-2-7b-chat@http://localhost:8000/v1"
        ))),
    })
}
