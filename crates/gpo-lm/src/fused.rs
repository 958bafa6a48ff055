//! CPU kernels with hand-written backward passes for the hottest differentiable steps.
//!
//! candle's autograd allocates a zero tensor and adds into it for every node, and the
//! written-out forms of log-softmax take several passes over `[tokens, vocab]` logits.
//! These ops do the same maths in one pass each way. Other devices use the tensor-op forms.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::Result;

/// `log softmax(logits)[target]` per row: `[rows, vocab]` -> `[rows]`.
/// Backward: `d logits[r, v] = g[r] (1[v = target_r] - softmax(logits[r])[v])`.
pub(crate) struct LogSoftmaxGather {
    pub targets: Vec<u32>,
}

/// The values of a contiguous f32 CPU storage, as the CPU kernels read their inputs.
pub(crate) fn f32_rows<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("fused kernel needs contiguous f32 input"),
    }
}

/// [`f32_rows`] of a tensor's storage, which must be on the CPU.
pub(crate) fn storage_f32<'a>(
    s: &'a candle_core::Storage,
    l: &Layout,
) -> candle_core::Result<&'a [f32]> {
    match s {
        candle_core::Storage::Cpu(s) => f32_rows(s, l),
        _ => candle_core::bail!("a CPU kernel was given a tensor on another device"),
    }
}

/// Log-sum-exp of a row, summed in 16 lanes so that the loop vectorises.
fn row_lse(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut lanes = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|&x| exp(x - max)).sum();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += exp(x - max);
        }
    }
    max + (lanes.iter().sum::<f32>() + tail).ln()
}

/// `e^x` within 3 ulp for `x` in [-87, 88], branch-free so that loops over it vectorise
/// (libm's `expf` is a call per element: 6.5% of a LoRA step's samples). `x` is clamped to
/// that range: masked logits (-inf) give e^-87, about 1.6e-38, negligible next to the row
/// maximum's term of 1.
/// `x = n ln 2 + r` with `|r| <= ln 2 / 2` (Cody-Waite, two-part ln 2), `e^r` by its Taylor
/// polynomial to degree 6 (remainder below 2e-8 relative), times `2^n` built in the exponent
/// bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to the nearest integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
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
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.to_vec1::<f32>()?;
        let grad = arg.apply_op1_no_bwd(&LogSoftmaxGatherGrad {
            targets: self.targets.clone(),
            grad: g,
            logp: res.to_vec1::<f32>()?,
        })?;
        Ok(Some(grad))
    }
}

