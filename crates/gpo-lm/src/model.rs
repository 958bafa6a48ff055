//! The decoder-only language model: embedding -> blocks -> RMSNorm -> LM head.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};

use crate::bf16_gemm::{matmul_t_bf16, Bf16Weight};
use crate::block::{weight_for, Attention, Block, BlockInputs, LayerCache, Mlp};
use crate::config::LmConfig;
use crate::linear::{matmul_t, Linear};
use crate::mask::{causal_padding_mask, positions_from_mask};
use crate::pass::{Mode, Pass};
use crate::rope::RopeTable;
use crate::weights::WeightMap;
use crate::{Error, Result};

/// Which weights of a model are trainable.
#[derive(Debug, Clone, PartialEq)]
pub enum Trainable {
    /// None: a frozen model (reference, judge, sampler).
    Frozen,
    /// Every weight (full fine-tuning).
    Full,
}

/// A Llama-family causal LM. Weights are plain tensors, or the tensors of [`Var`]s when the
/// model is fully trainable; LoRA adapters are attached with [`crate::lora::attach_lora`].
#[derive(Debug, Clone)]
pub struct CausalLm {
    pub(crate) cfg: LmConfig,
    pub(crate) embed_tokens: Tensor,
    pub(crate) blocks: Vec<Block>,
    pub(crate) norm: Tensor,
    /// `None` when tied to the embedding.
    pub(crate) lm_head: Option<Tensor>,
    /// The output projection (`lm_head`, or the tied embedding) packed for bf16 products.
    pub(crate) head_bf16: Option<Arc<Bf16Weight>>,
    pub(crate) rope: RopeTable,
    pub(crate) device: Device,
    pub(crate) dtype: DType,
    /// Trainable variables with their Hugging Face (or PEFT) names.
    pub(crate) vars: Vec<(String, Var)>,
}

/// The key/value cache of every block, plus which cached positions are real tokens.
#[derive(Debug)]
pub struct KvCache {
    pub(crate) layers: Vec<LayerCache>,
    /// `valid[row][j]`: whether cached position j of the row is a token (not left padding).
    pub(crate) valid: Vec<Vec<bool>>,
    /// The RoPE position of the next token of each row.
    pub(crate) next_pos: Vec<u32>,
}

impl KvCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CausalLm {
    /// Builds the model from `weights` (Hugging Face names), moving them to `device` in `dtype`.
    pub fn new(
        cfg: LmConfig,
        weights: WeightMap,
        trainable: Trainable,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut b = Builder {
            w: weights.to(dtype, device)?,
            trainable,
            vars: Vec::new(),
            next_id: 0,
        };
        let h = cfg.hidden_size;
        let embed_tokens = b.param("model.embed_tokens.weight", &[cfg.vocab_size, h])?;
        // Not sized by the config's layer count: a corrupt file may claim billions of layers
        // and hold one; the first missing tensor ends the loop.
        let mut blocks = Vec::new();
        for i in 0..cfg.num_hidden_layers {
            blocks.push(b.block(&cfg, i)?);
        }
        let norm = b.param("model.norm.weight", &[h])?;
        let lm_head = match b.w.take_optional("lm_head.weight", &[cfg.vocab_size, h])? {
            // Some tied checkpoints store a copy of the embedding; tying keeps one tensor.
            Some(_) if cfg.tie_word_embeddings => None,
            Some(t) => Some(b.var("lm_head.weight", t)?),
            None if cfg.tie_word_embeddings => None,
            None => {
                return Err(Error::MissingTensor {
                    path: b.w.origin().into(),
                    name: "lm_head.weight".into(),
                })
            }
        };
        let leftover = b.w.remaining();
        if !leftover.is_empty() {
            tracing::debug!("{}: unused tensors {:?}", b.w.origin().display(), leftover);
        }
        let rope = RopeTable::new(
            cfg.head_dim,
            cfg.rope_theta,
            cfg.max_position_embeddings,
            dtype,
            device,
        )?;
        Ok(CausalLm {
            cfg,
            embed_tokens,
            blocks,
            norm,
            lm_head,
            head_bf16: None,
            rope,
            device: device.clone(),
            dtype,
            vars: b.vars,
        })
    }

