//! AdamW (Loshchilov & Hutter 2019) over named variables, with `torch.optim.AdamW`'s
//! semantics: decoupled weight decay, bias correction, a step count per parameter, and
//! parameters without a gradient skipped. Half-precision parameters train through f32
//! master copies: an update smaller than half an ulp of a bf16 weight would otherwise
//! round away.

use std::cell::RefCell;
use std::collections::HashSet;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::config::AdamWConfig;
use crate::kernels::{AdamWCoeffs, FusedAdamW};
use crate::{Error, Result};

/// What one [`AdamW::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Optimiser steps taken, this one included.
    pub step: u64,
    /// Learning rate used.
    pub lr: f64,
    /// Parameters updated.
    pub updated: usize,
    /// Parameters that had no gradient in the store, in parameter order; they are left
    /// unchanged and their moments and step count do not advance (as in PyTorch).
    pub without_grad: Vec<String>,
}

/// First and second moments of one parameter.
pub(crate) enum Moments {
    /// Contiguous f32 CPU parameters: plain vectors, updated with the parameter in one
    /// fused pass ([`FusedAdamW`]).
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Any other device or dtype: tensors on the parameter's device, in f32 for half
    /// precision parameters and in the parameter's dtype otherwise.
    Tensors { m: Tensor, v: Tensor },
}

/// A parameter and its optimiser state.
pub(crate) struct Slot {
    pub name: String,
    pub var: Var,
    pub moments: Moments,
    /// Updates applied to this parameter (PyTorch's per-parameter `state["step"]`).
    pub step: u64,
    /// For a half-precision parameter, its value in the state dtype (f32): updates apply
    /// here, and `var` holds it rounded to the parameter's dtype. `None` otherwise.
    pub master: Option<Tensor>,
}

impl Slot {
    fn new(name: String, var: Var) -> Result<Self> {
        let t = var.as_tensor();
        let moments = if t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous() {
            let n = t.elem_count();
            Moments::Host {
                m: vec![0.0; n],
                v: vec![0.0; n],
            }
        } else {
            let dtype = state_dtype(t.dtype());
            Moments::Tensors {
                m: Tensor::zeros(t.shape(), dtype, t.device())?,
                v: Tensor::zeros(t.shape(), dtype, t.device())?,
            }
        };
        let master = master_of(&var)?;
        Ok(Slot {
            name,
            var,
            moments,
            step: 0,
            master,
        })
    }
}

/// A fresh master copy of `var` when its dtype is narrower than its state dtype (bf16,
/// f16); `None` for f32 and f64 parameters, which are updated directly.
pub(crate) fn master_of(var: &Var) -> Result<Option<Tensor>> {
    let dtype = state_dtype(var.dtype());
    if dtype == var.dtype() {
        return Ok(None);
    }
    Ok(Some(var.as_tensor().to_dtype(dtype)?.copy()?))
}

/// The dtype the moments of a parameter of dtype `param` are kept in.
pub(crate) fn state_dtype(param: DType) -> DType {
    match param {
        DType::F64 => DType::F64,
        _ => DType::F32,
    }
}

/// AdamW over named [`Var`]s.
///
/// Moments start at zero. Each [`AdamW::step`] takes the learning rate explicitly, so any
/// [`crate::LrSchedule`] can drive it; the state (moments, step counts, master copies)
/// saves to and loads from safetensors keyed by parameter name ([`AdamW::save`],
/// [`AdamW::load`]).
///
/// A bf16 or f16 parameter gets an f32 master copy, taken from the variable in
/// [`AdamW::new`]: each step updates the master in f32 and writes it, rounded, into the
/// variable, so small updates accumulate instead of rounding away. The optimiser owns
/// such a parameter's value from then on: a value set into the variable directly is
/// overwritten at the next step (restore checkpoints with [`AdamW::load`], which restores
/// the masters too).
pub struct AdamW {
    pub(crate) cfg: AdamWConfig,
    pub(crate) slots: Vec<Slot>,
    pub(crate) step: u64,
}

impl AdamW {
    /// An optimiser over `params` with zeroed moments. Fails on an invalid `cfg` and on a
    /// name or variable listed twice (its state would be ambiguous).
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        cfg.validate()?;
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        let mut slots = Vec::with_capacity(params.len());
        for (name, var) in params {
            if !names.insert(name.clone()) {
                return Err(Error::Invalid(format!(
                    "parameter name `{name}` is given to the optimiser twice; names key its state"
                )));
            }
            if !ids.insert(var.as_tensor().id()) {
                return Err(Error::Invalid(format!(
                    "parameter `{name}` is a variable already given to the optimiser under another name"
                )));
            }
            slots.push(Slot::new(name, var)?);
        }
        Ok(AdamW {
            cfg,
            slots,
            step: 0,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Optimiser steps taken so far (restored by [`AdamW::load`]); the `step` argument of
    /// [`crate::LrSchedule::lr_at`] for the next step.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The parameters, in the order given to [`AdamW::new`].
    pub fn params(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.var))
    }

