//! The BERT encoder (inference only): embeddings, then post-norm self-attention layers.
//!
//! Weight names follow Hugging Face `BertModel` without the `bert.` prefix, as
//! sentence-transformers saves them (`embeddings.word_embeddings.weight`,
//! `encoder.layer.{i}.attention.self.query.weight`, ...). The pooler is not loaded.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};

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

    /// `ids`: (batch, seq) u32 -> (batch, seq, hidden).
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let words = self.word.forward(ids)?;
        let positions = self.position.narrow(0, 0, seq)?;
        let xs = words
            .broadcast_add(&positions)?
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

    /// `xs`: (batch * seq, hidden); `mask`: additive, (batch, 1, 1, seq) -> (batch * seq, hidden).
    fn forward(&self, xs: &Tensor, batch: usize, seq: usize, mask: &Tensor) -> Result<Tensor> {
        let hidden = self.heads * self.head_dim;
        let qkv = self.qkv.forward(xs)?;
        // (batch * seq, 3 * hidden) -> three (batch, heads, seq, head_dim)
        let qkv = qkv
            .reshape((batch, seq, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch * seq, hidden))?;
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
    hidden: usize,
}

impl BertModel {
    /// Builds the encoder from weights named as in Hugging Face `BertModel` (no `bert.` prefix).
    pub fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let embeddings = Embeddings::new(cfg, vb.pp("embeddings"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(cfg, vb.pp(format!("encoder.layer.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(BertModel {
            embeddings,
            layers,
            hidden: cfg.hidden_size,
        })
    }

    /// Last hidden states. `ids`: (batch, seq) u32; `mask`: (batch, seq) f32, 1 for real tokens
    /// and 0 for padding. Returns (batch, seq, hidden).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        // Padding keys get the lowest finite value, as transformers does.
        let additive = mask
            .to_dtype(DType::F32)?
            .affine(-1.0, 1.0)?
            .affine(f64::from(f32::MIN), 0.0)?
            .reshape((batch, 1, 1, seq))?;
        let mut xs = self
            .embeddings
            .forward(ids)?
            .reshape((batch * seq, self.hidden))?;
        for layer in &self.layers {
            xs = layer.forward(&xs, batch, seq, &additive)?;
        }
        Ok(xs.reshape((batch, seq, self.hidden))?)
    }
}

/// Mean of `hidden` (batch, seq, dim) over the positions where `mask` (batch, seq) is 1, then
/// each row divided by its L2 norm (floored at 1e-12 as `torch.nn.functional.normalize` does).
/// Returns (batch, dim).
pub fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1e-9, f64::INFINITY)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::INFINITY)?;
    Ok(mean.broadcast_div(&norm)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_pool_ignores_padding_and_normalises() {
        // Row 0: tokens [3,4] and [1,0] with the second masked -> mean [3,4] -> [0.6,0.8].
        // Row 1: both real, [1,0] and [0,1] -> mean [0.5,0.5] -> [1/sqrt2, 1/sqrt2].
        let dev = Device::Cpu;
        let hidden =
            Tensor::from_vec(vec![3f32, 4., 1., 0., 1., 0., 0., 1.], (2, 2, 2), &dev).unwrap();
        let mask = Tensor::from_vec(vec![1f32, 0., 1., 1.], (2, 2), &dev).unwrap();
        let out = mean_pool_normalize(&hidden, &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let r = std::f32::consts::FRAC_1_SQRT_2;
        let want = [[0.6, 0.8], [r, r]];
        for (row, w) in out.iter().zip(want) {
            for (a, b) in row.iter().zip(w) {
                assert!((a - b).abs() < 1e-6, "{out:?}");
            }
        }
    }
}
