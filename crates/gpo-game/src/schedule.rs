//! Who learns at each step of the game.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Writes prompts; rewarded by P(unsafe) minus the diversity penalties.
    Attacker,
    /// Answers them; rewarded by P(safe).
    Defender,
}

impl Role {
    /// `"attacker"` or `"defender"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Attacker => "attacker",
            Role::Defender => "defender",
        }
    }
}

/// When each player learns.
///
/// In files: `{ kind = "alternate", defender_steps = 400, attacker_steps = 200 }`,
/// `{ kind = "simultaneous" }`, `{ kind = "threshold", high = 0.6, low = 0.2 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Schedule {
    /// Stages of fixed length, defender first (the released script: 400 then 200).
    Alternate {
        /// Steps of each defender stage.
        defender_steps: u64,
        /// Steps of each attacker stage.
        attacker_steps: u64,
    },
    /// Both players learn at every step.
    Simultaneous,
    /// The attacker learns until the attack success rate of a step reaches `high`, then the
    /// defender until it falls to `low`, and so on (defender first).
    Threshold {
        /// Switch to the defender at or above this attack success rate.
        high: f32,
        /// Switch to the attacker at or below this attack success rate.
        low: f32,
    },
}

impl Schedule {
    /// The released script's stages: 400 defender steps, then 200 attacker steps.
    pub fn paper() -> Self {
        Schedule::Alternate {
            defender_steps: 400,
            attacker_steps: 200,
        }
    }

    /// Checks the stage lengths and thresholds.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Schedule::Alternate {
                defender_steps,
                attacker_steps,
            } if defender_steps == 0 || attacker_steps == 0 => Err(Error::Config(
                "schedule.defender_steps and schedule.attacker_steps must be at least 1".into(),
            )),
            Schedule::Threshold { high, low } if !(0.0 <= low && low < high && high <= 1.0) => {
                Err(Error::Config(format!(
                    "schedule.low = {low} and schedule.high = {high} must satisfy 0 <= low < high <= 1"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Where the schedule stands; saved in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Stage number, from 0.
    pub stage: u64,
    /// The learner of the current stage (`None` under [`Schedule::Simultaneous`]).
    pub learner: Option<Role>,
    /// Steps taken in the current stage.
    pub steps_in_stage: u64,
}

impl ScheduleState {
    /// The state before the first step: the defender's stage (or both).
    pub fn new(schedule: &Schedule) -> Self {
        ScheduleState {
            stage: 0,
            learner: match schedule {
                Schedule::Simultaneous => None,
                _ => Some(Role::Defender),
            },
            steps_in_stage: 0,
        }
    }

    /// Whether `role` learns at the coming step.
    pub fn learns(&self, role: Role) -> bool {
        self.learner.is_none_or(|r| r == role)
    }

    /// Records a finished step with attack success rate `asr` and moves to the next stage
    /// when the schedule says so. Returns whether a new stage began.
    pub fn advance(&mut self, schedule: &Schedule, asr: f32) -> bool {
        self.steps_in_stage += 1;
        let switch = match (*schedule, self.learner) {
            (Schedule::Simultaneous, _) | (_, None) => false,
            (
                Schedule::Alternate {
                    defender_steps,
                    attacker_steps,
                },
                Some(r),
            ) => {
                let len = match r {
                    Role::Defender => defender_steps,
                    Role::Attacker => attacker_steps,
                };
                self.steps_in_stage >= len
            }
            (Schedule::Threshold { high, .. }, Some(Role::Attacker)) => asr >= high,
            (Schedule::Threshold { low, .. }, Some(Role::Defender)) => asr <= low,
        };
        if switch {
            self.stage += 1;
            self.steps_in_stage = 0;
            self.learner = self.learner.map(|r| match r {
                Role::Attacker => Role::Defender,
                Role::Defender => Role::Attacker,
            });
        }
        switch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_runs_defender_first_then_switches_by_count() {
        let s = Schedule::Alternate {
            defender_steps: 2,
            attacker_steps: 1,
        };
        let mut st = ScheduleState::new(&s);
        let mut seq = Vec::new();
        for _ in 0..6 {
            seq.push(st.learner.unwrap());
            st.advance(&s, 0.0);
        }
        use Role::*;
        assert_eq!(
            seq,
            [Defender, Defender, Attacker, Defender, Defender, Attacker]
        );
    }

    #[test]
    fn threshold_switches_on_the_attack_success_rate() {
        let s = Schedule::Threshold {
            high: 0.5,
            low: 0.1,
        };
        let mut st = ScheduleState::new(&s);
        assert!(!st.advance(&s, 0.3)); // defender keeps learning above `low`
        assert!(st.advance(&s, 0.05)); // now the attacker
        assert_eq!(st.learner, Some(Role::Attacker));
        assert!(!st.advance(&s, 0.4));
        assert!(st.advance(&s, 0.6));
        assert_eq!(st.learner, Some(Role::Defender));
    }

    #[test]
    fn simultaneous_trains_both() {
        let st = ScheduleState::new(&Schedule::Simultaneous);
        assert!(st.learns(Role::Attacker) && st.learns(Role::Defender));
    }

    #[test]
    fn bad_thresholds_are_named() {
        let err = Schedule::Threshold {
            high: 0.1,
            low: 0.5,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("schedule.low"), "{err}");
    }
}
