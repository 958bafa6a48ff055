//! Playing a built game in its run directory: the progress bar and the Ctrl-C handler that
//! `gpo train` and `gpo exploit` share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use gpo_game::{EvalRecord, Game, Outcome, Progress, RunDir};
use indicatif::{ProgressBar, ProgressStyle};

/// Plays `game`'s remaining steps in `run` (from its checkpoint when `resume`). The first
/// Ctrl-C finishes the step and writes a checkpoint, the second exits at once; `on_eval`
/// sees each evaluation as it is written.
pub fn play(
    game: &mut Game,
    run: &RunDir,
    resume: bool,
    steps: u64,
    mut on_eval: impl FnMut(&EvalRecord) -> Result<()>,
) -> Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing this step and saving a checkpoint (Ctrl-C again to quit now)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} step {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut eval_error = None;
    let outcome = game.run(run, resume, &stop, |p| match p {
        Progress::Step(r) => {
            bar.set_position(r.step);
            bar.set_message(format!(
                "P(unsafe) {:.3}  ASR {:.2}  self-BLEU {:.3}",
                r.p_unsafe, r.attack_success_rate, r.self_bleu
            ));
        }
        Progress::Eval(e) => {
            bar.println(format!(
                "eval @ {}: defender ASR {:.3}, attacker ASR {:.3} (vs initial {:.3}), diversity {:.3}/{:.3}",
                e.step,
                e.defender_asr,
                e.attacker_asr,
                e.attacker_asr_vs_initial,
                e.diversity_self_bleu,
                e.diversity_embedding
            ));
            if let Err(err) = on_eval(e) {
                eval_error.get_or_insert(err);
            }
        }
        Progress::Checkpoint(s) => tracing::debug!(step = s, "checkpoint written"),
    })?;
    bar.finish_and_clear();
    match eval_error {
        Some(err) => Err(err),
        None => Ok(outcome),
    }
}
