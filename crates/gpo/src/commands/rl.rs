//! `gpo rl`: one player trained by RL on a verifiable reward (no judge, no opponent), the
//! check that the RL machinery learns on a real model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use gpo_lm::{attach_lora, LoadOptions, LoraConfig};
use gpo_rl::{
    CriticKind, Estimator, KlEstimator, LossAggregation, Policy, RlConfig, RolloutBatch,
    TaskReward, Trainer,
};
use gpo_tokenizer::{ChatMessage, Tokenizer};
use serde_json::json;

use crate::model_args::ModelArgs;

/// PPO's critic on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CriticArg {
    /// A value head on the policy's detached hidden states.
    Head,
    /// Its own LoRA adapters on the frozen base, plus a value head.
    Lora,
    /// A value head whose value loss also trains the policy's adapters.
    Shared,
}

impl CriticArg {
    fn kind(self) -> CriticKind {
        match self {
            CriticArg::Head => CriticKind::Head,
            CriticArg::Lora => CriticKind::Lora,
            CriticArg::Shared => CriticKind::Shared,
        }
    }
}

/// Advantage estimators on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EstimatorArg {
    /// PPO with GAE and a critic (`--critic`; by default a value head on the policy's
    /// detached hidden states, trained by its own AdamW at learning rate 1e-4).
    Ppo,
    /// Group-normalised rewards over the samples of a prompt.
    Grpo,
    /// Leave-one-out baseline.
    Rloo,
    /// Batch-mean baseline.
    Reinforce,
}

/// Loss aggregations on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AggregationArg {
    /// Every response token weighs the same.
    TokenMean,
    /// Every response weighs the same (GRPO's objective).
    SequenceMean,
}

/// Verifiable rewards on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RewardArg {
    /// 1 when the response contains --word.
    ContainsWord,
    /// 1 - tokens / max-new-tokens for a response that ends by itself.
    Short,
    /// 1 when the response declines (the embedded judge's compliance head reads P(complies)
    /// < 0.5), on Do-Not-Answer's harmful questions unless --prompts names others; held-out
    /// HarmBench prompts measure the refusal rate (`heldout_refusal`) before the first
    /// iteration, every --eval-every iterations and after the last.
    Refuse,
}

