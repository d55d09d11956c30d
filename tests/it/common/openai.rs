//! A local OpenAI-compatible chat-completions server for the assistant tests: real HTTP/1.1
//! on 127.0.0.1, answers streamed as server-sent events in chunked transfer encoding, as
//! OpenAI, Ollama and llama.cpp's server send them. What it does depends on the model asked
//! for:
//!
//! - `echo`: answers "You said: FIRST LINE OF THE LAST QUESTION (N messages)" in pieces;
//! - `drop`: sends two pieces, then closes the connection mid-answer;
//! - `stall`: sends two pieces, then nothing for 30 s with the connection open;
//! - `code`: answers with two fenced code blocks;
//! - `plain`: ignores `stream` and answers with one JSON object;
//! - `hostile`: answers with markup meant to run in a page that shows it as HTML;
//! - anything else: 404 with an OpenAI-style error body.
//!
//! `GET /v1/models` lists those models. A request whose key is not `Bearer sk-test` (when
//! `require_key` is set) gets 401.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
    pub body: serde_json::Value,
}

pub struct Server {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    pub fn start(require_key: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let _ = serve(conn, &seen, require_key);
                });
            }
        });
        Server { url, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

fn serve(
    mut conn: TcpStream,
    seen: &Mutex<Vec<Request>>,
    require_key: bool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    seen.lock().expect("lock").push(Request {
        path: path.clone(),
        authorization: authorization.clone(),
        body: body.clone(),
    });
    let respond = |conn: &mut TcpStream, status: &str, json: &str| {
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
    };
    if path == "/v1/models" {
        if require_key && authorization.as_deref() != Some("Bearer sk-test") {
            return respond(
                &mut conn,
                "401 Unauthorized",
                r#"{"error":{"message":"Incorrect API key provided"}}"#,
            );
        }
        return respond(
            &mut conn,
            "200 OK",
            r#"{"object":"list","data":[{"id":"echo","object":"model"},{"id":"code","object":"model"},{"id":"drop","object":"model"}]}"#,
        );
    }
    if path != "/v1/chat/completions" {
        return respond(
            &mut conn,
            "404 Not Found",
            r#"{"error":{"message":"no such route"}}"#,
        );
    }
    if require_key && authorization.as_deref() != Some("Bearer sk-test") {
        return respond(
            &mut conn,
            "401 Unauthorized",
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        );
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let model = body["model"].as_str().unwrap_or("");
    let answer = if model == "hostile" {
        "<img src=x onerror=\"window.hacked=1\"> <b>bold</b>\n```html\n<script>window.hacked=2</script>\n<img src=y onerror=\"window.hacked=3\">\n```\n".to_string()
    } else if model == "code" {
        "Use this:\n```rust\nfn fixed() -> u32 {\n    42\n}\n```\nor this:\n```rust\nfn other() {}\n```\n".to_string()
    } else {
        format!("You said: {last} ({} messages)", messages.len())
    };
    match model {
        "echo" | "drop" | "code" | "stall" | "hostile" => {
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            )?;
            let chunk = |conn: &mut TcpStream, data: &str| -> std::io::Result<()> {
                write!(conn, "{:x}\r\n{data}\r\n", data.len())?;
                conn.flush()
            };
            chunk(&mut conn, ": keep-alive\n\n")?;
            let first = serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]});
            chunk(&mut conn, &format!("data: {first}\n\n"))?;
            let words: Vec<&str> = answer.split_inclusive(' ').collect();
            for (i, w) in words.iter().enumerate() {
                if model == "drop" && i == 2 {
                    // Gone mid-answer: no final chunk.
                    return Ok(());
                }
                if model == "stall" && i == 2 {
                    // Silent, with the connection open.
                    std::thread::sleep(Duration::from_secs(30));
                    return Ok(());
                }
                let ev = serde_json::json!({"choices": [{"index": 0, "delta": {"content": w}, "finish_reason": null}]});
                chunk(&mut conn, &format!("data: {ev}\n\n"))?;
                std::thread::sleep(Duration::from_millis(2));
            }
            let end = serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            chunk(&mut conn, &format!("data: {end}\n\n"))?;
            chunk(&mut conn, "data: [DONE]\n\n")?;
            write!(conn, "0\r\n\r\n")?;
            conn.flush()
        }
        "plain" => {
            let json = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]});
            respond(&mut conn, "200 OK", &json.to_string())
        }
        other => respond(
            &mut conn,
            "404 Not Found",
            &format!(r#"{{"error":{{"message":"model '{other}' not found"}}}}"#),
        ),
    }
}
