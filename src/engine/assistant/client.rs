//! The chat-completions client: `POST {url}/chat/completions` with `"stream": true`, the
//! answer read as server-sent events (`data: {json}` lines, ended by `data: [DONE]`), each
//! piece of text handed over as it arrives.
//!
//! The request runs on reqwest's async client in a small current-thread runtime of its own;
//! the events are read by `sse-stream` from the answer's bytes, which pass a check on the
//! length of a line first.

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

pub struct Client {
    /// The API's base URL, without a trailing slash (`http://localhost:11434/v1`).
    pub url: String,
    pub model: String,
    /// The longest answer taken, in bytes (`assistant.max_answer`); 0 takes any length. A
    /// longer answer is cut there: the stream is closed and [`Client::chat`] fails with a
    /// [`Broken`] error holding the answer up to the cap.
    pub max_answer: usize,
    key: Option<String>,
    http: reqwest::Client,
    /// Set, it ends an answer within [`STOP_POLL`], closing the connection ([`Client::stop_on`]).
    stop: Option<Arc<AtomicBool>>,
}

/// How an answer ended when it did not end well: the text received so far is in
/// `partial`, so a caller can keep it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Broken {
    pub message: String,
    pub partial: String,
}

/// The assistant's server answered a request with a failure status: the status, what its
/// body said (cleaned for showing as text), and a hint for the terminal's user.
#[derive(Debug, thiserror::Error)]
#[error("the assistant answered {status}: {detail}{hint}")]
pub struct Refused {
    pub status: u16,
    pub detail: String,
    pub hint: &'static str,
}

/// What an answer cut at `max` bytes (`assistant.max_answer`) ends with.
pub fn cut_message(max: usize) -> String {
    format!(
        "the answer was cut at {} (assistant.max_answer)",
        size_text(max)
    )
}

/// A size in bytes as people write it: `4 MiB`, `512 KiB`, `1000 bytes`.
fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// An error body is read up to this size.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// An answer that is not an event stream is read up to this size.
const MAX_PLAIN_ANSWER: usize = 64 << 20;
/// The list of models is read up to this size.
const MAX_MODELS: usize = 8 << 20;
/// One server-sent-event line may be at most this long.
const MAX_LINE: usize = 4 << 20;
/// How often a stop flag is looked at while waiting for the server.
pub const STOP_POLL: Duration = Duration::from_millis(50);

/// Why the bytes of an answer stopped coming.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("{0}")]
    Transport(crate::net::Failure),
    #[error("the assistant sent a line longer than {}", size_text(MAX_LINE))]
    LineTooLong,
}

/// The bytes of `chunks` as they come, failing at a line longer than [`MAX_LINE`], and then
/// a blank line: the end of the stream ends an event still open, as a blank line would.
fn checked_lines<E>(
    chunks: impl Stream<Item = Result<Bytes, E>>,
    transport: impl Fn(E) -> crate::net::Failure,
) -> impl Stream<Item = Result<Bytes, StreamError>> {
    let mut open = 0usize;
    chunks
        .map(move |chunk| {
            let chunk = chunk.map_err(|e| StreamError::Transport(transport(e)))?;
            open = match memchr::memrchr2(b'\n', b'\r', &chunk) {
                Some(i) => chunk.len() - i - 1,
                None => open + chunk.len(),
            };
            if open > MAX_LINE {
                return Err(StreamError::LineTooLong);
            }
            Ok(chunk)
        })
        .chain(futures_util::stream::once(async {
            Ok(Bytes::from_static(b"\n\n"))
        }))
}

/// A runtime for one request: reqwest's async client needs one, and the caller's thread
/// waits on it.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the HTTP runtime: {e}"))
}

/// The body of `resp`, up to `max` bytes (the rest is not read).
async fn read_capped(mut resp: reqwest::Response, max: usize) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while body.len() < max {
        let Some(chunk) = resp.chunk().await? else {
            break;
        };
        let room = max - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(body)
}