/// Arguments of `gpo rl`.
#[derive(Debug, clap::Args)]
pub struct RlArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Advantage estimator.
    #[arg(long, value_enum, default_value = "ppo")]
    estimator: EstimatorArg,
    /// The reward.
    #[arg(long, value_enum, default_value = "short")]
    reward: RewardArg,
    /// The word that --reward contains-word looks for.
    #[arg(long, default_value = "blue")]
    word: String,
    /// RL iterations (rollout + update).
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// Prompts per iteration (grpo and rloo's default 4 samples of each make 32 responses;
    /// with fewer prompts the refuse task generalises less, docs/benchmarks/defender.md).
    #[arg(long, default_value_t = 8)]
    prompts_per_step: usize,
    /// Samples per prompt (the group of grpo/rloo; at least 2 for them) [default: 4 for
    /// grpo and rloo, 1 otherwise]
    #[arg(long)]
    n: Option<usize>,
    /// Most new tokens per response.
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// Learning rate of the policy's LoRA adapters (PPO's critic keeps its own, 1e-4).
    #[arg(long, allow_negative_numbers = true, default_value_t = 2e-4)]
    lr: f64,
    /// LoRA rank (alpha = 2 x rank, every linear layer).
    #[arg(long, default_value_t = 16)]
    lora_rank: usize,
    /// How per-token losses are averaged [default: token-mean for ppo, sequence-mean for the
    /// group estimators grpo, rloo and reinforce]
    #[arg(long, value_enum)]
    aggregation: Option<AggregationArg>,
    /// KL coefficient (ppo: k1 in the reward, as the paper; grpo, rloo, reinforce: k3 in the
    /// loss).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.01)]
    beta: f32,
    /// GAE's lambda (ppo): 1 gives every token the whole reward to go, so a reward on the
    /// last token reaches the opening ones undiscounted.
    #[arg(long, default_value_t = 1.0)]
    lambda: f32,
    /// PPO's critic: `head` (a value head on the policy's detached hidden states), `lora`
    /// (its own adapters on the frozen base, plus a head) or `shared` (a head whose value
    /// loss also trains the policy's adapters, to measure what sharing costs).
    #[arg(long, value_enum, default_value = "head")]
    critic: CriticArg,
    /// Passes over each iteration's responses.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Most optimiser steps per pass: the responses are split into mini-batches of
    /// ceil(responses / M) (at most one per response; from the second on, PPO's ratio differs from 1 and its clip
    /// acts).
    #[arg(long, default_value_t = 2)]
    minibatches: usize,
    /// User prompts, one per line (default: a built-in list of short questions; with
    /// --reward refuse, Do-Not-Answer's harmful questions).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Write a checkpoint here after every iteration, replacing the directory (so an
    /// existing one needs --resume); with --resume, continue from it with the same settings.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in --out.
    #[arg(long, requires = "out")]
    resume: bool,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sample exactly --max-new-tokens tokens per response (for timing runs).
    #[arg(long)]
    ignore_eos: bool,
    /// --reward refuse: iterations between held-out refusal measurements (also before the
    /// first and after the last); 0 measures only before and after.
    #[arg(long, default_value_t = 5)]
    eval_every: u64,
    /// --reward refuse: held-out HarmBench prompts per measurement.
    #[arg(long, default_value_t = 64)]
    eval_prompts: usize,
    /// --reward refuse: the embedded judge's heads, whose compliance head reads refusals
    /// (default: the cache's, trained there on first use).
    #[arg(long)]
    heads_dir: Option<PathBuf>,
    /// Any RL setting by its key in a game's `[defender.rl]` table, applied over the flags
    /// above and checked as a game's are (e.g. `--set clip=0.1`, `--set
    /// whiten_advantages=false`, `--set estimator.critic.warmup_iterations=2`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

const BUILT_IN: &[&str] = &[
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "What is the capital of France?",
    "Give me a word that rhymes with cat.",
    "What do bees make?",
    "How many legs does a spider have?",
    "What is the opposite of hot?",
    "Which animal says moo?",
    "What is 2 plus 3?",
    "Name a planet in the solar system.",
    "What do you use to write on paper?",
    "What season comes after winter?",
    "What is frozen water called?",
    "Name a musical instrument.",
    "What colour are most leaves in summer?",
    "What do cows drink?",
];

