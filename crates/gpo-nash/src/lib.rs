//! `gpo-nash`: the theory of GPO (docs/method.md, "Theory") checked exactly on finite games.
//!
//! - [`MatrixGame`]: a zero-sum game `x^T A y` (rows: the defender, which maximises; columns:
//!   the attacker, which minimises), validated on construction; [`MatrixGame::nash_gap`] is the
//!   paper's NEGap and [`MatrixGame::solve`] / [`MatrixGame::exact_value`] the exact answer by a
//!   small simplex LP solver.
//! - [`PromptResponseGame`]: the paper's own shape, an attacker choosing prompts and a
//!   defender choosing a response per prompt, with its gap and closed-form value.
//! - [`Game`] holds either ([`Variant`]) and reads them from JSON files.
//! - [`Mwu`] (built by [`MwuBuilder`]) runs the paper's KL-proximal updates, i.e.
//!   multiplicative weights from uniform policies, [`UpdateOrder::Alternating`] (the paper) or
//!   [`UpdateOrder::Simultaneous`], with an optional attacker entropy bonus, and returns the
//!   averaged and last iterates with their gaps ([`Outcome`], [`Measure`]). The default step
//!   size [`default_eta`] gives the theorem's `O(T^-1/2)` gap for the averages.
//!
//! ```
//! use gpo_nash::{Game, MatrixGame, Mwu};
//! # fn main() -> gpo_nash::Result<()> {
//! // A 2x2 game with the mixed equilibrium x = (3/7, 4/7), y = (2/7, 5/7), value 1/7.
//! let a = MatrixGame::new(vec![vec![3.0, -1.0], vec![-2.0, 1.0]])?;
//! assert!((a.exact_value()? - 1.0 / 7.0).abs() < 1e-12);
//! let out = Mwu::builder(4000).build()?.run(&Game::Matrix(a), |_| {})?;
//! // The value estimate is within the averaged strategies' gap of the true value.
//! assert!(out.end.nash_gap_avg < 0.05);
//! assert!((out.end.value_estimate - 1.0 / 7.0).abs() <= out.end.nash_gap_avg);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod game;
mod lp;
mod matrix;
mod mwu;
mod prompt;
mod simplex_ops;

pub use error::{Error, Result};
pub use game::{Game, Variant};
pub use lp::Equilibrium;
pub use matrix::MatrixGame;
pub use mwu::{default_eta, DefenderPolicy, Measure, Mwu, MwuBuilder, Outcome, UpdateOrder};
pub use prompt::PromptResponseGame;
