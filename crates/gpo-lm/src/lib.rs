//! `gpo-lm`: Llama-family causal language models on candle, written for RL.
//!
//! - [`load_model`] reads a GGUF file (Q4_0/Q4_1/Q8_0/F16/BF16/F32, dequantized) or a Hugging
//!   Face directory (sharded safetensors, f32/f16/bf16) into a [`CausalLm`] and its tokenizer.
//! - [`CausalLm::forward`] is the differentiable full-sequence forward over a padded batch
//!   (logits at every position); [`CausalLm::forward_cached`] the KV-cache path used by
//!   [`generate`]. A [`Pass`] picks the kernels ([`Mode::Train`]: differentiable;
//!   [`Mode::Infer`]: fused, no graph) and whether LoRA adapters apply.
//! - [`response_logprobs`] gives per-token log-probs of responses for policy-gradient losses.
//! - [`attach_lora`], [`save_lora`], [`load_lora`]: LoRA adapters in PEFT's layout.
//!
//! Architectures: Llama / SmolLM / SmolLM2 and Qwen2 (q/k/v biases), with GQA, RoPE, RMSNorm
//! and SwiGLU.
//!
//! ```no_run
//! use gpo_lm::{generate, load_model, LoadOptions, Pass, SamplingParams};
//! # fn main() -> gpo_lm::Result<()> {
//! let lm = load_model("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(), &LoadOptions::default())?;
//! let prompt = lm.tokenizer.encode("The capital of France is", false)?;
//! let params = SamplingParams { max_new_tokens: 8, ..SamplingParams::default() };
//! let eos = lm.tokenizer.eos_ids().to_vec();
//! let pad = lm.tokenizer.pad_id().unwrap_or(0);
//! let samples = generate(&lm.model, &[prompt], &eos, pad, &params, &Pass::infer())?;
//! println!("{}", lm.tokenizer.decode(&samples[0].ids, true)?);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod bf16_gemm;
mod bf16_kernel;
mod block;
mod config;
pub mod cpu;
mod device;
mod diffops;
mod error;
mod fused;
mod gguf;
mod gguf_alignment;
mod hf;
mod linear;
mod loader;
mod logprobs;
mod lora;
mod lora_node;
mod mask;
mod model;
mod ops;
mod pass;
mod precision;
mod rope;
mod sampling;
mod save;
mod small_matmul;
#[cfg(test)]
mod test_util;
mod text_serde;
mod weights;

pub use config::{Architecture, LmConfig};
pub use device::DeviceSpec;
pub use error::{Error, Result};
pub use gguf::{read_gguf, read_gguf_from, GgufCheckpoint};
pub use hf::read_hf_dir;
pub use linear::{Linear, LoraAdapter};
pub use loader::{load_model, LoadOptions, LoadedModel};
pub use logprobs::{
    gather_logprobs, gather_logprobs_generic, response_hidden, response_logprobs, score_sequence,
    PairBatch,
};
pub use lora::{
    adapter_base_model, attach_lora, load_lora, merge_lora, save_lora, LoraConfig, LINEAR_MODULES,
    MAX_RANK,
};
pub use model::{CausalLm, KvCache, Trainable};
pub use pass::{Mode, Pass};
pub use precision::Precision;
pub use sampling::{
    generate, generate_rows, generate_rows_with, position_logprobs, request_rows, Drawn,
    FinishReason, Row, Sample, SamplingParams,
};
pub use save::{existing_dir, replace_dir, sibling_path, write_atomic, write_safetensors_atomic};
pub use weights::WeightMap;
