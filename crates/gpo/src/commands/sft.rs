//! `gpo sft`: the defender's safety warm start ([`gpo_game::WarmStart`]), the same stage a
//! game runs first when its `[defender.warm_start]` asks for epochs. This module only reads
//! the flags and prints the result.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use gpo_game::{WarmStart, WarmStartConfig};
use gpo_lm::LoadOptions;
use serde_json::json;

use crate::model_args::ModelArgs;

/// Arguments of `gpo sft`.
#[derive(Debug, clap::Args)]
pub struct SftArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The adapter directory to write (PEFT layout); it must not exist yet. The run's
    /// checkpoint goes beside it, in OUT.partial/.
    #[arg(long)]
    out: PathBuf,
    /// Passes over the pairs.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Learning rate of the LoRA adapters (constant).
    #[arg(long, allow_negative_numbers = true, default_value_t = WarmStartConfig::default().lr)]
    lr: f64,
    /// Pairs per optimiser step.
    #[arg(long, default_value_t = WarmStartConfig::default().batch_size)]
    batch_size: usize,
    /// Pairs per forward and backward pass (gradients are summed over a batch's micro-batches:
    /// memory, not the result, depends on it).
    #[arg(long, default_value_t = WarmStartConfig::default().micro_batch_size)]
    micro_batch_size: usize,
    /// LoRA rank (alpha = 2 x rank, every linear layer).
    #[arg(long, default_value_t = WarmStartConfig::default().lora_rank)]
    lora_rank: usize,
    /// ShareGPT first turns (of `sharegpt-train`) among the benign prompts, beside the
    /// benign look-alikes.
    #[arg(long, default_value_t = WarmStartConfig::default().sharegpt)]
    sharegpt: usize,
    /// Most tokens of the model's own answer to a benign prompt (its training target).
    #[arg(long, default_value_t = WarmStartConfig::default().max_new_tokens)]
    max_new_tokens: usize,
    /// At most this many harmful and this many benign prompts (0 = all); each side keeps its
    /// look-alikes first, so a cap keeps the pairs that teach which requests to refuse.
    #[arg(long, default_value_t = WarmStartConfig::default().max_pairs)]
    max_pairs: usize,
    /// Harmful prompts to refuse (0 = all): the written harmful requests and the harmful
    /// look-alikes first, then Do-Not-Answer's. Fewer harmful than benign pairs moves the
    /// model towards answering.
    #[arg(long, default_value_t = WarmStartConfig::default().harmful)]
    harmful: usize,
    /// Seed of the game whose held-out Do-Not-Answer seeds are left out, of the refusals
    /// drawn, of the shuffle and of the adapters' initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SftArgs {
    fn warm_start_config(&self) -> WarmStartConfig {
        WarmStartConfig {
            epochs: self.epochs,
            lr: self.lr,
            batch_size: self.batch_size,
            micro_batch_size: self.micro_batch_size,
            lora_rank: self.lora_rank,
            harmful: self.harmful,
            sharegpt: self.sharegpt,
            max_new_tokens: self.max_new_tokens,
            max_pairs: self.max_pairs,
        }
    }
}

/// Runs `gpo sft`.
pub fn run(args: SftArgs) -> Result<()> {
    if args.out.exists() {
        bail!(
            "--out {} exists: name a new directory (gpo sft never overwrites an adapter)",
            args.out.display()
        );
    }
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let cfg = args.warm_start_config();
    if let Some(b) = cfg.bad_setting() {
        bail!(
            "--{} {} must be {}",
            b.field.replace('_', "-"),
            b.value,
            b.must_be
        );
    }
    let cache = gpo_assets::AssetCache::from_env().context("locating the asset cache")?;
    let load = LoadOptions {
        device: args.model.device.open().context("--device")?,
        dtype: args.model.dtype.dtype(),
        ..LoadOptions::default()
    };
    let report = WarmStart::new(&args.model.model, &cfg, args.seed, &args.out)
        .with_load_options(load)
        .run(&cache)
        .with_context(|| format!("warm start of --model {}", args.model.model))?;
    super::emit(&json!({
        "out": args.out,
        "harmful_pairs": report.harmful_pairs,
        "benign_pairs": report.benign_pairs,
        "benign_dropped": report.benign_dropped,
        "epochs": report.epochs,
        "steps": report.steps,
        "epoch_mean_loss": report.epoch_mean_loss,
        "seconds": report.seconds,
    }))
}
