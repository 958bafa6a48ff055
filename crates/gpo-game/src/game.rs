//! The game: its players, judge, diversity reward and prompts, built once ([`Game::build`]);
//! the step itself is [`step`], and the records it writes are `gpo-records`'.

mod eval;
mod run;
mod step;

pub use run::{Outcome, Progress, Summary};

use std::sync::Arc;

use gpo_judge::Judge;
use gpo_lm::LoadOptions;
use gpo_records::{PlayerStep, SampleRecord, StepRecord, StepTimes};

use crate::chat_policy::{BaseModels, ChatPolicy, PolicySpec};
use crate::compliance::RefusalReader;
use crate::config::{Anchor, DefenderPrompts, GameConfig, Mode};
use crate::data::Prompts;
use crate::defender::Defender;
use crate::diversity::Diversity;
use crate::engine_rollout::EngineRollout;
use crate::player::Player;
use crate::schedule::{Role, ScheduleState};
use crate::{Error, Result};

/// Everything a game holds between steps.
pub struct Game {
    /// The configuration.
    pub cfg: GameConfig,
    /// The attacker.
    pub attacker: Player,
    /// The defender.
    pub defender: Defender,
    /// The judge.
    pub judge: Box<dyn Judge>,
    /// Embeddings and the attacker's history.
    pub diversity: Diversity,
    /// Seeds and benign prompts.
    pub prompts: Prompts,
    /// The compliance head: which answers decline, for the defender's helpfulness price
    /// and for every evaluation's over-refusal.
    pub refusals: RefusalReader,
    /// Steps completed.
    pub step: u64,
    /// Where the schedule stands.
    pub schedule: ScheduleState,
    /// The model a warm-started defender began from (its name and weights), evaluated once
    /// at step 0 ([`Game::evaluate_base`]) and then dropped.
    pub warm_start_base: Option<(String, gpo_lm::CausalLm)>,
}

impl Game {
    /// Loads models, judge, embedder and data: everything that can fail does so here,
    /// before any training.
    pub fn build(cfg: GameConfig, cache: &gpo_assets::AssetCache) -> Result<Game> {
        cfg.validate()?;
        // First the cheap checks: a device that cannot open, or a served defender that does
        // not answer, must not wait for the judge's heads to train.
        let device = cfg.models.device.open().map_err(|source| Error::Model {
            context: "models.device".into(),
            source,
        })?;
        let served = match PolicySpec::of_model(&cfg.models.defender)? {
            spec @ PolicySpec::Served { .. } => {
                let mut no_bases = BaseModels::new(device.clone(), cfg.models.dtype);
                let field = |e: Error| Error::Field {
                    field: format!("models.defender = \"{}\"", cfg.models.defender),
                    source: Box::new(e),
                };
                let target = ChatPolicy::load(&cfg.models.defender, &spec, &mut no_bases, cache)
                    .map_err(field)?;
                target.check().map_err(field)?;
                Some(target)
            }
            _ => None,
        };
        let benign_extras = match cfg.defender.prompts {
            DefenderPrompts::Mixed { benign, .. } => benign > 0,
            DefenderPrompts::Attacker => false,
        };
        let prompts = Prompts::load(&cfg.data, cfg.seed, cache, benign_extras)?;
        let (judge, refusals) = RefusalReader::with_judge(&cfg, cache)?;
        let diversity = Diversity::load(cache, cfg.attacker.history_max)?;
        let opts = LoadOptions {
            device: device.clone(),
            dtype: cfg.models.dtype.dtype(),
            ..LoadOptions::default()
        };
        let load = |name: &str| crate::base_model::load_base(name, cache, &opts);
        let a = load(&cfg.models.attacker)?;
        let a_tok = Arc::new(a.tokenizer);
        let defender = if let Some(target) = served {
            Defender::Served(target)
        } else {
            if crate::warm_start::is_adapter_dir(std::path::Path::new(&cfg.models.defender)) {
                tracing::info!(
                    "the defender's initial model and KL reference: the adapter {} merged \
                     into its base",
                    cfg.models.defender
                );
            }
            let (d_model, d_tok) = if cfg.models.defender == cfg.models.attacker {
                // One copy of the base weights serves both players.
                (a.model.clone(), a_tok.clone())
            } else {
                let d = load(&cfg.models.defender)?;
                (d.model, Arc::new(d.tokenizer))
            };
            Defender::Local(Player::new(
                Role::Defender,
                &d_model,
                d_tok,
                &cfg.models.defender,
                &cfg.models.lora,
                cfg.defender.rl.clone(),
                cfg.seed,
            )?)
        };
        let attacker = Player::new(
            Role::Attacker,
            &a.model,
            a_tok,
            &cfg.models.attacker,
            &cfg.models.lora,
            cfg.attacker.rl.clone(),
            cfg.seed,
        )?;
        // Only where the defender learns: a frozen one (`rlhf-attacker`, `gpo exploit`) is
        // the same model from the first evaluation to the last.
        let warm_start_base = match &defender {
            Defender::Local(_) if cfg.mode != Mode::RlhfAttacker => {
                warm_start_base(&cfg, &a.model, load)?
            }
            _ => None,
        };
        let schedule = ScheduleState::new(&cfg.schedule);
        let mut game = Game {
            cfg,
            attacker,
            defender,
            judge,
            diversity,
            prompts,
            refusals,
            step: 0,
            schedule,
            warm_start_base,
        };
        if game.cfg.anchor == Anchor::PreviousIterate {
            game.anchor_here()?;
        }
        Ok(game)
    }

