//! Position ids and additive attention masks for padded batches.

use candle_core::{DType, Device, Tensor};

use crate::Result;

/// A large negative number instead of -inf, so that a row with every key masked (a padding
/// query) still has a finite softmax.
const MASKED: f32 = -1e9;

/// RoPE positions `[batch, seq]` u32: each row counts its real tokens from `start[row]`;
/// padding positions get `start[row]` (their outputs are never used).
pub fn positions_from_mask(valid: &[Vec<bool>], start: &[u32], device: &Device) -> Result<Tensor> {
    let s = valid.first().map_or(0, Vec::len);
    let mut pos = Vec::with_capacity(valid.len() * s);
    for (row, &st) in valid.iter().zip(start) {
        let mut next = st;
        for &v in row {
            pos.push(if v { next } else { st });
            if v {
                next += 1;
            }
        }
    }
    Ok(Tensor::from_vec(pos, (valid.len(), s), device)?)
}

/// Causal mask with padded keys hidden, `[batch, 1, seq, seq]`. A query always sees itself
/// so padding rows stay finite.
pub fn causal_padding_mask(
    valid: &[Vec<bool>],
    s: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let b = valid.len();
    let mut m = vec![0f32; b * s * s];
    for (r, row) in valid.iter().enumerate() {
        for i in 0..s {
            for j in 0..s {
                if j > i || (!row[j] && j != i) {
                    m[(r * s + i) * s + j] = MASKED;
                }
            }
        }
    }
    Ok(Tensor::from_vec(m, (b, 1, s, s), device)?.to_dtype(dtype)?)
}

/// Mask for the last `q_len` positions of a cache whose validity is `valid` (`[batch][k_len]`),
/// `[batch, 1, q_len, k_len]`: causal among the new positions, padded keys hidden.
pub fn cached_mask(
    valid: &[Vec<bool>],
    q_len: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let b = valid.len();
    let k = valid.first().map_or(0, Vec::len);
    let offset = k - q_len;
    let mut m = vec![0f32; b * q_len * k];
    for (r, row) in valid.iter().enumerate() {
        for i in 0..q_len {
            let qi = offset + i;
            for j in 0..k {
                if j > qi || (!row[j] && j != qi) {
                    m[(r * q_len + i) * k + j] = MASKED;
                }
            }
        }
    }
    Ok(Tensor::from_vec(m, (b, 1, q_len, k), device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_positions_start_at_first_token() -> Result<()> {
        let valid = vec![vec![false, false, true, true], vec![true, true, true, true]];
        let p = positions_from_mask(&valid, &[0, 0], &Device::Cpu)?.to_vec2::<u32>()?;
        assert_eq!(p[0][2..], [0, 1]);
        assert_eq!(p[1], [0, 1, 2, 3]);
        let p = positions_from_mask(&[vec![true]], &[7], &Device::Cpu)?.to_vec2::<u32>()?;
        assert_eq!(p, [[7]]);
        Ok(())
    }

    #[test]
    fn padded_keys_are_masked_but_self_is_not() -> Result<()> {
        let valid = vec![vec![false, true, true]];
        let m = causal_padding_mask(&valid, 3, DType::F32, &Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        // rows: query 0 (pad) sees itself; query 1 sees 1; query 2 sees 1, 2.
        let expected = [0., MASKED, MASKED, MASKED, 0., MASKED, MASKED, 0., 0.];
        assert_eq!(m, expected);
        Ok(())
    }
}
