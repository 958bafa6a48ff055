//! A judge's settings and how one is built: [`JudgeConfig`], [`build_judge`].

use std::path::PathBuf;

use gpo_assets::AssetCache;
use serde::{Deserialize, Serialize};

use crate::{Error, Judge, JudgeKind, Result};

/// The model the `lm-guard` judge uses unless told otherwise: SmolLM2-135M-Instruct, a
/// stand-in that exercises the protocol; name real Llama Guard weights for real verdicts.
pub const DEFAULT_LM_GUARD_MODEL: &str = "smollm2-135m-instruct";

/// A judge's settings, as a config file's `[judge]` table spells them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct JudgeConfig {
    /// Which judge.
    pub kind: JudgeKind,
    /// The verdict is unsafe when P(unsafe) >= threshold; in [0, 1].
    pub threshold: f32,
    /// `lm-guard` only: a `.gguf` file, a Hugging Face directory or an asset alias.
    pub lm_guard_model: Option<String>,
    /// `lm-guard` only: where its model runs ("cpu", "cuda" or "cuda:N"; default cpu).
    pub lm_guard_device: Option<gpo_lm::DeviceSpec>,
    /// `lm-guard` only: the dtype its model computes in ("f32", "bf16" or "f16"; default f32).
    pub lm_guard_dtype: Option<gpo_lm::Precision>,
    /// `server` only: the API root of an OpenAI-compatible server, e.g.
    /// `http://localhost:8000/v1` (a bearer token is read from `GPO_API_KEY` or
    /// `OPENAI_API_KEY` when set).
    pub server_url: Option<String>,
    /// `server` only: the model's name on the server.
    pub server_model: Option<String>,
    /// `server` only: `llama-guard` (the server's template renders the protocol: real Llama
    /// Guard weights) or `wrapped` (gpo renders it as one user turn: any chat model).
    pub server_prompt: Option<crate::ServerPrompt>,
    /// `embedded` only: where the trained heads live (default: `<gpo cache>/judge-heads`).
    /// Heads missing there are an error that names `gpo judge train` (the CLI trains the
    /// cache's own first).
    pub heads_dir: Option<PathBuf>,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            kind: JudgeKind::Embedded,
            threshold: 0.5,
            lm_guard_model: None,
            lm_guard_device: None,
            lm_guard_dtype: None,
            server_url: None,
            server_model: None,
            server_prompt: None,
            heads_dir: None,
        }
    }
}

impl JudgeConfig {
    /// A default config for `kind`.
    pub fn new(kind: JudgeKind) -> Self {
        JudgeConfig {
            kind,
            ..JudgeConfig::default()
        }
    }

