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

/// A fine-tuning run advanced one epoch at a time: the optimiser and the shuffle live here,
/// so a run can stop after any epoch and resume exactly (same orders, same optimiser state).
pub struct SftRun {
    cfg: SftConfig,
    vars: Vec<(String, candle_core::Var)>,
    opt: AdamW,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    epochs_done: usize,
    step: usize,
}

impl SftRun {
    /// A run over `n_pairs` pairs that trains `model`'s trainable variables (LoRA adapters or
    /// every weight).
    pub fn new(model: &CausalLm, n_pairs: usize, cfg: &SftConfig) -> Result<Self> {
        cfg.validate()?;
        if n_pairs == 0 {
            return Err(Error::Invalid("sft: no (prompt, target) pairs".into()));
        }
        let vars = model.trainable_vars().to_vec();
        if vars.is_empty() {
            return Err(Error::Invalid(
                "sft: the model has no trainable variables: attach LoRA adapters first".into(),
            ));
        }
        Ok(SftRun {
            opt: AdamW::new(vars.clone(), cfg.optimizer)?,
            vars,
            cfg: *cfg,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            order: (0..n_pairs).collect(),
            epochs_done: 0,
            step: 0,
        })
    }

    /// Continues a run after `epochs_done` epochs: `model` holds the weights those epochs
    /// left and `optimizer_state` is the file [`SftRun::save_optimizer`] wrote then.
    pub fn resume(
        model: &CausalLm,
        n_pairs: usize,
        cfg: &SftConfig,
        epochs_done: usize,
        optimizer_state: &std::path::Path,
    ) -> Result<Self> {
        let mut run = SftRun::new(model, n_pairs, cfg)?;
        run.opt.load(optimizer_state)?;
        for _ in 0..epochs_done {
            run.order.shuffle(&mut run.rng);
        }
        run.epochs_done = epochs_done;
        run.step = epochs_done * n_pairs.div_ceil(cfg.batch_size);
        Ok(run)
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Writes the optimiser's state (atomically) for [`SftRun::resume`].
    pub fn save_optimizer(&self, path: &std::path::Path) -> Result<()> {
        Ok(self.opt.save(path)?)
    }

    /// One pass over `pairs` (prompt ids, target ids) in a newly shuffled order, calling
    /// `on_step` after every optimiser step.
    pub fn run_epoch(
        &mut self,
        model: &CausalLm,
        pairs: &[(Vec<u32>, Vec<u32>)],
        pad_id: u32,
        mut on_step: impl FnMut(&SftStep),
    ) -> Result<()> {
        if pairs.len() != self.order.len() {
            return Err(Error::Invalid(format!(
                "sft: the run was set up for {} pairs, not {}",
                self.order.len(),
                pairs.len()
            )));
        }
        self.order.shuffle(&mut self.rng);
        for chunk in self.order.chunks(self.cfg.batch_size) {
            let batch_pairs: Vec<(Vec<u32>, Vec<u32>)> =
                chunk.iter().map(|&i| pairs[i].clone()).collect();
            let (loss, mut grads) =
                batch_gradients(model, &batch_pairs, pad_id, self.cfg.micro_batch_size)?;
            let grad_norm = clip_grad_norm(&mut grads, &self.vars, self.cfg.max_grad_norm)?;
            self.opt.step(&grads, self.cfg.optimizer.lr)?;
            self.step += 1;
            on_step(&SftStep {
                epoch: self.epochs_done,
                step: self.step,
                loss,
                grad_norm,
            });
        }
        self.epochs_done += 1;
        Ok(())
    }
}

/// Trains `model`'s trainable variables (LoRA adapters or every weight) on `pairs` of
/// (prompt ids, target ids) for `cfg.epochs` epochs, calling `on_step` after every
/// optimiser step.
pub fn fine_tune(
    model: &CausalLm,
    pairs: &[(Vec<u32>, Vec<u32>)],
    pad_id: u32,
    cfg: &SftConfig,
    mut on_step: impl FnMut(&SftStep),
) -> Result<()> {
    let mut run = SftRun::new(model, pairs.len(), cfg)?;
    while run.epochs_done() < cfg.epochs {
        run.run_epoch(model, pairs, pad_id, &mut on_step)?;
    }
    Ok(())
}