    /// The f32 master copy of the half-precision parameter `name`: the value the updates
    /// apply to. `None` for f32 and f64 parameters (they have none) and unknown names.
    pub fn master(&self, name: &str) -> Option<&Tensor> {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.master.as_ref())
    }

    /// One update at learning rate `lr` from the gradients in `grads`, exactly as
    /// `torch.optim.AdamW.step` (single-tensor path) with per-parameter step `t`:
    ///
    /// ```text
    /// p <- p * (1 - lr * weight_decay)
    /// m <- lerp(m, g, 1 - beta1)               = beta1 m + (1 - beta1) g
    /// v <- beta2 v + (1 - beta2) g^2
    /// p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    /// ```
    ///
    /// A half-precision parameter's `p` is its f32 master copy, written back rounded.
    /// Parameters without a gradient are skipped and reported in
    /// [`StepStats::without_grad`]. Fails on a negative or non-finite `lr` or on a gradient
    /// whose shape differs from its parameter's; a failure leaves earlier parameters of
    /// this step updated.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<StepStats> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::Invalid(format!(
                "learning rate {lr} is out of range: it must be finite and >= 0"
            )));
        }
        for slot in &self.slots {
            if let Some(g) = grads.get(slot.var.as_tensor()) {
                if g.dims() != slot.var.dims() {
                    return Err(Error::Invalid(format!(
                        "the gradient of `{}` has shape {:?} but the parameter has {:?}",
                        slot.name,
                        g.dims(),
                        slot.var.dims()
                    )));
                }
            }
        }
        self.step += 1;
        let mut stats = StepStats {
            step: self.step,
            lr,
            updated: 0,
            without_grad: Vec::new(),
        };
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                stats.without_grad.push(slot.name.clone());
                continue;
            };
            slot.step += 1;
            update(&self.cfg, slot, g, lr)?;
            stats.updated += 1;
        }
        Ok(stats)
    }
}

/// The scalars of one step in f64, computed as PyTorch's Python code does.
#[derive(Clone, Copy)]
struct Scalars {
    decay: Option<f64>,
    lerp_weight: f64,
    beta2: f64,
    one_minus_beta2: f64,
    bias_correction2_sqrt: f64,
    eps: f64,
    neg_step_size: f64,
}

impl Scalars {
    /// Step `t` (1-based, per parameter) at learning rate `lr`.
    fn new(cfg: &AdamWConfig, t: u64, lr: f64) -> Self {
        let t = t as f64;
        let bias_correction1 = 1.0 - cfg.beta1.powf(t);
        let bias_correction2 = 1.0 - cfg.beta2.powf(t);
        Scalars {
            decay: (cfg.weight_decay != 0.0).then_some(1.0 - lr * cfg.weight_decay),
            lerp_weight: 1.0 - cfg.beta1,
            beta2: cfg.beta2,
            one_minus_beta2: 1.0 - cfg.beta2,
            bias_correction2_sqrt: bias_correction2.powf(0.5),
            eps: cfg.eps,
            neg_step_size: -(lr / bias_correction1),
        }
    }

    /// Rounded once to f32, as torch passes Python floats to f32 kernels.
    fn to_f32(self) -> AdamWCoeffs {
        AdamWCoeffs {
            decay: self.decay.map(|d| d as f32),
            lerp_weight: self.lerp_weight as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: self.one_minus_beta2 as f32,
            bias_correction2_sqrt: self.bias_correction2_sqrt as f32,
            eps: self.eps as f32,
            neg_step_size: self.neg_step_size as f32,
        }
    }

    /// The scalars a tensor of `dtype` computes with: f64 for f64, f32 otherwise.
    fn for_dtype(self, dtype: DType) -> Self {
        if dtype == DType::F64 {
            return self;
        }
        let c = self.to_f32();
        Scalars {
            decay: c.decay.map(f64::from),
            lerp_weight: f64::from(c.lerp_weight),
            beta2: f64::from(c.beta2),
            one_minus_beta2: f64::from(c.one_minus_beta2),
            bias_correction2_sqrt: f64::from(c.bias_correction2_sqrt),
            eps: f64::from(c.eps),
            neg_step_size: f64::from(c.neg_step_size),
        }
    }
}

