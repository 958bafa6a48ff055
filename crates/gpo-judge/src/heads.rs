//! The embedded judge's two trained heads, stored as safetensors plus a JSON card.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::features::{prompt_width, Reading};
use crate::logistic::{FitOptions, LogisticHead, Metrics};
use crate::{Error, Result};

/// File name of the weights inside a heads directory.
pub const HEADS_FILE: &str = "heads.safetensors";
/// File name of the card inside a heads directory.
pub const CARD_FILE: &str = "card.json";
/// Version of the heads format: what the heads read ([`Reading`]), how they were fitted and
/// on which data. A card of another format is refused by [`crate::EmbeddedJudge::load`] with
/// the command that retrains it. Format 11 (today): the harm head reads a prompt's pooled
/// state and its mean state after a middle encoder layer, fitted on decontaminated requests
/// and instruction-wrapped copies, temperature-scaled on its held-out split; the compliance
/// head reads a reply's opening phrase by phrase ([`LogisticHead::fit_bags`]), trained also on
/// replies with a warm first sentence in front, temperature-scaled likewise. What each format
/// changed and measured: docs/benchmarks/judges.md.
pub const HEADS_FORMAT: u32 = 11;

/// Held-out metrics written into the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    /// Harmful-request head: HarmBench's 200 prompts (never trained on) vs held-out benign
    /// ShareGPT first turns.
    pub harm_harmbench_vs_heldout_benign: Metrics,
    /// The harm head's fitting procedure on a held-out split of its own training sources,
    /// measured with a head refit without that split (the head in use is fitted on all of
    /// them: its held-out test is HarmBench).
    pub harm_heldout_split: Metrics,
    /// The harm head on `gpo_datasets::lookalike`'s requests: 150 harmful against 150 benign
    /// ones that look like them (never trained on).
    pub harm_lookalike_requests: Metrics,
    /// Compliance head (positive = complying): held-out split of the marker-labelled replies.
    pub comply_heldout_split: Metrics,
    /// The same split with a warm first sentence never trained on in front of each
    /// complying reply (`gpo_judge_train::reply::HELDOUT_WARM_OPENINGS`): whether the head reads a
    /// polite "I'm ..." opening as declining.
    pub comply_heldout_warm_openings: Metrics,
    /// The compliance head on SmolLM2's own HarmBench answers, hand-labelled
    /// (`gpo_judge_train::defender_answers`; positive = complies). Absent from cards written before
    /// the set existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comply_defender_answers: Option<Metrics>,
    /// The whole judge's P(unsafe) on the same exchanges (their HarmBench prompts), against
    /// the same labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_defender_answers: Option<Metrics>,
    /// Per marker-free reply set (`gpo_judge_train::REPLY_SETS`): the compliance head
    /// (`comply_<set>_replies`, positive = complying) and the whole judge
    /// (`judge_exchanges_<set>_replies`: positive = a HarmBench prompt with a complying reply
    /// of the set; negative = the same prompt with a refusing one, and held-out benign
    /// ShareGPT exchanges).
    #[serde(flatten)]
    pub reply_sets: BTreeMap<String, Metrics>,
}

/// What the heads were trained on and how well they do: written beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadsCard {
    /// [`HEADS_FORMAT`].
    pub format: u32,
    /// Seed of the sampling and splits.
    pub seed: u64,
    /// The embedder (asset alias) and its token limit.
    pub embedder: String,
    /// Token limit of the embedder for prompts and responses.
    pub max_tokens: usize,
    /// Optimiser settings.
    pub fit: FitOptions,
    /// Examples per source, `name -> count`, for training (after the held-out split).
    pub train_sizes: BTreeMap<String, usize>,
    /// Examples per held-out set.
    pub heldout_sizes: BTreeMap<String, usize>,
    /// Always false: HarmBench is an evaluation set.
    pub harmbench_used_for_training: bool,
    /// How replies were labelled for the compliance head.
    pub reply_labelling: String,
    /// What the heads read (its fields are top-level keys of the card).
    #[serde(flatten)]
    pub reading: Reading,
    /// The temperature factor of the compliance head, set by log-loss on the held-out
    /// marker-labelled replies (its weights and bias are stored already multiplied by it).
    pub comply_scale: f32,
    /// The temperature factor of the harm head, set by log-loss on its held-out split
    /// (harmful requests vs benign prompts; stored multiplied in, as `comply_scale`).
    pub harm_scale: f32,
    /// Held-out metrics.
    pub metrics: HeadMetrics,
    /// Seconds the training took.
    pub train_seconds: f64,
}

/// The trained heads.
#[derive(Debug, Clone, PartialEq)]
pub struct Heads {
    /// P(prompt is a harmful request | prompt features, [`crate::features`]).
    pub harm: LogisticHead,
    /// P(response complies | reply features, [`crate::features`]).
    pub comply: LogisticHead,
}

fn head_tensors(name: &str, h: &LogisticHead, out: &mut HashMap<String, Tensor>) -> Result<()> {
    out.insert(
        format!("{name}.weight"),
        Tensor::from_slice(&h.w, h.w.len(), &Device::Cpu)?,
    );
    out.insert(
        format!("{name}.bias"),
        Tensor::from_slice(&[h.b], 1, &Device::Cpu)?,
    );
    Ok(())
}

/// Paths of the weights and card in `dir`.
pub fn head_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(HEADS_FILE), dir.join(CARD_FILE))
}

