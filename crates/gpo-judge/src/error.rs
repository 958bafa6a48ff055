//! The error type of `gpo-judge`.

use std::path::PathBuf;

/// Everything that can go wrong while building, running or training a judge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The language model behind the `lm-guard` judge failed to load or run.
    #[error(transparent)]
    Lm(#[from] gpo_lm::Error),
    /// Tokenizing or rendering a chat template failed.
    #[error(transparent)]
    Tokenizer(#[from] gpo_tokenizer::Error),
    /// Fetching or locating an asset failed.
    #[error(transparent)]
    Assets(#[from] gpo_assets::Error),
    /// The sentence embedder failed.
    #[error(transparent)]
    Embed(#[from] gpo_embed::Error),
    /// The toxicity model's Keras files could not be read.
    #[error(transparent)]
    Keras(#[from] gpo_keras::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file (weights, pickle, data set, heads) is malformed.
    #[error("{path}: {msg}")]
    BadFile {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("judge config: `{field}`: {msg}")]
    Config {
        /// The field at fault.
        field: &'static str,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// The `server` judge's server refused, failed or answered something unreadable.
    #[error("judge {0}")]
    Server(#[from] gpo_openai::Error),
    /// A caller passed an argument the judge cannot work with.
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
