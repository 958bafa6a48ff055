//! The records of a game step: one line of `metrics.jsonl` ([`StepRecord`]) and of
//! `samples.jsonl` ([`SampleRecord`]).

use serde::{Deserialize, Serialize};

use crate::StepStats;

/// Wall time of each phase of a step, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTimes {
    /// The attacker writing prompts.
    pub attack_s: f64,
    /// The defender answering.
    pub defend_s: f64,
    /// The judge.
    pub judge_s: f64,
    /// Embeddings and self-BLEU against the history.
    pub diversity_s: f64,
    /// The attacker's update (prepare + optimise).
    pub attacker_update_s: f64,
    /// The defender's update.
    pub defender_update_s: f64,
}

/// What one player did in a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerStep {
    /// Mean reward of its rollouts (before the KL penalty); the defender's includes the
    /// `mixed` extras, which it answers only in steps where it learns.
    pub reward: f32,
    /// Whether it learned at this step.
    pub learned: bool,
    /// The update's statistics when it learned.
    pub stats: Option<StepStats>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Steps completed, this one included.
    pub step: u64,
    /// Schedule stage of the step.
    pub stage: u64,
    /// Mean P(unsafe) of the step's exchanges.
    pub p_unsafe: f32,
    /// Fraction of exchanges the judge called unsafe.
    pub attack_success_rate: f32,
    /// Mean self-BLEU of the attacker's prompts against the history.
    pub self_bleu: f32,
    /// Mean embedding cosine of the attacker's prompts against the history.
    pub embedding_similarity: f32,
    /// The attacker (absent in the `rlhf-defender` baseline).
    pub attacker: Option<PlayerStep>,
    /// The defender.
    pub defender: PlayerStep,
    /// Tokens generated per second of generation time (both players; a served defender's
    /// answers are neither counted nor timed here).
    pub tokens_per_s: f64,
    /// Phase timings.
    pub times: StepTimes,
}

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// The step.
    pub step: u64,
    /// The seed question.
    pub seed: String,
    /// The attacker's prompt (the seed itself in the `rlhf-defender` baseline).
    pub prompt: String,
    /// The defender's response.
    pub response: String,
    /// The judge's P(unsafe).
    pub p_unsafe: f32,
    /// The attacker's reward (P(unsafe) minus diversity penalties).
    pub attacker_reward: f32,
    /// Self-BLEU of the prompt against the history.
    pub self_bleu: f32,
    /// Embedding similarity of the prompt against the history.
    pub embedding_similarity: f32,
}
