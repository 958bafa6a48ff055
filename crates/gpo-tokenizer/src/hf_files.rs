//! The files beside a Hugging Face `tokenizer.json` that carry what it lacks: special tokens and
//! the chat template (`tokenizer_config.json`, `chat_template.jinja`) and extra end-of-sequence
//! ids (`generation_config.json`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// A JSON file that is read if present.
pub(crate) struct JsonFile {
    pub(crate) path: PathBuf,
    pub(crate) value: Value,
}

impl JsonFile {
    /// Reads `path`; `Ok(None)` when it does not exist.
    pub(crate) fn read_opt(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Io {
                    path: path.into(),
                    source: e,
                })
            }
        };
        let value = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(path.display().to_string(), format!("invalid JSON: {e}"))
        })?;
        Ok(Some(JsonFile {
            path: path.into(),
            value,
        }))
    }

    fn bad(&self, key: &str, what: impl std::fmt::Display) -> Error {
        Error::invalid(self.path.display().to_string(), format!("`{key}`: {what}"))
    }

    /// A special token's text: a string, or an AddedToken object with `content`; `null` is unset.
    pub(crate) fn token_text(&self, key: &str) -> Result<Option<String>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => match v.get("content").and_then(Value::as_str) {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(self.bad(key, "expected a string or an object with `content`")),
            },
        }
    }

    /// Token ids under `key`: one integer or a list of them.
    pub(crate) fn ids(&self, key: &str) -> Result<Vec<u32>> {
        let one = |v: &Value| {
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| self.bad(key, format!("expected token ids, found {v}")))
        };
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(list)) => list.iter().map(one).collect(),
            Some(v) => Ok(vec![one(v)?]),
        }
    }
}

/// Where a chat template was found, or why the one that was found cannot be used.
pub(crate) enum ChatSource {
    /// The template text and where it came from.
    Found { source: String, origin: String },
    /// A template exists but none can be chosen.
    Unusable(Error),
}

/// The chat template of a Hugging Face tokenizer directory, as transformers picks it:
/// `chat_template.jinja` first, then `chat_template` in `tokenizer_config.json` (a string, or a
/// list of `{name, template}` of which `default` is used).
pub(crate) fn chat_source(dir: &Path, config: Option<&JsonFile>) -> Result<Option<ChatSource>> {
    let jinja = dir.join("chat_template.jinja");
    match std::fs::read_to_string(&jinja) {
        Ok(source) => {
            return Ok(Some(ChatSource::Found {
                source,
                origin: jinja.display().to_string(),
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::Io {
                path: jinja,
                source: e,
            })
        }
    }
    let Some(config) = config else {
        return Ok(None);
    };
    let origin = format!("{} `chat_template`", config.path.display());
    Ok(match config.value.get("chat_template") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(ChatSource::Found {
            source: s.clone(),
            origin,
        }),
        Some(Value::Array(list)) => {
            let named = |t: &Value| -> Option<(String, String)> {
                Some((
                    t.get("name")?.as_str()?.to_string(),
                    t.get("template")?.as_str()?.to_string(),
                ))
            };
            let mut names = Vec::new();
            let mut default = None;
            for item in list {
                let Some((name, template)) = named(item) else {
                    return Err(config.bad(
                        "chat_template",
                        "expected a string or a list of {\"name\", \"template\"} objects",
                    ));
                };
                if name == "default" {
                    default = Some(template);
                }
                names.push(name);
            }
            Some(match default {
                Some(source) => ChatSource::Found {
                    source,
                    origin: format!("{origin} (\"default\")"),
                },
                None => ChatSource::Unusable(Error::Template {
                    origin,
                    msg: format!(
                        "the list of templates {names:?} has none named \"default\"; add one"
                    ),
                }),
            })
        }
        Some(_) => {
            return Err(config.bad(
                "chat_template",
                "expected a string or a list of {\"name\", \"template\"} objects",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(value: Value) -> JsonFile {
        JsonFile {
            path: "dir/tokenizer_config.json".into(),
            value,
        }
    }

    #[test]
    fn token_text_accepts_strings_and_added_token_objects() {
        let f = file(
            serde_json::json!({"eos_token": "</s>", "bos_token": {"content": "<s>"}, "pad_token": null}),
        );
        assert_eq!(f.token_text("eos_token").unwrap().as_deref(), Some("</s>"));
        assert_eq!(f.token_text("bos_token").unwrap().as_deref(), Some("<s>"));
        assert_eq!(f.token_text("pad_token").unwrap(), None);
        let e = file(serde_json::json!({"eos_token": 3}))
            .token_text("eos_token")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("dir/tokenizer_config.json: `eos_token`"),
            "{e}"
        );
    }

    #[test]
    fn ids_accept_one_or_a_list() {
        let f = file(serde_json::json!({"a": 7, "b": [1, 2], "c": "x"}));
        assert_eq!(f.ids("a").unwrap(), [7]);
        assert_eq!(f.ids("b").unwrap(), [1, 2]);
        assert!(f.ids("c").unwrap_err().to_string().contains("`c`"));
        assert!(f.ids("missing").unwrap().is_empty());
    }

    #[test]
    fn template_lists_use_default_or_say_why_not() {
        let dir = Path::new("/nonexistent-gpo-dir");
        let f = file(
            serde_json::json!({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}),
        );
        match chat_source(dir, Some(&f)).unwrap() {
            Some(ChatSource::Found { source, .. }) => assert_eq!(source, "D"),
            _ => panic!("expected the default template"),
        }
        let f = file(serde_json::json!({"chat_template": [{"name": "tool_use", "template": "T"}]}));
        match chat_source(dir, Some(&f)).unwrap() {
            Some(ChatSource::Unusable(e)) => {
                assert!(e.to_string().contains("none named \"default\""))
            }
            _ => panic!("expected an unusable template"),
        }
        let f = file(serde_json::json!({"chat_template": 5}));
        assert!(chat_source(dir, Some(&f)).is_err());
    }
}
