//! A run on disk: its directory, the JSONL logs, snapshots and checkpoints, and the loop
//! that plays the steps and resumes exactly after an interruption.
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
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::{Anchor, GameConfig, Iterate};
use crate::eval::{Change, EvalRecord};
use crate::game::{Game, StepRecord};
use crate::schedule::{Role, ScheduleState};
use crate::warm_start::WarmStartRecord;
use crate::{Error, Result};

/// What the loop reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// An evaluation finished.
    Eval(&'a EvalRecord),
    /// A step finished.
    Step(&'a StepRecord),
    /// A checkpoint was written after this many steps.
    Checkpoint(u64),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every step was played; the summary (boxed: it is large beside the other variant).
    Finished(Box<Summary>),
    /// Stopped on request after this many steps, with a checkpoint written.
    Interrupted(u64),
}

/// Before vs after, as the paper's tables put it: the summary line of `gpo train` and
/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The mode played.
    pub mode: crate::Mode,
    /// Steps played.
    pub steps: u64,
    /// Evaluation before the first step, without its answers (`eval.jsonl` has them).
    pub before: EvalRecord,
    /// Evaluation after the last step, without its answers.
    pub after: EvalRecord,
    /// After minus before, prompt by prompt, with intervals; `None` when the evaluations
    /// were recorded without their answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The warm start the defender started from, when `models.defender` is an adapter that
    /// a warm start wrote (the run's own `warm-start/`, or a `gpo sft` output); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defender_warm_start: Option<WarmStartRecord>,
}

impl Summary {
    /// The summary of a run of `steps` steps from its first and last evaluations.
    pub fn new(
        mode: crate::Mode,
        steps: u64,
        before: EvalRecord,
        after: EvalRecord,
    ) -> Result<Summary> {
        let change = Change::between(&before, &after)?;
        let change = (change.defender_harmful.is_some() || change.defender_benign.is_some())
            .then_some(change);
        Ok(Summary {
            mode,
            steps,
            before: before.without_answers(),
            after: after.without_answers(),
            change,
            defender_warm_start: None,
        })
    }
}

/// `checkpoint/game.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GameState {
    format: String,
    step: u64,
    schedule: ScheduleState,
    history: gpo_diversity::History,
}

