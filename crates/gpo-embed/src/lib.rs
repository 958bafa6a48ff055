//! Sentence embeddings with all-MiniLM-L6-v2 on candle: the semantic half of gpo's diversity
//! reward and the features of the embedded judge.
//!
//! - [`SentenceEmbedder`] loads a sentence-transformers BERT model directory (`config.json`,
//!   `tokenizer.json`, `model.safetensors`) and turns texts into unit vectors: WordPiece
//!   tokens (cut at [`DEFAULT_MAX_TOKENS`]), the BERT encoder, mean pooling over the real tokens,
//!   L2 normalisation. It matches sentence-transformers to 1e-4.
//! - [`Pooling`] picks how token states become one vector: sentence-transformers' mean, or the
//!   mean of a text's first tokens ([`SentenceEmbedder::embed_pooled`] gives several poolings
//!   of one forward pass).
//! - [`Embeddings`] is the result: a row-major matrix plus how many inputs were truncated, so
//!   that a caller can warn once.
//! - [`BertModel`] and [`BertConfig`] are the encoder itself (inference only).
//!
//! ```
//! use candle_core::Device;
//! use gpo_assets::{Asset, AssetCache};
//! use gpo_embed::SentenceEmbedder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = AssetCache::from_env()?.fetch(Asset::AllMiniLmL6V2)?;
//! let embedder = SentenceEmbedder::load(&dir, &Device::Cpu)?;
//! let e = embedder.embed(&["How do I bake bread?", "Bread baking for beginners", ""])?;
//! assert_eq!((e.len(), e.dim()), (3, 384));
//! let cos: f32 = e.row(0).iter().zip(e.row(1)).map(|(a, b)| a * b).sum();
//! assert!(cos > 0.5, "related sentences are close: {cos}");
//! assert_eq!(e.truncated(), 0);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod attention;
mod bert;
mod config;
mod embedder;
mod error;
mod gelu;

pub use bert::{mean_pool_normalize, pool_normalize, BertModel, Pooling};
pub use config::BertConfig;
pub use embedder::{Embeddings, SentenceEmbedder, DEFAULT_MAX_TOKENS};
pub use error::{Error, Result};
