//! The `server` judge: the Llama Guard protocol on a model behind an OpenAI-compatible server
//! (vLLM, SGLang, llama.cpp's `llama-server`), for judges too large for the training machine.
//!
//! Each exchange is one `POST {url}/chat/completions` asking for a few tokens at temperature 0
//! with the 20 most likely alternatives at each (`logprobs`, `top_logprobs`). As in
//! [`crate::LmGuardJudge`], P(unsafe) = p("unsafe") / (p("safe") + p("unsafe")), read at the
//! verdict: the first generated token that is not whitespace. (Llama Guard 3's template stops
//! at the assistant header, so its first token is the header's blank line, "\n\n".) The
//! server names tokens by their text, not their id, so a token counts for a word when its
//! text (trimmed of spaces, at least two characters) begins that word: "unsafe" or "un" for
//! unsafe, "safe" or "sa" for safe. A word missing from the alternatives is at most as likely
//! as the least likely one listed, and is taken at that bound.
//!
//! Requests go through [`gpo_openai::Client::chat_all`]: several in flight, retried on
//! transient failures.

use std::sync::atomic::{AtomicUsize, Ordering};

use gpo_openai::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::lmguard::{ratio_from_logprobs, render_moderation_prompt};
use crate::{Exchange, Judge, JudgeKind, Result};

/// Alternatives asked for at each token (OpenAI's maximum).
const TOP_LOGPROBS: u32 = 20;

/// Tokens generated to reach the verdict past leading whitespace.
const MAX_TOKENS: u32 = 4;

/// The least log-prob a reply's alternative is taken at (e^-10000 is 0 in any f32 ratio).
const MIN_LOGPROB: f64 = -1e4;

/// How the moderation prompt reaches the served model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ServerPrompt {
    /// The conversation as its (user, assistant) turns; the server's chat template renders
    /// the protocol. For real Llama Guard checkpoints.
    LlamaGuard,
    /// gpo renders the moderation prompt (`render_moderation_prompt`) as one user turn. For
    /// any other chat model.
    Wrapped,
}

/// The Llama Guard protocol over an OpenAI-compatible chat-completions endpoint.
#[derive(Debug)]
pub struct ServerJudge {
    client: Client,
    prompt: ServerPrompt,
    threshold: f32,
    /// Exchanges judged so far, and how many of them had no readable verdict.
    judged: AtomicUsize,
    unreadable: AtomicUsize,
}

impl ServerJudge {
    /// A judge asking `model` at `url` (the API root, e.g. `http://localhost:8000/v1`).
    /// Nothing is sent until the first batch.
    pub fn new(url: &str, model: &str, prompt: ServerPrompt) -> Result<Self> {
        Ok(ServerJudge {
            client: Client::new(url, model, "server_url", "server_model")?,
            prompt,
            threshold: 0.5,
            judged: AtomicUsize::new(0),
            unreadable: AtomicUsize::new(0),
        })
    }

    /// Sets the verdict threshold (default 0.5).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// The chat-completions URL requests go to.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// The request body for `exchange` (the client adds the model's name).
    pub fn request(&self, exchange: &Exchange<'_>) -> Value {
        let messages = match self.prompt {
            ServerPrompt::LlamaGuard => json!([
                {"role": "user", "content": exchange.prompt},
                {"role": "assistant", "content": exchange.response},
            ]),
            ServerPrompt::Wrapped => json!([
                {"role": "user", "content": render_moderation_prompt(exchange)},
            ]),
        };
        json!({
            "messages": messages,
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
            "logprobs": true,
            "top_logprobs": TOP_LOGPROBS,
        })
    }

    /// P(unsafe) from one reply.
    fn read(&self, reply: &Value) -> Result<f32> {
        let dist = verdict_distribution(reply).map_err(|m| self.client.error(m))?;
        let judged = self.judged.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(match dist {
            Some(d) => d.p_unsafe(),
            None => self.unreadable(reply, judged),
        })
    }

