//! The BERT encoder (inference only): embeddings, then post-norm self-attention layers, run
//! on packed sequences (see [`crate::attention`]).
//!
//! Weight names follow Hugging Face `BertModel` without the `bert.` prefix, as
//! sentence-transformers saves them (`embeddings.word_embeddings.weight`,
//! `encoder.layer.{i}.attention.self.query.weight`, ...). The pooler is not loaded.

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use crate::attention::self_attention;
use crate::config::BertConfig;
use crate::Result;

/// LayerNorm with its affine parameters, run by candle's fused kernel.
#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Norm {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            xs,
            &self.weight,
            &self.bias,
            self.eps,
        )?)
    }
}

fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Ok(Linear::new(weight, Some(bias)))
}

/// Word + position + token-type embeddings, then LayerNorm.
#[derive(Debug, Clone)]
struct Embeddings {
    word: Embedding,
    position: Tensor,
    token_type_0: Tensor,
    norm: Norm,
}

impl Embeddings {
    fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let word = vb.get((cfg.vocab_size, h), "word_embeddings.weight")?;
        let position = vb.get(
            (cfg.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        // Single-sentence inputs only ever use segment 0.
        let token_type = vb.get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?;
        Ok(Embeddings {
            word: Embedding::new(word, h),
            position,
            token_type_0: token_type.get(0)?,
            norm: Norm::new(h, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// `ids` and `positions`: (tokens,) u32 -> (tokens, hidden).
    fn forward(&self, ids: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let xs = self
            .word
            .forward(ids)?
            .add(&self.position.index_select(positions, 0)?)?
            .broadcast_add(&self.token_type_0)?;
        self.norm.forward(&xs)
    }
}

/// One encoder layer: self-attention and feed-forward, each followed by residual + LayerNorm.
#[derive(Debug, Clone)]
struct Layer {
    /// Query, key and value projections stacked into one (3 * hidden, hidden) matrix.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: Norm,
    heads: usize,
    head_dim: usize,
}

impl Layer {
    fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let attn = vb.pp("attention");
        let sa = attn.pp("self");
        let (q, k, v) = (
            linear(h, h, sa.pp("query"))?,
            linear(h, h, sa.pp("key"))?,
            linear(h, h, sa.pp("value"))?,
        );
        let weight = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
        let bias = match (q.bias(), k.bias(), v.bias()) {
            (Some(a), Some(b), Some(c)) => Some(Tensor::cat(&[a, b, c], 0)?),
            _ => None,
        };
        Ok(Layer {
            qkv: Linear::new(weight, bias),
            attn_out: linear(h, h, attn.pp("output.dense"))?,
            attn_norm: Norm::new(h, cfg.layer_norm_eps, attn.pp("output.LayerNorm"))?,
            ffn_in: linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            ffn_out: linear(cfg.intermediate_size, h, vb.pp("output.dense"))?,
            ffn_norm: Norm::new(h, cfg.layer_norm_eps, vb.pp("output.LayerNorm"))?,
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `xs`: (tokens, hidden), sequences of `lens` tokens packed end to end -> the same shape.
    fn forward(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let ctx = self_attention(&self.qkv.forward(xs)?, lens, self.heads, self.head_dim)?;
        let xs = self
            .attn_norm
            .forward(&(self.attn_out.forward(&ctx)? + xs)?)?;
        let ff = crate::gelu::gelu_erf(&self.ffn_in.forward(&xs)?)?;
        self.ffn_norm.forward(&(self.ffn_out.forward(&ff)? + xs)?)
    }
}

/// A BERT encoder without its pooler.
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl BertModel {
    /// Builds the encoder from weights named as in Hugging Face `BertModel` (no `bert.` prefix).
    pub fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let embeddings = Embeddings::new(cfg, vb.pp("embeddings"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(cfg, vb.pp(format!("encoder.layer.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(BertModel { embeddings, layers })
    }

    /// Encoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Last hidden states of sequences packed end to end without padding. `ids`: (tokens,)
    /// u32, sequence after sequence; `lens`: each sequence's token count. Returns
    /// (tokens, hidden).
    pub fn forward(&self, ids: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let mut out = self.forward_layers(ids, lens, &[self.layers.len()])?;
        Ok(out.remove(0))
    }

    /// As [`Self::forward`], returning the hidden states after each of `layers` encoder
    /// layers (0: the embeddings; [`Self::num_layers`]: the last hidden states), in that
    /// order. Layers past the last are an error.
    pub fn forward_layers(
        &self,
        ids: &Tensor,
        lens: &[usize],
        layers: &[usize],
    ) -> Result<Vec<Tensor>> {
        let deepest = layers.iter().copied().max().unwrap_or(0);
        if deepest > self.layers.len() {
            return Err(crate::Error::Pooling(format!(
                "layer {deepest} requested, the encoder has {}; choose one of 0..={0}",
                self.layers.len()
            )));
        }
        let positions: Vec<u32> = lens.iter().flat_map(|&n| 0..n as u32).collect();
        let positions = Tensor::from_vec(positions, ids.dims1()?, ids.device())?;
        let mut states = vec![self.embeddings.forward(ids, &positions)?];
        for layer in &self.layers[..deepest] {
            let next = layer.forward(states.last().expect("embeddings"), lens)?;
            states.push(next);
        }
        Ok(layers.iter().map(|&l| states[l].clone()).collect())
    }
}

/// How one sequence's token states become a single vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over all of the sequence's tokens, `[CLS]` and `[SEP]` included:
    /// sentence-transformers' mean pooling.
    Mean,
    /// The mean over every token after `[CLS]` of the hidden states after `layer` encoder
    /// layers.
    LayerMean {
        /// Encoder layers the states have passed (as in [`Pooling::Opening`]).
        layer: usize,
    },
    /// The mean over the first `tokens` tokens after `[CLS]` (fewer when the sequence is
    /// shorter, `[SEP]` then included) of the hidden states after `layer` encoder layers:
    /// what a text says first, read in the context of all of it.
    Opening {
        /// Tokens averaged (at least 1).
        tokens: usize,
        /// Encoder layers the states have passed (0: the embeddings; the model's layer count:
        /// the last hidden states, which [`Pooling::Mean`] reads).
        layer: usize,
    },
    /// The mean over the `tokens` tokens that start `start` tokens after `[CLS]` (fewer at
    /// the end of the sequence, `[SEP]` included) of the hidden states after `layer` encoder
    /// layers: one window of a phrase-by-phrase reading. A window that would start past the
    /// end of the sequence is its last window (`[SEP]` alone), so a maximum over windows
    /// `start = 0..k` of a short text sees each of its windows and repeats only the last.
    Window {
        /// Tokens after `[CLS]` skipped before the window.
        start: usize,
        /// Tokens averaged (at least 1).
        tokens: usize,
        /// Encoder layers the states have passed (as in [`Pooling::Opening`]).
        layer: usize,
    },
}

impl Pooling {
    /// The encoder layer whose states this pooling reads, in a model of `layers` layers.
    pub fn layer(self, layers: usize) -> usize {
        match self {
            Pooling::Mean => layers,
            Pooling::LayerMean { layer }
            | Pooling::Opening { layer, .. }
            | Pooling::Window { layer, .. } => layer,
        }
    }

    /// The rows of a `len`-token sequence that this pooling averages.
    /// A one-token sequence (no `[SEP]`) pools its only token either way.
    fn rows(self, len: usize) -> std::ops::Range<usize> {
        let after_cls = 1.min(len.saturating_sub(1));
        match self {
            Pooling::Mean => 0..len,
            Pooling::LayerMean { .. } => after_cls..len,
            Pooling::Opening { tokens, .. } => after_cls..(1 + tokens.max(1)).min(len),
            Pooling::Window { start, tokens, .. } => {
                let first = (after_cls + start).min(len.saturating_sub(1));
                first..(first + tokens.max(1)).min(len)
            }
        }
    }
}

/// Mean of each sequence's rows of `hidden` (tokens, dim; sequences of `lens` tokens packed
/// end to end), then divided by its L2 norm (floored at 1e-12 as
/// `torch.nn.functional.normalize` does). Returns (sequences, dim) row-major.
pub fn mean_pool_normalize(hidden: &[f32], lens: &[usize], dim: usize) -> Vec<f32> {
    pool_normalize(hidden, lens, dim, Pooling::Mean)
}

/// As [`mean_pool_normalize`], averaging the rows that `pooling` picks from each sequence.
pub fn pool_normalize(hidden: &[f32], lens: &[usize], dim: usize, pooling: Pooling) -> Vec<f32> {
    let mut out = vec![0f32; lens.len() * dim];
    let mut start = 0;
    for (&len, mean) in lens.iter().zip(out.chunks_exact_mut(dim)) {
        let rows = pooling.rows(len);
        let n = rows.len();
        let seq = &hidden[start * dim..(start + len) * dim];
        for row in seq.chunks_exact(dim).skip(rows.start).take(n) {
            mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
        }
        let inv = 1.0 / n.max(1) as f32;
        mean.iter_mut().for_each(|m| *m *= inv);
        let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt().max(1e-12);
        mean.iter_mut().for_each(|m| *m /= norm);
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_averages_each_sequence_and_normalises() {
        // Sequence 0: one token [3, 4] -> [0.6, 0.8].
        // Sequence 1: [1, 0] and [0, 1] -> mean [0.5, 0.5] -> [1/sqrt2, 1/sqrt2].
        let hidden = [3f32, 4., 1., 0., 0., 1.];
        let out = mean_pool_normalize(&hidden, &[1, 2], 2);
        let r = std::f32::consts::FRAC_1_SQRT_2;
        for (a, b) in out.iter().zip([0.6, 0.8, r, r]) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn opening_pool_averages_the_tokens_after_cls() {
        // Sequence 0: [CLS] a b [SEP] with 2 opening tokens -> mean of a, b.
        // Sequence 1: [CLS] [SEP] (an empty text) -> [SEP] alone.
        let hidden = [9f32, 9., 2., 0., 0., 2., 7., 7., 9., 9., 3., 4.];
        let out = pool_normalize(
            &hidden,
            &[4, 2],
            2,
            Pooling::Opening {
                tokens: 2,
                layer: 6,
            },
        );
        let r = std::f32::consts::FRAC_1_SQRT_2;
        for (a, b) in out.iter().zip([r, r, 0.6, 0.8]) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
        // More opening tokens than the text has: everything after [CLS].
        let out = pool_normalize(
            &hidden[..8],
            &[4],
            2,
            Pooling::Opening {
                tokens: 10,
                layer: 6,
            },
        );
        let m = [3f32, 3.];
        let norm = (18f32).sqrt();
        for (a, b) in out.iter().zip(m.iter().map(|x| x / norm)) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
        // A one-token sequence (no [SEP]) still pools that token.
        let out = pool_normalize(
            &[3f32, 4.],
            &[1],
            2,
            Pooling::Opening {
                tokens: 2,
                layer: 6,
            },
        );
        assert!((out[0] - 0.6).abs() < 1e-6 && (out[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn window_pool_reads_a_span_and_clamps_at_the_end() {
        // [CLS] a b c [SEP] with a = [1, 0], b = [0, 1], c = [3, 4], [SEP] = [0, 5].
        let hidden = [9f32, 9., 1., 0., 0., 1., 3., 4., 0., 5.];
        let window = |start| {
            pool_normalize(
                &hidden,
                &[5],
                2,
                Pooling::Window {
                    start,
                    tokens: 2,
                    layer: 3,
                },
            )
        };
        let r = std::f32::consts::FRAC_1_SQRT_2;
        // Window 0: mean(a, b) = [0.5, 0.5]; window 2: mean(c, [SEP]) = [1.5, 4.5];
        // window 3: [SEP] alone; windows past the end repeat it.
        let far = 1.5f32.hypot(4.5);
        for (start, want) in [
            (0, [r, r]),
            (2, [1.5 / far, 4.5 / far]),
            (3, [0., 1.]),
            (9, [0., 1.]),
        ] {
            let got = window(start);
            for (a, b) in got.iter().zip(want) {
                assert!((a - b).abs() < 1e-6, "window {start}: {got:?}");
            }
        }
    }
}
