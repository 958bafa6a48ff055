//! The optimisation phase: epochs over the rollout buffer, mini-batches, micro-batches with
//! gradient accumulation, then a clipped AdamW step for the policy and one for the critic,
//! each clipped by its own gradient norm.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use gpo_lm::Pass;
use gpo_optim::{clip_grad_norm, AdamW, AdamWConfig, GradAccumulator};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{KlPlacement, RlConfig};
use crate::loss::weighted_sum;
use crate::policy::{Policy, Scores};
use crate::rollout::{Rollout, RolloutBatch};
use crate::update_stats::{MinibatchStats, UpdateStats};
use crate::{ppo_policy_loss, ppo_value_loss, Error, Estimator, Result};

/// The optimisers of one player: the policy's, and the critic's under PPO.
pub struct Optimizers {
    /// Over [`Policy::policy_vars`].
    pub policy: AdamW,
    /// Over the critic's variables, with the critic's learning rate.
    pub critic: Option<AdamW>,
}

impl Optimizers {
    /// Fresh optimisers for `policy` under `cfg`; the policy's critic must be of the kind
    /// `cfg` names.
    pub fn new(policy: &Policy, cfg: &RlConfig) -> Result<Self> {
        let policy_opt = AdamW::new(policy.policy_vars().to_vec(), cfg.optimizer)?;
        let critic = match (cfg.estimator.critic(), &policy.critic) {
            (None, _) => None,
            (Some(c), Some(critic)) if c.kind == critic.kind() => Some(AdamW::new(
                critic.vars(),
                AdamWConfig {
                    lr: c.lr,
                    ..cfg.optimizer
                },
            )?),
            (Some(c), found) => {
                let found = found.as_ref().map_or("none", |f| f.kind().name());
                return Err(Error::Invalid(format!(
                    "estimator.critic.kind = \"{}\" but the policy's critic is {found}: build \
                     the policy with_critic(CriticKind::{:?}, seed)",
                    c.kind.name(),
                    c.kind,
                )));
            }
        };
        Ok(Optimizers {
            policy: policy_opt,
            critic,
        })
    }
}

/// Which parts of a player an update trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateScope {
    /// The policy and, under PPO, the critic.
    All,
    /// The critic alone (its warm-up); the policy is left unchanged.
    CriticOnly,
}

/// What an update reads besides the buffer: the player, its settings and what it trains.
#[derive(Debug, Clone, Copy)]
pub struct UpdateContext<'a> {
    /// The player (policy and critic).
    pub policy: &'a Policy,
    /// Its settings.
    pub cfg: &'a RlConfig,
    /// The token that fills padding.
    pub pad_id: u32,
    /// What is trained.
    pub scope: UpdateScope,
}

/// The per-token host columns of a micro-batch's rollouts.
struct Columns<'a> {
    rows: Vec<&'a Rollout>,
    width: usize,
    device: &'a Device,
}

impl Columns<'_> {
    /// One column right-padded with zeros, as a `[rows, width]` tensor.
    fn get(&self, f: fn(&Rollout) -> &[f32]) -> Result<Tensor> {
        let mut flat = Vec::with_capacity(self.rows.len() * self.width);
        for r in &self.rows {
            let r = f(r);
            flat.extend_from_slice(&r[..r.len().min(self.width)]);
            flat.extend(std::iter::repeat_n(
                0f32,
                self.width.saturating_sub(r.len()),
            ));
        }
        Ok(Tensor::from_vec(
            flat,
            (self.rows.len(), self.width),
            self.device,
        )?)
    }
}

/// The loss of the mini-batch `indices`, back-propagated in micro-batches of
/// `cfg.micro_batch_size` and summed: every token carries its weight within the whole
/// mini-batch (`cfg.loss_aggregation`), so the sum is the gradient of the mini-batch's loss
/// (splitting changes nothing but memory and speed).
pub(crate) fn minibatch_gradients(
    ctx: &UpdateContext,
    batch: &RolloutBatch,
    indices: &[usize],
    dropout_seed: u64,
) -> Result<(GradStore, MinibatchStats)> {
    let micro_size = ctx.cfg.micro_batch_size;
    let lengths: Vec<usize> = indices
        .iter()
        .map(|&i| batch.rollouts[i].response.len())
        .collect();
    let row_weight = ctx.cfg.loss_aggregation.token_weights(&lengths)?;
    let mut acc = GradAccumulator::new(&ctx.policy.all_vars());
    let mut st = MinibatchStats::default();
    let micro_batches = indices
        .chunks(micro_size)
        .zip(row_weight.chunks(micro_size));
    for (m, (micro, micro_weights)) in micro_batches.enumerate() {
        let pass = Pass::train().with_dropout_seed(dropout_seed.wrapping_add(m as u64));
        let loss = micro_loss(ctx, batch, micro, micro_weights, &pass, &mut st)?;
        acc.add(loss.backward()?)?;
    }
    Ok((acc.sum(), st))
}

