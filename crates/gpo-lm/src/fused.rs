//! CPU kernels with hand-written backward passes for the hottest differentiable steps.
//!
//! candle's autograd allocates a zero tensor and adds into it for every node, and the
//! written-out forms of log-softmax take several passes over `[tokens, vocab]` logits.
//! These ops do the same maths in one pass each way. Other devices use the tensor-op forms.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::Result;

/// `log softmax(logits)[target]` per row: `[rows, vocab]` -> `[rows]`.
/// Backward: `d logits[r, v] = g[r] (1[v = target_r] - softmax(logits[r])[v])`.
pub(crate) struct LogSoftmaxGather {
    pub targets: Vec<u32>,
}

fn f32_rows<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("fused kernel needs contiguous f32 input"),
    }
}

/// Log-sum-exp of a row.
fn row_lse(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|x| (x - max).exp()).sum();
    max + sum.ln()
}

impl CustomOp1 for LogSoftmaxGather {
    fn name(&self) -> &'static str {
        "log-softmax-gather"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, vocab) = l.shape().dims2()?;
        let x = f32_rows(s, l)?;
        if self.targets.len() != rows {
            candle_core::bail!(
                "log-softmax-gather: {} targets for {rows} rows",
                self.targets.len()
            );
        }
        let out: Vec<f32> = x
            .par_chunks(vocab)
            .zip(self.targets.par_iter())
            .map(|(row, &t)| {
                let lse = row_lse(row);
                row.get(t as usize).copied().unwrap_or(f32::NAN) - lse
            })
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(rows)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.to_vec1::<f32>()?;
        let grad = arg.apply_op1_no_bwd(&LogSoftmaxGatherGrad {
            targets: self.targets.clone(),
            grad: g,
        })?;
        Ok(Some(grad))
    }
}

/// The backward of [`LogSoftmaxGather`] as its own kernel (one pass over the logits).
struct LogSoftmaxGatherGrad {
    targets: Vec<u32>,
    grad: Vec<f32>,
}

impl CustomOp1 for LogSoftmaxGatherGrad {
    fn name(&self) -> &'static str {
        "log-softmax-gather-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, vocab) = l.shape().dims2()?;
        let x = f32_rows(s, l)?;
        let mut out = vec![0f32; rows * vocab];
        out.par_chunks_mut(vocab)
            .zip(x.par_chunks(vocab))
            .enumerate()
            .for_each(|(r, (o, row))| {
                let g = self.grad[r];
                if g == 0.0 {
                    return;
                }
                let lse = row_lse(row);
                for (o, x) in o.iter_mut().zip(row) {
                    *o = -g * (x - lse).exp();
                }
                if let Some(o) = o.get_mut(self.targets[r] as usize) {
                    *o += g;
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((rows, vocab))))
    }
}

/// `log softmax(logits)[.., target]`: `[b, s, V]`, `[b, s]` -> `[b, s]`, through the fused
/// kernel on CPU (f32).
pub(crate) fn log_softmax_gather_cpu(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (b, s, v) = logits.dims3()?;
    let t = targets.flatten_all()?.to_vec1::<u32>()?;
    if let Some(bad) = t.iter().find(|&&t| t as usize >= v) {
        return Err(crate::Error::InvalidArgument(format!(
            "target id {bad} is outside the vocabulary of {v}"
        )));
    }
    let flat = logits.reshape((b * s, v))?.contiguous()?;
    Ok(flat
        .apply_op1(LogSoftmaxGather { targets: t })?
        .reshape((b, s))?)
}

/// `x W^T` for a frozen `W` (a plain tensor, not a variable), as a node whose backward only
/// computes `dx = g W`. candle's matmul backward always computes the weight gradient too; for
/// LoRA training and frozen LM heads that is a third of the backward FLOPs, thrown away.
/// The product is computed before the node is built (`y`) and handed over as its output.
struct FrozenMatmul {
    w: Tensor,
    y: Tensor,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, _s: &CpuStorage, _l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        crate::diffops::output(&self.y)
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.matmul(&self.w)?))
    }
}

/// `x2 @ w^T` (`x2`: `[rows, in]`, `w`: `[out, in]`) where `w` receives no gradient: only `x2`
/// is differentiated. CPU f32 only; callers check.
pub(crate) fn frozen_matmul_t(x2: &Tensor, w: &Tensor) -> Result<Tensor> {
    let y = x2.detach().matmul(&w.t()?)?;
    Ok(x2.apply_op1(FrozenMatmul { w: w.clone(), y })?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use crate::logprobs::{gather_logprobs, gather_logprobs_generic};

    #[test]
    fn fused_log_softmax_gather_matches_tensor_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 3.0, (2, 3, 50), &dev).unwrap();
        let t = candle_core::Tensor::new(&[[1u32, 49, 0], [7, 7, 22]], &dev).unwrap();
        let w = candle_core::Tensor::new(&[[1f32, -2.0, 0.5], [0.0, 3.0, 1.0]], &dev).unwrap();
        let fused = gather_logprobs(x.as_tensor(), &t).unwrap();
        let plain = gather_logprobs_generic(x.as_tensor(), &t).unwrap();
        let d = (&fused - &plain)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "forward differs by {d}");
        let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gp) = (
            gf.get(x.as_tensor()).unwrap(),
            gp.get(x.as_tensor()).unwrap(),
        );
        let d = (gf - gp)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "gradient differs by {d}");
    }

    #[test]
    fn frozen_matmul_differentiates_only_the_input() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (5, 4), &dev).unwrap();
        let w = candle_core::Tensor::randn(0f32, 1.0, (3, 4), &dev).unwrap();
        let plain = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        let frozen = super::frozen_matmul_t(x.as_tensor(), &w).unwrap();
        assert_eq!(
            (&plain - &frozen)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
        let gp = plain.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gf = frozen.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let d = (gp.get(x.as_tensor()).unwrap() - gf.get(x.as_tensor()).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "input gradient differs by {d}");
        assert!(gf.get(&w).is_none());
    }
}