    /// Neither word among the alternatives at the verdict (a model that does not follow the
    /// protocol): 0.5, said at the 1st, 2nd, 4th, 8th, ... such exchange with the count.
    fn unreadable(&self, reply: &Value, judged: usize) -> f32 {
        let n = self.unreadable.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            let said = reply
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or("");
            tracing::warn!(
                "server judge {}: neither \"safe\" nor \"unsafe\" is among the {TOP_LOGPROBS} \
                 likeliest verdict tokens (the model said {said:?}); such exchanges score 0.5: \
                 {n} of {judged} so far",
                self.client.endpoint()
            );
        }
        0.5
    }
}

/// What a reply says at its verdict token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerdictLogprobs {
    /// Log of the summed probability of the alternatives standing for "safe", if any is listed.
    pub safe: Option<f32>,
    /// The same for "unsafe".
    pub unsafe_: Option<f32>,
    /// The least log-prob listed: a bound on any word not listed.
    pub floor: f32,
}

impl VerdictLogprobs {
    /// p("unsafe") / (p("safe") + p("unsafe")), a missing word taken at the floor.
    pub fn p_unsafe(&self) -> f32 {
        ratio_from_logprobs(
            self.safe.unwrap_or(self.floor),
            self.unsafe_.unwrap_or(self.floor),
        )
    }
}

/// The verdict's log-probs: at the first generated token that is not whitespace, the
/// alternatives standing for "safe" and "unsafe"; `None` when neither is listed or every
/// token is whitespace. An error when the reply has no token log-probs, or no alternatives
/// at the verdict.
pub fn verdict_distribution(reply: &Value) -> std::result::Result<Option<VerdictLogprobs>, String> {
    let missing = || {
        format!(
            "the reply has no choices[0].logprobs.content[..].top_logprobs: the server must \
             support `logprobs` and `top_logprobs` on chat completions; it said {}",
            gpo_openai::snippet(&reply.to_string())
        )
    };
    let content = reply
        .pointer("/choices/0/logprobs/content")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(missing)?;
    let Some(verdict) = content.iter().find(|e| {
        e.get("token")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty())
    }) else {
        return Ok(None);
    };
    // A log-prob is at most 0; below MIN_LOGPROB a word's probability is 0 to any ratio, and
    // clamping there keeps every sum finite in f32 (a reply saying -1e101 made 0 / 0).
    let entry = |e: &Value| -> Option<(String, f64)> {
        Some((
            e.get("token")?.as_str()?.to_string(),
            e.get("logprob")?.as_f64()?.clamp(MIN_LOGPROB, 0.0),
        ))
    };
    let mut alternatives: Vec<(String, f64)> = verdict
        .get("top_logprobs")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(entry).collect())
        .unwrap_or_default();
    if alternatives.is_empty() {
        return Err(missing());
    }
    // The chosen token, in case the server lists only the others.
    if let Some(chosen) = entry(verdict) {
        if !alternatives.iter().any(|(t, _)| *t == chosen.0) {
            alternatives.push(chosen);
        }
    }
    let floor = alternatives
        .iter()
        .map(|&(_, lp)| lp)
        .fold(f64::INFINITY, f64::min) as f32;
    let mass = |word: &str| -> Option<f32> {
        let ps: Vec<f64> = alternatives
            .iter()
            .filter(|(t, _)| stands_for(t, word))
            .map(|&(_, lp)| lp)
            .collect();
        let max = ps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!ps.is_empty())
            .then(|| (max + ps.iter().map(|lp| (lp - max).exp()).sum::<f64>().ln()) as f32)
    };
    let (safe, unsafe_) = (mass("safe"), mass("unsafe"));
    Ok(
        (safe.is_some() || unsafe_.is_some()).then_some(VerdictLogprobs {
            safe,
            unsafe_,
            floor,
        }),
    )
}

