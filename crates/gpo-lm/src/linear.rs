//! A linear layer `y = x W^T + b`, optionally with a LoRA adapter `+ (alpha / r) x A^T B^T`.

use std::sync::Arc;

use candle_core::{Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bf16_gemm::{matmul_t_bf16, Bf16Weight};
use crate::lora_node::{lora_linear, Frozen};
use crate::pass::Pass;
use crate::Result;

/// A LoRA adapter on one linear layer (Hu et al. 2021): `A` is `[rank, in]`, `B` is `[out, rank]`.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    /// Down-projection, `[rank, in]`.
    pub a: Var,
    /// Up-projection, `[out, rank]`, zero at initialisation so training starts at the base model.
    pub b: Var,
    /// `alpha / rank`.
    pub scale: f64,
    /// Dropout probability on the adapter's input.
    pub dropout: f32,
}

/// A linear layer of the model. The weight is a plain tensor (frozen) or the tensor of a
/// [`Var`] (fully trainable); either way it is stored as `[out, in]`, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Linear {
    pub(crate) weight: Tensor,
    pub(crate) bias: Option<Tensor>,
    pub(crate) lora: Option<LoraAdapter>,
    /// Distinct per layer of a model; mixes into the dropout seed.
    pub(crate) id: u64,
    /// The frozen weight packed for bf16 products (a CPU model loaded in bf16).
    pub(crate) bf16: Option<Arc<Bf16Weight>>,
}

impl Linear {
    pub(crate) fn new(weight: Tensor, bias: Option<Tensor>, id: u64) -> Self {
        Linear {
            weight,
            bias,
            lora: None,
            id,
            bf16: None,
        }
    }

    /// Packs the weight for bf16 products: every later forward multiplies in bf16 until the
    /// weight is replaced. For frozen weights; a trainable one would go stale at each step.
    pub(crate) fn pack_bf16(&mut self) -> Result<()> {
        self.bf16 = Some(Bf16Weight::new(&self.weight)?);
        Ok(())
    }

    /// The bf16 pack, when it stands for the current weight.
    fn packed(&self) -> Option<&Arc<Bf16Weight>> {
        self.bf16.as_ref().filter(|p| p.packs(&self.weight))
    }

    /// `x`: `[..., in]` -> `[..., out]`.
    pub fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        if let Some(y) = self.forward_lora_node(x, pass)? {
            return self.add_bias(y, pass);
        }
        if let Some(packed) = self.packed() {
            return self.add_bias_and_adapter(matmul_t_bf16(x, packed)?, x, pass);
        }
        let train = pass.train_mode();
        let w = if train {
            self.weight.clone()
        } else {
            self.weight.detach()
        };
        self.add_bias_and_adapter(matmul_t(x, &w)?, x, pass)
    }

    /// The frozen layer and its active adapter as one node ([`crate::lora_node`]), on the
    /// CPU in f32: when training, or whenever the weight is packed for bf16. `None` where
    /// it does not apply (no adapter, adapter dropout, a trainable weight, another device).
    fn forward_lora_node(&self, x: &Tensor, pass: &Pass) -> Result<Option<Tensor>> {
        let Some(lora) = self.lora.as_ref().filter(|_| pass.adapters) else {
            return Ok(None);
        };
        let train = pass.train_mode();
        let dropout = train && lora.dropout > 0.0 && pass.dropout_seed.is_some();
        let frozen = match self.packed() {
            Some(p) => Frozen::Bf16(Arc::clone(p)),
            None if train => Frozen::F32(self.weight.clone()),
            None => return Ok(None),
        };
        if dropout || self.weight.track_op() || !crate::diffops::fused_ok(x) {
            return Ok(None);
        }
        let (a, b) = if train {
            (lora.a.as_tensor().clone(), lora.b.as_tensor().clone())
        } else {
            (lora.a.as_tensor().detach(), lora.b.as_tensor().detach())
        };
        Ok(Some(lora_linear(x, frozen, &a, &b, lora.scale)?))
    }

    fn add_bias(&self, y: Tensor, pass: &Pass) -> Result<Tensor> {
        Ok(match &self.bias {
            Some(b) if pass.train_mode() => y.broadcast_add(b)?,
            Some(b) => y.broadcast_add(&b.detach())?,
            None => y,
        })
    }

    /// `y` (this layer's `x W^T`) plus the bias and, when adapters are on, the LoRA term.
    fn add_bias_and_adapter(&self, y: Tensor, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let mut y = self.add_bias(y, pass)?;
        if let (Some(lora), true) = (&self.lora, pass.adapters) {
            y = (y + self.lora_delta(lora, x, pass)?)?;
        }
        Ok(y)
    }

    fn lora_delta(&self, lora: &LoraAdapter, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let train = pass.train_mode();
        let (a, b) = if train {
            (lora.a.as_tensor().clone(), lora.b.as_tensor().clone())
        } else {
            (lora.a.as_tensor().detach(), lora.b.as_tensor().detach())
        };
        let x = match pass.dropout_seed {
            Some(seed) if train && lora.dropout > 0.0 => dropout(
                x,
                lora.dropout,
                seed ^ self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )?,
            _ => x.clone(),
        };
        // Scaled at rank width (`[.., r]`), not at the layer's output width: one small
        // elementwise op instead of a large one, forward and backward.
        matmul_t(&(matmul_t(&x, &a)? * lora.scale)?, &b)
    }

    /// The forwards of several layers that read the same `x` (q/k/v, gate/up). A
    /// decoding-sized product with no gradient anywhere runs all weights in one parallel
    /// dispatch (see [`crate::small_matmul::small_matmul_group_t`]); anything else is one
    /// [`Linear::forward`] per layer. Same result either way.
    pub(crate) fn forward_group(
        layers: &[&Linear],
        x: &Tensor,
        pass: &Pass,
    ) -> Result<Vec<Tensor>> {
        let dims = x.dims().to_vec();
        let inner = dims[dims.len() - 1];
        let rows = x.elem_count() / inner.max(1);
        let grouped = !pass.train_mode()
            && rows <= crate::small_matmul::MAX_ROWS
            && small_kernel_applies(x)
            && layers
                .iter()
                .all(|l| l.in_dim() == inner && l.weight.is_contiguous() && l.packed().is_none());
        if !grouped {
            return layers.iter().map(|l| l.forward(x, pass)).collect();
        }
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let weights: Vec<Tensor> = layers.iter().map(|l| l.weight.detach()).collect();
        let guards: Vec<_> = weights.iter().map(|w| w.storage_and_layout()).collect();
        let mut slices = Vec::with_capacity(layers.len());
        for ((storage, layout), w) in guards.iter().zip(&weights) {
            slices.push((cpu_f32(storage, layout)?, w.dims()[0]));
        }
        let ys = crate::small_matmul::small_matmul_group_t(&xs, rows, &slices, inner);
        drop(guards);
        layers
            .iter()
            .zip(ys)
            .map(|(l, y)| {
                let mut shape = dims.clone();
                *shape.last_mut().expect("x has a last dimension") = l.out_dim();
                l.add_bias_and_adapter(Tensor::from_vec(y, shape, x.device())?, x, pass)
            })
            .collect()
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.weight.dims()[1]
    }
}

