//! Learning players whose rollouts are sampled by an inference engine: `gpo serve`, started
//! as a user starts it, stands in for vLLM (it speaks vLLM's completions and adapter
//! routes). Taking the engine's log-probs as they are (`engine_correction = none`), a game
//! sampled there repeats the local game exactly; with truncated importance sampling (the
//! default) its metrics carry the weights, the mismatch and the adapter versions; an engine
//! that dies mid-run stops the run with a clear error, and `--resume` continues it.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{
    count_lines, deterministic_lines, gpo, gpo_command, start_serve, stdout_lines, tiny_config,
};
use serde_json::Value;

/// `gpo serve` on `port` (0: any); the server and its API root.
fn serve(port: u16) -> (common::Running, String) {
    let (running, line) = start_serve(&["--port", &port.to_string()]);
    (running, line["url"].as_str().expect("a url").to_string())
}

/// `--set`s that send both players' rollouts to `url`, with `correction` (a TOML value).
fn engine_sets(url: &str, correction: &str) -> Vec<String> {
    let mut sets = Vec::new();
    for role in ["attacker", "defender"] {
        sets.push(format!("{role}.rollout.backend=\"vllm\""));
        sets.push(format!("{role}.rollout.urls=[\"{url}\"]"));
        sets.push(format!("{role}.rollout.tries=1"));
        sets.push(format!("{role}.rollout.timeout_s=120"));
        sets.push(format!("{role}.rl.engine_correction={correction}"));
    }
    sets
}

fn train_args(cfg: &Path, run: &Path, sets: &[String]) -> Vec<String> {
    let mut args = vec![
        "train".to_string(),
        cfg.display().to_string(),
        "--run-dir".to_string(),
        run.display().to_string(),
    ];
    for s in sets {
        args.extend(["--set".to_string(), s.clone()]);
    }
    args
}

fn run_game(cfg: &Path, run: &Path, sets: &[String]) -> std::process::Output {
    let args = train_args(cfg, run, sets);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    gpo(&refs)
}

/// metrics.jsonl without wall times and without the engine's own statistics.
fn metrics_without_engine(run: &Path) -> Vec<Value> {
    let mut lines = deterministic_lines(&run.join("metrics.jsonl"));
    for l in &mut lines {
        for role in ["attacker", "defender"] {
            if let Some(stats) = l[role]["stats"].as_object_mut() {
                stats.remove("engine");
            }
        }
    }
    lines
}

fn engine_stats(run: &Path) -> Vec<Value> {
    deterministic_lines(&run.join("metrics.jsonl"))
        .iter()
        .flat_map(|l| {
            ["attacker", "defender"]
                .iter()
                .filter_map(|r| l[*r]["stats"].get("engine").cloned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_game_sampled_through_gpo_serve_repeats_the_local_game_and_resumes_after_the_engine_dies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let local = dir.path().join("local");
    stdout_lines(&run_game(&cfg, &local, &[]));

    let (server, url) = serve(0);
    // The engine's log-probs taken as they are: the same samples, rewards and updates.
    let exact = dir.path().join("exact");
    stdout_lines(&run_game(
        &cfg,
        &exact,
        &engine_sets(&url, "{ kind = \"none\" }"),
    ));
    for f in ["samples.jsonl", "eval.jsonl"] {
        assert_eq!(
            deterministic_lines(&local.join(f)),
            deterministic_lines(&exact.join(f)),
            "{f}"
        );
    }
    assert_eq!(
        metrics_without_engine(&local),
        metrics_without_engine(&exact)
    );
    let stats = engine_stats(&exact);
    assert_eq!(stats.len(), 4, "one update a step, each on engine rollouts");
    for s in &stats {
        assert_eq!(s["is_weight_mean"], 1.0, "{s}");
        assert!(s["adapter"].as_str().unwrap().starts_with("gpo-"), "{s}");
    }

    // Truncated importance sampling (the default): the learner's recomputed log-probs are
    // the sampler's up to rounding, so every weight is about 1 and none hits the cap.
    let tis = dir.path().join("tis");
    stdout_lines(&run_game(
        &cfg,
        &tis,
        &engine_sets(&url, "{ kind = \"tis\", cap = 2.0 }"),
    ));
    let stats = engine_stats(&tis);
    assert_eq!(stats.len(), 4);
    for s in &stats {
        let w = s["is_weight_mean"].as_f64().unwrap();
        assert!((w - 1.0).abs() < 1e-2, "{s}");
        assert_eq!(s["is_capped_fraction"], 0.0, "{s}");
        assert!(s["logprob_abs_diff_max"].as_f64().unwrap() < 1e-2, "{s}");
    }
    let versions: Vec<&str> = stats
        .iter()
        .map(|s| s["adapter"].as_str().unwrap())
        .collect();
    assert!(
        versions.iter().any(|v| v.ends_with("-defender-v0")),
        "{versions:?}"
    );
    assert!(
        versions.iter().any(|v| v.ends_with("-attacker-v1")),
        "{versions:?}"
    );

    // The engine dies after the second step: the run stops with one line naming it, and
    // `--resume` continues from the step before once it is back, as if nothing happened.
    let port: u16 = url
        .trim_end_matches("/v1")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let broken = dir.path().join("broken");
    let sets = engine_sets(&url, "{ kind = \"none\" }");
    let child = gpo_command()
        .args(train_args(&cfg, &broken, &sets))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while count_lines(&broken.join("metrics.jsonl")) < 2 {
        assert!(t0.elapsed().as_secs() < 900, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(server);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the run outlived its engine: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.contains("rollout engine") && last.contains(&port.to_string()),
        "{stderr}"
    );
    let (_server, again) = serve(port);
    assert_eq!(again, url);
    stdout_lines(&gpo(&["train", "--resume", broken.to_str().unwrap()]));
    assert_eq!(
        deterministic_lines(&local.join("samples.jsonl")),
        deterministic_lines(&broken.join("samples.jsonl"))
    );
}
