//! `gpo-eval`: the numbers a user judges a run by, each with a bootstrap 95% interval.
//!
//! - [`Bootstrap`]: percentile bootstrap of a mean (seeded ChaCha8, `B` resamples, default
//!   2000), or over explicit resample indices ([`Bootstrap::interval_from_indices`]) so
//!   that a reference implementation can be matched index for index;
//!   [`Bootstrap::cluster_interval`] resamples prompts with all their samples.
//! - [`Estimate`]: a mean with its interval; [`attack_success`], [`mean_p_unsafe`] and
//!   [`over_refusal`] build the three rates of a defender evaluation.
//! - [`ResponseStats`]: mean length, [`distinct_2`] and the [`explicit_refusal_rate`] of a set
//!   of responses.
//! - [`CrossPlay`]: the attacker-snapshot x defender-snapshot matrix of attack success
//!   rates (`RUN_DIR/crossplay.json`) and its [`Exploitability`].
//!
//! ```
//! use gpo_eval::{attack_success, Bootstrap};
//! # fn main() -> gpo_eval::Result<()> {
//! let p_unsafe = [0.9, 0.1, 0.2, 0.8, 0.05, 0.6];
//! // Three prompts, each answered twice (prompt-major).
//! let asr = attack_success(&p_unsafe, 0.5, 2, &Bootstrap::default())?;
//! assert_eq!(asr.n, 3);
//! assert!((asr.mean - 0.5).abs() < 1e-12);
//! assert!(asr.lo <= asr.mean && asr.mean <= asr.hi);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod bootstrap;
mod cluster;
mod crossplay;
mod rates;
mod responses;

pub use bootstrap::{percentile, Bootstrap, Estimate};
pub use crossplay::{write_atomic, CrossPlay, Exploitability, OutsideAttacker, CROSSPLAY_FORMAT};
pub use rates::{attack_success, mean_p_unsafe, over_refusal};
pub use responses::{
    distinct_2, explicit_refusal_rate, is_explicit_refusal, ResponseStats, EXPLICIT_REFUSALS,
    EXPLICIT_REFUSAL_OPENING,
};

/// Errors of evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statistic was asked of no values.
    #[error("{0}: no values to estimate from")]
    Empty(&'static str),
    /// A parameter is out of range; the message names it.
    #[error("invalid {name}: {message}")]
    Invalid {
        /// The parameter.
        name: &'static str,
        /// What is wrong and the fix.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
