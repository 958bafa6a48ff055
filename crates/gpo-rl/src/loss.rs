//! PPO's clipped objectives (Schulman et al. 2017) over weighted `[batch, tokens]` tensors,
//! and how a mini-batch's per-token terms are averaged into one loss.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the per-token terms of a mini-batch (policy, value, KL and entropy) are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAggregation {
    /// Every response token of the mini-batch weighs the same: `sum_i sum_t x_it / sum_i |o_i|`
    /// (the usual PPO implementation; DAPO's token-level loss).
    #[default]
    TokenMean,
    /// Every response weighs the same: `(1/G) sum_i (1/|o_i|) sum_t x_it` (GRPO's objective,
    /// Shao et al. 2024, eq. 3). With a sequence-level advantage, a short answer's tokens
    /// then carry as much total weight as a long one's, instead of being outvoted by it.
    SequenceMean,
}

impl LossAggregation {
    /// The weight of each token of response `i`, for responses of `lengths` tokens that
    /// form one mini-batch: the weights of all tokens sum to 1, so `sum(x * w)` is the
    /// mini-batch's loss. Errors when the mini-batch has no response token.
    pub fn token_weights(self, lengths: &[usize]) -> Result<Vec<f64>> {
        let tokens: usize = lengths.iter().sum();
        if tokens == 0 {
            return Err(Error::Invalid("a mini-batch has no response tokens".into()));
        }
        let non_empty = lengths.iter().filter(|&&l| l > 0).count() as f64;
        Ok(lengths
            .iter()
            .map(|&l| match self {
                LossAggregation::TokenMean => 1.0 / tokens as f64,
                LossAggregation::SequenceMean if l == 0 => 0.0,
                LossAggregation::SequenceMean => 1.0 / (l as f64 * non_empty),
            })
            .collect())
    }
}

/// The clipped policy loss and its diagnostics, all weighted like the loss.
#[derive(Debug)]
pub struct PolicyLoss {
    /// Scalar loss (differentiable with respect to `logp`).
    pub loss: Tensor,
    /// Weighted fraction of tokens whose ratio was clipped.
    pub clip_fraction: f32,
    /// Weighted mean of `old_logp - logp` (k1 KL to the behaviour policy).
    pub approx_kl: f32,
}

/// `sum(x * weights)`: the weights are zero on padding and sum to 1 over a whole mini-batch
/// (see [`LossAggregation::token_weights`]), so a mini-batch split into micro-batches gives
/// parts whose gradients add up to the mini-batch's.
pub(crate) fn weighted_sum(x: &Tensor, weights: &Tensor) -> Result<Tensor> {
    Ok((x * weights)?.sum_all()?)
}

/// `sum_t w_t max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps))` with
/// `rho_t = exp(logp_t - old_logp_t)` (PPO's clipped surrogate, negated for minimisation).
/// All inputs are `[batch, tokens]`; `weights` is 0 on padding and, over a whole
/// mini-batch, sums to 1 (a plain token mean is `mask / mask.sum()`).
pub fn ppo_policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    weights: &Tensor,
    clip: f64,
) -> Result<PolicyLoss> {
    let log_ratio = (logp - old_logp)?;
    let ratio = log_ratio.exp()?;
    let unclipped = (advantages.neg()? * &ratio)?;
    let clipped = (advantages.neg()? * ratio.clamp(1.0 - clip, 1.0 + clip)?)?;
    let loss = weighted_sum(&unclipped.maximum(&clipped)?, weights)?;
    let was_clipped = clipped.gt(&unclipped)?.to_dtype(DType::F32)?;
    let clip_fraction = weighted_sum(&was_clipped, weights)?.to_scalar::<f32>()?;
    let approx_kl = weighted_sum(&log_ratio.neg()?.detach(), weights)?.to_scalar::<f32>()?;
    Ok(PolicyLoss {
        loss,
        clip_fraction,
        approx_kl,
    })
}

