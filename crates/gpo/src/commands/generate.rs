//! `gpo generate`.

use anyhow::{Context, Result};
use gpo_lm::{generate, LoadOptions, Pass, SamplingParams};
use gpo_tokenizer::ChatMessage;
use serde_json::json;

use crate::model_args::{AdapterArgs, ModelArgs};

/// Arguments of `gpo generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    adapter: AdapterArgs,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// Render the prompt as a user turn through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Samples to draw.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Softmax temperature (0 = greedy).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.8)]
    temperature: f64,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.9)]
    top_p: f64,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Repetition penalty (1 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    repetition_penalty: f64,
    /// Do not stop at end-of-sequence tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Seed: the same seed gives the same samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Prints one `{"text", "ids", "logprobs", "finish"}` line per sample.
pub fn run(args: GenerateArgs) -> Result<()> {
    let params = SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        repetition_penalty: args.repetition_penalty,
        max_new_tokens: args.max_new_tokens,
        ignore_eos: args.ignore_eos,
        n: args.n,
        seed: args.seed,
    };
    params.validate().context("invalid sampling option")?;
    let mut lm = args.model.load(&LoadOptions::default())?;
    args.adapter.apply(&mut lm)?;
    let text = if args.chat {
        let messages = [ChatMessage {
            role: "user".into(),
            content: args.prompt.clone(),
        }];
        lm.tokenizer
            .apply_chat_template(&messages, true)
            .context("rendering the chat template")?
    } else {
        args.prompt.clone()
    };
    let ids = lm.tokenizer.encode(&text, false)?;
    if ids.is_empty() {
        anyhow::bail!("--prompt is empty: give at least one token of text");
    }
    let eos = lm.tokenizer.eos_ids().to_vec();
    let pad = lm.tokenizer.pad_id().unwrap_or(0);
    let samples = generate(&lm.model, &[ids], &eos, pad, &params, &Pass::infer())?;
    for s in samples {
        let text = lm.tokenizer.decode(&s.ids, true)?;
        super::emit(
            &json!({ "text": text, "ids": s.ids, "logprobs": s.logprobs, "finish": s.finish }),
        )?;
    }
    Ok(())
}
