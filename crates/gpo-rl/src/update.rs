//! The optimisation phase: epochs over the rollout buffer, mini-batches, micro-batches with
//! gradient accumulation, global-norm clipping and AdamW.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use gpo_lm::Pass;
use gpo_optim::{clip_grad_norm, AdamW, GradAccumulator};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{KlPlacement, RlConfig};
use crate::loss::weighted_sum;
use crate::policy::Policy;
use crate::rollout::RolloutBatch;
use crate::{ppo_policy_loss, ppo_value_loss, Error, Estimator, Result};

/// The optimisers of one player: the policy's, and the critic's under PPO.
pub struct Optimizers {
    /// Over [`Policy::policy_vars`].
    pub policy: AdamW,
    /// Over the value head's variables.
    pub critic: Option<AdamW>,
}

impl Optimizers {
    /// Fresh optimisers for `policy` under `cfg`.
    pub fn new(policy: &Policy, cfg: &RlConfig) -> Result<Self> {
        let policy_opt = AdamW::new(policy.policy_vars().to_vec(), cfg.optimizer)?;
        let critic = match (cfg.estimator, &policy.value_head) {
            (Estimator::Ppo { critic_lr, .. }, Some(head)) => Some(AdamW::new(
                head.vars(),
                gpo_optim::AdamWConfig {
                    lr: critic_lr,
                    ..cfg.optimizer
                },
            )?),
            (Estimator::Ppo { .. }, None) => {
                return Err(Error::Invalid(
                    "the ppo estimator needs a critic: build the policy with_value_head()".into(),
                ))
            }
            _ => None,
        };
        Ok(Optimizers {
            policy: policy_opt,
            critic,
        })
    }
}

/// Means over the mini-batches of one update, a step skipped for a non-finite gradient
/// included (per-token terms weighted as `RlConfig::loss_aggregation` says); `grad_norm` is
/// the mean over the steps taken. A non-finite mean (a diverged mini-batch) is written to
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
    /// Global gradient norm before clipping.
    #[serde(deserialize_with = "crate::json_float::f32_or_nan")]
    pub grad_norm: f32,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Optimiser steps taken.
    pub optimizer_steps: usize,
    /// Steps skipped because the gradient norm was not finite.
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

/// Rows of `values` right-padded with zeros to `width`, as a `[rows, width]` tensor.
fn padded(rows: &[&[f32]], width: usize, device: &Device) -> Result<Tensor> {
    let mut flat = Vec::with_capacity(rows.len() * width);
    for r in rows {
        flat.extend_from_slice(&r[..r.len().min(width)]);
        flat.extend(std::iter::repeat_n(0f32, width.saturating_sub(r.len())));
    }
    Ok(Tensor::from_vec(flat, (rows.len(), width), device)?)
}

/// The loss of the mini-batch `indices`, back-propagated in micro-batches of
/// `cfg.micro_batch_size` and summed: every token carries its weight within the whole
/// mini-batch (`cfg.loss_aggregation`), so the sum is the gradient of the mini-batch's loss
/// (splitting changes nothing but memory and speed).
pub(crate) fn minibatch_gradients(
    policy: &Policy,
    batch: &RolloutBatch,
    indices: &[usize],
    cfg: &RlConfig,
    pad_id: u32,
    dropout_seed: u64,
) -> Result<(GradStore, MinibatchStats)> {
    let device = policy.model.device().clone();
    let lengths: Vec<usize> = indices
        .iter()
        .map(|&i| batch.rollouts[i].response.len())
        .collect();
    let row_weight = cfg.loss_aggregation.token_weights(&lengths)?;
    let ppo = match cfg.estimator {
        Estimator::Ppo {
            value_clip,
            vf_coef,
            ..
        } => Some((value_clip, vf_coef)),
        _ => None,
    };
    let kl_in_loss = cfg.kl.placement == KlPlacement::Loss && cfg.kl.beta > 0.0;
    let want_entropy = cfg.entropy_coef > 0.0;
    let vars = policy.all_vars();
    let mut acc = GradAccumulator::new(&vars);
    let mut st = MinibatchStats::default();
    let micro_batches = indices
        .chunks(cfg.micro_batch_size)
        .zip(row_weight.chunks(cfg.micro_batch_size));
    for (m, (micro, micro_weights)) in micro_batches.enumerate() {
        let pairs = batch.pair_batch(micro, pad_id, &device)?;
        let w = pairs.response_width;
        let rs: Vec<_> = micro.iter().map(|&i| &batch.rollouts[i]).collect();
        let col = |f: &dyn Fn(&crate::Rollout) -> &[f32]| -> Result<Tensor> {
            padded(&rs.iter().map(|r| f(r)).collect::<Vec<_>>(), w, &device)
        };
        let old = col(&|r| &r.behaviour_logprobs)?;
        let adv = col(&|r| &r.advantages)?;
        let micro_weights: Vec<f32> = micro_weights.iter().map(|&x| x as f32).collect();
        let weights = pairs.response_mask.broadcast_mul(&Tensor::from_vec(
            micro_weights,
            (micro.len(), 1),
            &device,
        )?)?;
        let pass = Pass::train().with_dropout_seed(dropout_seed.wrapping_add(m as u64));
        let s = policy.score(
            &pairs,
            cfg.sampling.temperature,
            &pass,
            ppo.is_some(),
            want_entropy,
        )?;
        let pl = ppo_policy_loss(&s.logprobs, &old, &adv, &weights, cfg.clip)?;
        let mut loss = pl.loss;
        st.clip_fraction += pl.clip_fraction;
        st.approx_kl += pl.approx_kl;
        st.policy_loss += loss.to_scalar::<f32>()?;
        if let (Some((value_clip, vf_coef)), Some(values)) = (ppo, &s.values) {
            let old_v = col(&|r| &r.values)?;
            let ret = col(&|r| &r.returns)?;
            let vl = ppo_value_loss(values, &old_v, &ret, &weights, value_clip)?;
            st.value_loss += vl.to_scalar::<f32>()?;
            loss = (loss + (vl * vf_coef)?)?;
        }
        if kl_in_loss {
            let reference = col(&|r| &r.ref_logprobs)?;
            let kl = cfg.kl.estimator.tensor(&s.logprobs, &reference)?;
            let kl = weighted_sum(&kl, &weights)?;
            st.kl_loss += kl.to_scalar::<f32>()?;
            loss = (loss + (kl * f64::from(cfg.kl.beta))?)?;
        }
        if let Some(ent) = &s.entropy {
            let ent = weighted_sum(ent, &weights)?;
            st.entropy += ent.to_scalar::<f32>()?;
            loss = (loss - (ent * cfg.entropy_coef)?)?;
        }
        acc.add(loss.backward()?)?;
    }
    Ok((acc.sum(), st))
}

