//! The error type of `gpo-tokenizer`.

use std::path::PathBuf;

/// Everything that can go wrong while building a tokenizer, encoding or rendering a chat.
///
/// Every variant names the file, metadata key or template at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
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
    #[error("tokenizer: {action}: {source}")]
    Tokenizers {
        /// What was being done (`encode`, `decode`).
        action: &'static str,
        /// The cause.
        source: tokenizers::Error,
    },
    /// The model has no chat template.
    #[error("this model has no chat template: use a plain prompt, or a checkpoint whose GGUF metadata (`tokenizer.chat_template`) or tokenizer_config.json (`chat_template`) has one")]
    NoChatTemplate,
    /// The chat template failed to parse or render.
    #[error("chat template ({origin}): {msg}")]
    Template {
        /// Where the template came from (file and field, or GGUF key).
        origin: String,
        /// What went wrong, as the template engine reports it.
        msg: String,
    },
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
