//! `gpo`: the command-line front end. It parses arguments, loads models and dispatches to
//! the libraries; everything testable lives in the `gpo-*` crates.

mod cli;
mod commands;
mod judge_heads;
mod model_args;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, told never to hand freed memory back to the OS (see [`init_allocator`]).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The log filter without `GPO_LOG`: a directive's target is a prefix, so `gpo` takes in
/// every `gpo_*` crate.
const DEFAULT_LOG: &str = "warn,gpo=info";

fn main() -> ExitCode {
    init_allocator();
    init_threads();
    let cli = cli::Cli::parse();
    // By default: warnings from everything, and gpo's own progress lines (fetching assets,
    // training judge heads, loading a run), which are info-level.
    let filter = tracing_subscriber::EnvFilter::try_from_env("GPO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    match run_on_pool(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`gpo ... | head`) is the reader's choice, not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, outermost first. Library errors often embed their
/// cause's text already (`{path}: {source}`); such a cause is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.last().is_some_and(|prev| prev.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " | ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// candle asks for the thread count on every matmul and, without `RAYON_NUM_THREADS`, reads
/// `/proc/cpuinfo` each time (measured: ~5% of decoding time). Fix the count once.
///
/// candle runs elementwise ops on a pool of its own, whose threads spin for 25,000 pauses
/// after each op before they sleep; between ops the products run on rayon's threads, so the
/// spinning takes their cores (measured: 15% of a LoRA training step's CPU time on 2 cores).
/// gpo's ops alternate between the two pools, so its threads sleep almost at once.
fn init_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: called first thing in main, before any other thread exists.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "100");
    }
}

/// Runs the command on a rayon worker thread rather than on `main`. Parallel products
/// called from outside the pool block the caller while the pool's threads work, and those
/// threads then spin between products: with `main` too, three busy threads shared the two
/// cores of the project's machine. On a worker, the command's own thread takes part in each
/// product. The workers get a large stack: autograd walks the graph recursively.
fn run_on_pool(command: cli::Command) -> anyhow::Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(64 << 20)
        .build()
    {
        Ok(pool) => pool.install(|| command.run()),
        Err(_) => command.run(),
    }
}

/// Training allocates and frees hundreds of MB of activations and gradients per step. With
/// the default allocators the freed pages go back to the kernel and every step faults them
/// in again, zero-filled (measured: 25-30% of a SmolLM2-135M training step in
/// `clear_page_erms`). Keeping freed memory in the process removes that cost; peak memory
/// is unchanged.
fn init_allocator() {
    /// `mi_option_purge_delay` in mimalloc's option enum; -1 = never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain FFI call with a valid option id, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
