//! The attacker's prompt history, scored incrementally.
//!
//! Lexical side: every word gets an id and every n-gram (orders 1..=5) of every entry is
//! indexed as n-gram -> postings (entry id, count). A new prompt is tokenized once; walking the
//! postings of its n-grams gives the clipped match counts against every entry that shares a
//! word with it, and NLTK's BLEU follows from those counts and the two lengths. Entries sharing
//! no word score 0 and cost nothing. Postings are in entry order, so evicting the oldest entry
//! pops the front of its postings. A word leaves the vocabulary, and its id is reused, once no
//! live entry contains it, so a bounded history's memory stays bounded.
//!
//! Semantic side: the embeddings are one row-major matrix; the sum of their unit vectors is kept
//! in fixed point, so that the mean cosine of a new prompt against all of them is one dot
//! product, and adding, evicting or reloading entries gives bit-identical sums whatever the order.

use std::collections::{HashMap, VecDeque};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bleu::{mean_bleu_2_to_5, MAX_ORDER};
use crate::cosine::{dot, unit};
use crate::words::words;
use crate::{Error, Result};

/// An n-gram of word ids (ids start at 1), zero-padded; order is implied by the padding.
type Ngram = [u32; MAX_ORDER];

/// Fixed-point scale of the unit-vector sum: 2^52 keeps ~1e-16 resolution per component and
/// room for 2^75 entries in an i128.
const FIXED_SCALE: f64 = (1u64 << 52) as f64;

#[derive(Debug, Clone, Copy)]
struct Posting {
    id: u64,
    count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Word {
    id: u32,
    /// Live entries containing the word.
    entries: u32,
}

#[derive(Debug, Clone)]
struct Entry {
    text: String,
    /// Word ids; its length is the reference length of BLEU.
    ids: Vec<u32>,
}

/// The paper's diversity penalties of one prompt against a history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiversityScore {
    /// SelfBLEU(x): mean over the history of the mean over n in {2..5} of BLEU_n(x, x').
    pub self_bleu: f64,
    /// Cos(x): mean cosine between x's embedding and each history embedding.
    pub embedding_similarity: f64,
}

/// A prompt's n-grams, tokenized once against a history's vocabulary.
struct Query {
    /// Number of words (the hypothesis length).
    len: usize,
    /// Distinct n-grams made only of words the history knows, with their counts. Others
    /// cannot match and only count in the length.
    ngrams: Vec<(Ngram, u32)>,
}

/// Sums over the history for one query, before dividing by the count.
struct Sums {
    bleu: f64,
    cos: f64,
    count: usize,
}

/// The prompts the attacker has written so far, with their embeddings, indexed so that scoring
/// a new prompt against all of them does not revisit any entry's text. Optionally bounded: past
/// `max_len` entries the oldest is dropped (FIFO).
///
/// Serializes (serde) to its texts, embeddings and settings; deserializing rebuilds the index,
/// and every later score is bit-identical to what the original would have given.
#[derive(Debug, Clone)]
pub struct History {
    dim: usize,
    max_len: Option<usize>,
    entries: VecDeque<Entry>,
    /// Id of `entries[0]`; ids grow by one per push and are never reused.
    first_id: u64,
    /// Word -> its id and the number of live entries that contain it.
    vocab: HashMap<String, Word>,
    /// Ids of words that left the vocabulary, reused before new ones.
    free_ids: Vec<u32>,
    index: HashMap<Ngram, VecDeque<Posting>>,
    /// Row-major embeddings; live rows start at row `matrix_start`.
    matrix: Vec<f32>,
    matrix_start: usize,
    /// Sum of the live rows' unit vectors in fixed point (exact, order-independent).
    unit_sum_fixed: Vec<i128>,
    /// `unit_sum_fixed` as f64, refreshed after every change.
    unit_sum: Vec<f64>,
}

impl History {
    /// An empty, unbounded history of `dim`-wide embeddings (`dim` 0: lexical only, the cosine
    /// term is then 0).
    pub fn new(dim: usize) -> Self {
        History {
            dim,
            max_len: None,
            entries: VecDeque::new(),
            first_id: 0,
            vocab: HashMap::new(),
            free_ids: Vec::new(),
            index: HashMap::new(),
            matrix: Vec::new(),
            matrix_start: 0,
            unit_sum_fixed: vec![0; dim],
            unit_sum: vec![0.0; dim],
        }
    }

