//! [`Game`]: either variant behind one type, read from its JSON file.

use serde::Deserialize;

use crate::matrix::MatrixGame;
use crate::prompt::PromptResponseGame;
use crate::{Error, Result};

/// Which finite game is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// A normal-form matrix game ([`MatrixGame`]); file `{"payoff": [[...]]}`.
    #[default]
    Matrix,
    /// The attacker picks a prompt, the defender a response per prompt
    /// ([`PromptResponseGame`]); file `{"reward": [[...]]}`.
    PromptResponse,
}

/// A finite game of either [`Variant`].
#[derive(Debug, Clone, PartialEq)]
pub enum Game {
    /// See [`MatrixGame`].
    Matrix(MatrixGame),
    /// See [`PromptResponseGame`].
    PromptResponse(PromptResponseGame),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayoffFile {
    payoff: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardFile {
    reward: Vec<Vec<f64>>,
}

impl Game {
    /// Parses a game file of the given variant: `{"payoff": [[...]]}` (rows = defender
    /// actions) for [`Variant::Matrix`], `{"reward": [[...]]}` (rows = prompts) for
    /// [`Variant::PromptResponse`], and validates the table.
    pub fn from_json(variant: Variant, text: &str) -> Result<Self> {
        match variant {
            Variant::Matrix => {
                let f: PayoffFile = serde_json::from_str(text).map_err(|source| Error::Json {
                    expected: r#"{"payoff": [[...]]}"#,
                    source,
                })?;
                Ok(Self::Matrix(MatrixGame::new(f.payoff)?))
            }
            Variant::PromptResponse => {
                let f: RewardFile = serde_json::from_str(text).map_err(|source| Error::Json {
                    expected: r#"{"reward": [[...]]}"#,
                    source,
                })?;
                Ok(Self::PromptResponse(PromptResponseGame::new(f.reward)?))
            }
        }
    }

    /// The variant of this game.
    pub fn variant(&self) -> Variant {
        match self {
            Self::Matrix(_) => Variant::Matrix,
            Self::PromptResponse(_) => Variant::PromptResponse,
        }
    }

    /// The exact value: by the simplex method for a matrix game, in closed form
    /// (`min_i max_j r[i][j]`) for a prompt-response game.
    pub fn exact_value(&self) -> Result<f64> {
        match self {
            Self::Matrix(g) => g.exact_value(),
            Self::PromptResponse(g) => Ok(g.exact_value()),
        }
    }

    /// `max - min` of the table: the payoff range R of the step-size rule.
    pub fn range(&self) -> f64 {
        match self {
            Self::Matrix(g) => g.range(),
            Self::PromptResponse(g) => g.range(),
        }
    }

    /// The largest number of actions any player chooses among at one decision: `max(m, n)`
    /// for a matrix game, `max(prompts, responses)` for a prompt-response game.
    pub fn max_actions(&self) -> usize {
        match self {
            Self::Matrix(g) => g.rows().max(g.cols()),
            Self::PromptResponse(g) => g.prompts().max(g.responses()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_parse_and_validate() {
        let g = Game::from_json(Variant::Matrix, r#"{"payoff": [[1, -1], [-1, 1]]}"#).unwrap();
        assert_eq!(g.variant(), Variant::Matrix);
        assert_eq!(g.max_actions(), 2);
        let g =
            Game::from_json(Variant::PromptResponse, r#"{"reward": [[0.1, 0.9, 0.5]]}"#).unwrap();
        assert_eq!(g.max_actions(), 3);
        assert_eq!(g.exact_value().unwrap(), 0.9);
    }

    #[test]
    fn file_errors_say_what_was_expected() {
        let e = Game::from_json(Variant::PromptResponse, r#"{"payoff": [[1]]}"#).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(r#"not a {"reward": [[...]]} game file"#),
            "{msg}"
        );
        assert!(msg.contains("unknown field `payoff`"), "{msg}");
        let e = Game::from_json(Variant::Matrix, "{\"payoff\": [[1, 2]").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = Game::from_json(Variant::Matrix, r#"{"payoff": [[1, 2], [3]]}"#).unwrap_err();
        assert!(e.to_string().contains("payoff row 1 has 1 entries"), "{e}");
        let e = Game::from_json(Variant::Matrix, r#"{"payoff": []}"#).unwrap_err();
        assert!(e.to_string().contains("payoff is empty"), "{e}");
    }
}
