//! The prompts of the defender's safety warm start (`gpo sft`): harmful training requests,
//! to be answered with an explicit refusal, and benign ones, to be answered as the model
//! itself answers them. The benign side holds the look-alike requests that use alarming
//! words ("How do I kill a Python process?"), so that what is learned is which requests to
//! refuse, not refusing. Every evaluation set stays out: HarmBench, the game's held-out
//! seeds, `alarming-benign`, the built-in benign prompts and `sharegpt-heldout`.

use gpo_assets::AssetCache;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::benign::near_duplicate;
use crate::config::DataConfig;
use crate::data::{prompt_set, Prompts};
use crate::{Error, Result};

/// Requests written for the warm start by a helper agent that saw no evaluation set: 260
/// benign ones that use alarming words or topics ("What's the maximum safe daily dose of
/// acetaminophen?", "How do I debone a trout?") and 140 harmful ones in the same domains,
/// some as role-play or "for my novel". One JSON object per line, benign first.
const WRITTEN: &str = include_str!("../data/safety_sft_requests.jsonl");

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenRequest {
    prompt: String,
    harmful: bool,
}

/// The evaluation sets no warm-start request may paraphrase, beside `sharegpt-heldout`
/// (read with `sharegpt-train`, from one pass over the ShareGPT asset).
const EVALUATION_SETS: [&str; 3] = ["harmbench", "alarming-benign", "built-in-benign"];

/// The refusals a harmful request is answered with, one drawn per request: short, explicit,
/// and each read as a refusal by `gpo_eval::is_explicit_refusal`.
pub const REFUSALS: [&str; 4] = [
    "I can't help with that.",
    "I'm sorry, but I can't help with that request.",
    "I can't assist with that. It could cause real harm.",
    "I won't help with this request.",
];

/// The two sides of the warm start.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetySftPrompts {
    /// Requests to refuse: the written harmful requests and the harmful look-alikes (first,
    /// so that a cap keeps the pairs that contrast with the benign ones), then the
    /// Do-Not-Answer training seeds of a game with the same data settings and seed (its
    /// held-out seeds left out).
    pub harmful: Vec<String>,
    /// Requests to answer: the written benign requests and the benign look-alikes, then the
    /// first ShareGPT turns of `sharegpt-train`.
    pub benign: Vec<String>,
}

impl SafetySftPrompts {
    /// Loads both sides; `sharegpt` caps the ShareGPT turns.
    pub fn load(data: &DataConfig, seed: u64, sharegpt: usize, cache: &AssetCache) -> Result<Self> {
        let (sharegpt_heldout, sharegpt_train) = crate::benign::sharegpt_heldout_and_train(cache)?;
        let written = written_requests(cache, sharegpt_heldout)?;
        let mut harmful: Vec<String> = written
            .iter()
            .filter(|r| r.harmful)
            .map(|r| r.prompt.clone())
            .collect();
        harmful.extend(
            gpo_datasets::lookalike::lookalike_requests()
                .into_iter()
                .filter(|r| r.harmful)
                .map(|r| r.prompt),
        );
        harmful.extend(Prompts::load(data, seed, cache, false)?.train);
        let mut benign: Vec<String> = written
            .into_iter()
            .filter(|r| !r.harmful)
            .map(|r| r.prompt)
            .collect();
        benign.extend(crate::benign::lookalike_benign());
        benign.extend(sharegpt_train.into_iter().take(sharegpt));
        Ok(SafetySftPrompts { harmful, benign })
    }
}

/// The written requests that no evaluation prompt paraphrases (word-set Jaccard below
/// [`crate::benign::NEAR_DUPLICATE_JACCARD`]).
fn written_requests(
    cache: &AssetCache,
    sharegpt_heldout: Vec<String>,
) -> Result<Vec<WrittenRequest>> {
    let mut eval = sharegpt_heldout;
    for set in EVALUATION_SETS {
        eval.extend(prompt_set(set, cache)?);
    }
    let mut out = Vec::new();
    for (i, line) in WRITTEN.lines().enumerate() {
        let r: WrittenRequest = serde_json::from_str(line).map_err(|e| {
            Error::Setup(format!(
                "safety_sft_requests.jsonl line {}: {e} (a build of gpo with a broken data file)",
                i + 1
            ))
        })?;
        if !eval.iter().any(|e| near_duplicate(&r.prompt, e)) {
            out.push(r);
        }
    }
    Ok(out)
}

/// One refusal per harmful request, drawn from [`REFUSALS`] with `seed`.
pub fn refusal_targets(n: usize, seed: u64) -> Vec<&'static str> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| *REFUSALS.choose(&mut rng).unwrap_or(&REFUSALS[0]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_an_explicit_one_and_draws_are_seeded() {
        assert!(REFUSALS.iter().all(|r| gpo_eval::is_explicit_refusal(r)));
        let a = refusal_targets(50, 3);
        assert_eq!(a, refusal_targets(50, 3));
        assert_ne!(a, refusal_targets(50, 4));
        // Each of the four appears among 50 draws.
        assert!(REFUSALS.iter().all(|r| a.contains(r)));
    }
}
