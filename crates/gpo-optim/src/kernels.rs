//! In-place CPU kernels: the fused AdamW update, gradient scaling, gradient accumulation and
//! an f64 sum of squares. candle's tensor ops allocate a fresh buffer per op; for a
//! 135M-parameter model those allocations and passes over memory would dominate the
//! optimiser step, so the f32 CPU case runs here, split over rayon's threads. Every kernel
//! is elementwise (or reduces chunk sums in a fixed order), so results do not depend on the
//! thread count.

use std::cell::RefCell;

use candle_core::{CpuStorage, DType, InplaceOp1, InplaceOp2, Layout, Storage, Tensor};
use rayon::prelude::*;

/// Elements per parallel task: large enough to amortise scheduling, small enough to
/// balance two to sixteen threads on 1M+ element tensors.
const CHUNK: usize = 1 << 15;

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Option<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Some(&v[a..b]),
        _ => None,
    }
}

fn needs(name: &str, what: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{name}: needs {what}"))
}

/// Scalars of one AdamW step for one parameter, in f32 as PyTorch applies them to f32
/// tensors (each is computed in f64 first, then rounded once).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamWCoeffs {
    /// `1 - lr * weight_decay`, applied only when `weight_decay != 0` (as PyTorch does).
    pub decay: Option<f32>,
    /// `1 - beta1`, the weight of `lerp(m, g, 1 - beta1)`.
    pub lerp_weight: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bias_correction2_sqrt: f32,
    /// `eps`.
    pub eps: f32,
    /// `-lr / (1 - beta1^t)`.
    pub neg_step_size: f32,
}

impl AdamWCoeffs {
    /// PyTorch's `_single_tensor_adam` (decoupled weight decay), one element, in its order
    /// of f32 operations. Returns the new `(p, m, v)`.
    #[inline(always)]
    pub fn apply(&self, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let p = match self.decay {
            Some(d) => p * d,
            None => p,
        };
        // torch's lerp switches formula at weight 0.5 for accuracy.
        let w = self.lerp_weight;
        let m = if w < 0.5 {
            m + w * (g - m)
        } else {
            g - (g - m) * (1.0 - w)
        };
        let v = v * self.beta2 + self.one_minus_beta2 * g * g;
        let denom = v.sqrt() / self.bias_correction2_sqrt + self.eps;
        (p + self.neg_step_size * m / denom, m, v)
    }
}

/// One fused pass over a contiguous f32 CPU parameter (the destination), its gradient (the
/// source) and the moments, which live in plain vectors owned by the optimiser.
pub(crate) struct FusedAdamW<'a> {
    pub coeffs: AdamWCoeffs,
    /// First and second moments; `RefCell` because candle hands the op over by `&self`.
    pub moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
}

impl InplaceOp2 for FusedAdamW<'_> {
    fn name(&self) -> &'static str {
        "gpo-adamw"
    }

    fn cpu_fwd(
        &self,
        ps: &mut CpuStorage,
        pl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(), candle_core::Error> {
        let g = f32_slice(gs, gl).ok_or_else(|| needs(self.name(), "a contiguous f32 gradient"))?;
        let p = match (ps, pl.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((a, b))) => &mut v[a..b],
            _ => return Err(needs(self.name(), "a contiguous f32 parameter")),
        };
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
            return Err(needs(
                self.name(),
                "gradient and moments of the parameter's size",
            ));
        }
        let c = self.coeffs;
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((p, g), (m, v))| {
                for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    (*p, *m, *v) = c.apply(*p, *g, *m, *v);
                }
            });
        Ok(())
    }
}

/// `x <- x * factor` for contiguous f32 or f64 CPU tensors.
pub(crate) struct Scale(pub f64);

impl InplaceOp1 for Scale {
    fn name(&self) -> &'static str {
        "gpo-scale"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<(), candle_core::Error> {
        match (s, l.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((a, b))) => {
                let f = self.0 as f32;
                v[a..b]
                    .par_chunks_mut(CHUNK)
                    .for_each(|c| c.iter_mut().for_each(|x| *x *= f));
            }
            (CpuStorage::F64(v), Some((a, b))) => {
                let f = self.0;
                v[a..b]
                    .par_chunks_mut(CHUNK)
                    .for_each(|c| c.iter_mut().for_each(|x| *x *= f));
            }
            _ => return Err(needs(self.name(), "a contiguous f32 or f64 tensor")),
        }
        Ok(())
    }
}

/// `acc <- acc + x` for contiguous f32 or f64 CPU tensors of one dtype.
pub(crate) struct AddAssign;

