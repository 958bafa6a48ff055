//! `gpo-keras`: the file formats of a Keras model, read without Python.
//!
//! - [`hdf5`]: the subset of HDF5 that Keras 3 writes weights in (through h5py, default
//!   file format): symbol-table groups and contiguous or compact f32 datasets.
//! - [`pickle`]: a restricted unpickler for a pickled Keras `Tokenizer`; it never imports a
//!   global or runs code.
//!
//! Both refuse anything outside what they support with an [`Error`] naming the file, so a
//! file written differently fails loudly instead of being misread.
#![warn(missing_docs)]

pub mod hdf5;
pub mod pickle;

use std::path::PathBuf;

/// A file that cannot be read, or is not what the reader supports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is malformed or uses a feature the reader does not support.
    #[error("{path}: {msg}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
}

impl Error {
    fn bad(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
