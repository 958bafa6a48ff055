//! Supervised fine-tuning on (prompt, target) pairs: the warm start that teaches a policy an
//! answer RL cannot find by sampling (a 135M defender almost never says "I can't help with
//! that" on its own, so no reward on explicit refusals can reach it).
//!
//! The loss is the mean negative log-likelihood of the target tokens given the prompt,
//! `-(1/T) sum_t log pi(y_t | x, y_<t)` over the `T` target tokens of a batch (prompt tokens
//! carry no loss). One AdamW step per batch after clipping the gradient norm.

use candle_core::backprop::GradStore;
use candle_core::Tensor;
use gpo_lm::{response_logprobs, CausalLm, PairBatch, Pass};
use gpo_optim::{clip_grad_norm, AdamW, AdamWConfig, GradAccumulator};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// How supervised fine-tuning runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SftConfig {
    /// Passes over the pairs.
    pub epochs: usize,
    /// Pairs per optimiser step.
    pub batch_size: usize,
    /// Pairs per forward and backward pass; a batch's gradient is summed over its
    /// micro-batches, each token weighted by 1 / (the batch's target tokens), so the split
    /// changes memory and speed, not the step.
    pub micro_batch_size: usize,
    /// AdamW settings (its learning rate is constant).
    pub optimizer: AdamWConfig,
    /// Gradient-norm clip (`f64::INFINITY` disables it).
    pub max_grad_norm: f64,
    /// Seed of the shuffle; each epoch draws a new order from it.
    pub seed: u64,
}

impl Default for SftConfig {
    /// Two epochs of batches of 16 (micro-batches of 4) at lr 2e-4 (a LoRA rate), clip 1.
    fn default() -> Self {
        SftConfig {
            epochs: 2,
            batch_size: 16,
            micro_batch_size: 4,
            optimizer: AdamWConfig {
                lr: 2e-4,
                ..AdamWConfig::default()
            },
            max_grad_norm: 1.0,
            seed: 0,
        }
    }
}

impl SftConfig {
    /// Checks every field, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.epochs == 0 {
            return bad("sft epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("sft batch_size must be at least 1".into());
        }
        if self.micro_batch_size == 0 {
            return bad("sft micro_batch_size must be at least 1".into());
        }
        if !(self.optimizer.lr.is_finite() && self.optimizer.lr > 0.0) {
            return bad(format!(
                "sft lr {} must be a finite number > 0",
                self.optimizer.lr
            ));
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return bad(format!(
                "sft max_grad_norm {} must be > 0 (inf disables clipping)",
                self.max_grad_norm
            ));
        }
        Ok(())
    }
}

/// The mean negative log-likelihood of `batch`'s target tokens under `model` (differentiable).
pub fn sft_loss(model: &CausalLm, batch: &PairBatch) -> Result<Tensor> {
    let tokens = batch.response_mask.sum_all()?.to_scalar::<f32>()?;
    summed_nll(model, batch, f64::from(tokens))
}

/// The negative log-likelihood of `batch`'s target tokens divided by `tokens`.
fn summed_nll(model: &CausalLm, batch: &PairBatch, tokens: f64) -> Result<Tensor> {
    let lp = response_logprobs(model, batch, &Pass::train())?;
    Ok((lp.sum_all()?.neg()? / tokens)?)
}

/// One batch's loss and gradient, accumulated over micro-batches of `micro` pairs.
fn batch_gradients(
    model: &CausalLm,
    pairs: &[(Vec<u32>, Vec<u32>)],
    pad_id: u32,
    micro: usize,
) -> Result<(f64, GradStore)> {
    let tokens: usize = pairs.iter().map(|(_, t)| t.len()).sum();
    let mut acc = GradAccumulator::new(model.trainable_vars());
    let mut loss = 0.0;
    for chunk in pairs.chunks(micro) {
        let batch = PairBatch::new(chunk, pad_id, model.device())?;
        let part = summed_nll(model, &batch, tokens as f64)?;
        loss += f64::from(part.to_scalar::<f32>()?);
        acc.add(part.backward()?)?;
    }
    Ok((loss, acc.sum()))
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SftStep {
    /// Epoch (from 0).
    pub epoch: usize,
    /// Step within the whole run (from 1).
    pub step: usize,
    /// The batch's loss before the step.
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Trains `model`'s trainable variables (LoRA adapters or every weight) on `pairs` of
/// (prompt ids, target ids), calling `on_step` after every optimiser step.
pub fn fine_tune(
    model: &CausalLm,
    pairs: &[(Vec<u32>, Vec<u32>)],
    pad_id: u32,
    cfg: &SftConfig,
    mut on_step: impl FnMut(&SftStep),
) -> Result<()> {
    cfg.validate()?;
    if pairs.is_empty() {
        return Err(Error::Invalid("sft: no (prompt, target) pairs".into()));
    }
    let vars = model.trainable_vars().to_vec();
    if vars.is_empty() {
        return Err(Error::Invalid(
            "sft: the model has no trainable variables: attach LoRA adapters first".into(),
        ));
    }
    let mut opt = AdamW::new(vars.clone(), cfg.optimizer)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch_size) {
            let batch_pairs: Vec<(Vec<u32>, Vec<u32>)> =
                chunk.iter().map(|&i| pairs[i].clone()).collect();
            let (loss, mut grads) =
                batch_gradients(model, &batch_pairs, pad_id, cfg.micro_batch_size)?;
            let grad_norm = clip_grad_norm(&mut grads, &vars, cfg.max_grad_norm)?;
            opt.step(&grads, cfg.optimizer.lr)?;
            step += 1;
            on_step(&SftStep {
                epoch,
                step,
                loss,
                grad_norm,
            });
        }
    }
    Ok(())
}
