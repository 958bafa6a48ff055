//! Loading a player's base model by name: an asset alias, a `.gguf` file, a Hugging Face
//! directory, or a LoRA adapter directory, which stands for the model it records
//! (`base_model_name_or_path`) with the adapter merged into its weights. The last is how a
//! warm start ([`crate::warm_start`]: `gpo sft`, or a run's `[defender.warm_start]`) becomes
//! a game's initial defender and KL reference, and how the adapters a game then saves (which
//! record the warm start's directory as their base) load back on the right model.

use std::path::Path;

use gpo_assets::{resolve_model, AssetCache, ModelSource};
use gpo_lm::{LoadOptions, LoadedModel};

use crate::{Error, Result};

/// Adapters on adapters this deep are refused (a loop of adapters naming each other ends here).
const MAX_ADAPTER_DEPTH: usize = 4;

/// Loads the model `name` with `opts` (see the module docs).
pub fn load_base(name: &str, cache: &AssetCache, opts: &LoadOptions) -> Result<LoadedModel> {
    load_at_depth(name, cache, opts, 0)
}

fn load_at_depth(
    name: &str,
    cache: &AssetCache,
    opts: &LoadOptions,
    depth: usize,
) -> Result<LoadedModel> {
    let setup = |e: String| Error::Setup(format!("model `{name}`: {e}"));
    let dir = Path::new(name);
    if dir.join("adapter_config.json").is_file() {
        if opts.trainable != gpo_lm::Trainable::Frozen {
            return Err(setup(
                "an adapter directory loads as a frozen base (its adapter merged); name its \
                 base model for full fine-tuning"
                    .into(),
            ));
        }
        if depth >= MAX_ADAPTER_DEPTH {
            return Err(setup(format!(
                "adapters name each other as base more than {MAX_ADAPTER_DEPTH} deep"
            )));
        }
        let base = gpo_lm::adapter_base_model(dir)?.ok_or_else(|| {
            setup(
                "its adapter_config.json names no base_model_name_or_path, so the model it \
                 adapts is unknown"
                    .into(),
            )
        })?;
        let mut lm = load_at_depth(&base, cache, opts, depth + 1)?;
        gpo_lm::load_lora(&mut lm.model, dir)?;
        gpo_lm::merge_lora(&mut lm.model)?;
        return Ok(lm);
    }
    let context = || format!("model `{name}`");
    let path = match resolve_model(name, cache).map_err(|source| Error::Fetch {
        context: context(),
        source,
    })? {
        ModelSource::Gguf(p) | ModelSource::HfDir(p) => p,
    };
    gpo_lm::load_model(&path, opts).map_err(|source| Error::Model {
        context: context(),
        source,
    })
}