fn update(cfg: &AdamWConfig, slot: &mut Slot, g: &Tensor, lr: f64) -> Result<()> {
    let scalars = Scalars::new(cfg, slot.step, lr);
    match &mut slot.moments {
        Moments::Host { m, v } => {
            let g = if g.dtype() == DType::F32 && g.is_contiguous() {
                g.clone()
            } else {
                g.to_dtype(DType::F32)?.contiguous()?
            };
            let op = FusedAdamW {
                coeffs: scalars.to_f32(),
                moments: RefCell::new((m.as_mut_slice(), v.as_mut_slice())),
            };
            slot.var.as_tensor().inplace_op2(&g, &op)?;
        }
        Moments::Tensors { m, v } => {
            let p = match &slot.master {
                Some(master) => master.clone(),
                None => slot.var.as_tensor().to_dtype(m.dtype())?,
            };
            let p = tensor_update(scalars, m, v, g, p)?;
            slot.var.set(&p.to_dtype(slot.var.dtype())?)?;
            if let Some(master) = &mut slot.master {
                *master = p;
            }
        }
    }
    Ok(())
}

/// The kernel's arithmetic with tensor ops, in the state dtype of `m` and `v` (which it
/// updates): returns the new `p`. The gradient `g` is cast to that dtype first.
fn tensor_update(
    scalars: Scalars,
    m: &mut Tensor,
    v: &mut Tensor,
    g: &Tensor,
    mut p: Tensor,
) -> Result<Tensor> {
    let dtype = m.dtype();
    let c = scalars.for_dtype(dtype);
    let g = g.to_dtype(dtype)?;
    if let Some(d) = c.decay {
        p = (p * d)?;
    }
    let w = c.lerp_weight;
    *m = if w < 0.5 {
        (&*m + ((&g - &*m)? * w)?)?
    } else {
        (&g - ((&g - &*m)? * (1.0 - w))?)?
    };
    *v = ((&*v * c.beta2)? + ((&g * c.one_minus_beta2)? * &g)?)?;
    // A true division, as torch does: candle's `tensor / f64` multiplies by the
    // reciprocal, which rounds differently.
    let bc2_sqrt = Tensor::new(c.bias_correction2_sqrt, v.device())?.to_dtype(dtype)?;
    let denom = (v.sqrt()?.broadcast_div(&bc2_sqrt)? + c.eps)?;
    Ok((p + ((&*m * c.neg_step_size)? / denom)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn quadratic_grads(vars: &[&Var]) -> GradStore {
        let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
        for v in vars {
            let l = v
                .as_tensor()
                .to_dtype(DType::F32)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            loss = (loss + l).unwrap();
        }
        loss.backward().unwrap()
    }

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // With zero moments, step 1 gives m_hat = g, v_hat = g^2: p -= lr * g / (|g| + eps).
        let w = Var::new(&[1f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        let stats = opt.step(&quadratic_grads(&[&w]), 0.1).unwrap();
        assert_eq!((stats.step, stats.updated), (1, 1));
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        for (g, want) in got.iter().zip([0.9f32, -1.9, 0.4]) {
            assert!((g - want).abs() < 1e-6, "{g} vs {want}");
        }
    }

    #[test]
    fn fused_kernel_equals_the_tensor_op_path_bit_for_bit() {
        // 100k elements span several parallel chunks; both paths do the same f32 arithmetic.
        let n = 100_003;
        let init: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let fused = Var::from_vec(init.clone(), n, &Device::Cpu).unwrap();
        let plain = Var::from_vec(init, n, &Device::Cpu).unwrap();
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::paper()
        };
        let mut a = AdamW::new(vec![("w".into(), fused.clone())], cfg).unwrap();
        let mut b = AdamW::new(vec![("w".into(), plain.clone())], cfg).unwrap();
        b.slots[0].moments = Moments::Tensors {
            m: plain.zeros_like().unwrap(),
            v: plain.zeros_like().unwrap(),
        };
        for k in 0..3 {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * (k + 2)) as f32 * 0.11).cos())
                .collect();
            let g = Tensor::from_vec(g, n, &Device::Cpu).unwrap();
            for (opt, var) in [(&mut a, &fused), (&mut b, &plain)] {
                let mut store = GradStore::default();
                store.insert(var.as_tensor(), g.clone());
                opt.step(&store, 1e-2).unwrap();
            }
        }
        let (x, y) = (
            fused.as_tensor().to_vec1::<f32>().unwrap(),
            plain.as_tensor().to_vec1::<f32>().unwrap(),
        );
        assert!(x.iter().zip(&y).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn params_without_gradient_are_skipped_and_reported() {
        let a = Var::new(&[1f32], &Device::Cpu).unwrap();
        let b = Var::new(&[2f32], &Device::Cpu).unwrap();
        let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut opt = AdamW::new(params, AdamWConfig::default()).unwrap();
        let stats = opt.step(&quadratic_grads(&[&a]), 0.1).unwrap();
        assert_eq!(stats.without_grad, ["b"]);
        assert_eq!(stats.updated, 1);
        assert_eq!(b.as_tensor().to_vec1::<f32>().unwrap(), [2.0]);
        assert_eq!(opt.slots[1].step, 0);
        assert_eq!(opt.step_count(), 1);
    }

    #[test]
    fn half_precision_params_take_the_tensor_path_with_f32_state() {
        // bf16 parameter: moments in f32, update rounded to bf16. Step 1 moves by lr.
        let w = Var::from_tensor(
            &Tensor::new(&[1f32, -2.0], &Device::Cpu)
                .unwrap()
                .to_dtype(DType::BF16)
                .unwrap(),
        )
        .unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        assert!(
            matches!(&opt.slots[0].moments, Moments::Tensors { m, .. } if m.dtype() == DType::F32)
        );
        opt.step(&quadratic_grads(&[&w]), 0.5).unwrap();
        let got = w
            .as_tensor()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(got, [0.5, -1.5]);
    }

    #[test]
    fn bf16_params_at_lr_5e_7_train_through_an_f32_master() {
        // 5e-7 is the paper's defender rate: below half an ulp of these bf16 weights (2^-9
        // just under 1.0, 2^-19 just under 2^-10), so without a master each step rounds back.
        // Gradients exact in bf16 give the master's tensor path and an f32 parameter's
        // fused kernel the same inputs: their trajectories agree bit for bit.
        let init = [1f32, -2.0, 2f32.powi(-10), 0.5];
        let grad = Tensor::new(&[1f32, -0.5, 1.0, 0.25], &Device::Cpu).unwrap();
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::paper()
        };
        let f32_var = Var::new(&init, &Device::Cpu).unwrap();
        let bf16_var = Var::from_tensor(&f32_var.to_dtype(DType::BF16).unwrap()).unwrap();
        let mut a = AdamW::new(vec![("w".into(), f32_var.clone())], cfg).unwrap();
        let mut b = AdamW::new(vec![("w".into(), bf16_var.clone())], cfg).unwrap();
        assert!(a.master("w").is_none());
        for _ in 0..8 {
            for (opt, var) in [(&mut a, &f32_var), (&mut b, &bf16_var)] {
                let mut store = GradStore::default();
                store.insert(var.as_tensor(), grad.to_dtype(var.dtype()).unwrap());
                opt.step(&store, 5e-7).unwrap();
            }
        }
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
            v.iter().map(|x| x.to_bits()).collect()
        };
        let master = b.master("w").unwrap();
        assert_eq!(bits(master), bits(f32_var.as_tensor()));
        let rounded = master.to_dtype(DType::BF16).unwrap();
        assert_eq!(bits(bf16_var.as_tensor()), bits(&rounded));
        // 8 steps of ~5e-7 (4e-6) move the master of 1.0 but not its bf16 value; 2^-10
        // moves by one bf16 ulp (2^-18 = 3.8e-6).
        let got = bf16_var
            .as_tensor()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let m = master.to_vec1::<f32>().unwrap();
        assert!(got[0] == 1.0 && m[0] < 1.0 - 3e-6, "{} {}", got[0], m[0]);
        assert_eq!(got[2], 2f32.powi(-10) - 2f32.powi(-18));
    }

    #[test]
    fn bad_learning_rate_and_gradient_shape_are_refused() {
        let w = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        let grads = quadratic_grads(&[&w]);
        let err = opt.step(&grads, f64::NAN).unwrap_err().to_string();
        assert!(err.contains("learning rate NaN"), "{err}");
        let mut wrong = quadratic_grads(&[&w]);
        wrong.insert(w.as_tensor(), Tensor::new(&[1f32], &Device::Cpu).unwrap());
        let err = opt.step(&wrong, 0.1).unwrap_err().to_string();
        assert!(err.contains("gradient of `w` has shape [1]"), "{err}");
        assert_eq!(opt.step_count(), 0);
    }

    #[test]
    fn duplicate_names_or_variables_are_refused() {
        let a = Var::new(&[1f32], &Device::Cpu).unwrap();
        let b = Var::new(&[1f32], &Device::Cpu).unwrap();
        let twice = vec![("a".to_string(), a.clone()), ("a".to_string(), b)];
        let err = AdamW::new(twice, AdamWConfig::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`a` is given to the optimiser twice"), "{err}");
        let aliased = vec![("a".to_string(), a.clone()), ("b".to_string(), a)];
        let err = AdamW::new(aliased, AdamWConfig::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`b` is a variable already given"), "{err}");
    }
}
