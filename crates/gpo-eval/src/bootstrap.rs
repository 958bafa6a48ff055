//! The percentile bootstrap of a mean.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A mean of per-item values with its bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The mean of the values.
    pub mean: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// Items measured.
    pub n: usize,
    /// Confidence level of `[lo, hi]` (0.95 by default).
    pub level: f64,
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} [{:.3}, {:.3}] (n={}, {:.0}% CI)",
            self.mean,
            self.lo,
            self.hi,
            self.n,
            self.level * 100.0
        )
    }
}

/// Percentile bootstrap of a mean: resample the items with replacement `resamples` times,
/// take each resample's mean, and report the `(1 - level) / 2` and `(1 + level) / 2`
/// percentiles of those means (linear interpolation between order statistics, numpy's
/// default `np.percentile` method).
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// Number of resamples `B`.
    pub resamples: usize,
    /// Seed of the ChaCha8 generator that draws the resample indices.
    pub seed: u64,
    /// Confidence level in (0, 1).
    pub level: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 2000,
            seed: 0,
            level: 0.95,
        }
    }
}

impl Bootstrap {
    /// With this many resamples.
    pub fn with_resamples(mut self, resamples: usize) -> Self {
        self.resamples = resamples;
        self
    }

    /// With this seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// With this confidence level.
    pub fn with_level(mut self, level: f64) -> Self {
        self.level = level;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(Error::Invalid {
                name: "resamples",
                message: "must be at least 1 (default 2000)".into(),
            });
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::Invalid {
                name: "level",
                message: format!("{} is not in (0, 1); use e.g. 0.95", self.level),
            });
        }
        Ok(())
    }

    /// The resample indices this bootstrap draws for `n` items: `resamples` rows of `n`
    /// indices in `0..n`, from a ChaCha8 generator seeded with `seed`.
    pub fn indices(&self, n: usize) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..self.resamples)
            .map(|_| (0..n).map(|_| rng.random_range(0..n)).collect())
            .collect()
    }

    /// The mean of `values` with its interval, `label` naming the statistic in errors.
    pub fn interval(&self, label: &'static str, values: &[f64]) -> Result<Estimate> {
        self.validate()?;
        if values.is_empty() {
            return Err(Error::Empty(label));
        }
        let indices = self.indices(values.len());
        self.interval_from_indices(label, values, &indices)
    }

    /// The mean of `values` with its interval over explicit resamples: each row of
    /// `indices` is one resample (indices into `values`, any length). `resamples` and `seed`
    /// are ignored; `level` is used.
    pub fn interval_from_indices(
        &self,
        label: &'static str,
        values: &[f64],
        indices: &[Vec<usize>],
    ) -> Result<Estimate> {
        if !(self.level > 0.0 && self.level < 1.0) {
            self.validate()?;
        }
        if values.is_empty() {
            return Err(Error::Empty(label));
        }
        if indices.is_empty() {
            return Err(Error::Invalid {
                name: "indices",
                message: "no resamples given".into(),
            });
        }
        let mut means = Vec::with_capacity(indices.len());
        for (r, row) in indices.iter().enumerate() {
            if row.is_empty() {
                return Err(Error::Invalid {
                    name: "indices",
                    message: format!("resample {r} is empty"),
                });
            }
            let mut sum = 0.0;
            for &i in row {
                let v = values.get(i).ok_or_else(|| Error::Invalid {
                    name: "indices",
                    message: format!(
                        "resample {r} has index {i}, but there are {} values",
                        values.len()
                    ),
                })?;
                sum += v;
            }
            means.push(sum / row.len() as f64);
        }
        means.sort_by(f64::total_cmp);
        let tail = (1.0 - self.level) / 2.0;
        Ok(Estimate {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            lo: percentile(&means, tail),
            hi: percentile(&means, 1.0 - tail),
            n: values.len(),
            level: self.level,
        })
    }
}

/// The `q`-quantile (`q` in [0, 1]) of sorted, non-empty `sorted` by linear interpolation
/// between the order statistics at `q * (len - 1)`: numpy's default `np.percentile`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let h = q.clamp(0.0, 1.0) * last as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(last);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // np.percentile([1, 2, 3, 4], [0, 25, 50, 97.5, 100]) == [1, 1.75, 2.5, 3.925, 4]
        let xs = [1.0, 2.0, 3.0, 4.0];
        for (q, want) in [
            (0.0, 1.0),
            (0.25, 1.75),
            (0.5, 2.5),
            (0.975, 3.925),
            (1.0, 4.0),
        ] {
            assert!((percentile(&xs, q) - want).abs() < 1e-12, "q={q}");
        }
    }

    #[test]
    fn seeded_bootstrap_is_deterministic_and_seed_dependent() {
        let values: Vec<f64> = (0..30).map(|i| (i % 7) as f64 / 7.0).collect();
        let b = Bootstrap::default().with_resamples(300);
        let a1 = b.interval("x", &values).unwrap();
        let a2 = b.interval("x", &values).unwrap();
        let c = b.clone().with_seed(1).interval("x", &values).unwrap();
        assert_eq!(a1, a2);
        assert_ne!((a1.lo, a1.hi), (c.lo, c.hi));
        assert!(a1.lo <= a1.mean && a1.mean <= a1.hi);
    }

    #[test]
    fn constant_values_give_a_degenerate_interval() {
        let e = Bootstrap::default().interval("x", &[0.25; 10]).unwrap();
        assert_eq!((e.mean, e.lo, e.hi, e.n), (0.25, 0.25, 0.25, 10));
    }

    #[test]
    fn empty_values_and_bad_parameters_are_errors() {
        let b = Bootstrap::default();
        assert!(matches!(b.interval("asr", &[]), Err(Error::Empty("asr"))));
        let e = b.clone().with_level(1.5).interval("x", &[1.0]).unwrap_err();
        assert!(e.to_string().contains("level"), "{e}");
        let e = b.with_resamples(0).interval("x", &[1.0]).unwrap_err();
        assert!(e.to_string().contains("resamples"), "{e}");
    }

    #[test]
    fn out_of_range_index_names_the_resample() {
        let e = Bootstrap::default()
            .interval_from_indices("x", &[1.0, 2.0], &[vec![0, 1], vec![0, 2]])
            .unwrap_err();
        assert!(e.to_string().contains("resample 1 has index 2"), "{e}");
    }
}
