//! `gpo-serve`: a model (with its LoRA adapter merged) behind the OpenAI chat-completions
//! API, so that red-teaming tools and gpo's own served policies can talk to a defender gpo
//! trained.
//!
//! - [`Engine`]: the model and its tokenizer on a thread of their own, answering one request
//!   at a time with gpo's sampler (a seeded request repeats exactly).
//! - [`Server`]: axum on a single-threaded tokio runtime: `GET /health`, `GET /v1/models`,
//!   `POST /v1/chat/completions` (`n`, `seed`, `max_tokens`, `temperature`, `top_p`,
//!   `top_k`, `repetition_penalty`, `stop`, `logprobs`), errors as
//!   `{"error": {"message", "type", "param", "code"}}`, unknown request fields ignored.
//!   Loopback by default; a bearer token when configured; request-size, `max_tokens`, `n`
//!   and concurrency limits, each a 4xx.
//! - Not yet: streaming, `top_logprobs`, `/v1/completions`, batching across requests, and
//!   loading adapters at run time.
#![warn(missing_docs)]

pub mod api;
mod engine;
mod server;

pub use api::{ApiError, ChatRequest, Choice, Generation, Limits};
pub use engine::{Answer, Engine};
pub use server::{ServeConfig, Server};

/// What can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another server on that port? --port chooses another)")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// A thread, the runtime or the listener failed.
    #[error("server: {0}")]
    Thread(std::io::Error),
}
