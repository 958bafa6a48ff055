//! KL to the reference policy and the KL-shaped per-token reward.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Estimators of `KL(pi || pi_ref)` from one sampled token, with `r = log pi_ref - log pi`
/// (Schulman, "Approximating KL divergence", 2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KlEstimator {
    /// `k1 = -r = log pi - log pi_ref`: unbiased, high variance, can be negative (the
    /// released GPO code's penalty).
    K1,
    /// `k2 = r^2 / 2`: biased, low variance, non-negative.
    K2,
    /// `k3 = (e^r - 1) - r`: unbiased and non-negative.
    K3,
}

impl KlEstimator {
    /// The estimate at one token.
    pub fn at(self, logp: f32, ref_logp: f32) -> f32 {
        let r = ref_logp - logp;
        match self {
            KlEstimator::K1 => -r,
            KlEstimator::K2 => 0.5 * r * r,
            KlEstimator::K3 => r.exp_m1() - r,
        }
    }

    /// The estimate at every token as a differentiable function of `logp` (both tensors of
    /// the same shape): the KL term of a loss.
    pub fn tensor(self, logp: &Tensor, ref_logp: &Tensor) -> crate::Result<Tensor> {
        let r = (ref_logp - logp)?;
        Ok(match self {
            KlEstimator::K1 => r.neg()?,
            KlEstimator::K2 => (r.sqr()? * 0.5)?,
            KlEstimator::K3 => ((r.exp()? - 1.0)? - &r)?,
        })
    }

    /// The estimate at every token of one response.
    pub fn per_token(self, logp: &[f32], ref_logp: &[f32]) -> Vec<f32> {
        logp.iter()
            .zip(ref_logp)
            .map(|(&a, &b)| self.at(a, b))
            .collect()
    }
}

/// Per-token rewards of one response (the paper, docs/method.md): `-beta * kl_t` at every
/// token, plus the sequence-level `reward` on the last token.
pub fn shape_rewards(kl: &[f32], beta: f32, reward: f32) -> Vec<f32> {
    let mut out: Vec<f32> = kl.iter().map(|k| -beta * k).collect();
    if let Some(last) = out.last_mut() {
        *last += reward;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_estimates_equal_the_scalar_ones() {
        let dev = candle_core::Device::Cpu;
        let (lp, rf) = ([-1.0f32, -0.2, -3.0], [-1.5f32, -0.2, -1.0]);
        let (tl, tr) = (
            Tensor::new(&lp, &dev).unwrap(),
            Tensor::new(&rf, &dev).unwrap(),
        );
        for k in [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3] {
            let t = k.tensor(&tl, &tr).unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in t.iter().zip(k.per_token(&lp, &rf)) {
                assert!((a - b).abs() < 1e-6, "{k:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn estimators_match_their_formulas() {
        // logp = -1, ref = -1.5: r = -0.5.
        assert!((KlEstimator::K1.at(-1.0, -1.5) - 0.5).abs() < 1e-7);
        assert!((KlEstimator::K2.at(-1.0, -1.5) - 0.125).abs() < 1e-7);
        // e^-0.5 - 1 + 0.5 = 0.10653066
        assert!((KlEstimator::K3.at(-1.0, -1.5) - 0.106_530_66).abs() < 1e-7);
        for k in [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3] {
            assert_eq!(k.at(-2.0, -2.0), 0.0);
        }
    }

    #[test]
    fn reward_sits_on_the_last_token() {
        let r = shape_rewards(&[0.5, -0.2, 0.1], 0.01, 0.8);
        let want = [-0.005, 0.002, 0.8 - 0.001];
        for (a, b) in r.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
        assert!(shape_rewards(&[], 0.01, 1.0).is_empty());
    }
}
