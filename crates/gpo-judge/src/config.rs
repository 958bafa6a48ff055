//! A judge's settings and how one is built: the `[judge]` table as written
//! ([`JudgeTable`]), the checked judge it resolves to ([`JudgeConfig`]), [`build_judge`].

use std::path::PathBuf;

use gpo_assets::AssetCache;
use gpo_lm::{DeviceSpec, Precision};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Judge, JudgeKind, Result, ServerPrompt};

/// The model the `lm-guard` judge uses unless told otherwise: SmolLM2-135M-Instruct, a
/// stand-in that exercises the protocol; name real Llama Guard weights for real verdicts.
pub const DEFAULT_LM_GUARD_MODEL: &str = "smollm2-135m-instruct";

/// The default verdict threshold.
const DEFAULT_THRESHOLD: f32 = 0.5;

/// The `[judge]` table as a config file spells it: every kind's keys in one flat table,
/// snake_case. Only [`JudgeConfig`] reads it, which checks that each key belongs to the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeTable {
    /// Which judge.
    pub kind: JudgeKind,
    /// The verdict is unsafe when P(unsafe) >= threshold; in [0, 1].
    pub threshold: f32,
    /// `lm-guard` only: a `.gguf` file, a Hugging Face directory or an asset alias (default
    /// [`DEFAULT_LM_GUARD_MODEL`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm_guard_model: Option<String>,
    /// `lm-guard` only: where its model runs ("cpu", "cuda" or "cuda:N"; default cpu).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm_guard_device: Option<DeviceSpec>,
    /// `lm-guard` only: the dtype its model computes in ("f32", "bf16" or "f16"; default f32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm_guard_dtype: Option<Precision>,
    /// `server` only: the API root of an OpenAI-compatible server, e.g.
    /// `http://localhost:8000/v1` (a bearer token is read from `GPO_API_KEY` or
    /// `OPENAI_API_KEY` when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// `server` only: the model's name on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_model: Option<String>,
    /// `server` only: `llama-guard` (the server's template renders the protocol: real Llama
    /// Guard weights) or `wrapped` (gpo renders it as one user turn: any chat model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_prompt: Option<ServerPrompt>,
    /// `embedded` only: where the trained heads live (default: `<gpo cache>/judge-heads`).
    /// Heads missing there are an error that names `gpo judge train` (the CLI trains the
    /// cache's own first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads_dir: Option<PathBuf>,
}

