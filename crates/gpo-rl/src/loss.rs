//! PPO's clipped objectives (Schulman et al. 2017) over masked `[batch, tokens]` tensors.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// The clipped policy loss and its diagnostics.
#[derive(Debug)]
pub struct PolicyLoss {
    /// Scalar loss (differentiable with respect to `logp`).
    pub loss: Tensor,
    /// Number of tokens whose ratio was clipped.
    pub clipped_tokens: f32,
    /// Sum of `old_logp - logp` over tokens (k1 KL to the behaviour policy).
    pub approx_kl_sum: f32,
}

/// `sum(x * mask) / denom`. The denominator is explicit so that a mini-batch split into
/// micro-batches can divide each part by the whole mini-batch's token count: the parts'
/// gradients then add up to the mini-batch's.
pub(crate) fn masked_sum_over(x: &Tensor, mask: &Tensor, denom: f64) -> Result<Tensor> {
    if denom.is_nan() || denom <= 0.0 {
        return Err(Error::Invalid(format!(
            "token count {denom} to average over must be > 0"
        )));
    }
    Ok(((x * mask)?.sum_all()? / denom)?)
}

/// `sum_t max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps)) / denom` with
/// `rho_t = exp(logp_t - old_logp_t)`, summed over the tokens selected by `mask` (PPO's
/// clipped surrogate, negated for minimisation). `denom` is the token count of the whole
/// mini-batch (the mask's sum for a plain token mean). All inputs are `[batch, tokens]`,
/// `mask` is 1.0 on response tokens.
pub fn ppo_policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: f64,
    denom: f64,
) -> Result<PolicyLoss> {
    let log_ratio = (logp - old_logp)?;
    let ratio = log_ratio.exp()?;
    let unclipped = (advantages.neg()? * &ratio)?;
    let clipped = (advantages.neg()? * ratio.clamp(1.0 - clip, 1.0 + clip)?)?;
    let loss = masked_sum_over(&unclipped.maximum(&clipped)?, mask, denom)?;
    let was_clipped = clipped.gt(&unclipped)?.to_dtype(DType::F32)?;
    let clipped_tokens = (was_clipped * mask)?.sum_all()?.to_scalar::<f32>()?;
    let approx_kl_sum = (log_ratio.neg()?.detach() * mask)?
        .sum_all()?
        .to_scalar::<f32>()?;
    Ok(PolicyLoss {
        loss,
        clipped_tokens,
        approx_kl_sum,
    })
}

/// `0.5 sum_t max((V_t - R_t)^2, (V_old + clip(V_t - V_old, -c, c) - R_t)^2) / denom` over
/// the tokens selected by `mask` (clipped value loss; `clip = None` gives the plain squared
/// error).
pub fn ppo_value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip: Option<f64>,
    denom: f64,
) -> Result<Tensor> {
    let plain = (values - returns)?.sqr()?;
    let per_token = match clip {
        Some(c) => {
            let clipped_v = (old_values + (values - old_values)?.clamp(-c, c)?)?;
            plain.maximum(&(clipped_v - returns)?.sqr()?)?
        }
        None => plain,
    };
    Ok((masked_sum_over(&per_token, mask, denom)? * 0.5)?)
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
        let mask = Tensor::new(&[[1f32, 1.0, 0.0]], &dev).unwrap();
        let out = ppo_policy_loss(logp.as_tensor(), &old, &adv, &mask, 0.2, 2.0).unwrap();
        // token 0: max(-1.6487, -1.2) = -1.2; token 1: max(0.6065, 0.8) = 0.8; mean = -0.2
        assert!((out.loss.to_scalar::<f32>().unwrap() + 0.2).abs() < 1e-6);
        assert_eq!(out.clipped_tokens, 2.0);
        assert!(out.approx_kl_sum.abs() < 1e-6);
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
        let mask = Tensor::new(&[[1f32, 1.0]], &dev).unwrap();
        let out = ppo_policy_loss(logp.as_tensor(), &zeros, &adv, &mask, 0.2, 2.0).unwrap();
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
        let mask = Tensor::new(&[[1f32, 1.0]], &dev).unwrap();
        // token 0: plain (1-2)^2 = 1, clipped v = 0.2 -> (0.2-2)^2 = 3.24 -> 3.24; token 1: 1.
        let l = ppo_value_loss(&v, &old, &ret, &mask, Some(0.2), 2.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((l - 0.5 * (3.24 + 1.0) / 2.0).abs() < 1e-5, "{l}");
        let l = ppo_value_loss(&v, &old, &ret, &mask, None, 2.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((l - 0.5).abs() < 1e-6, "{l}");
    }
}
