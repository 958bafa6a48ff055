//! AdamW (Loshchilov & Hutter 2019) with PyTorch's semantics and state that can be saved and
//! restored, so training resumes exactly.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::clip::Grads;
use crate::inplace::{FirstMoment, SecondMoment, Update};
use crate::{Error, Result};

/// AdamW hyper-parameters (the learning rate comes from the schedule at each step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults with no weight decay: betas (0.9, 0.999), eps 1e-8.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamWConfig {
    /// PAPER.md's setting: betas (0.9, 0.95), eps 1e-6.
    pub fn paper() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::Invalid(format!(
                    "adamw {name} = {b} must be in [0, 1)"
                )));
            }
        }
        if self.eps.is_nan()
            || self.eps <= 0.0
            || self.weight_decay.is_nan()
            || self.weight_decay < 0.0
        {
            return Err(Error::Invalid(format!(
                "adamw eps ({}) must be > 0 and weight_decay ({}) >= 0",
                self.eps, self.weight_decay
            )));
        }
        Ok(())
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Parameters updated.
    pub updated: usize,
    /// Names of parameters that had no gradient (left unchanged).
    pub without_grad: Vec<String>,
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// AdamW over named variables.
pub struct AdamW {
    cfg: AdamWConfig,
    slots: Vec<Slot>,
    step: u64,
}

impl AdamW {
    /// An optimiser over `params` with zeroed moments.
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        cfg.validate()?;
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                Ok(Slot { name, var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            cfg,
            slots,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// One update at learning rate `lr` using `grads` (scaled by `grad_scale`, e.g. the
    /// clipping factor of [`crate::clip_grad_norm`] or 1/n for accumulated micro-batches).
    pub fn step(&mut self, grads: &Grads, lr: f64, grad_scale: f64) -> Result<StepStats> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let update = Update {
            lr: lr as f32,
            weight_decay: self.cfg.weight_decay as f32,
            bias_correction1: (1.0 - b1.powi(t)) as f32,
            bias_correction2: (1.0 - b2.powi(t)) as f32,
            eps: self.cfg.eps as f32,
        };
        let mut stats = StepStats {
            updated: 0,
            without_grad: Vec::new(),
        };
        for slot in &mut self.slots {
            let Some(g) = grads.get(&slot.var) else {
                stats.without_grad.push(slot.name.clone());
                continue;
            };
            let p = slot.var.as_tensor();
            if p.device().is_cpu()
                && p.dtype() == DType::F32
                && p.is_contiguous()
                && g.dtype() == DType::F32
            {
                let g = g.contiguous()?;
                slot.m.inplace_op2(
                    &g,
                    &FirstMoment {
                        beta: b1 as f32,
                        scale: grad_scale as f32,
                    },
                )?;
                slot.v.inplace_op2(
                    &g,
                    &SecondMoment {
                        beta: b2 as f32,
                        scale: grad_scale as f32,
                    },
                )?;
                p.inplace_op3(&slot.m, &slot.v, &update)?;
            } else {
                // Any device or dtype: the same update with tensor ops.
                let g = (g.to_dtype(p.dtype())? * grad_scale)?;
                slot.m = ((&slot.m * b1)? + (&g * (1.0 - b1))?)?;
                slot.v = ((&slot.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                let m_hat = (&slot.m / f64::from(update.bias_correction1))?;
                let v_hat = (&slot.v / f64::from(update.bias_correction2))?;
                let next = ((p * (1.0 - lr * self.cfg.weight_decay))?
                    - ((m_hat / (v_hat.sqrt()? + self.cfg.eps)?)? * lr)?)?;
                slot.var.set(&next)?;
            }
            stats.updated += 1;
        }
        Ok(stats)
    }

    /// Writes the moments and step count as safetensors (`m.NAME`, `v.NAME`, `step`),
    /// atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let err = |msg: String| Error::State {
            path: path.into(),
            msg,
        };
        let mut tensors: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.slots.len() + 1);
        for s in &self.slots {
            tensors.push((format!("m.{}", s.name), s.m.to_device(&Device::Cpu)?));
            tensors.push((format!("v.{}", s.name), s.v.to_device(&Device::Cpu)?));
        }
        tensors.push((
            "step".into(),
            Tensor::new(&[self.step as i64], &Device::Cpu)?,
        ));
        let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let bytes = safetensors::tensor::serialize(views, None).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }

    /// Restores state written by [`AdamW::save`]; every parameter must be present with the
    /// same shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let err = |msg: String| Error::State {
            path: path.into(),
            msg,
        };
        let device = self
            .slots
            .first()
            .map(|s| s.var.device().clone())
            .unwrap_or(Device::Cpu);
        let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(path, &device)
            .map_err(|e| err(format!("cannot read optimiser state ({e})")))?;
        let step = tensors
            .remove("step")
            .ok_or_else(|| err("missing `step`".into()))?;
        let step = step
            .to_vec1::<i64>()?
            .first()
            .copied()
            .ok_or_else(|| err("empty `step`".into()))?;
        for s in &mut self.slots {
            for (kind, dst) in [("m", &mut s.m), ("v", &mut s.v)] {
                let key = format!("{kind}.{}", s.name);
                let t = tensors.remove(&key).ok_or_else(|| {
                    err(format!(
                        "missing `{key}`; was the state saved for another model or LoRA setting?"
                    ))
                })?;
                if t.dims() != dst.dims() {
                    return Err(err(format!(
                        "`{key}` has shape {:?}, the parameter has {:?}",
                        t.dims(),
                        dst.dims()
                    )));
                }
                *dst = t.to_dtype(dst.dtype())?;
            }
        }
        if let Some(extra) = tensors.keys().next() {
            return Err(err(format!("`{extra}` matches no parameter of this model")));
        }
        self.step = step.max(0) as u64;
        Ok(())
    }
}
