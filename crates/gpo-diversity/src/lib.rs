//! Prompt diversity as the paper defines it (docs/method.md): the attacker's penalty for
//! repeating itself and the evaluation metrics of a prompt set.
//!
//! - [`words`]: lower-case, then `\w+|[^\w\s]` (Unicode).
//! - [`sentence_bleu`]: BLEU_n with uniform weights 1/n, the standard brevity penalty and NLTK's
//!   `method1` smoothing, equal to NLTK's `sentence_bleu` (to 1e-6 on a committed fixture).
//! - [`self_bleu`]: SelfBLEU(x, X) = mean over x' in X of mean over n in {2..5} of BLEU_n(x, x').
//! - [`cosine`], [`embedding_similarity`]: Cos(x, X) = mean cosine of x's embedding with X's.
//!   Embeddings are plain `&[f32]` rows from any embedder (gpo-embed's all-MiniLM-L6-v2 is the
//!   default elsewhere in gpo).
//! - [`History`]: the growing history of attacker prompts, scored incrementally (indexed
//!   n-gram counts, one embedding matrix and a running unit-vector sum), optionally bounded
//!   (FIFO), serde-serializable for checkpoints.
//! - [`set_diversity`]: diversity_self_bleu = 1 - mean SelfBLEU of each prompt against the
//!   others; diversity_embedding = 1 - mean pairwise cosine.
//!
//! ```
//! use gpo_diversity::{self_bleu, History};
//!
//! # fn main() -> Result<(), gpo_diversity::Error> {
//! // Two-dimensional "embeddings" for brevity; real ones come from gpo-embed.
//! let mut history = History::new(2).with_max_len(10_000);
//! history.push("How do I bake bread?", &[1.0, 0.0])?;
//! history.push("Tell me how to pick a lock.", &[0.0, 1.0])?;
//!
//! let s = history.score("How do I bake bread at home?", &[1.0, 1.0])?;
//! let direct = self_bleu(
//!     "How do I bake bread at home?",
//!     &["How do I bake bread?", "Tell me how to pick a lock."],
//! );
//! assert!((s.self_bleu - direct).abs() < 1e-12);
//! assert!((s.embedding_similarity - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod bleu;
mod cosine;
mod error;
mod history;
mod set;
mod words;

pub use bleu::{self_bleu, sentence_bleu, EPSILON, MAX_ORDER, SELF_BLEU_ORDERS};
pub use cosine::{cosine, embedding_similarity};
pub use error::{Error, Result};
pub use history::{DiversityScore, History};
pub use set::{item_scores, pair_scores, set_diversity, PairScores, SetDiversity};
pub use words::words;
