//! Samples drawn by an inference engine (vLLM, SGLang, `gpo serve`) rather than by the
//! learner: the engine's log-probs differ from the learner's (other kernels, precision,
//! an adapter one version behind), so the update corrects for the gap.

use gpo_records::EngineStats;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, RolloutBatch};

/// How an update treats rollouts whose behaviour log-probs an engine computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EngineCorrection {
    /// Truncated importance sampling: the learner recomputes the old log-probs (PPO's
    /// ratio is taken against them) and each token's surrogate is weighted by
    /// `min(exp(log pi_learner - log pi_engine), cap)` (TRL, verl and OpenRLHF use caps of
    /// 2-3).
    Tis {
        /// The cap `C` on each token's weight.
        cap: f64,
    },
    /// Take the engine's log-probs as the behaviour policy's, weight 1: right when the
    /// engine samples exactly as the learner would (`gpo serve` on the same weights).
    None,
}

impl Default for EngineCorrection {
    /// Truncated importance sampling with cap 2.
    fn default() -> Self {
        EngineCorrection::Tis { cap: 2.0 }
    }
}

impl EngineCorrection {
    /// Whether this is the default (truncated importance sampling, cap 2).
    pub fn is_default(&self) -> bool {
        *self == EngineCorrection::default()
    }

    /// Checks the cap.
    pub fn validate(&self) -> Result<()> {
        match *self {
            EngineCorrection::Tis { cap } if !(cap >= 1.0 && cap.is_finite()) => {
                Err(Error::Invalid(format!(
                    "engine_correction cap = {cap} must be a finite number >= 1"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Per-token truncated importance weights `min(exp(learner - engine), cap)`.
pub fn tis_weights(learner: &[f32], engine: &[f32], cap: f64) -> Vec<f32> {
    learner
        .iter()
        .zip(engine)
        .map(|(&l, &e)| f64::from(l - e).exp().min(cap) as f32)
        .collect()
}

/// How far the engine's log-probs were from the learner's over `batch` (prepared), with
/// the importance weights used; `None` when the learner sampled the batch itself.
pub fn engine_stats(batch: &RolloutBatch, correction: EngineCorrection) -> Option<EngineStats> {
    if !batch.is_from_engine() {
        return None;
    }
    let cap = match correction {
        EngineCorrection::Tis { cap } => cap,
        EngineCorrection::None => f64::INFINITY,
    };
    let (mut n, mut diff, mut abs, mut max, mut w, mut capped) =
        (0usize, 0f64, 0f64, 0f32, 0f64, 0usize);
    for r in &batch.rollouts {
        for (i, (&l, &e)) in r
            .behaviour_logprobs
            .iter()
            .zip(&r.engine_logprobs)
            .enumerate()
        {
            let d = l - e;
            n += 1;
            diff += f64::from(d);
            abs += f64::from(d.abs());
            max = max.max(d.abs());
            let wi = r.is_weights.get(i).copied().unwrap_or(1.0);
            w += f64::from(wi);
            capped += usize::from(f64::from(wi) >= cap);
        }
    }
    let n_f = n.max(1) as f64;
    Some(EngineStats {
        adapter: String::new(),
        logprob_diff_mean: (diff / n_f) as f32,
        logprob_abs_diff_mean: (abs / n_f) as f32,
        logprob_abs_diff_max: max,
        is_weight_mean: (w / n_f) as f32,
        is_capped_fraction: (capped as f64 / n_f) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_the_capped_probability_ratio() {
        // exp(0) = 1; exp(ln 1.5) = 1.5; exp(ln 4) = 4 capped at 2; exp(-ln 2) = 0.5.
        let learner = [-1.0, -1.0 + 1.5f32.ln(), 4f32.ln() - 3.0, -2.0 - 2f32.ln()];
        let engine = [-1.0, -1.0, -3.0, -2.0];
        let w = tis_weights(&learner, &engine, 2.0);
        for (got, want) in w.iter().zip([1.0, 1.5, 2.0, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let sample = gpo_lm::Sample {
            prompt_index: 0,
            ids: vec![1, 2, 3, 4],
            logprobs: engine.to_vec(),
            finish: gpo_lm::FinishReason::Length,
        };
        let mut batch = RolloutBatch::from_samples(&[vec![0]], vec![sample], &[0.0])
            .unwrap()
            .from_engine();
        batch.rollouts[0].behaviour_logprobs = learner.to_vec();
        batch.rollouts[0].is_weights = w;
        let m = engine_stats(&batch, EngineCorrection::Tis { cap: 2.0 }).unwrap();
        assert!((m.is_weight_mean - 1.25).abs() < 1e-6);
        assert!((m.is_capped_fraction - 0.25).abs() < 1e-6);
        assert!((m.logprob_abs_diff_max - 4f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn a_cap_below_one_is_refused_and_the_default_reads_back() {
        assert!(EngineCorrection::Tis { cap: 0.5 }.validate().is_err());
        assert!(EngineCorrection::Tis { cap: f64::INFINITY }
            .validate()
            .is_err());
        let c: EngineCorrection = serde_json::from_str(r#"{"kind": "tis", "cap": 3.0}"#).unwrap();
        assert_eq!(c, EngineCorrection::Tis { cap: 3.0 });
        let c: EngineCorrection = serde_json::from_str(r#"{"kind": "none"}"#).unwrap();
        assert_eq!(c, EngineCorrection::None);
    }
}