/// The loss of one micro-batch: the policy's terms (unless [`UpdateScope::CriticOnly`])
/// plus the critic's. They share no variable (the critic reads the policy's hidden states
/// detached, or runs its own adapters), so one backward pass gives each its own gradient.
fn micro_loss(
    ctx: &UpdateContext,
    batch: &RolloutBatch,
    micro: &[usize],
    row_weights: &[f64],
    pass: &Pass,
    st: &mut MinibatchStats,
) -> Result<Tensor> {
    let cfg = ctx.cfg;
    let device = ctx.policy.model.device();
    let pairs = batch.pair_batch(micro, ctx.pad_id, device)?;
    let cols = Columns {
        rows: micro.iter().map(|&i| &batch.rollouts[i]).collect(),
        width: pairs.response_width,
        device,
    };
    let row_weights: Vec<f32> = row_weights.iter().map(|&x| x as f32).collect();
    let row_weights = Tensor::from_vec(row_weights, (micro.len(), 1), device)?;
    let weights = pairs.response_mask.broadcast_mul(&row_weights)?;
    let want_values = cfg.estimator.needs_critic();
    let want_entropy = cfg.entropy_coef > 0.0;
    let s = ctx.policy.score(
        &pairs,
        cfg.sampling.temperature,
        pass,
        want_values,
        want_entropy,
    )?;
    let policy_loss = policy_terms(cfg, &s, &cols, &weights, st)?;
    let value_loss = value_terms(cfg, &s, &cols, &weights, st)?;
    match (ctx.scope, value_loss) {
        (UpdateScope::All, None) => Ok(policy_loss),
        (UpdateScope::All, Some(v)) => Ok((policy_loss + v)?),
        (UpdateScope::CriticOnly, Some(v)) => Ok(v),
        (UpdateScope::CriticOnly, None) => Err(no_critic_to_train()),
    }
}

fn no_critic_to_train() -> Error {
    Error::Invalid("a critic-only update needs the ppo estimator and a critic".into())
}

/// The policy's terms: the clipped surrogate, the KL penalty when it is in the loss, and
/// the entropy bonus.
fn policy_terms(
    cfg: &RlConfig,
    s: &Scores,
    cols: &Columns,
    weights: &Tensor,
    st: &mut MinibatchStats,
) -> Result<Tensor> {
    let old = cols.get(|r| &r.behaviour_logprobs)?;
    let adv = cols.get(|r| &r.advantages)?;
    // Truncated importance weights of engine rollouts scale each token's surrogate only.
    let surrogate_weights = match cols.rows.iter().any(|r| !r.is_weights.is_empty()) {
        true => (weights * cols.get(|r| &r.is_weights)?)?,
        false => weights.clone(),
    };
    let pl = ppo_policy_loss(&s.logprobs, &old, &adv, &surrogate_weights, cfg.clip)?;
    let mut loss = pl.loss;
    st.clip_fraction += pl.clip_fraction;
    st.approx_kl += pl.approx_kl;
    st.policy_loss += loss.to_scalar::<f32>()?;
    if cfg.kl.placement == KlPlacement::Loss && cfg.kl.beta > 0.0 {
        let reference = cols.get(|r| &r.ref_logprobs)?;
        let kl = cfg.kl.estimator.tensor(&s.logprobs, &reference)?;
        let kl = weighted_sum(&kl, weights)?;
        st.kl_loss += kl.to_scalar::<f32>()?;
        loss = (loss + (kl * f64::from(cfg.kl.beta))?)?;
    }
    if let Some(ent) = &s.entropy {
        let ent = weighted_sum(ent, weights)?;
        st.entropy += ent.to_scalar::<f32>()?;
        loss = (loss - (ent * cfg.entropy_coef)?)?;
    }
    Ok(loss)
}

