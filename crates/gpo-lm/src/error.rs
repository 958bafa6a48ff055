//! The error type of `gpo-lm`.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or training a language model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint file is malformed, truncated or inconsistent.
    #[error("{path}: {msg}")]
    BadCheckpoint {
        /// The file involved.
        path: PathBuf,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// The model's configuration is not supported.
    #[error("{path}: {msg}")]
    Unsupported {
        /// The file involved.
        path: PathBuf,
        /// What is unsupported.
        msg: String,
    },
    /// A tensor the architecture needs is missing from the checkpoint.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] gpo_tokenizer::Error),
    /// An argument given by the caller is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// JSON (de)serialisation failed.
    #[error("{path}: {source}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn bad(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadCheckpoint {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn unsupported(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
