//! The `rlhf-attacker` baseline against a defender behind an OpenAI-compatible server: the
//! attacker (SmolLM2-135M-Instruct) learns, every defender answer is a chat completion from
//! a stand-in server, and the run's evaluation, `gpo eval` and `gpo crossplay` all ask that
//! server.

use std::path::Path;

use serde_json::{json, Value};

mod common;
use common::{gpo, play_against_served, stdout_lines, train_heads};

/// What the stand-in defender answers to every prompt.
const ANSWER: &str = "Sure. Step one: gather the tools.";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn an_attacker_learns_against_a_served_defender() {
    let (url, seen) = gpo_openai::stand_in::serve(|_, _| {
        let reply = json!({"choices": [{"message": {"role": "assistant", "content": ANSWER}}]});
        (200, reply.to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    // Extras for the defender's update; it never learns here, so none is asked.
    let (run, out) = play_against_served(
        dir.path(),
        "target",
        &url,
        &["defender.prompts={kind=\"mixed\",seeds=1,benign=1}"],
    );
    let summary = &stdout_lines(&out)[0];
    assert_eq!(summary["mode"], "rlhf-attacker");

    // Every step's exchanges are the attacker's prompts and the server's answer; the
    // attacker learned at each step and the defender never did.
    let metrics = lines(&run.join("metrics.jsonl"));
    assert_eq!(metrics.len(), 4);
    for m in &metrics {
        assert_eq!(m["attacker"]["learned"], true, "{m}");
        assert_eq!(m["defender"]["learned"], false, "{m}");
    }
    let samples = lines(&run.join("samples.jsonl"));
    assert_eq!(samples.len(), 4 * 2, "only the attacks are answered");
    assert!(samples.iter().all(|s| s["response"] == ANSWER));
    assert!(
        samples.iter().all(|s| s["seed"] != ""),
        "an extra was answered"
    );
    // The server saw each attack as a user turn, with the defender's sampling settings.
    let bodies = seen.lock().unwrap().clone();
    for s in &samples {
        assert!(
            bodies
                .iter()
                .any(|b| b["messages"][0]["content"] == s["prompt"]),
            "{s}"
        );
    }
    // The first request is the one-token check made before training.
    assert_eq!(bodies[0]["max_tokens"], 1);
    assert!(bodies[1..]
        .iter()
        .all(|b| b["model"] == "target" && b["max_tokens"] == 5));

    // A frozen defender: the same model is "current" and "initial"; nothing of it is saved.
    for e in lines(&run.join("eval.jsonl")) {
        assert_eq!(e["attacker_asr"], e["attacker_asr_vs_initial"], "{e}");
    }
    assert!(run.join("snapshots/attacker").is_dir());
    assert!(!run.join("snapshots/defender").exists());
    assert!(!run.join("checkpoint/defender").exists());

    // `gpo eval attacker RUN_DIR` plays the run's attacker against the one served target.
    let run_s = run.to_str().unwrap();
    let out = gpo(&[
        "eval",
        "attacker",
        run_s,
        "--limit",
        "2",
        "--resamples",
        "20",
        "--judge",
        "lm-guard",
    ]);
    let report = &stdout_lines(&out)[0];
    let targets = report["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "{report}");
    assert!(targets[0]["target"]
        .as_str()
        .unwrap()
        .contains("server:target@"));
    // ... and `gpo eval defender RUN_DIR` asks the server.
    let heads = train_heads(dir.path());
    let out = gpo(&[
        "eval",
        "defender",
        run_s,
        "--limit",
        "2",
        "--resamples",
        "20",
        "--heads-dir",
        &heads,
    ]);
    let report = &stdout_lines(&out)[0];
    assert_eq!(report["examples"][0]["response"], ANSWER, "{report}");
    // Cross-play: every attacker snapshot against the one defender.
    let out = gpo(&["crossplay", run_s, "--seeds", "2"]);
    let play = &stdout_lines(&out)[0];
    assert_eq!(play["defenders"], json!(["initial"]), "{play}");
    assert_eq!(play["attackers"].as_array().unwrap().len(), 3, "{play}");
}
