//! `gpo serve`: a model, or a defender gpo trained, behind the OpenAI chat-completions API.

use std::net::IpAddr;

use anyhow::{Context, Result};
use gpo_lm::LoadOptions;
use gpo_serve::{Engine, ServeConfig, Server};
use serde_json::json;

use crate::model_args::{AdapterArgs, ModelArgs};

/// Arguments of `gpo serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    adapter: AdapterArgs,
    /// The name clients send as `model` (and `GET /v1/models` lists) [default: --model]
    #[arg(long)]
    served_model_name: Option<String>,
    /// The address to listen on; anything but loopback exposes the model to the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The port (0: any free one; the first line printed says which).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The environment variable that holds the API key clients must send as
    /// `Authorization: Bearer KEY` (the key itself never goes on the command line or in logs).
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// Most tokens per choice a request may ask for (`max_tokens`).
    #[arg(long, default_value_t = 4096)]
    max_tokens_limit: usize,
    /// Requests admitted at once (generating or waiting for the model); more get HTTP 429.
    #[arg(long, default_value_t = 64)]
    max_concurrent: usize,
}

/// Loads the model, binds, prints `{"url", "model"}` and serves until interrupted.
pub fn run(args: ServeArgs) -> Result<()> {
    let api_key = match &args.api_key_env {
        None => None,
        Some(var) => Some(
            std::env::var(var)
                .ok()
                .filter(|k| !k.is_empty())
                .with_context(|| {
                    format!("--api-key-env {var}: that variable is not set or empty")
                })?,
        ),
    };
    anyhow::ensure!(
        args.max_tokens_limit >= 1,
        "--max-tokens-limit must be at least 1"
    );
    let mut lm = args.model.load(&LoadOptions::default())?;
    if args.adapter.adapter.is_some() {
        args.adapter.apply(&mut lm)?;
        // Merged once, the adapter costs nothing per token.
        gpo_lm::merge_lora(&mut lm.model).context("merging --adapter")?;
    }
    let name = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| args.model.model.clone());
    let mut cfg = ServeConfig::new(&name);
    cfg.host = args.host;
    cfg.port = args.port;
    cfg.api_key = api_key;
    cfg.limits.max_tokens = args.max_tokens_limit;
    cfg.limits.default_max_tokens = cfg.limits.default_max_tokens.min(args.max_tokens_limit);
    cfg.max_concurrent = args.max_concurrent;
    let server = Server::bind(cfg, Engine::new(lm.model, lm.tokenizer, &name))?;
    let addr = server.local_addr()?;
    let url = format!("http://{addr}/v1");
    tracing::info!("serving `{name}` at {url} (Ctrl-C stops)");
    super::emit(&json!({"url": url, "model": name}))?;
    Ok(server.run()?)
}