/// Row count up to which [`matmul_t`] multiplies `W x^T`.
const SMALL_ROWS: usize = 16;

/// `x @ w^T` for `x` of any rank >= 2, flattening the leading dimensions into one GEMM.
pub(crate) fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    // Inside a training graph on the CPU: one node with a hand-written backward (and no
    // weight gradient for a frozen weight).
    if x.track_op() && crate::diffops::fused_ok(x) && w.dtype() == candle_core::DType::F32 {
        return crate::fused::matmul_t_node(x, w);
    }
    let dims = x.dims().to_vec();
    let inner = dims[dims.len() - 1];
    let rows = x.elem_count() / inner.max(1);
    let x2 = x.reshape((rows, inner))?;
    let y = if rows <= crate::small_matmul::MAX_ROWS
        && small_kernel_applies(&x2)
        && !w.track_op()
        && w.is_contiguous()
    {
        let xs = x2.flatten_all()?.to_vec1::<f32>()?;
        let (out, k) = (w.dims()[0], inner);
        // Decoding-sized product with no gradient anywhere: the decoding kernel, which
        // streams the weight once near memory bandwidth. Borrow the weight's storage, no copy.
        let (storage, layout) = w.storage_and_layout();
        let ws = cpu_f32(&storage, layout)?;
        let y = crate::small_matmul::small_matmul_t(&xs, rows, ws, out, k);
        drop(storage);
        Tensor::from_vec(y, (rows, out), x2.device())?
    } else if rows <= SMALL_ROWS {
        // Few rows (decoding): `(W x^T)^T` streams W in its stored row-major order instead
        // of letting the GEMM repack all of W for a handful of rows (measured 1.2-1.3x faster
        // for 8 rows; 2.5x slower for 1024).
        w.matmul(&x2.t()?)?.t()?.contiguous()?
    } else {
        x2.matmul(&w.t()?)?
    };
    let mut out = dims;
    let last = out.len() - 1;
    out[last] = w.dims()[0];
    Ok(y.reshape(out)?)
}

/// Whether `x` can feed the register-tiled decoding kernel: f32 on the CPU, no gradient.
fn small_kernel_applies(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && !x.track_op()
}

/// The f32 values of a contiguous CPU weight's storage, borrowed.
fn cpu_f32<'a>(
    storage: &'a candle_core::Storage,
    layout: &candle_core::Layout,
) -> Result<&'a [f32]> {
    crate::fused::storage_f32(storage, layout).map_err(|_| {
        crate::Error::InvalidArgument("small matmul needs a contiguous f32 CPU weight".into())
    })
}

/// Inverted dropout with a mask drawn on the host from `seed`, so runs are reproducible on
/// every device.
fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keep = 1.0 - p;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if rng.random::<f32>() < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    Ok((x * mask)?)
}
