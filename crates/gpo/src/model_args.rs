//! The `--model` option shared by commands that load a language model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use gpo_assets::{resolve_model, AssetCache, ModelSource};
use gpo_lm::{load_model, LoadOptions, LoadedModel};

/// Which model to load.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A .gguf file, a Hugging Face directory (config.json, *.safetensors, tokenizer.json) or
    /// an asset alias (fetched on first use).
    #[arg(long, default_value = "smollm2-135m-instruct")]
    pub model: String,
}

impl ModelArgs {
    /// Resolves the alias or path to a file or directory.
    pub fn path(&self) -> Result<PathBuf> {
        let cache = AssetCache::from_env().context("locating the asset cache")?;
        let source = resolve_model(&self.model, &cache)
            .with_context(|| format!("resolving --model {}", self.model))?;
        Ok(match source {
            ModelSource::Gguf(p) | ModelSource::HfDir(p) => p,
        })
    }

    /// Loads the model and its tokenizer.
    pub fn load(&self, opts: &LoadOptions) -> Result<LoadedModel> {
        let path = self.path()?;
        load_model(&path, opts).with_context(|| format!("loading model {}", path.display()))
    }
}
