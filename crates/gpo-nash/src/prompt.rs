//! [`PromptResponseGame`]: the game of the paper (docs/method.md) in its own shape. The
//! attacker picks a prompt `i ~ mu`, the defender answers with a response `j ~ pi(.|i)`
//! chosen per prompt, and the defender receives `r[i][j]`:
//! `J(pi, mu) = sum_i mu_i sum_j pi(j|i) r[i][j]`.
//!
//! Its exact value needs no LP. For any `pi`, `J(pi, mu) = sum_i mu_i v_i(pi)` with
//! `v_i(pi) = sum_j pi(j|i) r[i][j] <= max_j r[i][j]`, with equality for the greedy policy on
//! every prompt at once. Hence `max_pi min_mu J = min_i max_j r[i][j]` (greedy policy) and
//! `min_mu max_pi J = min_mu sum_i mu_i max_j r[i][j] = min_i max_j r[i][j]`: the value is
//! `min_i max_j r[i][j]`, the defender's greedy policy and the attacker's hardest prompt form
//! an equilibrium.

use crate::matrix::MatrixGame;
use crate::simplex_ops::{check_distribution, dot, entropy, soft_min};
use crate::{Error, Result};

/// A prompt-response game: `reward[i][j]` in the defender's favour when the attacker's
/// prompt is `i` and the defender's response is `j` (the paper's judge `r(x, y)` on a finite
/// set of prompts and responses). Validated like a [`MatrixGame`].
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResponseGame {
    /// Rows = prompts (attacker), columns = responses (defender).
    table: MatrixGame,
}

impl PromptResponseGame {
    /// Validates `reward` (rows = prompts, columns = responses) and builds the game.
    pub fn new(reward: Vec<Vec<f64>>) -> Result<Self> {
        Ok(Self {
            table: MatrixGame::from_table("reward", reward)?,
        })
    }

    /// Number of prompts (attacker actions).
    pub fn prompts(&self) -> usize {
        self.table.rows()
    }

    /// Number of responses per prompt (defender actions at each prompt).
    pub fn responses(&self) -> usize {
        self.table.cols()
    }

    /// `max - min` of the rewards.
    pub fn range(&self) -> f64 {
        self.table.range()
    }

    /// The reward row of prompt `i`.
    pub(crate) fn rewards_of(&self, i: usize) -> &[f64] {
        self.table.row_slices().nth(i).unwrap_or(&[])
    }

    /// The exact value `min_i max_j r[i][j]` (derivation in the module doc).
    pub fn exact_value(&self) -> f64 {
        self.table
            .row_slices()
            .map(|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            .fold(f64::INFINITY, f64::min)
    }

    /// `J(pi, mu) = sum_i mu_i sum_j pi(j|i) r[i][j]` (the paper's objective).
    pub fn payoff(&self, pi: &[Vec<f64>], mu: &[f64]) -> Result<f64> {
        self.check(pi, mu)?;
        Ok(dot(&self.prompt_values(pi), mu))
    }

    /// The paper's `NEGap = max_pi' J(pi', mu) - min_mu' J(pi, mu')`, here
    /// `sum_i mu_i max_j r[i][j] - min_i sum_j pi(j|i) r[i][j]`: the defender's best reply
    /// is greedy on each prompt, the attacker's is the prompt where `pi` does worst.
    pub fn nash_gap(&self, pi: &[Vec<f64>], mu: &[f64]) -> Result<f64> {
        self.regularized_gap(pi, mu, 0.0)
    }

    /// The gap of the game whose attacker objective gains the prompt-entropy bonus
    /// `-h H(mu)` (the paper's "Theory"): as [`PromptResponseGame::nash_gap`] with
    /// `- h H(mu)` added to the first term and the soft minimum
    /// `-h ln sum_i exp(-v_i / h)` in place of `min_i v_i`.
    pub fn regularized_gap(&self, pi: &[Vec<f64>], mu: &[f64], h: f64) -> Result<f64> {
        self.check(pi, mu)?;
        if !(h.is_finite() && h >= 0.0) {
            return Err(Error::Invalid(format!(
                "entropy coefficient is {h}: it must be finite and >= 0"
            )));
        }
        Ok(self.gap_unchecked(pi, mu, h))
    }

    /// `v_i(pi) = sum_j pi(j|i) r[i][j]`, the attacker's loss for each prompt.
    pub(crate) fn prompt_values(&self, pi: &[Vec<f64>]) -> Vec<f64> {
        self.table
            .row_slices()
            .zip(pi)
            .map(|(r, p)| dot(r, p))
            .collect()
    }

    pub(crate) fn gap_unchecked(&self, pi: &[Vec<f64>], mu: &[f64], h: f64) -> f64 {
        let best_defender: f64 = self
            .table
            .row_slices()
            .zip(mu)
            .map(|(r, m)| m * r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            .sum();
        best_defender - h * entropy(mu) - soft_min(&self.prompt_values(pi), h)
    }

    fn check(&self, pi: &[Vec<f64>], mu: &[f64]) -> Result<()> {
        if pi.len() != self.prompts() {
            return Err(Error::Dimension {
                name: "defender policy (one row per prompt)",
                len: pi.len(),
                expected: self.prompts(),
            });
        }
        for p in pi {
            check_distribution("defender policy row", p, self.responses())?;
        }
        check_distribution("attacker prompt distribution", mu, self.prompts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game() -> PromptResponseGame {
        // Prompt 0 is easy (a response scores 0.9), prompt 1 hard (best 0.4).
        PromptResponseGame::new(vec![vec![0.9, 0.1], vec![0.2, 0.4]]).unwrap()
    }

    #[test]
    fn exact_value_is_the_hardest_prompt_under_the_greedy_policy() {
        // min(max(0.9, 0.1), max(0.2, 0.4)) = min(0.9, 0.4) = 0.4.
        assert_eq!(game().exact_value(), 0.4);
        let greedy = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(game().nash_gap(&greedy, &[0.0, 1.0]).unwrap(), 0.0);
    }

    #[test]
    fn nash_gap_adds_both_regrets() {
        // Uniform pi: v = (0.5, 0.3); uniform mu: best defender payoff 0.5*0.9 + 0.5*0.4
        // = 0.65; worst prompt for pi: 0.3. Gap 0.35.
        let pi = vec![vec![0.5, 0.5]; 2];
        let gap = game().nash_gap(&pi, &[0.5, 0.5]).unwrap();
        assert!((gap - 0.35).abs() < 1e-12, "{gap}");
        assert!((game().payoff(&pi, &[0.5, 0.5]).unwrap() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn shapes_are_checked() {
        let e = game().nash_gap(&[vec![1.0, 0.0]], &[0.5, 0.5]).unwrap_err();
        assert!(e.to_string().contains("one row per prompt"), "{e}");
        let e = PromptResponseGame::new(vec![vec![0.1], vec![]]).unwrap_err();
        assert!(e.to_string().starts_with("reward row 1"), "{e}");
    }
}
