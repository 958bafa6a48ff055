//! Sentence BLEU exactly as NLTK's `sentence_bleu` computes it with one reference, uniform
//! weights and `SmoothingFunction().method1`, and the paper's self-BLEU built on it
//! (docs/method.md).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::words::words;

/// The n-gram orders self-BLEU averages over (the paper: n in {2, 3, 4, 5}).
pub const SELF_BLEU_ORDERS: [usize; 4] = [2, 3, 4, 5];

/// The highest n-gram order self-BLEU needs.
pub const MAX_ORDER: usize = 5;

/// NLTK `method1`'s epsilon: a zero match count becomes this in the precision's numerator.
pub const EPSILON: f64 = 0.1;

/// ln of NLTK's smoothed modified precision for one order: clipped matches over the
/// hypothesis' n-gram count (at least 1), with [`EPSILON`] in place of zero matches.
fn log_precision(matches: u32, hyp_len: usize, order: usize) -> f64 {
    let total = (hyp_len + 1).saturating_sub(order).max(1) as f64;
    if matches == 0 {
        (EPSILON / total).ln()
    } else {
        (f64::from(matches) / total).ln()
    }
}

/// NLTK's brevity penalty for a non-empty hypothesis: 1 when it is longer than the
/// reference, else exp(1 - r / h).
fn brevity_penalty(hyp_len: usize, ref_len: usize) -> f64 {
    if hyp_len > ref_len {
        1.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    }
}

/// BLEU_n from clipped match counts (`matches[i]` for order i + 1, `n = matches.len()`).
/// NLTK returns 0 outright when no unigram matches (that covers an empty hypothesis).
pub(crate) fn bleu_from_matches(matches: &[u32], hyp_len: usize, ref_len: usize) -> f64 {
    let n = matches.len();
    if n == 0 || matches[0] == 0 || hyp_len == 0 {
        return 0.0;
    }
    let w = 1.0 / n as f64;
    let s: f64 = matches
        .iter()
        .enumerate()
        .map(|(i, &m)| w * log_precision(m, hyp_len, i + 1))
        .sum();
    brevity_penalty(hyp_len, ref_len) * s.exp()
}

/// Mean over n in [`SELF_BLEU_ORDERS`] of BLEU_n, from clipped match counts for orders 1..=5.
pub(crate) fn mean_bleu_2_to_5(matches: &[u32; MAX_ORDER], hyp_len: usize, ref_len: usize) -> f64 {
    if matches[0] == 0 || hyp_len == 0 {
        return 0.0;
    }
    SELF_BLEU_ORDERS
        .iter()
        .map(|&n| bleu_from_matches(&matches[..n], hyp_len, ref_len))
        .sum::<f64>()
        / SELF_BLEU_ORDERS.len() as f64
}

/// Counts of every n-gram of `tokens` for orders 1..=`max_order`, keyed by the n-gram.
struct NgramCounts<'a> {
    by_order: Vec<HashMap<&'a [String], u32>>,
    len: usize,
}

impl<'a> NgramCounts<'a> {
    fn new(tokens: &'a [String], max_order: usize) -> Self {
        let by_order = (1..=max_order)
            .map(|n| {
                let mut counts = HashMap::new();
                for g in tokens.windows(n) {
                    *counts.entry(g).or_insert(0u32) += 1;
                }
                counts
            })
            .collect();
        NgramCounts {
            by_order,
            len: tokens.len(),
        }
    }

    /// Clipped matches of `self` (the hypothesis) against `reference`, per order.
    fn clipped_matches(&self, reference: &NgramCounts<'_>) -> Vec<u32> {
        self.by_order
            .iter()
            .zip(&reference.by_order)
            .map(|(hyp, refc)| {
                hyp.iter()
                    .map(|(g, &c)| c.min(refc.get(g).copied().unwrap_or(0)))
                    .sum()
            })
            .collect()
    }
}

