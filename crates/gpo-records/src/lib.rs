//! `gpo-records`: the lines a run directory holds, as plain serde types with no model or
//! tensor in them, so that what reads a run (the report) needs neither the game nor candle.
//!
//! - [`StepRecord`] (`metrics.jsonl`), with each player's [`PlayerStep`] and its RL
//!   iteration's [`StepStats`]; [`SampleRecord`] (`samples.jsonl`).
//! - [`EvalRecord`] (`eval.jsonl`): the defender's rates with intervals and its answers.
//! - [`Change`]: the first evaluation against the last, answers paired by prompt ([`pair`]).
#![warn(missing_docs)]

mod change;
mod eval;
mod json_float;
mod rl;
mod step;

pub use change::{pair, BenignChange, Change, HarmfulChange, Paired};
pub use eval::{
    BenignAnswer, BenignEval, DefenderEval, EvalRecord, Example, HarmfulEval, BASE_EVAL_FILE,
};
pub use rl::{Credit, EngineStats, PhaseTimes, StepStats, UpdateStats};
pub use step::{PlayerStep, SampleRecord, StepRecord, StepTimes};
