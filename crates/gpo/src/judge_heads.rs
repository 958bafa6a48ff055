//! The embedded judge's trained heads: `gpo judge train` writes them, and a command that
//! needs the cache's own heads trains them first when they are missing or of an older
//! format, saying so, with a progress line per stage. A judge never trains while loading.

use std::path::Path;

use anyhow::{Context, Result};
use gpo_assets::AssetCache;
use gpo_judge::{
    default_heads_dir, is_default_heads_dir, load_models, Heads, HeadsCard, JudgeConfig,
    StoredHeads, EMBED_DIM, HEADS_FORMAT,
};
use gpo_judge_train::{train_heads, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

/// Trains heads with `cfg` and writes them (with their card) to `out`.
pub fn train_into(cache: &AssetCache, cfg: &TrainConfig, out: &Path) -> Result<HeadsCard> {
    let (embedder, toxicity) = load_models(cache)?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} judge train [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    // Off a terminal the spinner is hidden, so each stage is one log line instead.
    let progress = |stage: &str| {
        if bar.is_hidden() {
            eprintln!("gpo judge train: {stage}");
        }
        bar.set_message(stage.to_string());
    };
    let trained = train_heads(&embedder, &toxicity, cache, cfg, &progress);
    bar.finish_and_clear();
    let (heads, card) = trained?;
    heads
        .save(&card, out)
        .with_context(|| format!("writing the judge heads to {}", out.display()))?;
    eprintln!("gpo judge train: wrote {}", out.display());
    Ok(card)
}

/// Makes sure the cache's own heads directory holds heads of this gpo's format, training
/// them (a few minutes, once per cache) when it does not.
pub fn ensure_default_heads(cache: &AssetCache) -> Result<()> {
    let dir = default_heads_dir(cache);
    let found = match Heads::load(&dir, EMBED_DIM).context("reading the judge heads")? {
        StoredHeads::Loaded(..) => return Ok(()),
        StoredHeads::Missing => "no trained heads".to_string(),
        StoredHeads::OtherFormat(f) => {
            format!("heads of format {f} (this gpo reads {HEADS_FORMAT})")
        }
    };
    eprintln!(
        "gpo: the embedded judge has {found} in {}; training them now (a few minutes, once; \
         `gpo judge train` does the same)",
        dir.display()
    );
    train_into(cache, &TrainConfig::default(), &dir).map(drop)
}

/// [`ensure_default_heads`] unless `judge` is the embedded judge with heads in a directory
/// the user named: every game and evaluation reads refusals with the embedded judge's
/// compliance head, from the cache's own heads whatever judge it plays with.
pub fn ensure_heads_for(judge: &JudgeConfig, cache: &AssetCache) -> Result<()> {
    let own_dir = judge
        .named_heads_dir()
        .is_some_and(|d| !is_default_heads_dir(cache, d));
    if own_dir {
        return Ok(());
    }
    ensure_default_heads(cache)
}
