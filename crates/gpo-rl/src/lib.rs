//! `gpo-rl`: the pieces of policy-gradient training that both GPO players share
//! (PAPER.md, "Rewards and updates").
//!
//! - [`KlEstimator`]: per-token KL to the frozen reference (k1, k2, k3).
//! - [`shape_rewards`]: per-token rewards `-beta * KL`, with the sequence reward on the last
//!   response token.
//! - [`gae`]: generalised advantage estimation (gamma, lambda); [`group_advantages`]:
//!   GRPO, RLOO and REINFORCE baselines.
//! - [`ppo_policy_loss`], [`ppo_value_loss`]: the clipped PPO objectives on tensors.
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
mod kl;
mod loss;

pub use advantage::{gae, group_advantages, whiten, GroupBaseline};
pub use kl::{shape_rewards, KlEstimator};
pub use loss::{ppo_policy_loss, ppo_value_loss, PolicyLoss};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Inputs that do not fit together.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
