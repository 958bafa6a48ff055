//! `gpo eval defender|attacker`: one policy on held-out prompts, rates with bootstrap 95%
//! intervals.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gpo_eval::Bootstrap;
use gpo_game::{
    evaluate_attacker, evaluate_defender, prompt_set, AttackSetup, BaseModels, ChatPolicy,
    Diversity, EvalContext, GameConfig, Judges, NamedPrompts, PolicySpec, Role, INITIAL,
};
use gpo_judge::{JudgeConfig, JudgeKind, JudgeTable};
use gpo_lm::{DeviceSpec, SamplingParams};

/// Most `--samples`: past a few dozen, the interval is all prompt-to-prompt spread and the
/// cost grows for nothing.
const MAX_SAMPLES: usize = 64;

/// Arguments of `gpo eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, clap::Subcommand)]
enum Which {
    /// A defender on harmful prompts (attack success rate, mean P(unsafe)) and benign ones
    /// (over-refusal, judged by the embedded judge's compliance head), with the responses'
    /// mean length in characters, distinct-2 (distinct / total word bigrams) and the rate of
    /// explicit refusals ("I can't ...", read without a judge).
    Defender(DefenderArgs),
    /// An attacker: its rewrites of held-out seeds, attack success against each target,
    /// and the diversity of the rewrites.
    Attacker(AttackerArgs),
}

#[derive(Debug, clap::Args)]
struct DefenderArgs {
    /// The defender: a model (alias, .gguf, HF directory), a PEFT adapter directory (on the
    /// base model it records), a run directory (its defender as of the last checkpoint) or
    /// server:MODEL@URL (an OpenAI-compatible server).
    #[arg(default_value = "smollm2-135m-instruct")]
    policy: String,
    /// Harmful prompts: harmbench (HarmBench's 200), do-not-answer, or a prompt file.
    #[arg(long, default_value = "harmbench")]
    prompts: String,
    /// Benign prompts for the over-refusal rate: sharegpt-heldout (200 ShareGPT first turns,
    /// held out of the seed-0 judge heads' training and of the defender's pool),
    /// alarming-benign (112 safe requests with alarming words), built-in-benign (16 everyday
    /// questions, for quick runs), sharegpt-train (the defender's training pool, not held
    /// out), contrast-train (the judge's benign contrast requests, a training pool too), or a
    /// prompt file (harmbench and do-not-answer are read too). Repeatable: one
    /// rate per set (`benign_sets`, in the order given); the top-level `over_refusal` is the
    /// first set's. --limit does not cut these sets.
    #[arg(
        long,
        value_name = "SET",
        default_values = ["sharegpt-heldout", "alarming-benign"]
    )]
    benign: Vec<String>,
    /// Also write every answer, one JSON line each (set, prompt, sample, response, and
    /// p_unsafe on harmful prompts or refused on benign ones), atomically: to read what a
    /// rate counted.
    #[arg(long, value_name = "FILE.jsonl")]
    responses: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct AttackerArgs {
    /// The attacker: a model, a PEFT adapter directory or a run directory (its attacker as
    /// of the last checkpoint; the run's template and sampling settings are used).
    #[arg(default_value = "smollm2-135m-instruct")]
    policy: String,
    /// Held-out seeds to rewrite: harmbench, do-not-answer, or a prompt file.
    #[arg(long, default_value = "harmbench")]
    seeds: String,
    /// A target defender, as for `gpo eval defender` (repeatable; default: for a run, its
    /// initial and latest defender; otherwise smollm2-135m-instruct).
    #[arg(long = "target", value_name = "POLICY")]
    targets: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The judge the rates are read with.
    #[arg(long, value_enum, default_value_t = JudgeKind::Embedded)]
    judge: JudgeKind,
    /// The lm-guard judge's model (default: smollm2-135m-instruct, a stand-in).
    #[arg(long, value_name = "MODEL")]
    judge_model: Option<String>,
    /// A second judge, different from the first (e.g. the one not trained against), whose
    /// rates are reported beside the first's to expose reward hacking.
    #[arg(long, value_enum)]
    second_judge: Option<JudgeKind>,
    /// The second lm-guard judge's model.
    #[arg(long, value_name = "MODEL")]
    second_judge_model: Option<String>,
    /// Where the embedded judge's heads are (default: the cache's judge-heads; trained there
    /// on first use).
    #[arg(long, value_name = "DIR")]
    heads_dir: Option<PathBuf>,
    /// Verdict threshold on P(unsafe), for both judges.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5)]
    threshold: f32,
    /// Evaluate on this many prompts, drawn without replacement with --seed (default: all).
    #[arg(long)]
    limit: Option<usize>,
    /// Seed of the prompt subset, the samples and the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Responses sampled per prompt (1 to 64), each from its own seed derived from --seed,
    /// the prompt and the sample. Intervals resample prompts with all their samples
    /// (cluster bootstrap), so more samples sharpen each prompt's rate, not the prompt count.
    #[arg(long, value_name = "N", default_value_t = 1)]
    samples: usize,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 2000)]
    resamples: usize,
    /// Most new tokens per response (default: the built-in preset's, or the run's).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Also write the report here as pretty JSON (atomically).
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
    /// Where the policies run: cpu, cuda or cuda:N (default: the run's models.device, else
    /// cpu). The embedded judge stays on the CPU.
    #[arg(long)]
    device: Option<DeviceSpec>,
    /// The policies' compute dtype: f32, bf16 or f16 (default: the run's models.dtype, else
    /// f32).
    #[arg(long)]
    dtype: Option<gpo_lm::Precision>,
    /// Settings of a server judge (--judge server or --second-judge server).
    #[command(flatten)]
    server: super::judge::ServerArgs,
}

