//! The warm start as the first stage of a game run. A run whose `defender.warm_start.epochs`
//! is above 0 fine-tunes `models.defender` into `RUN_DIR/warm-start/` (checkpointed in
//! `RUN_DIR/warm-start.partial/`) before its players are built, then plays with
//! `models.defender` set to that directory's absolute path, written into the run's
//! `config.toml`, so that everything reading the run afterwards (its resume, `gpo eval`,
//! `gpo crossplay`, `gpo report`) sees the warm start as the initial defender.

use std::path::Path;

use gpo_assets::AssetCache;
use gpo_lm::LoadOptions;

use super::{is_adapter_dir, WarmStart, WarmStartReport};
use crate::config::{DataConfig, GameConfig};
use crate::run_dir::RunDir;
use crate::{Error, Result};

/// The directory of a run's warm start, under the run directory.
pub const WARM_START_DIR: &str = "warm-start";

/// What a run does about its defender's warm start before the players are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmStartPlan {
    /// Nothing: `defender.warm_start.epochs` is 0, or `models.defender` is already an
    /// adapter directory (one trained before, this run's own once the config names it).
    Skip,
    /// Fine-tune `models.defender` into `RUN_DIR/warm-start/`, continuing what
    /// `RUN_DIR/warm-start.partial/` holds from an interrupted try.
    Train,
    /// `RUN_DIR/warm-start/` is finished but the config does not name it yet (the process
    /// stopped in between): play from it without training again.
    Reuse,
}

impl WarmStartPlan {
    /// The plan of the run in `run_dir` with `cfg` (as given, or as its `config.toml` holds).
    pub fn for_run(cfg: &GameConfig, run_dir: &Path) -> WarmStartPlan {
        if cfg.defender.warm_start.epochs == 0 || is_adapter_dir(Path::new(&cfg.models.defender)) {
            WarmStartPlan::Skip
        } else if is_adapter_dir(&run_dir.join(WARM_START_DIR)) {
            WarmStartPlan::Reuse
        } else {
            WarmStartPlan::Train
        }
    }
}

/// The prompts of a game's warm start: the game's seeds with its held-out ones left out,
/// every training seed (the game's `max_train_seeds` caps what the game plays, not what the
/// warm start refuses: `harmful` and `max_pairs` do).
fn warm_start_data(data: &DataConfig) -> DataConfig {
    DataConfig {
        max_train_seeds: 0,
        ..data.clone()
    }
}

impl RunDir {
    /// Runs the defender's warm start of this run as [`WarmStartPlan::for_run`] decides,
    /// then points `cfg.models.defender` at `RUN_DIR/warm-start` (absolute) and writes `cfg`
    /// to `config.toml`. Returns the report of a warm start trained now.
    pub fn warm_start_defender(
        &self,
        cfg: &mut GameConfig,
        cache: &AssetCache,
    ) -> Result<Option<WarmStartReport>> {
        let out = self.path.join(WARM_START_DIR);
        let report = match WarmStartPlan::for_run(cfg, &self.path) {
            WarmStartPlan::Skip => return Ok(None),
            WarmStartPlan::Reuse => {
                let partial = gpo_lm::sibling_path(&out, ".partial");
                if partial.exists() {
                    std::fs::remove_dir_all(&partial).map_err(|source| Error::Io {
                        path: partial.clone(),
                        source,
                    })?;
                }
                None
            }
            WarmStartPlan::Train => {
                Some(self.train_warm_start(cfg, &out, cache).map_err(|source| {
                    Error::WarmStart {
                        context: format!("the defender's warm start into {}", out.display()),
                        source: Box::new(source),
                    }
                })?)
            }
        };
        let absolute = std::fs::canonicalize(&out).map_err(|source| Error::Io {
            path: out.clone(),
            source,
        })?;
        let Some(name) = absolute.to_str() else {
            return Err(Error::Config(format!(
                "models.defender: the warm start's path {} is not UTF-8; choose a run \
                 directory whose path is",
                absolute.display()
            )));
        };
        cfg.models.defender = name.to_string();
        self.write_config(cfg)?;
        tracing::info!("the defender starts from the warm start in {name}");
        Ok(report)
    }

