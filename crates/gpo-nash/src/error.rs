//! The error type of `gpo-nash`.

/// Everything that can go wrong building a game, parsing a game file or running the dynamics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The table has no rows, or its first row has no entries.
    #[error("{what} is empty: give at least one row with at least one entry")]
    Empty {
        /// Which table (`payoff` or `reward`).
        what: &'static str,
    },
    /// Rows of different lengths.
    #[error("{what} row {row} has {len} entries but row 0 has {expected}: all rows must have the same length")]
    Ragged {
        /// Which table.
        what: &'static str,
        /// The first row whose length differs from row 0.
        row: usize,
        /// Its length.
        len: usize,
        /// The length of row 0.
        expected: usize,
    },
    /// An entry that is NaN or infinite.
    #[error("{what}[{row}][{col}] is {value}: entries must be finite numbers")]
    NonFinite {
        /// Which table.
        what: &'static str,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The entry.
        value: f64,
    },
    /// A strategy whose length does not match the game.
    #[error("{name} has {len} entries but the game has {expected} actions for it")]
    Dimension {
        /// Which strategy.
        name: &'static str,
        /// Its length.
        len: usize,
        /// The number of actions.
        expected: usize,
    },
    /// A strategy that is not a probability distribution.
    #[error("{name} is not a probability distribution: {why}")]
    NotDistribution {
        /// Which strategy.
        name: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A hyper-parameter out of range; the message names it and the valid range.
    #[error("{0}")]
    Invalid(String),
    /// A game file that is not the expected JSON object.
    #[error("not a {expected} game file: {source}")]
    Json {
        /// The expected shape, e.g. `{"payoff": [[...]]}`.
        expected: &'static str,
        /// The parser's error (it gives the line and column).
        source: serde_json::Error,
    },
    /// The simplex method did not reach an optimum within its pivot budget.
    #[error("the simplex solver did not finish within {0} pivots")]
    Simplex(usize),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
