//! PPO's critic settings, as they appear in a config file.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What PPO's critic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriticKind {
    /// A linear value head on the policy's final hidden states, detached: no gradient
    /// reaches the policy and no extra forward pass runs. The default, because it is free.
    Head,
    /// Its own LoRA adapters (the policy's LoRA configuration, its own seed) on the policy's
    /// frozen base weights, plus a value head: a separate critic as in the paper, for one
    /// more forward and backward pass per micro-batch. Needs a LoRA policy.
    Lora,
    /// A value head on the policy's hidden states, not detached: the value loss also trains
    /// the policy's adapters, under the policy's gradient clip (the released code's critic).
    /// Kept to measure what sharing costs; not a recommended setting.
    Shared,
}

impl CriticKind {
    /// The name used in files.
    pub fn name(self) -> &'static str {
        match self {
            CriticKind::Head => "head",
            CriticKind::Lora => "lora",
            CriticKind::Shared => "shared",
        }
    }
}

/// PPO's critic and how it learns, apart from the policy: its own optimiser, learning rate
/// and gradient clip.
///
/// In files: `critic = { kind = "lora", lr = 1e-4, max_grad_norm = 1.0,
/// warmup_iterations = 2 }`, every field optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriticConfig {
    /// What the critic is (default `head`).
    pub kind: CriticKind,
    /// Base learning rate of the critic's AdamW (which takes the policy's betas, eps and
    /// weight decay); it follows the policy's schedule over the critic's own steps.
    /// Default 1e-4: the value head starts at zero on small models and short runs; the paper's
    /// 7B setting uses 1.5e-6 (against 5e-7 / 3e-6 for the policies).
    pub lr: f64,
    /// Gradient-norm clip of the critic's variables (default 1.0; inf disables it).
    pub max_grad_norm: f64,
    /// The trainer's first iterations that train the critic alone, leaving the policy
    /// unchanged, so that the first policy steps see fitted values (default 0).
    pub warmup_iterations: u64,
}

impl Default for CriticConfig {
    fn default() -> Self {
        CriticConfig {
            kind: CriticKind::Head,
            lr: 1e-4,
            max_grad_norm: 1.0,
            warmup_iterations: 0,
        }
    }
}

impl CriticConfig {
    /// Checks `lr` and `max_grad_norm`; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return Err(Error::Invalid(format!(
                "estimator.critic.lr = {} must be >= 0 and finite",
                self.lr
            )));
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return Err(Error::Invalid(format!(
                "estimator.critic.max_grad_norm = {} must be > 0 (inf disables clipping)",
                self.max_grad_norm
            )));
        }
        Ok(())
    }
}

/// Reads a critic table, or a bare number: the learning rate of older files' `critic_lr`.
pub(crate) fn critic_or_lr<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<CriticConfig, D::Error> {
    struct TableOrLr;
    impl<'de> Visitor<'de> for TableOrLr {
        type Value = CriticConfig;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a critic table such as { kind = \"lora\" }")
        }
        fn visit_f64<E: de::Error>(self, lr: f64) -> std::result::Result<CriticConfig, E> {
            Ok(CriticConfig {
                lr,
                ..CriticConfig::default()
            })
        }
        fn visit_i64<E: de::Error>(self, lr: i64) -> std::result::Result<CriticConfig, E> {
            self.visit_f64(lr as f64)
        }
        fn visit_u64<E: de::Error>(self, lr: u64) -> std::result::Result<CriticConfig, E> {
            self.visit_f64(lr as f64)
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<CriticConfig, A::Error> {
            CriticConfig::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(TableOrLr)
}
