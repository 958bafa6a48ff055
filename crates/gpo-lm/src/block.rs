//! One pre-norm decoder block: RMSNorm -> grouped-query attention -> residual ->
//! RMSNorm -> SwiGLU MLP -> residual.

use candle_core::Tensor;

use crate::linear::Linear;
use crate::ops::{rms_norm, rope, softmax_last};
use crate::pass::Pass;
use crate::Result;

/// Key and value tensors of one block for the tokens seen so far, `[batch, kv_heads, seq,
/// head_dim]`, held in buffers with room to grow: a decoding step writes its position in
/// place instead of copying the whole cache (`cat`), and the buffers double when full.
/// Not `Clone`: a shallow copy would share the buffers that later steps write into.
#[derive(Debug, Default)]
pub struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
}

/// Positions a fresh cache buffer holds at least.
const MIN_CACHE_POSITIONS: usize = 64;

impl LayerCache {
    /// Appends `k` and `v` (`[batch, kv_heads, s, head_dim]`) and returns views of everything
    /// cached so far.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let need = self.len + k.dim(2)?;
        let k_buf = reserve(&mut self.k, self.len, k, need)?;
        let v_buf = reserve(&mut self.v, self.len, v, need)?;
        k_buf.slice_set(&k.contiguous()?, 2, self.len)?;
        v_buf.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len = need;
        Ok((k_buf.narrow(2, 0, need)?, v_buf.narrow(2, 0, need)?))
    }
}

/// The buffer in `slot`, grown (to at least twice its size) when it holds fewer than `need`
/// positions; the first `len` positions are kept.
fn reserve(slot: &mut Option<Tensor>, len: usize, like: &Tensor, need: usize) -> Result<Tensor> {
    let cap = slot.as_ref().map_or(Ok(0), |t| t.dim(2))?;
    if let (Some(buf), true) = (slot.as_ref(), need <= cap) {
        return Ok(buf.clone());
    }
    let (b, heads, _, d) = like.dims4()?;
    let cap = need.max(2 * cap).max(MIN_CACHE_POSITIONS);
    let buf = Tensor::zeros((b, heads, cap, d), like.dtype(), like.device())?;
    if let (Some(old), true) = (slot.as_ref(), len > 0) {
        buf.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
    }
    *slot = Some(buf.clone());
    Ok(buf)
}

/// Grouped-query self-attention with RoPE.
#[derive(Debug, Clone)]
pub struct Attention {
    pub(crate) q_proj: Linear,
    pub(crate) k_proj: Linear,
    pub(crate) v_proj: Linear,
    pub(crate) o_proj: Linear,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
}

/// Inputs shared by every block of one forward pass.
pub(crate) struct BlockInputs<'a> {
    /// `[batch, seq, head_dim / 2]` each.
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    /// Additive mask `[batch, 1, q_len, k_len]` (0 or a large negative number), or `None`
    /// when every query may see every key.
    pub mask: Option<&'a Tensor>,
    pub pass: &'a Pass,
}

impl Attention {
    /// `x`: `[batch, seq, hidden]` -> `[batch, seq, hidden]`. With a cache, the new keys and
    /// values are appended and attention runs over the whole cached prefix.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        inp: &BlockInputs,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let mode = inp.pass.mode;
        let split = |t: Tensor, heads: usize| -> Result<Tensor> {
            Ok(t.reshape((b, s, heads, self.head_dim))?.transpose(1, 2)?)
        };
        let [q, k, v]: [Tensor; 3] =
            Linear::forward_group(&[&self.q_proj, &self.k_proj, &self.v_proj], x, inp.pass)?
                .try_into()
                .expect("three layers give three outputs");
        let q = split(q, self.heads)?;
        let k = split(k, self.kv_heads)?;
        let v = split(v, self.kv_heads)?.contiguous()?;
        let q = rope(&q, inp.cos, inp.sin, mode)?.contiguous()?;
        let k = rope(&k, inp.cos, inp.sin, mode)?.contiguous()?;
        let (k, v) = match cache {
            Some(c) => c.append(&k, &v)?,
            None => (k, v),
        };
        let k_len = k.dim(2)?;
        // Grouped heads share one key/value head: fold the group into the query rows instead
        // of copying keys and values `heads / kv_heads` times.
        let groups = self.heads / self.kv_heads;
        let q = q.reshape((b, self.kv_heads, groups * s, self.head_dim))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.reshape((b, self.heads, s, k_len))?;
        let scores = match inp.mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = softmax_last(&scores, mode)?.reshape((b, self.kv_heads, groups * s, k_len))?;
        let out = probs
            .matmul(&v)?
            .reshape((b, self.heads, s, self.head_dim))?;
        let out = out
            .transpose(1, 2)?
            .reshape((b, s, self.heads * self.head_dim))?;
        self.o_proj.forward(&out, inp.pass)
    }
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub(crate) gate_proj: Linear,
    pub(crate) up_proj: Linear,
    pub(crate) down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] =
            Linear::forward_group(&[&self.gate_proj, &self.up_proj], x, pass)?
                .try_into()
                .expect("two layers give two outputs");
        self.down_proj
            .forward(&crate::ops::swiglu(&gate, &up, pass.mode)?, pass)
    }
}

