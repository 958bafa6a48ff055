//! The three non-matmul kernels of a Llama block, each in a fused (no backward) and a
//! differentiable form. candle's fused ops record no backward op, so gradients would stop at
//! them silently; [`Mode::Train`] uses the written-out forms.

use candle_core::{DType, Tensor, D};

use crate::pass::Mode;
use crate::Result;

/// RMSNorm: `x / sqrt(mean(x^2) + eps) * weight` over the last dimension.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Infer => Ok(candle_nn::ops::rms_norm(
            &x.contiguous()?,
            weight,
            eps as f32,
        )?),
        Mode::Train if crate::diffops::fused_ok(x) => crate::diffops::rms_norm(x, weight, eps),
        Mode::Train => rms_norm_written_out(x, weight, eps),
    }
}

/// RMSNorm with plain tensor ops (any device, any dtype).
pub(crate) fn rms_norm_written_out(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
    Ok(normed.to_dtype(dtype)?.broadcast_mul(weight)?)
}

/// Softmax over the last dimension.
pub fn softmax_last(x: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Infer => Ok(candle_nn::ops::softmax_last_dim(&x.contiguous()?)?),
        Mode::Train if crate::diffops::fused_ok(x) => crate::diffops::softmax_last(x),
        Mode::Train => Ok(candle_nn::ops::softmax(x, D::Minus1)?),
    }
}

/// Rotary position embedding in Hugging Face's rotate-half layout.
///
/// `x`: `[batch, heads, seq, head_dim]`; `cos`, `sin`: `[batch, seq, head_dim / 2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Infer => Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?),
        Mode::Train if crate::diffops::fused_ok(x) => crate::diffops::rope(x, cos, sin),
        Mode::Train => rope_written_out(x, cos, sin),
    }
}

/// RoPE with plain tensor ops (any device).
pub(crate) fn rope_written_out(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let cos = cos.unsqueeze(1)?;
    let sin = sin.unsqueeze(1)?;
    // [x1, x2] * cos + [-x2, x1] * sin, per half.
    let lo = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
    let hi = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
    Ok(Tensor::cat(&[lo, hi], D::Minus1)?)
}

/// SwiGLU's gate: `silu(a) * b`.
pub fn swiglu(a: &Tensor, b: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Train if crate::diffops::fused_ok(a) => crate::diffops::swiglu(a, b),
        _ => Ok((a.silu()? * b)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::diffops;
    use crate::test_util::max_diff;

    #[test]
    fn fused_and_differentiable_kernels_agree() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 5, 8), &dev)?;
        let w = Tensor::randn(1f32, 0.1, 8, &dev)?;
        let tol = 1e-5;
        assert!(
            max_diff(
                &rms_norm(&x, &w, 1e-5, Mode::Infer)?,
                &rms_norm(&x, &w, 1e-5, Mode::Train)?
            ) < tol
        );
        assert!(
            max_diff(
                &softmax_last(&x, Mode::Infer)?,
                &softmax_last(&x, Mode::Train)?
            ) < tol
        );
        let cos = Tensor::randn(0f32, 1.0, (2, 5, 4), &dev)?;
        let sin = Tensor::randn(0f32, 1.0, (2, 5, 4), &dev)?;
        assert!(
            max_diff(
                &rope(&x, &cos, &sin, Mode::Infer)?,
                &rope(&x, &cos, &sin, Mode::Train)?
            ) < tol
        );
        Ok(())
    }

    /// Value and gradients of `f` (single node) and `g` (written out) agree.
    fn check(vars: &[&Var], f: &dyn Fn() -> Tensor, g: &dyn Fn() -> Tensor) {
        let dev = Device::Cpu;
        let (a, b) = (f(), g());
        assert!(
            max_diff(&a, &b) < 1e-5,
            "forward differs by {}",
            max_diff(&a, &b)
        );
        let w = Tensor::randn(0f32, 1.0, a.shape(), &dev).unwrap();
        let ga = (a * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for v in vars {
            let d = max_diff(
                ga.get(v.as_tensor()).unwrap(),
                gb.get(v.as_tensor()).unwrap(),
            );
            assert!(d < 1e-4, "gradient differs by {d}");
        }
    }

    #[test]
    fn single_node_ops_match_written_out_forms() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 3, 5, 8), &dev).unwrap();
        let w = Var::randn(1f32, 0.1, 8, &dev).unwrap();
        check(
            &[&x, &w],
            &|| diffops::rms_norm(&x, &w, 1e-5).unwrap(),
            &|| rms_norm_written_out(&x, &w, 1e-5).unwrap(),
        );
        check(&[&x], &|| diffops::softmax_last(&x).unwrap(), &|| {
            candle_nn::ops::softmax(&x, candle_core::D::Minus1).unwrap()
        });
        let cos = Tensor::randn(0f32, 1.0, (2, 5, 4), &dev).unwrap();
        let sin = Tensor::randn(0f32, 1.0, (2, 5, 4), &dev).unwrap();
        check(&[&x], &|| diffops::rope(&x, &cos, &sin).unwrap(), &|| {
            rope_written_out(&x, &cos, &sin).unwrap()
        });
        let y = Var::randn(0f32, 1.0, (2, 3, 5, 8), &dev).unwrap();
        check(&[&x, &y], &|| diffops::swiglu(&x, &y).unwrap(), &|| {
            (x.silu().unwrap() * y.as_tensor()).unwrap()
        });
    }
}
