//! Learning-rate schedules: the rate of each optimiser step as a function of the base rate.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the learning rate evolves over optimiser steps.
///
/// [`LrSchedule::lr_at`]`(base, step)` takes `step` = steps already taken
/// ([`crate::AdamW::step_count`] before the step), so the first step has `step = 0`. With
/// `s = step + 1` (the 1-based number of the step about to be taken), `w = warmup`,
/// `T = total` and `r = min_ratio`:
///
/// | kind | `s <= w` | `s > w` |
/// |---|---|---|
/// | `constant` | `base` | `base` |
/// | `warmup` | `base * s / w` | `base` |
/// | `linear` | `base * s / w` | `base * (1 - (1 - r) * p)` |
/// | `cosine` | `base * s / w` | `base * (r + (1 - r) * (1 + cos(pi * p)) / 2)` |
/// | `inverse-sqrt` | `base * s / w` | `base * sqrt(w / s)` |
///
/// where `p = min(1, (s - w) / (T - w))` is the fraction of the decay done, so the rate
/// reaches `r * base` at step `s = T` and stays there. Warm-up therefore never uses a zero
/// rate (`base / w` first, `base` at `s = w`), and `inverse-sqrt` is continuous at `w`
/// (with `w = 0` it is `base / sqrt(s)`). These are Hugging Face's `get_*_schedule_with_warmup`
/// multipliers evaluated at `s` instead of `step`, and with a floor.
///
/// In files (`#[serde(tag = "kind")]`, kebab-case):
/// `{ kind = "inverse-sqrt", warmup = 100 }`, `{ kind = "cosine", warmup = 10, total = 800,
/// min_ratio = 0.1 }` (`min_ratio` defaults to 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum LrSchedule {
    /// `base` at every step.
    #[default]
    Constant,
    /// Linear warm-up over `warmup` steps, then constant.
    Warmup {
        /// Warm-up steps.
        warmup: u64,
    },
    /// Linear warm-up, then linear decay to `min_ratio * base` at step `total`.
    Linear {
        /// Warm-up steps.
        warmup: u64,
        /// Step (1-based) at which the floor is reached; must exceed `warmup`.
        total: u64,
        /// The floor as a fraction of the base rate, in [0, 1].
        #[serde(default)]
        min_ratio: f64,
    },
    /// Linear warm-up, then half a cosine down to `min_ratio * base` at step `total`.
    Cosine {
        /// Warm-up steps.
        warmup: u64,
        /// Step (1-based) at which the floor is reached; must exceed `warmup`.
        total: u64,
        /// The floor as a fraction of the base rate, in [0, 1].
        #[serde(default)]
        min_ratio: f64,
    },
    /// Linear warm-up, then decay as `1 / sqrt(step)` (the paper: warm-up 100 steps).
    InverseSqrt {
        /// Warm-up steps.
        warmup: u64,
    },
}

impl LrSchedule {
    /// The paper (docs/method.md): 100 warm-up steps, then inverse-square-root decay.
    pub fn paper() -> Self {
        LrSchedule::InverseSqrt { warmup: 100 }
    }

