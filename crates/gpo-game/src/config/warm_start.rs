//! `[defender.warm_start]`: the warm start's settings and their checks.

use gpo_lm::LoraConfig;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `[defender.warm_start]`: the settings of the warm start (`gpo sft`'s flags of the same
/// names). Every default but `epochs` is `gpo sft`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmStartConfig {
    /// Passes over the pairs; 0 (the default in a game) = no warm start.
    pub epochs: usize,
    /// Learning rate of the LoRA adapters (constant AdamW).
    pub lr: f64,
    /// Pairs per optimiser step.
    pub batch_size: usize,
    /// Pairs per forward and backward pass (a batch's gradient is summed over its
    /// micro-batches: memory, not the result, depends on it).
    pub micro_batch_size: usize,
    /// LoRA rank (alpha = 2 x rank, every linear layer).
    pub lora_rank: usize,
    /// Harmful prompts to refuse (0 = all): the written harmful requests and the harmful
    /// look-alikes first, then the game's Do-Not-Answer training seeds.
    pub harmful: usize,
    /// ShareGPT first turns (of `sharegpt-train`) among the benign prompts.
    pub sharegpt: usize,
    /// Most tokens of the model's own answer to a benign prompt (its training target).
    pub max_new_tokens: usize,
    /// At most this many harmful and this many benign prompts (0 = all).
    pub max_pairs: usize,
}

impl Default for WarmStartConfig {
    /// No epochs; otherwise `gpo sft`'s defaults: lr 2e-4, batches of 16 in micro-batches
    /// of 4, rank 16, 250 harmful prompts, 350 ShareGPT turns, benign answers cut to 16
    /// tokens. The last three are run f2 of docs/benchmarks/defender.md ("The safety warm
    /// start"): about 2.5 benign pairs per harmful one kept over-refusal inside the +0.10
    /// bound on both benign sets with HarmBench attack success well below the initial
    /// model's, and the refuse-or-answer decision sits in the opening tokens, so 16-token
    /// targets teach it at a fifth of the cost of 48.
    fn default() -> Self {
        WarmStartConfig {
            epochs: 0,
            lr: 2e-4,
            batch_size: 16,
            micro_batch_size: 4,
            lora_rank: 16,
            harmful: 250,
            sharegpt: 350,
            max_new_tokens: 16,
            max_pairs: 0,
        }
    }
}

/// A setting out of range: its field, its value and what it must be.
#[derive(Debug, Clone, PartialEq)]
pub struct BadSetting {
    /// The field (`lr`), which is also the `gpo sft` flag with `-` for `_`.
    pub field: &'static str,
    /// Its value as given.
    pub value: String,
    /// What it must be ("a finite number > 0").
    pub must_be: String,
}

impl WarmStartConfig {
    /// The first setting out of range, if any (`epochs` may be 0: no warm start).
    pub fn bad_setting(&self) -> Option<BadSetting> {
        let bad = |field, value: String, must_be: &str| {
            Some(BadSetting {
                field,
                value,
                must_be: must_be.into(),
            })
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr.to_string(), "a finite number > 0");
        }
        for (field, v) in [
            ("batch_size", self.batch_size),
            ("micro_batch_size", self.micro_batch_size),
            ("max_new_tokens", self.max_new_tokens),
        ] {
            if v == 0 {
                return bad(field, "0".into(), "at least 1");
            }
        }
        if !(1..=gpo_lm::MAX_RANK).contains(&self.lora_rank) {
            let must_be = format!("in 1..={}", gpo_lm::MAX_RANK);
            return bad("lora_rank", self.lora_rank.to_string(), &must_be);
        }
        None
    }

    /// Checks every setting; an error names the field as `defender.warm_start.FIELD`.
    pub fn validate(&self) -> Result<()> {
        match self.bad_setting() {
            None => Ok(()),
            Some(b) => Err(Error::Config(format!(
                "defender.warm_start.{} = {} must be {}",
                b.field, b.value, b.must_be
            ))),
        }
    }

    /// The adapters trained: rank r, alpha 2r, every linear layer.
    pub(crate) fn lora(&self) -> LoraConfig {
        LoraConfig {
            rank: self.lora_rank,
            alpha: 2.0 * self.lora_rank as f64,
            ..LoraConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpo_rl::SftConfig;

    #[test]
    fn the_defaults_are_gpo_sfts_without_epochs_and_valid() {
        let c = WarmStartConfig::default();
        assert_eq!(c.epochs, 0);
        c.validate().unwrap();
        let sft = SftConfig::default();
        assert_eq!(
            (c.lr, c.batch_size, c.micro_batch_size),
            (sft.optimizer.lr, sft.batch_size, sft.micro_batch_size)
        );
    }

    #[test]
    fn a_bad_setting_is_named_as_a_config_field() {
        let err = |c: WarmStartConfig| c.validate().unwrap_err().to_string();
        let e = err(WarmStartConfig {
            lr: f64::NAN,
            ..Default::default()
        });
        assert_eq!(
            e,
            "config: defender.warm_start.lr = NaN must be a finite number > 0"
        );
        let e = err(WarmStartConfig {
            micro_batch_size: 0,
            ..Default::default()
        });
        assert!(
            e.contains("defender.warm_start.micro_batch_size = 0"),
            "{e}"
        );
        let e = err(WarmStartConfig {
            lora_rank: 0,
            ..Default::default()
        });
        assert!(e.contains("defender.warm_start.lora_rank = 0"), "{e}");
    }
}