    /// Keeps at most `max_len` entries, dropping the oldest first.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self.evict_to_bound();
        self
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The size bound, if any.
    pub fn max_len(&self) -> Option<usize> {
        self.max_len
    }

    /// Number of prompts held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no prompt is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The prompts held, oldest first.
    pub fn texts(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|e| e.text.as_str())
    }

    /// The embeddings held, row-major, oldest first: (`len()`, `dim()`).
    pub fn embeddings(&self) -> &[f32] {
        &self.matrix[self.matrix_start * self.dim..]
    }

    fn check_embedding(&self, embedding: &[f32]) -> Result<()> {
        if embedding.len() != self.dim {
            return Err(Error::Dimension {
                expected: self.dim,
                got: embedding.len(),
            });
        }
        if let Some((index, &value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NotFinite { index, value });
        }
        Ok(())
    }

    fn check_rows(&self, texts: usize, embeddings: &[f32]) -> Result<()> {
        if texts.checked_mul(self.dim) != Some(embeddings.len()) {
            return Err(Error::Count {
                texts,
                rows: embeddings.len().checked_div(self.dim).unwrap_or(0),
            });
        }
        Ok(())
    }

    fn rows<'a>(&self, embeddings: &'a [f32], n: usize) -> impl Iterator<Item = &'a [f32]> {
        let dim = self.dim;
        (0..n).map(move |i| &embeddings[i * dim..(i + 1) * dim])
    }

    /// Scores `text` against the whole history. An empty history gives zeros.
    pub fn score(&self, text: &str, embedding: &[f32]) -> Result<DiversityScore> {
        self.check_embedding(embedding)?;
        let sums = self.sums(&self.query(text), &unit(embedding), None);
        Ok(sums.mean())
    }

    /// Scores each text against the whole history (not against each other), in parallel.
    /// `embeddings` is row-major, one row per text.
    pub fn score_batch(&self, texts: &[&str], embeddings: &[f32]) -> Result<Vec<DiversityScore>> {
        self.check_rows(texts.len(), embeddings)?;
        let rows: Vec<&[f32]> = self.rows(embeddings, texts.len()).collect();
        Ok(texts
            .par_iter()
            .zip(rows)
            .map(|(t, e)| self.sums(&self.query(t), &unit(e), None).mean())
            .collect())
    }

    /// Adds one prompt (evicting the oldest if the bound is reached).
    pub fn push(&mut self, text: &str, embedding: &[f32]) -> Result<()> {
        self.check_embedding(embedding)?;
        let words = words(text);
        for w in distinct(&words) {
            match self.vocab.get_mut(w) {
                Some(word) => word.entries += 1,
                None => {
                    let id = self.free_ids.pop().unwrap_or(self.vocab.len() as u32 + 1);
                    self.vocab.insert(w.clone(), Word { id, entries: 1 });
                }
            }
        }
        let ids: Vec<u32> = words.iter().map(|w| self.vocab[w].id).collect();
        let id = self.first_id + self.entries.len() as u64;
        for (ngram, count) in ngram_counts(&ids) {
            self.index
                .entry(ngram)
                .or_default()
                .push_back(Posting { id, count });
        }
        self.matrix.extend_from_slice(embedding);
        for (s, u) in self.unit_sum_fixed.iter_mut().zip(unit(embedding)) {
            *s += to_fixed(u);
        }
        self.entries.push_back(Entry {
            text: text.to_string(),
            ids,
        });
        self.evict_to_bound();
        self.refresh_unit_sum();
        Ok(())
    }

    /// Adds prompts in order. `embeddings` is row-major, one row per text.
    pub fn extend(&mut self, texts: &[&str], embeddings: &[f32]) -> Result<()> {
        self.check_rows(texts.len(), embeddings)?;
        for (i, t) in texts.iter().enumerate() {
            self.push(t, &embeddings[i * self.dim..(i + 1) * self.dim])?;
        }
        Ok(())
    }

    /// The history growing as the attacker writes: each text is scored against the history
    /// plus the texts before it in this call, then added.
    pub fn score_then_push(
        &mut self,
        texts: &[&str],
        embeddings: &[f32],
    ) -> Result<Vec<DiversityScore>> {
        self.check_rows(texts.len(), embeddings)?;
        let mut out = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            let e = &embeddings[i * self.dim..(i + 1) * self.dim];
            out.push(self.score(t, e)?);
            self.push(t, e)?;
        }
        Ok(out)
    }

    /// Scores entry `i` (0 = oldest) against all the other entries.
    pub(crate) fn score_entry_against_rest(&self, i: usize) -> DiversityScore {
        let text = &self.entries[i].text;
        let row = &self.embeddings()[i * self.dim..(i + 1) * self.dim];
        self.sums(
            &self.query(text),
            &unit(row),
            Some(self.first_id + i as u64),
        )
        .mean()
    }

    fn evict_to_bound(&mut self) {
        let Some(max) = self.max_len else { return };
        let mut changed = false;
        while self.entries.len() > max {
            self.evict_oldest();
            changed = true;
        }
        if changed {
            self.refresh_unit_sum();
        }
    }

    fn evict_oldest(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        let id = self.first_id;
        self.first_id += 1;
        for (ngram, _) in ngram_counts(&entry.ids) {
            if let Some(postings) = self.index.get_mut(&ngram) {
                debug_assert_eq!(postings.front().map(|p| p.id), Some(id));
                postings.pop_front();
                if postings.is_empty() {
                    self.index.remove(&ngram);
                }
            }
        }
        for w in distinct(&words(&entry.text)) {
            if let Some(word) = self.vocab.get_mut(w) {
                word.entries -= 1;
                if word.entries == 0 {
                    self.free_ids.push(word.id);
                    self.vocab.remove(w);
                }
            }
        }
        let row = &self.matrix[self.matrix_start * self.dim..(self.matrix_start + 1) * self.dim];
        for (s, u) in self.unit_sum_fixed.iter_mut().zip(unit(row)) {
            *s -= to_fixed(u);
        }
        self.matrix_start += 1;
        // Compact once the dead rows outnumber the live ones: amortised O(dim) per eviction.
        if self.matrix_start > self.entries.len() {
            self.matrix.drain(..self.matrix_start * self.dim);
            self.matrix_start = 0;
        }
    }

    fn refresh_unit_sum(&mut self) {
        for (f, &s) in self.unit_sum.iter_mut().zip(&self.unit_sum_fixed) {
            *f = s as f64 / FIXED_SCALE;
        }
    }

    fn query(&self, text: &str) -> Query {
        let ids: Vec<Option<u32>> = words(text)
            .iter()
            .map(|w| self.vocab.get(w).map(|word| word.id))
            .collect();
        let mut counts: HashMap<Ngram, u32> = HashMap::new();
        for n in 1..=MAX_ORDER {
            for window in ids.windows(n) {
                let mut key = [0u32; MAX_ORDER];
                let mut known = true;
                for (k, id) in key.iter_mut().zip(window) {
                    match id {
                        Some(id) => *k = *id,
                        None => known = false,
                    }
                }
                if known {
                    *counts.entry(key).or_insert(0) += 1;
                }
            }
        }
        Query {
            len: ids.len(),
            ngrams: counts.into_iter().collect(),
        }
    }

    /// Walks the postings of the query's n-grams. `exclude`: an entry id to leave out.
    fn sums(&self, q: &Query, x_unit: &[f64], exclude: Option<u64>) -> Sums {
        let n_entries = self.entries.len();
        let mut matches = vec![[0u32; MAX_ORDER]; n_entries];
        let mut touched = Vec::new();
        for (ngram, hyp_count) in &q.ngrams {
            let Some(postings) = self.index.get(ngram) else {
                continue;
            };
            let order = ngram.iter().take_while(|&&w| w != 0).count();
            for p in postings {
                let slot = (p.id - self.first_id) as usize;
                let m = &mut matches[slot];
                if *m == [0; MAX_ORDER] {
                    touched.push(slot);
                }
                m[order - 1] += (*hyp_count).min(p.count);
            }
        }
        let excluded_slot = exclude.map(|id| (id - self.first_id) as usize);
        let bleu: f64 = touched
            .iter()
            .filter(|&&slot| Some(slot) != excluded_slot)
            .map(|&slot| mean_bleu_2_to_5(&matches[slot], q.len, self.entries[slot].ids.len()))
            // fold from +0.0: `sum` of nothing is -0.0, which would print as "-0.0".
            .fold(0.0, |a, b| a + b);
        let mut cos = dot(x_unit, &self.unit_sum);
        let mut count = n_entries;
        if let Some(slot) = excluded_slot {
            let row = &self.embeddings()[slot * self.dim..(slot + 1) * self.dim];
            cos -= dot(x_unit, &unit(row));
            count -= 1;
        }
        Sums { bleu, cos, count }
    }
}

