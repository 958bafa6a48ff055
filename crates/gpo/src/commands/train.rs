//! `gpo train`: play the GPO game (or a baseline) and print the before/after summary.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use gpo_game::{Game, Outcome, RunDir, WarmStartPlan};

/// Arguments of `gpo train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The game's TOML file (default: the built-in CPU preset, examples/cpu-smollm2.toml).
    config: Option<PathBuf>,
    /// Override a field, e.g. --set steps=10 --set attacker.w_bleu=0 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Where the run goes (default: the config's run_dir, else `runs/gpo-<seed>-<time>`).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (a run stopped in its
    /// defender's warm start continues that after its last finished epoch, then plays).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "set", "run_dir"])]
    resume: Option<PathBuf>,
}

/// Runs the game (after the defender's warm start, when the config asks for one and the
/// run has not done it yet); one JSON line (the summary) on stdout at the end.
pub fn run(args: TrainArgs) -> Result<()> {
    let (run, mut cfg, resume) = match &args.resume {
        Some(dir) => {
            let (run, cfg) = RunDir::open(dir)
                .with_context(|| format!("opening the run in {}", dir.display()))?;
            (Ok(run), cfg, true)
        }
        None => {
            let cfg = match &args.config {
                Some(path) => gpo_game::load_config(path, &args.set)?,
                None => {
                    gpo_game::parse_config(gpo_game::DEFAULT_PRESET, "built-in preset", &args.set)?
                }
            };
            let dir = match (&args.run_dir, &cfg.run_dir) {
                (Some(d), _) | (None, Some(d)) => d.clone(),
                (None, None) => super::default_run_dir("gpo", cfg.seed),
            };
            if dir.join("config.toml").exists() {
                bail!(
                    "{} already holds a run: continue it with --resume {}, or choose another --run-dir",
                    dir.display(),
                    dir.display()
                );
            }
            (Err(dir), cfg, false)
        }
    };
    let cache = gpo_assets::AssetCache::from_env().context("locating the asset cache")?;
    crate::judge_heads::ensure_heads_for(&cfg.judge, &cache)?;
    let steps = cfg.steps;
    let run_path = match &run {
        Ok(run) => run.path.clone(),
        Err(dir) => dir.clone(),
    };
    let run = match WarmStartPlan::for_run(&cfg, &run_path) {
        WarmStartPlan::Skip => run,
        plan => {
            if plan == WarmStartPlan::Train {
                // A config that cannot load fails now, not after the warm start.
                tracing::info!("checking that models, judge and data load");
                drop(Game::build(cfg.clone(), &cache)?);
            }
            // The run exists from its first stage on, so that `--resume` continues it.
            let run = match run {
                Ok(run) => run,
                Err(dir) => RunDir::create(&dir, &cfg)?,
            };
            run.warm_start_defender(&mut cfg, &cache)?;
            Ok(run)
        }
    };
    tracing::info!("loading models, judge and data");
    // Everything that can fail to load does so here, before the run directory exists (unless
    // a warm start made it).
    let mut game = Game::build(cfg.clone(), &cache)?;
    let run = match run {
        Ok(run) => run,
        Err(dir) => RunDir::create(&dir, &cfg)?,
    };

    let outcome = super::play::play(&mut game, &run, resume, steps, |_| Ok(()))?;
    match outcome {
        Outcome::Finished(summary) => {
            log_change_from_base(&summary);
            let mut line = serde_json::to_value(&summary)?;
            line["run_dir"] = serde_json::json!(run.path.display().to_string());
            super::emit(&line)
        }
        Outcome::Interrupted(step) => {
            eprintln!(
                "stopped after step {step}; continue with: gpo train --resume {}",
                run.path.display()
            );
            bail!("interrupted")
        }
    }
}

/// One progress line for a warm-started defender: the model before its warm start against
/// the last evaluation, with the paired change's interval (the summary's `before` is the
/// warm-started defender at step 0, so its `change` leaves the warm start out).
fn log_change_from_base(summary: &gpo_game::Summary) {
    let (Some(base), Some(change)) = (&summary.base, &summary.change_from_base) else {
        return;
    };
    let after = &summary.after;
    let (Some(h), Some(ch)) = (&after.defender_harmful, &change.defender_harmful) else {
        return;
    };
    let mut line = format!(
        "the defender since {} before its warm start: attack success {:.3} -> {:.3} ({:+.3} \
         [{:+.3}, {:+.3}])",
        base.model,
        base.defender_harmful.attack_success.mean,
        h.attack_success.mean,
        ch.attack_success.mean,
        ch.attack_success.lo,
        ch.attack_success.hi
    );
    if let (Some(b), Some(cb)) = (&after.defender_benign, &change.defender_benign) {
        line += &format!(
            ", over-refusal {:.3} -> {:.3} ({:+.3} [{:+.3}, {:+.3}])",
            base.defender_benign.over_refusal.mean,
            b.over_refusal.mean,
            cb.over_refusal.mean,
            cb.over_refusal.lo,
            cb.over_refusal.hi
        );
    }
    tracing::info!("{line}");
}