    /// Checks every field; errors name the field and the fix.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::Config {
                field: "threshold",
                msg: format!("{} is not in [0, 1]", self.threshold),
            });
        }
        // Keys that belong to one kind: (key, set?, its kind, what that kind does with it).
        let owned = [
            (
                "lm-guard-model",
                self.lm_guard_model.is_some(),
                JudgeKind::LmGuard,
                "loads a model",
            ),
            (
                "lm-guard-device",
                self.lm_guard_device.is_some(),
                JudgeKind::LmGuard,
                "runs a language model",
            ),
            (
                "lm-guard-dtype",
                self.lm_guard_dtype.is_some(),
                JudgeKind::LmGuard,
                "runs a language model",
            ),
            (
                "server-url",
                self.server_url.is_some(),
                JudgeKind::Server,
                "asks a server",
            ),
            (
                "server-model",
                self.server_model.is_some(),
                JudgeKind::Server,
                "asks a server",
            ),
            (
                "server-prompt",
                self.server_prompt.is_some(),
                JudgeKind::Server,
                "asks a server",
            ),
            (
                "heads-dir",
                self.heads_dir.is_some(),
                JudgeKind::Embedded,
                "has heads",
            ),
        ];
        for (field, set, owner, what) in owned {
            // The server judge needs all three of its keys.
            if owner == JudgeKind::Server && self.kind == JudgeKind::Server && !set {
                return Err(server_setting_missing(field));
            }
            if self.kind != owner && set {
                return Err(Error::Config {
                    field,
                    msg: format!(
                        "only the {} judge {what}; this judge is `{}`",
                        owner.as_str(),
                        self.kind.as_str()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The heads directory: the configured one, else `<cache root>/judge-heads`.
    pub fn heads_dir(&self, cache: &AssetCache) -> PathBuf {
        self.heads_dir
            .clone()
            .unwrap_or_else(|| crate::embedded::default_heads_dir(cache))
    }
}

fn server_setting_missing(field: &'static str) -> Error {
    Error::Config {
        field,
        msg: "the server judge needs server-url, server-model and server-prompt \
              (\"llama-guard\" for Llama Guard weights, \"wrapped\" for another chat model)"
            .into(),
    }
}

/// Builds the judge `config` names, fetching missing assets into `cache` (and, for the
/// embedded judge, training its heads on first use).
pub fn build_judge(config: &JudgeConfig, cache: &AssetCache) -> Result<Box<dyn Judge>> {
    config.validate()?;
    Ok(match config.kind {
        JudgeKind::Embedded => Box::new(crate::EmbeddedJudge::load(
            cache,
            &config.heads_dir(cache),
            config.threshold,
        )?),
        JudgeKind::LmGuard => {
            let name = config
                .lm_guard_model
                .as_deref()
                .unwrap_or(DEFAULT_LM_GUARD_MODEL);
            let device = config.lm_guard_device.unwrap_or_default();
            let dtype = config.lm_guard_dtype.unwrap_or_default();
            Box::new(
                crate::LmGuardJudge::from_name(name, device, dtype, cache)?
                    .with_threshold(config.threshold),
            )
        }
        JudgeKind::Server => {
            let url = config.server_url.as_deref();
            let model = config.server_model.as_deref();
            let judge = crate::ServerJudge::new(
                url.ok_or_else(|| server_setting_missing("server-url"))?,
                model.ok_or_else(|| server_setting_missing("server-model"))?,
                config
                    .server_prompt
                    .ok_or_else(|| server_setting_missing("server-prompt"))?,
            )?;
            Box::new(judge.with_threshold(config.threshold))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_kebab_case_and_refuses_unknown_fields() {
        let c: JudgeConfig = serde_json::from_str(
            r#"{"kind":"lm-guard","threshold":0.3,"lm-guard-model":"x.gguf"}"#,
        )
        .unwrap();
        assert_eq!(c.kind, JudgeKind::LmGuard);
        assert_eq!(c.threshold, 0.3);
        assert_eq!(c.lm_guard_model.as_deref(), Some("x.gguf"));
        let d: JudgeConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d, JudgeConfig::default());
        let e = serde_json::from_str::<JudgeConfig>(r#"{"treshold":0.3}"#).unwrap_err();
        assert!(e.to_string().contains("treshold"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let c = JudgeConfig {
            threshold: 1.5,
            ..JudgeConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`threshold`") && e.contains("1.5"), "{e}");
        let c = JudgeConfig {
            lm_guard_model: Some("m.gguf".into()),
            ..JudgeConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lm-guard-model"));
        let c = JudgeConfig {
            lm_guard_device: Some(gpo_lm::DeviceSpec::Cuda(0)),
            ..JudgeConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("lm-guard-device") && e.contains("embedded"),
            "{e}"
        );
        let c = JudgeConfig {
            lm_guard_dtype: Some(gpo_lm::Precision::Bf16),
            ..JudgeConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("lm-guard-dtype"), "{e}");
        let e = JudgeConfig::new(JudgeKind::Server)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("server-url") && e.contains("llama-guard"), "{e}");
        let c: JudgeConfig = serde_json::from_str(
            r#"{"kind":"server","server-url":"http://h:8000/v1","server-model":"guard","server-prompt":"llama-guard"}"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.server_prompt, Some(crate::ServerPrompt::LlamaGuard));
        let c = JudgeConfig {
            server_model: Some("guard".into()),
            ..JudgeConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("server-model") && e.contains("embedded"), "{e}");
    }
}
