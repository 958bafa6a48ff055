//! Precomputed rotary-embedding tables.

use candle_core::{DType, Device, Tensor};

use crate::Result;

/// `cos` and `sin` of `position * theta^(-2i / head_dim)` for every position up to the
/// context length, `[max_positions, head_dim / 2]` each: computed in f32 and stored in the
/// model's dtype, as Hugging Face casts them to the activations' dtype.
#[derive(Debug, Clone)]
pub struct RopeTable {
    cos: Tensor,
    sin: Tensor,
    max_positions: usize,
}

impl RopeTable {
    /// Builds the tables on `device` in `dtype`.
    pub fn new(
        head_dim: usize,
        theta: f64,
        max_positions: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for f in &inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Ok(RopeTable {
            cos: Tensor::from_vec(cos, (max_positions, half), device)?.to_dtype(dtype)?,
            sin: Tensor::from_vec(sin, (max_positions, half), device)?.to_dtype(dtype)?,
            max_positions,
        })
    }

    /// Longest supported position + 1.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Gathers `(cos, sin)` for `positions` (`[batch, seq]`, u32) -> `[batch, seq, head_dim / 2]` each.
    pub fn at(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, s) = positions.dims2()?;
        let flat = positions.flatten_all()?;
        let half = self.cos.dims()[1];
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, s, half))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, s, half))?;
        Ok((cos, sin))
    }
}
