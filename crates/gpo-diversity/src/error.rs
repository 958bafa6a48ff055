//! The crate's error type.

/// What can go wrong scoring diversity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An embedding's length differs from the width the history (or the first row) has.
    #[error("embedding has {got} values, expected {expected}")]
    Dimension {
        /// The expected width.
        expected: usize,
        /// The width given.
        got: usize,
    },
    /// An embedding holds a NaN or infinite value.
    #[error("embedding value {index} is {value}, not a finite number")]
    NotFinite {
        /// Position of the value in the embedding.
        index: usize,
        /// The value.
        value: f32,
    },
    /// Texts and embedding rows do not pair up.
    #[error("{texts} texts but {rows} embedding rows")]
    Count {
        /// Number of texts.
        texts: usize,
        /// Number of embedding rows.
        rows: usize,
    },
    /// A set metric needs at least two prompts to have a pair.
    #[error("set diversity needs at least 2 prompts, got {0}")]
    TooFewPrompts(usize),
    /// A deserialized history is inconsistent.
    #[error("invalid history state: {0}")]
    InvalidState(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