impl Common {
    /// Checks what can be checked before any model loads, so a bad flag costs nothing.
    fn check(&self) -> Result<()> {
        if self.max_new_tokens == Some(0) {
            bail!("--max-new-tokens must be at least 1");
        }
        if !(1..=MAX_SAMPLES).contains(&self.samples) {
            bail!(
                "--samples must be between 1 and {MAX_SAMPLES}, got {}",
                self.samples
            );
        }
        if let Some(path) = &self.out {
            check_output("--out", path)?;
        }
        Ok(())
    }

    /// The policies' base models, on `--device` or else `cfg`'s, in `--dtype` or else `cfg`'s.
    fn bases(&self, cfg: &GameConfig) -> Result<BaseModels> {
        let spec = self.device.unwrap_or(cfg.models.device);
        let dtype = self.dtype.unwrap_or(cfg.models.dtype);
        Ok(BaseModels::new(spec.open().context("--device")?, dtype))
    }

    fn judges(&self, cache: &gpo_assets::AssetCache) -> Result<Judges> {
        // Each judge is checked as a config file's [judge] table would be.
        let cfg = |kind: JudgeKind, model: &Option<String>| -> Result<JudgeConfig> {
            // The --server-* options belong to whichever judge is the server one.
            let server = (kind == JudgeKind::Server).then_some(&self.server);
            let table = JudgeTable {
                kind,
                threshold: self.threshold,
                lm_guard_model: model.clone(),
                // An lm-guard judge runs where and as the policies do.
                lm_guard_device: self.device.filter(|_| kind == JudgeKind::LmGuard),
                lm_guard_dtype: self.dtype.filter(|_| kind == JudgeKind::LmGuard),
                server_url: server.and_then(|s| s.server_url.clone()),
                server_model: server.and_then(|s| s.server_model.clone()),
                server_prompt: server.and_then(|s| s.server_prompt),
                heads_dir: None,
            };
            Ok(JudgeConfig::try_from(table)?)
        };
        if self.server.any()
            && ![Some(self.judge), self.second_judge].contains(&Some(JudgeKind::Server))
        {
            bail!("--server-url, --server-model and --server-prompt need --judge server or --second-judge server");
        }
        let main = cfg(self.judge, &self.judge_model).context("--judge")?;
        let second = self
            .second_judge
            .map(|k| cfg(k, &self.second_judge_model).context("--second-judge"))
            .transpose()?;
        if self.second_judge.is_none() && self.second_judge_model.is_some() {
            bail!("--second-judge-model needs --second-judge lm-guard");
        }
        // Refusals are read with the embedded judge's heads: --heads-dir's, or the cache's own.
        if self.heads_dir.is_none() {
            crate::judge_heads::ensure_default_heads(cache)?;
        }
        Ok(Judges::load(
            &main,
            second.as_ref(),
            self.heads_dir.as_deref(),
            cache,
        )?)
    }

