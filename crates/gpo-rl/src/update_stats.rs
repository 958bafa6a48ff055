//! What one update reports: losses, diagnostics, gradient norms and steps.

use serde::{Deserialize, Serialize};

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

/// One mini-batch's diagnostics, weighted like its loss.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MinibatchStats {
    pub policy_loss: f32,
    pub value_loss: f32,
    pub kl_loss: f32,
    pub entropy: f32,
    pub clip_fraction: f32,
    pub approx_kl: f32,
}

impl MinibatchStats {
    pub(crate) fn add(&mut self, o: &MinibatchStats) {
        self.policy_loss += o.policy_loss;
        self.value_loss += o.value_loss;
        self.kl_loss += o.kl_loss;
        self.entropy += o.entropy;
        self.clip_fraction += o.clip_fraction;
        self.approx_kl += o.approx_kl;
    }

    /// Writes these sums over `n` mini-batches into `out` as means.
    pub(crate) fn mean_into(&self, n: usize, out: &mut UpdateStats) {
        let k = n.max(1) as f32;
        out.policy_loss = self.policy_loss / k;
        out.value_loss = self.value_loss / k;
        out.kl_loss = self.kl_loss / k;
        out.entropy = self.entropy / k;
        out.clip_fraction = self.clip_fraction / k;
        out.approx_kl = self.approx_kl / k;
    }
}