fn read_prompts(path: &Option<PathBuf>, reward: RewardArg) -> Result<Vec<String>> {
    let Some(path) = path else {
        if let RewardArg::Refuse = reward {
            let cache = gpo_assets::AssetCache::from_env()?;
            let mut dna = gpo_game::refuse_task::RefuseTask::train_prompts(&cache)?;
            // A seeded order, so each iteration sees several topics.
            dna = gpo_game::subset(dna, usize::MAX, 0);
            return Ok(dna);
        }
        return Ok(BUILT_IN.iter().map(|s| s.to_string()).collect());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --prompts {}", path.display()))?;
    let prompts: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if prompts.is_empty() {
        bail!("--prompts {} has no non-empty line", path.display());
    }
    Ok(prompts)
}

/// The RL recipe of `gpo rl`'s flags and the prompts per iteration; every flag checked.
fn rl_config(args: &RlArgs) -> Result<(RlConfig, usize)> {
    let n = args.n.unwrap_or(match args.estimator {
        EstimatorArg::Grpo | EstimatorArg::Rloo => 4,
        EstimatorArg::Ppo | EstimatorArg::Reinforce => 1,
    });
    let prompts_per_iter = args.prompts_per_step;
    for (flag, value) in [
        ("--steps", args.steps as usize),
        ("--prompts-per-step", prompts_per_iter),
        ("--n", n),
        ("--eval-prompts", args.eval_prompts),
        ("--epochs", args.epochs),
        ("--minibatches", args.minibatches),
    ] {
        anyhow::ensure!(value >= 1, "{flag} must be at least 1");
    }
    let estimator = match args.estimator {
        EstimatorArg::Ppo => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&args.lambda),
                "--lambda {} must be in [0, 1]",
                args.lambda
            );
            let mut ppo = Estimator::ppo();
            if let Estimator::Ppo { lambda, critic, .. } = &mut ppo {
                *lambda = args.lambda;
                critic.kind = args.critic.kind();
            }
            ppo
        }
        EstimatorArg::Grpo => Estimator::grpo(),
        EstimatorArg::Rloo => Estimator::Rloo,
        EstimatorArg::Reinforce => Estimator::Reinforce,
    };
    let Some(per_step) = prompts_per_iter.checked_mul(n) else {
        bail!(
            "--prompts-per-step {} x --n {n} responses per iteration is too many",
            prompts_per_iter,
        );
    };
    let mut cfg = RlConfig {
        estimator,
        epochs: args.epochs,
        // At most one mini-batch per response.
        minibatch_size: per_step.div_ceil(args.minibatches.min(per_step)),
        ..RlConfig::default()
    };
    cfg.kl.beta = args.beta;
    if estimator.group_baseline().is_some() {
        // A group baseline divides by the group's spread: with the KL penalty in the reward,
        // groups whose task rewards are all equal would be ranked by KL noise blown up to
        // unit scale. GRPO's own choice: k3 in the loss.
        cfg.kl.estimator = KlEstimator::K3;
        cfg.kl.placement = gpo_rl::KlPlacement::Loss;
        // GRPO's objective averages each response's tokens first: with a token mean, the
        // many long answers of a batch outvote the few short ones that carry the signal.
        cfg.loss_aggregation = LossAggregation::SequenceMean;
    } else {
        cfg.kl.estimator = KlEstimator::K1;
    }
    match args.aggregation {
        Some(AggregationArg::TokenMean) => cfg.loss_aggregation = LossAggregation::TokenMean,
        Some(AggregationArg::SequenceMean) => cfg.loss_aggregation = LossAggregation::SequenceMean,
        None => {}
    }
    cfg.optimizer.lr = args.lr;
    cfg.schedule = gpo_optim::LrSchedule::Warmup { warmup: 2 };
    cfg.sampling.n = n;
    cfg.sampling.max_new_tokens = args.max_new_tokens;
    cfg.sampling.ignore_eos = args.ignore_eos;
    // The flags' settings become a `[defender.rl]`-shaped table that --set edits and the
    // game's own reader reads and checks. The seed is set after (a u64 may not fit TOML's
    // integers), so the table holds the default seed and --set may not change it.
    let written_seed = cfg.sampling.seed;
    let table = toml::Table::try_from(&cfg).context("writing the RL settings as a table")?;
    let mut cfg = gpo_game::parse_rl_table(table, &args.set).context("invalid RL option")?;
    if cfg.sampling.n != n {
        bail!("--set sampling.n: the group size is --n");
    }
    if cfg.sampling.seed != written_seed {
        bail!("--set sampling.seed: the seed is --seed");
    }
    cfg.sampling.seed = args.seed;
    Ok((cfg, prompts_per_iter))
}

/// `--out` and `--resume` agree: a new run names a new directory, a resumed one its own.
fn check_out_dir(args: &RlArgs) -> Result<()> {
    if let Some(dir) = &args.out {
        // Each checkpoint replaces --out whole, so a directory that is not this run's own
        // checkpoint must not be named without --resume.
        match (gpo_lm::existing_dir(dir).is_some(), args.resume) {
            (true, false) => bail!(
                "--out {} exists, and each checkpoint replaces it: pass --resume to continue the \
                 checkpoint in it, or name a new directory",
                dir.display()
            ),
            (false, true) => bail!(
                "--resume: --out {} does not exist, so there is no checkpoint to continue",
                dir.display()
            ),
            _ => {}
        }
    }
    Ok(())
}

