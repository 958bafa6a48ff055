//! `gpo-report`: what a user judges a run by, as one self-contained HTML file (inline SVG,
//! no script, no network) and the same numbers as JSON.
//!
//! - [`Report`]: read from a run directory ([`Report::load`]): training curves of both
//!   players from `metrics.jsonl` (reward, P(unsafe) and attack success, KL, diversity),
//!   attack success over the evaluations of `eval.jsonl`, the cross-play matrix of
//!   `crossplay.json` when there is one, and sample exchanges from `samples.jsonl`.
//! - [`BeforeAfter`]: the first evaluation against the last: the defender's attack success
//!   and over-refusal with intervals, its answers' length and distinct-2, what changed
//!   (paired by prompt), and each held-out seed's and benign prompt's two answers side by
//!   side, so that a better rate bought with degenerate answers shows.
//! - [`Report::html`] renders the page, [`Report::json`] the numbers; [`Report::write`]
//!   writes both atomically.
//! - [`Plot`] / [`Series`]: one chart's data; [`svg::line_chart`] and [`svg::heat_map`] draw
//!   them with plain string building; [`plots_in`] reads the plots of a rendered page back.
//!
//! ```no_run
//! use gpo_report::Report;
//! # fn main() -> gpo_report::Result<()> {
//! let report = Report::load("runs/demo".as_ref())?;
//! report.write("runs/demo/report.html".as_ref(), "runs/demo/report.json".as_ref())?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod data;
mod html;
mod inspect;
pub mod svg;

pub use data::{BeforeAfter, FromBase, Plot, Report, Series, PLOT_IDS};
pub use inspect::{plots_in, PlotSummary};
pub use svg::escape;

use std::path::PathBuf;

/// Errors of the report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of a JSONL log is malformed.
    #[error("{path}:{line}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
    /// `crossplay.json` or writing the outputs failed.
    #[error(transparent)]
    Eval(#[from] gpo_eval::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