/// The critic's term, `vf_coef` times the (clipped) value loss; `None` without a critic.
fn value_terms(
    cfg: &RlConfig,
    s: &Scores,
    cols: &Columns,
    weights: &Tensor,
    st: &mut MinibatchStats,
) -> Result<Option<Tensor>> {
    let (
        Estimator::Ppo {
            value_clip,
            vf_coef,
            ..
        },
        Some(values),
    ) = (cfg.estimator, &s.values)
    else {
        return Ok(None);
    };
    let old = cols.get(|r| &r.values)?;
    let ret = cols.get(|r| &r.returns)?;
    let vl = ppo_value_loss(values, &old, &ret, weights, value_clip)?;
    st.value_loss += vl.to_scalar::<f32>()?;
    Ok(Some((vl * vf_coef)?))
}

/// Clips the policy's and the critic's gradients, each by its own norm, and steps each
/// optimiser at its learning rate on the schedule (over its own step count). Returns both
/// norms before clipping, or `None`, stepping neither, when one is not finite.
fn step(
    ctx: &UpdateContext,
    grads: &mut GradStore,
    opts: &mut Optimizers,
    out: &mut UpdateStats,
) -> Result<Option<(f64, f64)>> {
    let cfg = ctx.cfg;
    let train_policy = ctx.scope == UpdateScope::All;
    let policy_norm = match train_policy {
        true => clip_grad_norm(grads, ctx.policy.policy_vars(), cfg.max_grad_norm)?,
        false => 0.0,
    };
    let critic_norm = match (cfg.estimator.critic(), &ctx.policy.critic) {
        (Some(c), Some(critic)) => clip_grad_norm(grads, &critic.vars(), c.max_grad_norm)?,
        _ => 0.0,
    };
    if !(policy_norm.is_finite() && critic_norm.is_finite()) {
        return Ok(None);
    }
    if train_policy {
        let lr = cfg
            .schedule
            .lr_at(cfg.optimizer.lr, opts.policy.step_count());
        opts.policy.step(grads, lr)?;
        out.lr = lr;
    }
    if let Some(c) = &mut opts.critic {
        let lr = cfg.schedule.lr_at(c.config().lr, c.step_count());
        c.step(grads, lr)?;
        out.critic_lr = lr;
    }
    out.optimizer_steps += 1;
    Ok(Some((policy_norm, critic_norm)))
}

/// Refuses a buffer that is empty or was not prepared, and a critic-only update without a
/// critic.
fn check_inputs(ctx: &UpdateContext, batch: &RolloutBatch) -> Result<()> {
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
    let has_critic = ctx.cfg.estimator.needs_critic() && ctx.policy.critic.is_some();
    if ctx.scope == UpdateScope::CriticOnly && !has_critic {
        return Err(no_critic_to_train());
    }
    Ok(())
}

/// Runs `cfg.epochs` passes over `batch` (after [`crate::prepare`]): each pass shuffles the
/// rollouts with `rng`, and each mini-batch of `cfg.minibatch_size` rollouts is one step of
/// the policy's AdamW and one of the critic's (see [`UpdateContext::scope`]).
pub fn update(
    ctx: &UpdateContext,
    batch: &RolloutBatch,
    opts: &mut Optimizers,
    rng: &mut ChaCha8Rng,
) -> Result<UpdateStats> {
    check_inputs(ctx, batch)?;
    let mut out = UpdateStats {
        critic_only: ctx.scope == UpdateScope::CriticOnly,
        ..UpdateStats::default()
    };
    let mut sums = MinibatchStats::default();
    let (mut policy_norms, mut critic_norms) = (0f64, 0f64);
    let mut measured = 0usize;
    for _ in 0..ctx.cfg.epochs {
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.shuffle(rng);
        for mb in order.chunks(ctx.cfg.minibatch_size) {
            let seed: u64 = rng.random();
            let (mut grads, st) = minibatch_gradients(ctx, batch, mb, seed)?;
            sums.add(&st);
            measured += 1;
            match step(ctx, &mut grads, opts, &mut out)? {
                Some((p, c)) => {
                    policy_norms += p;
                    critic_norms += c;
                }
                None => out.skipped_steps += 1,
            }
        }
    }
    sums.mean_into(measured, &mut out);
    let steps = out.optimizer_steps.max(1) as f64;
    out.grad_norm = (policy_norms / steps) as f32;
    out.critic_grad_norm = (critic_norms / steps) as f32;
    Ok(out)
}