/// What [`Heads::load`] found in a heads directory.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredHeads {
    /// Heads of this format, and their card (boxed: it is most of the size).
    Loaded(Heads, Box<HeadsCard>),
    /// No weights or no card (or a card without a format version): train them.
    Missing,
    /// A card of another format version: train them again.
    OtherFormat(u64),
}

impl Heads {
    /// Writes `heads.safetensors` and `card.json` into `dir` (created if needed), each
    /// through a temp file + rename. Old weights are removed first and the card goes before
    /// the new ones, so an interrupted save leaves no weights (retrained on next use), never
    /// a card beside weights it does not describe.
    pub fn save(&self, card: &HeadsCard, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (weights, card_path) = head_files(dir);
        match std::fs::remove_file(&weights) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&weights, e))
            }
            _ => {}
        }
        let json =
            serde_json::to_vec_pretty(card).map_err(|e| Error::bad(&card_path, e.to_string()))?;
        gpo_lm::write_atomic(&card_path, &json)?;
        let mut t = HashMap::new();
        head_tensors("harm", &self.harm, &mut t)?;
        head_tensors("comply", &self.comply, &mut t)?;
        gpo_lm::write_safetensors_atomic(&t, &weights)?;
        Ok(())
    }

    /// Reads the heads and card from `dir` for an embedder of `dim` dimensions (the harm head
    /// reads [`prompt_width`]`(dim)` features, the compliance head `dim` per window). A card
    /// of another format version is reported whether or not the weights are there; without
    /// them a card is otherwise ignored.
    pub fn load(dir: &Path, dim: usize) -> Result<StoredHeads> {
        let (weights, card_path) = head_files(dir);
        if !card_path.exists() {
            return Ok(StoredHeads::Missing);
        }
        let text = match std::fs::read_to_string(&card_path) {
            Ok(text) => text,
            Err(_) if !weights.exists() => return Ok(StoredHeads::Missing),
            Err(e) => return Err(Error::io(&card_path, e)),
        };
        let bad_card =
            |e: serde_json::Error| Error::bad(&card_path, format!("{e}; delete it to retrain"));
        // The version first: an older card may lack fields that this one has.
        let value = serde_json::from_str::<serde_json::Value>(&text);
        let format = value
            .as_ref()
            .ok()
            .and_then(|v| v.get("format"))
            .and_then(serde_json::Value::as_u64);
        match format {
            Some(f) if f != u64::from(HEADS_FORMAT) => return Ok(StoredHeads::OtherFormat(f)),
            _ if !weights.exists() => return Ok(StoredHeads::Missing),
            _ => {}
        }
        let value = value.map_err(bad_card)?;
        if format.is_none() {
            // Never retrained over: weights beside a card without a version are not ours to
            // overwrite.
            return Err(Error::bad(
                &card_path,
                "no `format` number; delete it (and heads.safetensors) to retrain",
            ));
        }
        let card: HeadsCard = serde_json::from_value(value).map_err(bad_card)?;
        card.reading
            .check()
            .map_err(|e| Error::bad(&card_path, format!("{e}; delete it to retrain")))?;
        let t = candle_core::safetensors::load(&weights, &Device::Cpu)
            .map_err(|e| Error::bad(&weights, format!("{e}; delete it to retrain")))?;
        let head = |name: &str, dim: usize| -> Result<LogisticHead> {
            let get = |k: String| {
                t.get(&k)
                    .ok_or_else(|| Error::bad(&weights, format!("no tensor `{k}`")))?
                    .to_vec1::<f32>()
                    .map_err(|e| {
                        Error::bad(
                            &weights,
                            format!("tensor `{k}`: {e} (a vector of f32); delete it to retrain"),
                        )
                    })
            };
            let w = get(format!("{name}.weight"))?;
            let b = get(format!("{name}.bias"))?;
            if w.len() != dim || b.len() != 1 {
                return Err(Error::bad(
                    &weights,
                    format!(
                        "`{name}` has {} weights, expected {dim}; delete it to retrain",
                        w.len()
                    ),
                ));
            }
            Ok(LogisticHead { w, b: b[0] })
        };
        Ok(StoredHeads::Loaded(
            Heads {
                harm: head("harm", prompt_width(dim))?,
                comply: head("comply", dim)?,
            },
            Box::new(card),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_in_a_card_survive_json_exactly() {
        // A card's train_seconds of 27.851272346000002 came back as 27.851272346 before the
        // workspace enabled serde_json's `float_roundtrip` (a save/load test failed on it).
        for x in [
            27.851272346000002f64,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
            1e300 / 3.0,
        ] {
            let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
    }

    #[test]
    fn a_card_of_another_format_means_retrain_even_with_missing_fields() {
        let dir = tempfile::tempdir().unwrap();
        let (weights, card) = head_files(dir.path());
        std::fs::write(&weights, b"not read").unwrap();
        // A format-1 card lacks `reply_opening_chars`; it must not be an error.
        std::fs::write(&card, br#"{"format": 1, "seed": 0}"#).unwrap();
        assert_eq!(
            Heads::load(dir.path(), 384).unwrap(),
            StoredHeads::OtherFormat(1)
        );
        std::fs::write(&card, b"{ not json").unwrap();
        let err = Heads::load(dir.path(), 384).unwrap_err().to_string();
        assert!(
            err.contains("card.json") && err.contains("retrain"),
            "{err}"
        );
        // Weights beside a card with no version are an error, never "missing" (which would
        // retrain over them).
        std::fs::write(&card, br#"{"seed": 0}"#).unwrap();
        let err = Heads::load(dir.path(), 384).unwrap_err().to_string();
        assert!(err.contains("no `format` number"), "{err}");
    }
}
