//! The engine client against the stand-in server: what it sends, and how it meets faults
//! (a 5xx then success, a reply cut short, an unknown adapter, a timeout).

use std::time::Duration;

use gpo_openai::stand_in::serve;
use gpo_openai::{EngineClient, EngineKind, TokenRequest};
use serde_json::json;

fn request(prompts: &[Vec<u32>]) -> TokenRequest<'_> {
    TokenRequest {
        model: "gpo-ab12cd34-attacker-v3",
        prompts,
        n: 1,
        seed: 42,
        temperature: 0.8,
        top_p: 0.9,
        top_k: 0,
        repetition_penalty: 1.1,
        max_tokens: 4,
        stop_token_ids: &[2],
    }
}

fn good_reply() -> String {
    json!({"choices": [
        {"index": 0, "token_ids": [7, 2], "logprobs": {"token_logprobs": [-0.5, -0.1]},
         "finish_reason": "stop"},
        {"index": 1, "token_ids": [8, 9, 10, 11],
         "logprobs": {"token_logprobs": [-1.0, -1.0, -1.0, -1.0]}, "finish_reason": "length"},
    ]})
    .to_string()
}

fn client(url: &str, timeout_s: u64, tries: u32) -> EngineClient {
    EngineClient::new(
        EngineKind::Vllm,
        url,
        Duration::from_secs(timeout_s),
        tries,
        "rollout.urls",
    )
    .unwrap()
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![1, 2, 3], vec![4, 5]]
}

#[test]
fn a_server_error_then_success_is_retried_and_every_field_is_sent() {
    let (url, seen) = serve(|_, n| match n {
        1 => (503, r#"{"error": {"message": "warming up"}}"#.into()),
        _ => (200, good_reply()),
    });
    let prompts = prompts();
    let got = client(&url, 30, 3).generate(&request(&prompts)).unwrap();
    assert_eq!(got[0].ids, vec![7, 2]);
    assert!(!got[0].length && got[1].length);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let body = &seen[1];
    assert_eq!(body["prompt"], json!([[1, 2, 3], [4, 5]]));
    for (k, v) in [
        ("model", json!("gpo-ab12cd34-attacker-v3")),
        ("seed", json!(42)),
        ("n", json!(1)),
        ("top_k", json!(-1)),
        ("max_tokens", json!(4)),
        ("stop_token_ids", json!([2])),
        ("logprobs", json!(0)),
        ("return_token_ids", json!(true)),
    ] {
        assert_eq!(body[k], v, "{k} in {body}");
    }
    assert!(body["temperature"].is_number() && body["repetition_penalty"].is_number());
}

#[test]
fn a_reply_cut_short_is_tried_again() {
    let (url, seen) = serve(|_, n| match n {
        1 => (200, r#"{"choices": [{"index": 0, "token_ids": [7"#.into()),
        _ => (200, good_reply()),
    });
    let prompts = prompts();
    client(&url, 30, 3).generate(&request(&prompts)).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn an_unknown_adapter_fails_at_once_naming_the_engine_and_the_version() {
    let (url, seen) = serve(|_, _| {
        (
            404,
            r#"{"error": {"message": "The model `gpo-ab12cd34-attacker-v3` does not exist."}}"#
                .into(),
        )
    });
    let prompts = prompts();
    let e = client(&url, 30, 3)
        .generate(&request(&prompts))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 404") && e.contains("gpo-ab12cd34-attacker-v3") && e.contains("127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 1, "a 404 is not retried");
}

#[test]
fn a_timeout_fails_after_the_tries() {
    let (url, seen) = serve(|_, _| {
        std::thread::sleep(Duration::from_secs(3));
        (200, good_reply())
    });
    let prompts = prompts();
    let e = client(&url, 1, 2)
        .generate(&request(&prompts))
        .unwrap_err()
        .to_string();
    assert!(e.contains("after 2 tries"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn adapter_loads_accept_plain_text_and_report_sglang_failures() {
    let (url, _) = serve(|body, _| match body["lora_name"].as_str() {
        Some("bad") => (
            200,
            r#"{"success": false, "error_message": "no such file"}"#.into(),
        ),
        _ => (200, "Success: LoRA adapter added.".into()),
    });
    let c = client(&url, 30, 1);
    c.load_adapter("v1", "/shared/v1").unwrap();
    let e = c
        .load_adapter("bad", "/shared/bad")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such file") && e.contains("`bad`"), "{e}");
}

#[test]
fn a_load_answered_already_loaded_counts_when_the_engine_lists_the_adapter() {
    // A retried load meets its own earlier success: vLLM says 400 "already loaded".
    let (url, _) = serve(|body, _| match body["lora_name"].as_str() {
        Some(_) => (
            400,
            r#"{"error": {"message": "The lora adapter 'v7' has already been loaded."}}"#.into(),
        ),
        None => (
            200,
            r#"{"object": "list", "data": [{"id": "base"}, {"id": "v7"}]}"#.into(),
        ),
    });
    let c = client(&url, 30, 1);
    c.load_adapter("v7", "/shared/v7").unwrap();
    let e = c.load_adapter("v8", "/shared/v8").unwrap_err().to_string();
    assert!(e.contains("`v8`") && e.contains("HTTP 400"), "{e}");
}
