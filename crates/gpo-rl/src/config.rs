//! Hyper-parameters of one RL player, as they appear in a config file.

use gpo_lm::SamplingParams;
use gpo_optim::{AdamWConfig, LrSchedule};
use serde::{Deserialize, Serialize};

use crate::critic_config::{critic_or_lr, CriticConfig};
use crate::engine_correction::EngineCorrection;
use crate::{Error, GroupBaseline, KlEstimator, LossAggregation, Result};

/// How advantages are estimated.
///
/// In files: `{ kind = "ppo", gamma = 1.0, lambda = 0.95 }`, `{ kind = "grpo" }`,
/// `{ kind = "rloo" }`, `{ kind = "reinforce" }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Estimator {
    /// PPO with a learned critic ([`CriticConfig`]) and GAE (the paper: gamma = 1,
    /// lambda = 0.95).
    Ppo {
        /// Discount.
        #[serde(default = "one")]
        gamma: f32,
        /// GAE's lambda.
        #[serde(default = "lambda")]
        lambda: f32,
        /// Clip range of the value update around the rollout's values; `None` disables it.
        #[serde(default)]
        value_clip: Option<f64>,
        /// Weight of the value loss; it scales only the critic's gradient, which the policy
        /// never sees.
        #[serde(default = "half")]
        vf_coef: f64,
        /// The critic: its kind, learning rate, gradient clip and warm-up. Older files'
        /// `critic_lr = x` reads as `critic = { lr = x }`.
        #[serde(default, alias = "critic_lr", deserialize_with = "critic_or_lr")]
        critic: CriticConfig,
    },
    /// GRPO: `n` samples per prompt, advantage `(r - mean) / (std + eps)` within the group.
    Grpo {
        /// Added to the group's standard deviation.
        #[serde(default = "grpo_eps")]
        eps: f32,
    },
    /// RLOO: the mean of the other samples of the prompt as baseline.
    Rloo,
    /// REINFORCE with the batch mean as baseline.
    Reinforce,
}

fn one() -> f32 {
    1.0
}
fn lambda() -> f32 {
    0.95
}
fn half() -> f64 {
    0.5
}
fn grpo_eps() -> f32 {
    1e-4
}

impl Estimator {
    /// PPO with the paper's GAE (gamma 1, lambda 0.95), no value clipping.
    pub fn ppo() -> Self {
        Estimator::Ppo {
            gamma: one(),
            lambda: lambda(),
            value_clip: None,
            vf_coef: half(),
            critic: CriticConfig::default(),
        }
    }

    /// GRPO with the default epsilon.
    pub fn grpo() -> Self {
        Estimator::Grpo { eps: grpo_eps() }
    }

    /// The critic-free baseline, `None` for PPO.
    pub fn group_baseline(&self) -> Option<GroupBaseline> {
        match *self {
            Estimator::Ppo { .. } => None,
            Estimator::Grpo { eps } => Some(GroupBaseline::Grpo { eps }),
            Estimator::Rloo => Some(GroupBaseline::Rloo),
            Estimator::Reinforce => Some(GroupBaseline::Reinforce),
        }
    }

    /// Whether a critic is trained.
    pub fn needs_critic(&self) -> bool {
        self.critic().is_some()
    }

    /// The critic's settings, `None` for critic-free estimators.
    pub fn critic(&self) -> Option<&CriticConfig> {
        match self {
            Estimator::Ppo { critic, .. } => Some(critic),
            _ => None,
        }
    }
}

/// Where the KL penalty to the reference enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KlPlacement {
    /// In the reward: `-beta * kl_t` at every token (the paper's released code). With a
    /// group baseline, the sequence's reward becomes `r - beta * sum_t kl_t`; beware that
    /// GRPO divides by the group's spread, so in a group whose task rewards are equal the
    /// KL noise alone sets the advantages (prefer `Loss` there).
    Reward,
    /// In the loss: `+beta * mean_t kl_t`, differentiated through the policy (GRPO's choice,
    /// with k3). On the sampling policy, k3's gradient is that of KL(ref || policy) and k2's
    /// that of KL(policy || ref); k1's is zero in expectation, so with k1 the term adds
    /// little but noise.
    Loss,
}

/// The KL penalty to the frozen reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlConfig {
    /// Estimator of the per-token KL.
    pub estimator: KlEstimator,
    /// Coefficient (the paper: 0.01).
    pub beta: f32,
    /// Reward or loss.
    pub placement: KlPlacement,
}

impl Default for KlConfig {
    /// The paper's setting: k1 in the reward, beta = 0.01.
    fn default() -> Self {
        KlConfig {
            estimator: KlEstimator::K1,
            beta: 0.01,
            placement: KlPlacement::Reward,
        }
    }
}

