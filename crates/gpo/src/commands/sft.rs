//! `gpo sft`: the defender's safety warm start. Harmful training requests are answered with
//! an explicit refusal, benign ones (alarming-sounding look-alikes and ShareGPT first turns)
//! with the model's own greedy answer, and LoRA adapters are fine-tuned on both; the result
//! is an adapter directory that `gpo eval defender DIR` evaluates. Why: a 135M defender
//! almost never refuses explicitly on its own (1 of 400 HarmBench answers), so RL has no
//! explicit refusal to reinforce.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use gpo_game::safety_sft::{refusal_targets, SafetySftPrompts};
use gpo_game::DataConfig;
use gpo_lm::{attach_lora, generate, CausalLm, LoadOptions, LoraConfig, Pass, SamplingParams};
use gpo_rl::{SftConfig, SftRun};
use gpo_tokenizer::{ChatMessage, Tokenizer};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::sft_checkpoint::{Checkpoint, Pair, Progress, Settings};
use crate::model_args::ModelArgs;

/// Arguments of `gpo sft`.
#[derive(Debug, clap::Args)]
pub struct SftArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The adapter directory to write (PEFT layout); it must not exist yet.
    #[arg(long)]
    out: PathBuf,
    /// Passes over the pairs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Learning rate of the LoRA adapters (constant).
    #[arg(long, allow_negative_numbers = true, default_value_t = 2e-4)]
    lr: f64,
    /// Pairs per optimiser step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Pairs per forward and backward pass (gradients are summed over a batch's micro-batches:
    /// memory, not the result, depends on it).
    #[arg(long, default_value_t = 4)]
    micro_batch_size: usize,
    /// LoRA rank (alpha = 2 x rank, every linear layer).
    #[arg(long, default_value_t = 16)]
    lora_rank: usize,
    /// ShareGPT first turns (of `sharegpt-train`) among the benign prompts, beside the
    /// benign look-alikes.
    #[arg(long, default_value_t = 600)]
    sharegpt: usize,
    /// Most tokens of the model's own answer to a benign prompt (its training target).
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// At most this many harmful and this many benign prompts (0 = all); each side keeps its
    /// look-alikes first, so a cap keeps the pairs that teach which requests to refuse.
    #[arg(long, default_value_t = 0)]
    max_pairs: usize,
    /// Harmful prompts to refuse (0 = all): the written harmful requests and the harmful
    /// look-alikes first, then Do-Not-Answer's. Fewer harmful than benign pairs moves the
    /// model towards answering.
    #[arg(long, default_value_t = 0)]
    harmful: usize,
    /// Seed of the game whose held-out Do-Not-Answer seeds are left out, of the refusals
    /// drawn, of the shuffle and of the adapters' initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `gpo sft`.
pub fn run(args: SftArgs) -> Result<()> {
    if args.out.exists() {
        bail!(
            "--out {} exists: name a new directory (gpo sft never overwrites an adapter)",
            args.out.display()
        );
    }
    let cfg = SftConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        micro_batch_size: args.micro_batch_size,
        optimizer: gpo_optim::AdamWConfig {
            lr: args.lr,
            ..SftConfig::default().optimizer
        },
        seed: args.seed,
        ..SftConfig::default()
    };
    cfg.validate()
        .context("invalid --epochs, --batch-size or --lr")?;
    let start = Instant::now();
    let ckpt = Checkpoint::for_output(&args.out)?;
    let lm = args.model.load(&LoadOptions::default())?;
    let (tok, mut model) = (lm.tokenizer, lm.model);
    let io = Io::new(&tok);
    let (pairs, mut progress) = match ckpt.open(&args.settings())? {
        Some(resumed) => resumed,
        None => {
            let (pairs, progress) = make_pairs(&args, &model, &io)?;
            ckpt.start(&pairs, &progress)?;
            (pairs, progress)
        }
    };
    let lora = LoraConfig {
        rank: args.lora_rank,
        alpha: 2.0 * args.lora_rank as f64,
        ..LoraConfig::default()
    };
    let done = progress.epochs_done;
    if done > cfg.epochs {
        bail!(
            "--epochs {} is below the {done} epochs {} has already trained: ask for at least {done}",
            cfg.epochs,
            ckpt.dir().display()
        );
    }
    let mut run = if done == 0 {
        attach_lora(&mut model, &lora, args.seed).context("attaching LoRA adapters")?;
        SftRun::new(&model, pairs.len(), &cfg)?
    } else {
        let dir = ckpt.epoch_dir(done);
        tracing::info!("resuming after epoch {done} from {}", dir.display());
        gpo_lm::load_lora(&mut model, &dir)
            .with_context(|| format!("loading the adapter of {}", dir.display()))?;
        SftRun::resume(
            &model,
            pairs.len(),
            &cfg,
            done,
            &dir.join("optimizer.safetensors"),
        )?
    };
    let steps_per_epoch = pairs.len().div_ceil(cfg.batch_size);
    let bar = progress_bar(steps_per_epoch * cfg.epochs, "fine-tuning");
    bar.set_position((steps_per_epoch * done) as u64);
    tracing::info!(
        "fine-tuning on {} pairs: {} epochs of {steps_per_epoch} steps",
        pairs.len(),
        cfg.epochs
    );
    while run.epochs_done() < cfg.epochs {
        let mut losses = Vec::new();
        run.run_epoch(&model, &pairs, io.pad, |s| {
            losses.push(s.loss as f32);
            if s.step % LOG_EVERY == 0 {
                bar.suspend(|| tracing::info!("step {}: loss {:.3}", s.step, s.loss));
            }
            bar.set_position(s.step as u64);
            bar.set_message(format!("epoch {} loss {:.3}", s.epoch + 1, s.loss));
        })?;
        let mean = gpo_rl::mean(losses.into_iter());
        progress.epochs_done = run.epochs_done();
        progress.epoch_mean_loss.push(f64::from(mean));
        ckpt.save_epoch(&model, &lora, &run, &progress)?;
        bar.suspend(|| tracing::info!("epoch {} done: mean loss {mean:.3}", run.epochs_done()));
    }
    bar.finish_and_clear();
    gpo_lm::save_lora(&model, &lora, &args.out, &args.model.model)
        .with_context(|| format!("writing the adapter to {}", args.out.display()))?;
    ckpt.finish()?;
    super::emit(&json!({
        "out": args.out,
        "harmful_pairs": progress.harmful_pairs,
        "benign_pairs": progress.benign_pairs,
        "benign_dropped": progress.benign_dropped,
        "epochs": cfg.epochs,
        "steps": steps_per_epoch * cfg.epochs,
        "epoch_mean_loss": progress.epoch_mean_loss,
        "seconds": start.elapsed().as_secs_f64(),
    }))
}