    /// Checks the parameters; the error names the field and its valid range.
    pub fn validate(&self) -> Result<()> {
        match *self {
            LrSchedule::Linear {
                warmup,
                total,
                min_ratio,
            }
            | LrSchedule::Cosine {
                warmup,
                total,
                min_ratio,
            } => {
                if total <= warmup {
                    return Err(Error::Invalid(format!(
                        "lr schedule total = {total} must exceed warmup = {warmup}"
                    )));
                }
                if !(0.0..=1.0).contains(&min_ratio) {
                    return Err(Error::Invalid(format!(
                        "lr schedule min_ratio = {min_ratio} must be in [0, 1]"
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The learning rate of the step taken after `step` steps (see the table above).
    pub fn lr_at(&self, base: f64, step: u64) -> f64 {
        let s = step.saturating_add(1) as f64;
        let (warmup, decay) = match *self {
            LrSchedule::Constant => return base,
            LrSchedule::Warmup { warmup } => (warmup, Decay::None),
            LrSchedule::Linear {
                warmup,
                total,
                min_ratio,
            } => (warmup, Decay::Linear { total, min_ratio }),
            LrSchedule::Cosine {
                warmup,
                total,
                min_ratio,
            } => (warmup, Decay::Cosine { total, min_ratio }),
            LrSchedule::InverseSqrt { warmup } => (warmup, Decay::InverseSqrt),
        };
        let w = warmup as f64;
        if s <= w {
            return base * s / w;
        }
        let progress = |total: u64| {
            if total <= warmup {
                1.0
            } else {
                ((s - w) / (total - warmup) as f64).min(1.0)
            }
        };
        match decay {
            Decay::None => base,
            Decay::Linear { total, min_ratio } => {
                base * (1.0 - (1.0 - min_ratio) * progress(total))
            }
            Decay::Cosine { total, min_ratio } => {
                let cos = (std::f64::consts::PI * progress(total)).cos();
                base * (min_ratio + (1.0 - min_ratio) * (1.0 + cos) / 2.0)
            }
            Decay::InverseSqrt => base * (w.max(1.0) / s).sqrt(),
        }
    }
}

/// The phase after warm-up.
enum Decay {
    None,
    Linear { total: u64, min_ratio: f64 },
    Cosine { total: u64, min_ratio: f64 },
    InverseSqrt,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: f64 = 1e-3;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
    }

    #[test]
    fn constant_ignores_the_step() {
        for step in [0, 1, 1_000_000] {
            assert_eq!(LrSchedule::Constant.lr_at(BASE, step), BASE);
        }
    }

    #[test]
    fn warmup_rises_linearly_from_base_over_w() {
        let w = LrSchedule::Warmup { warmup: 4 };
        // s = step + 1: 1/4, 2/4, 4/4, then flat.
        let got = [0, 1, 3, 4, 10].map(|s| w.lr_at(BASE, s));
        assert_eq!(got, [0.25e-3, 0.5e-3, 1e-3, 1e-3, 1e-3]);
    }

    #[test]
    fn linear_decays_to_the_floor_at_total() {
        let l = LrSchedule::Linear {
            warmup: 2,
            total: 12,
            min_ratio: 0.2,
        };
        close(l.lr_at(BASE, 0), 0.5e-3); // s = 1 of 2 warm-up steps
        close(l.lr_at(BASE, 1), 1e-3); // s = w
                                       // step 6: s = 7, p = (7 - 2) / 10 = 0.5 -> 1 - 0.8 * 0.5 = 0.6.
        close(l.lr_at(BASE, 6), 0.6e-3);
        close(l.lr_at(BASE, 11), 0.2e-3); // s = T
        close(l.lr_at(BASE, 500), 0.2e-3);
    }

    #[test]
    fn cosine_is_half_a_period_from_base_to_floor() {
        let c = LrSchedule::Cosine {
            warmup: 0,
            total: 10,
            min_ratio: 0.1,
        };
        // step 4: s = 5, p = 0.5, cos(pi / 2) = 0 -> 0.1 + 0.9 / 2 = 0.55.
        close(c.lr_at(BASE, 4), 0.55e-3);
        // step 1: s = 2, p = 0.2 -> 0.1 + 0.9 * (1 + cos(0.2 pi)) / 2.
        let want = BASE * (0.1 + 0.9 * (1.0 + (0.2 * std::f64::consts::PI).cos()) / 2.0);
        close(c.lr_at(BASE, 1), want);
        close(c.lr_at(BASE, 9), 0.1e-3);
    }

    #[test]
    fn inverse_sqrt_is_papers_schedule() {
        let p = LrSchedule::paper();
        assert_eq!(p, LrSchedule::InverseSqrt { warmup: 100 });
        close(p.lr_at(BASE, 0), 0.01e-3);
        close(p.lr_at(BASE, 49), 0.5e-3);
        close(p.lr_at(BASE, 99), 1e-3);
        // step 399: s = 400, sqrt(100 / 400) = 0.5; step 9999: sqrt(100 / 10000) = 0.1.
        close(p.lr_at(BASE, 399), 0.5e-3);
        close(p.lr_at(BASE, 9_999), 0.1e-3);
        let none = LrSchedule::InverseSqrt { warmup: 0 };
        close(none.lr_at(BASE, 0), BASE);
        close(none.lr_at(BASE, 3), 0.5e-3);
    }

    #[test]
    fn schedules_round_trip_through_tagged_kebab_case() {
        let s: LrSchedule =
            serde_json::from_str(r#"{"kind": "inverse-sqrt", "warmup": 100}"#).unwrap();
        assert_eq!(s, LrSchedule::paper());
        let c: LrSchedule =
            serde_json::from_str(r#"{"kind": "cosine", "warmup": 1, "total": 9}"#).unwrap();
        assert_eq!(
            c,
            LrSchedule::Cosine {
                warmup: 1,
                total: 9,
                min_ratio: 0.0
            }
        );
        let json = serde_json::to_string(&LrSchedule::Constant).unwrap();
        assert_eq!(json, r#"{"kind":"constant"}"#);
        assert!(serde_json::from_str::<LrSchedule>(r#"{"kind": "cosine", "warmup": 1}"#).is_err());
        assert!(
            serde_json::from_str::<LrSchedule>(r#"{"kind": "warmup", "warmup": 1, "x": 2}"#)
                .is_err()
        );
    }

    #[test]
    fn validate_names_bad_fields() {
        let bad = LrSchedule::Linear {
            warmup: 10,
            total: 10,
            min_ratio: 0.0,
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("total = 10 must exceed warmup = 10"));
        let bad = LrSchedule::Cosine {
            warmup: 0,
            total: 10,
            min_ratio: 1.5,
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_ratio = 1.5"));
        assert!(LrSchedule::paper().validate().is_ok());
    }
}
