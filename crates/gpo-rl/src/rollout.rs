//! The rollout buffer: what was sampled, how it was scored, and what the update learns from.

use candle_core::Device;
use gpo_lm::{PairBatch, Sample};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One sampled response and everything computed about it. Per-token vectors have one entry
/// per response token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Prompt token ids (the policy's input, chat template applied).
    pub prompt: Vec<u32>,
    /// Sampled response token ids (an end-of-sequence token, when sampled, is the last).
    pub response: Vec<u32>,
    /// Index of the prompt in the rollout request: samples of one prompt share it (the
    /// groups of GRPO and RLOO).
    pub group: usize,
    /// Log-probs of the response tokens under the policy that sampled them: the learner's
    /// own, recomputed by [`crate::prepare`] when an engine sampled them and the
    /// [`crate::EngineCorrection`] is truncated importance sampling.
    pub behaviour_logprobs: Vec<f32>,
    /// The log-probs an inference engine returned with the tokens (empty when the learner
    /// sampled them itself).
    #[serde(default)]
    pub engine_logprobs: Vec<f32>,
    /// Per-token truncated importance weights (filled by [`crate::prepare`] for engine
    /// rollouts; empty means 1).
    #[serde(default)]
    pub is_weights: Vec<f32>,
    /// The scalar, sequence-level reward (judge or task score, before any KL penalty).
    pub reward: f32,
    /// Log-probs under the frozen reference (filled by [`crate::prepare`]).
    pub ref_logprobs: Vec<f32>,
    /// Per-token KL estimates to the reference (filled by [`crate::prepare`]).
    pub kl: Vec<f32>,
    /// Per-token rewards after the KL penalty, the scalar reward on the last token (filled
    /// by [`crate::prepare`]).
    pub token_rewards: Vec<f32>,
    /// Critic values at the rollout (PPO only; filled by [`crate::prepare`]).
    pub values: Vec<f32>,
    /// Per-token advantages (filled by [`crate::prepare`]).
    pub advantages: Vec<f32>,
    /// Value targets (PPO only; filled by [`crate::prepare`]).
    pub returns: Vec<f32>,
}

/// A buffer of rollouts that one update learns from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutBatch {
    /// The rollouts, in sampling order.
    pub rollouts: Vec<Rollout>,
}

impl RolloutBatch {
    /// Pairs the samples of [`gpo_lm::generate`] over `prompts` with one scalar reward each.
    pub fn from_samples(
        prompts: &[Vec<u32>],
        samples: Vec<Sample>,
        rewards: &[f32],
    ) -> Result<Self> {
        if samples.len() != rewards.len() {
            return Err(Error::Invalid(format!(
                "{} samples but {} rewards",
                samples.len(),
                rewards.len()
            )));
        }
        let mut rollouts = Vec::with_capacity(samples.len());
        for (i, (s, &reward)) in samples.into_iter().zip(rewards).enumerate() {
            if !reward.is_finite() {
                return Err(Error::Invalid(format!(
                    "reward {i} is {reward}, not a finite number"
                )));
            }
            let prompt = prompts.get(s.prompt_index).ok_or_else(|| {
                Error::Invalid(format!(
                    "sample {i} refers to prompt {} of {}",
                    s.prompt_index,
                    prompts.len()
                ))
            })?;
            if s.ids.is_empty() || s.ids.len() != s.logprobs.len() {
                return Err(Error::Invalid(format!(
                    "sample {i} has {} tokens and {} log-probs; both must be equal and non-zero",
                    s.ids.len(),
                    s.logprobs.len()
                )));
            }
            rollouts.push(Rollout {
                prompt: prompt.clone(),
                response: s.ids,
                group: s.prompt_index,
                behaviour_logprobs: s.logprobs,
                engine_logprobs: Vec::new(),
                is_weights: Vec::new(),
                reward,
                ref_logprobs: Vec::new(),
                kl: Vec::new(),
                token_rewards: Vec::new(),
                values: Vec::new(),
                advantages: Vec::new(),
                returns: Vec::new(),
            });
        }
        Ok(RolloutBatch { rollouts })
    }

    /// Marks every rollout as sampled by an inference engine: its log-probs become the
    /// engine's, for [`crate::prepare`] to correct as the config says.
    pub fn from_engine(mut self) -> Self {
        for r in &mut self.rollouts {
            r.engine_logprobs = r.behaviour_logprobs.clone();
        }
        self
    }

    /// Whether an inference engine sampled the rollouts.
    pub fn is_from_engine(&self) -> bool {
        self.rollouts.iter().any(|r| !r.engine_logprobs.is_empty())
    }

    /// Number of rollouts.
    pub fn len(&self) -> usize {
        self.rollouts.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.rollouts.is_empty()
    }

    /// Sample indices of each prompt, in order of first appearance.
    pub fn groups(&self) -> Vec<Vec<usize>> {
        let mut keys: Vec<usize> = Vec::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, r) in self.rollouts.iter().enumerate() {
            match keys.iter().position(|&k| k == r.group) {
                Some(g) => groups[g].push(i),
                None => {
                    keys.push(r.group);
                    groups.push(vec![i]);
                }
            }
        }
        groups
    }

    /// Mean scalar reward.
    pub fn mean_reward(&self) -> f32 {
        mean(self.rollouts.iter().map(|r| r.reward))
    }

    /// Mean over rollouts of the summed per-token KL (after [`crate::prepare`]).
    pub fn mean_kl(&self) -> f32 {
        mean(self.rollouts.iter().map(|r| r.kl.iter().sum::<f32>()))
    }

    /// Mean response length in tokens.
    pub fn mean_response_len(&self) -> f32 {
        mean(self.rollouts.iter().map(|r| r.response.len() as f32))
    }

    /// The (prompt, response) layout of the rollouts at `indices`.
    pub fn pair_batch(&self, indices: &[usize], pad_id: u32, device: &Device) -> Result<PairBatch> {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = indices
            .iter()
            .map(|&i| {
                let r = &self.rollouts[i];
                (r.prompt.clone(), r.response.clone())
            })
            .collect();
        Ok(PairBatch::new(&pairs, pad_id, device)?)
    }
}

/// Mean of an iterator (0 when empty).
pub fn mean(xs: impl Iterator<Item = f32>) -> f32 {
    let (s, n) = xs.fold((0f32, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpo_lm::FinishReason;

    fn sample(prompt_index: usize, ids: Vec<u32>) -> Sample {
        let logprobs = vec![-1.0; ids.len()];
        Sample {
            prompt_index,
            ids,
            logprobs,
            finish: FinishReason::Length,
        }
    }

    #[test]
    fn groups_follow_prompt_indices() {
        let prompts = vec![vec![1], vec![2]];
        let samples = vec![sample(0, vec![3]), sample(1, vec![4]), sample(0, vec![5])];
        let b = RolloutBatch::from_samples(&prompts, samples, &[1.0, 0.0, 0.5]).unwrap();
        assert_eq!(b.groups(), vec![vec![0, 2], vec![1]]);
        assert!((b.mean_reward() - 0.5).abs() < 1e-7);
    }

    #[test]
    fn mismatched_or_non_finite_rewards_are_rejected() {
        let prompts = vec![vec![1]];
        let err = RolloutBatch::from_samples(&prompts, vec![sample(0, vec![3])], &[]).unwrap_err();
        assert!(err.to_string().contains("1 samples but 0 rewards"), "{err}");
        let err = RolloutBatch::from_samples(&prompts, vec![sample(0, vec![3])], &[f32::NAN])
            .unwrap_err();
        assert!(err.to_string().contains("reward 0"), "{err}");
    }
}