/// A training-progress line every this many optimiser steps (the bar is hidden when stderr
/// is not a terminal).
const LOG_EVERY: usize = 10;

impl SftArgs {
    fn settings(&self) -> Settings {
        Settings {
            model: self.model.model.clone(),
            lr: self.lr,
            batch_size: self.batch_size,
            lora_rank: self.lora_rank,
            sharegpt: self.sharegpt,
            max_new_tokens: self.max_new_tokens,
            max_pairs: self.max_pairs,
            harmful: self.harmful,
            seed: self.seed,
        }
    }
}

/// The training pairs: each harmful prompt with a drawn refusal, each benign one with the
/// model's own greedy answer (unless that answer refuses).
fn make_pairs(args: &SftArgs, model: &CausalLm, io: &Io<'_>) -> Result<(Vec<Pair>, Progress)> {
    let cache = gpo_assets::AssetCache::from_env().context("locating the asset cache")?;
    let mut prompts =
        SafetySftPrompts::load(&DataConfig::default(), args.seed, args.sharegpt, &cache)
            .context("loading the warm start's prompts")?;
    if args.harmful > 0 {
        prompts.harmful.truncate(args.harmful);
    }
    if args.max_pairs > 0 {
        prompts.harmful.truncate(args.max_pairs);
        prompts.benign.truncate(args.max_pairs);
    }
    let mut pairs = Vec::new();
    let refusals = refusal_targets(prompts.harmful.len(), args.seed);
    for (p, r) in prompts.harmful.iter().zip(refusals) {
        pairs.push((io.prompt(p)?, io.target(r)?));
    }
    tracing::info!(
        "answering {} benign prompts with the model's own greedy answers",
        prompts.benign.len()
    );
    let answers = own_answers(model, io, &prompts.benign, args.max_new_tokens)?;
    let mut benign_kept = 0;
    for (p, a) in prompts.benign.iter().zip(answers) {
        // An answer that already refuses would teach refusing benign requests.
        if let Some(ids) = a.filter(|ids| !is_refusal(io.tok, ids)) {
            pairs.push((io.prompt(p)?, ids));
            benign_kept += 1;
        }
    }
    let progress = Progress::new(
        args.settings(),
        prompts.harmful.len(),
        benign_kept,
        prompts.benign.len() - benign_kept,
    );
    Ok((pairs, progress))
}

/// The model's greedy answers to `prompts` (token ids, end-of-sequence included when it
/// stopped by itself), `None` for an empty answer.
fn own_answers(
    model: &CausalLm,
    io: &Io<'_>,
    prompts: &[String],
    max_new_tokens: usize,
) -> Result<Vec<Option<Vec<u32>>>> {
    let params = SamplingParams {
        temperature: 0.0,
        repetition_penalty: 1.0,
        max_new_tokens,
        ..SamplingParams::default()
    };
    let bar = progress_bar(prompts.len(), "answering the benign prompts");
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(16) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|p| io.prompt(p)).collect::<Result<_>>()?;
        for s in generate(model, &ids, io.eos, io.pad, &params, &Pass::infer())? {
            let text_tokens = s.ids.iter().filter(|t| !io.eos.contains(t)).count();
            out.push((text_tokens > 0).then_some(s.ids));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

fn is_refusal(tok: &Tokenizer, ids: &[u32]) -> bool {
    tok.decode(ids, true)
        .is_ok_and(|t| gpo_eval::is_explicit_refusal(&t))
}

fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The chat template, tokenizer and stop tokens of the model being tuned.
struct Io<'a> {
    tok: &'a Tokenizer,
    eos: &'a [u32],
    pad: u32,
}

impl<'a> Io<'a> {
    fn new(tok: &'a Tokenizer) -> Self {
        Io {
            tok,
            eos: tok.eos_ids(),
            pad: tok.pad_id().unwrap_or(0),
        }
    }

    /// `text` as one user turn, ready for the assistant's answer.
    fn prompt(&self, text: &str) -> Result<Vec<u32>> {
        let chat = self
            .tok
            .apply_chat_template(&[ChatMessage::user(text)], true)?;
        Ok(self.tok.encode(&chat, false)?)
    }

    /// `text` as a whole answer: its tokens and the end-of-sequence token.
    fn target(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.tok.encode(text, false)?;
        ids.extend(self.eos.first());
        Ok(ids)
    }
}