impl Sums {
    fn mean(&self) -> DiversityScore {
        if self.count == 0 {
            return DiversityScore {
                self_bleu: 0.0,
                embedding_similarity: 0.0,
            };
        }
        DiversityScore {
            self_bleu: self.bleu / self.count as f64,
            // A mean of cosines lies in [-1, 1]; rounding in the running sum can step past.
            embedding_similarity: (self.cos / self.count as f64).clamp(-1.0, 1.0),
        }
    }
}

/// The distinct words of `words`, in first-seen order.
fn distinct(words: &[String]) -> Vec<&String> {
    let mut seen = std::collections::HashSet::new();
    words.iter().filter(|w| seen.insert(w.as_str())).collect()
}

fn to_fixed(u: f64) -> i128 {
    (u * FIXED_SCALE).round() as i128
}

/// Distinct n-grams of orders 1..=5 of a word-id sequence, with counts.
fn ngram_counts(ids: &[u32]) -> HashMap<Ngram, u32> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for window in ids.windows(n) {
            let mut key = [0u32; MAX_ORDER];
            key[..n].copy_from_slice(window);
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

/// What a checkpoint holds: settings, texts and embeddings. The index is rebuilt on load.
#[derive(Serialize)]
struct StateRef<'a> {
    dim: usize,
    max_len: Option<usize>,
    texts: Vec<&'a str>,
    embeddings: &'a [f32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    dim: usize,
    max_len: Option<usize>,
    texts: Vec<String>,
    embeddings: Vec<f32>,
}

