//! How the heads are trained: [`TrainConfig`], a `gpo judge train --config` file's keys.

use serde::{Deserialize, Serialize};

use crate::reply::ReplyPolicy;
use crate::{Error, Result};
use gpo_judge::features::Reading;
use gpo_judge::logistic::FitOptions;

/// How much data to use, and the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of the shuffles and splits.
    pub seed: u64,
    /// Benign ShareGPT first turns used for training (at most).
    pub max_benign_prompts: usize,
    /// Harmful requests used for training (at most; all of them by default).
    pub max_harmful_prompts: usize,
    /// Replies per class (refusing, complying) used for training (at most).
    pub max_replies_per_class: usize,
    /// What the heads read of prompts and replies ([`gpo_judge::features`]): a `[reading]`
    /// table with snake_case keys, each optional (the default's value), unknown keys errors.
    #[serde(deserialize_with = "reading_table")]
    pub reading: Reading,
    /// Marker-labelled replies longer than this (characters) are not used as refusals.
    pub max_refusal_chars: usize,
    /// Also train on each refusal's opening with its marker sentences deleted.
    pub marker_free_copies: bool,
    /// Also train on each reply, refusing and complying, with a warm first sentence in front
    /// ([`crate::reply::WARM_OPENINGS`], "I'm glad you asked."), so the head does not read a
    /// polite "I'm ..." opening as declining.
    pub warm_opening_copies: bool,
    /// Also train the harm head on every prompt, harmful and benign alike, wrapped in a
    /// generic instruction template ([`crate::wrapped`]), so a request's form carries no label.
    pub instruction_wrapped_copies: bool,
    /// Temperature-scale the harm head on its held-out split, as the compliance head is.
    pub harm_temperature_scaling: bool,
    /// Tense rewrites with at least this MiniLM cosine to a HarmBench prompt are dropped as
    /// reworded copies of it ([`crate::decontaminate`]; above 1: none is).
    pub harmbench_near_duplicate_cosine: f32,
    /// Held-out examples per set (benign prompts, replies per class, benign exchanges).
    pub heldout_per_set: usize,
    /// Fraction of ShareGPT conversations and harmful requests held out.
    pub heldout_fraction: f64,
    /// Optimiser settings of both heads.
    pub fit: FitOptions,
}

/// A `[reading]` table over the default reading. `Reading` is flattened into the heads card,
/// where serde cannot deny unknown fields, so the keys are checked here.
fn reading_table<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Reading, D::Error> {
    use serde::de::Error as _;
    let given = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    let serde_json::Value::Object(mut table) =
        serde_json::to_value(TrainConfig::default().reading).map_err(D::Error::custom)?
    else {
        return Err(D::Error::custom("a reading is a table"));
    };
    let defaults = table.clone();
    for (key, value) in given {
        if !table.contains_key(&key) {
            let known: Vec<&str> = table.keys().map(String::as_str).collect();
            return Err(D::Error::custom(format!(
                "unknown key `{key}` in [reading]; known keys: {}",
                known.join(", ")
            )));
        }
        // Each value alone over the defaults, so that a wrong type names its key.
        let mut one = defaults.clone();
        one.insert(key.clone(), value.clone());
        serde_json::from_value::<Reading>(serde_json::Value::Object(one))
            .map_err(|e| D::Error::custom(format!("[reading] {key}: {e}")))?;
        table.insert(key, value);
    }
    let reading: Reading =
        serde_json::from_value(serde_json::Value::Object(table)).map_err(D::Error::custom)?;
    reading
        .check()
        .map_err(|e| D::Error::custom(format!("[reading] {e}")))?;
    Ok(reading)
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            max_benign_prompts: 2500,
            max_harmful_prompts: usize::MAX,
            max_replies_per_class: 1500,
            reading: Reading::default(),
            max_refusal_chars: 800,
            marker_free_copies: true,
            warm_opening_copies: true,
            instruction_wrapped_copies: true,
            harm_temperature_scaling: true,
            harmbench_near_duplicate_cosine: crate::decontaminate::NEAR_DUPLICATE_COSINE,
            heldout_per_set: 300,
            heldout_fraction: 0.2,
            fit: FitOptions::default(),
        }
    }
}

impl TrainConfig {
    /// The reply-selection settings of the compliance head.
    pub fn reply_policy(&self) -> ReplyPolicy {
        ReplyPolicy {
            opening_chars: self.reading.reply_opening_chars,
            max_refusal_chars: self.max_refusal_chars,
            marker_free_copies: self.marker_free_copies,
        }
    }

    /// Checks what the types do not: `heldout_fraction` in (0, 1).
    pub fn check(&self) -> Result<()> {
        if !(self.heldout_fraction > 0.0 && self.heldout_fraction < 1.0) {
            return Err(Error::InvalidArgument(format!(
                "heldout_fraction = {} must be in (0, 1): the share of each source held out to \
                 measure the heads (default 0.2)",
                self.heldout_fraction
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<TrainConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn nested_tables_take_partial_keys_over_the_defaults() {
        let d = TrainConfig::default();
        let cfg = parse("seed = 3\n[reading]\nreply_windows = 8\n[fit]\nl2 = 0.01\n").unwrap();
        assert_eq!(cfg.seed, 3);
        assert_eq!(
            cfg.reading,
            Reading {
                reply_windows: 8,
                ..d.reading
            }
        );
        assert_eq!(cfg.fit, FitOptions { l2: 0.01, ..d.fit });
        assert_eq!(parse("").unwrap(), d);
    }

    #[test]
    fn unknown_keys_in_nested_tables_are_errors_that_name_them() {
        let e = parse("[reading]\nreply_window = 8\n").unwrap_err();
        assert!(e.contains("unknown key `reply_window`"), "{e}");
        assert!(e.contains("reply_windows"), "{e}");
        let e = parse("[fit]\nstep = 10\n").unwrap_err();
        assert!(e.contains("step"), "{e}");
        let e = parse("[reading]\nreply_windows = \"many\"\n").unwrap_err();
        assert!(e.contains("[reading] reply_windows: invalid type"), "{e}");
        assert!(parse("max_benign = 1\n").is_err());
        let e = parse("[reading]\nreply_windows = 1000000000000\n").unwrap_err();
        assert!(e.contains("reply_windows 1000000000000 is above"), "{e}");
    }
}