/// `0.5 sum_t w_t max((V_t - R_t)^2, (V_old + clip(V_t - V_old, -c, c) - R_t)^2)` (clipped
/// value loss; `clip = None` gives the plain squared error), weighted as in
/// [`ppo_policy_loss`].
pub fn ppo_value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    weights: &Tensor,
    clip: Option<f64>,
) -> Result<Tensor> {
    let plain = (values - returns)?.sqr()?;
    let per_token = match clip {
        Some(c) => {
            let clipped_v = (old_values + (values - old_values)?.clamp(-c, c)?)?;
            plain.maximum(&(clipped_v - returns)?.sqr()?)?
        }
        None => plain,
    };
    Ok((weighted_sum(&per_token, weights)? * 0.5)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn policy_loss_clips_as_worked_by_hand() {
        let dev = Device::Cpu;
        // ratios e^0.5 = 1.6487 (A = 1: clipped to 1.2) and e^-0.5 = 0.6065 (A = -1: clipped
        // to 0.8, loss max(0.6065, 0.8) = 0.8); third token masked out.
        let logp = Var::new(&[[0.5f32, -0.5, 3.0]], &dev).unwrap();
        let old = Tensor::new(&[[0f32, 0.0, 0.0]], &dev).unwrap();
        let adv = Tensor::new(&[[1f32, -1.0, 5.0]], &dev).unwrap();
        let w = Tensor::new(&[[0.5f32, 0.5, 0.0]], &dev).unwrap();
        let out = ppo_policy_loss(logp.as_tensor(), &old, &adv, &w, 0.2).unwrap();
        // token 0: max(-1.6487, -1.2) = -1.2; token 1: max(0.6065, 0.8) = 0.8; mean = -0.2
        assert!((out.loss.to_scalar::<f32>().unwrap() + 0.2).abs() < 1e-6);
        assert_eq!(out.clip_fraction, 1.0);
        assert!(out.approx_kl.abs() < 1e-6);
        // Both tokens are clipped, so no gradient flows to logp.
        let g = out.loss.backward().unwrap();
        let g = g
            .get(logp.as_tensor())
            .map(|g| {
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
            .unwrap_or(0.0);
        assert_eq!(g, 0.0);
    }

    #[test]
    fn unclipped_policy_gradient_is_minus_advantage() {
        let dev = Device::Cpu;
        let logp = Var::new(&[[0f32, 0.0]], &dev).unwrap();
        let zeros = Tensor::new(&[[0f32, 0.0]], &dev).unwrap();
        let adv = Tensor::new(&[[2f32, -3.0]], &dev).unwrap();
        let w = Tensor::new(&[[0.5f32, 0.5]], &dev).unwrap();
        let out = ppo_policy_loss(logp.as_tensor(), &zeros, &adv, &w, 0.2).unwrap();
        // d/dlogp of mean(-A e^(logp)) at 0 = -A / 2.
        let g = out
            .loss
            .backward()
            .unwrap()
            .get(logp.as_tensor())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!(
            (g[0][0] + 1.0).abs() < 1e-6 && (g[0][1] - 1.5).abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn value_loss_takes_the_larger_of_clipped_and_plain() {
        let dev = Device::Cpu;
        let v = Tensor::new(&[[1.0f32, 0.0]], &dev).unwrap();
        let old = Tensor::new(&[[0.0f32, 0.0]], &dev).unwrap();
        let ret = Tensor::new(&[[2.0f32, 1.0]], &dev).unwrap();
        let w = Tensor::new(&[[0.5f32, 0.5]], &dev).unwrap();
        // token 0: plain (1-2)^2 = 1, clipped v = 0.2 -> (0.2-2)^2 = 3.24 -> 3.24; token 1: 1.
        let l = ppo_value_loss(&v, &old, &ret, &w, Some(0.2))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((l - 0.5 * (3.24 + 1.0) / 2.0).abs() < 1e-5, "{l}");
        let l = ppo_value_loss(&v, &old, &ret, &w, None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((l - 0.5).abs() < 1e-6, "{l}");
    }

    #[test]
    fn token_weights_average_tokens_or_responses() {
        // Responses of 1 and 3 tokens: a token mean gives each token 1/4; a sequence mean
        // gives each response 1/2, split over its tokens (1/2 and 1/6); an empty response weighs 0.
        let t = LossAggregation::TokenMean.token_weights(&[1, 3]).unwrap();
        assert_eq!(t, vec![0.25, 0.25]);
        let s = LossAggregation::SequenceMean
            .token_weights(&[1, 3, 0])
            .unwrap();
        assert!((s[0] - 0.5).abs() < 1e-12 && (s[1] - 1.0 / 6.0).abs() < 1e-12 && s[2] == 0.0);
        let err = LossAggregation::TokenMean
            .token_weights(&[0, 0])
            .unwrap_err();
        assert!(err.to_string().contains("no response tokens"), "{err}");
    }
}
