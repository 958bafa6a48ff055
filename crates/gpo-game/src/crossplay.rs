//! `gpo crossplay RUN_DIR`: every saved attacker snapshot against every saved defender
//! snapshot on the run's held-out seeds (the initial policies included), as a
//! [`gpo_eval::CrossPlay`] matrix of attack success rates, with attackers trained outside the
//! run (other runs', fresh `gpo exploit` ones) against the same defenders.

use std::path::PathBuf;

use gpo_assets::AssetCache;
use gpo_eval::CrossPlay;
use gpo_judge::build_judge;
use gpo_lm::SamplingParams;

use crate::chat_policy::{BaseModels, ChatPolicy, PolicySpec};
use crate::config::GameConfig;
use crate::data::Prompts;
use crate::policy_eval::p_unsafe;
use crate::run_dir::RunDir;
use crate::schedule::Role;
use crate::{Error, Result};

/// Name of the initial policies (the base model, adapters at their zero start).
pub const INITIAL: &str = "initial";

/// Seed of the cross-play samples: every cell of a row reuses the row's attack prompts, and
/// every defender answers with the same seed.
const SAMPLING_SEED: u64 = 0xc055_91a7;

/// `(name, spec)` of the initial policy and of each snapshot of `role`, oldest first (a
/// served defender has no snapshots: it is frozen).
fn pool(run: &RunDir, cfg: &GameConfig, role: Role) -> Result<Vec<(String, PolicySpec)>> {
    let base = match role {
        Role::Attacker => &cfg.models.attacker,
        Role::Defender => &cfg.models.defender,
    };
    let mut out = vec![(INITIAL.to_string(), PolicySpec::of_model(base)?)];
    for dir in run.snapshots(role) {
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        out.push((
            name,
            PolicySpec::Adapter {
                dir,
                base: base.clone(),
            },
        ));
    }
    Ok(out)
}

/// `(name, spec)` of the attacker each of `runs` reports (named by its directory).
fn outside_attackers(runs: &[PathBuf]) -> Result<Vec<(String, PolicySpec)>> {
    runs.iter()
        .map(|dir| {
            let name = dir.display().to_string();
            Ok((name, PolicySpec::of_run(dir, Role::Attacker)?))
        })
        .collect()
}

/// Plays the cross-play matrix of `run` on its first `max_seeds` held-out seeds (all when
/// `None`), and the attacker each of `outside` (run directories: other games, `gpo exploit`
/// runs) reports against the run's defenders. `progress(done, total)` is called after each
/// generation.
pub fn crossplay(
    run: &RunDir,
    cfg: &GameConfig,
    cache: &AssetCache,
    max_seeds: Option<usize>,
    outside: &[PathBuf],
    mut progress: impl FnMut(usize, usize),
) -> Result<CrossPlay> {
    let mut seeds = Prompts::load(&cfg.data, cfg.seed, cache, false)?.eval;
    if let Some(n) = max_seeds {
        seeds.truncate(n);
    }
    if seeds.is_empty() {
        return Err(Error::Data(
            "no held-out seeds to play on (data.eval_seeds is 0 in the run's config)".into(),
        ));
    }
    let attackers = pool(run, cfg, Role::Attacker)?;
    let n_pooled = attackers.len();
    let outside = outside_attackers(outside)?;
    let defenders = pool(run, cfg, Role::Defender)?;
    if attackers.len() + defenders.len() == 2 {
        return Err(Error::Data(format!(
            "the run has no snapshots yet (under {}/snapshots), so only the initial policies \
             would play: snapshots are saved every snapshot_every steps (0 turns them off)",
            run.path.display()
        )));
    }
    let device = cfg.models.device.open().map_err(|source| Error::Model {
        context: "models.device".into(),
        source,
    })?;
    let judge = build_judge(&cfg.judge, cache).map_err(Error::judge("the judge cannot load"))?;
    let params = |s: &SamplingParams| SamplingParams {
        n: 1,
        seed: SAMPLING_SEED,
        ..s.clone()
    };
    let (a_params, d_params) = (
        params(&cfg.attacker.rl.sampling),
        params(&cfg.defender.rl.sampling),
    );
    let instructions: Vec<String> = seeds
        .iter()
        .map(|s| cfg.attacker.template.replace("{seed}", s))
        .collect();
    let mut bases = BaseModels::new(device, cfg.models.dtype);
    let d_policies: Vec<ChatPolicy> = defenders
        .iter()
        .map(|(name, spec)| ChatPolicy::load(name, spec, &mut bases, cache))
        .collect::<Result<_>>()?;
    let total = (n_pooled + outside.len()) * (1 + defenders.len());
    let mut done = 0;
    let mut asr = Vec::with_capacity(total);
    for (name, spec) in attackers.iter().chain(&outside) {
        let attacker = ChatPolicy::load(name, spec, &mut bases, cache)?;
        let attacks = attacker.respond(&instructions, &a_params)?;
        done += 1;
        progress(done, total);
        let mut row = Vec::with_capacity(d_policies.len());
        for defender in &d_policies {
            let responses = defender.respond(&attacks, &d_params)?;
            let ps = p_unsafe(judge.as_ref(), &attacks, &responses)?;
            let t = judge.threshold();
            row.push(ps.iter().filter(|&&p| p >= t).count() as f64 / ps.len() as f64);
            done += 1;
            progress(done, total);
        }
        asr.push(row);
    }
    let names = |pool: &[(String, PolicySpec)]| pool.iter().map(|(n, _)| n.clone()).collect();
    let outside_rows = asr.split_off(n_pooled);
    let cp = CrossPlay::new(names(&attackers), names(&defenders), asr, seeds.len())?;
    Ok(cp.with_outside(names(&outside).into_iter().zip(outside_rows).collect())?)
}
