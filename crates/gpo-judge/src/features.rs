//! What the two heads read. The harm head reads a prompt's sentence embedding side by side
//! with the mean of its token states after a middle layer of the encoder. The compliance
//! head reads a reply's opening (its first characters) twice over, side by side: the opening's
//! sentence embedding, and the mean of its first few word pieces' states after a middle layer
//! of the encoder. A reply
//! says whether it will help in its first words ("No.", "Nope, not from me", "Here's how"),
//! and a mean over the whole opening blurs them with the topic that refusals and answers share;
//! the second half keeps them apart. A middle layer's states generalise better than the last
//! one's, from ChatGPT's refusals (the training data) to other styles and from the harmful
//! training requests to HarmBench's (BENCHMARKS.md, heads formats 4 and 5). Everything comes
//! from one forward pass.

use gpo_embed::{Pooling, SentenceEmbedder};
use serde::{Deserialize, Serialize};

use crate::reply::opening;
use crate::Result;

/// What the heads read of a prompt and of a reply: set in [`crate::TrainConfig`], recorded in
/// the [`crate::HeadsCard`] (as four top-level fields) and read back from it when judging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The encoder layer whose mean state over a prompt the harm head also reads.
    pub prompt_layer: usize,
    /// Characters of a reply's opening that the compliance head reads (in training and when
    /// judging).
    pub reply_opening_chars: usize,
    /// Word pieces after `[CLS]` whose mean state the compliance head also reads.
    pub reply_opening_tokens: usize,
    /// The encoder layer those states come from (0 = embeddings, 6 = last hidden states).
    pub reply_opening_layer: usize,
}

/// Width of either head's input for an embedder of `dim` dimensions: two pooled vectors.
pub fn width(dim: usize) -> usize {
    2 * dim
}

/// The features of a batch: prompts and replies, rows of [`width`] each.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Prompt embeddings, row-major.
    pub prompts: Vec<f32>,
    /// Reply features, row-major.
    pub replies: Vec<f32>,
    /// Inputs cut at the embedder's token limit.
    pub truncated: usize,
}

/// Embeds `prompts` and `replies` in one forward pass (see the module doc).
pub fn features(
    embedder: &SentenceEmbedder,
    prompts: &[&str],
    replies: &[&str],
    reading: Reading,
) -> Result<Features> {
    let mut texts = prompts.to_vec();
    texts.extend(
        replies
            .iter()
            .map(|r| opening(r, reading.reply_opening_chars)),
    );
    let poolings = [
        Pooling::Mean,
        Pooling::LayerMean {
            layer: reading.prompt_layer,
        },
        Pooling::Opening {
            tokens: reading.reply_opening_tokens,
            layer: reading.reply_opening_layer,
        },
    ];
    let out = embedder.embed_pooled(&texts, &poolings)?;
    let (mean, layer_mean, first) = (out[0].as_slice(), out[1].as_slice(), out[2].as_slice());
    let d = embedder.dim();
    let split = prompts.len() * d;
    Ok(Features {
        prompts: side_by_side(&mean[..split], &layer_mean[..split], d),
        replies: side_by_side(&mean[split..], &first[split..], d),
        truncated: out[0].truncated(),
    })
}

/// Rows of `a` and `b` (both `dim` wide) joined: row i is `a[i]` then `b[i]`.
pub fn side_by_side(a: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
    a.chunks_exact(dim)
        .zip(b.chunks_exact(dim))
        .flat_map(|(x, y)| x.iter().chain(y).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_joined_in_order() {
        let a = [1f32, 2., 3., 4.];
        let b = [5f32, 6., 7., 8.];
        assert_eq!(side_by_side(&a, &b, 2), [1., 2., 5., 6., 3., 4., 7., 8.]);
        assert!(side_by_side(&[], &[], 2).is_empty());
    }
}
