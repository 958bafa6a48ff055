//! Logistic-regression heads, trained by full-batch Adam on class-weighted log-loss with an
//! L2 penalty, plus the metrics reported for them (accuracy, ROC AUC).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A trained head: P(y = 1 | x) = sigmoid(w . x + b).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticHead {
    /// Weights, one per feature.
    pub w: Vec<f32>,
    /// Bias.
    pub b: f32,
}

/// Training settings (a `[fit]` table: snake_case keys, each optional, unknown keys are
/// errors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitOptions {
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam step size.
    pub lr: f32,
    /// L2 penalty on the weights (not the bias).
    pub l2: f32,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            steps: 400,
            lr: 0.05,
            l2: 1e-3,
        }
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LogisticHead {
    /// Fits on rows `x` (`n x dim`, row-major) with labels `y` (1 positive, 0 negative).
    /// Each class carries half of the total weight, so unbalanced sets do not shift the
    /// boundary. Deterministic: same data, same head.
    pub fn fit(x: &[f32], y: &[bool], dim: usize, opts: &FitOptions) -> LogisticHead {
        Self::fit_bags(x, y, dim, 1, opts)
    }

    /// As [`Self::fit`] for examples that are bags of `bag` consecutive rows each, an
    /// example's logit being the least of its rows' logits: P(y = 1) = sigmoid(min over rows
    /// of w . x + b), positive only when every row is (multiple-instance logistic regression;
    /// the gradient flows through each bag's lowest row). `bag = 1` is plain logistic
    /// regression.
    pub fn fit_bags(
        x: &[f32],
        y: &[bool],
        dim: usize,
        bag: usize,
        opts: &FitOptions,
    ) -> LogisticHead {
        let n = y.len();
        let pos = y.iter().filter(|&&v| v).count().max(1) as f32;
        let neg = (n as f32 - pos).max(1.0);
        let weight: Vec<f32> = y
            .iter()
            .map(|&v| if v { 0.5 / pos } else { 0.5 / neg })
            .collect();
        let mut head = LogisticHead {
            w: vec![0f32; dim],
            b: 0.0,
        };
        let (mut m, mut v) = (vec![0f32; dim + 1], vec![0f32; dim + 1]);
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut grad = vec![0f32; dim + 1];
        for step in 1..=opts.steps {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let lowest = head.lowest_rows(x, bag);
            for (i, &(z, r)) in lowest.iter().enumerate().take(n) {
                let row = &x[r * dim..(r + 1) * dim];
                let err = (sigmoid(z) - if y[i] { 1.0 } else { 0.0 }) * weight[i];
                for (g, a) in grad[..dim].iter_mut().zip(row) {
                    *g += err * a;
                }
                grad[dim] += err;
            }
            for (g, p) in grad[..dim].iter_mut().zip(&head.w) {
                *g += opts.l2 * p;
            }
            let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
            for k in 0..=dim {
                m[k] = b1 * m[k] + (1.0 - b1) * grad[k];
                v[k] = b2 * v[k] + (1.0 - b2) * grad[k] * grad[k];
                let p = if k < dim { &mut head.w[k] } else { &mut head.b };
                *p -= opts.lr * (m[k] / c1) / ((v[k] / c2).sqrt() + eps);
            }
        }
        head
    }

    /// Each bag's least logit and the index of the row that has it (the first on ties), in
    /// parallel over bags.
    fn lowest_rows(&self, x: &[f32], bag: usize) -> Vec<(f32, usize)> {
        let (dim, bag) = (self.w.len().max(1), bag.max(1));
        x.par_chunks(dim * bag)
            .enumerate()
            .map(|(i, rows)| {
                rows.chunks_exact(dim)
                    .map(|row| row.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f32>() + self.b)
                    .enumerate()
                    .fold((f32::INFINITY, i * bag), |best, (k, z)| {
                        if z < best.0 {
                            (z, i * bag + k)
                        } else {
                            best
                        }
                    })
            })
            .collect()
    }

    /// Temperature scaling (Guo et al. 2017, for a head over bags): the factor `k` in
    /// [0.1, 10] (a geometric grid of 2% steps) that minimises the class-balanced log-loss
    /// of sigmoid(k z) on held-out bags `x` with labels `y`, z being each bag's logit.
    /// [`Self::scaled`]`(k)` is then the calibrated head (the same ranking). The least `k`
    /// wins ties.
    pub fn temperature(&self, x: &[f32], y: &[bool], bag: usize) -> f32 {
        let z: Vec<f32> = self
            .lowest_rows(x, bag)
            .into_iter()
            .map(|(z, _)| z)
            .collect();
        let pos = y.iter().filter(|&&v| v).count().max(1) as f64;
        let neg = (y.len() as f64 - pos).max(1.0);
        let loss = |k: f64| -> f64 {
            z.iter()
                .zip(y)
                .map(|(&z, &label)| {
                    // log sigmoid(t) = -ln(1 + e^-t), computed stably.
                    let t = if label { k * z as f64 } else { -k * z as f64 };
                    let log_p = -((-t.abs()).exp().ln_1p() + (-t).max(0.0));
                    -log_p * if label { 0.5 / pos } else { 0.5 / neg }
                })
                .sum()
        };
        let mut best = (f64::INFINITY, 1.0f64);
        let mut k = 0.1f64;
        while k <= 10.0 {
            let l = loss(k);
            if l < best.0 {
                best = (l, k);
            }
            k *= 1.02;
        }
        best.1 as f32
    }

    /// The head with its weights and bias multiplied by `k`: P = sigmoid(k (w . x + b)).
    pub fn scaled(&self, k: f32) -> LogisticHead {
        LogisticHead {
            w: self.w.iter().map(|w| w * k).collect(),
            b: self.b * k,
        }
    }

    /// P(y = 1) of each row of `x` (`n x dim`).
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        self.predict_bags(x, 1)
    }

    /// P(y = 1) of each bag of `bag` consecutive rows of `x` ([`Self::fit_bags`]).
    pub fn predict_bags(&self, x: &[f32], bag: usize) -> Vec<f32> {
        self.lowest_rows(x, bag)
            .into_iter()
            .map(|(z, _)| sigmoid(z))
            .collect()
    }
}

