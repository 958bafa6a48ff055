//! `gpo-rl`: the pieces of policy-gradient training that both GPO players share
//! (docs/method.md, "KL regularisation" and "Optimisation and schedule").
//!
//! - [`KlEstimator`]: per-token KL to the frozen reference (k1, k2, k3).
//! - [`shape_rewards`]: per-token rewards `-beta * KL`, with the sequence reward on the last
//!   response token.
//! - [`gae`]: generalised advantage estimation (gamma, lambda); [`group_advantages`]:
//!   GRPO, RLOO and REINFORCE baselines.
//! - [`ppo_policy_loss`], [`ppo_value_loss`]: the clipped PPO objectives on tensors, whose
//!   per-token terms [`LossAggregation`] averages by token or by response.
//! - [`Policy`]: the trained LM, its [`Critic`] (kinds in [`CriticConfig`]) and its KL
//!   reference; [`Trainer`]: sampling, [`prepare`] and [`update`] with the optimisers, RNG
//!   and checkpoints of one player.
//! - [`fine_tune`]: supervised fine-tuning on (prompt, target) pairs, the warm start for an
//!   answer that sampling does not find.
//!
//! Host-side functions take one `Vec<f32>` per response (its tokens only, no padding).
//!
//! ```
//! use gpo_rl::{gae, shape_rewards, KlEstimator};
//! let kl = KlEstimator::K1.per_token(&[-1.0, -2.0], &[-1.5, -2.0]);
//! let rewards = shape_rewards(&kl, 0.01, 1.0);
//! let (adv, ret) = gae(&rewards, &[0.0, 0.0], 1.0, 0.95);
//! assert_eq!(adv.len(), 2);
//! assert!((ret[1] - 1.0).abs() < 1e-6);
//! ```
#![warn(missing_docs)]

mod advantage;
mod checkpoint;
mod config;
mod critic;
mod critic_config;
mod engine_correction;
mod kl;
mod loss;
mod partial_table;
mod policy;
mod prepare;
mod rollout;
mod sft;
mod task;
mod trainer;
mod update;
mod update_stats;
mod value_head;

pub use advantage::{gae, group_advantages, whiten, GroupBaseline};
pub use config::{Estimator, KlConfig, KlPlacement, RlConfig};
pub use critic::Critic;
pub use critic_config::{CriticConfig, CriticKind};
pub use engine_correction::{engine_stats, tis_weights, EngineCorrection};
pub use kl::{shape_rewards, KlEstimator};
pub use loss::{ppo_policy_loss, ppo_value_loss, LossAggregation, PolicyLoss};
pub use policy::{Policy, Reference, Scores};
pub use prepare::prepare;
pub use rollout::{mean, Rollout, RolloutBatch};
pub use sft::{fine_tune, sft_loss, SftConfig, SftRun, SftStep};
pub use task::TaskReward;
pub use trainer::{Credit, PhaseTimes, StepStats, Trainer};
pub use update::{update, Optimizers, UpdateContext, UpdateScope};
pub use update_stats::UpdateStats;
pub use value_head::ValueHead;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The language model failed.
    #[error(transparent)]
    Lm(#[from] gpo_lm::Error),
    /// The optimiser failed.
    #[error(transparent)]
    Optim(#[from] gpo_optim::Error),
    /// Inputs that do not fit together, or an invalid configuration value.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a checkpoint file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint is malformed or does not fit the model.
    #[error("{path}: {msg}")]
    Checkpoint {
        /// The file involved.
        path: std::path::PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