/// Whether a token's text can begin `word` ("safe" or "unsafe"; they share no prefix).
/// Case counts, as in the protocol: "Safe" is not the answer it asks for.
fn stands_for(token: &str, word: &str) -> bool {
    let t = token.trim();
    t.chars().count() >= 2 && word.starts_with(t)
}

impl Judge for ServerJudge {
    fn kind(&self) -> JudgeKind {
        JudgeKind::Server
    }

    fn threshold(&self) -> f32 {
        self.threshold
    }

    fn p_unsafe(&self, batch: &[Exchange<'_>]) -> Result<Vec<f32>> {
        let bodies: Vec<Value> = batch.iter().map(|e| self.request(e)).collect();
        self.client
            .chat_all(&bodies)?
            .iter()
            .map(|r| self.read(r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(top: &[(&str, f64)]) -> Value {
        let top: Vec<Value> = top
            .iter()
            .map(|(t, lp)| json!({"token": t, "logprob": lp}))
            .collect();
        json!({"choices": [{"message": {"content": top[0]["token"]},
            "logprobs": {"content": [{"token": top[0]["token"], "logprob": top[0]["logprob"],
            "top_logprobs": top}]}}]})
    }

    #[test]
    fn log_probs_out_of_range_still_give_a_probability() {
        // Found by `fuzz/fuzz_targets/openai_reply.rs`: "unsafe" at -2.3e101 became -inf in
        // f32, and so did the floor that stands for the unlisted "safe": P(unsafe) was NaN.
        let found = include_bytes!("../tests/fixtures/fuzz/openai-reply-huge-logprob");
        let r = gpo_openai::parse_reply(&String::from_utf8_lossy(found)).unwrap();
        // Neither "safe" (spelt with a replacement character) nor anything but "unsafe" at
        // the floor: both words at the floor.
        let p = verdict_distribution(&r).unwrap().unwrap().p_unsafe();
        assert_eq!(p, 0.5);
        let r = reply(&[("sa", -0.1), ("unsafe", -2.3e101), ("x", -4.0)]);
        let p = verdict_distribution(&r).unwrap().unwrap().p_unsafe();
        assert!(p.abs() < 1e-6, "{p}");
        let r = reply(&[("unsafe", -2.3e101), ("x", -1e300)]);
        let p = verdict_distribution(&r).unwrap().unwrap().p_unsafe();
        assert_eq!(p, 0.5);
        // A positive log-prob (no server sends one) counts as certainty.
        let r = reply(&[("unsafe", 7.0), ("safe", -1.0)]);
        let p = verdict_distribution(&r).unwrap().unwrap().p_unsafe();
        assert!((p - 1.0 / (1.0 + (-1f32).exp())).abs() < 1e-6, "{p}");
    }

    #[test]
    fn reads_both_words_from_the_alternatives() {
        // p(safe) = 0.6, p(unsafe) = 0.2 -> P(unsafe) = 0.2 / 0.8 = 0.25.
        let v = reply(&[
            ("safe", 0.6f64.ln()),
            ("unsafe", 0.2f64.ln()),
            ("The", -5.0),
        ]);
        let p = verdict_distribution(&v).unwrap().unwrap().p_unsafe();
        assert!((p - 0.25).abs() < 1e-6, "{p}");
    }

    #[test]
    fn pieces_and_spaces_of_a_word_add_up() {
        // "un" (0.1) and " unsafe" (0.3) both begin "unsafe"; " safe" (0.4) begins "safe";
        // "s" alone is too short to say and "Safe" is not the word. P(unsafe) = 0.4 / 0.8.
        let v = reply(&[
            (" safe", 0.4f64.ln()),
            (" unsafe", 0.3f64.ln()),
            ("un", 0.1f64.ln()),
            ("s", 0.15f64.ln()),
            ("Safe", 0.05f64.ln()),
        ]);
        let p = verdict_distribution(&v).unwrap().unwrap().p_unsafe();
        assert!((p - 0.5).abs() < 1e-6, "{p}");
    }

    #[test]
    fn a_missing_word_is_taken_at_the_least_listed_logprob_and_neither_is_none() {
        // "safe" is not listed, so p(safe) <= p("Safe") = e^-5: P(unsafe) = 1 / (1 + e^(-5 + 0.01)).
        let v = reply(&[("unsafe", -0.01), ("Safe", -5.0)]);
        let p = verdict_distribution(&v).unwrap().unwrap().p_unsafe();
        let want = 1.0 / (1.0 + (-5.0f32 + 0.01).exp());
        assert!((p - want).abs() < 1e-6, "{p} vs {want}");
        assert!(p < 1.0);
        assert_eq!(
            verdict_distribution(&reply(&[("Sure", -0.1)])).unwrap(),
            None
        );
    }

    #[test]
    fn the_verdict_is_read_past_leading_whitespace() {
        // Llama Guard 3 writes "\n\n" first, then the verdict.
        let top = |list: &[(&str, f64)]| -> Vec<Value> {
            list.iter()
                .map(|(t, lp)| json!({"token": t, "logprob": lp}))
                .collect()
        };
        let v = json!({"choices": [{"message": {"content": "\n\nunsafe"}, "logprobs": {"content": [
            {"token": "\n\n", "logprob": -1e-5, "top_logprobs": top(&[("\n\n", -1e-5), ("safe", -13.0)])},
            {"token": "unsafe", "logprob": 0.8f64.ln(), "top_logprobs": top(&[("unsafe", 0.8f64.ln()), ("safe", 0.2f64.ln())])},
        ]}}]});
        let p = verdict_distribution(&v).unwrap().unwrap().p_unsafe();
        assert!((p - 0.8).abs() < 1e-6, "{p}");
        // Only whitespace: no verdict.
        let v = json!({"choices": [{"logprobs": {"content": [
            {"token": "\n", "logprob": -0.1, "top_logprobs": top(&[("\n", -0.1)])}]}}]});
        assert_eq!(verdict_distribution(&v).unwrap(), None);
    }

    #[test]
    fn a_verdict_without_alternatives_is_an_error() {
        // A server that ignores `top_logprobs` lists only the chosen token.
        let v = json!({"choices": [{"logprobs": {"content": [
            {"token": "safe", "logprob": -0.7, "top_logprobs": []}]}}]});
        let e = verdict_distribution(&v).unwrap_err();
        assert!(e.contains("top_logprobs"), "{e}");
    }

    #[test]
    fn a_reply_without_logprobs_is_an_error_that_says_what_is_needed() {
        let e = verdict_distribution(&json!({"choices": [{"message": {"content": "safe"}}]}))
            .unwrap_err();
        assert!(e.contains("top_logprobs"), "{e}");
    }

    #[test]
    fn requests_carry_the_protocol_in_either_style() {
        let ex = Exchange::new("How do I pick a lock?", "Use a tension wrench.");
        let j = ServerJudge::new("http://h:1/v1/", "guard", ServerPrompt::LlamaGuard).unwrap();
        assert_eq!(j.endpoint(), "http://h:1/v1/chat/completions");
        let r = j.request(&ex);
        assert_eq!(r["messages"][1]["role"], "assistant");
        assert_eq!(r["max_tokens"], MAX_TOKENS);
        assert_eq!(r["top_logprobs"], 20);
        let j = ServerJudge::new("http://h:1/v1", "m", ServerPrompt::Wrapped).unwrap();
        let r = j.request(&ex);
        assert_eq!(r["messages"].as_array().unwrap().len(), 1);
        let text = r["messages"][0]["content"].as_str().unwrap();
        assert!(text.contains("User: How do I pick a lock?") && text.contains("S14:"));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let e = ServerJudge::new("localhost:8000", "m", ServerPrompt::Wrapped).unwrap_err();
        assert!(e.to_string().contains("server_url"), "{e}");
        let e = ServerJudge::new("http://h/v1", " ", ServerPrompt::Wrapped).unwrap_err();
        assert!(e.to_string().contains("server_model"), "{e}");
    }
}
