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

    pub(crate) fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(Error::Invalid {
                name: "resamples",
                message: "must be at least 1 (default 2000)".into(),
            });
        }
        self.validate_level()
    }

    /// The level alone: what explicit resamples need.
    pub(crate) fn validate_level(&self) -> Result<()> {
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
        self.validate_level()?;
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
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        Ok(self.estimate(mean, means, values.len()))
    }

    /// The mean over ordered pairs `i != j` of `pairs` (row-major `n x n`; the diagonal is
    /// ignored), with its interval: each resample draws `n` items with replacement and takes
    /// the mean over its pairs of distinct items (`sum c_i c_j K_ij / sum c_i c_j` over
    /// `i != j`, `c` the items' multiplicities). A set metric such as the mean pairwise
    /// similarity is not a mean of independent per-item values (each pair counts in two of
    /// them), so resampling per-item means would make its interval about half as wide as it
    /// should be. Resamples with a single distinct item have no pair and are skipped.
    pub fn pair_interval(&self, label: &'static str, n: usize, pairs: &[f64]) -> Result<Estimate> {
        self.validate()?;
        if n < 2 {
            return Err(Error::Invalid {
                name: label,
                message: format!("a mean over pairs needs at least 2 items, got {n}"),
            });
        }
        if pairs.len() != n * n {
            return Err(Error::Invalid {
                name: label,
                message: format!(
                    "{} pair values for {n} items (expected {})",
                    pairs.len(),
                    n * n
                ),
            });
        }
        let off_diagonal = |i: usize, j: usize| if i == j { 0.0 } else { pairs[i * n + j] };
        let total: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| off_diagonal(i, j))
            .sum();
        let mean = total / (n * (n - 1)) as f64;
        let mut means = Vec::with_capacity(self.resamples);
        let mut counts = vec![0f64; n];
        for row in self.indices(n) {
            counts.iter_mut().for_each(|c| *c = 0.0);
            for i in row {
                counts[i] += 1.0;
            }
            let drawn: Vec<usize> = (0..n).filter(|&i| counts[i] > 0.0).collect();
            let squares: f64 = drawn.iter().map(|&i| counts[i] * counts[i]).sum();
            let weight = (n * n) as f64 - squares;
            if weight == 0.0 {
                continue;
            }
            let sum: f64 = drawn
                .iter()
                .map(|&i| {
                    let row: f64 = drawn.iter().map(|&j| counts[j] * off_diagonal(i, j)).sum();
                    counts[i] * row
                })
                .sum();
            means.push(sum / weight);
        }
        if means.is_empty() {
            return Err(Error::Invalid {
                name: label,
                message: "no resample drew two distinct items; use more resamples".into(),
            });
        }
        Ok(self.estimate(mean, means, n))
    }

    /// `mean` with the percentile interval of the resampled `means`.
    pub(crate) fn estimate(&self, mean: f64, mut means: Vec<f64>, n: usize) -> Estimate {
        means.sort_by(f64::total_cmp);
        let tail = (1.0 - self.level) / 2.0;
        Estimate {
            mean,
            lo: percentile(&means, tail),
            hi: percentile(&means, 1.0 - tail),
            n,
            level: self.level,
        }
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

    #[test]
    fn a_pair_mean_resamples_items_not_per_item_means() {
        // K_ij = x_i + x_j: the mean over pairs is 2 mean(x), and by Hoeffding's U-statistic
        // variance its standard error is 2 sd(x) / sqrt(n), twice the per-item means'
        // (h_i = x_i + mean of the other x, whose spread is sd(x)).
        let n = 200;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let pairs: Vec<f64> = (0..n * n).map(|k| x[k / n] + x[k % n]).collect();
        let b = Bootstrap::default();
        let e = b.pair_interval("pairs", n, &pairs).unwrap();
        let want = 2.0 * x.iter().sum::<f64>() / n as f64;
        assert!((e.mean - want).abs() < 1e-12, "{} vs {want}", e.mean);
        let items: Vec<f64> = (0..n)
            .map(|i| {
                (0..n)
                    .filter(|&j| j != i)
                    .map(|j| pairs[i * n + j])
                    .sum::<f64>()
            })
            .map(|row| row / (n - 1) as f64)
            .collect();
        let naive = b.interval("items", &items).unwrap();
        assert!((naive.mean - e.mean).abs() < 1e-12);
        let ratio = (e.hi - e.lo) / (naive.hi - naive.lo);
        assert!((1.8..2.2).contains(&ratio), "width ratio {ratio}");
        assert!(e.lo < e.mean && e.mean < e.hi);
    }

    #[test]
    fn a_pair_mean_needs_two_items_and_a_square_matrix() {
        let b = Bootstrap::default();
        let e = b.pair_interval("pairs", 1, &[0.0]).unwrap_err();
        assert!(e.to_string().contains("at least 2 items"), "{e}");
        let e = b.pair_interval("pairs", 2, &[0.0; 3]).unwrap_err();
        assert!(e.to_string().contains("3 pair values for 2 items"), "{e}");
        // Two items: only resamples that draw both have a pair, and their mean is K_01.
        let e = b.pair_interval("pairs", 2, &[9.0, 0.5, 0.5, 9.0]).unwrap();
        assert_eq!((e.mean, e.lo, e.hi), (0.5, 0.5, 0.5));
    }
}