    /// Hands the rollouts of each player whose `rollout.backend` is an engine to its
    /// engines, with adapter versions written under `run_dir` (or the configured shared
    /// directory). Players already attached are left alone.
    pub fn attach_engines(&mut self, run_dir: &std::path::Path) -> Result<()> {
        if self.cfg.attacker.rollout.is_engine() && !self.attacker.uses_engines() {
            let e = EngineRollout::new(Role::Attacker, &self.cfg.attacker.rollout, run_dir)?;
            self.attacker.use_engines(e);
        }
        if let Defender::Local(d) = &mut self.defender {
            if self.cfg.defender.rollout.is_engine() && !d.uses_engines() {
                d.use_engines(EngineRollout::new(
                    Role::Defender,
                    &self.cfg.defender.rollout,
                    run_dir,
                )?);
            }
        }
        Ok(())
    }

    /// Whether an engine samples either player's rollouts.
    pub fn uses_engines(&self) -> bool {
        self.local_players().any(Player::uses_engines)
    }

    /// The players that run here: the attacker, and the defender unless it is served.
    pub fn local_players(&self) -> impl Iterator<Item = &Player> {
        std::iter::once(&self.attacker).chain(self.defender.local())
    }

    /// Re-anchors every local player's KL penalty at its policy as it is now.
    pub(crate) fn anchor_here(&mut self) -> Result<()> {
        self.attacker.anchor_here()?;
        if let Some(d) = self.defender.local_mut() {
            d.anchor_here()?;
        }
        Ok(())
    }

    /// Whether `role` learns at the coming step (schedule and mode together).
    pub fn learns(&self, role: Role) -> bool {
        match (self.cfg.mode, role) {
            (Mode::RlhfDefender, Role::Attacker) => false,
            (Mode::RlhfDefender, Role::Defender) => true,
            (Mode::RlhfAttacker, Role::Defender) => false,
            (Mode::RlhfAttacker, Role::Attacker) => true,
            (Mode::Gpo, r) => self.schedule.learns(r),
        }
    }
}

/// The model a warm-started defender began from: `Some` when `models.defender` is an adapter
/// that a warm start wrote (its report beside it, read by the summary alone), with the base it
/// names; the attacker's weights when that is the attacker's model (no second copy), loaded
/// otherwise.
fn warm_start_base(
    cfg: &GameConfig,
    attacker_base: &gpo_lm::CausalLm,
    load: impl Fn(&str) -> Result<gpo_lm::LoadedModel>,
) -> Result<Option<(String, gpo_lm::CausalLm)>> {
    let dir = std::path::Path::new(&cfg.models.defender);
    if !crate::warm_start::is_adapter_dir(dir)
        || !dir.join(crate::warm_start::REPORT_FILE).is_file()
    {
        return Ok(None);
    }
    let Some(base) = gpo_lm::adapter_base_model(dir)? else {
        return Ok(None);
    };
    let model = if base == cfg.models.attacker {
        attacker_base.clone()
    } else {
        load(&base)?.model
    };
    Ok(Some((base, model)))
}
