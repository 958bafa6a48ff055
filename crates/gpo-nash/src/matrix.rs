//! [`MatrixGame`]: a finite two-player zero-sum game in normal form, and its Nash gap.

use crate::simplex_ops::{check_distribution, dot, entropy, soft_min};
use crate::{Error, Result};

/// A zero-sum matrix game `A` (m x n). Row `i` is the defender's action (it maximises),
/// column `j` the attacker's (it minimises), `A[i][j]` the defender's payoff: the finite
/// form of the paper's objective `J(pi, mu) = x^T A y`.
///
/// Built only through [`MatrixGame::new`], so a value of this type is non-empty,
/// rectangular and finite.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixGame {
    /// Row-major entries.
    a: Vec<f64>,
    rows: usize,
    cols: usize,
}

impl MatrixGame {
    /// Validates `payoff` (rows = defender actions) and builds the game. Errors name the
    /// first problem: no rows or no columns, a row of another length, a non-finite entry,
    /// entries whose range overflows f64.
    pub fn new(payoff: Vec<Vec<f64>>) -> Result<Self> {
        Self::from_table("payoff", payoff)
    }

    /// [`MatrixGame::new`] with `what` naming the table in errors.
    pub(crate) fn from_table(what: &'static str, table: Vec<Vec<f64>>) -> Result<Self> {
        let cols = table.first().map_or(0, Vec::len);
        if cols == 0 {
            return Err(Error::Empty { what });
        }
        let rows = table.len();
        let mut a = Vec::with_capacity(rows * cols);
        for (row, entries) in table.into_iter().enumerate() {
            if entries.len() != cols {
                return Err(Error::Ragged {
                    what,
                    row,
                    len: entries.len(),
                    expected: cols,
                });
            }
            if let Some((col, &value)) = entries.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what,
                    row,
                    col,
                    value,
                });
            }
            a.extend(entries);
        }
        let game = Self { a, rows, cols };
        let (lo, hi) = game.bounds();
        if !(hi - lo).is_finite() {
            return Err(Error::Invalid(format!(
                "{what} entries span {lo:e} to {hi:e}, a range beyond f64: rescale them"
            )));
        }
        Ok(game)
    }

    /// Number of defender actions (rows), m.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of attacker actions (columns), n.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The entry `A[i][j]`. Panics when out of range, like slice indexing.
    pub fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.rows && j < self.cols,
            "entry ({i}, {j}) out of range"
        );
        self.a[i * self.cols + j]
    }

    /// The rows as slices.
    pub fn row_slices(&self) -> impl Iterator<Item = &[f64]> {
        self.a.chunks_exact(self.cols)
    }

    /// `(min, max)` over all entries.
    pub fn bounds(&self) -> (f64, f64) {
        self.a
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// `max - min` over all entries: the payoff range R of the step-size rule.
    pub fn range(&self) -> f64 {
        let (lo, hi) = self.bounds();
        hi - lo
    }

    /// `A y` (length m): the defender's payoff for each of its actions against `y`.
    pub(crate) fn row_payoffs(&self, y: &[f64]) -> Vec<f64> {
        self.row_slices().map(|r| dot(r, y)).collect()
    }

    /// `A^T x` (length n): the attacker's loss for each of its actions against `x`.
    pub(crate) fn col_payoffs(&self, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.cols];
        for (r, &xi) in self.row_slices().zip(x) {
            for (o, &v) in out.iter_mut().zip(r) {
                *o += xi * v;
            }
        }
        out
    }

    /// The value `x^T A y` of a strategy pair (docs/method.md, "The objective": `J(pi, mu)`).
    pub fn payoff(&self, x: &[f64], y: &[f64]) -> Result<f64> {
        self.check(x, y)?;
        Ok(dot(&self.col_payoffs(x), y))
    }

    /// The Nash gap of the paper's theorem, `NEGap = max_x' J(x', y) - min_y' J(x, y')`
    /// `= max_i (A y)_i - min_j (x^T A)_j`. It is >= 0, and 0 exactly at a Nash
    /// equilibrium; `|x^T A y - value| <= gap` always.
    pub fn nash_gap(&self, x: &[f64], y: &[f64]) -> Result<f64> {
        self.regularized_gap(x, y, 0.0)
    }

    /// The Nash gap of the entropy-regularised game of the paper (docs/method.md, "Theory":
    /// the attacker's objective gains `-h * H(mu)`), `J_h(x, y) = x^T A y - h H(y)`:
    /// `max_i (A y)_i - h H(y) - min_y' (x^T A y' - h H(y'))`, where the inner minimum is the
    /// soft minimum `-h ln sum_j exp(-(x^T A)_j / h)`. Equals [`MatrixGame::nash_gap`] at
    /// `h = 0`; 0 exactly at the regularised equilibrium.
    pub fn regularized_gap(&self, x: &[f64], y: &[f64], h: f64) -> Result<f64> {
        self.check(x, y)?;
        if !(h.is_finite() && h >= 0.0) {
            return Err(Error::Invalid(format!(
                "entropy coefficient is {h}: it must be finite and >= 0"
            )));
        }
        Ok(self.gap_unchecked(x, y, h))
    }

    /// The regularised gap without validation, for the dynamics' own iterates.
    pub(crate) fn gap_unchecked(&self, x: &[f64], y: &[f64], h: f64) -> f64 {
        let best_defender = self
            .row_payoffs(y)
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max);
        best_defender - h * entropy(y) - soft_min(&self.col_payoffs(x), h)
    }

    fn check(&self, x: &[f64], y: &[f64]) -> Result<()> {
        check_distribution("defender strategy", x, self.rows)?;
        check_distribution("attacker strategy", y, self.cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let e = MatrixGame::new(vec![]).unwrap_err();
        assert!(e.to_string().contains("payoff is empty"), "{e}");
        let e = MatrixGame::new(vec![vec![]]).unwrap_err();
        assert!(e.to_string().contains("payoff is empty"), "{e}");
        let e = MatrixGame::new(vec![vec![1.0, 2.0], vec![3.0]]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "payoff row 1 has 1 entries but row 0 has 2: all rows must have the same length"
        );
        let e = MatrixGame::new(vec![vec![1.0, f64::NAN]]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "payoff[0][1] is NaN: entries must be finite numbers"
        );
        let e = MatrixGame::new(vec![vec![f64::INFINITY]]).unwrap_err();
        assert!(e.to_string().contains("is inf"), "{e}");
    }

    #[test]
    fn products_follow_the_orientation() {
        // Rows = defender. A = [[1, 2, 3], [4, 5, 6]].
        let g = MatrixGame::new(vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]).unwrap();
        assert_eq!((g.rows(), g.cols()), (2, 3));
        assert_eq!(g.row_payoffs(&[1.0, 0.0, 0.0]), vec![1.0, 4.0]);
        assert_eq!(g.col_payoffs(&[0.0, 1.0]), vec![4.0, 5.0, 6.0]);
        assert_eq!(g.payoff(&[0.5, 0.5], &[0.0, 0.0, 1.0]).unwrap(), 4.5);
        assert_eq!(g.range(), 5.0);
        // Finite entries whose range overflows: an error, not a zero step size.
        let err = MatrixGame::new(vec![vec![1e308, -1e308]]).unwrap_err();
        assert!(err.to_string().contains("rescale"), "{err}");
    }

    #[test]
    fn nash_gap_of_a_pure_pair_is_its_two_regrets() {
        // Matching pennies at (heads, heads): the defender is already best (regret 0), the
        // attacker gains 2 by switching (1 -> -1): gap = max_i (Ay)_i - min_j (x^T A)_j
        // = 1 - (-1) = 2.
        let g = MatrixGame::new(vec![vec![1.0, -1.0], vec![-1.0, 1.0]]).unwrap();
        assert_eq!(g.nash_gap(&[1.0, 0.0], &[1.0, 0.0]).unwrap(), 2.0);
        assert_eq!(g.nash_gap(&[0.5, 0.5], &[0.5, 0.5]).unwrap(), 0.0);
    }

    #[test]
    fn regularized_gap_is_zero_at_the_regularised_equilibrium() {
        // Matching pennies with h > 0: by symmetry the regularised equilibrium is still
        // uniform (A^T x = 0 there, so the soft best reply is uniform), and any other attacker
        // strategy has a positive regularised gap.
        let g = MatrixGame::new(vec![vec![1.0, -1.0], vec![-1.0, 1.0]]).unwrap();
        let u = [0.5, 0.5];
        assert!(g.regularized_gap(&u, &u, 0.3).unwrap().abs() < 1e-12);
        assert!(g.regularized_gap(&u, &[0.6, 0.4], 0.3).unwrap() > 1e-3);
        assert!(g.regularized_gap(&u, &u, -1.0).is_err());
    }

    #[test]
    fn strategies_are_checked() {
        let g = MatrixGame::new(vec![vec![1.0, -1.0], vec![-1.0, 1.0]]).unwrap();
        let e = g.nash_gap(&[1.0], &[0.5, 0.5]).unwrap_err();
        assert!(
            e.to_string().contains("defender strategy has 1 entries"),
            "{e}"
        );
        assert!(g.nash_gap(&[0.5, 0.5], &[0.9, 0.9]).is_err());
    }
}
