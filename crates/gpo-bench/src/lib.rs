//! `gpo-bench`: the measurements behind `gpo bench` and BENCHMARKS.md, set up exactly as
//! `shared/bench/pytorch_baseline.py` so the two can be compared in one session:
//!
//! - [`bench_sampling`]: 8 chat prompts, 64 new tokens (EOS ignored), temperature 0.8,
//!   top-p 0.9, KV cache; median of 3 runs after a short warm-up.
//! - [`bench_train_step`]: one step (forward, backward, AdamW) on 8 x 128 random tokens with
//!   the causal-LM loss, full fine-tuning or LoRA; median of 3 after a warm-up step, with
//!   the time of each phase.
//! - [`bench_diversity`]: the attacker's diversity penalty of 64 new prompts against a
//!   10,000-prompt history, and embedding those 64 prompts with all-MiniLM-L6-v2.
//! - [`Machine`]: the CPU, the kernel each product ran with, its FMA peak estimate and its
//!   measured read bandwidth, to put each phase beside the machine's limit.
#![warn(missing_docs)]

mod diversity;
mod machine;
mod sampling;
mod train;

pub use diversity::{bench_diversity, synthetic_prompts, DiversityBench};
pub use machine::{matmul_params, Achieved, Machine};
pub use sampling::{bench_sampling, SamplingBench, BENCH_QUESTIONS};
pub use train::{bench_train_step, TrainBench};

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model failed.
    #[error(transparent)]
    Lm(#[from] gpo_lm::Error),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] gpo_tokenizer::Error),
    /// The optimiser failed.
    #[error(transparent)]
    Optim(#[from] gpo_optim::Error),
    /// Diversity scoring failed.
    #[error(transparent)]
    Diversity(#[from] gpo_diversity::Error),
    /// The sentence embedder failed.
    #[error(transparent)]
    Embed(#[from] gpo_embed::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The median of a few timings (upper median for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