    fn train_warm_start(
        &self,
        cfg: &GameConfig,
        out: &Path,
        cache: &AssetCache,
    ) -> Result<WarmStartReport> {
        let ws = &cfg.defender.warm_start;
        tracing::info!(
            "the defender's warm start: {} epochs on {} into {} (checkpointed after each \
             epoch; an interrupted one continues when the run is resumed)",
            ws.epochs,
            cfg.models.defender,
            out.display()
        );
        let device = cfg
            .models
            .device
            .open()
            .map_err(|source| Error::WarmStart {
                context: "models.device".into(),
                source: Box::new(source.into()),
            })?;
        let load = LoadOptions {
            device,
            dtype: cfg.models.dtype.dtype(),
            ..LoadOptions::default()
        };
        let report = WarmStart::new(&cfg.models.defender, ws, cfg.seed, out)
            .with_data(&warm_start_data(&cfg.data))
            .with_load_options(load)
            .run(cache)?;
        tracing::info!(
            "the defender's warm start: {} harmful and {} benign pairs, epoch mean losses \
             {:?}, {:.0} s",
            report.harmful_pairs,
            report.benign_pairs,
            report.epoch_mean_loss,
            report.seconds
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(epochs: usize, defender: &str) -> GameConfig {
        let mut cfg = GameConfig::default();
        cfg.defender.warm_start.epochs = epochs;
        cfg.models.defender = defender.into();
        cfg
    }

    fn adapter_dir(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("adapter_config.json"), "{}").unwrap();
    }

    #[test]
    fn a_fresh_run_with_epochs_trains_a_warm_start() {
        let run = tempfile::tempdir().unwrap();
        let plan = WarmStartPlan::for_run(&game(2, "smollm2-135m-instruct"), run.path());
        assert_eq!(plan, WarmStartPlan::Train);
        // An interrupted try's checkpoint alone is continued, not reused.
        std::fs::create_dir_all(run.path().join("warm-start.partial")).unwrap();
        let plan = WarmStartPlan::for_run(&game(2, "smollm2-135m-instruct"), run.path());
        assert_eq!(plan, WarmStartPlan::Train);
    }

    #[test]
    fn no_epochs_means_no_warm_start() {
        let run = tempfile::tempdir().unwrap();
        let plan = WarmStartPlan::for_run(&game(0, "smollm2-135m-instruct"), run.path());
        assert_eq!(plan, WarmStartPlan::Skip);
    }

    #[test]
    fn a_defender_that_is_an_adapter_directory_is_not_warm_started_again() {
        let tmp = tempfile::tempdir().unwrap();
        let adapter = tmp.path().join("gpo-sft-output");
        adapter_dir(&adapter);
        let cfg = game(2, adapter.to_str().unwrap());
        assert_eq!(
            WarmStartPlan::for_run(&cfg, &tmp.path().join("run")),
            WarmStartPlan::Skip
        );
    }

    #[test]
    fn a_finished_warm_start_of_the_run_is_reused() {
        let run = tempfile::tempdir().unwrap();
        adapter_dir(&run.path().join(WARM_START_DIR));
        let plan = WarmStartPlan::for_run(&game(2, "smollm2-135m-instruct"), run.path());
        assert_eq!(plan, WarmStartPlan::Reuse);
    }

    #[test]
    fn reusing_points_the_config_at_the_warm_start_and_records_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = game(2, "smollm2-135m-instruct");
        let run = RunDir::create(&tmp.path().join("run"), &cfg).unwrap();
        let out = run.path.join(WARM_START_DIR);
        adapter_dir(&out);
        std::fs::create_dir_all(run.path.join("warm-start.partial")).unwrap();
        let cache = AssetCache::new(tmp.path().join("cache"));
        assert_eq!(run.warm_start_defender(&mut cfg, &cache).unwrap(), None);
        let expected = std::fs::canonicalize(&out).unwrap();
        assert_eq!(Path::new(&cfg.models.defender), expected);
        assert!(!run.path.join("warm-start.partial").exists());
        let (_, saved) = RunDir::open(&run.path).unwrap();
        assert_eq!(saved.models.defender, cfg.models.defender);
        assert_eq!(saved.defender.warm_start.epochs, 2);
        // The saved config now names an adapter directory: nothing more to do.
        assert_eq!(
            WarmStartPlan::for_run(&saved, &run.path),
            WarmStartPlan::Skip
        );
    }
}
