//! The error type of `gpo-optim`.

use std::path::PathBuf;

/// Everything that can go wrong in an optimiser step or with its state files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An optimiser state file could not be read or written.
    #[error("{path}: {msg}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A hyper-parameter is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
