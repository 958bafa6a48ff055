//! One JSON request with bounded retries: transport failures, a reply cut short, HTTP 429
//! and 5xx are tried again; any other status fails at once.

use std::time::Duration;

use serde_json::Value;

use crate::{parse_reply, snippet};

/// What a successful reply must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A JSON body.
    Json,
    /// Anything (vLLM answers adapter loads with plain text); a JSON body is still parsed,
    /// other text becomes `Value::Null`.
    Any,
}

/// Posts `body` to `url` (`None`: a GET) up to `tries` times, waiting 1 s, 2 s, 4 s, ...
/// between tries; returns the reply as JSON, or a one-line reason with the HTTP status when
/// there was one.
pub fn request_json(
    agent: &ureq::Agent,
    url: &str,
    api_key: Option<&str>,
    body: Option<&Value>,
    tries: u32,
    expect: Expect,
) -> Result<Value, Failure> {
    let mut last = Failure {
        status: None,
        msg: String::new(),
    };
    for attempt in 0..tries.max(1) {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 << attempt.min(6)));
        }
        let mut req = match body {
            Some(_) => agent.post(url),
            None => agent.get(url),
        };
        if let Some(key) = api_key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let sent = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match sent {
            Ok(resp) => {
                // A reply cut short (a dropped connection, a server restarting) is worth
                // another try; a page that is not JSON at all fails the same way each time.
                let text = match resp.into_string() {
                    Ok(text) => text,
                    Err(e) => {
                        last.msg = format!("the reply could not be read ({e})");
                        continue;
                    }
                };
                match (parse_reply(&text), expect) {
                    (Ok(v), _) => return Ok(v),
                    (Err(_), Expect::Any) => return Ok(Value::Null),
                    (Err(e), Expect::Json) => last.msg = e,
                }
            }
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                last = Failure {
                    status: Some(code),
                    msg: format!("HTTP {code}: {}", snippet(&text)),
                };
                if code != 429 && code < 500 {
                    return Err(last);
                }
            }
            Err(ureq::Error::Transport(t)) => {
                // Its Display repeats the URL, which the error names already.
                let mut msg = t.kind().to_string();
                if let Some(m) = t.message() {
                    msg.push_str(&format!(": {m}"));
                }
                if let Some(cause) = std::error::Error::source(&t) {
                    msg.push_str(&format!(": {cause}"));
                }
                msg.push_str("; is the server up at this URL?");
                last = Failure { status: None, msg };
            }
        }
    }
    last.msg = format!("{} (after {} tries)", last.msg, tries.max(1));
    Err(last)
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The last HTTP status, when the server answered.
    pub status: Option<u16>,
    /// What happened, on one line.
    pub msg: String,
}
