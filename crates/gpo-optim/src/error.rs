//! The error type of `gpo-optim`.

use std::path::PathBuf;

/// Everything that can go wrong in an optimiser step or with its state files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An optimiser state file could not be read or written.
    #[error("cannot {action} optimiser state {path}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An optimiser state file is not valid safetensors.
    #[error("{path} is not a readable safetensors file (truncated or not optimiser state?)")]
    Format {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Saved state does not fit this optimiser's parameters (`origin` is the file, or
    /// `state dict` for in-memory state).
    #[error("{origin}: {msg}")]
    StateMismatch {
        /// Where the state came from.
        origin: String,
        /// What does not fit, and how to fix it.
        msg: String,
    },
    /// A hyper-parameter or argument is out of range; the message names it.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
