//! The game's defender: a local player that can learn, or a frozen model behind an
//! OpenAI-compatible server that an attacker learns to attack (the `rlhf-attacker` baseline
//! against a model too large, or too closed, to run here).

use gpo_lm::{CausalLm, Pass, SamplingParams};
use rand_chacha::ChaCha8Rng;

use crate::chat_policy::ChatPolicy;
use crate::player::Player;
use crate::Result;

/// The defender of a game.
// One per game: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Defender {
    /// A LoRA player on a local model.
    Local(Player),
    /// A frozen model behind a server (`models.defender = "server:MODEL@URL"`, only in the
    /// `rlhf-attacker` baseline): its answers are chat completions there, its initial and
    /// current policy are the same, and it has no adapters, checkpoint or snapshots.
    Served(ChatPolicy),
}

impl Defender {
    /// The local player, if the defender is one.
    pub fn local(&self) -> Option<&Player> {
        match self {
            Defender::Local(p) => Some(p),
            Defender::Served(_) => None,
        }
    }

    /// The local player, mutably, if the defender is one.
    pub fn local_mut(&mut self) -> Option<&mut Player> {
        match self {
            Defender::Local(p) => Some(p),
            Defender::Served(_) => None,
        }
    }

    /// One frozen answer per text, outside training: a local defender's `reported` models
    /// (one drawn per text with `rng`, [`Player::answer`]) or a served one's chat completions.
    pub fn answer(
        &self,
        reported: &[CausalLm],
        texts: &[String],
        params: &SamplingParams,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<String>> {
        match self {
            Defender::Local(d) => d.answer(reported, &Pass::infer(), texts, params, rng),
            Defender::Served(target) => target.respond(texts, params),
        }
    }
}