    fn bootstrap(&self) -> Result<Bootstrap> {
        if self.resamples == 0 {
            bail!("--resamples must be at least 1");
        }
        Ok(Bootstrap::default()
            .with_resamples(self.resamples)
            .with_seed(self.seed))
    }

    /// The set `name`, cut to --limit prompts drawn with --seed.
    fn prompts(
        &self,
        name: &str,
        what: &str,
        cache: &gpo_assets::AssetCache,
    ) -> Result<Vec<String>> {
        let set = prompt_set(name, cache).with_context(|| format!("reading {what}"))?;
        match self.limit {
            Some(0) => bail!("--limit must be at least 1"),
            Some(n) => Ok(gpo_game::subset(set, n, self.seed)),
            None => Ok(set),
        }
    }

    fn context<'a>(&self, judges: &'a Judges, boot: &'a Bootstrap) -> EvalContext<'a> {
        EvalContext {
            judges,
            samples: self.samples,
            boot,
        }
    }

    fn sampling(&self, base: &SamplingParams) -> SamplingParams {
        SamplingParams {
            n: 1,
            seed: self.seed,
            max_new_tokens: self.max_new_tokens.unwrap_or(base.max_new_tokens),
            ..base.clone()
        }
    }

    /// Prints the report, then writes it to --out: a failed write still leaves it on stdout.
    fn write(&self, value: &serde_json::Value) -> Result<()> {
        super::emit(value)?;
        if let Some(path) = &self.out {
            let mut text = serde_json::to_string_pretty(value)?;
            text.push('\n');
            gpo_eval::write_atomic(path, text.as_bytes())
                .with_context(|| format!("writing --out {}", path.display()))?;
        }
        Ok(())
    }
}

/// Checks that `path` (the value of `flag`) can be written: its directory exists and it is
/// not a directory itself.
fn check_output(flag: &str, path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "{flag} {}: the directory {} does not exist; create it first",
            path.display(),
            parent.display()
        );
    }
    if path.is_dir() {
        bail!("{flag} {} is a directory; name a file", path.display());
    }
    Ok(())
}

/// The game config of `policy` when it is a run directory, else the built-in preset's
/// (its template and sampling settings are the defaults).
fn config_of(policy: &str) -> Result<(GameConfig, bool)> {
    let run = Path::new(policy).join("config.toml");
    if run.is_file() {
        let (_, cfg) = gpo_game::RunDir::open(Path::new(policy))
            .with_context(|| format!("opening the run {policy}"))?;
        return Ok((cfg, true));
    }
    let cfg = gpo_game::parse_config(gpo_game::DEFAULT_PRESET, "built-in preset", &[])?;
    Ok((cfg, false))
}

/// `name`'s policy for `role`, shown as the snapshot it resolves to.
fn load_policy(
    name: &str,
    role: Role,
    bases: &mut BaseModels,
    cache: &gpo_assets::AssetCache,
) -> Result<ChatPolicy> {
    let spec = PolicySpec::parse(name, role)?;
    let shown = match &spec {
        PolicySpec::Model(m) => m.clone(),
        PolicySpec::Adapter { dir, .. } => dir.display().to_string(),
        PolicySpec::Served { .. } => name.to_string(),
    };
    ChatPolicy::load(&shown, &spec, bases, cache)
        .with_context(|| format!("loading the {} `{name}`", role.as_str()))
}

/// Runs `gpo eval`; prints the report as one JSON line.
pub fn run(args: EvalArgs) -> Result<()> {
    let cache = gpo_assets::AssetCache::from_env().context("locating the asset cache")?;
    match args.which {
        Which::Defender(a) => defender(a, &cache),
        Which::Attacker(a) => attacker(a, &cache),
    }
}

