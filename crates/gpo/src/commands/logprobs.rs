//! `gpo logprobs`.

use anyhow::Result;
use gpo_lm::{score_sequence, LoadOptions};
use serde_json::json;

use crate::model_args::{AdapterArgs, ModelArgs};

/// Arguments of `gpo logprobs`.
#[derive(Debug, clap::Args)]
pub struct LogprobsArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    adapter: AdapterArgs,
    /// The text to score, teacher-forced.
    #[arg(long)]
    text: String,
}

/// Prints `{"ids", "logprobs", "top1"}`: `logprobs[i] = log p(ids[i] | ids[..i])` (null for
/// `i = 0`); `top1[i]` = the arg-max next token after position `i`.
pub fn run(args: LogprobsArgs) -> Result<()> {
    let mut lm = args.model.load(&LoadOptions::default())?;
    args.adapter.apply(&mut lm)?;
    let ids = lm.tokenizer.encode(&args.text, false)?;
    if ids.is_empty() {
        anyhow::bail!("--text is empty: nothing to score");
    }
    let (logprobs, top1) = score_sequence(&lm.model, &ids)?;
    super::emit(&json!({ "ids": ids, "logprobs": logprobs, "top1": top1 }))
}
