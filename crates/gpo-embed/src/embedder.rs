//! The sentence embedder: tokenizer + BERT + mean pooling + L2 normalisation.

use std::path::Path;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{
    PaddingParams, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::bert::{pool_normalize, BertModel, Pooling};
use crate::config::BertConfig;
use crate::{Error, Result};

/// all-MiniLM-L6-v2's `max_seq_length` (sentence_bert_config.json): longer inputs are cut to this
/// many tokens, `[CLS]` and `[SEP]` included.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Tokens per forward pass (sequences are packed without padding): bounds the activations,
/// (tokens, 1536) f32 in the feed-forward layer, to 25 MB.
const TOKENS_PER_BATCH: usize = 4096;

/// Embeddings of a batch of texts: a row-major (rows, dim) matrix of unit vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    data: Vec<f32>,
    dim: usize,
    truncated: usize,
}

impl Embeddings {
    /// Width of each embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of embeddings (one per input text).
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no embeddings.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// How many of the input texts were longer than the token limit and were cut.
    pub fn truncated(&self) -> usize {
        self.truncated
    }

    /// The embedding of text `i`. Panics if `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The embeddings in input order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        // chunks_exact panics on a zero chunk size; a zero-width matrix has no rows anyway.
        self.data.chunks_exact(self.dim.max(1))
    }

    /// The whole matrix, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The whole matrix, row-major, by value.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// One `Vec` per text.
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        self.rows().map(<[f32]>::to_vec).collect()
    }
}

/// A sentence-transformers mean-pooling embedder (all-MiniLM-L6-v2 and other BERT models saved
/// the same way), inference only.
#[derive(Debug)]
pub struct SentenceEmbedder {
    tokenizer: Tokenizer,
    model: BertModel,
    device: Device,
    dim: usize,
    max_tokens: usize,
    /// Rows of the position table: the most tokens the model can read.
    max_positions: usize,
}

impl SentenceEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (the directory
    /// `gpo_assets::AssetCache::fetch(Asset::AllMiniLmL6V2)` returns). The token limit is
    /// [`DEFAULT_MAX_TOKENS`] (capped at the model's position table).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let cfg = BertConfig::from_file(&dir.join("config.json"))?;
        let tok_path = dir.join("tokenizer.json");
        let text = std::fs::read_to_string(&tok_path).map_err(|source| Error::Io {
            path: tok_path.clone(),
            source,
        })?;
        let tokenizer = Tokenizer::from_str(&text).map_err(|e| {
            Error::Tokenizer(format!(
                "{}: not a valid tokenizer.json: {e}",
                tok_path.display()
            ))
        })?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::Io {
                path: weights,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        // SAFETY: the file is memory-mapped read-only; gpo never writes into its asset cache
        // while a model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device)? };
        let model = BertModel::new(&cfg, vb)?;
        let mut embedder = SentenceEmbedder {
            tokenizer,
            model,
            device: device.clone(),
            dim: cfg.hidden_size,
            max_tokens: DEFAULT_MAX_TOKENS.min(cfg.max_position_embeddings),
            max_positions: cfg.max_position_embeddings,
        };
        embedder.configure_tokenizer()?;
        Ok(embedder)
    }

    /// Sets the token limit (`[CLS]` and `[SEP]` included); capped at the position table.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Result<Self> {
        self.max_tokens = max_tokens.clamp(2, self.max_positions.max(2));
        self.configure_tokenizer()?;
        Ok(self)
    }

    /// The tokenizer.json of all-MiniLM-L6-v2 pads and truncates to 128; sentence-transformers
    /// overrides both (no padding in the tokenizer, truncation at `max_seq_length`).
    fn configure_tokenizer(&mut self) -> Result<()> {
        self.tokenizer.with_padding(None::<PaddingParams>);
        self.tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: self.max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(format!("cannot set truncation: {e}")))?;
        Ok(())
    }

    /// Width of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The token limit: longer texts are cut to this many tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The token ids the model sees for `text`: `[CLS]`, WordPiece ids, `[SEP]`, cut to
    /// [`Self::max_tokens`].
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("cannot encode: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Embeds `texts`, one unit-length row per text, in input order. Empty strings are valid
    /// (their embedding is that of `[CLS] [SEP]`). Texts run packed end to end, with no
    /// padding, in forward passes of at most 4,096 tokens.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        let mut out = self.embed_pooled(texts, &[Pooling::Mean])?;
        Ok(out.remove(0))
    }

    /// As [`Self::embed`], pooling the same forward pass each way in `poolings`: one
    /// [`Embeddings`] per pooling, in that order.
    pub fn embed_pooled(&self, texts: &[&str], poolings: &[Pooling]) -> Result<Vec<Embeddings>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(format!("cannot encode: {e}")))?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut out: Vec<Embeddings> = poolings
            .iter()
            .map(|_| Embeddings {
                data: Vec::with_capacity(texts.len() * self.dim),
                dim: self.dim,
                truncated,
            })
            .collect();
        // Each layer that some pooling reads is run once and copied off the device once.
        let last = self.model.num_layers();
        let mut layers: Vec<usize> = poolings.iter().map(|p| p.layer(last)).collect();
        layers.sort_unstable();
        layers.dedup();
        for batch in token_batches(&ids, TOKENS_PER_BATCH) {
            let lens: Vec<usize> = batch.iter().map(|s| s.len()).collect();
            let ids = Tensor::from_vec(batch.concat(), lens.iter().sum::<usize>(), &self.device)?;
            let states = self
                .model
                .forward_layers(&ids, &lens, &layers)?
                .into_iter()
                .map(|h| h.flatten_all()?.to_vec1::<f32>())
                .collect::<candle_core::Result<Vec<_>>>()?;
            for (e, &pooling) in out.iter_mut().zip(poolings) {
                let hidden = &states[layers.binary_search(&pooling.layer(last)).expect("listed")];
                e.data
                    .extend(pool_normalize(hidden, &lens, self.dim, pooling));
            }
        }
        Ok(out)
    }
}

/// Splits `seqs` into runs of consecutive sequences of at most `budget` tokens in all (a run
/// always holds at least one sequence).
fn token_batches<'a, 'b>(seqs: &'b [&'a [u32]], budget: usize) -> Vec<&'b [&'a [u32]]> {
    let mut batches = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, s) in seqs.iter().enumerate() {
        if i > start && tokens + s.len() > budget {
            batches.push(&seqs[start..i]);
            (start, tokens) = (i, 0);
        }
        tokens += s.len();
    }
    if start < seqs.len() {
        batches.push(&seqs[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_batches_keep_order_and_budget() {
        let lens = [5usize, 1, 9, 3, 20, 2, 7];
        let seqs: Vec<Vec<u32>> = lens.iter().map(|&n| vec![0; n]).collect();
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let batches = token_batches(&refs, 12);
        let got: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(|s| s.len()).collect())
            .collect();
        // In order; a sequence over the budget (20) runs alone.
        assert_eq!(got, vec![vec![5, 1], vec![9, 3], vec![20], vec![2, 7]]);
        assert!(token_batches(&[], 12).is_empty());
    }

    #[test]
    fn embeddings_rows_follow_dim() {
        let e = Embeddings {
            data: vec![1., 2., 3., 4., 5., 6.],
            dim: 3,
            truncated: 0,
        };
        assert_eq!(e.len(), 2);
        assert_eq!(e.row(1), &[4., 5., 6.]);
        assert_eq!(e.to_rows(), vec![vec![1., 2., 3.], vec![4., 5., 6.]]);
    }
}
