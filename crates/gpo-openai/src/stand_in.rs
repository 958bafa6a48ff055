//! A stand-in chat-completions server on a local port, for tests of code that talks to a
//! server (retries, errors, request contents, reply order). It is not a model server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The request bodies a [`serve`]d stand-in has received, in arrival order.
pub type Received = Arc<Mutex<Vec<Value>>>;

/// Serves on a free local port until the process ends: each request's JSON body goes to
/// `answer` with its arrival number (from 1), which returns the status and body to send.
/// Returns the API root (`http://127.0.0.1:PORT/v1`) and the bodies received.
pub fn serve(
    answer: impl Fn(&Value, usize) -> (u16, String) + Send + Sync + 'static,
) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free local port");
    let url = format!(
        "http://{}/v1",
        listener.local_addr().expect("a bound address")
    );
    let seen: Received = Arc::default();
    let log = seen.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (log, answer) = (log.clone(), answer.clone());
            std::thread::spawn(move || {
                let _ = reply_once(stream, &log, answer.as_ref());
            });
        }
    });
    (url, seen)
}

fn reply_once(
    mut stream: std::net::TcpStream,
    log: &Received,
    answer: &(dyn Fn(&Value, usize) -> (u16, String) + Send + Sync),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut l = log.lock().expect("the log lock");
        l.push(body.clone());
        l.len()
    };
    let (status, text) = answer(&body, n);
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        text.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(text.as_bytes())
}
