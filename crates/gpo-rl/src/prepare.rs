//! Between sampling and the update: reference log-probs, critic values, KL-shaped rewards
//! and advantages for every rollout of a buffer.

use candle_core::Tensor;
use gpo_lm::Pass;

use crate::config::{KlPlacement, RlConfig};
use crate::engine_correction::{tis_weights, EngineCorrection};
use crate::policy::Policy;
use crate::rollout::RolloutBatch;
use crate::{gae, group_advantages, shape_rewards, whiten, Estimator, Result};

/// Fills `ref_logprobs`, `kl`, `token_rewards`, `values`, `advantages` and `returns` of every
/// rollout (docs/method.md, "KL regularisation"):
///
/// - rollouts an engine sampled, under truncated importance sampling: `behaviour_logprobs`
///   recomputed by the learner and `is_weights = min(exp(learner - engine), cap)`;
/// - `kl_t` = the configured estimator at `(log pi_behaviour, log pi_ref)`;
/// - KL in the reward: `r_t = -beta kl_t`, plus the scalar reward on the last token;
///   KL in the loss: only the scalar reward on the last token;
/// - PPO: GAE(gamma, lambda) over `r_t` with the critic's values; group baselines: the
///   sequence reward `sum_t r_t` compared within the group, the same advantage on every
///   token;
/// - optional whitening over the buffer: of every token's advantage under PPO, of one value
///   per response under a group baseline (whose groups are already centred, so this only
///   rescales: a group of equal rewards keeps advantage 0).
///
/// `pad_id` only fills padding; batches of `cfg.micro_batch_size` rollouts are scored at a
/// time.
pub fn prepare(
    policy: &Policy,
    batch: &mut RolloutBatch,
    cfg: &RlConfig,
    pad_id: u32,
) -> Result<()> {
    let device = policy.model.device().clone();
    let n = batch.len();
    let want_values = cfg.estimator.needs_critic();
    let temperature = cfg.sampling.temperature;
    let recompute = match cfg.engine_correction {
        EngineCorrection::Tis { cap } if batch.is_from_engine() => Some(cap),
        _ => None,
    };
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(cfg.micro_batch_size.max(1)) {
        let pairs = batch.pair_batch(chunk, pad_id, &device)?;
        let ref_lp = rows(&policy.reference_logprobs(&pairs, temperature)?)?;
        let values = if want_values {
            Some(rows(&policy.values(&pairs, &Pass::infer())?)?)
        } else {
            None
        };
        let learner = match recompute {
            Some(_) => Some(rows(&policy.logprobs(&pairs, temperature)?)?),
            None => None,
        };
        for (k, &i) in chunk.iter().enumerate() {
            let r = &mut batch.rollouts[i];
            let len = r.response.len();
            r.ref_logprobs = ref_lp[k][..len].to_vec();
            r.values = values.as_ref().map_or(Vec::new(), |v| v[k][..len].to_vec());
            if let (Some(cap), Some(l)) = (recompute, &learner) {
                r.behaviour_logprobs = l[k][..len].to_vec();
                r.is_weights = tis_weights(&r.behaviour_logprobs, &r.engine_logprobs, cap);
            }
        }
    }
    for r in &mut batch.rollouts {
        r.kl = cfg
            .kl
            .estimator
            .per_token(&r.behaviour_logprobs, &r.ref_logprobs);
        let beta = match cfg.kl.placement {
            KlPlacement::Reward => cfg.kl.beta,
            KlPlacement::Loss => 0.0,
        };
        r.token_rewards = shape_rewards(&r.kl, beta, r.reward);
    }
    let advantages: Vec<Vec<f32>> = match (cfg.estimator, cfg.estimator.group_baseline()) {
        (_, Some(baseline)) => {
            let seq: Vec<f32> = batch
                .rollouts
                .iter()
                .map(|r| r.token_rewards.iter().sum())
                .collect();
            let mut adv = vec![group_advantages(&seq, &batch.groups(), baseline)];
            if cfg.whiten_advantages {
                // One value per response: whitening over tokens would weigh each response by
                // its length and move a group's advantages off its own baseline.
                whiten(&mut adv);
            }
            batch
                .rollouts
                .iter()
                .zip(&adv[0])
                .map(|(r, &a)| vec![a; r.response.len()])
                .collect()
        }
        (Estimator::Ppo { gamma, lambda, .. }, None) => {
            let mut adv: Vec<Vec<f32>> = batch
                .rollouts
                .iter_mut()
                .map(|r| {
                    let (adv, ret) = gae(&r.token_rewards, &r.values, gamma, lambda);
                    r.returns = ret;
                    adv
                })
                .collect();
            if cfg.whiten_advantages {
                whiten(&mut adv);
            }
            adv
        }
        (est, None) => {
            return Err(crate::Error::Invalid(format!(
                "estimator {est:?} has neither a critic nor a group baseline"
            )))
        }
    };
    for (r, a) in batch.rollouts.iter_mut().zip(advantages) {
        r.advantages = a;
    }
    Ok(())
}

/// A `[batch, width]` f32 tensor as host rows.
pub(crate) fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?)
}
