//! `gpo-game`: the two-player game of GPO (docs/method.md), end to end.
//!
//! - [`GameConfig`]: one validated TOML file ([`load_config`], [`parse_config`] with
//!   `--set key=value` overrides; [`DEFAULT_PRESET`] is `examples/cpu-smollm2.toml`).
//! - [`Game`]: the attacker and defender [`Player`]s (LoRA policies with their RL
//!   trainers), the judge, the diversity history and the seeds. [`Game::play_step`] plays
//!   one step: the attacker rewrites seed questions with its instruction template, the
//!   defender answers through its chat template, the judge gives P(unsafe), the attacker is
//!   rewarded by `P(unsafe) - w_bleu * self_bleu - w_emb * cos` against the history, the
//!   defender by `P(safe)`, and the learners of the [`Schedule`] update (each with a KL
//!   penalty to its anchor).
//! - [`Game::run`] plays a run in a [`RunDir`] (metrics, samples, evaluations, snapshots,
//!   checkpoints) and resumes it exactly; [`Game::evaluate`] measures the held-out seeds
//!   and the built-in benign prompts ([`EvalRecord`]; refusals read by a [`RefusalReader`]),
//!   and [`Summary`] compares the first evaluation with the last ([`Change`]).
//! - [`evaluate_defender`] and [`evaluate_attacker`] (`gpo eval`): any [`ChatPolicy`] (a
//!   model, an adapter, a run's snapshot) on held-out prompts, rates with bootstrap
//!   intervals; [`crossplay`] (`gpo crossplay`): every attacker snapshot of a run against
//!   every defender snapshot.
//! - [`Schedule`]: alternate stages (defender first), simultaneous, or switch on the attack
//!   success rate. [`Mode`] also plays the RLHF baselines.
//! - [`WarmStart`] (`gpo sft`, and a run's first stage when `[defender.warm_start]`
//!   ([`WarmStartConfig`]) asks for epochs, see [`WarmStartPlan`]): the defender's safety
//!   warm start, LoRA fine-tuning towards explicit refusals of harmful requests, resumable
//!   after every epoch.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use gpo_game::{parse_config, Game, RunDir, DEFAULT_PRESET};
//! # fn main() -> gpo_game::Result<()> {
//! let cfg = parse_config(DEFAULT_PRESET, "preset", &["steps=4".into()])?;
//! let cache = gpo_assets::AssetCache::from_env().expect("cache");
//! let run = RunDir::create("runs/demo".as_ref(), &cfg)?;
//! let mut game = Game::build(cfg, &cache)?;
//! let outcome = game.run(&run, false, &AtomicBool::new(false), |_| {})?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod base_model;
pub mod benign;
mod chat_policy;
mod compliance;
mod config;
mod crossplay;
mod data;
mod defender;
pub mod defender_reward;
mod diversity;
mod engine_rollout;
pub mod exploit;
mod game;
mod load;
mod player;
mod policy_eval;
pub mod refuse_task;
mod run_dir;
pub mod safety_sft;
mod schedule;
mod seed_streams;
mod served_name;
pub mod warm_start;

pub use base_model::load_base;
pub use chat_policy::{BaseModels, ChatPolicy, PolicySpec};
pub use compliance::RefusalReader;
pub use config::WarmStartConfig;
pub use config::{
    Anchor, AttackerConfig, DataConfig, DefenderConfig, DefenderPrompts, GameConfig, Iterate, Mode,
    ModelsConfig, PAPER_ATTACK_TEMPLATE,
};
pub use crossplay::{crossplay, INITIAL};
pub use data::{prompt_set, read_prompt_file, subset, Prompts, BUILT_IN_BENIGN, PROMPT_SETS};
pub use defender::Defender;
pub use diversity::Diversity;
pub use game::{Game, Outcome, Progress, Summary};
pub use gpo_records::{
    pair, BenignAnswer, BenignChange, BenignEval, Change, EvalRecord, HarmfulChange, HarmfulEval,
    Paired, PlayerStep, SampleRecord, StepRecord, StepTimes,
};
pub use load::{load_config, parse_config, parse_rl_table, DEFAULT_PRESET};
pub use player::Player;
pub use policy_eval::{
    evaluate_attacker, evaluate_defender, AttackSetup, AttackerReport, BenignRates, DefenderReport,
    EvalContext, Example, JudgedRates, Judges, NamedPrompts, ScoredAnswer, TargetRates,
    HARMFUL_SET,
};
pub use run_dir::{read_evals, RunDir};
pub use schedule::{Role, Schedule, ScheduleState};
pub use warm_start::{WarmStart, WarmStartPlan, WarmStartRecord, WarmStartReport};

