//! `gpo bench --rl`: one GRPO iteration at the shape of `shared/bench/trl_grpo_baseline.py`
//! (4 prompts x 4 samples, exactly 48 new tokens, LoRA r16 alpha 32 on every linear layer,
//! k3 KL at beta 0.01 in the loss, one optimiser step per batch), run by `gpo rl` in a child
//! process and timed per phase.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use gpo_bench::median;
use serde_json::{json, Value};

/// `gpo rl`'s flags for TRL's GRPOTrainer shape (TRL's defaults otherwise: lr 2e-4 as the
/// baseline sets it, one pass of one mini-batch).
pub(crate) const TRL_SHAPE: &[&str] = &[
    "rl",
    "--estimator",
    "grpo",
    "--prompts-per-step",
    "4",
    "--n",
    "4",
    "--max-new-tokens",
    "48",
    "--ignore-eos",
    "--lora-rank",
    "16",
    "--beta",
    "0.01",
    "--lr",
    "2e-4",
    "--epochs",
    "1",
    "--minibatches",
    "1",
];

/// The phases `gpo rl` reports per iteration, in order.
const PHASES: [&str; 3] = ["rollout_s", "prepare_s", "update_s"];

/// Runs `reps + 1` iterations on `model` and reports the median of each phase and of the
/// whole iteration over all but the first (the warm-up, as the baseline's median skips it).
pub fn run(model: &str, reps: usize) -> Result<Value> {
    let exe = std::env::current_exe().context("locating the gpo binary")?;
    let steps = (reps + 1).to_string();
    // Its stderr (progress, errors) goes straight to the user's.
    let out = Command::new(exe)
        .args(TRL_SHAPE)
        .args(["--steps", &steps, "--model", model])
        .stderr(Stdio::inherit())
        .output()
        .context("running gpo rl")?;
    if !out.status.success() {
        bail!("gpo rl failed (its error is above)");
    }
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()
        .context("reading gpo rl's output")?;
    let times: Vec<&Value> = lines.iter().filter_map(|l| l.get("times")).collect();
    if times.len() != reps + 1 {
        bail!(
            "gpo rl reported {} iterations, expected {steps}",
            times.len()
        );
    }
    // Per phase, its seconds in each iteration after the first.
    let mut by_phase = Vec::with_capacity(PHASES.len());
    for name in PHASES {
        let secs = times[1..]
            .iter()
            .map(|t| t[name].as_f64())
            .collect::<Option<Vec<f64>>>()
            .with_context(|| format!("gpo rl's `times` lack a number `{name}`"))?;
        by_phase.push(secs);
    }
    let totals: Vec<f64> = (0..reps)
        .map(|i| by_phase.iter().map(|secs| secs[i]).sum())
        .collect();
    let mut phases = serde_json::Map::new();
    for (name, secs) in PHASES.iter().zip(by_phase) {
        phases.insert((*name).into(), json!(median(secs)));
    }
    Ok(json!({
        "rl_shape": "grpo, 4 prompts x 4 samples, 48 tokens, LoRA r16, beta 0.01, 1 optimiser step",
        "rl_iteration_s_median": median(totals.clone()),
        "rl_iterations_s": totals,
        "rl_phases_s_median": phases,
    }))
}
