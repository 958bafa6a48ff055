//! `gpo tokenize`.

use anyhow::Result;
use gpo_lm::LoadOptions;
use serde_json::json;

use crate::model_args::ModelArgs;

/// Arguments of `gpo tokenize`.
#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to tokenize (special tokens written in it are recognised).
    text: String,
}

/// Prints `{"ids":[...]}`.
pub fn run(args: TokenizeArgs) -> Result<()> {
    let lm = args.model.load(&LoadOptions::default())?;
    let ids = lm.tokenizer.encode(&args.text, false)?;
    super::emit(&json!({ "ids": ids }))
}