/// Errors of the game.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the field and the fix.
    #[error("config: {0}")]
    Config(String),
    /// Prompt data is missing or malformed.
    #[error("data: {0}")]
    Data(String),
    /// A model, a served policy or the judge cannot be used as set up; the message says
    /// which and why (causes from other crates keep their own variants below).
    #[error("{0}")]
    Setup(String),
    /// The judge failed to load or to score; `context` says which judge or what it did.
    #[error("{context}: {source}")]
    JudgeFailed {
        /// Which judge, or what it was doing.
        context: String,
        /// The cause.
        source: gpo_judge::Error,
    },
    /// A model failed to load or adapt, or its device to open; `context` names it.
    #[error("{context}: {source}")]
    Model {
        /// The model, adapter or field.
        context: String,
        /// The cause.
        source: gpo_lm::Error,
    },
    /// An asset could not be fetched or resolved; `context` names what needed it.
    #[error("{context}: {source}")]
    Fetch {
        /// What needed the asset.
        context: String,
        /// The cause.
        source: gpo_assets::Error,
    },
    /// The diversity reward's sentence embedder failed; `context` says what it did.
    #[error("{context}: {source}")]
    Embedder {
        /// What the embedder was doing.
        context: String,
        /// The cause.
        source: gpo_embed::Error,
    },
    /// The attacker's prompt history (self-BLEU and embedding similarity) failed.
    #[error("diversity: {0}")]
    Diversity(#[source] gpo_diversity::Error),
    /// A policy behind an OpenAI-compatible server failed; `context` names it.
    #[error("{context}: {source}")]
    Served {
        /// The policy (or the field that names it).
        context: String,
        /// The cause.
        source: gpo_openai::Error,
    },
    /// A field's value could not be used; `field` names it with its value.
    #[error("{field}: {source}")]
    Field {
        /// The field and its value.
        field: String,
        /// The cause.
        source: Box<Error>,
    },
    /// Reading or writing a run file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file gpo writes and reads back (a checkpoint's, a report's) is malformed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A LoRA adapter directory could not be read or written.
    #[error("adapter {dir}: {source}")]
    Adapter {
        /// The directory.
        dir: std::path::PathBuf,
        /// The cause (it names the file where it knows it).
        source: gpo_lm::Error,
    },
    /// A checkpoint or output directory cannot be used as asked; the message names it and
    /// the fix.
    #[error("{0}")]
    Checkpoint(String),
    /// The defender's warm start failed; `context` names where (its directory or field).
    #[error("{context}: {source}")]
    WarmStart {
        /// What was being done, naming the directory or field.
        context: String,
        /// The cause.
        source: Box<Error>,
    },
    /// The language model failed.
    #[error(transparent)]
    Lm(#[from] gpo_lm::Error),
    /// The RL machinery failed.
    #[error(transparent)]
    Rl(#[from] gpo_rl::Error),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] gpo_tokenizer::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A statistic could not be estimated.
    #[error(transparent)]
    Eval(#[from] gpo_eval::Error),
    /// A judge failed outside a step (the message names the file).
    #[error(transparent)]
    Judge(#[from] gpo_judge::Error),
    /// A data set could not be read (the message names the file).
    #[error(transparent)]
    Datasets(#[from] gpo_datasets::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps a judge's error with `context` (which judge, or what it was doing), for
    /// `map_err`.
    pub(crate) fn judge(context: impl Into<String>) -> impl FnOnce(gpo_judge::Error) -> Error {
        let context = context.into();
        move |source| Error::JudgeFailed { context, source }
    }
}