const FORMAT: &str = "gpo-game/checkpoint-v1";
/// `checkpoint/ROLE/trainer`: the player's RL trainer checkpoint (policy, critic, optimisers).
const TRAINER: &str = "trainer";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
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

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Appends one JSON line to `name` and flushes it.
    fn append<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
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
    fn truncate_after(&self, name: &str, step: u64) -> Result<()> {
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
    fn drop_snapshots_after(&self, step: u64) -> Result<()> {
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

impl Game {
    /// Writes the checkpoint of both players and the game state.
    pub fn save_checkpoint(&self, run: &RunDir) -> Result<()> {
        let dir = run.path.join("checkpoint");
        let tmp = run.path.join("checkpoint.partial");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        for p in self.local_players() {
            let pdir = tmp.join(p.role.as_str());
            p.trainer
                .save(&p.policy, &pdir.join(TRAINER), &p.model_name)?;
            p.save_anchor(&pdir.join("anchor"))?;
            if let (Some(ema), Some(lora)) = (&p.ema, &p.policy.lora) {
                gpo_lm::save_lora(ema, lora, &pdir.join("ema"), &p.model_name)?;
            }
        }
        let state = GameState {
            format: FORMAT.into(),
            step: self.step,
            schedule: self.schedule.clone(),
            history: self.diversity.history.clone(),
        };
        let json = serde_json::to_vec(&state).map_err(|e| Error::Data(e.to_string()))?;
        gpo_lm::write_atomic(&tmp.join("game.json"), &json)?;
        Ok(gpo_lm::replace_dir(&tmp, &dir)?)
    }

    /// Restores a checkpoint written by [`Game::save_checkpoint`]; returns its step, or
    /// `None` when the run has none yet.
    pub fn load_checkpoint(&mut self, run: &RunDir) -> Result<Option<u64>> {
        let Some(dir) = gpo_lm::existing_dir(&run.path.join("checkpoint")) else {
            return Ok(None);
        };
        let state_path = dir.join("game.json");
        let text = std::fs::read(&state_path).map_err(io(&state_path))?;
        let state: GameState = serde_json::from_slice(&text)
            .map_err(|e| Error::Data(format!("{}: {e}", state_path.display())))?;
        if state.format != FORMAT {
            return Err(Error::Data(format!(
                "{}: format `{}` is not `{FORMAT}`",
                state_path.display(),
                state.format
            )));
        }
        let players = std::iter::once(&mut self.attacker).chain(self.defender.local_mut());
        for p in players {
            let pdir = dir.join(p.role.as_str());
            p.trainer.load(&p.policy, &pdir.join(TRAINER))?;
            if pdir.join("anchor").exists() {
                p.load_anchor(&pdir.join("anchor"))?;
            }
            if pdir.join("ema").exists() {
                let mut m = p.policy.model.clone();
                gpo_lm::load_lora(&mut m, &pdir.join("ema"))?;
                p.ema = Some(m);
            }
        }
        self.step = state.step;
        self.schedule = state.schedule;
        self.diversity.history = state.history;
        Ok(Some(state.step))
    }

    /// Saves both players' adapters under `snapshots/ROLE/step-N`.
    fn save_snapshots(&self, run: &RunDir) -> Result<()> {
        for p in self.local_players() {
            let Some(lora) = &p.policy.lora else { continue };
            let dir = run
                .path
                .join("snapshots")
                .join(p.role.as_str())
                .join(format!("step-{:06}", self.step));
            let tmp = gpo_lm::sibling_path(&dir, ".partial");
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
            }
            gpo_lm::save_lora(&p.policy.model, lora, &tmp, &p.model_name)?;
            gpo_lm::replace_dir(&tmp, &dir)?;
        }
        Ok(())
    }

    fn eval_now(&self, run: &RunDir) -> Result<EvalRecord> {
        let (a, d) = match self.cfg.iterate {
            Iterate::Average => (run.snapshots(Role::Attacker), run.snapshots(Role::Defender)),
            _ => (Vec::new(), Vec::new()),
        };
        self.evaluate(&a, &d)
    }

    /// Plays the run to its end, or until `stop` is set (then checkpoints and returns
    /// [`Outcome::Interrupted`]). With `resume`, continues from the run's checkpoint: the
    /// logs are cut back to it, so no step is lost or repeated. Evaluations read
    /// over-refusal with [`Game::refusals`].
    pub fn run(
        &mut self,
        run: &RunDir,
        resume: bool,
        stop: &AtomicBool,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<Outcome> {
        let resumed_at = if resume {
            self.load_checkpoint(run)?
        } else {
            None
        };
        let start = resumed_at.unwrap_or(0);
        run.drop_snapshots_after(start)?;
        for f in ["metrics.jsonl", "samples.jsonl", "eval.jsonl"] {
            if resumed_at.is_some() {
                run.truncate_after(f, start)?;
            } else if run.file(f).exists() {
                std::fs::remove_file(run.file(f)).map_err(io(&run.file(f)))?;
            }
        }
        if resumed_at.is_none() {
            let before = self.eval_now(run)?;
            run.append("eval.jsonl", &before)?;
            progress(Progress::Eval(&before));
            if self.cfg.anchor == Anchor::PreviousIterate {
                self.anchor_here()?;
            }
        }
        while self.step < self.cfg.steps {
            let (record, samples) = self.play_step()?;
            run.append("metrics.jsonl", &record)?;
            for s in &samples {
                run.append("samples.jsonl", s)?;
            }
            progress(Progress::Step(&record));
            let step = self.step;
            let last = step == self.cfg.steps;
            if self.cfg.snapshot_every > 0 && (step % self.cfg.snapshot_every == 0 || last) {
                self.save_snapshots(run)?;
            }
            if !last && self.cfg.eval_every > 0 && step % self.cfg.eval_every == 0 {
                let e = self.eval_now(run)?;
                run.append("eval.jsonl", &e)?;
                progress(Progress::Eval(&e));
            }
            let stopping = stop.load(Ordering::SeqCst);
            if last
                || stopping
                || (self.cfg.checkpoint_every > 0 && step % self.cfg.checkpoint_every == 0)
            {
                self.save_checkpoint(run)?;
                progress(Progress::Checkpoint(step));
            }
            if stopping && !last {
                return Ok(Outcome::Interrupted(step));
            }
        }
        let after = match read_evals(run)?.into_iter().find(|e| e.step == self.step) {
            Some(e) => e,
            None => {
                let e = self.eval_now(run)?;
                run.append("eval.jsonl", &e)?;
                progress(Progress::Eval(&e));
                e
            }
        };
        let before = read_evals(run)?
            .into_iter()
            .find(|e| e.step == 0)
            .ok_or_else(|| {
                Error::Data(format!(
                    "{}: no evaluation at step 0",
                    run.file("eval.jsonl").display()
                ))
            })?;
        let mut summary = Summary::new(self.cfg.mode, self.step, before, after)?;
        summary.defender_warm_start = WarmStartRecord::of_defender(&self.cfg.models.defender);
        let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Data(e.to_string()))?;
        gpo_lm::write_atomic(&run.file("summary.json"), &json)?;
        Ok(Outcome::Finished(Box::new(summary)))
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
