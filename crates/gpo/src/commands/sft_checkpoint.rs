//! `gpo sft`'s checkpoints. A run that writes `OUT` keeps its state in `OUT.partial/`: the
//! (prompt, target) pairs it trains on, and after each epoch the adapter and the optimiser's
//! state in `epoch-K/`, committed by rewriting `progress.json` last. Started again with the
//! same flags, the run resumes after its last finished epoch, with the same pairs and the
//! same shuffles; `--epochs` may grow. `OUT` itself is written only at the end.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gpo_lm::{CausalLm, LoraConfig};
use gpo_rl::SftRun;
use serde::{Deserialize, Serialize};

/// Token ids of a prompt and its target.
pub type Pair = (Vec<u32>, Vec<u32>);

const FORMAT: &str = "gpo-sft-progress-v1";

/// The flags that decide what a run learns; a resumed run must have the same ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub model: String,
    pub lr: f64,
    pub batch_size: usize,
    pub lora_rank: usize,
    pub sharegpt: usize,
    pub max_new_tokens: usize,
    pub max_pairs: usize,
    #[serde(default)]
    pub harmful: usize,
    pub seed: u64,
}

/// Where a run stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    format: String,
    pub settings: Settings,
    pub harmful_pairs: usize,
    pub benign_pairs: usize,
    pub benign_dropped: usize,
    pub epochs_done: usize,
    pub epoch_mean_loss: Vec<f64>,
}

impl Progress {
    /// A run that has trained nothing yet.
    pub fn new(settings: Settings, harmful: usize, benign: usize, dropped: usize) -> Self {
        Progress {
            format: FORMAT.into(),
            settings,
            harmful_pairs: harmful,
            benign_pairs: benign,
            benign_dropped: dropped,
            epochs_done: 0,
            epoch_mean_loss: Vec::new(),
        }
    }
}

/// `OUT.partial/`.
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// The checkpoint directory of a run writing `out`.
    pub fn for_output(out: &Path) -> Result<Self> {
        let Some(name) = out.file_name() else {
            bail!("--out {} names no directory", out.display());
        };
        let mut partial = name.to_os_string();
        partial.push(".partial");
        Ok(Checkpoint {
            dir: out.with_file_name(partial),
        })
    }

    /// `OUT.partial/` itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pairs and progress an earlier run with `settings` left, or `None` when there is no
    /// earlier run. Different settings are an error naming the flag.
    pub fn open(&self, settings: &Settings) -> Result<Option<(Vec<Pair>, Progress)>> {
        let progress_path = self.dir.join("progress.json");
        if !progress_path.exists() {
            return Ok(None);
        }
        let progress: Progress = read_json(&progress_path)?;
        if progress.format != FORMAT {
            bail!(
                "{}: format `{}` is not `{FORMAT}`; delete {} to start over",
                progress_path.display(),
                progress.format,
                self.dir.display()
            );
        }
        if let Some(flag) = differing_flag(&progress.settings, settings) {
            bail!(
                "{} holds a run started with other settings ({flag} differs): rerun with its \
                 flags, or delete the directory to start over",
                self.dir.display()
            );
        }
        let pairs: Vec<Pair> = read_json(&self.dir.join("pairs.json"))?;
        Ok(Some((pairs, progress)))
    }

    /// Starts a checkpoint: the directory, the pairs, and `progress` (no epoch done).
    pub fn start(&self, pairs: &[Pair], progress: &Progress) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        write_json(&self.dir.join("pairs.json"), &pairs)?;
        write_json(&self.dir.join("progress.json"), progress)
    }

    /// The directory of the adapter after `epochs` epochs.
    pub fn epoch_dir(&self, epochs: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epochs}"))
    }

    /// Saves the state after `run`'s last epoch, then commits it in `progress`, then removes
    /// the epoch before.
    pub fn save_epoch(
        &self,
        model: &CausalLm,
        lora: &LoraConfig,
        run: &SftRun,
        progress: &Progress,
    ) -> Result<()> {
        let done = run.epochs_done();
        let dir = self.epoch_dir(done);
        gpo_lm::save_lora(model, lora, &dir, &progress.settings.model)
            .with_context(|| format!("writing the adapter to {}", dir.display()))?;
        run.save_optimizer(&dir.join("optimizer.safetensors"))
            .with_context(|| format!("writing the optimiser state to {}", dir.display()))?;
        write_json(&self.dir.join("progress.json"), progress)?;
        let previous = self.epoch_dir(done.saturating_sub(1));
        if done > 1 && previous.exists() {
            std::fs::remove_dir_all(&previous)
                .with_context(|| format!("removing {}", previous.display()))?;
        }
        Ok(())
    }

    /// Removes the checkpoint once the run's output is written.
    pub fn finish(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("removing {}", self.dir.display()))
    }
}

/// The first flag whose value differs between two runs' settings.
fn differing_flag(a: &Settings, b: &Settings) -> Option<&'static str> {
    [
        (a.model != b.model, "--model"),
        (a.lr != b.lr, "--lr"),
        (a.batch_size != b.batch_size, "--batch-size"),
        (a.lora_rank != b.lora_rank, "--lora-rank"),
        (a.sharegpt != b.sharegpt, "--sharegpt"),
        (a.max_new_tokens != b.max_new_tokens, "--max-new-tokens"),
        (a.max_pairs != b.max_pairs, "--max-pairs"),
        (a.harmful != b.harmful, "--harmful"),
        (a.seed != b.seed, "--seed"),
    ]
    .into_iter()
    .find_map(|(differs, flag)| differs.then_some(flag))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a gpo sft checkpoint file; delete its directory to start over",
            path.display()
        )
    })
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string(value)?;
    gpo_fs::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            model: "m".into(),
            lr: 2e-4,
            batch_size: 16,
            lora_rank: 16,
            sharegpt: 600,
            max_new_tokens: 48,
            max_pairs: 0,
            harmful: 0,
            seed: 0,
        }
    }

    #[test]
    fn a_checkpoint_reopens_with_its_pairs_and_refuses_other_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let ckpt = Checkpoint::for_output(&tmp.path().join("warm")).unwrap();
        assert!(ckpt.open(&settings()).unwrap().is_none());
        let pairs = vec![(vec![1, 2], vec![3]), (vec![4], vec![5, 6])];
        ckpt.start(&pairs, &Progress::new(settings(), 1, 1, 0))
            .unwrap();
        assert!(tmp.path().join("warm.partial/pairs.json").exists());
        let (read, progress) = ckpt.open(&settings()).unwrap().unwrap();
        assert_eq!((read, progress.epochs_done), (pairs, 0));
        let other = Settings {
            lr: 1e-4,
            ..settings()
        };
        let err = ckpt.open(&other).unwrap_err().to_string();
        assert!(err.contains("--lr differs"), "{err}");
        ckpt.finish().unwrap();
        assert!(!tmp.path().join("warm.partial").exists());
    }
}
