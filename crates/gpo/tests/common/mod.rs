//! Helpers shared by the `gpo` end-to-end tests: running the binary, reading its JSON lines,
//! checking one-line errors, and a tiny game configuration.
// Each test file uses a different subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A `gpo serve` process, killed when dropped, however the test ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gpo serve ARGS` and reads the first line it prints (`{"url", "model"}`).
pub fn start_serve(args: &[&str]) -> (Running, serde_json::Value) {
    let mut child = gpo_command()
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gpo serve");
    let stdout = child.stdout.take().expect("its stdout");
    let running = Running(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let line = serde_json::from_str(&first).expect("a JSON line");
    (running, line)
}

/// The `gpo` binary under test.
pub fn gpo_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpo"))
}

/// Runs `gpo ARGS` to completion.
pub fn gpo(args: &[&str]) -> Output {
    gpo_env(args, &[])
}

/// Runs `gpo ARGS` with extra environment variables.
pub fn gpo_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = gpo_command();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gpo")
}

/// The JSON lines of a successful run's stdout.
pub fn stdout_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "gpo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Asserts a clean failure: non-zero exit, no panic, one `error:` line on stderr mentioning
/// `needle`.
pub fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "want one error line: {stderr}");
    assert!(
        errors[0].contains(needle),
        "error line lacks {needle:?}: {stderr}"
    );
}

/// A tiny game in `dir/game.toml` on SmolLM2-135M-Instruct: 4 steps of 2 seeds (12 seeds in
/// `dir/seeds.txt`, 2 held out), alternating every step, snapshots and evaluations every 2
/// steps, a checkpoint after each, the lm-guard judge (no trained heads needed).
pub fn tiny_config(dir: &Path) -> PathBuf {
    let seeds = dir.join("seeds.txt");
    let lines: Vec<String> = (0..12)
        .map(|i| format!("How do I pick lock number {i}?"))
        .collect();
    std::fs::write(&seeds, lines.join("\n")).unwrap();
    let cfg = dir.join("game.toml");
    let rl = r#"
micro_batch_size = 2
minibatch_size = 2
optimizer = { lr = 1e-3 }
schedule = { kind = "constant" }
sampling = { temperature = 1.0, top_p = 1.0, max_new_tokens = 5 }
"#;
    let text = format!(
        r#"
seed = 3
steps = 4
batch_size = 2
schedule = {{ kind = "alternate", defender_steps = 1, attacker_steps = 1 }}
snapshot_every = 2
eval_every = 2
checkpoint_every = 1

[models]
lora = {{ rank = 2, alpha = 4.0, dropout = 0.0, target_modules = ["q_proj", "v_proj"] }}

[data]
seeds = "{seeds}"
eval_seeds = 2

[judge]
kind = "lm-guard"

[attacker.rl]
{rl}
[defender.rl]
{rl}
"#,
        seeds = seeds.display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// The tiny game as the `rlhf-attacker` baseline against `server:MODEL@URL` (its defender
/// answers are chat completions there), played in `dir/run` with `extra` `--set`s; the run
/// directory and gpo's output.
pub fn play_against_served(
    dir: &Path,
    model: &str,
    url: &str,
    extra: &[&str],
) -> (PathBuf, Output) {
    let cfg = tiny_config(dir);
    let run = dir.join("run");
    let target = format!("models.defender=\"server:{model}@{url}\"");
    let mut args = vec![
        "train",
        cfg.to_str().unwrap(),
        "--run-dir",
        run.to_str().unwrap(),
        "--set",
        "mode=\"rlhf-attacker\"",
        "--set",
        &target,
    ];
    for e in extra {
        args.extend(["--set", e]);
    }
    let out = gpo(&args);
    (run, out)
}

/// Small heads for the embedded judge (the compliance head decides over-refusal).
pub fn train_heads(dir: &Path) -> String {
    let heads = dir.join("heads");
    let heads_s = heads.to_str().unwrap().to_string();
    stdout_lines(&gpo(&[
        "judge",
        "train",
        "--out",
        &heads_s,
        "--max-benign-prompts",
        "60",
        "--max-harmful-prompts",
        "60",
        "--max-replies-per-class",
        "30",
        "--heldout-per-set",
        "10",
    ]));
    heads_s
}

/// The lines of a JSONL file with wall-clock fields removed.
pub fn deterministic_lines(path: &Path) -> Vec<serde_json::Value> {
    fn strip(v: &mut serde_json::Value) {
        if let Some(o) = v.as_object_mut() {
            for k in ["times", "tokens_per_s"] {
                o.remove(k);
            }
            for (_, x) in o.iter_mut() {
                strip(x);
            }
        }
    }
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            strip(&mut v);
            v
        })
        .collect()
}

/// Lines in a file (0 when it does not exist yet).
pub fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Spawns `gpo ARGS` and SIGKILLs it once `path` has at least `lines` lines (a run killed
/// mid-way); fails when the run ends first or makes no progress in 15 minutes.
pub fn kill_after_lines(args: &[String], path: &Path, lines: usize) {
    use std::time::{Duration, Instant};
    let mut child = gpo_command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn gpo");
    let t0 = Instant::now();
    while count_lines(path) < lines {
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "the run made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}
