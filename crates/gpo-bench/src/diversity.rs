//! The attacker's diversity penalty at training scale: a batch of new prompts scored against a
//! long history (gpo-diversity), plus embedding the batch (gpo-embed) when a model is given.

use std::time::Instant;

use gpo_diversity::History;
use gpo_embed::SentenceEmbedder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{median, Result, BENCH_QUESTIONS};

/// Timings of [`bench_diversity`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiversityBench {
    /// Prompts in the history.
    pub history: usize,
    /// New prompts scored per batch.
    pub batch: usize,
    /// Median seconds to score the batch against the history (self-BLEU and cosine).
    pub score_s: f64,
    /// Median seconds to embed `batch` short real prompts (the sampling benchmark's questions,
    /// numbered), when an embedder was given.
    pub embed_s: Option<f64>,
    /// Seconds to build the history (push every prompt), once.
    pub build_s: f64,
}

/// Synthetic prompts: 8..=40 words drawn from a Zipf(1) vocabulary of 5,000 words, so that
/// common words occur in most prompts as in real text (the costly case for the n-gram index).
pub fn synthetic_prompts(n: usize, seed: u64) -> Vec<String> {
    const VOCAB: usize = 5000;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cdf: Vec<f64> = (1..=VOCAB)
        .scan(0.0, |acc, r| {
            *acc += 1.0 / r as f64;
            Some(*acc)
        })
        .collect();
    let total = cdf[VOCAB - 1];
    (0..n)
        .map(|_| {
            let len = rng.random_range(8..=40);
            let words: Vec<String> = (0..len)
                .map(|_| {
                    let u = rng.random::<f64>() * total;
                    let r = cdf.partition_point(|&c| c < u);
                    format!("w{r}")
                })
                .collect();
            words.join(" ") + "?"
        })
        .collect()
}

/// Builds a `history`-prompt history (random unit embeddings of width `dim`: scoring cost does
/// not depend on their values) and times scoring `batch` new prompts against it, median of
/// `reps`; with an embedder, also times embedding the batch.
pub fn bench_diversity(
    history: usize,
    batch: usize,
    dim: usize,
    embedder: Option<&SentenceEmbedder>,
    reps: usize,
) -> Result<DiversityBench> {
    let reps = reps.max(1);
    let old = synthetic_prompts(history, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut random_rows =
        |n: usize| -> Vec<f32> { (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect() };
    let t = Instant::now();
    let mut h = History::new(dim);
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    h.extend(&old_refs, &random_rows(history))?;
    let build_s = t.elapsed().as_secs_f64();
    let new = synthetic_prompts(batch, 3);
    let new_refs: Vec<&str> = new.iter().map(String::as_str).collect();
    let new_rows = random_rows(batch);
    h.score_batch(&new_refs, &new_rows)?;
    let mut score = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        h.score_batch(&new_refs, &new_rows)?;
        score.push(t.elapsed().as_secs_f64());
    }
    let embed_s = match embedder {
        None => None,
        Some(e) => {
            // Synthetic words split into many WordPieces; embed realistic prompts instead.
            let texts: Vec<String> = (0..batch)
                .map(|i| {
                    format!(
                        "{} (variant {i})",
                        BENCH_QUESTIONS[i % BENCH_QUESTIONS.len()]
                    )
                })
                .collect();
            let new_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            e.embed(&new_refs)?;
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps {
                let t = Instant::now();
                e.embed(&new_refs)?;
                times.push(t.elapsed().as_secs_f64());
            }
            Some(median(times))
        }
    };
    Ok(DiversityBench {
        history,
        batch,
        score_s: median(score),
        embed_s,
        build_s,
    })
}