    /// Multiplies every frozen linear weight, and a frozen output projection, in bf16 from
    /// now on (AVX512-BF16 products, f32 sums; activations and everything else stay f32).
    /// Trainable weights stay f32: a pack would go stale at every step. Returns false, and
    /// changes nothing, on a CPU without AVX512-BF16 or on another device.
    pub fn use_bf16_products(&mut self) -> Result<bool> {
        if !self.device.is_cpu()
            || self.dtype != DType::F32
            || !crate::bf16_kernel::has_avx512_bf16()
        {
            return Ok(false);
        }
        use crate::bf16_gemm::frozen;
        for block in &mut self.blocks {
            for (_, linear) in block.linears_mut() {
                if frozen(&linear.weight) {
                    linear.pack_bf16()?;
                }
            }
        }
        let head = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        if frozen(head) {
            self.head_bf16 = Some(Bf16Weight::new(head)?);
        }
        if !self.bf16_products() {
            tracing::warn!("every weight of the model is trainable: its products stay f32");
        }
        Ok(true)
    }

    /// Whether the model multiplies its frozen weights in bf16.
    pub fn bf16_products(&self) -> bool {
        self.head_bf16.is_some()
            || self
                .blocks
                .iter()
                .any(|b| b.linears().iter().any(|(_, l)| l.bf16.is_some()))
    }

