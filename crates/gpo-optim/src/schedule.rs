//! Learning-rate schedules: a multiplier of the base rate at each optimiser step.

use serde::{Deserialize, Serialize};

/// How the learning rate evolves. `step` counts optimiser steps from 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum LrSchedule {
    /// `lr` at every step.
    Constant,
    /// Linear warm-up over `warmup` steps (`lr (step + 1) / warmup`), then constant.
    Warmup {
        /// Warm-up steps.
        warmup: u64,
    },
    /// Warm-up, then linear decay to `floor * lr` at `total` steps.
    Linear {
        /// Warm-up steps.
        warmup: u64,
        /// Step at which the floor is reached.
        total: u64,
        /// Final fraction of the base rate.
        floor: f64,
    },
    /// Warm-up, then cosine decay to `floor * lr` at `total` steps.
    Cosine {
        /// Warm-up steps.
        warmup: u64,
        /// Step at which the floor is reached.
        total: u64,
        /// Final fraction of the base rate.
        floor: f64,
    },
    /// Warm-up, then `lr sqrt(warmup / (step + 1))` (PAPER.md: warm-up 100, inverse sqrt).
    InverseSqrt {
        /// Warm-up steps.
        warmup: u64,
    },
}

impl LrSchedule {
    /// PAPER.md's schedule: 100 warm-up steps, then inverse-square-root decay.
    pub fn paper() -> Self {
        LrSchedule::InverseSqrt { warmup: 100 }
    }

    /// The learning rate at `step`.
    pub fn lr_at(&self, base: f64, step: u64) -> f64 {
        let warm = |w: u64| {
            if w > 0 && step < w {
                Some(base * (step + 1) as f64 / w as f64)
            } else {
                None
            }
        };
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Warmup { warmup } => warm(warmup).unwrap_or(base),
            LrSchedule::Linear {
                warmup,
                total,
                floor,
            } => warm(warmup).unwrap_or_else(|| {
                let frac = progress(step, warmup, total);
                base * (1.0 - (1.0 - floor) * frac)
            }),
            LrSchedule::Cosine {
                warmup,
                total,
                floor,
            } => warm(warmup).unwrap_or_else(|| {
                let frac = progress(step, warmup, total);
                base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos()))
            }),
            LrSchedule::InverseSqrt { warmup } => warm(warmup)
                .unwrap_or_else(|| base * (warmup.max(1) as f64 / (step + 1) as f64).sqrt()),
        }
    }
}

/// Fraction of the decay phase done at `step`, in [0, 1].
fn progress(step: u64, warmup: u64, total: u64) -> f64 {
    if total <= warmup {
        return 1.0;
    }
    ((step.saturating_sub(warmup)) as f64 / (total - warmup) as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        let base = 1e-3;
        assert_eq!(LrSchedule::Constant.lr_at(base, 7), base);
        let w = LrSchedule::Warmup { warmup: 4 };
        assert_eq!(
            [0, 1, 3, 10].map(|s| w.lr_at(base, s)),
            [2.5e-4, 5e-4, 1e-3, 1e-3]
        );
        let l = LrSchedule::Linear {
            warmup: 2,
            total: 12,
            floor: 0.0,
        };
        // step 7: 5 of 10 decay steps done -> half.
        assert!((l.lr_at(base, 7) - 5e-4).abs() < 1e-15);
        assert_eq!(l.lr_at(base, 50), 0.0);
        let c = LrSchedule::Cosine {
            warmup: 0,
            total: 10,
            floor: 0.1,
        };
        // halfway: floor + (1 - floor) * 0.5 * (1 + cos(pi / 2)) = 0.55.
        assert!((c.lr_at(base, 5) - 0.55e-3).abs() < 1e-15);
        let p = LrSchedule::paper();
        assert!((p.lr_at(base, 49) - 0.5e-3).abs() < 1e-15);
        // step 399: sqrt(100 / 400) = 0.5.
        assert!((p.lr_at(base, 399) - 0.5e-3).abs() < 1e-15);
    }

    #[test]
    fn schedules_parse_from_toml_style_json() {
        let s: LrSchedule =
            serde_json::from_str(r#"{"kind": "inverse-sqrt", "warmup": 100}"#).unwrap();
        assert_eq!(s, LrSchedule::paper());
        assert!(serde_json::from_str::<LrSchedule>(r#"{"kind": "cosine", "warmup": 1}"#).is_err());
    }
}
