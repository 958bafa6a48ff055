//! Training-step time.

use std::time::Instant;

use candle_core::Tensor;
use gpo_lm::{gather_logprobs, CausalLm, Pass};
use gpo_optim::{AdamW, AdamWConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{median, Result};

/// Result of [`bench_train_step`]; times are medians in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBench {
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Whole step.
    pub step_s: f64,
    /// Forward pass and loss.
    pub forward_s: f64,
    /// Backward pass.
    pub backward_s: f64,
    /// Gradient clipping and AdamW.
    pub optimizer_s: f64,
}

/// One causal-LM training step on `batch x seq_len` random tokens over the model's
/// trainable variables (all weights, or the LoRA adapters), median of `reps` after a warm-up.
pub fn bench_train_step(
    model: &CausalLm,
    batch: usize,
    seq_len: usize,
    reps: usize,
    seed: u64,
) -> Result<TrainBench> {
    let vars = model.trainable_vars().to_vec();
    let trainable_params = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vocab = model.config().vocab_size as u32;
    let ids: Vec<u32> = (0..batch * seq_len)
        .map(|_| rng.random_range(0..vocab))
        .collect();
    let ids = Tensor::from_vec(ids, (batch, seq_len), model.device())?;
    let targets = ids.narrow(1, 1, seq_len - 1)?.contiguous()?;
    let (mut fwd, mut bwd, mut opt_t, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..=reps.max(1) {
        let t0 = Instant::now();
        let hidden = model.forward_hidden(&ids, None, &Pass::train())?;
        let logits = model.lm_logits(&hidden.narrow(1, 0, seq_len - 1)?, &Pass::train())?;
        let loss = gather_logprobs(&logits, &targets)?.mean_all()?.neg()?;
        loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let mut grads = loss.backward()?;
        // A GPU queues its kernels: wait for them so each phase is timed (no-op on the CPU).
        model.device().synchronize()?;
        let t2 = Instant::now();
        gpo_optim::clip_grad_norm(&mut grads, &vars, 1.0)?;
        opt.step(&grads, 1e-5)?;
        model.device().synchronize()?;
        let t3 = Instant::now();
        if rep > 0 {
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            opt_t.push((t3 - t2).as_secs_f64());
            total.push((t3 - t0).as_secs_f64());
        }
    }
    Ok(TrainBench {
        batch,
        seq_len,
        trainable_params,
        step_s: median(total),
        forward_s: median(fwd),
        backward_s: median(bwd),
        optimizer_s: median(opt_t),
    })
}
