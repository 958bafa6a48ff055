//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong loading or running the embedder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not a BERT configuration this crate can run.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `tokenizer.json` could not be loaded or could not encode a text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A [`crate::Pooling`] the model cannot give (a layer it does not have).
    #[error("pooling: {0}")]
    Pooling(String),
    /// A tensor operation failed (also: a missing or misshapen weight).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
