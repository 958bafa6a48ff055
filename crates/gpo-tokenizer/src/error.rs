//! The error type of `gpo-tokenizer`.

use std::path::PathBuf;

/// Everything that can go wrong while building a tokenizer, encoding or rendering a chat.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A tokenizer file or GGUF tokenizer description is malformed or unsupported.
    #[error("{origin}: {msg}")]
    Invalid {
        /// The file or metadata key at fault.
        origin: String,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// The `tokenizers` library failed while encoding or decoding.
    #[error("tokenizer: {0}")]
    Tokenizers(String),
    /// The model has no chat template.
    #[error("this model has no chat template; pass a plain prompt (without --chat) or use a checkpoint whose tokenizer_config.json or GGUF metadata has `chat_template`")]
    NoChatTemplate,
    /// The chat template failed to parse or render.
    #[error("chat template: {0}")]
    Template(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(origin: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            origin: origin.into(),
            msg: msg.into(),
        }
    }
}
