//! What one RL iteration of a player reports: its reward, KL, credit, update statistics and
//! phase times (a line of `gpo rl`'s output, and a player's part of a game step's record).

use serde::{Deserialize, Serialize};

/// Wall time of each phase of one RL iteration, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Sampling the responses (`Trainer::sample`).
    pub rollout_s: f64,
    /// Reference log-probs, critic values, rewards shaping and advantages.
    pub prepare_s: f64,
    /// Epochs of forward/backward passes and optimiser steps.
    pub update_s: f64,
}

/// What one iteration did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Iterations completed, this one included.
    pub iteration: u64,
    /// Mean scalar reward of the buffer.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub reward: f32,
    /// Mean over responses of the summed per-token KL to the reference.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub kl: f32,
    /// Mean response length in tokens.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub response_len: f32,
    /// Where the credit lands: mean |advantage| at the responses' first and last tokens, as
    /// the update sees them (after whitening). A reward on the last token that reaches the
    /// opening tokens, where refusal is decided, gives `first` near `last`.
    #[serde(default)]
    pub credit: Credit,
    /// The update's losses and diagnostics.
    pub update: UpdateStats,
    /// Phase timings.
    pub times: PhaseTimes,
    /// When an inference engine sampled the rollouts: the adapter it served and how far its
    /// log-probs were from the learner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineStats>,
}

/// How an inference engine's rollouts compared with the learner (`gpo_rl`'s truncated
/// importance sampling).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    /// The adapter version the engines served (empty when the base model was served).
    pub adapter: String,
    /// Mean over tokens of `log pi_learner - log pi_engine`.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub logprob_diff_mean: f32,
    /// Mean over tokens of `|log pi_learner - log pi_engine|`.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub logprob_abs_diff_mean: f32,
    /// Largest `|log pi_learner - log pi_engine|`.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub logprob_abs_diff_max: f32,
    /// Mean importance weight (1 when the engine's log-probs are taken as they are).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub is_weight_mean: f32,
    /// Fraction of tokens whose weight reached the cap.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub is_capped_fraction: f32,
}

/// Mean |advantage| at the first and at the last token of the responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Credit {
    /// At each response's first token.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub first: f32,
    /// At each response's last token.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub last: f32,
}

/// Means over the mini-batches of one update, a step skipped for a non-finite gradient
/// included (per-token terms weighted as `RlConfig::loss_aggregation` says); the gradient
/// norms are means over the steps taken. A non-finite mean (a diverged mini-batch) is written to
/// JSON as `null` and read back as NaN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// Clipped surrogate loss.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub policy_loss: f32,
    /// Value loss (PPO; 0 otherwise).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub value_loss: f32,
    /// KL loss term before `beta` (KL in the loss; 0 otherwise).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub kl_loss: f32,
    /// Mean entropy of the next-token distribution (when the bonus is on; 0 otherwise).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub entropy: f32,
    /// Fraction of tokens whose ratio was clipped (weighted like the loss).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub clip_fraction: f32,
    /// Mean `log pi_old - log pi` (how far the update moved from the rollout policy).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub approx_kl: f32,
    /// The policy's gradient norm before clipping (0 when the policy was not trained).
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub grad_norm: f32,
    /// The critic's gradient norm before clipping (0 without a critic).
    #[serde(default, deserialize_with = "crate::json_float::f32_or_nan")]
    pub critic_grad_norm: f32,
    /// Learning rate of the policy's last step.
    pub lr: f64,
    /// Learning rate of the critic's last step.
    #[serde(default)]
    pub critic_lr: f64,
    /// A critic warm-up update: the policy was left unchanged.
    #[serde(default)]
    pub critic_only: bool,
    /// Optimiser steps taken (one per mini-batch, the critic's alone during warm-up).
    pub optimizer_steps: usize,
    /// Steps skipped, for the policy and the critic alike, because a gradient norm was not
    /// finite.
    pub skipped_steps: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_loss_survives_a_json_round_trip() {
        let stats = UpdateStats {
            policy_loss: f32::NAN,
            approx_kl: f32::INFINITY,
            entropy: 0.5,
            ..UpdateStats::default()
        };
        let line = serde_json::to_string(&stats).unwrap();
        assert!(line.contains("\"policy_loss\":null"), "{line}");
        let back: UpdateStats = serde_json::from_str(&line).unwrap();
        assert!(back.policy_loss.is_nan() && back.approx_kl.is_nan());
        assert_eq!(back.entropy, 0.5);
        // A missing field is still an error, not NaN.
        assert!(serde_json::from_str::<UpdateStats>("{}").is_err());
    }
}
