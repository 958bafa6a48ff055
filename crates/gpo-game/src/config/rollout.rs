//! `[attacker.rollout]` / `[defender.rollout]`: where a learning player samples its
//! rollouts: on the machine that trains it, or on inference engines (vLLM, SGLang, or
//! `gpo serve`) that load each new version of its adapter.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which sampler a player's rollouts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutBackend {
    /// The learner samples itself (the default).
    #[default]
    Local,
    /// vLLM's OpenAI server started with `--enable-lora` and
    /// `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, or `gpo serve` (same API).
    Vllm,
    /// SGLang's server started with `--enable-lora`.
    Sglang,
}

/// A player's rollout settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// `local`, `vllm` or `sglang`.
    pub backend: RolloutBackend,
    /// The engines' roots (`http://host:port`); each update's adapter is loaded on every
    /// one, and each rollout's prompts are split evenly across them.
    pub urls: Vec<String>,
    /// A directory every engine can read (a shared file system), where each adapter version
    /// is written; empty = `RUN/adapters/` (engines on this machine).
    pub adapter_dir: String,
    /// Seconds to wait for one reply (a rollout, a load).
    pub timeout_s: f64,
    /// Tries per request: transport failures, replies cut short, HTTP 429 and 5xx are tried
    /// again, waiting 1 s, 2 s, 4 s, ... in between.
    pub tries: u32,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            backend: RolloutBackend::Local,
            urls: Vec::new(),
            adapter_dir: String::new(),
            timeout_s: 600.0,
            tries: 3,
        }
    }
}

impl RolloutConfig {
    /// Checks the settings of the player `role` (`attacker` or `defender`).
    pub fn validate(&self, role: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("{role}.rollout.{m}")));
        if self.backend == RolloutBackend::Local {
            if !self.urls.is_empty() {
                return bad(
                    "urls are set but backend = \"local\": set backend = \"vllm\" or \
                     \"sglang\" to sample on them"
                        .into(),
                );
            }
            return Ok(());
        }
        if self.urls.is_empty() {
            return bad(
                "urls: an engine backend needs at least one engine URL, e.g. \
                 urls = [\"http://localhost:8000\"]"
                    .into(),
            );
        }
        if let Some(u) = self
            .urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return bad(format!("urls: {u:?} is not an http(s) URL"));
        }
        if !(self.timeout_s > 0.0 && self.timeout_s.is_finite()) {
            return bad(format!("timeout_s = {} must be > 0", self.timeout_s));
        }
        if self.tries == 0 {
            return bad("tries must be at least 1".into());
        }
        Ok(())
    }

    /// Whether these are the defaults (written to a run's config only when not).
    pub fn is_default(&self) -> bool {
        *self == RolloutConfig::default()
    }

    /// Whether engines sample the rollouts.
    pub fn is_engine(&self) -> bool {
        self.backend != RolloutBackend::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_settings_are_checked_with_their_key() {
        let local = RolloutConfig::default();
        local.validate("defender").unwrap();
        let e = RolloutConfig {
            backend: RolloutBackend::Vllm,
            ..RolloutConfig::default()
        }
        .validate("defender")
        .unwrap_err();
        assert!(e.to_string().contains("defender.rollout.urls"), "{e}");
        let e = RolloutConfig {
            urls: vec!["http://h:1".into()],
            ..RolloutConfig::default()
        }
        .validate("attacker")
        .unwrap_err();
        assert!(e.to_string().contains("backend"), "{e}");
        let e = RolloutConfig {
            backend: RolloutBackend::Sglang,
            urls: vec!["h:1".into()],
            ..RolloutConfig::default()
        }
        .validate("attacker")
        .unwrap_err();
        assert!(e.to_string().contains("not an http"), "{e}");
        let cfg: RolloutConfig =
            toml::from_str("backend = \"vllm\"\nurls = [\"http://a:1\", \"http://b:1\"]").unwrap();
        assert!(cfg.is_engine() && cfg.urls.len() == 2);
        assert!(toml::from_str::<RolloutConfig>("backend = \"trt\"").is_err());
    }
}