/// Everything that decides how one player learns from its rollouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlConfig {
    /// Advantage estimator.
    pub estimator: Estimator,
    /// KL penalty to the reference.
    pub kl: KlConfig,
    /// PPO's policy-ratio clip epsilon (the paper: 0.2), used by every estimator.
    pub clip: f64,
    /// Passes over each rollout buffer.
    pub epochs: usize,
    /// Samples per optimiser step.
    pub minibatch_size: usize,
    /// Samples per forward/backward pass; gradients are summed over the micro-batches of a
    /// mini-batch, so this trades memory for speed without changing the result.
    pub micro_batch_size: usize,
    /// Whiten advantages over the whole buffer to mean 0 and standard deviation 1: every
    /// token's under PPO, one value per response under a group baseline.
    pub whiten_advantages: bool,
    /// How a mini-batch's per-token losses are averaged: over tokens (default) or per
    /// response first (GRPO's own objective).
    pub loss_aggregation: LossAggregation,
    /// Weight of the entropy bonus (0 disables it and skips its computation).
    pub entropy_coef: f64,
    /// Gradient-norm clip of the policy (the paper: 1.0); the critic has its own.
    pub max_grad_norm: f64,
    /// The policy's optimiser (`lr` is its base learning rate); keys a table leaves out keep
    /// [`RlConfig::default`]'s.
    #[serde(deserialize_with = "optimizer_over_default")]
    pub optimizer: AdamWConfig,
    /// Learning-rate schedule over optimiser steps.
    pub schedule: LrSchedule,
    /// Rollout sampling; `n` is the group size of the group baselines.
    #[serde(deserialize_with = "sampling_over_default")]
    pub sampling: SamplingParams,
    /// How rollouts sampled by an inference engine are corrected (unused when the player
    /// samples itself; written to a run's config only when not the default).
    #[serde(skip_serializing_if = "EngineCorrection::is_default")]
    pub engine_correction: EngineCorrection,
}

impl Default for RlConfig {
    /// PPO, the paper's KL and optimiser settings, one epoch over a buffer of 8 as one
    /// mini-batch (the paper: one gradient step per buffer of 8 samples), micro-batches of 4.
    fn default() -> Self {
        RlConfig {
            estimator: Estimator::ppo(),
            kl: KlConfig::default(),
            clip: 0.2,
            epochs: 1,
            minibatch_size: 8,
            micro_batch_size: 4,
            whiten_advantages: true,
            loss_aggregation: LossAggregation::TokenMean,
            entropy_coef: 0.0,
            max_grad_norm: 1.0,
            optimizer: AdamWConfig {
                lr: 3e-6,
                ..AdamWConfig::paper()
            },
            schedule: LrSchedule::paper(),
            sampling: SamplingParams {
                repetition_penalty: 1.1,
                max_new_tokens: 64,
                ..SamplingParams::default()
            },
            engine_correction: EngineCorrection::default(),
        }
    }
}

/// A partly written `optimizer` table, over the default's (the paper's betas and eps).
fn optimizer_over_default<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<AdamWConfig, D::Error> {
    crate::partial_table::over_default(d, RlConfig::default().optimizer)
}

/// A partly written `sampling` table, over the default's (repetition penalty 1.1).
fn sampling_over_default<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<SamplingParams, D::Error> {
    crate::partial_table::over_default(d, RlConfig::default().sampling)
}