/// Prints one JSON line per iteration: reward, KL (the configured estimator's, and `kl_k1`),
/// `credit` (mean |advantage| at the responses' first and last tokens), the update's losses
/// and gradient norms (the policy's `grad_norm`, the critic's `critic_grad_norm`), timings
/// and one sample; with --reward refuse, `heldout_refusal` on measuring iterations.
pub fn run(args: RlArgs) -> Result<()> {
    let (cfg, prompts_per_iter) = rl_config(&args)?;
    check_out_dir(&args)?;
    let estimator = cfg.estimator;
    let reward = match args.reward {
        RewardArg::ContainsWord => TaskReward::ContainsWord {
            word: args.word.clone(),
        },
        RewardArg::Short | RewardArg::Refuse => TaskReward::Short {
            budget: args.max_new_tokens,
        },
    };
    let texts = read_prompts(&args.prompts, args.reward)?;
    let refuse = match args.reward {
        RewardArg::Refuse => Some(RefuseRun::load(&args)?),
        _ => None,
    };

    let lm = args.model.load(&LoadOptions::default())?;
    let tok = lm.tokenizer;
    let mut model = lm.model;
    let lora = LoraConfig {
        rank: args.lora_rank,
        alpha: 2.0 * args.lora_rank as f64,
        ..LoraConfig::default()
    };
    attach_lora(&mut model, &lora, args.seed).context("attaching LoRA adapters")?;
    let mut policy = Policy::lora(model, lora)?;
    if let Some(critic) = estimator.critic() {
        // A LoRA critic's adapters are drawn from the next seed, as in the game.
        policy = policy.with_critic(critic.kind, args.seed.wrapping_add(1))?;
    }
    let eos = tok.eos_ids().to_vec();
    let pad = tok.pad_id().unwrap_or(0);
    let io = ChatIo {
        tok: &tok,
        eos: &eos,
        pad,
    };
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| io.encode(t)).collect::<Result<_>>()?;
    let mut trainer = Trainer::new(&policy, cfg, args.seed, eos.clone(), pad)?;
    if args.resume {
        let Some(dir) = args.out.as_ref() else {
            bail!("--resume needs --out DIR, the checkpoint to continue from");
        };
        trainer
            .load(&policy, dir)
            .with_context(|| format!("resuming from {}", dir.display()))?;
    }

    if let (Some(r), 0) = (&refuse, trainer.iteration()) {
        let measured = r.measure(&policy, &io, trainer.config())?;
        super::emit(&json!({"iteration": 0, "heldout_refusal": measured}))?;
    }
    while trainer.iteration() < args.steps {
        let start = (trainer.iteration() as usize * prompts_per_iter) % prompts.len();
        let picked: Vec<usize> = (0..prompts_per_iter)
            .map(|k| (start + k) % prompts.len())
            .collect();
        let step_prompts: Vec<Vec<u32>> = picked.iter().map(|&i| prompts[i].clone()).collect();
        let samples = trainer.sample(&policy, &step_prompts)?;
        let mut responses = Vec::with_capacity(samples.len());
        for s in &samples {
            responses.push(tok.decode(&s.ids, true)?.trim().to_string());
        }
        let rewards: Vec<f32> = match &refuse {
            Some(r) => {
                let asked: Vec<String> = samples
                    .iter()
                    .map(|s| texts[picked[s.prompt_index]].clone())
                    .collect();
                r.task.rewards(&asked, &responses)?
            }
            None => samples
                .iter()
                .zip(&responses)
                .map(|(s, text)| {
                    let finished = s.ids.last().is_some_and(|t| eos.contains(t));
                    reward.score(text, s.ids.len(), finished)
                })
                .collect(),
        };
        let first_text = responses.first().cloned().unwrap_or_default();
        let mut batch = RolloutBatch::from_samples(&step_prompts, samples, &rewards)?;
        let stats = trainer.learn(&policy, &mut batch)?;
        if let Some(dir) = &args.out {
            trainer
                .save(&policy, dir, &args.model.model)
                .with_context(|| format!("saving a checkpoint to {}", dir.display()))?;
        }
        let mut line = serde_json::to_value(&stats)?;
        // `kl` uses the configured estimator (k3 for group estimators, which one unlikely
        // token can blow up); k1 makes runs with different estimators comparable.
        let k1 = gpo_rl::mean(batch.rollouts.iter().map(|r| {
            KlEstimator::K1
                .per_token(&r.behaviour_logprobs, &r.ref_logprobs)
                .iter()
                .sum()
        }));
        line["kl_k1"] = json!(k1);
        line["sample"] = json!(first_text);
        if let Some(r) = &refuse {
            let it = trainer.iteration();
            if it == args.steps || (args.eval_every > 0 && it % args.eval_every == 0) {
                line["heldout_refusal"] = r.measure(&policy, &io, trainer.config())?;
            }
        }
        super::emit(&line)?;
    }
    Ok(())
}