fn defender(a: DefenderArgs, cache: &gpo_assets::AssetCache) -> Result<()> {
    let c = &a.common;
    c.check()?;
    if let Some(path) = &a.responses {
        check_output("--responses", path)?;
        if c.out.as_deref() == Some(path.as_path()) {
            bail!("--responses and --out name the same file; name two");
        }
        // Each answer's line names its set: the names must tell the sets apart.
        let mut names: Vec<&str> = a.benign.iter().map(String::as_str).collect();
        names.push(gpo_game::HARMFUL_SET);
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!(
                "--responses: the set name `{}` is given twice (or is the harmful set's own), \
                 so its answers could not be told apart; give each --benign set once",
                w[0]
            );
        }
    }
    let (cfg, _) = config_of(&a.policy)?;
    let boot = c.bootstrap()?;
    let harmful = c.prompts(&a.prompts, "--prompts", cache)?;
    let benign = a
        .benign
        .iter()
        .map(|name| {
            let prompts = prompt_set(name, cache).context("reading --benign")?;
            let name = name.clone();
            Ok(NamedPrompts { name, prompts })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut bases = c.bases(&cfg)?;
    let policy = load_policy(&a.policy, Role::Defender, &mut bases, cache)?;
    let judges = c.judges(cache)?;
    eprintln!(
        "gpo eval: defender {} on {} harmful and {} benign prompts, {} sample(s) each",
        policy.name,
        harmful.len(),
        benign.iter().map(|s| s.prompts.len()).sum::<usize>(),
        c.samples
    );
    let params = c.sampling(&cfg.defender.rl.sampling);
    let ctx = c.context(&judges, &boot);
    let report = evaluate_defender(&policy, &harmful, &benign, &params, &ctx)?;
    if let Some(path) = &a.responses {
        let mut lines = String::new();
        for answer in &report.answers {
            lines.push_str(&serde_json::to_string(answer)?);
            lines.push('\n');
        }
        gpo_eval::write_atomic(path, lines.as_bytes())
            .with_context(|| format!("writing --responses {}", path.display()))?;
    }
    c.write(&serde_json::to_value(&report)?)
}

fn attacker(a: AttackerArgs, cache: &gpo_assets::AssetCache) -> Result<()> {
    let c = &a.common;
    c.check()?;
    let (cfg, is_run) = config_of(&a.policy)?;
    let boot = c.bootstrap()?;
    let seeds = c.prompts(&a.seeds, "--seeds", cache)?;
    let mut bases = c.bases(&cfg)?;
    let policy = load_policy(&a.policy, Role::Attacker, &mut bases, cache)?;
    let mut targets = Vec::new();
    if a.targets.is_empty() {
        if is_run {
            let initial = PolicySpec::of_model(&cfg.models.defender)?;
            targets.push(ChatPolicy::load(
                &format!("{INITIAL} ({})", cfg.models.defender),
                &initial,
                &mut bases,
                cache,
            )?);
            // A served defender is frozen: its initial policy is its latest.
            if !initial.is_served() {
                targets.push(load_policy(&a.policy, Role::Defender, &mut bases, cache)?);
            }
        } else {
            targets.push(load_policy(
                "smollm2-135m-instruct",
                Role::Defender,
                &mut bases,
                cache,
            )?);
        }
    }
    for t in &a.targets {
        targets.push(load_policy(t, Role::Defender, &mut bases, cache)?);
    }
    let judges = c.judges(cache)?;
    let diversity = Diversity::load(cache, 0)?;
    eprintln!(
        "gpo eval: attacker {} rewrites {} seeds against {} target(s)",
        policy.name,
        seeds.len(),
        targets.len()
    );
    let setup = AttackSetup {
        attacker: &policy,
        template: &cfg.attacker.template,
        attacker_params: c.sampling(&cfg.attacker.rl.sampling),
        targets: &targets,
        target_params: SamplingParams {
            seed: c.seed.wrapping_add(1),
            ..c.sampling(&cfg.defender.rl.sampling)
        },
    };
    let ctx = c.context(&judges, &boot);
    let report = evaluate_attacker(&setup, &seeds, &diversity, &ctx)?;
    c.write(&serde_json::to_value(&report)?)
}
