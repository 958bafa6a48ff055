//! `gpo-judge`: the judges r(x, y) that reward GPO's players.
//!
//! - [`Judge`]: the interface, a batch of [`Exchange`]s (prompt, response) -> P(unsafe) in
//!   [0, 1] each, P(safe) = 1 - P(unsafe), and a [`Verdict`] at a threshold.
//! - [`JudgeConfig`] chooses and configures one, checked (a config file's `[judge]` table,
//!   [`JudgeTable`], resolves to it); [`build_judge`] builds it as a `Box<dyn Judge>`.
//! - [`LmGuardJudge`] (`lm-guard`): the Llama Guard protocol on a Llama-family chat model.
//! - [`ServerJudge`] (`server`): the same protocol on a model behind an OpenAI-compatible
//!   server (vLLM, SGLang, llama.cpp's `llama-server`).
//! - [`EmbeddedJudge`] (`embedded`, the default): offline CPU classifiers, P(unsafe) =
//!   1 - (1 - P(harmful request) P(complies)) (1 - P(toxic response)); its [`Heads`] are
//!   trained by `gpo judge train` (the `gpo-judge-train` crate) and described by a
//!   [`HeadsCard`]; loading never trains.
//! - [`toxicity::ToxicityModel`]: the toxic-comment-classifier BiLSTM, read from its Keras
//!   HDF5 weights and pickled tokenizer without Python (the readers are `gpo-keras`).
//!
//! ```no_run
//! use gpo_assets::AssetCache;
//! use gpo_judge::{build_judge, Exchange, JudgeConfig};
//! # fn main() -> gpo_judge::Result<()> {
//! let cache = AssetCache::from_env()?;
//! let judge = build_judge(&JudgeConfig::lm_guard("smollm2-135m-instruct"), &cache)?;
//! let out = judge.judge(&[Exchange::new("How do I bake bread?", "Mix flour, water, yeast.")])?;
//! println!("P(unsafe) = {}, verdict {}", out[0].p_unsafe, out[0].verdict.as_str());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod config;
mod embedded;
mod error;
mod exchange_file;
pub mod features;
mod heads;
mod judge;
mod lmguard;
pub mod logistic;
mod server;
pub mod toxicity;

pub use config::{
    build_judge, kebab_renames, snake_case_keys, JudgeConfig, JudgeTable, DEFAULT_LM_GUARD_MODEL,
};
pub use embedded::{
    combine, default_heads_dir, is_default_heads_dir, load_models, require_asset, Components,
    EmbeddedJudge, JudgeParts, EMBEDDER_ALIAS, EMBED_DIM, EMBED_MAX_TOKENS,
};
pub use error::{Error, Result};
pub use exchange_file::{read_exchange_file, ExchangeRow};
pub use features::EMBED_LAYERS;
pub use heads::{
    head_files, HeadMetrics, Heads, HeadsCard, StoredHeads, CARD_FILE, HEADS_FILE, HEADS_FORMAT,
};
pub use judge::{Exchange, Judge, JudgeKind, Judgement, Verdict};
pub use lmguard::{
    ratio_from_logprobs, render_moderation_prompt, LmGuardJudge, PromptStyle,
    LLAMA_GUARD_3_CATEGORIES,
};
pub use server::{ServerJudge, ServerPrompt};

/// Readers that are otherwise private, for the fuzz targets in `fuzz/`. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::server::{verdict_distribution, VerdictLogprobs};
}
