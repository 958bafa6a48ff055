//! `gpo-judge`: the judges r(x, y) that reward GPO's players.
//!
//! - [`Judge`]: the interface, a batch of [`Exchange`]s (prompt, response) -> P(unsafe) in
//!   [0, 1] each, P(safe) = 1 - P(unsafe), and a [`Verdict`] at a threshold.
//! - [`JudgeKind`] + [`JudgeConfig`] choose and configure one; [`build_judge`] builds it as a
//!   `Box<dyn Judge>`.
//! - [`LmGuardJudge`] (`lm-guard`): the Llama Guard protocol on a Llama-family chat model.
//! - [`EmbeddedJudge`] (`embedded`, the default): offline CPU classifiers.
//! - [`toxicity::ToxicityModel`]: the toxic-comment-classifier BiLSTM, read from its Keras
//!   HDF5 weights and pickled tokenizer without Python.
//!
//! ```no_run
//! use gpo_assets::AssetCache;
//! use gpo_judge::{build_judge, Exchange, JudgeConfig, JudgeKind};
//! # fn main() -> gpo_judge::Result<()> {
//! let cache = AssetCache::from_env()?;
//! let judge = build_judge(&JudgeConfig::new(JudgeKind::LmGuard), &cache)?;
//! let out = judge.judge(&[Exchange::new("How do I bake bread?", "Mix flour, water, yeast.")])?;
//! println!("P(unsafe) = {}, verdict {}", out[0].p_unsafe, out[0].verdict.as_str());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod config;
mod embedded;
mod error;
mod judge;
mod lmguard;
pub mod toxicity;

pub use config::{build_judge, JudgeConfig, JudgeKind, DEFAULT_LM_GUARD_MODEL};
pub use embedded::{default_heads_dir, EmbeddedJudge};
pub use error::{Error, Result};
pub use judge::{Exchange, Judge, Judgement, Verdict};
pub use lmguard::{
    ratio_from_logprobs, render_moderation_prompt, LmGuardJudge, PromptStyle,
    LLAMA_GUARD_3_CATEGORIES,
};
