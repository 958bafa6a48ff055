//! The `--model` option shared by commands that load a language model, and `--adapter` for
//! those that can run it with a LoRA adapter applied.

use std::path::PathBuf;

use anyhow::{Context, Result};
use gpo_assets::AssetCache;
use gpo_lm::{DeviceSpec, LoadOptions, LoadedModel, Precision};

/// Which model to load.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A .gguf file, a Hugging Face directory (config.json, *.safetensors, tokenizer.json), an
    /// asset alias (fetched on first use), or a LoRA adapter directory (its recorded base
    /// with the adapter merged in, e.g. the output of `gpo sft`).
    #[arg(long, default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Where the model runs: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// The dtype the model computes in: f32, or bf16 / f16 (on a GPU: everything in that
    /// dtype; on the CPU, bf16 multiplies the frozen weights in bf16 where the CPU has
    /// AVX512-BF16 and keeps the rest f32; f16 is slow there).
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
}

impl ModelArgs {
    /// Loads the model and its tokenizer onto `--device` in `--dtype` (whatever `opts` says).
    /// A LoRA adapter directory loads as its base with the adapter merged
    /// ([`gpo_game::load_base`]).
    pub fn load(&self, opts: &LoadOptions) -> Result<LoadedModel> {
        let cache = AssetCache::from_env().context("locating the asset cache")?;
        let opts = LoadOptions {
            device: self.device.open().context("--device")?,
            dtype: self.dtype.dtype(),
            ..opts.clone()
        };
        gpo_game::load_base(&self.model, &cache, &opts)
            .with_context(|| format!("loading --model {}", self.model))
    }
}

/// A LoRA adapter to apply on the loaded model.
#[derive(Debug, Clone, clap::Args)]
pub struct AdapterArgs {
    /// A LoRA adapter directory in PEFT's layout (adapter_config.json +
    /// adapter_model.safetensors, e.g. a run's policy or one PEFT wrote), applied on --model.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
}

impl AdapterArgs {
    /// Applies the adapter, when one was given, to `lm`'s model.
    pub fn apply(&self, lm: &mut LoadedModel) -> Result<()> {
        if let Some(dir) = &self.adapter {
            gpo_lm::load_lora(&mut lm.model, dir)
                .with_context(|| format!("loading --adapter {}", dir.display()))?;
        }
        Ok(())
    }
}
