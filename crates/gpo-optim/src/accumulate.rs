//! Summing gradients over micro-batches.

use std::collections::HashSet;

use candle_core::backprop::GradStore;
use candle_core::Var;

use crate::clip::scale_grads;
use crate::kernels::{inplace_ok, storage_key, AddAssign};
use crate::{Error, Result};

/// Sums the gradients of a set of parameters over micro-batches.
///
/// With a loss that is a mean over examples, `n` equal micro-batches give the full batch's
/// gradient as [`GradAccumulator::mean`] of their gradients. Only the parameters' gradients
/// are kept from each [`GradStore`]; a parameter without a gradient in some micro-batch
/// counts as zero there.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use gpo_optim::GradAccumulator;
/// # fn main() -> gpo_optim::Result<()> {
/// let w = Var::new(&[1f32, 2.0], &Device::Cpu)?;
/// let params = vec![("w".to_string(), w.clone())];
/// let mut acc = GradAccumulator::new(&params);
/// for scale in [1.0, 3.0] {
///     let loss = (w.as_tensor().sum_all()? * scale)?;
///     acc.add(loss.backward()?)?;
/// }
/// let grads = acc.mean()?; // (1 + 3) / 2 per element
/// assert_eq!(grads.get(w.as_tensor()).unwrap().to_vec1::<f32>()?, [2.0, 2.0]);
/// # Ok(()) }
/// ```
pub struct GradAccumulator {
    params: Vec<(String, Var)>,
    sums: GradStore,
    /// Storage addresses of the sums, so that no two sums share memory.
    keys: HashSet<usize>,
    micro_batches: usize,
}

impl GradAccumulator {
    /// An empty accumulator for `params`.
    pub fn new(params: &[(String, Var)]) -> Self {
        GradAccumulator {
            params: params.to_vec(),
            sums: GradStore::default(),
            keys: HashSet::new(),
            micro_batches: 0,
        }
    }

    /// Adds one micro-batch's gradients. The store is consumed: its gradient tensors become
    /// the running sums and are added to in place.
    pub fn add(&mut self, mut grads: GradStore) -> Result<()> {
        for (name, var) in &self.params {
            let Some(g) = grads.remove(var.as_tensor()) else {
                continue;
            };
            if g.dims() != var.dims() {
                return Err(Error::Invalid(format!(
                    "the micro-batch gradient of `{name}` has shape {:?} but the parameter has {:?}",
                    g.dims(),
                    var.dims()
                )));
            }
            let sum = match self.sums.remove(var.as_tensor()) {
                None if self.keys.contains(&storage_key(&g)) => g.copy()?,
                None => g,
                Some(acc) if inplace_ok(&acc) && acc.dtype() == g.dtype() && g.is_contiguous() => {
                    acc.inplace_op2(&g, &AddAssign)?;
                    acc
                }
                Some(acc) => {
                    let g = g.to_dtype(acc.dtype())?;
                    (acc + g)?
                }
            };
            self.keys.insert(storage_key(&sum));
            self.sums.insert(var.as_tensor(), sum);
        }
        self.micro_batches += 1;
        Ok(())
    }

    /// Micro-batches added so far.
    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    /// The summed gradients.
    pub fn sum(self) -> GradStore {
        self.sums
    }

    /// The summed gradients divided by the number of micro-batches; fails if none was added.
    pub fn mean(self) -> Result<GradStore> {
        if self.micro_batches == 0 {
            return Err(Error::Invalid(
                "no micro-batch gradients were accumulated: call add() before mean()".into(),
            ));
        }
        let n = self.micro_batches as f64;
        let mut sums = self.sums;
        scale_grads(&mut sums, &self.params, 1.0 / n)?;
        Ok(sums)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn missing_gradients_count_as_zero_and_empty_mean_is_refused() {
        let a = Var::new(&[1f32], &Device::Cpu).unwrap();
        let b = Var::new(&[1f32], &Device::Cpu).unwrap();
        let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut acc = GradAccumulator::new(&params);
        acc.add(
            (a.as_tensor() * 2.0)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap(),
        )
        .unwrap();
        acc.add(
            (a.as_tensor() + b.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(acc.micro_batches(), 2);
        let g = acc.mean().unwrap();
        assert_eq!(
            g.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            [1.5]
        );
        assert_eq!(
            g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            [0.5]
        );
        let err = GradAccumulator::new(&params)
            .mean()
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no micro-batch gradients"), "{err}");
    }

    #[test]
    fn gradients_sharing_memory_are_not_summed_into_each_other() {
        let a = Var::new(&[0f32, 0.0], &Device::Cpu).unwrap();
        let b = Var::new(&[0f32, 0.0], &Device::Cpu).unwrap();
        let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut acc = GradAccumulator::new(&params);
        for _ in 0..2 {
            let shared = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
            let mut store = GradStore::default();
            store.insert(a.as_tensor(), shared.clone());
            store.insert(b.as_tensor(), shared);
            acc.add(store).unwrap();
        }
        let g = acc.sum();
        assert_eq!(
            g.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            [2.0, 4.0]
        );
        assert_eq!(
            g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            [2.0, 4.0]
        );
    }

    #[test]
    fn wrong_gradient_shape_names_the_parameter() {
        let a = Var::new(&[0f32, 0.0], &Device::Cpu).unwrap();
        let mut acc = GradAccumulator::new(&[("a".to_string(), a.clone())]);
        let mut store = GradStore::default();
        store.insert(a.as_tensor(), Tensor::new(&[1f32], &Device::Cpu).unwrap());
        let err = acc.add(store).unwrap_err().to_string();
        assert!(err.contains("gradient of `a` has shape [1]"), "{err}");
    }
}
