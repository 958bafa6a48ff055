//! `gpo serve` on SmolLM2-135M-Instruct, spoken to over real HTTP: by a plain client and by
//! gpo's own OpenAI client (the one served judges and defenders use).

use gpo_assets::{resolve_model, AssetCache, ModelSource};
use gpo_lm::{generate, LoadOptions, LoadedModel, Pass, SamplingParams};
use gpo_serve::{Engine, ServeConfig, Server};
use gpo_tokenizer::ChatMessage;
use serde_json::{json, Value};

const NAME: &str = "smollm2-test";
const KEY: &str = "test-key-123";
const QUESTION: &str = "What is the capital of France?";

fn smollm2() -> LoadedModel {
    let cache = AssetCache::from_env().unwrap();
    let (ModelSource::Gguf(path) | ModelSource::HfDir(path)) =
        resolve_model("smollm2-135m-instruct", &cache).unwrap();
    gpo_lm::load_model(&path, &LoadOptions::default()).unwrap()
}

/// Serves `lm` on a free loopback port with [`KEY`]; the API root.
fn start(lm: LoadedModel, max_concurrent: usize) -> String {
    let mut cfg = ServeConfig::new(NAME);
    cfg.port = 0;
    cfg.api_key = Some(KEY.into());
    cfg.limits.max_tokens = 64;
    cfg.max_concurrent = max_concurrent;
    let server = Server::bind(cfg, Engine::new(lm.model, lm.tokenizer, NAME)).unwrap();
    let addr = server.local_addr().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    std::thread::spawn(move || server.run().unwrap());
    format!("http://{addr}/v1")
}

