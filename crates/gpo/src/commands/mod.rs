//! One module per subcommand.

pub mod assets;
pub mod bench;
pub mod bench_rl;
pub mod crossplay;
pub mod diversity;
pub mod embed;
pub mod eval;
pub mod exploit;
pub mod generate;
pub mod judge;
pub mod logprobs;
pub mod matrix_game;
mod play;
pub mod report;
pub mod rl;
pub mod serve;
pub mod sft;
pub mod tokenize;
pub mod train;

use anyhow::Result;

/// A fresh run directory's default name: `runs/KIND-SEED-UNIXTIME`.
pub fn default_run_dir(kind: &str, seed: u64) -> std::path::PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::path::PathBuf::from(format!("runs/{kind}-{seed}-{secs}"))
}

/// Prints one JSON object as a line on stdout.
pub fn emit(value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