impl Default for JudgeTable {
    fn default() -> Self {
        JudgeTable {
            kind: JudgeKind::Embedded,
            threshold: DEFAULT_THRESHOLD,
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

/// A judge, checked: each kind with its own settings and nothing else. Read from a
/// `[judge]` table (through [`JudgeTable`], so a file and the command line are checked
/// alike) and written back as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "JudgeTable")]
pub enum JudgeConfig {
    /// The offline embedded judge.
    Embedded {
        /// The verdict is unsafe when P(unsafe) >= threshold.
        threshold: f32,
        /// Its heads' directory; `None` = the cache's own (`<gpo cache>/judge-heads`).
        heads_dir: Option<PathBuf>,
    },
    /// The Llama Guard protocol on a local chat model.
    LmGuard {
        /// The verdict is unsafe when P(unsafe) >= threshold.
        threshold: f32,
        /// A `.gguf` file, a Hugging Face directory or an asset alias.
        model: String,
        /// Where the model runs.
        device: DeviceSpec,
        /// The dtype it computes in.
        dtype: Precision,
    },
    /// The Llama Guard protocol on a model behind an OpenAI-compatible server.
    Server {
        /// The verdict is unsafe when P(unsafe) >= threshold.
        threshold: f32,
        /// The API root.
        url: String,
        /// The model's name on the server.
        model: String,
        /// How the moderation prompt reaches it.
        prompt: ServerPrompt,
    },
}

impl Default for JudgeConfig {
    /// The embedded judge at threshold 0.5 with the cache's heads.
    fn default() -> Self {
        JudgeConfig::Embedded {
            threshold: DEFAULT_THRESHOLD,
            heads_dir: None,
        }
    }
}

impl JudgeConfig {
    /// The `lm-guard` judge on `model` (CPU, f32, threshold 0.5).
    pub fn lm_guard(model: &str) -> Self {
        JudgeConfig::LmGuard {
            threshold: DEFAULT_THRESHOLD,
            model: model.to_string(),
            device: DeviceSpec::default(),
            dtype: Precision::default(),
        }
    }

    /// Which judge.
    pub fn kind(&self) -> JudgeKind {
        match self {
            JudgeConfig::Embedded { .. } => JudgeKind::Embedded,
            JudgeConfig::LmGuard { .. } => JudgeKind::LmGuard,
            JudgeConfig::Server { .. } => JudgeKind::Server,
        }
    }

    /// The verdict threshold.
    pub fn threshold(&self) -> f32 {
        match *self {
            JudgeConfig::Embedded { threshold, .. }
            | JudgeConfig::LmGuard { threshold, .. }
            | JudgeConfig::Server { threshold, .. } => threshold,
        }
    }

    /// How reports name the judge: `embedded`, `lm-guard:MODEL` or `server:MODEL`.
    pub fn name(&self) -> String {
        match self {
            JudgeConfig::Embedded { .. } => "embedded".into(),
            JudgeConfig::LmGuard { model, .. } => format!("lm-guard:{model}"),
            JudgeConfig::Server { model, .. } => format!("server:{model}"),
        }
    }

    /// The embedded judge's heads directory when one is named, `None` for the cache's own
    /// and for the other judges.
    pub fn named_heads_dir(&self) -> Option<&std::path::Path> {
        match self {
            JudgeConfig::Embedded { heads_dir, .. } => heads_dir.as_deref(),
            _ => None,
        }
    }

    /// The heads directory the embedded judge reads: the named one, else
    /// `<cache root>/judge-heads`.
    pub fn heads_dir(&self, cache: &AssetCache) -> PathBuf {
        self.named_heads_dir()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| crate::embedded::default_heads_dir(cache))
    }
}

impl TryFrom<JudgeTable> for JudgeConfig {
    type Error = Error;

    /// Checks every key: the threshold's range, each key set only for the kind that uses it,
    /// and the server judge's three keys all present. Errors name the key and the fix.
    fn try_from(t: JudgeTable) -> Result<Self> {
        if !(0.0..=1.0).contains(&t.threshold) {
            return Err(Error::Config {
                field: "threshold",
                msg: format!("{} is not in [0, 1]", t.threshold),
            });
        }
        check_keys_belong_to_kind(&t)?;
        let threshold = t.threshold;
        Ok(match t.kind {
            JudgeKind::Embedded => JudgeConfig::Embedded {
                threshold,
                heads_dir: t.heads_dir,
            },
            JudgeKind::LmGuard => JudgeConfig::LmGuard {
                threshold,
                model: t
                    .lm_guard_model
                    .unwrap_or_else(|| DEFAULT_LM_GUARD_MODEL.to_string()),
                device: t.lm_guard_device.unwrap_or_default(),
                dtype: t.lm_guard_dtype.unwrap_or_default(),
            },
            JudgeKind::Server => JudgeConfig::Server {
                threshold,
                url: t
                    .server_url
                    .ok_or_else(|| server_setting_missing("server_url"))?,
                model: t
                    .server_model
                    .ok_or_else(|| server_setting_missing("server_model"))?,
                prompt: t
                    .server_prompt
                    .ok_or_else(|| server_setting_missing("server_prompt"))?,
            },
        })
    }
}

/// A key set for a kind that does not use it is an error rather than silently ignored.
fn check_keys_belong_to_kind(t: &JudgeTable) -> Result<()> {
    use JudgeKind::{Embedded, LmGuard, Server};
    // (key, set?, its kind, what that kind does with it)
    let owned = [
        (
            "lm_guard_model",
            t.lm_guard_model.is_some(),
            LmGuard,
            "loads a model",
        ),
        (
            "lm_guard_device",
            t.lm_guard_device.is_some(),
            LmGuard,
            "runs a language model",
        ),
        (
            "lm_guard_dtype",
            t.lm_guard_dtype.is_some(),
            LmGuard,
            "runs a language model",
        ),
        (
            "server_url",
            t.server_url.is_some(),
            Server,
            "asks a server",
        ),
        (
            "server_model",
            t.server_model.is_some(),
            Server,
            "asks a server",
        ),
        (
            "server_prompt",
            t.server_prompt.is_some(),
            Server,
            "asks a server",
        ),
        ("heads_dir", t.heads_dir.is_some(), Embedded, "has heads"),
    ];
    match owned
        .iter()
        .find(|(_, set, owner, _)| *set && *owner != t.kind)
    {
        Some((field, _, owner, what)) => Err(Error::Config {
            field,
            msg: format!(
                "only the {} judge {what}; this judge is `{}`",
                owner.as_str(),
                t.kind.as_str()
            ),
        }),
        None => Ok(()),
    }
}

fn server_setting_missing(field: &'static str) -> Error {
    Error::Config {
        field,
        msg: "the server judge needs server_url, server_model and server_prompt \
              (--server-url, --server-model and --server-prompt on the command line; the \
              prompt is \"llama-guard\" for Llama Guard weights, \"wrapped\" for another \
              chat model)"
            .into(),
    }
}

impl TryFrom<Map<String, Value>> for JudgeConfig {
    type Error = String;

    /// A `[judge]` table: older kebab-case keys are renamed (with a warning), then the
    /// table is read as a [`JudgeTable`] and checked.
    fn try_from(mut table: Map<String, Value>) -> std::result::Result<Self, String> {
        snake_case_keys(&mut table, "judge.")?;
        let raw: JudgeTable =
            serde_json::from_value(Value::Object(table)).map_err(|e| e.to_string())?;
        JudgeConfig::try_from(raw).map_err(|e| e.to_string())
    }
}

impl From<JudgeConfig> for JudgeTable {
    fn from(c: JudgeConfig) -> Self {
        let threshold = c.threshold();
        let kind = c.kind();
        let t = JudgeTable {
            kind,
            threshold,
            ..JudgeTable::default()
        };
        match c {
            JudgeConfig::Embedded { heads_dir, .. } => JudgeTable { heads_dir, ..t },
            JudgeConfig::LmGuard {
                model,
                device,
                dtype,
                ..
            } => JudgeTable {
                lm_guard_model: Some(model),
                lm_guard_device: Some(device),
                lm_guard_dtype: Some(dtype),
                ..t
            },
            JudgeConfig::Server {
                url, model, prompt, ..
            } => JudgeTable {
                server_url: Some(url),
                server_model: Some(model),
                server_prompt: Some(prompt),
                ..t
            },
        }
    }
}

/// The renames of a table's kebab-case keys (`lm-guard-model`, the spelling before config
/// keys were snake_case everywhere) to snake_case, `(old, new)`, warning once per key;
/// `prefix` names the table in messages (`"judge."`). Both spellings of one key is an
/// error. Callers apply the renames to their own table type.
pub fn kebab_renames(
    keys: &[&str],
    prefix: &str,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut renames = Vec::new();
    for old in keys.iter().filter(|k| k.contains('-')) {
        let new = old.replace('-', "_");
        if keys.contains(&new.as_str()) {
            return Err(format!(
                "{prefix}{old} and {prefix}{new} are the same key; keep {prefix}{new}"
            ));
        }
        tracing::warn!("{prefix}{old} is deprecated: write {prefix}{new}");
        renames.push((old.to_string(), new));
    }
    Ok(renames)
}

/// [`kebab_renames`] applied to a JSON table.
pub fn snake_case_keys(
    table: &mut Map<String, Value>,
    prefix: &str,
) -> std::result::Result<(), String> {
    let keys: Vec<&str> = table.keys().map(String::as_str).collect();
    for (old, new) in kebab_renames(&keys, prefix)? {
        if let Some(v) = table.remove(&old) {
            table.insert(new, v);
        }
    }
    Ok(())
}

/// Builds the judge `config` names, fetching missing assets into `cache`. The embedded
/// judge's heads must exist already (`gpo judge train`).
pub fn build_judge(config: &JudgeConfig, cache: &AssetCache) -> Result<Box<dyn Judge>> {
    Ok(match config {
        JudgeConfig::Embedded { threshold, .. } => Box::new(crate::EmbeddedJudge::load(
            cache,
            &config.heads_dir(cache),
            *threshold,
        )?),
        JudgeConfig::LmGuard {
            threshold,
            model,
            device,
            dtype,
        } => Box::new(
            crate::LmGuardJudge::from_name(model, *device, *dtype, cache)?
                .with_threshold(*threshold),
        ),
        JudgeConfig::Server {
            threshold,
            url,
            model,
            prompt,
        } => Box::new(crate::ServerJudge::new(url, model, *prompt)?.with_threshold(*threshold)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> std::result::Result<JudgeConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_table_resolves_to_its_kind_with_the_defaults_filled_in() {
        let c = parse(r#"{"kind":"lm-guard","threshold":0.3,"lm_guard_model":"x.gguf"}"#).unwrap();
        assert_eq!(
            c,
            JudgeConfig::LmGuard {
                threshold: 0.3,
                model: "x.gguf".into(),
                device: DeviceSpec::Cpu,
                dtype: Precision::F32
            }
        );
        assert_eq!(parse("{}").unwrap(), JudgeConfig::default());
        assert_eq!(
            parse(r#"{"kind":"lm-guard"}"#).unwrap().name(),
            format!("lm-guard:{DEFAULT_LM_GUARD_MODEL}")
        );
        let e = parse(r#"{"treshold":0.3}"#).unwrap_err();
        assert!(e.contains("treshold"), "{e}");
    }

    #[test]
    fn kebab_keys_still_read_and_both_spellings_are_an_error() {
        let c = parse(r#"{"kind":"embedded","heads-dir":"h"}"#).unwrap();
        assert_eq!(c.named_heads_dir(), Some(std::path::Path::new("h")));
        let e = parse(r#"{"heads-dir":"h","heads_dir":"g"}"#).unwrap_err();
        assert!(
            e.contains("judge.heads-dir") && e.contains("keep judge.heads_dir"),
            "{e}"
        );
    }

    #[test]
    fn a_config_is_written_back_as_a_table_that_reads_the_same() {
        for c in [
            JudgeConfig::default(),
            JudgeConfig::lm_guard("m.gguf"),
            JudgeConfig::Server {
                threshold: 0.4,
                url: "http://h:8000/v1".into(),
                model: "guard".into(),
                prompt: ServerPrompt::Wrapped,
            },
        ] {
            let text = toml::to_string(&c).unwrap();
            assert_eq!(toml::from_str::<JudgeConfig>(&text).unwrap(), c, "{text}");
        }
        // The default writes only the two keys every judge has.
        assert_eq!(
            toml::to_string(&JudgeConfig::default()).unwrap(),
            "kind = \"embedded\"\nthreshold = 0.5\n"
        );
    }

    #[test]
    fn checks_name_the_key() {
        let e = parse(r#"{"threshold":1.5}"#).unwrap_err();
        assert!(e.contains("`threshold`") && e.contains("1.5"), "{e}");
        let e = parse(r#"{"lm_guard_model":"m.gguf"}"#).unwrap_err();
        assert!(
            e.contains("lm_guard_model") && e.contains("embedded"),
            "{e}"
        );
        let e = parse(r#"{"lm_guard_device":"cuda:0"}"#).unwrap_err();
        assert!(
            e.contains("lm_guard_device") && e.contains("embedded"),
            "{e}"
        );
        let e = parse(r#"{"lm_guard_dtype":"bf16"}"#).unwrap_err();
        assert!(e.contains("lm_guard_dtype"), "{e}");
        let e = parse(r#"{"kind":"server"}"#).unwrap_err();
        assert!(e.contains("server_url") && e.contains("llama-guard"), "{e}");
        let c = parse(
            r#"{"kind":"server","server_url":"http://h:8000/v1","server_model":"guard","server_prompt":"llama-guard"}"#,
        )
        .unwrap();
        assert_eq!(c.name(), "server:guard");
        let e = parse(r#"{"server_model":"guard"}"#).unwrap_err();
        assert!(e.contains("server_model") && e.contains("embedded"), "{e}");
        let e = parse(r#"{"kind":"lm-guard","heads_dir":"h"}"#).unwrap_err();
        assert!(e.contains("heads_dir") && e.contains("lm-guard"), "{e}");
    }
}