impl Serialize for History {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        StateRef {
            dim: self.dim,
            max_len: self.max_len,
            texts: self.texts().collect(),
            embeddings: self.embeddings(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let state = State::deserialize(deserializer)?;
        History::try_from(state).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<State> for History {
    type Error = Error;

    fn try_from(state: State) -> Result<Self> {
        if state.texts.len().checked_mul(state.dim) != Some(state.embeddings.len()) {
            return Err(Error::InvalidState(format!(
                "{} texts need {} embedding values of width {}, found {}",
                state.texts.len(),
                state.texts.len().saturating_mul(state.dim),
                state.dim,
                state.embeddings.len()
            )));
        }
        if let Some(max) = state.max_len {
            if state.texts.len() > max {
                return Err(Error::InvalidState(format!(
                    "{} texts exceed max_len {max}",
                    state.texts.len()
                )));
            }
        }
        let mut h = History::new(state.dim);
        h.max_len = state.max_len;
        let texts: Vec<&str> = state.texts.iter().map(String::as_str).collect();
        h.extend(&texts, &state.embeddings)?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bleu::self_bleu;
    use crate::cosine::embedding_similarity;
    use std::collections::HashSet;

    /// The entry ids of every posting.
    fn posting_ids(h: &History) -> HashSet<u64> {
        h.index.values().flatten().map(|p| p.id).collect()
    }

    const TEXTS: [&str; 6] = [
        "How do I bake bread?",
        "how do i bake sourdough bread at home",
        "Tell me how to pick a lock.",
        "",
        "bread bread bread",
        "What is the capital of France?",
    ];

    fn emb(i: usize) -> Vec<f32> {
        // Arbitrary but fixed 3-d vectors, one of them zero.
        match i % 4 {
            0 => vec![1.0, 0.5, -0.25],
            1 => vec![0.0, 0.0, 0.0],
            2 => vec![-1.0, 2.0, 0.5],
            _ => vec![0.3, 0.3, 0.9],
        }
    }

    fn filled(texts: &[&str]) -> History {
        let mut h = History::new(3);
        for (i, t) in texts.iter().enumerate() {
            h.push(t, &emb(i)).unwrap();
        }
        h
    }

    #[test]
    fn incremental_scores_equal_the_direct_definitions() {
        let h = filled(&TEXTS);
        let rows: Vec<Vec<f32>> = (0..TEXTS.len()).map(emb).collect();
        for (k, x) in ["How do I bake bread at home?", "", "unseen words only"]
            .iter()
            .enumerate()
        {
            let e = emb(k + 2);
            let got = h.score(x, &e).unwrap();
            let want_bleu = self_bleu(x, &TEXTS);
            let want_cos = embedding_similarity(&e, rows.iter().map(Vec::as_slice)).unwrap();
            assert!((got.self_bleu - want_bleu).abs() < 1e-12, "{x:?}");
            assert!((got.embedding_similarity - want_cos).abs() < 1e-12, "{x:?}");
        }
    }

    #[test]
    fn no_shared_words_scores_positive_zero() {
        // Regression: an empty float `sum` is -0.0, which JSON printed as "-0.0".
        let h = filled(&TEXTS);
        let s = h.score("zebra xylophone", &emb(0)).unwrap();
        assert!(s.self_bleu == 0.0 && s.self_bleu.is_sign_positive());
    }

    #[test]
    fn empty_history_scores_zero() {
        let s = History::new(3).score("anything", &emb(0)).unwrap();
        assert_eq!((s.self_bleu, s.embedding_similarity), (0.0, 0.0));
    }

    #[test]
    fn bounded_history_drops_the_oldest_and_scores_like_a_fresh_one() {
        let mut bounded = History::new(3).with_max_len(3);
        for (i, t) in TEXTS.iter().enumerate() {
            bounded.push(t, &emb(i)).unwrap();
        }
        assert_eq!(bounded.len(), 3);
        assert_eq!(bounded.texts().collect::<Vec<_>>(), TEXTS[3..]);
        let mut fresh = History::new(3);
        for (i, t) in TEXTS.iter().enumerate().skip(3) {
            fresh.push(t, &emb(i)).unwrap();
        }
        assert_eq!(bounded.embeddings(), fresh.embeddings());
        // Fixed-point sums make the cosine term bit-identical, not just close.
        let (a, b) = (
            bounded.score("bake bread", &emb(0)).unwrap(),
            fresh.score("bake bread", &emb(0)).unwrap(),
        );
        assert_eq!(a, b);
        let ids = posting_ids(&bounded);
        assert!(ids.iter().all(|&id| id >= bounded.first_id), "{ids:?}");
    }

    #[test]
    fn a_bounded_history_forgets_the_words_of_evicted_entries() {
        let mut h = History::new(3).with_max_len(2);
        for (i, t) in ["alpha beta", "beta gamma", "gamma delta", "delta alpha"]
            .iter()
            .enumerate()
        {
            h.push(t, &emb(i)).unwrap();
        }
        // Live: "gamma delta", "delta alpha": beta left, alpha came back under a reused id.
        let mut live: Vec<&str> = h.vocab.keys().map(String::as_str).collect();
        live.sort_unstable();
        assert_eq!(live, ["alpha", "delta", "gamma"]);
        assert_eq!(h.vocab["delta"].entries, 2);
        assert_eq!(h.vocab["alpha"].id, 1, "the id alpha freed is reused");
        // Scores equal a fresh history's of the same live entries.
        let mut fresh = History::new(3);
        fresh.push("gamma delta", &emb(2)).unwrap();
        fresh.push("delta alpha", &emb(3)).unwrap();
        for q in ["alpha beta gamma delta", "beta", "delta alpha delta"] {
            assert_eq!(
                h.score(q, &emb(0)).unwrap(),
                fresh.score(q, &emb(0)).unwrap()
            );
        }
        // Many distinct words through a small bound: the vocabulary stays small.
        for i in 0..500 {
            h.push(&format!("w{i} x{i} y{i}"), &emb(i)).unwrap();
        }
        assert!(h.vocab.len() <= 6, "{}", h.vocab.len());
        // At most 6 live words plus the 3 a push adds before it evicts.
        assert!(h.vocab.values().all(|w| w.id <= 9), "{:?}", h.vocab);
    }

    #[test]
    fn a_non_finite_embedding_is_refused_and_changes_nothing() {
        let mut h = filled(&TEXTS[..2]);
        let e = h.push("new", &[0.0, f32::NAN, 1.0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "embedding value 1 is NaN, not a finite number"
        );
        assert_eq!(h.len(), 2);
        assert!(h.score("new", &[f32::INFINITY, 0.0, 0.0]).is_err());
    }

    #[test]
    fn max_len_zero_keeps_nothing() {
        let mut h = History::new(3).with_max_len(0);
        h.push("a b c", &emb(0)).unwrap();
        assert!(h.is_empty());
        assert!(h.index.is_empty());
    }

    #[test]
    fn score_batch_equals_one_by_one() {
        let h = filled(&TEXTS);
        let new = ["bake bread", "pick a lock now", ""];
        let flat: Vec<f32> = (0..3).flat_map(emb).collect();
        let batch = h.score_batch(&new, &flat).unwrap();
        for (i, t) in new.iter().enumerate() {
            assert_eq!(batch[i], h.score(t, &emb(i)).unwrap());
        }
    }

    #[test]
    fn score_then_push_sees_earlier_texts_of_the_same_call() {
        let mut h = History::new(3);
        let flat: Vec<f32> = (0..2).flat_map(|_| emb(0)).collect();
        let s = h
            .score_then_push(&["same words here", "same words here"], &flat)
            .unwrap();
        assert_eq!(s[0].self_bleu, 0.0);
        // A 3-word copy: BLEU_2 = 1, BLEU_3 = 1, BLEU_4 = (1*1*1*0.1)^(1/4), BLEU_5 = (0.1*0.1)^(1/5).
        let want = (1.0 + 1.0 + 0.1f64.powf(0.25) + 0.01f64.powf(0.2)) / 4.0;
        assert!((s[1].self_bleu - want).abs() < 1e-12, "{}", s[1].self_bleu);
        assert!((s[1].embedding_similarity - 1.0).abs() < 1e-12);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn wrong_widths_are_errors() {
        let mut h = History::new(3);
        assert_eq!(
            h.push("x", &[1.0]),
            Err(Error::Dimension {
                expected: 3,
                got: 1
            })
        );
        assert!(matches!(
            h.score_batch(&["a", "b"], &[0.0; 3]),
            Err(Error::Count { texts: 2, rows: 1 })
        ));
    }

    #[test]
    fn serde_round_trip_scores_identically() {
        let mut h = History::new(3).with_max_len(4);
        for (i, t) in TEXTS.iter().enumerate() {
            h.push(t, &emb(i)).unwrap();
        }
        let json = serde_json::to_string(&h).unwrap();
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max_len(), Some(4));
        for (k, x) in ["bake bread at home", "capital of france?", ""]
            .iter()
            .enumerate()
        {
            assert_eq!(
                back.score(x, &emb(k)).unwrap(),
                h.score(x, &emb(k)).unwrap()
            );
        }
    }

    #[test]
    fn inconsistent_state_is_rejected() {
        let bad = r#"{"dim":2,"max_len":null,"texts":["a"],"embeddings":[1.0]}"#;
        let err = serde_json::from_str::<History>(bad).unwrap_err();
        assert!(err.to_string().contains("embedding values"), "{err}");
        let over = r#"{"dim":0,"max_len":1,"texts":["a","b"],"embeddings":[]}"#;
        assert!(serde_json::from_str::<History>(over).is_err());
        // 2 x 2^63 wraps to 0 = the number of values given: an error, not a panic.
        let wraps =
            r#"{"dim":9223372036854775808,"max_len":null,"texts":["a","b"],"embeddings":[]}"#;
        let err = serde_json::from_str::<History>(wraps).unwrap_err();
        assert!(err.to_string().contains("embedding values"), "{err}");
    }
}
