//! The tokenizer type: encoding, decoding, special ids and the chat template.

use std::path::Path;
use std::str::FromStr;

use crate::chat::{ChatMessage, ChatTemplate};
use crate::gguf_spec::{tokenizer_json, GgufTokenizerSpec};
use crate::{Error, Result};

/// A byte-level BPE (or any `tokenizer.json`) tokenizer with its special ids and chat template.
#[derive(Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos_ids: Vec<u32>,
    bos_id: Option<u32>,
    pad_id: Option<u32>,
    chat_source: Option<String>,
    chat: Option<ChatTemplate>,
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes.
    pub fn from_gguf_spec(spec: GgufTokenizerSpec) -> Result<Self> {
        let doc = tokenizer_json(&spec)?;
        let inner = tokenizers::Tokenizer::from_str(&doc.to_string()).map_err(|e| {
            Error::invalid("GGUF metadata", format!("cannot build the tokenizer: {e}"))
        })?;
        let eos_ids: Vec<u32> = spec.eos_id.into_iter().collect();
        Self::assemble(inner, eos_ids, spec.bos_id, spec.pad_id, spec.chat_template)
    }

    /// Reads `tokenizer.json`; the chat template and special tokens come from
    /// `tokenizer_config.json` beside it, and extra end-of-sequence ids from
    /// `generation_config.json`, when present.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.into(),
            source: e,
        })?;
        let inner = tokenizers::Tokenizer::from_str(&text).map_err(|e| {
            Error::invalid(
                path.display().to_string(),
                format!("not a valid tokenizer.json: {e}"),
            )
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = read_json_opt(&dir.join("tokenizer_config.json"))?;
        let token_id = |key: &str| -> Option<u32> {
            let v = config.as_ref()?.get(key)?;
            let s = v
                .as_str()
                .or_else(|| v.get("content").and_then(|c| c.as_str()))?;
            inner.token_to_id(s)
        };
        let mut eos_ids: Vec<u32> = token_id("eos_token").into_iter().collect();
        let bos_id = token_id("bos_token");
        let pad_id = token_id("pad_token");
        if let Some(gen) = read_json_opt(&dir.join("generation_config.json"))? {
            let ids = match gen.get("eos_token_id") {
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).collect(),
                Some(v) => v.as_u64().into_iter().collect(),
                None => Vec::new(),
            };
            for id in ids {
                if !eos_ids.contains(&(id as u32)) {
                    eos_ids.push(id as u32);
                }
            }
        }
        let chat = match config.as_ref().and_then(|c| c.get("chat_template")) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            // A list of named templates: take "default".
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or(list.first())
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
                .map(str::to_string),
            _ => None,
        };
        Self::assemble(inner, eos_ids, bos_id, pad_id, chat)
    }

    fn assemble(
        inner: tokenizers::Tokenizer,
        eos_ids: Vec<u32>,
        bos_id: Option<u32>,
        pad_id: Option<u32>,
        chat_source: Option<String>,
    ) -> Result<Self> {
        let chat = chat_source.as_deref().map(ChatTemplate::new).transpose()?;
        Ok(Tokenizer {
            inner,
            eos_ids,
            bos_id,
            pad_id,
            chat_source,
            chat,
        })
    }

    /// Token ids of `text`. Special tokens written in the text are recognised;
    /// `add_special_tokens` applies the tokenizer's post-processor (BOS/EOS, if it has any).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizers(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// [`Tokenizer::encode`] for several texts.
    pub fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| self.encode(t, add_special_tokens))
            .collect()
    }

    /// Text of `ids`; `skip_special_tokens` drops control tokens such as `<|im_end|>`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizers(e.to_string()))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token string.
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

    /// The Jinja chat template source, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_source.as_deref()
    }

    /// Renders `messages` with the model's chat template (Hugging Face's
    /// `apply_chat_template(..., tokenize=False)`).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let chat = self.chat.as_ref().ok_or(Error::NoChatTemplate)?;
        let name = |id: Option<u32>| {
            id.and_then(|i| self.inner.id_to_token(i))
                .unwrap_or_default()
        };
        chat.render(
            messages,
            add_generation_prompt,
            &name(self.bos_id),
            &name(self.eos_ids.first().copied()),
        )
    }
}

fn read_json_opt(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.into(),
        source: e,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::invalid(path.display().to_string(), format!("invalid JSON: {e}")))
}