    /// Hyper-parameters.
    pub fn config(&self) -> &LmConfig {
        &self.cfg
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights and activations.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Trainable variables with their names: every weight under [`Trainable::Full`], the
    /// adapter matrices (PEFT names) after LoRA is attached, nothing for a frozen model.
    pub fn trainable_vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// A frozen snapshot of the model as it is now: trainable tensors (full weights or LoRA
    /// adapters) are deep-copied, so later optimiser steps on `self` do not reach the copy;
    /// frozen base weights are shared, so a LoRA snapshot costs only its adapters. The copy
    /// has no trainable variables. This is how a KL anchor at the current iterate, or a pool
    /// of past policies, is kept.
    pub fn frozen_copy(&self) -> Result<CausalLm> {
        self.copy_trainable(false)
    }

    /// Like [`CausalLm::frozen_copy`], but the copied tensors are the copy's own trainable
    /// variables, under the same names: a second, independent set of weights on the same
    /// frozen base (an exponential moving average of a policy, for instance).
    pub fn detached_copy(&self) -> Result<CausalLm> {
        self.copy_trainable(true)
    }

    fn copy_trainable(&self, keep_vars: bool) -> Result<CausalLm> {
        use std::collections::HashMap;
        let ids: std::collections::HashSet<_> =
            self.vars.iter().map(|(_, v)| v.as_tensor().id()).collect();
        let mut fresh_vars: HashMap<candle_core::TensorId, Var> = HashMap::new();
        // A trainable tensor becomes a new variable holding a copy; a frozen one is shared.
        let fresh = |t: &Tensor, vars: &mut HashMap<_, Var>| -> Result<Tensor> {
            if !ids.contains(&t.id()) {
                return Ok(t.clone());
            }
            let v = Var::from_tensor(&t.copy()?)?;
            let out = v.as_tensor().clone();
            vars.insert(t.id(), v);
            Ok(out)
        };
        let fv = &mut fresh_vars;
        let mut m = self.clone();
        m.embed_tokens = fresh(&self.embed_tokens, fv)?;
        m.norm = fresh(&self.norm, fv)?;
        m.lm_head = match &self.lm_head {
            Some(h) => Some(fresh(h, fv)?),
            None => None,
        };
        for b in &mut m.blocks {
            b.input_layernorm = fresh(&b.input_layernorm, fv)?;
            b.post_attention_layernorm = fresh(&b.post_attention_layernorm, fv)?;
            for (_, l) in b.linears_mut() {
                l.weight = fresh(&l.weight, fv)?;
                l.bias = match &l.bias {
                    Some(bias) => Some(fresh(bias, fv)?),
                    None => None,
                };
                if let Some(lora) = &mut l.lora {
                    let a = Var::from_tensor(&lora.a.as_tensor().copy()?)?;
                    let b = Var::from_tensor(&lora.b.as_tensor().copy()?)?;
                    fv.insert(lora.a.as_tensor().id(), a.clone());
                    fv.insert(lora.b.as_tensor().id(), b.clone());
                    lora.a = a;
                    lora.b = b;
                }
            }
        }
        m.vars = if keep_vars {
            self.vars
                .iter()
                .map(|(n, v)| {
                    fresh_vars
                        .get(&v.as_tensor().id())
                        .map(|f| (n.clone(), f.clone()))
                        .ok_or_else(|| {
                            Error::InvalidArgument(format!(
                                "trainable variable `{n}` is not a tensor of the model"
                            ))
                        })
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(m)
    }

    /// Number of parameters of the base model (adapters excluded).
    pub fn num_parameters(&self) -> usize {
        let mut n = self.embed_tokens.elem_count() + self.norm.elem_count();
        n += self.lm_head.as_ref().map_or(0, Tensor::elem_count);
        for b in &self.blocks {
            n += b.input_layernorm.elem_count() + b.post_attention_layernorm.elem_count();
            for (_, l) in b.linears() {
                n += l.weight.elem_count() + l.bias.as_ref().map_or(0, Tensor::elem_count);
            }
        }
        n
    }

    /// Full-sequence forward returning the final hidden states `[batch, seq, hidden]`
    /// (after the last RMSNorm).
    ///
    /// `ids`: `[batch, seq]` u32. `attention_mask`: `[batch, seq]` with 1 for tokens and 0 for
    /// padding (left or right); `None` means no padding. Positions count tokens only, as in
    /// Hugging Face, so a left-padded row computes the same values as the unpadded sequence.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        attention_mask: Option<&Tensor>,
        pass: &Pass,
    ) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        self.check_len(s)?;
        let valid: Vec<Vec<bool>> = match attention_mask {
            Some(m) => m
                .to_dtype(DType::U32)?
                .to_vec2::<u32>()?
                .into_iter()
                .map(|r| r.into_iter().map(|x| x != 0).collect())
                .collect(),
            None => vec![vec![true; s]; b],
        };
        if valid.len() != b || valid.iter().any(|r| r.len() != s) {
            return Err(Error::InvalidArgument(format!(
                "attention_mask must be [{b}, {s}]"
            )));
        }
        let positions = positions_from_mask(&valid, &vec![0; b], &self.device)?;
        let mask = causal_padding_mask(&valid, s, self.dtype, &self.device)?;
        let x = self.embed(ids, pass)?;
        self.run_blocks(x, &positions, Some(&mask), pass, None)
    }

    /// Full-sequence forward returning logits at every position, `[batch, seq, vocab]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        attention_mask: Option<&Tensor>,
        pass: &Pass,
    ) -> Result<Tensor> {
        let hidden = self.forward_hidden(ids, attention_mask, pass)?;
        self.lm_logits(&hidden, pass)
    }

    /// Applies the LM head: `[..., hidden]` -> `[..., vocab]`.
    pub fn lm_logits(&self, hidden: &Tensor, pass: &Pass) -> Result<Tensor> {
        let head = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        if let Some(packed) = self.head_bf16.as_ref().filter(|p| p.packs(head)) {
            return matmul_t_bf16(hidden, packed);
        }
        matmul_t(hidden, &weight_for(head, pass))
    }

    /// An empty KV cache for `batch` rows.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache {
            layers: self.blocks.iter().map(|_| LayerCache::default()).collect(),
            valid: vec![Vec::new(); batch],
            next_pos: vec![0; batch],
        }
    }

    /// Incremental forward with a KV cache (inference kernels): appends `ids` (`[batch, seq]`,
    /// `valid` marking real tokens, e.g. left padding of a prompt) and returns the logits of
    /// the last position of each row, `[batch, vocab]`.
    pub fn forward_cached(
        &self,
        ids: &Tensor,
        valid: &[Vec<bool>],
        cache: &mut KvCache,
        pass: &Pass,
    ) -> Result<Tensor> {
        let pass = Pass {
            mode: Mode::Infer,
            ..*pass
        };
        let (b, s) = ids.dims2()?;
        if valid.len() != b || valid.iter().any(|r| r.len() != s) || cache.valid.len() != b {
            return Err(Error::InvalidArgument(format!(
                "cache of {} rows, ids [{b}, {s}] and valid mask disagree",
                cache.valid.len()
            )));
        }
        let past = cache.len();
        self.check_len(past + s)?;
        let positions = positions_from_mask(valid, &cache.next_pos, &self.device)?;
        for (row, v) in cache.valid.iter_mut().zip(valid) {
            row.extend_from_slice(v);
        }
        for (p, v) in cache.next_pos.iter_mut().zip(valid) {
            *p += v.iter().filter(|x| **x).count() as u32;
        }
        let mask = if s == 1 && cache.valid.iter().all(|r| r.iter().all(|x| *x)) {
            None
        } else {
            Some(crate::mask::cached_mask(
                &cache.valid,
                s,
                self.dtype,
                &self.device,
            )?)
        };
        let x = self.embed(ids, &pass)?;
        let hidden =
            self.run_blocks(x, &positions, mask.as_ref(), &pass, Some(&mut cache.layers))?;
        let last = hidden.narrow(1, s - 1, 1)?.squeeze(1)?;
        self.lm_logits(&last, &pass)
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len > self.rope.max_positions() {
            return Err(Error::InvalidArgument(format!(
                "sequence of {len} tokens is longer than the model's context of {} tokens",
                self.rope.max_positions()
            )));
        }
        Ok(())
    }

    fn embed(&self, ids: &Tensor, pass: &Pass) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let flat = ids.flatten_all()?.contiguous()?;
        let max = flat.max(0)?.to_scalar::<u32>()? as usize;
        if max >= self.cfg.vocab_size {
            return Err(Error::InvalidArgument(format!(
                "token id {max} is outside the vocabulary of {}",
                self.cfg.vocab_size
            )));
        }
        let e = weight_for(&self.embed_tokens, pass).index_select(&flat, 0)?;
        Ok(e.reshape((b, s, self.cfg.hidden_size))?)
    }

    fn run_blocks(
        &self,
        mut x: Tensor,
        positions: &Tensor,
        mask: Option<&Tensor>,
        pass: &Pass,
        mut cache: Option<&mut Vec<LayerCache>>,
    ) -> Result<Tensor> {
        let (cos, sin) = self.rope.at(positions)?;
        let inputs = BlockInputs {
            cos: &cos,
            sin: &sin,
            mask,
            pass,
        };
        for (i, block) in self.blocks.iter().enumerate() {
            let layer = cache.as_deref_mut().map(|c| &mut c[i]);
            x = block.forward(&x, &inputs, layer)?;
        }
        crate::ops::rms_norm(
            &x,
            &weight_for(&self.norm, pass),
            self.cfg.rms_norm_eps,
            pass.mode,
        )
    }
}

