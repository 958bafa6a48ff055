//! `gpo crossplay RUN_DIR`: every attacker snapshot against every defender snapshot.

use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `gpo crossplay`.
#[derive(Debug, clap::Args)]
pub struct CrossplayArgs {
    /// The run directory (its snapshots/attacker and snapshots/defender, and config.toml).
    run_dir: PathBuf,
    /// Play on the first N held-out seeds of the run (default: all of them).
    #[arg(long, value_name = "N")]
    seeds: Option<usize>,
    /// Also play the attacker another run reports against this run's defenders: a `gpo
    /// exploit` run (a fresh attacker) or any game run (repeatable).
    #[arg(long = "attacker", value_name = "RUN_DIR")]
    attackers: Vec<PathBuf>,
}

/// Writes RUN_DIR/crossplay.json and prints the same object as one JSON line.
pub fn run(args: CrossplayArgs) -> Result<()> {
    if args.seeds == Some(0) {
        anyhow::bail!("--seeds must be at least 1");
    }
    let (run, cfg) = gpo_game::RunDir::open(&args.run_dir)
        .with_context(|| format!("opening the run {}", args.run_dir.display()))?;
    let cache = gpo_assets::AssetCache::from_env().context("locating the asset cache")?;
    crate::judge_heads::ensure_heads_for(&cfg.judge, &cache)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} crossplay: generation {pos}/{len} [{elapsed_precise}<{eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let cp = gpo_game::crossplay(
        &run,
        &cfg,
        &cache,
        args.seeds,
        &args.attackers,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let path = run.path.join("crossplay.json");
    cp.write(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    super::emit(&serde_json::to_value(&cp)?)
}
