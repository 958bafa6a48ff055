//! The error type of `gpo-judge-train`.

use std::path::PathBuf;

/// Everything that can go wrong while training or measuring the heads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading or running a part of the judge failed.
    #[error(transparent)]
    Judge(#[from] gpo_judge::Error),
    /// A fetched data set could not be read.
    #[error(transparent)]
    Datasets(#[from] gpo_datasets::Error),
    /// The sentence embedder failed.
    #[error(transparent)]
    Embed(#[from] gpo_embed::Error),
    /// Fetching or locating an asset failed.
    #[error(transparent)]
    Assets(#[from] gpo_assets::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A data file is malformed.
    #[error("{path}: {msg}")]
    BadFile {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A training setting is out of range.
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