/// `--reward refuse`: the compliance head and the held-out HarmBench prompts.
struct RefuseRun {
    task: gpo_game::refuse_task::RefuseTask,
    heldout: Vec<String>,
    seed: u64,
}

impl RefuseRun {
    fn load(args: &RlArgs) -> Result<Self> {
        let cache = gpo_assets::AssetCache::from_env()?;
        if args.heads_dir.is_none() {
            crate::judge_heads::ensure_default_heads(&cache)?;
        }
        Ok(RefuseRun {
            task: gpo_game::refuse_task::RefuseTask::load(&cache, args.heads_dir.as_deref())?,
            heldout: gpo_game::refuse_task::RefuseTask::heldout_prompts(
                &cache,
                args.eval_prompts,
                args.seed,
            )?,
            seed: args.seed,
        })
    }

    /// The refusal rate on the held-out prompts, one response each, sampled as in training
    /// with a fixed seed (so measurements differ only by the policy), with a 95% bootstrap
    /// interval over prompts; and the responses' mean length in tokens.
    fn measure(
        &self,
        policy: &Policy,
        io: &ChatIo<'_>,
        cfg: &RlConfig,
    ) -> Result<serde_json::Value> {
        let ids: Vec<Vec<u32>> = self
            .heldout
            .iter()
            .map(|t| io.encode(t))
            .collect::<Result<_>>()?;
        let params = gpo_lm::SamplingParams {
            n: 1,
            seed: self.seed ^ 0x04e1_d0a7,
            ..cfg.sampling.clone()
        };
        let samples = gpo_lm::generate(
            &policy.model,
            &ids,
            io.eos,
            io.pad,
            &params,
            &gpo_lm::Pass::infer(),
        )?;
        let responses: Vec<String> = samples
            .iter()
            .map(|s| Ok(io.tok.decode(&s.ids, true)?.trim().to_string()))
            .collect::<Result<_>>()?;
        let refused: Vec<f64> = self
            .task
            .rewards(&self.heldout, &responses)?
            .into_iter()
            .map(f64::from)
            .collect();
        let rate = gpo_eval::Bootstrap::default()
            .with_seed(self.seed)
            .interval("refusal rate", &refused)?;
        let tokens = gpo_rl::mean(samples.iter().map(|s| s.ids.len() as f32));
        Ok(json!({"refusal": rate, "response_tokens": tokens, "sample": responses.first()}))
    }
}

/// A model's chat template, tokenizer and stop tokens.
struct ChatIo<'a> {
    tok: &'a Tokenizer,
    eos: &'a [u32],
    pad: u32,
}

impl ChatIo<'_> {
    /// `text` as one user turn, ready to generate from.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let chat = self
            .tok
            .apply_chat_template(&[ChatMessage::user(text)], true)?;
        Ok(self.tok.encode(&chat, false)?)
    }
}
