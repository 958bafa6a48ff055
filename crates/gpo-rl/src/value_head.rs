//! The critic's output layer: a linear value head on final hidden states.

use candle_core::{DType, Device, Tensor, Var};

use crate::Result;

/// `V(s_t) = h_t . w + b`, where `h_t` is the final hidden state (after the last RMSNorm;
/// the policy's or the critic's own LM's) at the position that predicts response token `t`.
/// Starts at zero, so the first advantages are GAE's lambda-discounted sums of the rewards
/// to go.
#[derive(Debug, Clone)]
pub struct ValueHead {
    /// `[hidden]`.
    pub weight: Var,
    /// `[1]`.
    pub bias: Var,
}

/// Names of the head's tensors in checkpoints.
pub(crate) const WEIGHT: &str = "value_head.weight";
pub(crate) const BIAS: &str = "value_head.bias";

impl ValueHead {
    /// A zero-initialised head for hidden size `hidden`.
    pub fn new(hidden: usize, dtype: DType, device: &Device) -> Result<Self> {
        Ok(ValueHead {
            weight: Var::zeros(hidden, dtype, device)?,
            bias: Var::zeros(1, dtype, device)?,
        })
    }

    /// `hidden`: `[batch, tokens, hidden]` -> values `[batch, tokens]` in f32.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let v = hidden
            .broadcast_mul(self.weight.as_tensor())?
            .sum(candle_core::D::Minus1)?
            .broadcast_add(self.bias.as_tensor())?;
        Ok(v.to_dtype(DType::F32)?)
    }

    /// The head's variables with their checkpoint names.
    pub fn vars(&self) -> Vec<(String, Var)> {
        vec![
            (WEIGHT.to_string(), self.weight.clone()),
            (BIAS.to_string(), self.bias.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_a_dot_product_plus_bias() {
        let dev = Device::Cpu;
        let head = ValueHead::new(2, DType::F32, &dev).unwrap();
        head.weight
            .set(&Tensor::new(&[1f32, -2.0], &dev).unwrap())
            .unwrap();
        head.bias
            .set(&Tensor::new(&[0.5f32], &dev).unwrap())
            .unwrap();
        let h = Tensor::new(&[[[3f32, 1.0], [0.0, 1.0]]], &dev).unwrap();
        // 3 - 2 + 0.5 = 1.5; 0 - 2 + 0.5 = -1.5
        let v = head.forward(&h).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(v, vec![vec![1.5, -1.5]]);
    }
}
