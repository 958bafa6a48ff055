//! Verifiable rewards: checks on a response's text and length that need no judge, for
//! testing that the RL loop learns.

use serde::{Deserialize, Serialize};

/// A reward computed from the response alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum TaskReward {
    /// 1 when the response contains `word` (case-insensitive), else 0.
    ContainsWord {
        /// The word to find.
        word: String,
    },
    /// Shorter is better: `1 - tokens / budget` for a response that ended by itself, 0 for
    /// one cut off at the budget.
    Short {
        /// The token budget (the sampler's `max_new_tokens`).
        budget: usize,
    },
}

impl TaskReward {
    /// The reward of a response with text `text` and `tokens` tokens, `finished` when it
    /// ended with an end-of-sequence token.
    pub fn score(&self, text: &str, tokens: usize, finished: bool) -> f32 {
        match self {
            TaskReward::ContainsWord { word } => {
                f32::from(text.to_lowercase().contains(&word.to_lowercase()))
            }
            TaskReward::Short { budget } => {
                if !finished || *budget == 0 {
                    0.0
                } else {
                    (1.0 - tokens as f32 / *budget as f32).max(0.0)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_follow_their_definitions() {
        let w = TaskReward::ContainsWord {
            word: "Blue".into(),
        };
        assert_eq!(w.score("The sky is blue.", 5, true), 1.0);
        assert_eq!(w.score("The sky is grey.", 5, true), 0.0);
        let s = TaskReward::Short { budget: 40 };
        assert_eq!(s.score("", 10, true), 0.75);
        assert_eq!(s.score("", 40, false), 0.0);
    }
}
