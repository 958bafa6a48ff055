//! The tokenizer type: encoding, decoding, special ids and the chat template.

use std::path::Path;

use crate::chat::{ChatMessage, ChatTemplate, SpecialTokens};
use crate::gguf_json::tokenizer_json;
use crate::gguf_spec::{GgufTokenizerSpec, ORIGIN};
use crate::hf_files::{chat_source, ChatSource, JsonFile};
use crate::{Error, Result};

/// A byte-level BPE (or any `tokenizer.json`) tokenizer with its special ids and chat template.
#[derive(Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos_ids: Vec<u32>,
    bos_id: Option<u32>,
    pad_id: Option<u32>,
    special: SpecialTokens,
    chat: Chat,
}

/// The chat template, compiled when the tokenizer is built. A template that does not compile
/// only fails [`Tokenizer::apply_chat_template`], as in transformers, so that the model still
/// loads for plain prompts.
#[derive(Debug)]
enum Chat {
    None,
    Ready {
        source: String,
        template: Box<ChatTemplate>,
    },
    Broken {
        source: Option<String>,
        error: Error,
    },
}

impl Chat {
    fn compile(found: Option<ChatSource>) -> Self {
        match found {
            None => Chat::None,
            Some(ChatSource::Unusable(error)) => Chat::Broken {
                source: None,
                error,
            },
            Some(ChatSource::Found { source, origin }) => {
                match ChatTemplate::new(&source, origin) {
                    Ok(template) => Chat::Ready {
                        source,
                        template: Box::new(template),
                    },
                    Err(error) => Chat::Broken {
                        source: Some(source),
                        error,
                    },
                }
            }
        }
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes: byte-level BPE over `tokens` and `merges`, the
    /// pre-split `pre` names, control and user-defined tokens matched whole in text.
    pub fn from_gguf_spec(spec: GgufTokenizerSpec) -> Result<Self> {
        let doc = tokenizer_json(&spec)?;
        let inner = crate::tokenizer_json::from_doc(&doc, &doc.to_string())
            .map_err(|e| Error::invalid(ORIGIN, format!("cannot build the tokenizer: {e}")))?;
        let special = SpecialTokens {
            bos: spec.token_of(spec.bos_id, "tokenizer.ggml.bos_token_id")?,
            eos: spec.token_of(spec.eos_id, "tokenizer.ggml.eos_token_id")?,
            unk: spec.token_of(spec.unk_id, "tokenizer.ggml.unknown_token_id")?,
            pad: spec.token_of(spec.pad_id, "tokenizer.ggml.padding_token_id")?,
        };
        let chat = Chat::compile(spec.chat_template.map(|source| ChatSource::Found {
            source,
            origin: format!("{ORIGIN} `tokenizer.chat_template`"),
        }));
        Ok(Tokenizer {
            inner,
            eos_ids: spec.eos_id.into_iter().collect(),
            bos_id: spec.bos_id,
            pad_id: spec.pad_id,
            special,
            chat,
        })
    }

    /// Reads a Hugging Face `tokenizer.json` (or the directory holding it). Special tokens and
    /// the chat template come from `tokenizer_config.json` and `chat_template.jinja` beside it,
    /// extra end-of-sequence ids from `generation_config.json`, when those are present.
    pub fn from_file(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        let inner = crate::tokenizer_json::parse(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = JsonFile::read_opt(&dir.join("tokenizer_config.json"))?;
        let generation = JsonFile::read_opt(&dir.join("generation_config.json"))?;

        let text_of = |key: &str| match &config {
            Some(c) => c.token_text(key),
            None => Ok(None),
        };
        let special = SpecialTokens {
            bos: text_of("bos_token")?,
            eos: text_of("eos_token")?,
            unk: text_of("unk_token")?,
            pad: text_of("pad_token")?,
        };
        let id_of = |text: &Option<String>, key: &str| -> Result<Option<u32>> {
            let Some(t) = text else { return Ok(None) };
            match inner.token_to_id(t) {
                Some(id) => Ok(Some(id)),
                None => Err(Error::invalid(
                    dir.join("tokenizer_config.json").display().to_string(),
                    format!("`{key}` {t:?} is not a token of {}", path.display()),
                )),
            }
        };
        let vocab = inner.get_vocab_size(true);
        let generation_ids = |key: &str| -> Result<Vec<u32>> {
            let Some(g) = &generation else {
                return Ok(Vec::new());
            };
            let ids = g.ids(key)?;
            match ids.iter().find(|&&id| id as usize >= vocab) {
                Some(id) => Err(Error::invalid(
                    g.path.display().to_string(),
                    format!("`{key}` {id} is past the vocabulary ({vocab} tokens)"),
                )),
                None => Ok(ids),
            }
        };
        let mut eos_ids: Vec<u32> = id_of(&special.eos, "eos_token")?.into_iter().collect();
        for id in generation_ids("eos_token_id")? {
            if !eos_ids.contains(&id) {
                eos_ids.push(id);
            }
        }
        let bos_id = match id_of(&special.bos, "bos_token")? {
            Some(id) => Some(id),
            None => generation_ids("bos_token_id")?.first().copied(),
        };
        let pad_id = match id_of(&special.pad, "pad_token")? {
            Some(id) => Some(id),
            None => generation_ids("pad_token_id")?.first().copied(),
        };
        let chat = Chat::compile(chat_source(dir, config.as_ref())?);
        Ok(Tokenizer {
            inner,
            eos_ids,
            bos_id,
            pad_id,
            special,
            chat,
        })
    }

    /// Replaces the chat template (Jinja source), e.g. with one given on the command line.
    pub fn with_chat_template(mut self, source: &str, origin: &str) -> Result<Self> {
        let template = ChatTemplate::new(source, origin)?;
        self.chat = Chat::Ready {
            source: source.to_string(),
            template: Box::new(template),
        };
        Ok(self)
    }

    /// Token ids of `text`. Special tokens written in the text (`<|im_end|>`) are recognised as
    /// single tokens; `add_special_tokens` applies the tokenizer's post-processor (BOS/EOS, or
    /// `[CLS]`/`[SEP]`, if it has any).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|source| Error::Tokenizers {
                action: "encode",
                source,
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// [`Tokenizer::encode`] for several texts.
    pub fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        let encs = self
            .inner
            .encode_batch(texts.to_vec(), add_special_tokens)
            .map_err(|source| Error::Tokenizers {
                action: "encode",
                source,
            })?;
        Ok(encs.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Text of `ids`; `skip_special_tokens` drops special tokens such as `<|im_end|>`.
    /// Ids past the vocabulary are skipped, as Hugging Face does.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|source| Error::Tokenizers {
                action: "decode",
                source,
            })
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token string (as the vocabulary spells it, e.g. `Ġthe`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// End-of-sequence ids (generation stops at any of them).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Beginning-of-sequence id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Padding id: the declared one, else the first end-of-sequence id.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id.or(self.eos_ids.first().copied())
    }

    /// The special-token strings chat templates see.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// The Jinja chat template source, if any.
    pub fn chat_template(&self) -> Option<&str> {
        match &self.chat {
            Chat::None => None,
            Chat::Ready { source, .. } => Some(source),
            Chat::Broken { source, .. } => source.as_deref(),
        }
    }

    /// Renders `messages` with the model's chat template, as transformers'
    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt=..)` does.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        match &self.chat {
            Chat::None => Err(Error::NoChatTemplate),
            Chat::Broken { error, .. } => Err(match error {
                Error::Template { origin, msg } => Error::Template {
                    origin: origin.clone(),
                    msg: msg.clone(),
                },
                other => Error::Template {
                    origin: "chat template".into(),
                    msg: other.to_string(),
                },
            }),
            Chat::Ready { template, .. } => {
                template.render(messages, add_generation_prompt, &self.special)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A four-token byte-level vocabulary: "a", "b", "ab" and the control token "<e>".
    fn tiny(chat_template: Option<&str>) -> Tokenizer {
        Tokenizer::from_gguf_spec(GgufTokenizerSpec {
            model: "gpt2".into(),
            pre: Some("gpt2".into()),
            tokens: vec!["<e>".into(), "a".into(), "b".into(), "ab".into()],
            merges: vec!["a b".into()],
            token_types: Some(vec![3, 1, 1, 1]),
            eos_id: Some(0),
            chat_template: chat_template.map(str::to_string),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn merges_and_control_tokens_apply() {
        let t = tiny(None);
        assert_eq!(t.encode("abab<e>a", false).unwrap(), [3, 3, 0, 1]);
        assert_eq!(t.decode(&[3, 0, 1], false).unwrap(), "ab<e>a");
        assert_eq!(t.decode(&[3, 0, 1], true).unwrap(), "aba");
        assert_eq!(
            t.encode_batch(&["ab", "b"], false).unwrap(),
            [vec![3], vec![2]]
        );
    }

    #[test]
    fn pad_falls_back_to_eos() {
        let t = tiny(None);
        assert_eq!(
            (t.eos_ids(), t.bos_id(), t.pad_id()),
            (&[0u32][..], None, Some(0))
        );
        assert_eq!(t.special_tokens().eos.as_deref(), Some("<e>"));
    }

    #[test]
    fn broken_template_fails_only_when_used() {
        let t = tiny(Some("{% for %}"));
        assert_eq!(t.chat_template(), Some("{% for %}"));
        let e = t
            .apply_chat_template(&[ChatMessage::user("x")], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("GGUF metadata `tokenizer.chat_template`"), "{e}");
    }

    #[test]
    fn eos_token_reaches_the_template() {
        let t = tiny(Some("{{ messages[0].content }}{{ eos_token }}"));
        let out = t
            .apply_chat_template(&[ChatMessage::user("x")], false)
            .unwrap();
        assert_eq!(out, "x<e>");
    }

    #[test]
    fn missing_template_is_a_clear_error() {
        let e = tiny(None)
            .apply_chat_template(&[ChatMessage::user("x")], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no chat template"), "{e}");
    }
}
