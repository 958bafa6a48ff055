//! `gpo-tokenizer`: tokenizers for the models gpo loads, and their chat templates.
//!
//! - [`Tokenizer`] encodes and decodes text and knows the model's special ids.
//!   [`Tokenizer::from_gguf_spec`] builds a byte-level BPE from a GGUF header
//!   ([`GgufTokenizerSpec`]) with the pre-tokenizer the file names (`smollm`: single digits,
//!   then GPT-2's split; `gpt2`; `llama-bpe`; `qwen2`), control and user-defined tokens matched
//!   whole in text as Hugging Face does. [`Tokenizer::from_file`] reads a Hugging Face
//!   `tokenizer.json` with the `tokenizer_config.json`, `chat_template.jinja` and
//!   `generation_config.json` beside it.
//! - [`ChatTemplate`] renders [`ChatMessage`]s with the model's own Jinja template through
//!   minijinja, set up as transformers sets up jinja2 ([`Tokenizer::apply_chat_template`]).
//! - [`Error`] names the file, metadata key or template at fault.
//!
//! ```
//! use gpo_tokenizer::{ChatMessage, GgufTokenizerSpec, Tokenizer};
//! let tok = Tokenizer::from_gguf_spec(GgufTokenizerSpec {
//!     model: "gpt2".into(),
//!     tokens: vec!["<|end|>".into(), "h".into(), "i".into(), "hi".into()],
//!     merges: vec!["h i".into()],
//!     token_types: Some(vec![3, 1, 1, 1]),
//!     eos_id: Some(0),
//!     chat_template: Some("{% for m in messages %}{{ m.content + eos_token }}{% endfor %}".into()),
//!     ..Default::default()
//! })?;
//! let prompt = tok.apply_chat_template(&[ChatMessage::user("hi")], true)?;
//! assert_eq!(prompt, "hi<|end|>");
//! assert_eq!(tok.encode(&prompt, false)?, [3, 0]);
//! assert_eq!(tok.decode(&[3, 0], true)?, "hi");
//! # Ok::<(), gpo_tokenizer::Error>(())
//! ```
#![warn(missing_docs)]

mod chat;
mod error;
mod fuel;
mod gguf_json;
mod gguf_spec;
mod hf_files;
mod pyjson;
mod pyrepr;
mod strftime;
mod tokenizer;
mod tokenizer_json;

pub use chat::{ChatMessage, ChatTemplate, SpecialTokens};
pub use error::{Error, Result};
pub use gguf_spec::GgufTokenizerSpec;
pub use tokenizer::Tokenizer;
