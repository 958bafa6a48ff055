//! `gpo-judge-train`: trains the embedded judge's two heads and measures them.
//!
//! [`train_heads`] reads the fetched data sets (through `gpo-datasets`), keeps HarmBench and
//! every held-out set out of training ([`decontaminate`]), labels replies with garak's
//! refusal markers ([`markers`], [`reply`]), fits the harm and compliance heads, and writes
//! what it measured on held-out data, the hand-written [`reply_sets`] and SmolLM2's own
//! hand-labelled [`defender_answers`] into the [`gpo_judge::HeadsCard`]. `gpo judge train`
//! runs it; a judge only loads what it wrote (`gpo_judge::EmbeddedJudge::load`).
#![warn(missing_docs)]

mod card;
mod config;
pub mod decontaminate;
pub mod defender_answers;
mod error;
mod fit;
mod judged;
pub mod markers;
pub mod reply;
pub mod reply_sets;
mod sources;
mod train;
pub mod wrapped;

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use reply_sets::{reply_set, HandwrittenReply, ReplySet, REPLY_SETS, UNSCORED_SETS};
pub use train::train_heads;
pub use wrapped::{wrapped_copies, INSTRUCTION_TEMPLATES};
