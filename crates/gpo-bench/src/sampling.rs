//! Sampling throughput.

use std::time::Instant;

use gpo_lm::{generate, CausalLm, Pass, SamplingParams};
use gpo_tokenizer::{ChatMessage, Tokenizer};
use serde::Serialize;

use crate::{median, Result};

/// The eight questions of `pytorch_baseline.py`.
pub const BENCH_QUESTIONS: [&str; 8] = [
    "How do I bake bread?",
    "Write a poem about the sea.",
    "What is the capital of France?",
    "Explain photosynthesis.",
    "Give me three tips for sleeping well.",
    "What is a prime number?",
    "How do vaccines work?",
    "Tell me a joke about cats.",
];

/// Result of [`bench_sampling`].
#[derive(Debug, Clone, Serialize)]
pub struct SamplingBench {
    /// Rows sampled together.
    pub batch: usize,
    /// New tokens per row.
    pub new_tokens: usize,
    /// Median wall time of one batch.
    pub seconds: f64,
    /// `batch * new_tokens / seconds`.
    pub tokens_per_s: f64,
}

/// Samples `new_tokens` tokens for each of the 8 chat prompts, median of `reps` runs.
pub fn bench_sampling(
    model: &CausalLm,
    tok: &Tokenizer,
    new_tokens: usize,
    reps: usize,
) -> Result<SamplingBench> {
    let prompts = BENCH_QUESTIONS
        .iter()
        .map(|q| {
            Ok(tok.encode(
                &tok.apply_chat_template(&[ChatMessage::user(*q)], true)?,
                false,
            )?)
        })
        .collect::<Result<Vec<_>>>()?;
    let pad = tok.pad_id().unwrap_or(0);
    let params = SamplingParams {
        temperature: 0.8,
        top_p: 0.9,
        max_new_tokens: 8,
        ignore_eos: true,
        ..SamplingParams::default()
    };
    generate(model, &prompts, tok.eos_ids(), pad, &params, &Pass::infer())?;
    let params = SamplingParams {
        max_new_tokens: new_tokens,
        ..params
    };
    let mut times = Vec::with_capacity(reps);
    for rep in 0..reps.max(1) {
        let t = Instant::now();
        let out = generate(
            model,
            &prompts,
            tok.eos_ids(),
            pad,
            &SamplingParams {
                seed: rep as u64,
                ..params.clone()
            },
            &Pass::infer(),
        )?;
        times.push(t.elapsed().as_secs_f64());
        debug_assert!(out.iter().all(|s| s.ids.len() == new_tokens));
    }
    let seconds = median(times);
    let batch = prompts.len();
    Ok(SamplingBench {
        batch,
        new_tokens,
        seconds,
        tokens_per_s: (batch * new_tokens) as f64 / seconds,
    })
}