/// BLEU_n(hyp, reference) over word lists: NLTK's `sentence_bleu([reference], hypothesis,
/// weights=(1/n,) * n, smoothing_function=SmoothingFunction().method1)`, edge cases included
/// (0 for an empty hypothesis or one with no unigram in common; a hypothesis shorter than n
/// gets the epsilon precision for the orders it has no n-grams of). `max_order` 0 gives 0.
pub fn sentence_bleu(hypothesis: &[String], reference: &[String], max_order: usize) -> f64 {
    let hyp = NgramCounts::new(hypothesis, max_order);
    let refc = NgramCounts::new(reference, max_order);
    bleu_from_matches(&hyp.clipped_matches(&refc), hyp.len, refc.len)
}

/// The self-BLEU term of every ordered pair of `texts`, row-major `n x n`: entry `(i, j)` is
/// the mean over n in {2, 3, 4, 5} of BLEU_n(hyp = `texts[i]`, ref = `texts[j]`), so row `i`'s
/// mean over `j != i` is [`self_bleu`] of `texts[i]` against the others. The diagonal is 0.
/// Rows are scored in parallel.
pub(crate) fn pair_bleu(texts: &[&str]) -> Vec<f64> {
    let words: Vec<Vec<String>> = texts.iter().map(|t| words(t)).collect();
    let counts: Vec<NgramCounts<'_>> = words
        .iter()
        .map(|w| NgramCounts::new(w, MAX_ORDER))
        .collect();
    let n = texts.len();
    (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let hyp = &counts[i];
            let counts = &counts;
            (0..n).map(move |j| {
                if i == j {
                    0.0
                } else {
                    pair_term(hyp, &counts[j])
                }
            })
        })
        .collect()
}

/// The paper's self-BLEU of `x` against the prompts `others`: the mean over `others` of the mean
/// over n in {2, 3, 4, 5} of BLEU_n(hyp = x, ref = x'), on [`words`]. An empty `others` gives 0
/// (nothing to repeat). This is the direct definition; [`crate::History`] computes the same
/// numbers incrementally.
pub fn self_bleu(x: &str, others: &[&str]) -> f64 {
    if others.is_empty() {
        return 0.0;
    }
    let hyp_words = words(x);
    let hyp = NgramCounts::new(&hyp_words, MAX_ORDER);
    let total: f64 = others
        .iter()
        .map(|o| {
            let ref_words = words(o);
            pair_term(&hyp, &NgramCounts::new(&ref_words, MAX_ORDER))
        })
        .fold(0.0, |a, b| a + b);
    total / others.len() as f64
}

/// One pair's self-BLEU term from the two texts' n-gram counts (orders 1..=5): the mean over
/// n in {2, 3, 4, 5} of BLEU_n(hyp, ref).
fn pair_term(hyp: &NgramCounts<'_>, refc: &NgramCounts<'_>) -> f64 {
    let m = hyp.clipped_matches(refc);
    let m: [u32; MAX_ORDER] = [m[0], m[1], m[2], m[3], m[4]];
    mean_bleu_2_to_5(&m, hyp.len, refc.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        words(s)
    }

    #[test]
    fn identical_long_sentences_score_one() {
        let a = w("the cat sat on the mat today");
        assert!((sentence_bleu(&a, &a, 4) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn empty_hypothesis_scores_zero() {
        assert_eq!(sentence_bleu(&[], &w("a b c"), 4), 0.0);
        assert_eq!(sentence_bleu(&w("a b c"), &[], 4), 0.0);
    }

    #[test]
    fn short_hypothesis_uses_epsilon_for_missing_orders() {
        // NLTK: sentence_bleu([["hi"]], ["hi"], weights=(0.5, 0.5),
        //   smoothing_function=SmoothingFunction().method1) = sqrt(1 * 0.1) = 0.31622776601683794
        let hi = w("hi");
        assert!((sentence_bleu(&hi, &hi, 2) - 0.1f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn brevity_penalty_applies_when_hypothesis_is_shorter() {
        // hyp "a b", ref "a b c d": p1 = 1, p2 = 1, bp = exp(1 - 4/2) = e^-1.
        let got = sentence_bleu(&w("a b"), &w("a b c d"), 2);
        assert!((got - (-1f64).exp()).abs() < 1e-15, "{got}");
    }

    #[test]
    fn self_bleu_of_nothing_is_zero() {
        assert_eq!(self_bleu("anything", &[]), 0.0);
    }
}
