//! Every random stream of a game, derived from the run's seed: one named function each, so
//! that a reader sees them all in one place and a new stream does not reuse another's
//! derivation by accident. Each value is what runs have always used (changing one changes
//! every run's samples). Two streams share the constant `0xbe9` ([`defender_extras`] and
//! [`eval_benign`]); they mix it with different inputs and feed different generators.

use crate::schedule::Role;

/// A player's stream: its adapters' initialisation, then its trainer's sampling and
/// shuffling (a LoRA critic takes the next value).
pub fn player(seed: u64, role: Role) -> u64 {
    seed ^ (role as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The seeds the attacker rewrites at `step` (a resumed run draws the same ones).
pub fn step_seeds(seed: u64, step: u64) -> u64 {
    seed ^ step.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The `mixed` extras a learning defender also answers at `step`.
pub fn defender_extras(seed: u64, step: u64) -> u64 {
    seed ^ step ^ 0xbe9
}

/// A served defender's sampling at `step` (sent to the server as each request's seed).
pub fn served_defender(seed: u64, step: u64) -> u64 {
    seed ^ 0x5e7e_d000 ^ step.wrapping_mul(0x9e37_79b9)
}

/// An evaluation's generator at `step`, apart from training's streams.
pub fn eval(seed: u64, step: u64) -> u64 {
    seed ^ 0xe7a1 ^ step.wrapping_mul(31)
}

/// An evaluation's sampling seed for `role` at `step`.
pub fn eval_sampling(seed: u64, step: u64, role: Role) -> u64 {
    seed ^ 0xe7a1_0000 ^ step.wrapping_mul(0x9e37_79b9) ^ role as u64
}

/// The sampling seed of an evaluation's benign answers, from its harmful answers' seed.
pub fn eval_benign(sampling_seed: u64) -> u64 {
    sampling_seed ^ 0xbe9
}

/// The order of a named prompt set's prompts (`data.rs`'s subsets).
pub fn set_order(seed: u64) -> u64 {
    seed ^ 0x11a1
}

/// The split of the seed prompts into training and held-out seeds.
pub fn heldout_split(seed: u64) -> u64 {
    seed ^ 0x5eed
}
