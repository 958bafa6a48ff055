//! The warm start's checkpoints. A warm start that writes `OUT` keeps its state in
//! `OUT.partial/`: the (prompt, target) pairs it trains on, and after each epoch the adapter
//! and the optimiser's state in `epoch-K/`, committed by rewriting `progress.json` last.
//! Started again with the same settings, it resumes after its last finished epoch, with the
//! same pairs and the same shuffles; the epoch count may grow. `OUT` itself appears only at
//! the end, renamed into place whole, so an `OUT` that exists is a finished adapter.

use std::path::{Path, PathBuf};

use gpo_lm::{CausalLm, LoraConfig};
use gpo_rl::SftRun;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Token ids of a prompt and its target.
pub type Pair = (Vec<u32>, Vec<u32>);

/// `progress.json`'s format; `gpo sft` checkpoints written before the warm start moved into
/// this crate have the same one, and resume.
const FORMAT: &str = "gpo-sft-progress-v1";

/// The settings that decide what a warm start learns; a resumed one must have the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The model tuned (as named in the config or on the command line).
    pub model: String,
    /// Learning rate.
    pub lr: f64,
    /// Pairs per optimiser step.
    pub batch_size: usize,
    /// LoRA rank.
    pub lora_rank: usize,
    /// ShareGPT turns among the benign prompts.
    pub sharegpt: usize,
    /// Most tokens of an own answer.
    pub max_new_tokens: usize,
    /// Cap on each side (0 = none).
    pub max_pairs: usize,
    /// Cap on the harmful side (0 = none).
    #[serde(default)]
    pub harmful: usize,
    /// Seed of the held-out split, the refusals, the shuffle and the adapters.
    pub seed: u64,
}

impl Settings {
    /// The first setting whose value differs between `self` and `other`.
    fn first_difference(&self, other: &Settings) -> Option<&'static str> {
        [
            (self.model != other.model, "model"),
            (self.lr != other.lr, "lr"),
            (self.batch_size != other.batch_size, "batch_size"),
            (self.lora_rank != other.lora_rank, "lora_rank"),
            (self.sharegpt != other.sharegpt, "sharegpt"),
            (
                self.max_new_tokens != other.max_new_tokens,
                "max_new_tokens",
            ),
            (self.max_pairs != other.max_pairs, "max_pairs"),
            (self.harmful != other.harmful, "harmful"),
            (self.seed != other.seed, "seed"),
        ]
        .into_iter()
        .find_map(|(differs, name)| differs.then_some(name))
    }
}

/// Where a warm start stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    format: String,
    /// The settings it was started with.
    pub settings: Settings,
    /// Harmful prompts, each paired with a refusal.
    pub harmful_pairs: usize,
    /// Benign prompts kept with the model's own answer.
    pub benign_pairs: usize,
    /// Benign prompts dropped (an empty answer, or one that refuses).
    pub benign_dropped: usize,
    /// Epochs finished and saved.
    pub epochs_done: usize,
    /// Each finished epoch's mean batch loss.
    pub epoch_mean_loss: Vec<f64>,
}

impl Progress {
    /// A warm start that has trained nothing yet.
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
    /// The checkpoint directory of a warm start writing `out`.
    pub fn for_output(out: &Path) -> Result<Self> {
        if out.file_name().is_none() {
            return Err(Error::Checkpoint(format!(
                "{} names no directory to write the adapter to",
                out.display()
            )));
        }
        Ok(Checkpoint {
            dir: gpo_lm::sibling_path(out, ".partial"),
        })
    }

    /// `OUT.partial/` itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pairs and progress an earlier start with `settings` left, or `None` when there is
    /// none. Other settings are an error naming the first that differs.
    pub fn open(&self, settings: &Settings) -> Result<Option<(Vec<Pair>, Progress)>> {
        let progress_path = self.dir.join("progress.json");
        if !progress_path.exists() {
            return Ok(None);
        }
        let progress: Progress = read_json(&progress_path)?;
        if progress.format != FORMAT {
            return Err(Error::Checkpoint(format!(
                "{}: format `{}` is not `{FORMAT}`; delete {} to start over",
                progress_path.display(),
                progress.format,
                self.dir.display()
            )));
        }
        if let Some(name) = progress.settings.first_difference(settings) {
            return Err(Error::Checkpoint(format!(
                "{} holds a warm start begun with other settings ({name} differs): continue \
                 it with its settings, or delete the directory to start over",
                self.dir.display()
            )));
        }
        let pairs: Vec<Pair> = read_json(&self.dir.join("pairs.json"))?;
        Ok(Some((pairs, progress)))
    }

    /// Starts a checkpoint: the directory, the pairs, and `progress` (no epoch done).
    pub fn start(&self, pairs: &[Pair], progress: &Progress) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })?;
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
        gpo_lm::save_lora(model, lora, &dir, &progress.settings.model).map_err(|source| {
            Error::Adapter {
                dir: dir.clone(),
                source,
            }
        })?;
        run.save_optimizer(&dir.join("optimizer.safetensors"))?;
        write_json(&self.dir.join("progress.json"), progress)?;
        let previous = self.epoch_dir(done.saturating_sub(1));
        if done > 1 && previous.exists() {
            remove_dir(&previous)?;
        }
        Ok(())
    }

    /// Removes the checkpoint once the adapter is in place.
    pub fn finish(self) -> Result<()> {
        remove_dir(&self.dir)
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(path, &text)
}

/// [`read_json`], `None` when `path` does not exist.
pub(crate) fn read_json_if_present<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_json(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(gpo_lm::write_atomic(path, text.as_bytes())?)
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
        assert!(
            err.contains("(lr differs)") && err.contains("warm.partial"),
            "{err}"
        );
        ckpt.finish().unwrap();
        assert!(!tmp.path().join("warm.partial").exists());
    }

    #[test]
    fn a_progress_file_of_gpo_sft_before_the_move_still_reads() {
        // Written by `gpo sft` as of commit 7225b1c (before `harmful` existed).
        let text = r#"{"format":"gpo-sft-progress-v1","settings":{"model":"smollm2-135m-instruct","lr":0.0002,"batch_size":16,"lora_rank":16,"sharegpt":600,"max_new_tokens":48,"max_pairs":0,"seed":0},"harmful_pairs":3,"benign_pairs":2,"benign_dropped":1,"epochs_done":1,"epoch_mean_loss":[1.5]}"#;
        let p: Progress = serde_json::from_str(text).unwrap();
        assert_eq!((p.epochs_done, p.settings.harmful), (1, 0));
    }

    #[test]
    fn a_corrupt_progress_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let ckpt = Checkpoint::for_output(&tmp.path().join("warm")).unwrap();
        std::fs::create_dir_all(ckpt.dir()).unwrap();
        std::fs::write(ckpt.dir().join("progress.json"), "{").unwrap();
        let err = ckpt.open(&settings()).unwrap_err().to_string();
        assert!(err.contains("warm.partial/progress.json"), "{err}");
    }
}