impl InplaceOp2 for AddAssign {
    fn name(&self) -> &'static str {
        "gpo-add-assign"
    }

    fn cpu_fwd(
        &self,
        ds: &mut CpuStorage,
        dl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(), candle_core::Error> {
        match (ds, dl.contiguous_offsets(), xs, xl.contiguous_offsets()) {
            (CpuStorage::F32(d), Some((a, b)), CpuStorage::F32(x), Some((c, e)))
                if b - a == e - c =>
            {
                add_assign(&mut d[a..b], &x[c..e]);
            }
            (CpuStorage::F64(d), Some((a, b)), CpuStorage::F64(x), Some((c, e)))
                if b - a == e - c =>
            {
                add_assign(&mut d[a..b], &x[c..e]);
            }
            _ => {
                return Err(needs(
                    self.name(),
                    "two contiguous f32 or f64 tensors of one size",
                ))
            }
        }
        Ok(())
    }
}

fn add_assign<T: Copy + Send + Sync + std::ops::AddAssign>(d: &mut [T], x: &[T]) {
    d.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(d, x)| d.iter_mut().zip(x).for_each(|(d, x)| *d += *x));
}

/// Whether `t` is a contiguous f32/f64 CPU tensor, the kind [`Scale`] and [`AddAssign`] take.
pub(crate) fn inplace_ok(t: &Tensor) -> bool {
    t.device().is_cpu() && t.is_contiguous() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// The address of `t`'s storage: equal for tensors that share memory.
pub(crate) fn storage_key(t: &Tensor) -> usize {
    let (s, _) = t.storage_and_layout();
    std::ptr::from_ref::<Storage>(&*s) as usize
}

/// `sum(x^2)` accumulated in f64. CPU tensors are read in place (f32/f64 contiguous) or
/// converted to f64; on other devices the reduction runs there in f32.
pub(crate) fn sum_squares(t: &Tensor) -> candle_core::Result<f64> {
    if !t.device().is_cpu() {
        return t
            .to_dtype(DType::F32)?
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar();
    }
    {
        let (s, l) = t.storage_and_layout();
        match (&*s, l.contiguous_offsets()) {
            (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => {
                return Ok(chunked_sum(&v[a..b], |x| f64::from(x) * f64::from(x)));
            }
            (Storage::Cpu(CpuStorage::F64(v)), Some((a, b))) => {
                return Ok(chunked_sum(&v[a..b], |x| x * x));
            }
            _ => {}
        }
    }
    let t = t.to_dtype(DType::F64)?.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match (&*s, l.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F64(v)), Some((a, b))) => Ok(chunked_sum(&v[a..b], |x| x * x)),
        _ => Err(needs("gpo-sum-squares", "a CPU tensor")),
    }
}

/// Chunk sums in parallel, added in chunk order (deterministic for any thread count).
fn chunked_sum<T: Copy + Sync>(xs: &[T], f: impl Fn(T) -> f64 + Sync) -> f64 {
    let partial: Vec<f64> = xs
        .par_chunks(CHUNK)
        .map(|c| {
            // Four lanes let the compiler keep independent accumulators in flight.
            let mut acc = [0f64; 4];
            let mut quads = c.chunks_exact(4);
            for q in &mut quads {
                for (a, x) in acc.iter_mut().zip(q) {
                    *a += f(*x);
                }
            }
            let tail: f64 = quads.remainder().iter().map(|x| f(*x)).sum();
            (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
        })
        .collect();
    partial.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn sum_squares_is_exact_in_f64_for_any_layout() {
        // 0.1f32 squared in f64, 100k times: f32 accumulation would drift by ~1e-3 relative.
        let n = 100_003;
        let x = Tensor::full(0.1f32, n, &Device::Cpu).unwrap();
        let want = n as f64 * f64::from(0.1f32).powi(2);
        assert!((sum_squares(&x).unwrap() - want).abs() < 1e-9 * want);
        let y = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu)
            .unwrap()
            .t()
            .unwrap();
        assert_eq!(sum_squares(&y).unwrap(), 30.0);
        let z = Tensor::new(&[1f32, 2.0], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        assert_eq!(sum_squares(&z).unwrap(), 5.0);
    }

    #[test]
    fn scale_and_add_assign_work_in_place() {
        let a = Tensor::new(&[1f32, -2.0, 3.0], &Device::Cpu).unwrap();
        a.inplace_op1(&Scale(0.5)).unwrap();
        assert_eq!(a.to_vec1::<f32>().unwrap(), [0.5, -1.0, 1.5]);
        let b = Tensor::new(&[1f32, 1.0, 1.0], &Device::Cpu).unwrap();
        a.inplace_op2(&b, &AddAssign).unwrap();
        assert_eq!(a.to_vec1::<f32>().unwrap(), [1.5, 0.0, 2.5]);
        let c = Tensor::new(&[1f32, 1.0], &Device::Cpu).unwrap();
        assert!(a.inplace_op2(&c, &AddAssign).is_err());
    }

    #[test]
    fn storage_key_tells_shared_memory_apart() {
        let a = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let b = a.clone();
        let c = a.copy().unwrap();
        assert_eq!(storage_key(&a), storage_key(&b));
        assert_ne!(storage_key(&a), storage_key(&c));
    }
}
