//! AdamW hyper-parameters.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// AdamW hyper-parameters, named as in `torch.optim.AdamW`.
///
/// `lr` is the base learning rate that an [`crate::LrSchedule`] scales; [`crate::AdamW::step`]
/// takes the rate of each step explicitly (`schedule.lr_at(cfg.lr, step)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// Base learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator `sqrt(v_hat)`.
    pub eps: f64,
    /// Decoupled weight decay: each step multiplies the parameter by `1 - lr * weight_decay`.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// lr 1e-5, PyTorch's betas (0.9, 0.999) and eps 1e-8, no weight decay.
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamWConfig {
    /// The paper (docs/method.md, "Optimisation and schedule"): betas (0.9, 0.95), eps 1e-6,
    /// no weight decay; the learning rate stays at the default (the paper's differs per
    /// player: defender 5e-7, attacker 3e-6, critic 1.5e-6).
    pub fn paper() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-6,
            ..AdamWConfig::default()
        }
    }

    /// Checks every field's range; the error names the field and its valid range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, value: f64, range: &str| {
            Err(Error::Invalid(format!(
                "adamw {field} = {value} is out of range: it must be {range}"
            )))
        };
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad("lr", self.lr, "finite and >= 0");
        }
        for (field, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(field, b, "in [0, 1)");
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", self.eps, "finite and > 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", self.weight_decay, "finite and >= 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pytorchs_and_paper_is_papers() {
        let d = AdamWConfig::default();
        assert_eq!(
            (d.lr, d.beta1, d.beta2, d.eps, d.weight_decay),
            (1e-5, 0.9, 0.999, 1e-8, 0.0)
        );
        let p = AdamWConfig::paper();
        assert_eq!((p.beta1, p.beta2, p.eps), (0.9, 0.95, 1e-6));
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let cases = [
            (
                AdamWConfig {
                    beta1: 1.0,
                    ..Default::default()
                },
                "beta1",
            ),
            (
                AdamWConfig {
                    beta2: -0.1,
                    ..Default::default()
                },
                "beta2",
            ),
            (
                AdamWConfig {
                    eps: 0.0,
                    ..Default::default()
                },
                "eps",
            ),
            (
                AdamWConfig {
                    lr: f64::NAN,
                    ..Default::default()
                },
                "lr",
            ),
            (
                AdamWConfig {
                    weight_decay: -1.0,
                    ..Default::default()
                },
                "weight_decay",
            ),
        ];
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("adamw {field} =")), "{err}");
        }
        assert!(AdamWConfig::paper().validate().is_ok());
    }

    #[test]
    fn config_reads_partial_toml_style_json() {
        let c: AdamWConfig = serde_json::from_str(r#"{"lr": 3e-6, "beta2": 0.95}"#).unwrap();
        assert_eq!((c.lr, c.beta2, c.eps), (3e-6, 0.95, 1e-8));
        assert!(serde_json::from_str::<AdamWConfig>(r#"{"betas": 1}"#).is_err());
    }
}