/// A decoder block.
#[derive(Debug, Clone)]
pub struct Block {
    pub(crate) input_layernorm: Tensor,
    pub(crate) attn: Attention,
    pub(crate) post_attention_layernorm: Tensor,
    pub(crate) mlp: Mlp,
    pub(crate) eps: f64,
}

impl Block {
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        inp: &BlockInputs,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let mode = inp.pass.mode;
        let w1 = weight_for(&self.input_layernorm, inp.pass);
        let h = self
            .attn
            .forward(&rms_norm(x, &w1, self.eps, mode)?, inp, cache)?;
        let x = (x + h)?;
        let w2 = weight_for(&self.post_attention_layernorm, inp.pass);
        let h = self
            .mlp
            .forward(&rms_norm(&x, &w2, self.eps, mode)?, inp.pass)?;
        Ok((x + h)?)
    }

    /// Every linear layer of the block with its Hugging Face module name.
    pub(crate) fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 7] {
        [
            ("self_attn.q_proj", &mut self.attn.q_proj),
            ("self_attn.k_proj", &mut self.attn.k_proj),
            ("self_attn.v_proj", &mut self.attn.v_proj),
            ("self_attn.o_proj", &mut self.attn.o_proj),
            ("mlp.gate_proj", &mut self.mlp.gate_proj),
            ("mlp.up_proj", &mut self.mlp.up_proj),
            ("mlp.down_proj", &mut self.mlp.down_proj),
        ]
    }

    /// Read-only view of [`Block::linears_mut`].
    pub(crate) fn linears(&self) -> [(&'static str, &Linear); 7] {
        [
            ("self_attn.q_proj", &self.attn.q_proj),
            ("self_attn.k_proj", &self.attn.k_proj),
            ("self_attn.v_proj", &self.attn.v_proj),
            ("self_attn.o_proj", &self.attn.o_proj),
            ("mlp.gate_proj", &self.mlp.gate_proj),
            ("mlp.up_proj", &self.mlp.up_proj),
            ("mlp.down_proj", &self.mlp.down_proj),
        ]
    }
}

/// The weight itself in a training pass; a detached handle otherwise, so inference records
/// no graph even when the weight is a trainable variable.
pub(crate) fn weight_for(w: &Tensor, pass: &Pass) -> Tensor {
    if pass.train_mode() {
        w.clone()
    } else {
        w.detach()
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::LayerCache;
    use crate::test_util::max_diff;

    #[test]
    fn the_cache_returns_what_concatenation_would_across_growth() {
        // Appends of 50, 1 x 20 and 70 positions cross the first buffer (64) and a doubling;
        // the views must equal `cat` of everything appended, exactly (copies, no arithmetic).
        let dev = Device::Cpu;
        let mut cache = LayerCache::default();
        let (mut all_k, mut all_v) = (Vec::new(), Vec::new());
        let mut sizes = vec![50];
        sizes.extend([1; 20]);
        sizes.push(70);
        for (i, s) in sizes.into_iter().enumerate() {
            let k = Tensor::randn(0f32, 1.0, (2, 3, s, 4), &dev).unwrap();
            let v = (Tensor::randn(0f32, 1.0, (2, 3, s, 4), &dev).unwrap() + i as f64).unwrap();
            let (ck, cv) = cache.append(&k, &v).unwrap();
            all_k.push(k);
            all_v.push(v);
            for (got, parts) in [(ck, &all_k), (cv, &all_v)] {
                let want = Tensor::cat(parts, 2).unwrap();
                assert_eq!(got.dims(), want.dims());
                assert_eq!(max_diff(&got, &want), 0.0, "after append {i}");
            }
        }
    }
}
