//! The defender's safety warm start: harmful training requests are answered with an explicit
//! refusal, benign ones (alarming-sounding look-alikes and ShareGPT first turns) with the
//! model's own greedy answer, and LoRA adapters are fine-tuned on both
//! ([`gpo_rl::SftRun`]); the result is a PEFT adapter directory, which as `models.defender`
//! is the game's initial defender and KL reference ([`crate::load_base`]). Why: a 135M
//! defender almost never refuses explicitly on its own (1 of 400 HarmBench answers), so RL
//! has no explicit refusal to reinforce.
//!
//! [`WarmStart`] runs one (`gpo sft`, and `gpo train` as the first stage of a run whose
//! `[defender.warm_start]` asks for epochs, see [`WarmStartPlan`]); it checkpoints after
//! every epoch in `OUT.partial/` and, started again with the same settings, resumes after the
//! last finished epoch with the same pairs and shuffles.

mod checkpoint;
mod pairs;
mod report;
mod stage;

use std::path::{Path, PathBuf};
use std::time::Instant;

use gpo_assets::AssetCache;
use gpo_lm::{attach_lora, LoadOptions};
use gpo_rl::{SftConfig, SftRun};

use crate::config::DataConfig;
use crate::{Error, Result};
use checkpoint::{Checkpoint, Settings};
use pairs::Io;

pub use crate::config::{BadSetting, WarmStartConfig};
pub(crate) use checkpoint::read_json_if_present;
pub use report::{WarmStartRecord, WarmStartReport, REPORT_FILE};
pub use stage::{WarmStartPlan, WARM_START_DIR};

/// Whether `dir` holds a LoRA adapter in PEFT's layout.
pub(crate) fn is_adapter_dir(dir: &Path) -> bool {
    dir.join("adapter_config.json").is_file()
}

/// One warm start: `base` fine-tuned into the adapter directory `out`.
#[derive(Debug, Clone)]
pub struct WarmStart {
    base: String,
    cfg: WarmStartConfig,
    seed: u64,
    out: PathBuf,
    data: DataConfig,
    load: LoadOptions,
}

/// A progress line every this many optimiser steps.
const LOG_EVERY: usize = 10;

impl WarmStart {
    /// A warm start of the model `base` (anything [`crate::load_base`] loads) with `cfg`
    /// and `seed` (of the game whose held-out seeds stay out, of the refusals drawn, of the
    /// shuffle and of the adapters' initialisation), writing the adapter to `out`, which
    /// must not exist. Its prompts follow [`DataConfig::default`] and it runs on the CPU in
    /// f32 unless told otherwise.
    pub fn new(base: &str, cfg: &WarmStartConfig, seed: u64, out: &Path) -> Self {
        WarmStart {
            base: base.to_string(),
            cfg: cfg.clone(),
            seed,
            out: out.to_path_buf(),
            data: DataConfig::default(),
            load: LoadOptions::default(),
        }
    }

    /// Takes the harmful training seeds from `data` (its held-out seeds stay out).
    pub fn with_data(mut self, data: &DataConfig) -> Self {
        self.data = data.clone();
        self
    }

    /// Loads the model with `load` (device and dtype; the base weights stay frozen).
    pub fn with_load_options(mut self, load: LoadOptions) -> Self {
        self.load = load;
        self
    }

    fn settings(&self) -> Settings {
        let c = &self.cfg;
        Settings {
            model: self.base.clone(),
            lr: c.lr,
            batch_size: c.batch_size,
            lora_rank: c.lora_rank,
            sharegpt: c.sharegpt,
            max_new_tokens: c.max_new_tokens,
            max_pairs: c.max_pairs,
            harmful: c.harmful,
            seed: self.seed,
        }
    }

    fn sft_config(&self) -> SftConfig {
        SftConfig {
            epochs: self.cfg.epochs,
            batch_size: self.cfg.batch_size,
            micro_batch_size: self.cfg.micro_batch_size,
            optimizer: gpo_optim::AdamWConfig {
                lr: self.cfg.lr,
                ..SftConfig::default().optimizer
            },
            seed: self.seed,
            ..SftConfig::default()
        }
    }

