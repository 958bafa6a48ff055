//! Turning a `--model` argument into a file or directory.

use std::path::PathBuf;

use crate::cache::AssetCache;
use crate::catalog::Asset;
use crate::{Error, Result};

/// Where a model's weights are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file.
    Gguf(PathBuf),
    /// A Hugging Face directory with `config.json`.
    HfDir(PathBuf),
}

/// Resolves `spec`: an existing `.gguf` file or model directory, or an asset alias (fetched on
/// first use).
pub fn resolve_model(spec: &str, cache: &AssetCache) -> Result<ModelSource> {
    let path = PathBuf::from(spec);
    if path.is_file() {
        return Ok(ModelSource::Gguf(path));
    }
    if path.is_dir() {
        return Ok(ModelSource::HfDir(path));
    }
    match Asset::from_alias(spec) {
        Some(asset @ Asset::Smollm2_135mInstruct) => Ok(ModelSource::Gguf(cache.fetch(asset)?)),
        Some(asset @ Asset::AllMiniLmL6V2) => Ok(ModelSource::HfDir(cache.fetch(asset)?)),
        Some(other) => Err(Error::NotAModel(other.alias().into())),
        None => Err(Error::UnknownModel {
            spec: spec.into(),
            aliases: Asset::aliases(),
        }),
    }
}
