//! `gpo-openai`: the chat-completions endpoint of an OpenAI-compatible server (vLLM, SGLang,
//! llama.cpp's `llama-server`, hosted APIs), the way gpo reaches engines beyond one machine.
//!
//! [`Client::chat`] posts one request body to `{url}/chat/completions` and returns the reply
//! as JSON, retrying failures in transport and HTTP 429/5xx twice; [`Client::chat_all`] sends
//! many, [`PARALLEL_REQUESTS`] in flight, and returns the replies in order. Errors name the
//! endpoint and say what to check. [`stand_in`] is a local stand-in server for tests.
#![warn(missing_docs)]

pub mod engine;
mod post;
pub mod stand_in;

use std::time::Duration;

use serde_json::Value;

pub use engine::{EngineClient, EngineKind, TokenChoice, TokenRequest};

/// Requests in flight at once in [`Client::chat_all`] (servers batch them).
pub const PARALLEL_REQUESTS: usize = 8;

/// Tries per request (the first and two retries).
const TRIES: u32 = 3;

/// Environment variables read, in order, for a bearer token.
pub const API_KEY_VARS: [&str; 2] = ["GPO_API_KEY", "OPENAI_API_KEY"];

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unusable; `field` is the config key or option that holds it.
    #[error("`{field}`: {msg}")]
    Config {
        /// The key at fault.
        field: &'static str,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// The server refused, failed or answered something that is not JSON.
    #[error("server {url}: {msg}")]
    Server {
        /// The endpoint asked.
        url: String,
        /// What went wrong and what to check.
        msg: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// One model on one server.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: String,
    model: String,
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `model` at `url`, the API root (e.g. `http://localhost:8000/v1`). Nothing
    /// is sent until the first request. `url_key` and `model_key` name the settings in
    /// errors. A bearer token is read from [`API_KEY_VARS`].
    pub fn new(
        url: &str,
        model: &str,
        url_key: &'static str,
        model_key: &'static str,
    ) -> Result<Self> {
        let root = url.trim_end_matches('/');
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(Error::Config {
                field: url_key,
                msg: format!(
                    "{url:?} is not an http(s) URL; give the API root, e.g. \
                     http://localhost:8000/v1"
                ),
            });
        }
        if model.trim().is_empty() {
            return Err(Error::Config {
                field: model_key,
                msg: "empty; give the model name the server serves (GET /v1/models lists them)"
                    .into(),
            });
        }
        let api_key = API_KEY_VARS
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|k| !k.is_empty()));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build();
        Ok(Client {
            endpoint: format!("{root}/chat/completions"),
            model: model.to_string(),
            api_key,
            agent,
        })
    }

    /// The chat-completions URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The model's name on the server (the requests' `model`).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Posts `body` (its `model` set to this client's) and returns the reply.
    pub fn chat(&self, body: &Value) -> Result<Value> {
        let mut body = body.clone();
        body["model"] = Value::String(self.model.clone());
        post::request_json(
            &self.agent,
            &self.endpoint,
            self.api_key.as_deref(),
            Some(&body),
            TRIES,
            post::Expect::Json,
        )
        .map_err(|f| self.error(f.msg))
    }

    /// [`Client::chat`] on each body, [`PARALLEL_REQUESTS`] at a time; replies in order.
    pub fn chat_all(&self, bodies: &[Value]) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(PARALLEL_REQUESTS) {
            let replies: Vec<Result<Value>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk.iter().map(|b| s.spawn(|| self.chat(b))).collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(self.error("a request thread panicked".into())))
                    })
                    .collect()
            });
            for r in replies {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// An error about this client's endpoint.
    pub fn error(&self, msg: String) -> Error {
        Error::Server {
            url: self.endpoint.clone(),
            msg,
        }
    }
}

/// A reply's body as JSON, or a one-line message saying it is not JSON and how it began.
pub fn parse_reply(text: &str) -> std::result::Result<Value, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "the reply is not JSON ({e}); is this the API root? It began {}",
            snippet(text)
        )
    })
}

/// The first 300 characters of `text`, for an error message: on one line, control
/// characters escaped (`\n`).
pub fn snippet(text: &str) -> String {
    let mut t = String::new();
    for c in text.chars().take(300) {
        if c.is_control() {
            t.extend(c.escape_default());
        } else {
            t.push(c);
        }
    }
    if text.chars().nth(300).is_some() {
        t.push_str("...");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_api_root_plus_the_route() {
        let c = Client::new("http://h:1/v1/", "m", "url", "model").unwrap();
        assert_eq!(c.endpoint(), "http://h:1/v1/chat/completions");
        assert_eq!(c.model(), "m");
    }

    #[test]
    fn bad_settings_name_their_key() {
        let e = Client::new("localhost:8000", "m", "server-url", "server-model").unwrap_err();
        assert!(e.to_string().contains("`server-url`"), "{e}");
        let e = Client::new("http://h/v1", " ", "server-url", "server-model").unwrap_err();
        assert!(e.to_string().contains("`server-model`"), "{e}");
    }

    #[test]
    fn snippets_are_cut_at_300_characters() {
        assert_eq!(snippet("short"), "short");
        let long = "x".repeat(400);
        assert_eq!(snippet(&long).len(), 303);
        assert_eq!(snippet("<html>\n<body>"), "<html>\\n<body>");
    }

    #[test]
    fn a_json_nesting_bomb_is_a_one_line_error() {
        let start = std::time::Instant::now();
        let bomb = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        let err = parse_reply(&bomb).unwrap_err();
        assert!(
            err.starts_with("the reply is not JSON (recursion limit exceeded")
                && !err.contains('\n'),
            "{err}"
        );
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }
}
