//! `gpo-tokenizer`: tokenizers for the models gpo loads, and their chat templates.
//!
//! - [`Tokenizer::from_gguf_spec`] builds a byte-level BPE from a GGUF header
//!   ([`GgufTokenizerSpec`]), with the pre-tokenizer the file names (`smollm`: single digits,
//!   then GPT-2's split) and control tokens recognised in text as Hugging Face does.
//! - [`Tokenizer::from_file`] reads a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`).
//! - [`Tokenizer::apply_chat_template`] renders [`ChatMessage`]s with the model's own Jinja
//!   template through minijinja.
//!
//! ```
//! use gpo_tokenizer::{ChatTemplate, ChatMessage};
//! let t = ChatTemplate::new("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}").unwrap();
//! assert_eq!(t.render(&[ChatMessage::user("hi")], false, "", "").unwrap(), "<user>hi");
//! ```
#![warn(missing_docs)]

mod chat;
mod error;
mod gguf_spec;
mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate};
pub use error::{Error, Result};
pub use gguf_spec::GgufTokenizerSpec;
pub use tokenizer::Tokenizer;
