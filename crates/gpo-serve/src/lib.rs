//! `gpo-serve`: a model (with its LoRA adapter merged) behind the OpenAI chat-completions
//! API, so that red-teaming tools and gpo's own served policies can talk to a defender gpo
//! trained.
//!
//! - [`Engine`]: the model, its tokenizer and any loaded LoRA adapters on a thread of their
//!   own, answering one request at a time with gpo's sampler (a seeded request repeats
//!   exactly).
//! - [`Server`]: axum on a single-threaded tokio runtime: `GET /health`, `GET /v1/models`,
//!   `POST /v1/chat/completions` (`n`, `seed`, `max_tokens`, `temperature`, `top_p`,
//!   `top_k`, `repetition_penalty`, `stop`, `logprobs`), errors as
//!   `{"error": {"message", "type", "param", "code"}}`, unknown request fields ignored.
//!   Loopback by default; a bearer token when configured; request-size, `max_tokens`, `n`
//!   and concurrency limits, each a 4xx.
//! - `POST /v1/completions` with text or token-id prompts (several in one request are
//!   sampled as one batch with one seed, as a game's player samples its rollout), vLLM's
//!   `return_token_ids` and `stop_token_ids`, and vLLM's adapter routes
//!   `POST /v1/load_lora_adapter` / `/v1/unload_lora_adapter`, adapters asked for by name in
//!   `model`: what gpo's engine rollouts need, so a game's players can sample through it.
//! - `stream: true` on either endpoint: server-sent events, each choice's text as it is
//!   generated (text that may still become a stop string waits), with its tokens' log-probs
//!   when asked, ending in `data: [DONE]`.
//! - Concurrent requests share forward passes: the engine thread samples every waiting
//!   request for one model in one batch, each on its own seed's streams.
//! - `logprobs` with up to 20 likeliest alternatives per position (`top_logprobs` in chat,
//!   `logprobs: K` in text completions), under `softmax(logits / T)`.
//! - `echo` on text completions, with the prompt's teacher-forced log-probs; with
//!   `max_tokens: 0` the prompt is only scored (lm-eval's log-likelihood requests).
#![warn(missing_docs)]

pub mod api;
pub mod completions;
mod engine;
mod server;
pub mod stream;

pub use api::{ApiError, ChatRequest, Choice, Generation, Input, Limits};
pub use completions::CompletionRequest;
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
