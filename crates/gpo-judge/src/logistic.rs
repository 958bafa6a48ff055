//! Logistic-regression heads, trained by full-batch Adam on class-weighted log-loss with an
//! L2 penalty, plus the metrics reported for them (accuracy, ROC AUC).

use serde::{Deserialize, Serialize};

/// A trained head: P(y = 1 | x) = sigmoid(w . x + b).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticHead {
    /// Weights, one per feature.
    pub w: Vec<f32>,
    /// Bias.
    pub b: f32,
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
        let n = y.len();
        let pos = y.iter().filter(|&&v| v).count().max(1) as f32;
        let neg = (n as f32 - pos).max(1.0);
        let weight: Vec<f32> = y
            .iter()
            .map(|&v| if v { 0.5 / pos } else { 0.5 / neg })
            .collect();
        let mut params = vec![0f32; dim + 1];
        let (mut m, mut v) = (vec![0f32; dim + 1], vec![0f32; dim + 1]);
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut grad = vec![0f32; dim + 1];
        for step in 1..=opts.steps {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for i in 0..n {
                let row = &x[i * dim..(i + 1) * dim];
                let z: f32 = row
                    .iter()
                    .zip(&params[..dim])
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
                    + params[dim];
                let err = (sigmoid(z) - if y[i] { 1.0 } else { 0.0 }) * weight[i];
                for (g, a) in grad[..dim].iter_mut().zip(row) {
                    *g += err * a;
                }
                grad[dim] += err;
            }
            for (g, p) in grad[..dim].iter_mut().zip(&params[..dim]) {
                *g += opts.l2 * p;
            }
            let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
            for k in 0..=dim {
                m[k] = b1 * m[k] + (1.0 - b1) * grad[k];
                v[k] = b2 * v[k] + (1.0 - b2) * grad[k] * grad[k];
                params[k] -= opts.lr * (m[k] / c1) / ((v[k] / c2).sqrt() + eps);
            }
        }
        let b = params[dim];
        params.truncate(dim);
        LogisticHead { w: params, b }
    }

    /// P(y = 1) of each row of `x` (`n x dim`).
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        x.chunks_exact(self.w.len().max(1))
            .map(|row| sigmoid(row.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f32>() + self.b))
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
}