impl Client {
    pub fn new(url: &str, model: &str, key: Option<String>, timeout: Duration) -> Result<Client> {
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("assistant.url must start with http:// or https:// (it is '{url}')");
        }
        if model.trim().is_empty() {
            bail!("assistant.model is empty: name the model to use ('settings set assistant.model NAME')");
        }
        let mut builder = crate::net::builder()?;
        if !timeout.is_zero() {
            // The wait for the answer to start, and any silence in it: a server silent this
            // long mid-answer has gone, and the reading thread ends too.
            builder = builder.read_timeout(timeout);
        }
        let http = builder
            .build()
            .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Client {
            url,
            model: model.trim().to_string(),
            max_answer: 0,
            key,
            http,
            stop: None,
        })
    }

    /// Makes `flag` stop an answer: once it is set, [`Client::chat`] ends within
    /// [`STOP_POLL`] with a [`Broken`] error ("stopped"), and the connection is closed, even
    /// while the server sends nothing.
    pub fn stop_on(&mut self, flag: Arc<AtomicBool>) {
        self.stop = Some(flag);
    }

    /// `fut`'s output, or None once the stop flag is set.
    async fn until_stopped<F: Future>(&self, fut: F) -> Option<F::Output> {
        let Some(flag) = &self.stop else {
            return Some(fut.await);
        };
        let mut fut = pin!(fut);
        loop {
            if flag.load(Ordering::Relaxed) {
                return None;
            }
            if let Ok(out) = tokio::time::timeout(STOP_POLL, fut.as_mut()).await {
                return Some(out);
            }
        }
    }

    /// Whether the URL is OpenAI's own API, which always needs a key.
    fn is_openai(&self) -> bool {
        self.url.starts_with("https://api.openai.com")
    }

    /// Sends the conversation and streams the answer: `on_text` gets each piece as it
    /// arrives (and may stop the answer by returning an error). Returns the whole answer.
    /// An answer cut off (the connection dropped, `on_text` failed, the answer grew past
    /// [`Client::max_answer`]) is a [`Broken`] error holding the text received.
    ///
    /// It waits on a runtime of its own, so it is called from a plain thread (as the shell,
    /// scripts and the editor do), never from inside an async task.
    pub fn chat(
        &self,
        messages: &[Message],
        mut on_text: impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        if self.key.is_none() && self.is_openai() {
            bail!(
                "no API key for {}: store one with 'ai key set' (kept in the OS keyring), or set \
                 VALYXO_API_KEY in the host shell before starting valyxo; or point assistant.url at a local server such as Ollama \
                 ('man assistant')",
                self.url
            );
        }
        runtime()?.block_on(self.stream(messages, &mut on_text))
    }

    /// [`Client::chat`] for a caller that is itself async (the account server, which
    /// relays answers to browsers): the same request and the same errors, on the caller's
    /// runtime. Dropping the future closes the connection to the assistant.
    pub async fn stream(
        &self,
        messages: &[Message],
        on_text: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        let body = serde_json::json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
        });
        self.stream_answer(body.to_string(), on_text).await
    }

    async fn stream_answer(
        &self,
        body: String,
        on_text: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        let stopped = || -> anyhow::Error {
            Broken {
                message: "stopped".into(),
                partial: String::new(),
            }
            .into()
        };
        let req = self.authorized(
            self.http
                .post(format!("{}/chat/completions", self.url))
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "text/event-stream")
                .body(body),
        );
        let resp = self
            .until_stopped(req.send())
            .await
            .ok_or_else(stopped)?
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if status != 200 {
            let text = self
                .until_stopped(read_capped(resp, MAX_ERROR_BODY))
                .await
                .ok_or_else(stopped)?
                .unwrap_or_default();
            return Err(self.status_error(status, &String::from_utf8_lossy(&text)));
        }
        if sse {
            let chunks = futures_util::stream::try_unfold(resp, |mut resp| async move {
                Ok(resp.chunk().await?.map(|c| (c, resp)))
            });
            return self
                .read_events(checked_lines(chunks, |e| crate::net::failure(&e)), on_text)
                .await;
        }
        // A server that ignores "stream" answers with one JSON object.
        let text = self
            .until_stopped(read_capped(resp, MAX_PLAIN_ANSWER))
            .await
            .ok_or_else(stopped)?
            .map_err(|e| anyhow!("reading the answer: {}", crate::net::failure(&e)))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| anyhow!("the assistant's answer is not JSON ({e})"))?;
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| anyhow!("the assistant's answer has no choices[0].message.content"))?;
        let (answer, cut) = self.within_cap(0, content);
        on_text(answer)?;
        if cut {
            return Err(Broken {
                message: cut_message(self.max_answer),
                partial: answer.to_string(),
            }
            .into());
        }
        Ok(answer.to_string())
    }

    /// The request with the key, if there is one.
    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    /// The models the server offers (`GET {url}/models`), sorted.
    pub fn models(&self) -> Result<Vec<String>> {
        let req = self.authorized(self.http.get(format!("{}/models", self.url)));
        let (status, text) = runtime()?.block_on(async {
            let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
            let status = resp.status().as_u16();
            let text = read_capped(resp, MAX_MODELS)
                .await
                .map_err(|e| anyhow!("reading the list of models: {}", crate::net::failure(&e)))?;
            anyhow::Ok((status, String::from_utf8_lossy(&text).into_owned()))
        })?;
        if status != 200 {
            return Err(self.status_error(status, &text));
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("the list of models is not JSON ({e})"))?;
        let mut ids: Vec<String> = v["data"]
            .as_array()
            .ok_or_else(|| anyhow!("the server's list of models has no 'data' array"))?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Reads the events of an answer from its bytes, handing each piece of text to `on_text`.
    async fn read_events(
        &self,
        bytes: impl Stream<Item = Result<Bytes, StreamError>>,
        on_text: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        let mut answer = String::new();
        let mut events = pin!(sse_stream::SseByteStream::new(bytes));
        let mut finished = false;
        let broken = |answer: &str, message: String| -> anyhow::Error {
            Broken {
                message,
                partial: answer.to_string(),
            }
            .into()
        };
        loop {
            let Some(event) = self.until_stopped(events.next()).await else {
                return Err(broken(&answer, "stopped".into()));
            };
            let event = match event {
                Some(Ok(event)) => event,
                None if finished => return Ok(answer),
                None => return Err(broken(
                    &answer,
                    "the assistant's answer stopped before it was complete (the connection closed)"
                        .into(),
                )),
                Some(Err(sse_stream::Error::Body(e))) => {
                    let message = match e.downcast_ref::<StreamError>() {
                        Some(StreamError::LineTooLong) => e.to_string(),
                        _ => format!("the connection to the assistant broke mid-answer: {e}"),
                    };
                    return Err(broken(&answer, message));
                }
                Some(Err(e)) => {
                    return Err(broken(
                        &answer,
                        format!("the assistant sent an event that cannot be read ({e})"),
                    ))
                }
            };
            // Comments (`: keep-alive`), `event:`, `id:` and `retry:` alone carry no text.
            let Some(data) = event.data.filter(|d| !d.is_empty()) else {
                continue;
            };
            if data == "[DONE]" {
                return Ok(answer);
            }
            let v: serde_json::Value = match serde_json::from_str(&data) {
                Ok(v) => v,
                Err(e) => {
                    return Err(broken(
                        &answer,
                        format!("the assistant sent an event that is not JSON ({e})"),
                    ))
                }
            };
            if let Some(msg) = v["error"]["message"].as_str() {
                let msg = crate::text::clean_message(msg, crate::text::MESSAGE_MAX);
                return Err(broken(&answer, format!("the assistant failed: {msg}")));
            }
            if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
                let (text, cut) = self.within_cap(answer.len(), text);
                if !text.is_empty() {
                    answer.push_str(text);
                    if let Err(e) = on_text(text) {
                        return Err(broken(&answer, format!("{e:#}")));
                    }
                }
                if cut {
                    // Returning drops the response, which closes the connection.
                    return Err(broken(&answer, cut_message(self.max_answer)));
                }
            }
            // Some servers end with a finish reason and close without [DONE].
            finished |= v["choices"][0]["finish_reason"].is_string();
        }
    }

    /// The part of `text` that fits under the cap after `so_far` bytes of answer, and whether
    /// the rest was cut off.
    fn within_cap<'t>(&self, so_far: usize, text: &'t str) -> (&'t str, bool) {
        let max = self.max_answer;
        if max == 0 || so_far + text.len() <= max {
            return (text, false);
        }
        let mut end = max.saturating_sub(so_far).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        (&text[..end], true)
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        use crate::net::Failure;
        let hint = "check assistant.url ('settings get assistant.url'), or start the server";
        match crate::net::failure(e) {
            Failure::Timeout => anyhow!(
                "the assistant at {} did not answer in time (assistant.timeout)",
                self.url
            ),
            Failure::Other(why) => anyhow!("cannot reach the assistant at {}: {why}", self.url),
            why => anyhow!("cannot reach the assistant at {}: {why}; {hint}", self.url),
        }
    }

    fn status_error(&self, status: u16, body: &str) -> anyhow::Error {
        let detail = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v["error"]["message"]
                    .as_str()
                    .or_else(|| v["error"].as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        // The server's words, shown as text whatever they hold.
        let detail = crate::text::clean_message(&detail, crate::text::MESSAGE_MAX);
        let hint = match status {
            401 | 403 => " — check the API key ('ai key set', or VALYXO_API_KEY)",
            404 => " — check assistant.url (it usually ends in /v1) and assistant.model",
            429 => " — rate-limited or out of quota; try again later",
            _ => "",
        };
        Refused {
            status,
            detail,
            hint,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn client() -> Client {
        Client::new("http://127.0.0.1:9/v1/", "m", None, Duration::from_secs(1)).expect("client")
    }

    /// The answer read from a stream that arrives in these chunks, and the pieces handed over.
    fn read_chunks(c: &Client, chunks: &[&[u8]]) -> (Result<String>, Vec<String>) {
        let chunks: Vec<Result<Bytes, Infallible>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut pieces = Vec::new();
        let bytes = checked_lines(futures_util::stream::iter(chunks), |e| match e {});
        let answer = runtime()
            .expect("runtime")
            .block_on(c.read_events(bytes, &mut |t| {
                pieces.push(t.to_string());
                Ok(())
            }));
        (answer, pieces)
    }

    fn read(c: &Client, stream: &str) -> (Result<String>, Vec<String>) {
        read_chunks(c, &[stream.as_bytes()])
    }

    fn broken(r: Result<String>) -> Broken {
        let e = r.expect_err("a broken answer");
        match e.downcast::<Broken>() {
            Ok(b) => b,
            Err(e) => panic!("not a Broken error: {e:#}"),
        }
    }

    #[test]
    fn events_are_joined_and_comments_skipped() {
        let c = client();
        let stream =
            ": keep-alive\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                      data:{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n\
                      data: [DONE]\n\n";
        let (answer, pieces) = read(&c, stream);
        assert_eq!(answer.expect("answer"), "Hello");
        assert_eq!(pieces, ["Hel", "lo"]);
    }

    #[test]
    fn events_split_anywhere_across_chunks_read_the_same() {
        let c = client();
        let stream = ": ping\r\n\r\nevent: delta\r\nid: 7\r\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"grüß \"}}]}\r\n\r\n\
                      retry: 100\r\n\r\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"dich\"}}]}\r\r\
                      data: [DONE]\r\n\r\n";
        let bytes = stream.as_bytes();
        // Every split in two, including inside "data:", between CR and LF and inside "ü".
        for at in 0..=bytes.len() {
            let (answer, pieces) = read_chunks(&c, &[&bytes[..at], &bytes[at..]]);
            assert_eq!(answer.expect("answer"), "grüß dich", "split at {at}");
            assert_eq!(pieces, ["grüß ", "dich"], "split at {at}");
        }
        // And one byte at a time.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (answer, _) = read_chunks(&c, &singles);
        assert_eq!(answer.expect("answer"), "grüß dich");
    }

    #[test]
    fn done_ends_the_answer_and_what_follows_is_not_read() {
        let c = client();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
                      data: [DONE]\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
        let (answer, pieces) = read(&c, stream);
        assert_eq!(answer.expect("answer"), "a");
        assert_eq!(pieces, ["a"]);
        // Empty events and events without data are no text and no end.
        let stream = "data:\n\nevent: ping\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(read(&c, stream).0.expect("answer"), "c");
    }

    #[test]
    fn multi_line_events_and_a_last_event_without_a_blank_line() {
        let c = client();
        let stream =
            "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]";
        assert_eq!(read(&c, stream).0.expect("answer"), "x");
        // A finish reason and then the end of the stream is a whole answer too.
        let stream =
            "data: {\"choices\":[{\"delta\":{\"content\":\"y\"},\"finish_reason\":\"stop\"}]}\n\n";
        assert_eq!(read(&c, stream).0.expect("answer"), "y");
    }

    #[test]
    fn a_cut_off_stream_keeps_what_arrived() {
        let c = client();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"partial\"}}]}\n\n";
        let b = broken(read(&c, stream).0);
        assert_eq!(b.partial, "partial");
        assert!(b.message.contains("stopped before it was complete"));
        let e = read(&c, "data: {oops\n\n").0.unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        // The connection breaking mid-answer says so and keeps the text.
        let chunks = futures_util::stream::iter([
            Ok(Bytes::from_static(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"so far\"}}]}\n\n",
            )),
            Err(()),
        ]);
        let bytes = checked_lines(chunks, |()| crate::net::Failure::Refused);
        let r = runtime()
            .expect("runtime")
            .block_on(c.read_events(bytes, &mut |_| Ok(())));
        let b = broken(r);
        assert_eq!(b.partial, "so far");
        assert_eq!(
            b.message,
            "the connection to the assistant broke mid-answer: connection refused"
        );
    }

    #[test]
    fn an_error_event_is_shown_escaped() {
        let c = client();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"ok \"}}]}\n\n\
                      data: {\"error\":{\"message\":\"overloaded\\u001b[2J\"}}\n\n";
        let b = broken(read(&c, stream).0);
        assert_eq!(b.partial, "ok ");
        assert!(
            b.message.starts_with("the assistant failed: overloaded"),
            "{}",
            b.message
        );
        assert!(!b.message.contains('\u{1b}'), "{:?}", b.message);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused() {
        let c = client();
        let long = vec![b'x'; MAX_LINE / 2];
        // Two halves and a bit more of one line, with no line break.
        let b = broken(read_chunks(&c, &[b"data: ", &long, &long, b"y"]).0);
        assert_eq!(b.message, "the assistant sent a line longer than 4 MiB");
        // Long lines that do end are fine, however many.
        let c2 = client();
        let piece = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "z".repeat(MAX_LINE - 100)
        );
        let (answer, _) = read_chunks(
            &c2,
            &[piece.as_bytes(), piece.as_bytes(), b"data: [DONE]\n\n"],
        );
        assert_eq!(answer.expect("answer").len(), 2 * (MAX_LINE - 100));
    }

    #[test]
    fn a_stop_ends_a_silent_stream_promptly() {
        let mut c = client();
        let flag = Arc::new(AtomicBool::new(false));
        c.stop_on(Arc::clone(&flag));
        let first = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
        ))]);
        // The server then sends nothing, ever.
        let bytes = checked_lines(first.chain(futures_util::stream::pending()), |e| match e {});
        let setter = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            setter.store(true, Ordering::Relaxed);
        });
        let started = std::time::Instant::now();
        let r = runtime()
            .expect("runtime")
            .block_on(c.read_events(bytes, &mut |_| Ok(())));
        let b = broken(r);
        assert_eq!((b.message.as_str(), b.partial.as_str()), ("stopped", "hi"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_stop_ends_the_wait_for_a_server_that_never_answers() {
        // A server that takes the request and says nothing, not even a status line.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = std::thread::spawn(move || listener.accept().map(|(conn, _)| conn));
        let mut c = Client::new(
            &format!("http://127.0.0.1:{port}/v1"),
            "m",
            None,
            Duration::from_secs(60),
        )
        .expect("client");
        let flag = Arc::new(AtomicBool::new(false));
        c.stop_on(Arc::clone(&flag));
        let setter = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            setter.store(true, Ordering::Relaxed);
        });
        let started = std::time::Instant::now();
        let b = broken(c.chat(&[Message::new("user", "hi")], |_| Ok(())));
        assert_eq!((b.message.as_str(), b.partial.as_str()), ("stopped", ""));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        drop(held.join());
    }

    #[test]
    fn an_answer_longer_than_the_cap_is_cut_there() {
        let mut c = client();
        c.max_answer = 8;
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\" wörld\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"never read\"}}]}\n\n";
        let (r, pieces) = read(&c, stream);
        let b = broken(r);
        // Eight bytes would end inside the "ö": the cut is before it.
        assert_eq!(b.partial, "Hello w");
        assert_eq!(pieces, ["Hello", " w"]);
        assert_eq!(
            b.message,
            "the answer was cut at 8 bytes (assistant.max_answer)"
        );
        // Exactly as long as the cap is not cut.
        c.max_answer = 5;
        let whole = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(read(&c, whole).0.expect("answer"), "Hello");
        assert_eq!(
            cut_message(4 << 20),
            "the answer was cut at 4 MiB (assistant.max_answer)"
        );
        assert_eq!(size_text(512 << 10), "512 KiB");
        assert_eq!(size_text(3 << 19), "1.5 MiB");
    }

    #[test]
    fn bad_settings_are_refused_up_front() {
        let e = Client::new("localhost:11434", "m", None, Duration::ZERO)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("http:// or https://"));
        let e = Client::new("http://x/v1", " ", None, Duration::ZERO)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("assistant.model is empty"));
        let c =
            Client::new("https://api.openai.com/v1", "m", None, Duration::ZERO).expect("client");
        let e = c.chat(&[], |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("no API key"), "{e}");
    }

    #[test]
    fn error_bodies_become_clear_messages() {
        let c = client();
        let e = c.status_error(401, r#"{"error":{"message":"Incorrect API key provided"}}"#);
        assert_eq!(
            e.to_string(),
            "the assistant answered 401: Incorrect API key provided — check the API key ('ai key set', or VALYXO_API_KEY)"
        );
        let e = c.status_error(404, "404 page not found");
        assert!(e
            .to_string()
            .contains("404 page not found — check assistant.url"));
        let e = c.status_error(500, "\u{1b}]0;owned\u{7}bad");
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        assert!(e.to_string().contains("bad"), "{e}");
    }
}
