//! Small helpers on probability vectors: normalisation in log space, entropy, log-sum-exp,
//! and the check that a user-given vector is a distribution.

use crate::{Error, Result};

/// Tolerance on `sum(p) = 1` for user-given strategies.
const SUM_TOL: f64 = 1e-9;

/// Shifts `logp` so that `exp(logp)` sums to 1 and writes the probabilities into `p`.
/// Subtracting the maximum first keeps `exp` in range however large the scores grow.
pub(crate) fn normalise_log(logp: &mut [f64], p: &mut [f64]) {
    let max = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logp.iter().map(|l| (l - max).exp()).sum();
    let shift = max + sum.ln();
    for (l, q) in logp.iter_mut().zip(p.iter_mut()) {
        *l -= shift;
        *q = l.exp();
    }
}

/// Shannon entropy `-sum p ln p` in nats (0 ln 0 = 0).
pub(crate) fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&q| q > 0.0)
        .map(|&q| q * q.ln())
        .sum::<f64>()
}

/// `min over y in the simplex of <loss, y> - h * H(y)`, the attacker's best regularised
/// reply: `-h * ln sum_j exp(-loss_j / h)` (the soft minimum), and `min_j loss_j` at `h = 0`.
pub(crate) fn soft_min(loss: &[f64], h: f64) -> f64 {
    let min = loss.iter().copied().fold(f64::INFINITY, f64::min);
    if h == 0.0 {
        return min;
    }
    let sum: f64 = loss.iter().map(|l| (-(l - min) / h).exp()).sum();
    min - h * sum.ln()
}

/// `<a, b>`.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks that `p` has `len` entries, all finite and non-negative, summing to 1.
pub(crate) fn check_distribution(name: &'static str, p: &[f64], len: usize) -> Result<()> {
    if p.len() != len {
        return Err(Error::Dimension {
            name,
            len: p.len(),
            expected: len,
        });
    }
    if let Some((i, q)) = p
        .iter()
        .enumerate()
        .find(|(_, q)| !q.is_finite() || **q < 0.0)
    {
        return Err(Error::NotDistribution {
            name,
            why: format!("entry {i} is {q}"),
        });
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > SUM_TOL {
        return Err(Error::NotDistribution {
            name,
            why: format!("entries sum to {sum}, not 1"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_log_survives_huge_scores() {
        let mut l = vec![1000.0, 1000.0 + 2f64.ln()];
        let mut p = vec![0.0; 2];
        normalise_log(&mut l, &mut p);
        // exp(1000) overflows; the shifted form gives 1/3, 2/3 exactly up to rounding.
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-12 && (p[1] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn soft_min_tends_to_the_minimum_and_matches_its_closed_form() {
        let loss = [0.3, -0.2, 0.5];
        assert_eq!(soft_min(&loss, 0.0), -0.2);
        assert!((soft_min(&loss, 1e-6) + 0.2).abs() < 1e-9);
        // h = 1: -ln(e^-0.3 + e^0.2 + e^-0.5), evaluated directly.
        let direct = -((-0.3f64).exp() + 0.2f64.exp() + (-0.5f64).exp()).ln();
        assert!((soft_min(&loss, 1.0) - direct).abs() < 1e-12);
    }

    #[test]
    fn entropy_of_uniform_is_ln_n() {
        assert!((entropy(&[0.25; 4]) - 4f64.ln()).abs() < 1e-12);
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
    }

    #[test]
    fn distributions_are_checked() {
        assert!(check_distribution("x", &[0.5, 0.5], 2).is_ok());
        assert!(matches!(
            check_distribution("x", &[0.5, 0.5], 3),
            Err(Error::Dimension { .. })
        ));
        let e = check_distribution("x", &[0.7, 0.7], 2).unwrap_err();
        assert!(e.to_string().contains("sum to 1.4"), "{e}");
        assert!(check_distribution("x", &[1.5, -0.5], 2).is_err());
    }
}