/// Runs `cfg.epochs` passes over `batch` (after [`crate::prepare`]): each pass shuffles the
/// rollouts with `rng`, and each mini-batch of `cfg.minibatch_size` rollouts is one
/// clipped AdamW step whose learning rate follows `cfg.schedule` over the optimiser's step
/// count.
pub fn update(
    policy: &Policy,
    batch: &RolloutBatch,
    cfg: &RlConfig,
    opts: &mut Optimizers,
    rng: &mut ChaCha8Rng,
    pad_id: u32,
) -> Result<UpdateStats> {
    if batch.is_empty() {
        return Err(Error::Invalid("the rollout buffer is empty".into()));
    }
    if let Some(r) = batch
        .rollouts
        .iter()
        .find(|r| r.advantages.len() != r.response.len())
    {
        return Err(Error::Invalid(format!(
            "a rollout has {} advantages for {} tokens: run prepare() before update()",
            r.advantages.len(),
            r.response.len()
        )));
    }
    let vars = policy.all_vars();
    let mut out = UpdateStats::default();
    let mut sums = MinibatchStats::default();
    let mut norm_sum = 0f64;
    let mut measured = 0usize;
    for _ in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.shuffle(rng);
        for mb in order.chunks(cfg.minibatch_size) {
            let seed: u64 = rng.random();
            let (mut grads, st) = minibatch_gradients(policy, batch, mb, cfg, pad_id, seed)?;
            sums.policy_loss += st.policy_loss;
            sums.value_loss += st.value_loss;
            sums.kl_loss += st.kl_loss;
            sums.entropy += st.entropy;
            sums.clip_fraction += st.clip_fraction;
            sums.approx_kl += st.approx_kl;
            measured += 1;
            let norm = clip_grad_norm(&mut grads, &vars, cfg.max_grad_norm)?;
            if !norm.is_finite() {
                out.skipped_steps += 1;
                continue;
            }
            norm_sum += norm;
            let lr = cfg
                .schedule
                .lr_at(cfg.optimizer.lr, opts.policy.step_count());
            opts.policy.step(&grads, lr)?;
            if let Some(c) = &mut opts.critic {
                let clr = cfg.schedule.lr_at(c.config().lr, c.step_count());
                c.step(&grads, clr)?;
            }
            out.lr = lr;
            out.optimizer_steps += 1;
        }
    }
    let k = measured.max(1) as f32;
    out.policy_loss = sums.policy_loss / k;
    out.value_loss = sums.value_loss / k;
    out.kl_loss = sums.kl_loss / k;
    out.entropy = sums.entropy / k;
    out.clip_fraction = sums.clip_fraction / k;
    out.approx_kl = sums.approx_kl / k;
    out.grad_norm = (norm_sum / out.optimizer_steps.max(1) as f64) as f32;
    Ok(out)
}
