//! Helpers shared by the unit tests of this crate.

use candle_core::Tensor;

/// Largest absolute element-wise difference of two tensors of the same shape.
pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("tensor difference")
}

/// `t` rounded to bf16 and back to f32: what the bf16 products read of an operand.
pub(crate) fn bf16_rounded(t: &Tensor) -> Tensor {
    t.to_dtype(candle_core::DType::BF16)
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .expect("dtype round trip")
}
