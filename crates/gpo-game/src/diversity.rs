//! The attacker's diversity penalty (docs/method.md): self-BLEU and embedding
//! similarity of each new prompt against every prompt the attacker wrote before.

use gpo_assets::{Asset, AssetCache};
use gpo_diversity::History;
use gpo_embed::SentenceEmbedder;

use crate::{Error, Result};

/// The embedder and the growing history.
pub struct Diversity {
    embedder: SentenceEmbedder,
    /// Every attacker prompt so far (bounded when configured).
    pub history: History,
}

fn err(what: &str) -> impl FnOnce(gpo_embed::Error) -> Error + '_ {
    move |source| Error::Embedder {
        context: what.into(),
        source,
    }
}

impl Diversity {
    /// Loads all-MiniLM-L6-v2 (fetched on first use); `max` bounds the history (0 = no bound).
    pub fn load(cache: &AssetCache, max: usize) -> Result<Self> {
        let dir = cache
            .fetch(Asset::AllMiniLmL6V2)
            .map_err(|source| Error::Fetch {
                context: "the sentence embedder cannot be fetched".into(),
                source,
            })?;
        let embedder = SentenceEmbedder::load(&dir, &candle_core::Device::Cpu)
            .map_err(err("the sentence embedder cannot load"))?;
        let mut history = History::new(embedder.dim());
        if max > 0 {
            history = history.with_max_len(max);
        }
        Ok(Diversity { embedder, history })
    }

    /// Embeddings of `texts`, row-major.
    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let e = self.embedder.embed(texts).map_err(err("embedding"))?;
        if e.truncated() > 0 {
            tracing::debug!(
                texts = e.truncated(),
                "prompts truncated to the embedder's limit"
            );
        }
        Ok(e.into_vec())
    }

    /// `(self_bleu, embedding_similarity)` of each text against the history as it was
    /// before this batch (a batch's prompts are not compared with each other); then the
    /// texts join the history.
    pub fn score_and_add(&mut self, texts: &[String]) -> Result<Vec<(f32, f32)>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let emb = self.embed(&refs)?;
        let scores = self
            .history
            .score_batch(&refs, &emb)
            .map_err(Error::Diversity)?;
        self.history.extend(&refs, &emb).map_err(Error::Diversity)?;
        Ok(scores
            .into_iter()
            .map(|s| (s.self_bleu as f32, s.embedding_similarity as f32))
            .collect())
    }

    /// The paper's evaluation metrics of a prompt set: `(diversity_self_bleu,
    /// diversity_embedding)` = 1 - mean pairwise similarity (`(1, 1)` for fewer than two).
    pub fn set_diversity(&self, texts: &[String]) -> Result<(f32, f32)> {
        if texts.len() < 2 {
            return Ok((1.0, 1.0));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let emb = self.embed(&refs)?;
        let s = gpo_diversity::set_diversity(&refs, &emb, self.embedder.dim())
            .map_err(Error::Diversity)?;
        Ok((s.diversity_self_bleu as f32, s.diversity_embedding as f32))
    }

    /// Per ordered pair of a set's prompts, row-major `n x n`, `(1 - self-BLEU term,
    /// 1 - cosine)`: the values whose means over pairs `i != j` are
    /// [`Diversity::set_diversity`], for a bootstrap that resamples prompts
    /// ([`gpo_eval::Bootstrap::pair_interval`]). Needs at least two prompts.
    pub fn pair_diversity(&self, texts: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let emb = self.embed(&refs)?;
        let pairs = gpo_diversity::pair_scores(&refs, &emb, self.embedder.dim())
            .map_err(Error::Diversity)?;
        let diversity = |m: Vec<f64>| m.into_iter().map(|s| 1.0 - s).collect();
        Ok((
            diversity(pairs.self_bleu),
            diversity(pairs.embedding_similarity),
        ))
    }
}