impl RlConfig {
    /// Checks every field; the error names the field and its valid range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.minibatch_size == 0 || self.micro_batch_size == 0 {
            return bad("minibatch_size and micro_batch_size must be at least 1".into());
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return bad(format!("clip = {} must be > 0", self.clip));
        }
        if !(self.kl.beta >= 0.0 && self.kl.beta.is_finite()) {
            return bad(format!("kl.beta = {} must be >= 0", self.kl.beta));
        }
        if !(self.entropy_coef >= 0.0 && self.entropy_coef.is_finite()) {
            return bad(format!("entropy_coef = {} must be >= 0", self.entropy_coef));
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return bad(format!(
                "max_grad_norm = {} must be > 0 (inf disables clipping)",
                self.max_grad_norm
            ));
        }
        match self.estimator {
            Estimator::Ppo {
                gamma,
                lambda,
                value_clip,
                vf_coef,
                critic,
            } => {
                if !(0.0..=1.0).contains(&gamma) || !(0.0..=1.0).contains(&lambda) {
                    return bad(format!(
                        "estimator gamma = {gamma} and lambda = {lambda} must be in [0, 1]"
                    ));
                }
                if value_clip.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
                    return bad("estimator value_clip must be > 0 when set".into());
                }
                if !(vf_coef >= 0.0 && vf_coef.is_finite()) {
                    return bad(format!("estimator vf_coef = {vf_coef} must be >= 0"));
                }
                critic.validate()?;
            }
            Estimator::Grpo { .. } | Estimator::Rloo => {
                if let Estimator::Grpo { eps } = self.estimator {
                    if !(eps > 0.0 && eps.is_finite()) {
                        return bad(format!("estimator eps = {eps} must be > 0"));
                    }
                }
                if self.sampling.n < 2 {
                    return bad(format!(
                        "the {} estimator compares samples of the same prompt: set sampling.n >= 2 (it is {})",
                        if matches!(self.estimator, Estimator::Rloo) { "rloo" } else { "grpo" },
                        self.sampling.n
                    ));
                }
            }
            Estimator::Reinforce => {}
        }
        self.optimizer.validate()?;
        self.schedule.validate()?;
        self.sampling.validate()?;
        self.engine_correction.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::critic_config::CriticKind;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let cfg = RlConfig::default();
        cfg.validate().unwrap();
        let text = serde_json::to_string(&cfg).unwrap();
        let back: RlConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn a_partial_optimizer_or_sampling_table_keeps_the_rl_defaults() {
        // The trap this guards: a sub-table read by its own type's defaults would turn the
        // paper's AdamW (0.9, 0.95, 1e-6) into PyTorch's (0.9, 0.999, 1e-8) and drop the
        // repetition penalty 1.1 when one key is written.
        let d = RlConfig::default();
        let cfg: RlConfig =
            serde_json::from_str(r#"{"optimizer":{"lr":1e-5},"sampling":{"max_new_tokens":24}}"#)
                .unwrap();
        assert_eq!(cfg.optimizer.lr, 1e-5);
        assert_eq!(
            (cfg.optimizer.beta2, cfg.optimizer.eps),
            (d.optimizer.beta2, d.optimizer.eps)
        );
        assert_eq!(cfg.sampling.max_new_tokens, 24);
        assert_eq!(
            cfg.sampling.repetition_penalty,
            d.sampling.repetition_penalty
        );
        let err = serde_json::from_str::<RlConfig>(r#"{"optimizer":{"lrr":1e-5}}"#).unwrap_err();
        assert!(err.to_string().contains("lrr"), "{err}");
    }

    #[test]
    fn estimator_fields_default_in_files() {
        let e: Estimator = serde_json::from_str(r#"{"kind":"ppo","lambda":0.9}"#).unwrap();
        assert!(matches!(e, Estimator::Ppo { gamma, lambda, .. } if gamma == 1.0 && lambda == 0.9));
        let e: Estimator = serde_json::from_str(r#"{"kind":"grpo"}"#).unwrap();
        assert_eq!(e, Estimator::grpo());
        let err = serde_json::from_str::<Estimator>(r#"{"kind":"ppo","lamda":0.9}"#).unwrap_err();
        assert!(err.to_string().contains("lamda"), "{err}");
    }

    #[test]
    fn group_estimators_need_several_samples_per_prompt() {
        let cfg = RlConfig {
            estimator: Estimator::grpo(),
            ..RlConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("sampling.n >= 2"), "{err}");
    }

    #[test]
    fn grpo_eps_must_be_positive_and_finite() {
        let mut cfg = RlConfig {
            estimator: Estimator::Grpo { eps: f32::NAN },
            ..RlConfig::default()
        };
        cfg.sampling.n = 4;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("eps = NaN"), "{err}");
        cfg.estimator = Estimator::grpo();
        cfg.validate().unwrap();
    }

    // The critic's table inside the PPO estimator.

    fn parse(json: &str) -> std::result::Result<Estimator, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_critic_table_parses_with_defaults_for_what_it_leaves_out() {
        let e = parse(r#"{"kind":"ppo","critic":{"kind":"lora","warmup_iterations":3}}"#);
        let want = CriticConfig {
            kind: CriticKind::Lora,
            warmup_iterations: 3,
            ..CriticConfig::default()
        };
        assert_eq!(e.unwrap().critic(), Some(&want));
        assert_eq!(
            parse(r#"{"kind":"ppo"}"#).unwrap().critic(),
            Some(&CriticConfig::default())
        );
    }

    #[test]
    fn an_older_critic_lr_reads_as_the_critic_learning_rate() {
        let e = parse(r#"{"kind":"ppo","critic_lr":0.0001}"#).unwrap();
        assert_eq!(e, Estimator::ppo());
        let e = parse(r#"{"kind":"ppo","critic_lr":2.5e-6}"#).unwrap();
        assert_eq!(e.critic().map(|c| c.lr), Some(2.5e-6));
    }

    #[test]
    fn parse_errors_name_the_field() {
        let err = parse(r#"{"kind":"ppo","critic":{"kind":"lora","lrr":1}}"#).unwrap_err();
        assert!(err.contains("unknown field `lrr`"), "{err}");
        let err = parse(r#"{"kind":"ppo","critic":{"kind":"big"}}"#).unwrap_err();
        assert!(err.contains("unknown variant `big`"), "{err}");
        let err = parse(r#"{"kind":"ppo","critic":"lora"}"#).unwrap_err();
        assert!(err.contains("a critic table"), "{err}");
    }

    #[test]
    fn validation_errors_name_the_field() {
        for (critic, field) in [
            (
                CriticConfig {
                    lr: -1.0,
                    ..CriticConfig::default()
                },
                "estimator.critic.lr = -1",
            ),
            (
                CriticConfig {
                    max_grad_norm: 0.0,
                    ..CriticConfig::default()
                },
                "estimator.critic.max_grad_norm = 0",
            ),
        ] {
            let mut cfg = RlConfig::default();
            if let Estimator::Ppo { critic: c, .. } = &mut cfg.estimator {
                *c = critic;
            }
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
