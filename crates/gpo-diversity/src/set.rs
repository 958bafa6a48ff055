//! Diversity of a whole prompt set, the paper's evaluation metrics (docs/method.md).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bleu::pair_bleu;
use crate::cosine::{dot, unit};
use crate::history::{DiversityScore, History};
use crate::{Error, Result};

/// The paper's set metrics: mean pairwise similarities and 1 minus them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SetDiversity {
    /// Mean over prompts x of SelfBLEU(x, all other prompts).
    pub self_bleu: f64,
    /// Mean cosine over distinct pairs of prompts.
    pub embedding_similarity: f64,
    /// diversity_self_bleu = 1 - `self_bleu`.
    pub diversity_self_bleu: f64,
    /// diversity_embedding = 1 - `embedding_similarity`.
    pub diversity_embedding: f64,
}

/// Each prompt of a set scored against all the others (duplicates count as others), in
/// order: the per-item values whose means are the [`SetDiversity`] metrics. They are not
/// independent (each pair counts in two of them), so a bootstrap of the set metrics
/// resamples prompts over [`pair_scores`] instead. `embeddings` is row-major, `dim` values
/// per text (`dim` 0: lexical only). Needs at least two prompts. Prompts are scored in
/// parallel.
pub fn item_scores(texts: &[&str], embeddings: &[f32], dim: usize) -> Result<Vec<DiversityScore>> {
    if texts.len() < 2 {
        return Err(Error::TooFewPrompts(texts.len()));
    }
    let mut history = History::new(dim);
    history.extend(texts, embeddings)?;
    Ok((0..texts.len())
        .into_par_iter()
        .map(|i| history.score_entry_against_rest(i))
        .collect())
}

/// The similarities of every ordered pair of a prompt set, each row-major `n x n` with a 0
/// diagonal: the set metrics are their means over the pairs `i != j`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScores {
    /// Prompts in the set.
    pub n: usize,
    /// `(i, j)`: the mean over n in {2, 3, 4, 5} of BLEU_n(hyp = prompt i, ref = prompt j).
    pub self_bleu: Vec<f64>,
    /// `(i, j)`: cos(embedding i, embedding j) (0 everywhere when `dim` is 0).
    pub embedding_similarity: Vec<f64>,
}

/// Every ordered pair of a prompt set scored (see [`PairScores`]): what a bootstrap of the set
/// metrics needs to resample prompts rather than per-prompt scores. `embeddings` and `dim` as
/// in [`item_scores`]. Needs at least two prompts.
pub fn pair_scores(texts: &[&str], embeddings: &[f32], dim: usize) -> Result<PairScores> {
    let n = texts.len();
    if n < 2 {
        return Err(Error::TooFewPrompts(n));
    }
    if embeddings.len() != n * dim {
        return Err(Error::Count {
            texts: n,
            rows: embeddings.len().checked_div(dim).unwrap_or(0),
        });
    }
    let units: Vec<Vec<f64>> = (0..n)
        .map(|i| unit(&embeddings[i * dim..(i + 1) * dim]))
        .collect();
    let mut cos = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                cos[i * n + j] = dot(&units[i], &units[j]).clamp(-1.0, 1.0);
            }
        }
    }
    Ok(PairScores {
        n,
        self_bleu: pair_bleu(texts),
        embedding_similarity: cos,
    })
}

/// Scores a set of prompts against itself (see [`item_scores`]) and averages.
pub fn set_diversity(texts: &[&str], embeddings: &[f32], dim: usize) -> Result<SetDiversity> {
    let scores = item_scores(texts, embeddings, dim)?;
    let n = scores.len() as f64;
    let self_bleu = scores.iter().map(|s| s.self_bleu).sum::<f64>() / n;
    // mean over x of the mean over the others = the mean over ordered, hence distinct, pairs.
    let embedding_similarity = scores.iter().map(|s| s.embedding_similarity).sum::<f64>() / n;
    Ok(SetDiversity {
        self_bleu,
        embedding_similarity,
        diversity_self_bleu: 1.0 - self_bleu,
        diversity_embedding: 1.0 - embedding_similarity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bleu::self_bleu;
    use crate::cosine::cosine;

    #[test]
    fn matches_the_pairwise_definitions() {
        let texts = [
            "how do i bake bread",
            "how do i bake a cake",
            "pick a lock",
            "",
        ];
        let rows: [[f32; 2]; 4] = [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 1.0]];
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let got = set_diversity(&texts, &flat, 2).unwrap();
        let mut bleu = 0.0;
        let (mut cos, mut pairs) = (0.0, 0);
        for i in 0..texts.len() {
            let others: Vec<&str> = (0..texts.len())
                .filter(|&j| j != i)
                .map(|j| texts[j])
                .collect();
            bleu += self_bleu(texts[i], &others);
            for j in i + 1..texts.len() {
                cos += cosine(&rows[i], &rows[j]).unwrap();
                pairs += 1;
            }
        }
        let (bleu, cos) = (bleu / 4.0, cos / f64::from(pairs));
        // Item scores are each prompt against the others, in order; their means are the set's.
        let items = item_scores(&texts, &flat, 2).unwrap();
        let others: Vec<&str> = texts[1..].to_vec();
        assert!((items[0].self_bleu - self_bleu(texts[0], &others)).abs() < 1e-12);
        let mean = |f: fn(&DiversityScore) -> f64| items.iter().map(f).sum::<f64>() / 4.0;
        assert!((mean(|s| s.self_bleu) - bleu).abs() < 1e-12);
        assert!((mean(|s| s.embedding_similarity) - cos).abs() < 1e-12);
        assert!((got.self_bleu - bleu).abs() < 1e-12);
        assert!((got.embedding_similarity - cos).abs() < 1e-12);
        assert!((got.diversity_self_bleu - (1.0 - bleu)).abs() < 1e-12);
        assert!((got.diversity_embedding - (1.0 - cos)).abs() < 1e-12);
        // Every pair scored: rows average to the item scores, the whole to the set's.
        let pairs = pair_scores(&texts, &flat, 2).unwrap();
        let off_diagonal_mean = |m: &[f64]| m.iter().sum::<f64>() / 12.0;
        for (i, item) in items.iter().enumerate() {
            let row = &pairs.self_bleu[i * 4..(i + 1) * 4];
            assert_eq!(row[i], 0.0);
            assert!((row.iter().sum::<f64>() / 3.0 - item.self_bleu).abs() < 1e-12);
        }
        assert!((off_diagonal_mean(&pairs.self_bleu) - bleu).abs() < 1e-12);
        assert!((off_diagonal_mean(&pairs.embedding_similarity) - cos).abs() < 1e-12);
        assert!(
            (pairs.embedding_similarity[1] - cosine(&rows[0], &rows[1]).unwrap()).abs() < 1e-12
        );
    }

    #[test]
    fn one_prompt_is_too_few() {
        assert_eq!(set_diversity(&["a"], &[], 0), Err(Error::TooFewPrompts(1)));
        assert_eq!(pair_scores(&["a"], &[], 0), Err(Error::TooFewPrompts(1)));
    }
}
