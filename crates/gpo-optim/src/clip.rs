//! Parameter gradients taken out of a backward pass, global-norm clipping, and
//! accumulation over micro-batches.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, TensorId, Var};

use crate::Result;

/// The gradients of the trainable parameters only. Building it from a [`GradStore`] drops
/// the gradients of every intermediate activation at once.
#[derive(Debug, Clone, Default)]
pub struct Grads {
    by_id: HashMap<TensorId, Tensor>,
}

impl Grads {
    /// Takes the gradients of `params` out of `store`.
    pub fn from_store(mut store: GradStore, params: &[(String, Var)]) -> Self {
        let mut by_id = HashMap::with_capacity(params.len());
        for (_, v) in params {
            if let Some(g) = store.remove(v.as_tensor()) {
                by_id.insert(v.as_tensor().id(), g);
            }
        }
        Grads { by_id }
    }

    /// The gradient of a parameter, if it received one.
    pub fn get(&self, var: &Var) -> Option<&Tensor> {
        self.by_id.get(&var.as_tensor().id())
    }

    /// Adds another micro-batch's gradients (for accumulation; scale by `1 / n` in the step).
    pub fn accumulate(&mut self, other: Grads) -> Result<()> {
        for (id, g) in other.by_id {
            let sum = match self.by_id.remove(&id) {
                Some(s) => (s + g)?,
                None => g,
            };
            self.by_id.insert(id, sum);
        }
        Ok(())
    }

    /// The global L2 norm over `params` (missing gradients count as zero), accumulated in f64.
    pub fn norm(&self, params: &[(String, Var)]) -> Result<f64> {
        let mut total = 0f64;
        for (_, v) in params {
            if let Some(g) = self.get(v) {
                total += g
                    .to_dtype(DType::F64)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }
}

/// Clipping by global norm as `torch.nn.utils.clip_grad_norm_`: returns the norm of
/// `scale * grads` before clipping and the factor `scale * min(1, max_norm / (norm + 1e-6))`
/// to pass to [`crate::AdamW::step`] (gradients are not rewritten). `scale` is the
/// accumulation factor (`1 / micro-batches`); `max_norm <= 0` disables clipping.
pub fn clip_grad_norm(
    grads: &Grads,
    params: &[(String, Var)],
    max_norm: f64,
    scale: f64,
) -> Result<(f64, f64)> {
    let norm = grads.norm(params)? * scale;
    let clip = if max_norm > 0.0 {
        (max_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    Ok((norm, scale * clip))
}