/// Takes a checkpoint's tensors in order, as parameters (trainable `Var`s in [`Trainable::Full`],
/// in the order taken) and numbered [`Linear`] layers.
struct Builder {
    w: WeightMap,
    trainable: Trainable,
    vars: Vec<(String, Var)>,
    next_id: u64,
}

impl Builder {
    /// `t` as a parameter named `name`.
    fn var(&mut self, name: &str, t: Tensor) -> Result<Tensor> {
        match self.trainable {
            Trainable::Frozen => Ok(t),
            Trainable::Full => {
                let v = Var::from_tensor(&t)?;
                let tensor = v.as_tensor().clone();
                self.vars.push((name.to_string(), v));
                Ok(tensor)
            }
        }
    }

    /// The tensor `name` of `shape`, as a parameter.
    fn param(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.w.take(name, shape)?;
        self.var(name, t)
    }

    /// The linear layer `name` (`[out, inp]` weight, optional `[out]` bias).
    fn linear(&mut self, name: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let weight = self.param(&format!("{name}.weight"), &[out, inp])?;
        let bias = match bias {
            true => Some(self.param(&format!("{name}.bias"), &[out])?),
            false => None,
        };
        self.next_id += 1;
        Ok(Linear::new(weight, bias, self.next_id))
    }

    /// Decoder layer `i`.
    fn block(&mut self, cfg: &LmConfig, i: usize) -> Result<Block> {
        let (h, hd, ff) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size);
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let qkv_bias = cfg.architecture.qkv_bias();
        let p = format!("model.layers.{i}");
        let input_layernorm = self.param(&format!("{p}.input_layernorm.weight"), &[h])?;
        let a = format!("{p}.self_attn");
        let attn = Attention {
            q_proj: self.linear(&format!("{a}.q_proj"), nh * hd, h, qkv_bias)?,
            k_proj: self.linear(&format!("{a}.k_proj"), nkv * hd, h, qkv_bias)?,
            v_proj: self.linear(&format!("{a}.v_proj"), nkv * hd, h, qkv_bias)?,
            o_proj: self.linear(&format!("{a}.o_proj"), h, nh * hd, false)?,
            heads: nh,
            kv_heads: nkv,
            head_dim: hd,
        };
        let post_attention_layernorm =
            self.param(&format!("{p}.post_attention_layernorm.weight"), &[h])?;
        let mlp = Mlp {
            gate_proj: self.linear(&format!("{p}.mlp.gate_proj"), ff, h, false)?,
            up_proj: self.linear(&format!("{p}.mlp.up_proj"), ff, h, false)?,
            down_proj: self.linear(&format!("{p}.mlp.down_proj"), h, ff, false)?,
        };
        Ok(Block {
            input_layernorm,
            attn,
            post_attention_layernorm,
            mlp,
            eps: cfg.rms_norm_eps,
        })
    }
}
