//! `gpo bench`.

use anyhow::Result;
use gpo_bench::{bench_sampling, bench_train_step, matmul_params, Achieved, Machine};
use gpo_lm::{attach_lora, LoadOptions, LoraConfig, Trainable};
use serde_json::json;

use crate::model_args::ModelArgs;

/// Arguments of `gpo bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Timed repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Skip the training-step measurements.
    #[arg(long)]
    no_train: bool,
    /// Measure the attacker's diversity penalty instead: --diversity-batch synthetic prompts
    /// scored against a history of --diversity-history prompts, and embedding them with
    /// all-MiniLM-L6-v2 on the CPU (no language model is loaded, so the model flags and
    /// --no-train are refused with it).
    #[arg(long, conflicts_with_all = ["model", "device", "dtype", "no_train"])]
    diversity: bool,
    /// Time one GRPO iteration instead, at the shape of shared/bench/trl_grpo_baseline.py
    /// (`gpo rl --estimator grpo --prompts-per-step 4 --n 4 --max-new-tokens 48 --ignore-eos
    /// --lora-rank 16 --beta 0.01 --lr 2e-4 --epochs 1 --minibatches 1`): the median of --reps
    /// iterations after a warm-up one, per phase (the iteration is the sum of rollout,
    /// prepare and update; the reward, a string length, is not timed).
    #[arg(long, conflicts_with_all = ["diversity", "device", "dtype", "no_train"])]
    rl: bool,
    /// History size for --diversity.
    #[arg(long, default_value_t = 10_000)]
    diversity_history: usize,
    /// New prompts per batch for --diversity.
    #[arg(long, default_value_t = 64)]
    diversity_batch: usize,
}

/// `gpo bench --diversity`: one JSON line (or a text line) with the timings.
fn run_diversity(args: &BenchArgs) -> Result<()> {
    use anyhow::Context;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    let dir = gpo_assets::AssetCache::from_env()
        .and_then(|c| c.fetch(gpo_assets::Asset::AllMiniLmL6V2))
        .context("fetching all-minilm-l6-v2")?;
    let embedder = gpo_embed::SentenceEmbedder::load(&dir, &candle_core::Device::Cpu)
        .with_context(|| format!("loading {}", dir.display()))?;
    eprintln!("gpo bench: diversity...");
    let b = gpo_bench::bench_diversity(
        args.diversity_history,
        args.diversity_batch,
        embedder.dim(),
        Some(&embedder),
        args.reps,
    )?;
    if args.json {
        let mut v = serde_json::to_value(&b)?;
        v["threads"] = json!(threads);
        return super::emit(&v);
    }
    println!(
        "diversity  {} new prompts vs {} history: score {:.3} s, embed {:.3} s (history built in {:.2} s)",
        b.batch,
        b.history,
        b.score_s,
        b.embed_s.unwrap_or(f64::NAN),
        b.build_s
    );
    Ok(())
}

/// `gpo bench --rl`: the GRPO iteration of [`super::bench_rl`], with the machine.
fn run_rl(args: &BenchArgs, machine: &Machine, threads: &str) -> Result<()> {
    eprintln!("gpo bench: {} GRPO iterations...", args.reps + 1);
    let mut report = super::bench_rl::run(&args.model.model, args.reps)?;
    report["machine"] = serde_json::to_value(machine)?;
    report["threads"] = json!(threads);
    if args.json {
        return super::emit(&report);
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Measures sampling (batch 8, 64 new tokens) and training steps (8 x 128 tokens, full and
/// LoRA r=16 on all linear layers), set up as shared/bench/pytorch_baseline.py.
pub fn run(args: BenchArgs) -> Result<()> {
    for (flag, value) in [
        ("--reps", args.reps),
        ("--diversity-batch", args.diversity_batch),
        ("--diversity-history", args.diversity_history),
    ] {
        anyhow::ensure!(value >= 1, "{flag} must be at least 1");
    }
    if args.diversity {
        return run_diversity(&args);
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    eprintln!("gpo bench: the machine (CPU, kernels, read bandwidth)...");
    let machine = Machine::describe();
    if args.rl {
        return run_rl(&args, &machine, &threads);
    }
    let lm = args.model.load(&LoadOptions::default())?;
    let matmul = matmul_params(lm.model.config());
    eprintln!("gpo bench: sampling...");
    let gen = bench_sampling(&lm.model, &lm.tokenizer, 64, args.reps)?;
    let (mut full, mut lora) = (None, None);
    if !args.no_train {
        eprintln!("gpo bench: full fine-tuning step...");
        let trainable = args.model.load(&LoadOptions {
            trainable: Trainable::Full,
            ..LoadOptions::default()
        })?;
        full = Some(bench_train_step(&trainable.model, 8, 128, args.reps, 0)?);
        drop(trainable);
        eprintln!("gpo bench: LoRA step...");
        let mut model = lm.model;
        attach_lora(&mut model, &LoraConfig::default(), 0)?;
        lora = Some(bench_train_step(&model, 8, 128, args.reps, 0)?);
    }
    let weight_bytes = args.model.dtype.dtype().size_in_bytes();
    let achieved = Achieved::of(matmul, weight_bytes, &gen, full.as_ref(), lora.as_ref());
    let report = json!({
        "model": args.model.model,
        "threads": threads,
        "gen_batch": gen.batch,
        "gen_new_tokens": gen.new_tokens,
        "gen_s_median": gen.seconds,
        "gen_tokens_per_s": gen.tokens_per_s,
        "train_tokens": full.as_ref().map(|f| f.batch * f.seq_len),
        "train_step_s": full.as_ref().map(|f| f.step_s),
        "train_phases_s": full.as_ref().map(|f| json!({"forward": f.forward_s, "backward": f.backward_s, "optimizer": f.optimizer_s})),
        "lora_step_s": lora.as_ref().map(|f| f.step_s),
        "lora_phases_s": lora.as_ref().map(|f| json!({"forward": f.forward_s, "backward": f.backward_s, "optimizer": f.optimizer_s})),
        "lora_trainable_params": lora.as_ref().map(|f| f.trainable_params),
        // The host CPU; with --device cuda the rates are the GPU's, which `machine` does not
        // describe.
        "machine": machine,
        "achieved": achieved,
    });
    if args.json {
        return super::emit(&report);
    }
    println!(
        "machine    {} ({} threads): gemm {}, decoding {}, bf16 {}; FMA peak ~{} GFLOP/s, memory read {:.1} GB/s",
        machine.cpu_model,
        machine.threads,
        machine.gemm_path,
        machine.decode_path,
        machine.bf16_path,
        machine
            .fma_peak_gflops
            .map_or("?".to_string(), |g| format!("{g:.0}")),
        machine.read_gbs
    );
    println!(
        "sampling   batch {} x {} new tokens: {:.1} tokens/s ({:.2} s; weights streamed at {:.1} GB/s)",
        gen.batch,
        gen.new_tokens,
        gen.tokens_per_s,
        gen.seconds,
        achieved.decode_weight_gbs
    );
    for (name, b, gflops) in [
        ("full step", &full, achieved.train_step_gflops),
        ("LoRA step", &lora, achieved.lora_step_gflops),
    ] {
        if let (Some(b), Some(gflops)) = (b, gflops) {
            println!("{name}  {} x {} tokens: {:.2} s (forward {:.2}, backward {:.2}, optimizer {:.2}; {} trainable; {gflops:.0} GFLOP/s)", b.batch, b.seq_len, b.step_s, b.forward_s, b.backward_s, b.optimizer_s, b.trainable_params);
        }
    }
    Ok(())
}
