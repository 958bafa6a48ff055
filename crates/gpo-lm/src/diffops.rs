//! Differentiable RMSNorm, softmax, RoPE and SwiGLU as single autograd nodes (CPU, f32).
//!
//! Written out with candle's tensor ops, each of these is 4-9 graph nodes, and candle's
//! backward allocates a zero tensor and adds into it at every node. Here the forward value
//! comes from candle's fused kernel (run on detached inputs) and is handed to one custom node
//! whose backward is the closed-form derivative; SwiGLU's forward and backward are one pass
//! each of gpo's own. Results equal the written-out forms to float rounding (tests below).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::fused::f32_rows;

use crate::Result;

/// Hands a precomputed value over as a custom node's output.
pub(crate) fn output(y: &Tensor) -> candle_core::Result<(CpuStorage, Shape)> {
    Ok((
        CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?),
        y.shape().clone(),
    ))
}

/// Whether the fused single-node forms apply.
pub(crate) fn fused_ok(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

struct RmsNormNode {
    y: Tensor,
    eps: f64,
}

impl CustomOp2 for RmsNormNode {
    fn name(&self) -> &'static str {
        "rms-norm-node"
    }
    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        output(&self.y)
    }
    /// With `r = (mean(x^2) + eps)^(-1/2)` and `u = g w`:
    /// `dx = r u - x r^3 mean(u x)`, `dw = sum over rows of g x r`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let x = x.detach();
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        let u = g.broadcast_mul(w)?;
        let dot = (&u * &x)?.mean_keepdim(D::Minus1)?;
        let dx = (u.broadcast_mul(&r)? - x.broadcast_mul(&(r.powf(3.0)? * dot)?)?)?;
        let dw = if w.track_op() {
            let h = w.dims1()?;
            Some((g * x.broadcast_mul(&r)?)?.reshape(((), h))?.sum(0)?)
        } else {
            None
        };
        Ok((Some(dx), dw))
    }
}

/// RMSNorm over the last dimension as one node.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let y = candle_nn::ops::rms_norm(&x.detach().contiguous()?, &w.detach(), eps as f32)?;
    Ok(x.apply_op2(w, RmsNormNode { y, eps })?)
}

struct SoftmaxNode {
    y: Tensor,
}

impl CustomOp1 for SoftmaxNode {
    fn name(&self) -> &'static str {
        "softmax-node"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        output(&self.y)
    }
    /// `dx = p (g - sum(g p))` over the last dimension.
    fn bwd(&self, _x: &Tensor, p: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let p = p.detach();
        let dot = (g * &p)?.sum_keepdim(D::Minus1)?;
        Ok(Some((g.broadcast_sub(&dot)? * p)?))
    }
}

/// Softmax over the last dimension as one node.
pub(crate) fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let y = candle_nn::ops::softmax_last_dim(&x.detach().contiguous()?)?;
    Ok(x.apply_op1(SoftmaxNode { y })?)
}

struct RopeNode {
    y: Tensor,
    cos: Tensor,
    sin: Tensor,
}

impl CustomOp1 for RopeNode {
    fn name(&self) -> &'static str {
        "rope-node"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        output(&self.y)
    }
    /// RoPE is a rotation per pair; its transpose rotates by the opposite angle.
    fn bwd(&self, _x: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(candle_nn::rotary_emb::rope(
            &g.contiguous()?,
            &self.cos,
            &self.sin.neg()?,
        )?))
    }
}

/// Rotate-half RoPE as one node; `x`: `[b, h, s, d]`, `cos`/`sin`: `[b, s, d / 2]`.
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let y = candle_nn::rotary_emb::rope(&x.detach().contiguous()?, cos, sin)?;
    Ok(x.apply_op1(RopeNode {
        y,
        cos: cos.clone(),
        sin: sin.clone(),
    })?)
}

/// `silu(a) b` (`a`, `b` of one shape, contiguous f32) in one pass over both.
struct Swiglu;

impl CustomOp2 for Swiglu {
    fn name(&self) -> &'static str {
        "swiglu"
    }
    fn cpu_fwd(
        &self,
        sa: &CpuStorage,
        la: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b) = (f32_rows(sa, la)?, f32_rows(sb, lb)?);
        if la.dims() != lb.dims() {
            candle_core::bail!("swiglu: shapes {:?} and {:?} differ", la.dims(), lb.dims());
        }
        let mut y = vec![0f32; a.len()];
        y.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(y, (a, b))| {
                for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                    *y = a * sigmoid(a) * b;
                }
            });
        Ok((CpuStorage::F32(y), la.shape().clone()))
    }
    /// `y = silu(a) b`: `da = g b s (1 + a (1 - s))` with `s = sigmoid(a)`, `db = g a s`.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let both = a.detach().apply_op3_no_bwd(&b.detach(), &g, &SwigluGrad)?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

/// The logistic function, with [`crate::fused::exp`] so that loops over it vectorise.
#[inline(always)]
fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + crate::fused::exp(-a))
}

/// Elements per parallel job of the elementwise kernels.
const CHUNK: usize = 1 << 14;

/// SwiGLU's backward over `(a, b, g)`: `[2, ..]` holding `da` then `db`, in one pass.
struct SwigluGrad;

impl candle_core::CustomOp3 for SwigluGrad {
    fn name(&self) -> &'static str {
        "swiglu-grad"
    }
    fn cpu_fwd(
        &self,
        sa: &CpuStorage,
        la: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b, g) = (f32_rows(sa, la)?, f32_rows(sb, lb)?, f32_rows(sg, lg)?);
        if la.dims() != lb.dims() || la.dims() != lg.dims() {
            candle_core::bail!("swiglu-grad: shapes of a, b and g differ");
        }
        let n = a.len();
        let mut out = vec![0f32; 2 * n];
        let (da, db) = out.split_at_mut(n);
        da.par_chunks_mut(CHUNK)
            .zip(db.par_chunks_mut(CHUNK))
            .zip(
                a.par_chunks(CHUNK)
                    .zip(b.par_chunks(CHUNK))
                    .zip(g.par_chunks(CHUNK)),
            )
            .for_each(|((da, db), ((a, b), g))| {
                for i in 0..da.len() {
                    let s = sigmoid(a[i]);
                    da[i] = g[i] * b[i] * s * (1.0 + a[i] * (1.0 - s));
                    db[i] = g[i] * a[i] * s;
                }
            });
        let mut dims = vec![2];
        dims.extend_from_slice(la.dims());
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// `silu(a) * b` as one node.
pub(crate) fn swiglu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.contiguous()?.apply_op2(&b.contiguous()?, Swiglu)?)
}
