//! The exact value of a matrix game by linear programming (the reference the tests compare
//! the dynamics against).
//!
//! Normalise the payoffs to `B = (A - min A) / R + 1`, so every entry lies in [1, 2] and the
//! value of `B` is positive. The attacker's problem is then the standard-form LP
//!
//! ```text
//! maximise sum_j w_j  subject to  B w <= 1,  w >= 0
//! ```
//!
//! (set `w = y / v_B`: "no row earns more than `v_B`" becomes `B w <= 1`, and minimising `v_B`
//! is maximising `sum w = 1 / v_B`). The origin is feasible, so the tableau simplex method
//! needs no phase one; Bland's rule (lowest index enters, ties in the ratio test go to the
//! lowest basic index) rules out cycling. At the optimum the objective row holds the dual
//! prices `u` of the `m` constraints, which solve the defender's LP
//! `minimise sum u subject to B^T u >= 1, u >= 0`; so `x = u / sum u`, `y = w / sum w`, and
//! `value(A) = (1 / sum w - 1) R + min A`.

use crate::matrix::MatrixGame;
use crate::{Error, Result};

/// Pivot tolerance: entries of `B` lie in [1, 2], so round-off stays far below this.
const EPS: f64 = 1e-11;

/// An exact solution of a matrix game.
#[derive(Debug, Clone, PartialEq)]
pub struct Equilibrium {
    /// The value `max_x min_y x^T A y = min_y max_x x^T A y`.
    pub value: f64,
    /// An optimal (maximin) defender strategy, length m.
    pub defender: Vec<f64>,
    /// An optimal (minimax) attacker strategy, length n.
    pub attacker: Vec<f64>,
}

impl MatrixGame {
    /// Solves the game exactly by the simplex method (see the module doc of `lp.rs`).
    /// Returns the value and one pair of optimal strategies.
    pub fn solve(&self) -> Result<Equilibrium> {
        let (m, n) = (self.rows(), self.cols());
        let (lo, _) = self.bounds();
        let range = self.range();
        if range == 0.0 {
            // Every strategy pair is optimal in a constant game.
            return Ok(Equilibrium {
                value: lo,
                defender: vec![1.0 / m as f64; m],
                attacker: vec![1.0 / n as f64; n],
            });
        }
        let mut tab = Tableau::new(self, lo, range);
        tab.optimise()?;
        let z = tab.objective();
        let mut attacker = vec![0.0; n];
        for (r, &b) in tab.basis.iter().enumerate() {
            if b < n {
                attacker[b] = tab.rhs(r) / z;
            }
        }
        let defender = (0..m).map(|i| tab.reduced_cost(n + i) / z).collect();
        Ok(Equilibrium {
            value: (1.0 / z - 1.0) * range + lo,
            defender,
            attacker,
        })
    }

    /// The exact value of the game ([`MatrixGame::solve`] without the strategies).
    pub fn exact_value(&self) -> Result<f64> {
        Ok(self.solve()?.value)
    }
}

/// A dense simplex tableau: `m` constraint rows over `n` structural and `m` slack columns,
/// then the right-hand side; row `m` is the objective row (reduced costs, then the value).
struct Tableau {
    cells: Vec<f64>,
    width: usize,
    m: usize,
    n: usize,
    /// The basic variable of each constraint row.
    basis: Vec<usize>,
}

impl Tableau {
    fn new(game: &MatrixGame, lo: f64, range: f64) -> Self {
        let (m, n) = (game.rows(), game.cols());
        let width = n + m + 1;
        let mut cells = vec![0.0; (m + 1) * width];
        for (i, row) in game.row_slices().enumerate() {
            for (j, &a) in row.iter().enumerate() {
                cells[i * width + j] = (a - lo) / range + 1.0;
            }
            cells[i * width + n + i] = 1.0;
            cells[i * width + n + m] = 1.0;
        }
        for j in 0..n {
            cells[m * width + j] = -1.0;
        }
        Self {
            cells,
            width,
            m,
            n,
            basis: (n..n + m).collect(),
        }
    }

    fn at(&self, r: usize, c: usize) -> f64 {
        self.cells[r * self.width + c]
    }

    fn rhs(&self, r: usize) -> f64 {
        self.at(r, self.width - 1)
    }

    fn reduced_cost(&self, c: usize) -> f64 {
        self.at(self.m, c)
    }

    fn objective(&self) -> f64 {
        self.rhs(self.m)
    }

    fn optimise(&mut self) -> Result<()> {
        // Bland's rule terminates; the budget only guards against a bug.
        let budget = 1000 + 100 * (self.m + self.n).pow(2);
        for _ in 0..budget {
            let Some(enter) = (0..self.n + self.m).find(|&c| self.reduced_cost(c) < -EPS) else {
                return Ok(());
            };
            let leave = (0..self.m)
                .filter(|&r| self.at(r, enter) > EPS)
                .map(|r| (self.rhs(r) / self.at(r, enter), r))
                .min_by(|(ra, a), (rb, b)| {
                    if (ra - rb).abs() <= EPS {
                        self.basis[*a].cmp(&self.basis[*b])
                    } else {
                        ra.total_cmp(rb)
                    }
                })
                .map(|(_, r)| r);
            // Every column of B is positive, so some row always bounds the entering variable.
            let Some(leave) = leave else {
                return Err(Error::Simplex(budget));
            };
            self.pivot(leave, enter);
        }
        Err(Error::Simplex(budget))
    }