/// Status and JSON body of a request; `key` is sent as the bearer token.
fn call(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = ureq::request(method, url);
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    let resp = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let (status, text) = match resp {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{method} {url}: {e}"),
    };
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn chat(question: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": NAME,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 8,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn a_seeded_request_is_answered_as_gpo_samples_locally() {
    let lm = smollm2();
    // The local answer: the chat template, gpo's sampler, the same seed.
    let params = SamplingParams {
        temperature: 0.7,
        top_p: 1.0,
        top_k: 0,
        repetition_penalty: 1.0,
        max_new_tokens: 8,
        ignore_eos: false,
        n: 2,
        seed: 11,
    };
    let rendered = lm
        .tokenizer
        .apply_chat_template(&[ChatMessage::user(QUESTION)], true)
        .unwrap();
    let ids = lm.tokenizer.encode(&rendered, false).unwrap();
    let (eos, pad) = (
        lm.tokenizer.eos_ids().to_vec(),
        lm.tokenizer.pad_id().unwrap_or(0),
    );
    let local: Vec<String> = generate(
        &lm.model,
        std::slice::from_ref(&ids),
        &eos,
        pad,
        &params,
        &Pass::infer(),
    )
    .unwrap()
    .iter()
    .map(|s| {
        let kept: Vec<u32> = s.ids.iter().copied().filter(|t| !eos.contains(t)).collect();
        lm.tokenizer.decode(&kept, true).unwrap()
    })
    .collect();
    let url = start(lm, 4);

    let body = chat(
        QUESTION,
        json!({"n": 2, "seed": 11, "temperature": 0.7, "logprobs": true}),
    );
    let (status, reply) = call(
        "POST",
        &format!("{url}/chat/completions"),
        Some(KEY),
        Some(body.clone()),
    );
    assert_eq!(status, 200, "{reply}");
    let texts: Vec<&str> = reply["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, local, "{reply}");
    assert_eq!(reply["model"], NAME);
    assert_eq!(reply["usage"]["prompt_tokens"], ids.len());
    let content = reply["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert!(
        !content.is_empty()
            && content
                .iter()
                .all(|t| t["logprob"].as_f64().unwrap() <= 0.0)
    );
    // The same request again is the same answer.
    let (_, again) = call(
        "POST",
        &format!("{url}/chat/completions"),
        Some(KEY),
        Some(body),
    );
    assert_eq!(again["choices"], reply["choices"]);

    // gpo's own client (served judges and defenders) reads it; a stop string cuts the text.
    std::env::set_var("GPO_API_KEY", KEY);
    let client = gpo_openai::Client::new(&url, NAME, "url", "model").unwrap();
    let first_word = local[0]
        .split_whitespace()
        .next()
        .unwrap_or("The")
        .to_string();
    let cut = client
        .chat(&chat(
            QUESTION,
            json!({"seed": 11, "temperature": 0.7, "stop": [first_word]}),
        ))
        .unwrap();
    let text = cut["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.contains(&first_word), "{cut}");
    assert_eq!(cut["choices"][0]["finish_reason"], "stop");
}

#[test]
fn the_protocol_holds_its_token_limits_and_error_shape() {
    let url = start(smollm2(), 4);
    let (status, health) = call("GET", &url.replace("/v1", "/health"), None, None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, models) = call("GET", &format!("{url}/models"), Some(KEY), None);
    assert_eq!(status, 200);
    assert_eq!(models["data"][0]["id"], NAME);

    let completions = format!("{url}/chat/completions");
    let ok = chat(
        QUESTION,
        json!({"temperature": 0, "user": "ignored", "frequency_penalty": 0}),
    );
    for key in [None, Some("wrong-key-123")] {
        let (status, e) = call("POST", &completions, key, Some(ok.clone()));
        assert_eq!(status, 401, "{e}");
        assert_eq!(e["error"]["code"], "invalid_api_key");
        assert!(!e.to_string().contains(KEY));
    }
    let (status, reply) = call("POST", &completions, Some(KEY), Some(ok));
    assert_eq!(status, 200, "{reply}");
    assert!(reply["choices"][0]["message"]["content"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    for (extra, code, param) in [
        (json!({"model": "other"}), 404, "model"),
        (json!({"max_tokens": 65}), 400, "max_tokens"),
        (json!({"stream": true, "n": 0}), 400, "n"),
        (json!({"n": 0}), 400, "n"),
        (json!({"temperature": -1}), 400, "sampling"),
    ] {
        let (status, e) = call(
            "POST",
            &completions,
            Some(KEY),
            Some(chat(QUESTION, extra.clone())),
        );
        assert_eq!(status, code, "{extra}: {e}");
        assert_eq!(e["error"]["param"], param, "{extra}: {e}");
        assert!(e["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (status, e) = call(
        "POST",
        &completions,
        Some(KEY),
        Some(json!({"messages": "hi"})),
    );
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error");
}

/// SmolLM2 with rank-4 adapters on every linear layer whose B matrices are not zero, so the
/// adapter changes what is sampled; saved in PEFT's layout under `dir`.
fn with_saved_adapter(dir: &std::path::Path) -> LoadedModel {
    let mut lm = smollm2();
    let cfg = gpo_lm::LoraConfig {
        rank: 4,
        ..gpo_lm::LoraConfig::default()
    };
    gpo_lm::attach_lora(&mut lm.model, &cfg, 3).unwrap();
    for (name, var) in lm.model.trainable_vars() {
        if name.contains("lora_B") {
            let noise = candle_core::Tensor::randn(0f32, 0.05, var.shape(), var.device()).unwrap();
            var.set(&noise).unwrap();
        }
    }
    gpo_lm::save_lora(&lm.model, &cfg, dir, "smollm2-135m-instruct").unwrap();
    lm
}

#[test]
fn token_prompts_through_a_loaded_adapter_repeat_local_sampling_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let adapter_dir = dir.path().join("v1");
    let tuned = with_saved_adapter(&adapter_dir);
    let tok = &tuned.tokenizer;
    let prompts: Vec<Vec<u32>> = [QUESTION, "Name a colour."]
        .iter()
        .map(|q| {
            let chat = tok
                .apply_chat_template(&[ChatMessage::user(*q)], true)
                .unwrap();
            tok.encode(&chat, false).unwrap()
        })
        .collect();
    let params = SamplingParams {
        temperature: 0.8,
        top_p: 0.9,
        top_k: 0,
        repetition_penalty: 1.1,
        max_new_tokens: 6,
        ignore_eos: false,
        n: 2,
        seed: 99,
    };
    let eos = tok.eos_ids().to_vec();
    let local = generate(
        &tuned.model,
        &prompts,
        &eos,
        tok.pad_id().unwrap_or(0),
        &params,
        &Pass::infer(),
    )
    .unwrap();
    let url = start(smollm2(), 4);
    let root = url.trim_end_matches("/v1");

    let body = json!({
        "model": "player-v1", "prompt": prompts, "n": 2, "seed": 99, "temperature": 0.8,
        "top_p": 0.9, "top_k": -1, "repetition_penalty": 1.1, "max_tokens": 6,
        "logprobs": 0, "return_token_ids": true, "stop_token_ids": eos,
    });
    let (status, reply) = call(
        "POST",
        &format!("{url}/completions"),
        Some(KEY),
        Some(body.clone()),
    );
    assert_eq!(
        (status, &reply["error"]["code"]),
        (404, &json!("model_not_found"))
    );

    let load = json!({"lora_name": "player-v1", "lora_path": adapter_dir});
    let (status, text) = call(
        "POST",
        &format!("{root}/v1/load_lora_adapter"),
        Some(KEY),
        Some(load.clone()),
    );
    assert_eq!(status, 200, "{text}");
    let (status, _) = call(
        "POST",
        &format!("{root}/v1/load_lora_adapter"),
        Some(KEY),
        Some(load),
    );
    assert_eq!(status, 400, "a second load under the same name is refused");
    let (_, models) = call("GET", &format!("{url}/models"), Some(KEY), None);
    assert_eq!(models["data"][1]["id"], "player-v1", "{models}");

    let (status, reply) = call("POST", &format!("{url}/completions"), Some(KEY), Some(body));
    assert_eq!(status, 200, "{reply}");
    let choices = reply["choices"].as_array().unwrap();
    assert_eq!(choices.len(), local.len());
    for (c, s) in choices.iter().zip(&local) {
        let ids: Vec<u32> = serde_json::from_value(c["token_ids"].clone()).unwrap();
        let lps: Vec<f32> =
            serde_json::from_value(c["logprobs"]["token_logprobs"].clone()).unwrap();
        assert_eq!(ids, s.ids, "{reply}");
        assert_eq!(
            lps, s.logprobs,
            "the log-probs are the sampler's own, bit for bit"
        );
    }
    // The engine client of a game's players reads the same reply (its bearer token comes
    // from GPO_API_KEY, as a game's does).
    std::env::set_var("GPO_API_KEY", KEY);
    let engine = gpo_openai::EngineClient::new(
        gpo_openai::EngineKind::Vllm,
        root,
        std::time::Duration::from_secs(60),
        1,
        "urls",
    )
    .unwrap();
    assert!(engine.lists("player-v1").unwrap());
    let got = engine
        .generate(&gpo_openai::TokenRequest {
            model: "player-v1",
            prompts: &prompts,
            n: 2,
            seed: 99,
            temperature: 0.8,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.1,
            max_tokens: 6,
            stop_token_ids: &eos,
        })
        .unwrap();
    assert_eq!(
        got.iter().map(|c| c.ids.clone()).collect::<Vec<_>>(),
        local.iter().map(|s| s.ids.clone()).collect::<Vec<_>>()
    );
    engine.unload_adapter("player-v1").unwrap();
    assert!(!engine.lists("player-v1").unwrap());
    engine.unload_adapter("player-v1").unwrap();
    let e = engine
        .load_adapter("player-v2", "/nonexistent/adapter")
        .unwrap_err();
    assert!(
        e.to_string().contains("player-v2") && e.to_string().contains("HTTP 400"),
        "{e}"
    );
}

#[test]
fn concurrent_requests_are_batched_and_each_gets_its_own_answer() {
    let url = start(smollm2(), 16);
    let questions = ["Name a fruit.", "Name a city.", QUESTION, "Say hi."];
    let body = |i: usize| {
        chat(
            questions[i],
            json!({"seed": 100 + i, "temperature": 0.9, "n": 1 + i % 2, "max_tokens": 6 + i}),
        )
    };
    // One at a time first: each request alone.
    let alone: Vec<Value> = (0..questions.len())
        .map(|i| {
            call(
                "POST",
                &format!("{url}/chat/completions"),
                Some(KEY),
                Some(body(i)),
            )
            .1
        })
        .collect();
    // Then all at once, several times over, so the engine finds them queued together.
    for _ in 0..3 {
        let together: Vec<Value> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..questions.len())
                .map(|i| {
                    let url = &url;
                    let body = body(i);
                    s.spawn(move || {
                        call(
                            "POST",
                            &format!("{url}/chat/completions"),
                            Some(KEY),
                            Some(body),
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    let (status, v) = h.join().unwrap();
                    assert_eq!(status, 200, "{v}");
                    v
                })
                .collect()
        });
        for (a, t) in alone.iter().zip(&together) {
            assert_eq!(a["choices"], t["choices"], "a request batched with others");
            assert_eq!(a["usage"], t["usage"]);
        }
    }
}

/// The `data:` payloads of a server-sent-events body.
fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| d.trim().to_string())
        .collect()
}

#[test]
fn a_streamed_reply_adds_up_to_the_whole_reply() {
    let url = start(smollm2(), 4);
    let post_raw = |route: &str, body: Value| {
        ureq::post(&format!("{url}/{route}"))
            .set("Authorization", &format!("Bearer {KEY}"))
            .send_json(body)
            .unwrap()
    };
    let body = chat(
        QUESTION,
        json!({"seed": 5, "temperature": 0.8, "n": 2, "max_tokens": 12, "logprobs": true,
               "top_logprobs": 2}),
    );
    let whole: Value = post_raw("chat/completions", body.clone())
        .into_json()
        .unwrap();
    let mut streamed_body = body.clone();
    streamed_body["stream"] = json!(true);
    let resp = post_raw("chat/completions", streamed_body);
    assert!(resp.content_type().starts_with("text/event-stream"));
    let data = sse_data(&resp.into_string().unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let mut texts = vec![String::new(); 2];
    let mut logprobs: Vec<Vec<Value>> = vec![Vec::new(); 2];
    let mut finish = vec![Value::Null; 2];
    let mut roles = 0;
    for d in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(d).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        let c = &chunk["choices"][0];
        let i = c["index"].as_u64().unwrap() as usize;
        roles += usize::from(c["delta"]["role"] == "assistant");
        texts[i].push_str(c["delta"]["content"].as_str().unwrap_or(""));
        if let Some(content) = c["logprobs"]["content"].as_array() {
            logprobs[i].extend(content.iter().cloned());
        }
        if !c["finish_reason"].is_null() {
            finish[i] = c["finish_reason"].clone();
        }
    }
    assert_eq!(roles, 2, "each choice opens with the assistant's role");
    for i in 0..2 {
        assert_eq!(
            texts[i], whole["choices"][i]["message"]["content"],
            "choice {i}"
        );
        assert_eq!(
            finish[i], whole["choices"][i]["finish_reason"],
            "choice {i}"
        );
        assert_eq!(
            json!(logprobs[i]),
            whole["choices"][i]["logprobs"]["content"],
            "choice {i}: the chunks' log-probs add up to the reply's"
        );
    }

    // Text completions stream too, and a stop string ends the stream's text where the
    // whole reply's ends.
    let first_word = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap_or("the")
        .to_string();
    let body = json!({"prompt": "Once upon a time", "seed": 9, "max_tokens": 16,
                      "temperature": 0.8, "stop": [first_word.clone()]});
    let whole: Value = post_raw("completions", body.clone()).into_json().unwrap();
    let mut streamed_body = body;
    streamed_body["stream"] = json!(true);
    let data = sse_data(
        &post_raw("completions", streamed_body)
            .into_string()
            .unwrap(),
    );
    let text: String = data[..data.len() - 1]
        .iter()
        .map(|d| {
            let v: Value = serde_json::from_str(d).unwrap();
            v["choices"][0]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text, whole["choices"][0]["text"].as_str().unwrap());

    // A request refused before any text is an ordinary JSON error, not a stream.
    let (status, reply) = call(
        "POST",
        &format!("{url}/completions"),
        Some(KEY),
        Some(json!({"prompt": [[999999]], "stream": true, "max_tokens": 4})),
    );
    assert_eq!((status, &reply["error"]["param"]), (400, &json!("prompt")));
}

#[test]
fn greedy_choices_are_their_own_top_alternative() {
    let url = start(smollm2(), 4);
    let body = json!({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0,
                      "logprobs": 3});
    let (status, v) = call("POST", &format!("{url}/completions"), Some(KEY), Some(body));
    assert_eq!(status, 200, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    let tokens = lp["tokens"].as_array().unwrap();
    for (i, tok) in tokens.iter().enumerate() {
        let top = lp["top_logprobs"][i].as_object().unwrap();
        assert!(!top.is_empty() && top.len() <= 3, "{top:?}");
        let best = top
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        let chosen = lp["token_logprobs"][i].as_f64().unwrap();
        assert!(
            (chosen - best).abs() < 1e-6,
            "position {i}: {chosen} vs {best}"
        );
        assert!(top.contains_key(tok.as_str().unwrap()), "{tok} in {top:?}");
    }
    let body = chat(
        QUESTION,
        json!({"max_tokens": 3, "temperature": 0, "logprobs": true,
                                     "top_logprobs": 2}),
    );
    let (status, v) = call(
        "POST",
        &format!("{url}/chat/completions"),
        Some(KEY),
        Some(body),
    );
    assert_eq!(status, 200, "{v}");
    for entry in v["choices"][0]["logprobs"]["content"].as_array().unwrap() {
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0]["token"], entry["token"]);
    }
}

#[test]
fn echo_scores_the_prompt_as_gpo_scores_a_sequence() {
    let lm = smollm2();
    let prompt = "The capital of France is Paris.";
    let ids = lm.tokenizer.encode(prompt, false).unwrap();
    let (want, _) = gpo_lm::score_sequence(&lm.model, &ids).unwrap();
    let url = start(lm, 4);
    // lm-eval's log-likelihood request: echo, no new tokens, one alternative.
    let body = json!({"prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 1,
                      "temperature": 0});
    let (status, v) = call("POST", &format!("{url}/completions"), Some(KEY), Some(body));
    assert_eq!(status, 200, "{v}");
    let c = &v["choices"][0];
    assert_eq!(c["text"], prompt);
    let got = c["logprobs"]["token_logprobs"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got[0].is_null() && c["logprobs"]["top_logprobs"][0].is_null());
    for (g, w) in got.iter().zip(&want).skip(1) {
        // Reference: gpo_lm::score_sequence, the same teacher-forced forward. Its
        // log-sum-exp adds the 49,152 exponentials in 16 lanes, the echo's in one: measured
        // 1.7e-4 apart at -11.5.
        assert!(
            (g.as_f64().unwrap() - f64::from(w.unwrap())).abs() < 5e-4,
            "{g} vs {w:?}"
        );
    }
    // With new tokens, the choice is the prompt and its continuation.
    let body = json!({"prompt": "Once upon a time", "max_tokens": 3, "echo": true,
                      "temperature": 0, "ignore_eos": true});
    let (status, v) = call("POST", &format!("{url}/completions"), Some(KEY), Some(body));
    assert_eq!(status, 200, "{v}");
    let text = v["choices"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Once upon a time") && text.len() > 16,
        "{text}"
    );
}
