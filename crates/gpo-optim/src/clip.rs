//! The global gradient norm, clipping by it (`torch.nn.utils.clip_grad_norm_`), and scaling
//! gradients in place.

use std::collections::{HashMap, HashSet};

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::kernels::{inplace_ok, storage_key, sum_squares, Scale};
use crate::{Error, Result};

/// PyTorch's guard against division by zero in the clipping coefficient.
const CLIP_EPS: f64 = 1e-6;

/// The gradients of `params` found in `grads`, each variable once.
fn present<'a>(grads: &'a GradStore, params: &'a [(String, Var)]) -> Vec<(&'a Var, &'a Tensor)> {
    let mut seen = HashSet::new();
    params
        .iter()
        .filter(|(_, v)| seen.insert(v.as_tensor().id()))
        .filter_map(|(_, v)| grads.get(v.as_tensor()).map(|g| (v, g)))
        .collect()
}

/// The global L2 norm `sqrt(sum_p sum_i g_pi^2)` of the gradients of `params` (a missing
/// gradient counts as zero), with squares summed in f64 on the CPU (in f32 on other
/// devices).
pub fn grad_norm(grads: &GradStore, params: &[(String, Var)]) -> Result<f64> {
    let mut total = 0f64;
    for (_, g) in present(grads, params) {
        total += sum_squares(g)?;
    }
    Ok(total.sqrt())
}

/// Multiplies the gradients of `params` by `factor`, in place where the memory is the
/// gradient's own (contiguous f32/f64 CPU tensors that share no storage with another of
/// these gradients), by replacing the entry with a new tensor otherwise. As with PyTorch's
/// `grad.mul_`, a clone of a gradient tensor taken earlier sees the change.
pub fn scale_grads(grads: &mut GradStore, params: &[(String, Var)], factor: f64) -> Result<()> {
    let found = present(grads, params);
    let mut owners: HashMap<usize, usize> = HashMap::new();
    for (_, g) in &found {
        *owners.entry(storage_key(g)).or_default() += 1;
    }
    let mut replace = Vec::new();
    for (v, g) in found {
        if inplace_ok(g) && owners[&storage_key(g)] == 1 {
            g.inplace_op1(&Scale(factor))?;
        } else {
            replace.push((v.clone(), (g * factor)?));
        }
    }
    for (v, g) in replace {
        grads.insert(v.as_tensor(), g);
    }
    Ok(())
}

/// Clips the gradients of `params` to global norm `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_(params, max_norm)`: with `norm` = [`grad_norm`], the
/// gradients are multiplied in place by `min(1, max_norm / (norm + 1e-6))` (see
/// [`scale_grads`]). Returns the norm before clipping.
///
/// A non-finite norm (an overflowed or NaN gradient) is returned with the gradients left
/// unchanged; check `norm.is_finite()` and skip the step. `max_norm` must be > 0;
/// `f64::INFINITY` measures without clipping.
pub fn clip_grad_norm(
    grads: &mut GradStore,
    params: &[(String, Var)],
    max_norm: f64,
) -> Result<f64> {
    if max_norm.is_nan() || max_norm <= 0.0 {
        return Err(Error::Invalid(format!(
            "gradient clipping max_norm = {max_norm} is out of range: it must be > 0 (inf to disable)"
        )));
    }
    let norm = grad_norm(grads, params)?;
    if !norm.is_finite() {
        return Ok(norm);
    }
    let coef = max_norm / (norm + CLIP_EPS);
    if coef < 1.0 {
        scale_grads(grads, params, coef)?;
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn setup() -> (Vec<(String, Var)>, GradStore) {
        let a = Var::new(&[3f32, 0.0], &Device::Cpu).unwrap();
        let b = Var::new(&[[4f32]], &Device::Cpu).unwrap();
        // loss = 0.5 * (|a|^2 + |b|^2): gradients equal the values, norm 5.
        let loss = ((a.as_tensor().sqr().unwrap().sum_all().unwrap()
            + b.as_tensor().sqr().unwrap().sum_all().unwrap())
        .unwrap()
            * 0.5)
            .unwrap();
        let grads = loss.backward().unwrap();
        (vec![("a".into(), a), ("b".into(), b)], grads)
    }

    fn grad(grads: &GradStore, p: &(String, Var)) -> Vec<f32> {
        grads
            .get(p.1.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn clipping_scales_to_max_norm_and_returns_the_norm_before() {
        let (params, mut grads) = setup();
        assert_eq!(clip_grad_norm(&mut grads, &params, 1.0).unwrap(), 5.0);
        let coef = (1.0 / (5.0 + 1e-6)) as f32;
        assert_eq!(grad(&grads, &params[0]), [3.0 * coef, 0.0]);
        assert_eq!(grad(&grads, &params[1]), [4.0 * coef]);
        // Below the threshold nothing changes.
        let (params, mut grads) = setup();
        assert_eq!(clip_grad_norm(&mut grads, &params, 10.0).unwrap(), 5.0);
        assert_eq!(grad(&grads, &params[0]), [3.0, 0.0]);
    }

    #[test]
    fn a_variable_listed_twice_counts_once() {
        let (mut params, grads) = setup();
        params.push(params[0].clone());
        assert_eq!(grad_norm(&grads, &params).unwrap(), 5.0);
    }

    #[test]
    fn shared_or_half_precision_gradients_are_replaced_not_mutated() {
        let (params, mut grads) = setup();
        // Both parameters' entries point at one tensor: scaling in place would apply twice.
        let shared = Tensor::new(&[1f32, 1.0], &Device::Cpu).unwrap();
        grads.insert(params[0].1.as_tensor(), shared.clone());
        grads.insert(params[1].1.as_tensor(), shared.reshape((2, 1)).unwrap());
        scale_grads(&mut grads, &params, 0.5).unwrap();
        assert_eq!(shared.to_vec1::<f32>().unwrap(), [1.0, 1.0]);
        assert_eq!(grad(&grads, &params[0]), [0.5, 0.5]);
        assert_eq!(grad(&grads, &params[1]), [0.5, 0.5]);
        let half = Tensor::new(&[2f32, 4.0], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        grads.insert(params[0].1.as_tensor(), half);
        scale_grads(&mut grads, &params, 0.5).unwrap();
        let g = grads.get(params[0].1.as_tensor()).unwrap();
        assert_eq!(
            g.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap(),
            [1.0, 2.0]
        );
    }

    #[test]
    fn non_finite_norm_leaves_gradients_alone_and_bad_max_norm_is_refused() {
        let (params, mut grads) = setup();
        grads.insert(
            params[0].1.as_tensor(),
            Tensor::new(&[f32::INFINITY, 1.0], &Device::Cpu).unwrap(),
        );
        assert!(clip_grad_norm(&mut grads, &params, 1.0)
            .unwrap()
            .is_infinite());
        assert_eq!(grad(&grads, &params[1]), [4.0]);
        let err = clip_grad_norm(&mut grads, &params, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_norm = 0"), "{err}");
    }
}