/// The backward of [`LogSoftmaxGather`] as its own kernel (one pass over the logits).
struct LogSoftmaxGatherGrad {
    targets: Vec<u32>,
    grad: Vec<f32>,
    /// The forward's output, `x[target] - lse` per row: gives back each row's log-sum-exp
    /// without a second pass of `exp` over the row.
    logp: Vec<f32>,
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
                let lse = match row.get(self.targets[r] as usize) {
                    Some(x) if (x - self.logp[r]).is_finite() => x - self.logp[r],
                    _ => row_lse(row),
                };
                for (o, x) in o.iter_mut().zip(row) {
                    *o = -g * exp(x - lse);
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

/// `x W^T` on CPU storage: `x` is `[.., in]` (contiguous), `w` is `[out, in]`; the GEMM reads
/// `w` through a transposed layout (no copy) and the result has `x`'s leading dims.
pub(crate) fn xwt_cpu(
    sx: &CpuStorage,
    lx: &Layout,
    sw: &CpuStorage,
    lw: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    use candle_core::backend::BackendStorage;
    let (out, inner) = lw.shape().dims2()?;
    let dims = lx.dims();
    if !lx.is_contiguous() || dims.last() != Some(&inner) {
        candle_core::bail!("x W^T needs a contiguous [.., {inner}] input, got {dims:?}");
    }
    let rows = lx.shape().elem_count() / inner.max(1);
    let lx2 = Layout::contiguous_with_offset((rows, inner), lx.start_offset());
    let y = sx.matmul(sw, (1, rows, out, inner), &lx2, &lw.transpose(0, 1)?)?;
    let mut shape = dims.to_vec();
    *shape.last_mut().expect("rank >= 1") = out;
    Ok((y, Shape::from(shape)))
}

/// `x [.., in]` -> `x [rows, in]`, a view without a graph node.
fn rows_of(x: &Tensor) -> candle_core::Result<Tensor> {
    let inner = x.dim(candle_core::D::Minus1)?;
    x.detach().reshape((x.elem_count() / inner.max(1), inner))
}

/// `x W^T` for a trainable `W` as one node: backward `dx = g W`, `dW = g^T x`, both in their
/// final layout. Written with tensor ops, the same product is five nodes (two reshapes, a
/// transpose of `W`, the matmul, a reshape back), and candle's backward allocates a zero
/// tensor and adds into it at each; the transpose's add reads the weight gradient strided.
struct MatmulT;

impl CustomOp2 for MatmulT {
    fn name(&self) -> &'static str {
        "matmul-t"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        xwt_cpu(sx, lx, sw, lw)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = rows_of(grad_res)?;
        let dx = g.matmul(&w.detach())?.reshape(x.shape())?;
        let dw = g.t()?.matmul(&rows_of(x)?)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `x W^T` for a frozen `W` (a plain tensor, not a variable), as a node whose backward only
/// computes `dx = g W`. candle's matmul backward always computes the weight gradient too; for
/// LoRA training and frozen LM heads that is a third of the backward FLOPs, thrown away.
struct FrozenMatmulT {
    w: Tensor,
}

impl CustomOp1 for FrozenMatmulT {
    fn name(&self) -> &'static str {
        "frozen-matmul-t"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (storage, lw) = self.w.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cpu(sw) => xwt_cpu(sx, lx, sw, lw),
            _ => candle_core::bail!("frozen-matmul-t runs on CPU tensors only"),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dx = rows_of(grad_res)?.matmul(&self.w)?.reshape(x.shape())?;
        Ok(Some(dx))
    }
}

/// `x @ w^T` (`x`: `[.., in]`, `w`: `[out, in]`) as a single autograd node; `w` receives a
/// gradient only when it is a variable. CPU f32 only; callers check.
pub(crate) fn matmul_t_node(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    Ok(if w.track_op() {
        x.apply_op2(&w, MatmulT)?
    } else {
        x.apply_op1(FrozenMatmulT { w: w.detach() })?
    })
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    /// Reference: f64's `exp`, rounded to f32.
    #[test]
    fn exp_is_within_three_ulp_of_the_rounded_exact_value() {
        let mut worst = 0u32;
        for i in 0..=1_750_000 {
            let x = -87.0 + i as f32 * 1e-4;
            let want = (x as f64).exp() as f32;
            let got = super::exp(x);
            worst = worst.max(got.to_bits().abs_diff(want.to_bits()));
        }
        // Measured 3 ulp (about 3.6e-7 relative) over 1.75 million points of the range.
        assert!(worst <= 3, "worst error {worst} ulp");
        assert!(super::exp(f32::NAN).is_nan());
        assert!(super::exp(f32::NEG_INFINITY) < 2e-38);
    }

    use crate::test_util::max_diff;

    #[test]
    fn frozen_matmul_differentiates_only_the_input() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (5, 4), &dev).unwrap();
        let w = candle_core::Tensor::randn(0f32, 1.0, (3, 4), &dev).unwrap();
        let plain = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        let frozen = super::matmul_t_node(x.as_tensor(), &w).unwrap();
        assert_eq!(max_diff(&plain, &frozen), 0.0);
        let gp = plain.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gf = frozen.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let d = max_diff(
            gp.get(x.as_tensor()).unwrap(),
            gf.get(x.as_tensor()).unwrap(),
        );
        assert!(d < 1e-5, "input gradient differs by {d}");
        assert!(gf.get(&w).is_none());
    }

    #[test]
    fn trainable_matmul_node_matches_tensor_ops_forward_and_backward() {
        // Reference: the same product written as candle tensor ops (reshape, transpose,
        // matmul), differentiated by candle's own backward. Same GEMM, so within 1e-5.
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 3, 4), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (5, 4), &dev).unwrap();
        let plain = x
            .as_tensor()
            .reshape((6, 4))
            .unwrap()
            .matmul(&w.as_tensor().t().unwrap())
            .unwrap()
            .reshape((2, 3, 5))
            .unwrap();
        let node = super::matmul_t_node(x.as_tensor(), w.as_tensor()).unwrap();
        assert_eq!(node.dims(), &[2, 3, 5]);
        assert!(max_diff(&plain, &node) < 1e-5);
        // A non-uniform upstream gradient, so that a transposed dW would show.
        let up = candle_core::Tensor::randn(0f32, 1.0, (2, 3, 5), &dev).unwrap();
        let gp = (&plain * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gn = (&node * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [x.as_tensor(), w.as_tensor()] {
            let (a, b) = (gp.get(v).unwrap(), gn.get(v).unwrap());
            assert_eq!(a.dims(), b.dims());
            assert!(max_diff(a, b) < 1e-5, "gradient of {:?} differs", v.dims());
        }
    }
}
