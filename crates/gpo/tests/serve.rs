//! `gpo serve` as a user starts it: the first line says where it listens, the served
//! defender of a game (`server:MODEL@URL`) can be pointed at it, and bad options are one line.

mod common;

use common::{assert_clean_error, gpo_env, play_against_served, start_serve, stdout_lines};

#[test]
fn serve_prints_its_url_and_answers_gpo_s_own_client() {
    let (_running, line) = start_serve(&["--port", "0", "--served-model-name", "defender"]);
    let url = line["url"].as_str().expect("a url").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(line["model"], "defender");
    let client = gpo_openai::Client::new(&url, "defender", "url", "model").unwrap();
    let reply = client
        .chat(&serde_json::json!({
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 4, "temperature": 0,
        }))
        .unwrap();
    assert!(
        reply["choices"][0]["message"]["content"].is_string(),
        "{reply}"
    );

    // A game's frozen defender, served by gpo serve: the attacker learns against it.
    let dir = tempfile::tempdir().unwrap();
    let (run, out) = play_against_served(dir.path(), "defender", &url, &[]);
    assert_eq!(stdout_lines(&out)[0]["mode"], "rlhf-attacker");
    let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 4 * 2, "{samples}");
}

#[test]
fn bad_serve_options_are_one_line() {
    let out = gpo_env(
        &["serve", "--api-key-env", "GPO_TEST_SURELY_UNSET_VAR"],
        &[],
    );
    assert_clean_error(&out, "GPO_TEST_SURELY_UNSET_VAR");
    let out = gpo_env(&["serve", "--max-tokens-limit", "0"], &[]);
    assert_clean_error(&out, "--max-tokens-limit");
}
