//! The loop that plays a run's steps, evaluates, checkpoints, and resumes exactly after an
//! interruption ([`crate::RunDir`] holds the files).

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::{Anchor, Iterate};
use crate::game::Game;
use crate::run_dir::{io, read_evals, RunDir, TRAINER};
use crate::schedule::{Role, ScheduleState};
use crate::warm_start::read_json_if_present;
use crate::warm_start::WarmStartRecord;
use crate::{Change, Error, EvalRecord, Result, StepRecord};
use gpo_records::{DefenderEval, BASE_EVAL_FILE};

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
    /// With a warm start: the model it began from, evaluated at step 0 as `before`'s
    /// defender was (the same prompts and sampling seeds), without its answers
    /// (`base_eval.json` has them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<DefenderEval>,
    /// `after` minus `base`, prompt by prompt, with intervals: what the whole run changed,
    /// warm start included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_from_base: Option<Change>,
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
            base: None,
            change_from_base: None,
        })
    }

    /// Adds the model a warm start began from, and what changed since it.
    pub fn with_base(mut self, base: DefenderEval, after: &EvalRecord) -> Result<Summary> {
        self.change_from_base = Some(Change::since_base(&base, after)?);
        self.base = Some(base.without_answers());
        Ok(self)
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
        self.attach_engines(&run.path)?;
        let resumed_at = if resume {
            self.load_checkpoint(run)?
        } else {
            None
        };
        if resumed_at.is_some() {
            // Evaluated at step 0 already (`base_eval.json`).
            self.warm_start_base = None;
        }
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
            self.write_base_eval(run)?;
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
            if self.cfg.snapshot_every > 0 && (step.is_multiple_of(self.cfg.snapshot_every) || last)
            {
                self.save_snapshots(run)?;
            }
            if !last && self.cfg.eval_every > 0 && step.is_multiple_of(self.cfg.eval_every) {
                let e = self.eval_now(run)?;
                run.append("eval.jsonl", &e)?;
                progress(Progress::Eval(&e));
            }
            let stopping = stop.load(Ordering::SeqCst);
            // With engines, every step is checkpointed: an engine that fails mid-step
            // stops the run, and `--resume` continues from the step before.
            if last
                || stopping
                || self.uses_engines()
                || (self.cfg.checkpoint_every > 0 && step.is_multiple_of(self.cfg.checkpoint_every))
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
        let mut summary = Summary::new(self.cfg.mode, self.step, before, after.clone())?;
        summary.defender_warm_start = WarmStartRecord::of_defender(&self.cfg.models.defender);
        if let Some(base) = read_json_if_present(&run.file(BASE_EVAL_FILE))? {
            summary = summary.with_base(base, &after)?;
        }
        let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Data(e.to_string()))?;
        gpo_lm::write_atomic(&run.file("summary.json"), &json)?;
        Ok(Outcome::Finished(Box::new(summary)))
    }
}

impl Game {
    /// Evaluates the model the defender's warm start began from into `base_eval.json`
    /// (removed when there is none, so that a run directory played again holds no stale
    /// one), then drops that model: nothing after step 0 needs it.
    fn write_base_eval(&mut self, run: &RunDir) -> Result<()> {
        let path = run.file(BASE_EVAL_FILE);
        match self.evaluate_base()? {
            Some(base) => {
                let json =
                    serde_json::to_vec_pretty(&base).map_err(|e| Error::Data(e.to_string()))?;
                gpo_lm::write_atomic(&path, &json)?;
            }
            None if path.exists() => std::fs::remove_file(&path).map_err(io(&path))?,
            None => {}
        }
        self.warm_start_base = None;
        Ok(())
    }
}
