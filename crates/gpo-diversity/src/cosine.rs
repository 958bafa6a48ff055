//! Cosine similarity of embeddings, the paper's semantic diversity term (docs/method.md).

use crate::{Error, Result};

/// `x / |x|` in f64; the zero vector stays zero (its cosine with anything is taken as 0).
pub(crate) fn unit(x: &[f32]) -> Vec<f64> {
    let norm = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return vec![0.0; x.len()];
    }
    x.iter().map(|&v| f64::from(v) / norm).collect()
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// cos(a, b) = a.b / (|a| |b|), computed in f64; 0 when either vector is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::Dimension {
            expected: a.len(),
            got: b.len(),
        });
    }
    // Unit vectors' dot product, kept in [-1, 1] against rounding.
    Ok(dot(&unit(a), &unit(b)).clamp(-1.0, 1.0))
}

/// The paper's Cos(x): the mean over the rows of `others` of cos(x, row). Rows must have
/// `x.len()` values; no rows gives 0 (nothing to be similar to). Any embedder's vectors work.
pub fn embedding_similarity<'a, I>(x: &[f32], others: I) -> Result<f64>
where
    I: IntoIterator<Item = &'a [f32]>,
{
    let ux = unit(x);
    let (mut sum, mut count) = (0.0, 0usize);
    for row in others {
        if row.len() != x.len() {
            return Err(Error::Dimension {
                expected: x.len(),
                got: row.len(),
            });
        }
        sum += dot(&ux, &unit(row)).clamp(-1.0, 1.0);
        count += 1;
    }
    Ok(if count == 0 { 0.0 } else { sum / count as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_orthogonal_parallel_and_zero_vectors() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 2.0]).unwrap()).abs() < 1e-15);
        assert!((cosine(&[1.0, 1.0], &[3.0, 3.0]).unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]).unwrap(), 0.0);
    }

    #[test]
    fn a_vector_with_itself_never_rounds_past_one() {
        // Some of these give a unit dot product of 1 + 2^-52 before the clamp.
        for k in 1..200 {
            let v: Vec<f32> = (0..384)
                .map(|i| ((i * k) % 97) as f32 * 0.013 - 0.6)
                .collect();
            assert!(cosine(&v, &v).unwrap() <= 1.0);
            assert!(embedding_similarity(&v, [v.as_slice(), v.as_slice()]).unwrap() <= 1.0);
        }
    }

    #[test]
    fn similarity_is_the_mean_cosine() {
        // cos with [1,0] is 1, with [0,1] is 0: mean 0.5.
        let rows: [&[f32]; 2] = [&[1.0, 0.0], &[0.0, 1.0]];
        let got = embedding_similarity(&[2.0, 0.0], rows).unwrap();
        assert!((got - 0.5).abs() < 1e-15);
    }

    #[test]
    fn similarity_rejects_mismatched_rows_and_is_zero_for_none() {
        let rows: [&[f32]; 1] = [&[1.0]];
        assert!(matches!(
            embedding_similarity(&[1.0, 0.0], rows),
            Err(Error::Dimension {
                expected: 2,
                got: 1
            })
        ));
        assert_eq!(
            embedding_similarity(&[1.0], std::iter::empty()).unwrap(),
            0.0
        );
    }
}