/// Accuracy and ROC AUC of scores against labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of positives.
    pub positives: usize,
    /// Number of negatives.
    pub negatives: usize,
    /// Fraction right at threshold 0.5.
    pub accuracy: f64,
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
}

impl Metrics {
    /// Computes the metrics of `scores` against `labels`.
    pub fn of(scores: &[f32], labels: &[bool]) -> Metrics {
        let positives = labels.iter().filter(|&&l| l).count();
        let negatives = labels.len() - positives;
        let right = scores
            .iter()
            .zip(labels)
            .filter(|(&s, &l)| (s >= 0.5) == l)
            .count();
        Metrics {
            positives,
            negatives,
            accuracy: right as f64 / labels.len().max(1) as f64,
            auc: auc(scores, labels),
        }
    }
}

/// ROC AUC by the rank-sum (Mann-Whitney U) formula, average ranks for ties. NaN when a
/// class is empty.
pub fn auc(scores: &[f32], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0f64; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    let p = labels.iter().filter(|&&l| l).count() as f64;
    let n = labels.len() as f64 - p;
    let rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Pairs (pos, neg): (0.9, 0.1) (0.9, 0.5) (0.4, 0.1) right, (0.4, 0.5) wrong -> 3/4.
        let a = auc(&[0.9, 0.4, 0.1, 0.5], &[true, true, false, false]);
        assert!((a - 0.75).abs() < 1e-12, "{a}");
        // A tie between classes counts one half: (0.5 vs 0.5) -> 0.5.
        assert!((auc(&[0.5, 0.5], &[true, false]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn separable_data_is_separated_deterministically() {
        // 1-D: positives at x >= 1, negatives at x <= -1.
        let x = [1.0, 2.0, 1.5, -1.0, -2.0, -1.2];
        let y = [true, true, true, false, false, false];
        let a = LogisticHead::fit(&x, &y, 1, &FitOptions::default());
        let b = LogisticHead::fit(&x, &y, 1, &FitOptions::default());
        assert_eq!(a, b);
        let m = Metrics::of(&a.predict(&x), &y);
        assert_eq!((m.accuracy, m.auc), (1.0, 1.0));
    }

    #[test]
    fn temperature_scaling_recovers_the_calibrated_factor() {
        // A head with logit z = x. At x = 1 22 of 25 examples are positive, at x = -1 22 of
        // 25 negative: the log-loss is least where sigmoid(k) = 22/25, k = ln(22/3) = 1.9924.
        let head = LogisticHead {
            w: vec![1.0],
            b: 0.0,
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (value, positives, negatives) in [(1.0f32, 22, 3), (-1.0, 3, 22)] {
            x.extend(std::iter::repeat_n(value, positives + negatives));
            y.extend(std::iter::repeat_n(true, positives));
            y.extend(std::iter::repeat_n(false, negatives));
        }
        let k = head.temperature(&x, &y, 1);
        assert!((k - 22f32.ln() + 3f32.ln()).abs() < 0.03, "{k}");
        let scaled = head.scaled(k);
        assert_eq!((scaled.w[0], scaled.b), (k, 0.0));
    }

    #[test]
    fn a_bag_is_positive_only_when_every_row_is() {
        // 1-D bags of two rows. Positives: both rows >= 1. Negatives: one row >= 1 (as in a
        // positive bag) and one <= -1, in either order, so no single row position and no
        // bag mean separates them, but the least row does.
        let x = [
            1.0, 2.0, 1.5, 1.2, 2.5, 1.0, // three positive bags
            2.0, -1.0, -1.5, 1.5, 1.0, -2.0, // three negative bags
        ];
        let y = [true, true, true, false, false, false];
        let h = LogisticHead::fit_bags(&x, &y, 1, 2, &FitOptions::default());
        let p = h.predict_bags(&x, 2);
        assert_eq!(p.len(), 6);
        let m = Metrics::of(&p, &y);
        assert_eq!((m.accuracy, m.auc), (1.0, 1.0), "{p:?}");
        // A bag of one row is a plain logistic head.
        assert_eq!(h.predict_bags(&[1.0, -1.0], 1), h.predict(&[1.0, -1.0]));
    }
}