    /// Builds the pairs (or reads them from the checkpoint), trains, and writes the adapter
    /// with its [`REPORT_FILE`] to `out`; progress goes to info-level log lines.
    pub fn run(&self, cache: &AssetCache) -> Result<WarmStartReport> {
        if self.out.exists() {
            return Err(Error::Checkpoint(format!(
                "{} exists: name a new directory (a warm start never overwrites an adapter)",
                self.out.display()
            )));
        }
        let cfg = self.sft_config();
        cfg.validate()?;
        let start = Instant::now();
        let ckpt = Checkpoint::for_output(&self.out)?;
        let lm = crate::load_base(&self.base, cache, &self.load)?;
        let (tok, mut model) = (lm.tokenizer, lm.model);
        let io = Io::new(&tok);
        let settings = self.settings();
        let (pairs, mut progress) = match ckpt.open(&settings)? {
            Some(resumed) => resumed,
            None => {
                let (pairs, progress) =
                    pairs::make_pairs(&settings, &self.data, &model, &io, cache)?;
                ckpt.start(&pairs, &progress)?;
                (pairs, progress)
            }
        };
        let lora = self.cfg.lora();
        let done = progress.epochs_done;
        if done > cfg.epochs {
            return Err(Error::Checkpoint(format!(
                "{} has already trained {done} epochs, more than the {} asked for: ask for at \
                 least {done}",
                ckpt.dir().display(),
                cfg.epochs
            )));
        }
        let mut run = if done == 0 {
            attach_lora(&mut model, &lora, self.seed)?;
            SftRun::new(&model, pairs.len(), &cfg)?
        } else {
            let dir = ckpt.epoch_dir(done);
            tracing::info!(
                "warm start: resuming after epoch {done} from {}",
                dir.display()
            );
            gpo_lm::load_lora(&mut model, &dir).map_err(|source| Error::Adapter {
                dir: dir.clone(),
                source,
            })?;
            SftRun::resume(
                &model,
                pairs.len(),
                &cfg,
                done,
                &dir.join("optimizer.safetensors"),
            )?
        };
        let steps_per_epoch = pairs.len().div_ceil(cfg.batch_size);
        let total = steps_per_epoch * cfg.epochs;
        tracing::info!(
            "warm start: fine-tuning on {} pairs, {} epochs of {steps_per_epoch} steps",
            pairs.len(),
            cfg.epochs
        );
        let (first_step, clock) = (steps_per_epoch * done, Instant::now());
        while run.epochs_done() < cfg.epochs {
            let mut losses = Vec::new();
            run.run_epoch(&model, &pairs, io.pad, |s| {
                losses.push(s.loss as f32);
                if s.step % LOG_EVERY == 0 {
                    let per_step = clock.elapsed().as_secs_f64() / (s.step - first_step) as f64;
                    tracing::info!(
                        "warm start: step {}/{total} (epoch {}): loss {:.3}, about {:.0} s left",
                        s.step,
                        s.epoch + 1,
                        s.loss,
                        per_step * (total - s.step) as f64
                    );
                }
            })?;
            let mean = gpo_rl::mean(losses.into_iter());
            progress.epochs_done = run.epochs_done();
            progress.epoch_mean_loss.push(f64::from(mean));
            ckpt.save_epoch(&model, &lora, &run, &progress)?;
            tracing::info!(
                "warm start: epoch {} done, mean loss {mean:.3}",
                run.epochs_done()
            );
        }
        let report = WarmStartReport {
            harmful_pairs: progress.harmful_pairs,
            benign_pairs: progress.benign_pairs,
            benign_dropped: progress.benign_dropped,
            epochs: cfg.epochs,
            steps: total,
            epoch_mean_loss: progress.epoch_mean_loss,
            seconds: start.elapsed().as_secs_f64(),
        };
        // The adapter is written whole inside the checkpoint, then renamed into place.
        let staged = ckpt.dir().join("adapter");
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(|source| Error::Io {
                path: staged.clone(),
                source,
            })?;
        }
        gpo_lm::save_lora(&model, &lora, &staged, &self.base).map_err(|source| Error::Adapter {
            dir: staged.clone(),
            source,
        })?;
        checkpoint::write_json(&staged.join(REPORT_FILE), &report)?;
        std::fs::rename(&staged, &self.out).map_err(|source| Error::Io {
            path: self.out.clone(),
            source,
        })?;
        ckpt.finish()?;
        Ok(report)
    }
}
