//! `gpo judge train`: the embedded judge's heads, rebuilt deterministically from the fetched
//! data. HarmBench is only ever an evaluation set.

use std::time::Instant;

use gpo_assets::AssetCache;
use gpo_embed::SentenceEmbedder;
use gpo_judge::toxicity::ToxicityModel;
use gpo_judge::{Heads, HeadsCard, JudgeParts};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::card::{card, heldout_sizes, train_sizes, CardParts};
use crate::fit::{fit_heads, reply_texts, Reader};
use crate::sources::Sources;
use crate::{Result, TrainConfig};

/// Trains both heads from the fetched assets and measures them on held-out data.
/// `progress` hears one line per stage.
pub fn train_heads(
    embedder: &SentenceEmbedder,
    toxicity: &ToxicityModel,
    cache: &AssetCache,
    cfg: &TrainConfig,
    progress: &dyn Fn(&str),
) -> Result<(Heads, HeadsCard)> {
    let start = Instant::now();
    cfg.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let sources = Sources::gather(embedder, cache, cfg, &mut rng, progress)?;
    let replies = reply_texts(&sources, cfg);
    let reader = Reader {
        embedder,
        reading: cfg.reading,
    };
    let fitted = fit_heads(&reader, &sources, &replies, cfg, &mut rng, progress)?;
    let parts = JudgeParts {
        embedder,
        toxicity,
        heads: &fitted.heads,
        reading: cfg.reading,
    };
    let judged = crate::judged::measure(
        &parts,
        &reader,
        &sources.harmbench,
        &fitted.harmbench_features,
        &sources.benign_exchanges,
    )?;
    let card = card(CardParts {
        cfg,
        max_tokens: embedder.max_tokens(),
        train_sizes: train_sizes(&sources, &replies, cfg),
        heldout_sizes: heldout_sizes(&sources),
        fitted: &fitted,
        judged,
        train_seconds: start.elapsed().as_secs_f64(),
    });
    Ok((fitted.heads, card))
}
