//! `gpo matrix-game`: the paper's theoretical algorithm on a finite game, with Nash gaps.

use std::path::PathBuf;

use anyhow::{Context, Result};
use gpo_nash::{Game, Measure, Mwu, UpdateOrder, Variant};
use serde_json::json;

use super::emit;

/// Update orders on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UpdateArg {
    /// Both players update against the other's current strategy.
    Simultaneous,
    /// Defender first, then the attacker against the defender's new strategy (the paper).
    Alternating,
}

/// Game variants on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum VariantArg {
    /// FILE is {"payoff": [[...]]}: rows = defender actions (maximising), columns = attacker
    /// actions (minimising), entries = the defender's payoff.
    Matrix,
    /// FILE is {"reward": [[...]]}: rows = the attacker's prompts, columns = the defender's
    /// responses (one policy per prompt), entries = the defender's reward.
    PromptResponse,
}

/// Arguments of `gpo matrix-game`.
#[derive(Debug, clap::Args)]
pub struct MatrixGameArgs {
    /// The game file (JSON; shape set by --variant).
    #[arg(long, value_name = "FILE")]
    payoff: PathBuf,
    /// Rounds T.
    #[arg(long, default_value_t = 1000)]
    iters: u64,
    /// Step size eta = 1 / beta (default: sqrt(8 ln N / T) / R, N = most actions of a player,
    /// R = payoff range: the minimiser of the Hedge regret bound).
    #[arg(long, allow_negative_numbers = true)]
    eta: Option<f64>,
    /// The attacker's entropy-bonus coefficient H (0 = the unregularised game).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    entropy: f64,
    /// Update order.
    #[arg(long, value_enum, default_value = "alternating")]
    update: UpdateArg,
    /// Game variant.
    #[arg(long, value_enum, default_value = "matrix")]
    variant: VariantArg,
    /// Print a progress line every K rounds.
    #[arg(long, value_name = "K")]
    trace: Option<u64>,
}

/// Runs `gpo matrix-game`.
pub fn run(args: MatrixGameArgs) -> Result<()> {
    let variant = match args.variant {
        VariantArg::Matrix => Variant::Matrix,
        VariantArg::PromptResponse => Variant::PromptResponse,
    };
    let order = match args.update {
        UpdateArg::Simultaneous => UpdateOrder::Simultaneous,
        UpdateArg::Alternating => UpdateOrder::Alternating,
    };
    let path = &args.payoff;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let game = Game::from_json(variant, &text).with_context(|| format!("{}", path.display()))?;
    let mut builder = Mwu::builder(args.iters)
        .with_order(order)
        .with_entropy(args.entropy);
    if let Some(eta) = args.eta {
        builder = builder.with_eta(eta);
    }
    if let Some(k) = args.trace {
        builder = builder.with_trace(k);
    }
    let mwu = builder.build()?;
    let regularised = args.entropy > 0.0;
    let mut trace_error = None;
    let out = mwu.run(&game, |m| {
        if trace_error.is_none() {
            let mut line = json!({
                "iter": m.iter,
                "nash_gap_avg": m.nash_gap_avg,
                "nash_gap_last": m.nash_gap_last,
                "value_estimate": m.value_estimate,
            });
            add_regularised(&mut line, m, regularised);
            trace_error = emit(&line).err();
        }
    })?;
    if let Some(e) = trace_error {
        return Err(e);
    }
    let mut summary = json!({
        "iters": out.end.iter,
        "value_estimate": out.end.value_estimate,
        "nash_gap_avg": out.end.nash_gap_avg,
        "nash_gap_last": out.end.nash_gap_last,
        "defender_avg": out.defender_avg,
        "attacker_avg": out.attacker_avg,
        "defender_last": out.defender_last,
        "attacker_last": out.attacker_last,
        "eta": out.eta,
    });
    add_regularised(&mut summary, &out.end, regularised);
    emit(&summary)
}

/// With an entropy bonus, also report the gaps of the regularised game.
fn add_regularised(line: &mut serde_json::Value, m: &Measure, regularised: bool) {
    if regularised {
        line["regularized_gap_avg"] = json!(m.regularized_gap_avg);
        line["regularized_gap_last"] = json!(m.regularized_gap_last);
    }
}