    fn pivot(&mut self, r: usize, c: usize) {
        let w = self.width;
        let p = self.at(r, c);
        for k in 0..w {
            self.cells[r * w + k] /= p;
        }
        let pivot_row: Vec<f64> = self.cells[r * w..(r + 1) * w].to_vec();
        for i in 0..=self.m {
            if i == r {
                continue;
            }
            let f = self.at(i, c);
            if f != 0.0 {
                for (cell, &pv) in self.cells[i * w..(i + 1) * w].iter_mut().zip(&pivot_row) {
                    *cell -= f * pv;
                }
            }
        }
        self.basis[r] = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(a: Vec<Vec<f64>>) -> Equilibrium {
        MatrixGame::new(a).unwrap().solve().unwrap()
    }

    fn assert_close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn rock_paper_scissors_has_value_zero_and_uniform_strategies() {
        // Symmetric zero-sum: value 0; the unique equilibrium is uniform for both.
        let e = solve(vec![
            vec![0.0, -1.0, 1.0],
            vec![1.0, 0.0, -1.0],
            vec![-1.0, 1.0, 0.0],
        ]);
        assert!(e.value.abs() < 1e-12, "{}", e.value);
        assert_close(&e.defender, &[1.0 / 3.0; 3], 1e-12);
        assert_close(&e.attacker, &[1.0 / 3.0; 3], 1e-12);
    }

    #[test]
    fn matching_pennies_has_value_zero() {
        let e = solve(vec![vec![1.0, -1.0], vec![-1.0, 1.0]]);
        assert!(e.value.abs() < 1e-12);
        assert_close(&e.defender, &[0.5, 0.5], 1e-12);
        assert_close(&e.attacker, &[0.5, 0.5], 1e-12);
    }

    #[test]
    fn a_saddle_point_is_found() {
        // A[0][1] = 2 is the minimum of row 0 (4, 2, 5) and the maximum of column 1
        // (2, 0, 1): a saddle point, so the value is 2 with pure strategies (row 0, column 1).
        let e = solve(vec![
            vec![4.0, 2.0, 5.0],
            vec![1.0, 0.0, 3.0],
            vec![3.0, 1.0, 6.0],
        ]);
        assert!((e.value - 2.0).abs() < 1e-12, "{}", e.value);
        assert_close(&e.defender, &[1.0, 0.0, 0.0], 1e-12);
        assert_close(&e.attacker, &[0.0, 1.0, 0.0], 1e-12);
    }

    #[test]
    fn a_two_by_two_mixed_equilibrium_matches_the_hand_computation() {
        // A = [[3, -1], [-2, 1]] has no saddle point (maximin of pure rows -1 < minimax of
        // pure columns 1). Defender x = (p, 1-p) equalises the columns:
        //   3p - 2(1-p) = -p + (1-p)  =>  5p - 2 = 1 - 2p  =>  p = 3/7, value = 5(3/7) - 2 = 1/7.
        // Attacker y = (q, 1-q) equalises the rows:
        //   3q - (1-q) = -2q + (1-q)  =>  4q - 1 = 1 - 3q  =>  q = 2/7, value = 4(2/7) - 1 = 1/7.
        let e = solve(vec![vec![3.0, -1.0], vec![-2.0, 1.0]]);
        assert!((e.value - 1.0 / 7.0).abs() < 1e-12, "{}", e.value);
        assert_close(&e.defender, &[3.0 / 7.0, 4.0 / 7.0], 1e-12);
        assert_close(&e.attacker, &[2.0 / 7.0, 5.0 / 7.0], 1e-12);
    }

    #[test]
    fn a_dominated_row_gets_no_weight_in_a_rectangular_game() {
        // Against column 2 the rows earn (0, 0, -1), so the value is <= 0; x = (1/2, 1/2, 0)
        // earns (1/2, 1/2, 0) >= 0 against every column, so the value is 0. Any optimal y
        // keeps rows 0 and 1 at <= 0: 2a - b <= 0 and 2b - a <= 0 force a = b = 0, so
        // y = column 2 is the unique optimum, and column 2 forces x_2 = 0 (row 2 earns -1).
        let e = solve(vec![
            vec![2.0, -1.0, 0.0],
            vec![-1.0, 2.0, 0.0],
            vec![1.0, -2.0, -1.0],
        ]);
        assert!(e.value.abs() < 1e-12, "{}", e.value);
        assert!(e.defender[2].abs() < 1e-12);
        assert_close(&e.attacker, &[0.0, 0.0, 1.0], 1e-12);
    }

    #[test]
    fn a_constant_game_is_solved_without_pivots() {
        let e = solve(vec![vec![2.5, 2.5]]);
        assert_eq!(e.value, 2.5);
    }
}
