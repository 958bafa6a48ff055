//! A run on disk: its directory and files.
//!
//! ```text
//! RUN_DIR/config.toml        the resolved configuration
//! RUN_DIR/warm-start/        the defender's warm start, when the config asks for one
//! RUN_DIR/metrics.jsonl      one StepRecord per step
//! RUN_DIR/samples.jsonl      every exchange of every step
//! RUN_DIR/eval.jsonl         EvalRecords (step 0 = before training)
//! RUN_DIR/snapshots/ROLE/step-N/   adapters in PEFT's layout
//! RUN_DIR/checkpoint/        trainers, game state, anchors, EMA weights
//! RUN_DIR/summary.json       before vs after, written at the end
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use gpo_records::EvalRecord;
use serde::Serialize;

use crate::config::GameConfig;
use crate::schedule::Role;
use crate::{Error, Result};

/// `checkpoint/ROLE/trainer`: the player's RL trainer checkpoint (policy, critic, optimisers).
pub(crate) const TRAINER: &str = "trainer";

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A run directory.
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a new run directory for `cfg`; it must not hold a run already.
    pub fn create(path: &Path, cfg: &GameConfig) -> Result<RunDir> {
        if path.join("config.toml").exists() {
            return Err(Error::Config(format!(
                "{} already holds a run: continue it with --resume {}, or choose another directory",
                path.display(),
                path.display()
            )));
        }
        std::fs::create_dir_all(path).map_err(io(path))?;
        let run = RunDir {
            path: path.to_path_buf(),
        };
        run.write_config(cfg)?;
        Ok(run)
    }

    /// Writes `cfg` as the run's `config.toml` (atomically).
    pub(crate) fn write_config(&self, cfg: &GameConfig) -> Result<()> {
        let text = toml::to_string(cfg)
            .map_err(|e| Error::Config(format!("serialising the config: {e}")))?;
        Ok(gpo_lm::write_atomic(
            &self.path.join("config.toml"),
            text.as_bytes(),
        )?)
    }

    /// Opens an existing run and reads its configuration.
    pub fn open(path: &Path) -> Result<(RunDir, GameConfig)> {
        let cfg = crate::load::load_config(&path.join("config.toml"), &[])?;
        Ok((
            RunDir {
                path: path.to_path_buf(),
            },
            cfg,
        ))
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Appends one JSON line to `name` and flushes it.
    pub(crate) fn append<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let path = self.file(name);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut line = serde_json::to_vec(value).map_err(|e| Error::Data(e.to_string()))?;
        line.push(b'\n');
        f.write_all(&line).map_err(io(&path))?;
        f.flush().map_err(io(&path))
    }

    /// Keeps only the whole lines of `name` whose `step` is at most `step` (dropping the
    /// steps after the checkpoint, and a line cut short by a crash), atomically.
    pub(crate) fn truncate_after(&self, name: &str, step: u64) -> Result<()> {
        let path = self.file(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let mut keep = String::new();
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break;
            }
            let v: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => break,
            };
            if v.get("step")
                .and_then(|s| s.as_u64())
                .is_some_and(|s| s <= step)
            {
                keep.push_str(line);
            }
        }
        gpo_lm::write_atomic(&path, keep.as_bytes())?;
        Ok(())
    }

    /// `role`'s policy adapters as of the run's last checkpoint (its EMA weights with
    /// `ema`); `None` before the first checkpoint.
    pub fn checkpoint_policy(&self, role: Role, ema: bool) -> Option<PathBuf> {
        let pdir = gpo_lm::existing_dir(&self.path.join("checkpoint"))?.join(role.as_str());
        Some(if ema {
            pdir.join("ema")
        } else {
            gpo_rl::Trainer::policy_dir(&pdir.join(TRAINER))
        })
    }

    /// Snapshot directories of `role`, oldest first.
    pub fn snapshots(&self, role: Role) -> Vec<PathBuf> {
        let dir = self.path.join("snapshots").join(role.as_str());
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_dir()
                            && p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("step-") && !n.contains('.'))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Removes the snapshots saved after `step`. On resume they belong to steps about to be
    /// played again (an average-iterate evaluation must not average over them), and a fresh
    /// start keeps none of an earlier run's in the same directory.
    pub(crate) fn drop_snapshots_after(&self, step: u64) -> Result<()> {
        for role in [Role::Attacker, Role::Defender] {
            for dir in self.snapshots(role) {
                let saved_at = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("step-"))
                    .and_then(|n| n.parse::<u64>().ok());
                if saved_at.is_some_and(|s| s > step) {
                    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
                }
            }
        }
        Ok(())
    }
}

/// The evaluations recorded so far.
pub fn read_evals(run: &RunDir) -> Result<Vec<EvalRecord>> {
    let path = run.file("eval.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::Data(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}
